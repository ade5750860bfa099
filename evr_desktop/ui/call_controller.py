"""Calls in the main window: the embedded engine and rendezvous, sending the
link (outbox), 'victim waiting', the call screen, devices.

Kept apart from ``main_window`` so the window stays a thin shell; it reaches
the session, worker and screens through the window it serves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from ..domain.appointment import Appointment, Status
from ..domain.audit import Category
from .operations import Operation

if TYPE_CHECKING:
    from ..call.embedded import EmbeddedCalls
    from .call_screen import CallScreen
    from .desktop_notify import DesktopNotifier
    from .main_window import MainWindow

log = logging.getLogger(__name__)


class CallController:
    def __init__(self, main: MainWindow):
        self.main = main
        self.screen: CallScreen | None = None
        self.embedded: EmbeddedCalls | None = None  # engine + loopback rendezvous, after start()
        self._bridge: QObject | None = None
        self.links: dict[str, str] = {}  # appointment id -> last link issued (shown to the officer)
        self.outbox_texts: dict[str, str] = {}
        self.link_refusals: list[tuple[str, str]] = []  # (appointment id, reason code)
        self._starting = False
        self._closed = False
        self._notifier: DesktopNotifier | None = None  # made on the first "victim waiting"
        self._notify_unavailable_told = False

    def start(self) -> None:
        """Start the engine and the loopback rendezvous once, all of it on the
        worker: importing the engine (aiortc, PyAV, OpenCV; ~1 s here) on the
        GUI thread froze the window just after the queue appeared."""
        if self.embedded is not None or self._starting:
            return
        self._starting = True
        from .call_bridge import CallBridge

        bridge = CallBridge()
        bridge.event.connect(self._call_event)
        self._bridge = bridge

        def make() -> EmbeddedCalls | None:
            from ..call.embedded import EmbeddedCalls

            calls = EmbeddedCalls()
            calls.start()
            if self._closed:  # the app quit while it started: stop it here, on the worker
                calls.stop()
                return None
            return calls

        def started(calls: EmbeddedCalls | None) -> None:
            self._starting = False
            if calls is None or calls.engine is None:
                return
            self.embedded = calls
            calls.engine.add_listener(bridge)
            if calls.speaker_note:
                self.main.window.statusBar().showMessage(calls.speaker_note, 15000)
            log.info("call engine ready")

        def failed(exc: BaseException) -> None:
            self._starting = False  # the next unlock tries again
            self.main._error(exc)

        Operation(self.main.worker, self.main.window, make).success(started).failure(failed).run()

    @property
    def ready(self) -> bool:
        """The engine and rendezvous are up (they start after the queue's first paint)."""
        return self.embedded is not None and self.embedded.engine is not None

    def _not_ready(self) -> bool:
        """True (and the officer told so) while the engine is still starting."""
        if self.ready:
            return False
        self.main.window.statusBar().showMessage(
            "Video calls are still starting. Try again in a moment.", 8000)
        return True

    @property
    def in_call(self) -> bool:
        return self.screen is not None and self.screen.appointment is not None

    def shutdown(self) -> None:
        """Stop the call engine and rendezvous (on quit)."""
        self._closed = True
        if self.embedded is not None:
            if self.embedded.engine is not None and self._bridge is not None:
                self.embedded.engine.remove_listener(self._bridge)
            self.embedded.stop()
            self.embedded = None

    def show_outbox(self) -> None:
        session = self.main.session
        if session is None:
            return

        def notifier() -> object:
            from ..notify.outbox import OutboxNotifier

            return OutboxNotifier(session.store) if self.main.session is session else None  # type: ignore[arg-type]

        def load() -> list:
            n = notifier()
            session.audit_event(Category.CONSULTATION, "outbox", "outbox.view")
            return n.list(open_only=False)  # type: ignore[union-attr]

        def show(messages: list) -> None:
            from .outbox_dialog import OutboxDialog

            def run(fn, ok, fail) -> None:  # noqa: ANN001
                Operation(self.main.worker, dialog, fn).success(ok).failure(fail).run()

            dialog = OutboxDialog(messages, run, notifier, self.main.window)
            self.main._dialogs.append(dialog)  # type: ignore[arg-type]  closed on lock like the others
            dialog.finished.connect(lambda _r: dialog in self.main._dialogs and self.main._dialogs.remove(dialog))  # type: ignore[arg-type]
            dialog.open()
            self.outbox_dialog = dialog

        Operation(self.main.worker, self.main.window, load).success(show).failure(self.main._error).run()

    def choose_devices(self) -> None:
        calls = self.embedded
        if calls is None or calls.engine is None:
            return

        def probe() -> tuple[list, list]:
            from ..capture.devices import list_cameras, list_microphones

            return list_cameras(), list_microphones()

        def show(found: tuple[list, list]) -> None:
            from .devices_dialog import DevicesDialog

            engine = calls.engine
            if engine is None:
                return
            dialog = DevicesDialog(*found, engine.settings.camera, engine.settings.microphone, self.main.window)
            dialog.accepted.connect(lambda: calls.choose_devices(*dialog.choice()))
            dialog.open()
            self.devices_dialog = dialog

        Operation(self.main.worker, self.main.window, probe).success(show).failure(self.main._error).run()

    def send_link(self, a: Appointment) -> None:
        session, calls = self.main.session, self.embedded
        if session is None or self._not_ready():
            return
        assert calls is not None

        def send() -> tuple[Appointment, str, str]:
            from ..domain.appointment import ALLOWED_TRANSITIONS
            from ..domain.sms import compose_for_appointment, to_e164
            from ..notify.outbox import OutboxNotifier

            current = session.store.get(a.id)
            link = calls.issue_link(current)
            text = compose_for_appointment(current, session.officer.force, link).text
            result = OutboxNotifier(session.store).send(current.id, to_e164(current.victim.mobile), text)  # type: ignore[arg-type]
            if result.status.value == "failed":
                raise ValueError(result.message)
            session.audit_event(Category.DISCLOSURE, current.id, "appointment.link_sent")
            if Status.LINK_SENT in ALLOWED_TRANSITIONS[current.status]:
                current = session.change_status(current.id, Status.LINK_SENT)
            return current, link, text

        def sent(result: tuple[Appointment, str, str]) -> None:
            changed, link, text = result
            if self.main.session is not session:
                return
            self.links[changed.id] = link
            self.outbox_texts[changed.id] = text
            self.main.queue.upsert(changed)
            self.main.queue.detail.link_label.setText(f"Text in the outbox (copy it if needed):\n{text}")
            self.main.window.statusBar().showMessage(f"Link ready for {changed.urn}", 5000)

        Operation(self.main.worker, self.main.window, send).success(sent).failure(self.main._error).run()

    def _call_event(self, e: object) -> None:
        import shiboken6

        from ..call import events as ev

        if not shiboken6.isValid(self.main.window):  # an event queued as the app closed
            return
        if self.screen is not None:
            self.screen.on_event(e)  # type: ignore[arg-type]
        session = self.main.session
        if isinstance(e, ev.VictimWaiting) and session is not None:
            self._advance(e.appointment, Status.VICTIM_WAITING)
            self.main.window.statusBar().showMessage("A victim is waiting for their video appointment", 10000)
            from PySide6.QtWidgets import QApplication

            QApplication.alert(self.main.window)  # the task bar flashes; no names anywhere
            self._notify_desktop("A victim is waiting", "Open EVR Desktop to start the call.")
        elif isinstance(e, ev.LinkRefused):
            # Replayed, expired, second-device or revoked: the victim saw a kind
            # page; the officer is told which appointment and why (no names).
            self.link_refusals.append((e.appointment, e.reason))
            self.main.window.statusBar().showMessage(f"A join link was refused ({e.reason}): {e.note}", 15000)
        elif isinstance(e, ev.Error):
            self.main.window.statusBar().showMessage(e.message, 10000)

    def _notify_desktop(self, title: str, text: str) -> None:
        """Fixed texts only: never a victim's name or number (see DesktopNotifier)."""
        notifier = self._notifier
        if notifier is None:
            # Imported on the first 'victim waiting', never at start-up.
            from .desktop_notify import DesktopNotifier

            window = self.main.window
            notifier = self._notifier = DesktopNotifier(window, icon=window.windowIcon())

            def reported(path: str) -> None:
                if path != "none" or self._notify_unavailable_told:
                    return
                self._notify_unavailable_told = True  # once: the task bar flash and status bar still work
                bar = window.statusBar()
                note = "Desktop notifications are not available on this computer"
                current = bar.currentMessage()
                bar.showMessage(f"{current.rstrip('.')}. {note}." if current else note, 15000)

            notifier.done.connect(reported)
        notifier.notify(title, text)

    def _advance(self, appointment_id: str, status: Status) -> None:
        session = self.main.session
        if session is None:
            return

        def move() -> Appointment | None:
            from ..domain.appointment import ALLOWED_TRANSITIONS

            current = session.store.get(appointment_id)
            if status in ALLOWED_TRANSITIONS[current.status]:
                return session.change_status(appointment_id, status)
            return None

        Operation(self.main.worker, self.main.window, move).success(
            lambda changed: changed is not None and self.main.session is session and self.main.queue.upsert(changed)
        ).failure(self.main._error).run()

    def start_call(self, a: Appointment) -> None:
        calls = self.embedded
        if self.main.session is None or self._not_ready():
            return
        assert calls is not None and calls.engine is not None
        from .call_screen import CallScreen

        if self.screen is None:
            self.screen = CallScreen(calls.engine, self.main.window)
            self.screen.ended.connect(self._call_ended)
            self.main.stack.addWidget(self.screen)
        screen = self.screen
        self.main.stack.setCurrentWidget(screen)
        screen.start(a.id)
        self._advance(a.id, Status.IN_CALL)
        # The statement, docked beside the video.
        self.main._open_statement(
            lambda s: s.statements.open_for_appointment(a.id),
            show=lambda statement_screen: screen.dock(statement_screen),
        )

    def _call_ended(self, _appointment_id: str) -> None:
        screen = self.main._statement_screen
        if screen is not None and self.screen is not None and screen.parent() is not self.main.stack:
            self.main.stack.addWidget(screen)  # undock: go on with the statement after the call
            self.main.stack.setCurrentWidget(screen)
