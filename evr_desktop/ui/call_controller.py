"""Calls in the main window: the media process (the call engine and the demo's
rendezvous, in a child process the app supervises), sending the link
(outbox), 'victim waiting', the call screen, devices, and what the officer is
told if the media process is lost.

Kept apart from ``main_window`` so the window stays a thin shell. It is given
what it needs (``CallHost``) rather than the window itself, and every rule and
status change it asks for is the session's: the controller only shows what
happened and what was refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow, QMessageBox, QStackedWidget, QWidget

from ..domain.appointment import Appointment, Happening
from ..domain.errors import NotEligible
from .operations import Operation, Worker

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..call.embedded import EmbeddedCalls
    from ..domain.exhibit import ExhibitReference
    from ..media import ForceRendezvous
    from ..media.proxy import MediaCalls
    from ..services import LinkSent, RecordingPlan, Session
    from ..statement.service import PhoneReview
    from .call_screen import CallScreen
    from .desktop_notify import DesktopNotifier
    from .queue_screen import QueueScreen
    from .statement_screen import StatementScreen

log = logging.getLogger(__name__)

# The engine's Error codes that mean victims cannot reach this officer now.
RENDEZVOUS_PROBLEMS = frozenset({"unreachable", "rendezvous-error", "dropped", "unauthorized", "replaced"})
UNAVAILABLE_DROPPED = "The connection to the video service dropped. Reconnecting…"
UNAVAILABLE_MEDIA = "The video part stopped. Restarting it…"
WORKING_COPY_DELAY_MS = 5000  # after a recording ends, before its working copy is started


@dataclass
class CallHost:
    """What the call machinery needs from the window it lives in."""

    window: QMainWindow  # parent of dialogs, status bar, task-bar alert
    worker: Worker
    stack: QStackedWidget  # the call screen is one of its pages
    session: Callable[[], Session | None]  # None while locked
    queue: Callable[[], QueueScreen]
    show_error: Callable[[BaseException], None]
    keep_dialog: Callable[[QWidget], None]  # closed when the app locks
    # Open the appointment's statement and hand its screen to the callback (docking).
    open_statement: Callable[[str, Callable[[StatementScreen], None]], None]
    statement_screen: Callable[[], StatementScreen | None]
    safety_changed: Callable[[], None] = lambda: None  # the banner and the queue show the open signals


class CallController:
    def __init__(self, host: CallHost):
        self.host = host
        self.screen: CallScreen | None = None
        # The media process's proxy (or, with EVR_MEDIA_IN_PROCESS=1, the engine
        # in this process): engine + loopback rendezvous, after start().
        self.embedded: MediaCalls | EmbeddedCalls | None = None
        self._bridge: QObject | None = None
        self.links: dict[str, str] = {}  # appointment id -> last link issued (shown to the officer)
        self.outbox_texts: dict[str, str] = {}
        self.link_refusals: list[tuple[str, str]] = []  # (appointment id, reason code)
        # Safety signals heard but not yet stored (the app was locked): id, signal, held, when.
        self._pending_safety: list[tuple[str, object, bool, datetime]] = []
        self.refusal_box: QMessageBox | None = None  # the last "cannot go ahead" shown
        self._starting = False
        self._closed = False
        self._notifier: DesktopNotifier | None = None  # made on the first "victim waiting"
        self._notify_unavailable_told = False
        self._calling: dict[str, Appointment] = {}  # appointment id -> as the call started (for "Send a new link")
        self._resend_when_back: Appointment | None = None
        self.media_lost_box: QMessageBox | None = None
        self.recording_box: QMessageBox | None = None  # "Recording stopped": go on without, or end the call
        # appointment id -> the session the call's recording started under: its end is audited
        # even when it arrives after a lock (locking ends the call; the audit log stays open).
        self._recording_sessions: dict[str, Session] = {}
        self._force: ForceRendezvous | None = None  # force mode's rendezvous (settings), None: the demo's
        self._token_timer: QObject | None = None
        # Why victims cannot reach this officer now (shown on the queue), None when they can.
        self.calls_unavailable: str | None = None
        self.rendezvous_connected = False  # the officer's connection to the rendezvous is up

    def _status(self, text: str, ms: int) -> None:
        self.host.window.statusBar().showMessage(text, ms)

    def _run(self, fn: Callable[[], object], ok: Callable[..., object], parent: QObject | None = None) -> None:
        Operation(self.host.worker, parent or self.host.window, fn).success(ok).failure(self._failed).run()

    def _failed(self, exc: BaseException) -> None:
        self.host.show_error(exc)

    def start(self) -> None:
        """Start the media process (engine and rendezvous connection) once, from
        the worker, after the queue's first paint (at every unlock: once started,
        only a fresh officer token in force mode). The GUI's process never
        imports the engine (aiortc, PyAV, OpenCV): it runs in the child.

        Force mode (settings ``rendezvous_url``): the child connects to the
        force's rendezvous with a short-lived token signed here with the
        officer's key (the child never holds it), renewed every few minutes
        while the app is unlocked. While locked none is made: a connection
        that drops then stays down until the next unlock, and the queue says so."""
        if self.embedded is not None:
            self._renew_token()
            return
        if self._starting:
            return
        session = self.host.session()
        if session is None:
            return
        from ..media import ForceRendezvous

        settings = session.settings
        self._force = (ForceRendezvous(settings.rendezvous_url, settings.rendezvous_ca_file or None)
                       if settings.force_calls else None)
        self._starting = True
        from .call_bridge import CallBridge

        bridge = CallBridge()
        bridge.event.connect(self._call_event)
        self._bridge = bridge
        force = self._force

        def make() -> MediaCalls | EmbeddedCalls | None:
            from ..media import make_calls

            # Signed here, on the worker (a Refused is shown and calls stay off).
            token = session.officer_token(force.url) if force is not None else ""
            calls = make_calls(force)
            calls.start()
            if self._closed:  # the app quit while it started: stop it here, on the worker
                calls.stop()
                return None
            if token:
                calls.set_officer_token(token)
            return calls

        def started(calls: MediaCalls | EmbeddedCalls | None) -> None:
            self._starting = False
            if calls is None or calls.engine is None:
                return
            self.embedded = calls
            calls.engine.add_listener(bridge)
            if calls.speaker_note:
                self._status(calls.speaker_note, 15000)
            if self._force is not None:
                from PySide6.QtCore import QTimer

                from ..rendezvous.officer_token import REFRESH_SECONDS

                timer = QTimer(self.host.window)
                timer.setInterval(REFRESH_SECONDS * 1000)
                timer.timeout.connect(self._renew_token)
                timer.start()
                self._token_timer = timer
            log.info("call engine ready")

        def failed(exc: BaseException) -> None:
            self._starting = False  # the next unlock tries again
            self.host.show_error(exc)

        Operation(self.host.worker, self.host.window, make).success(started).failure(failed).run()

    def _renew_token(self) -> None:
        """Force mode: a fresh officer token for the media process (unlocked only),
        signed on the worker; a failure is said (the connection stays until the old one ends)."""
        calls, session, force = self.embedded, self.host.session(), self._force
        if calls is None or session is None or force is None:
            return

        def renew() -> None:
            calls.set_officer_token(session.officer_token(force.url))

        def failed(exc: BaseException) -> None:
            log.warning("force rendezvous: no fresh officer token (%s)", type(exc).__name__)
            self._status(str(exc), 15000)

        Operation(self.host.worker, self.host.window, renew).success(lambda _r: None).failure(failed).run()

    def _calls_unavailable(self, why: str | None) -> None:
        """The queue says when victims cannot reach this officer (None: they can)."""
        if why == self.calls_unavailable:
            return
        self.calls_unavailable = why
        self.host.queue().set_calls_unavailable(why)

    @property
    def ready(self) -> bool:
        """The engine and rendezvous are up (they start after the queue's first
        paint; after a lost media process, until the new one is ready they are not)."""
        calls = self.embedded
        return calls is not None and calls.engine is not None and calls.engine.running

    def _not_ready(self) -> bool:
        """True (and the officer told so) while the engine is still starting."""
        if self.ready:
            return False
        self._status("Video calls are still starting. Try again in a moment.", 8000)
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
        session = self.host.session()
        if session is None:
            return

        def notifier() -> object:
            return session.outbox if self.host.session() is session else None

        def show(messages: list) -> None:
            from .outbox_dialog import OutboxDialog

            def run(fn, ok, fail) -> None:  # noqa: ANN001
                Operation(self.host.worker, dialog, fn).success(ok).failure(fail).run()

            dialog = OutboxDialog(messages, run, notifier, self.host.window)
            self.host.keep_dialog(dialog)
            dialog.open()
            self.outbox_dialog = dialog

        self._run(session.list_outbox, show)

    def choose_devices(self) -> None:
        calls = self.embedded
        if calls is None or calls.engine is None:
            return

        def probe() -> tuple[list, list]:
            return calls.list_devices()  # probed where the engine runs (the media process)

        def show(found: tuple[list, list]) -> None:
            from .devices_dialog import DevicesDialog

            engine = calls.engine
            if engine is None:
                return
            dialog = DevicesDialog(*found, engine.settings.camera, engine.settings.microphone, self.host.window)
            dialog.accepted.connect(lambda: calls.choose_devices(*dialog.choice()))
            dialog.open()
            self.devices_dialog = dialog

        self._run(probe, show)

    def send_link(self, a: Appointment) -> None:
        session, calls = self.host.session(), self.embedded
        if session is None or self._not_ready():
            return
        assert calls is not None

        def sent(result: LinkSent) -> None:
            changed = result.appointment
            if self.host.session() is not session:
                return
            self.links[changed.id] = result.link
            self.outbox_texts[changed.id] = result.text
            queue = self.host.queue()
            queue.upsert(changed)
            if result.sent_by_sms:  # force mode: the force's SMS service took it
                queue.detail.show_outbox_note(changed.id, "Sent to the victim by text message.")
                self._status(f"Link sent by text message for {changed.urn}", 8000)
                return
            if result.sms_problem:  # force mode, and it could not: the officer must know, loudly
                queue.detail.show_outbox_note(
                    changed.id, f"NOT sent by text: {result.sms_problem}\nCopy it from here:\n{result.text}")
                self._status(f"The text for {changed.urn} was NOT sent: it is in the outbox", 20000)
                return
            queue.detail.show_outbox_note(changed.id, f"Text in the outbox (copy it if needed):\n{result.text}")
            self._status(f"Link ready for {changed.urn}", 5000)

        Operation(self.host.worker, self.host.window, lambda: session.send_link(a.id, calls.issue_link)).success(
            sent).failure(lambda exc: self._refused(a, exc)).run()

    def _refused(self, a: Appointment, exc: BaseException) -> None:
        """A refusal says why; one for the EVR criteria offers the way out."""
        if not isinstance(exc, NotEligible):
            self.host.show_error(exc)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Video cannot go ahead", "\n".join(exc.reasons),
                          QMessageBox.StandardButton.Close, self.host.window)
        box.setObjectName("notEligibleBox")
        convert = box.addButton("Convert to in-person visit", QMessageBox.ButtonRole.AcceptRole)
        convert.setObjectName("convertInPerson")
        box.setDefaultButton(QMessageBox.StandardButton.Close)
        box.buttonClicked.connect(lambda b: b is convert and self.convert_to_in_person(a))
        self.host.keep_dialog(box)
        self.refusal_box = box
        box.open()

    def convert_to_in_person(self, a: Appointment) -> None:
        session = self.host.session()
        if session is None:
            return

        def done(changed: Appointment) -> None:
            if self.host.session() is session:
                self.host.queue().upsert(changed)
                self._status(f"{changed.urn} is now an in-person visit", 8000)

        self._run(lambda: session.convert_to_in_person(a.id), done)

    def _call_event(self, e: object) -> None:
        import shiboken6

        from ..call import events as ev

        if not shiboken6.isValid(self.host.window):  # an event queued as the app closed
            return
        if self.screen is not None:
            self.screen.on_event(e)  # type: ignore[arg-type]
        if isinstance(e, ev.VictimWaiting):
            self._record(e.appointment, Happening.VICTIM_ARRIVED)
            self._status("A victim is waiting for their video appointment", 10000)
            from PySide6.QtWidgets import QApplication

            QApplication.alert(self.host.window)  # the task bar flashes; no names anywhere
            self._notify_desktop("A victim is waiting", "Open EVR Desktop to start the call.")
        elif isinstance(e, ev.VictimLeft):
            self._record(e.appointment, Happening.VICTIM_LEFT, told="The victim left the waiting room.")
        elif isinstance(e, ev.VictimFlag):
            from ..domain.safety import signal_for_flag

            self._safety_signal(e.appointment, signal_for_flag(e.kind), e.held)
        elif isinstance(e, ev.QuickExit):
            from ..domain.safety import Signal

            self._safety_signal(e.appointment, Signal.QUICK_EXIT, e.held)
        elif isinstance(e, ev.RecordingStatus):
            self._recording_status(e)
        elif isinstance(e, ev.RecordingEnded):
            self._recording_ended(e)
        elif isinstance(e, StillOutcome):
            self._still_done(e)
        elif isinstance(e, (ev.StatementSigned, ev.StatementDeclined)) or (
                isinstance(e, ev.Error) and e.code == "bad-phone-signature"):
            self._phone_answer(e)
        elif isinstance(e, ev.CallStateChanged) and e.state == "connected":
            self._record(e.appointment, Happening.CALL_CONNECTED)
        elif isinstance(e, ev.CallEnded):
            self._record(e.appointment, Happening.CALL_ENDED)
        elif isinstance(e, ev.LinkRefused):
            # Replayed, expired, second-device or revoked: the victim saw a kind
            # page; the officer is told which appointment and why (no names).
            self.link_refusals.append((e.appointment, e.reason))
            self._status(f"A join link was refused ({e.reason}): {e.note}", 15000)
        elif isinstance(e, ev.SignallingChanged):
            self.rendezvous_connected = e.connected
            self._calls_unavailable(None if e.connected else UNAVAILABLE_DROPPED)
        elif isinstance(e, ev.Error):
            self._status(e.message, 10000)
            if e.code in RENDEZVOUS_PROBLEMS and not e.appointment:
                self._calls_unavailable(e.message)
        elif isinstance(e, ev.MediaProcessLost):
            self._calls_unavailable(UNAVAILABLE_MEDIA)
            self._media_lost(e)
        elif isinstance(e, ev.MediaProcessRestarted):
            self._status("Video calls are working again.", 10000)
            again, self._resend_when_back = self._resend_when_back, None
            if again is not None:
                self.send_link(again)

    def _media_lost(self, e: object) -> None:
        """Told in plain words; the statement stays where it is (it lives in
        this process). The links not yet spent are handed to the new child, so
        the victim can reopen theirs and be called again; a new link is
        offered as the fallback for the call that was cut."""
        message: str = getattr(e, "message", "")
        self._status(message, 20000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Video stopped", message, QMessageBox.StandardButton.Close,
                          self.host.window)
        box.setObjectName("mediaLostBox")
        cut = [self._calling[a] for a in getattr(e, "appointments", ()) if a in self._calling]
        if cut and getattr(e, "restarting", False):
            again = box.addButton("Send a new link", QMessageBox.ButtonRole.AcceptRole)
            again.setObjectName("sendNewLink")
            box.buttonClicked.connect(lambda b: b is again and self._send_new_link(cut[0]))
        self.host.keep_dialog(box)
        self.media_lost_box = box
        box.open()

    def _send_new_link(self, a: Appointment) -> None:
        if self.ready:
            self.send_link(a)
        else:  # the media process is still restarting: as soon as it is back
            self._resend_when_back = a
            self._status("A new link will be made as soon as video calls are back.", 8000)

    def _notify_desktop(self, title: str, text: str) -> None:
        """Fixed texts only: never a victim's name or number (see DesktopNotifier)."""
        notifier = self._notifier
        if notifier is None:
            # Imported on the first 'victim waiting', never at start-up.
            from .desktop_notify import DesktopNotifier

            window = self.host.window
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

    def _record(self, appointment_id: str, happening: Happening, told: str | None = None) -> None:
        """The session moves the status with what happened; the queue shows it
        (and the status bar says ``told`` if the status did move)."""
        session = self.host.session()
        if session is None:
            return

        def shown(changed: Appointment | None) -> None:
            if changed is not None and self.host.session() is session:
                self.host.queue().upsert(changed)
                if told:
                    self._status(f"{changed.slot.strftime('%H:%M')} appointment (URN {changed.urn}): {told}", 15000)

        self._run(lambda: session.record(appointment_id, happening), shown)

    def _safety_signal(self, appointment_id: str, signal: object, held: bool) -> None:
        """A safety signal from the victim's page, at any stage: stored and audited
        by the session, then shown everywhere (banner, queue) until acknowledged,
        with a desktop alert and the task bar flashing (fixed words, no names)."""
        from PySide6.QtWidgets import QApplication

        from ..domain.safety import DESKTOP_BODY, DESKTOP_TITLE

        QApplication.alert(self.host.window)
        self._notify_desktop(DESKTOP_TITLE, DESKTOP_BODY)
        self._pending_safety.append((appointment_id, signal, held, datetime.now(timezone.utc)))
        self.store_safety_signals()

    def store_safety_signals(self) -> None:
        """Store the signals heard so far. While the app is locked the store is
        closed: they wait here (appointment ids and times only) for the unlock."""
        session = self.host.session()
        if session is None or not self._pending_safety:
            return
        pending, self._pending_safety = self._pending_safety, []

        def store() -> None:
            for appointment_id, signal, held, at in pending:
                try:
                    session.record_safety_signal(appointment_id, signal, held=held, at=at)  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - one unknown appointment must not drop the others
                    log.exception("a safety signal could not be stored")

        def stored(_r: object) -> None:
            if self.host.session() is session:
                self.host.safety_changed()

        self._run(store, stored)

    def start_call(self, a: Appointment) -> None:
        session = self.host.session()
        if session is None or self._not_ready():
            return

        def check() -> tuple[Appointment, RecordingPlan | BaseException]:
            current = session.check_call(a.id)
            try:  # where the recording goes; a failure here is told in the call, not a refusal of it
                plan: RecordingPlan | BaseException = session.recording_plan(current.id)
            except Exception as exc:  # noqa: BLE001
                log.warning("no recording plan for %s: %s", current.id, type(exc).__name__)
                plan = exc
            return current, plan

        def allowed(checked: tuple[Appointment, RecordingPlan | BaseException]) -> None:
            if self.host.session() is session:
                self._open_call(*checked)

        Operation(self.host.worker, self.host.window, check).success(allowed).failure(
            lambda exc: self._refused(a, exc)).run()

    # -- the call's recording ----------------------------------------------------------
    def _start_recording(self, appointment_id: str, plan: RecordingPlan | BaseException) -> None:
        """``record_start`` to the media process, before ``start_call`` (the victim has
        consented on their page before they can be called). A refusal comes back
        through the bridge as ``RecordingStatus("failed")``, as a failure mid-call does."""
        from ..call import events as ev

        calls, bridge = self.embedded, self._bridge
        assert calls is not None and calls.engine is not None and bridge is not None
        session = self.host.session()
        if session is not None:
            self._recording_sessions[appointment_id] = session

        def refused(reason: str) -> None:
            bridge(ev.RecordingStatus(appointment_id, "failed", reason))  # type: ignore[operator]

        record = getattr(calls.engine, "record_start", None)
        if isinstance(plan, BaseException):
            refused(_recording_reason(plan))
            return
        if record is None:
            refused("recording needs the separate video process, and video runs inside the app")
            return
        future = record(appointment_id, str(plan.folder), plan.officer_recipient, plan.escrow_recipient)

        def done(f: object) -> None:  # on the channel's reader thread: only the bridge from here
            exc = f.exception()  # type: ignore[attr-defined]
            if exc is not None:
                refused(_recording_reason(exc))

        future.add_done_callback(done)

    def _recording_status(self, e: object) -> None:
        from ..domain.recording import when_recording_cannot_run

        appointment: str = getattr(e, "appointment", "")
        session = self._recording_sessions.get(appointment) or self.host.session()
        if session is None:
            return
        if getattr(e, "state", "") == "recording":
            self._run(lambda: session.record_recording_started(appointment), lambda _r: None)
            return
        self._run(lambda: session.record_recording_failed(appointment), lambda _r: None)
        problem = when_recording_cannot_run(getattr(e, "message", ""))
        self._status(problem.warning, 20000)
        if self.screen is None or self.screen.appointment != appointment:
            return  # the call is over: nothing to decide
        self._ask_recording_choice(session, appointment, problem)

    def _ask_recording_choice(self, session: Session, appointment: str, problem: object) -> None:
        """The domain rule: the officer decides whether the call goes on without recording; audited."""
        from ..domain.recording import RecordingChoice

        if self.recording_box is not None and self.recording_box.isVisible():
            self.recording_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Recording stopped",
                          f"{getattr(problem, 'warning', '')}\n\n{getattr(problem, 'question', '')}",
                          QMessageBox.StandardButton.NoButton, self.host.window)
        box.setObjectName("recordingProblemBox")
        buttons = {}
        for choice in getattr(problem, "choices", ()):
            role = (QMessageBox.ButtonRole.AcceptRole if choice is RecordingChoice.CONTINUE_WITHOUT
                    else QMessageBox.ButtonRole.DestructiveRole)
            button = box.addButton(choice.label, role)
            button.setObjectName("recordingContinue" if choice is RecordingChoice.CONTINUE_WITHOUT
                                 else "recordingEndCall")
            buttons[button] = choice

        def chosen(button: object) -> None:
            choice = buttons.get(button)  # type: ignore[call-overload]
            if choice is None or self.host.session() is not session:
                return
            self._run(lambda: session.record_recording_choice(appointment, choice), lambda _r: None)
            screen = self.screen
            if choice is RecordingChoice.END_CALL and screen is not None and screen.appointment == appointment:
                screen.end_call()

        box.buttonClicked.connect(chosen)
        self.host.keep_dialog(box)
        self.recording_box = box
        box.open()

    def _recording_ended(self, e: object) -> None:
        from ..domain.recording import RecordingOutcome

        appointment: str = getattr(e, "appointment", "")
        session = self._recording_sessions.pop(appointment, None) or self.host.session()
        if session is None:
            log.warning("a recording ended with no session to audit it")
            return
        outcome = RecordingOutcome(getattr(e, "manifest_sha256", None), getattr(e, "started_at", None),
                                   getattr(e, "ended_at", None), float(getattr(e, "duration_s", 0.0)),
                                   bool(getattr(e, "finalised", False)))
        self._run(lambda: session.record_recording_ended(appointment, outcome), lambda _r: None)
        if not outcome.finalised:
            self._status("The recording was closed unfinalised; what was recorded is kept.", 15000)
            return
        from PySide6.QtCore import QTimer

        QTimer.singleShot(WORKING_COPY_DELAY_MS, self.host.window, lambda: self._make_working_copies(appointment))

    def _make_working_copies(self, appointment_id: str) -> None:
        """After the call: the recording's working copy (recording/working_copy.py), made by
        the media process at low priority from file keys only, so that an export later
        need not wait for it. Nothing is said unless it fails (the export makes it then)."""
        session, calls = self.host.session(), self.embedded
        engine = calls.engine if calls is not None else None
        if session is None or engine is None or not hasattr(engine, "working_copy") or not engine.running:
            return

        def start() -> int:
            jobs = session.working_copy_jobs(appointment_id)
            for plan, recipients in jobs:
                future = engine.working_copy(plan.recording_id, str(plan.folder),
                                             [s.message() for s in plan.segments], recipients)
                future.add_done_callback(lambda f: f.exception() is not None and log.warning(
                    "working copy not made (%s)", type(f.exception()).__name__))
            return len(jobs)

        self._run(start, lambda _n: None)

    # -- stills ------------------------------------------------------------------------
    def capture_still(self, appointment_id: str) -> None:
        """"Capture still": the session gives the exhibit reference (refused without a
        call in progress), the media process takes and encrypts the frame, the session
        records and audits it; the window and the statement panel show it. A failure
        is said in the window and audited; the number given stays spent."""
        session, calls, screen, bridge = self.host.session(), self.embedded, self.screen, self._bridge
        if session is None or screen is None or bridge is None:
            return
        capture = getattr(calls.engine, "capture_still", None) if calls is not None and calls.engine else None
        if capture is None:
            screen.still_failed("No still: stills need the separate video process, and video runs inside the app.")
            return

        def allocated(exhibit: ExhibitReference) -> None:
            if self.host.session() is not session:
                return
            try:
                future = capture(appointment_id, str(exhibit))
            except Exception as exc:  # noqa: BLE001 - told in the window, like a failed capture
                self._still_done(StillOutcome(session, appointment_id, exhibit, None, exc))
                return

            def done(f: object) -> None:  # on the channel's reader thread: only the bridge from here
                exc = f.exception()  # type: ignore[attr-defined]
                result = None if exc else f.result()  # type: ignore[attr-defined]
                bridge(StillOutcome(session, appointment_id, exhibit, result, exc))  # type: ignore[operator]

            future.add_done_callback(done)

        def refused(exc: BaseException) -> None:
            if self.screen is not None:
                self.screen.still_failed(f"No still: {_still_reason(exc)}")

        Operation(self.host.worker, self.host.window, lambda: session.begin_still(appointment_id)).success(
            allocated).failure(refused).run()

    def _still_done(self, outcome: StillOutcome) -> None:
        from ..domain.exhibit import failure_code

        session, appointment = outcome.session, outcome.appointment
        screen = self.screen if self.screen is not None and self.screen.appointment == appointment else None
        if outcome.error is not None:
            exc = outcome.error
            code = failure_code(getattr(exc, "kind", type(exc).__name__), str(exc))
            self._run(lambda: session.record_still_failed(appointment, outcome.exhibit, code), lambda _r: None)
            if screen is not None:
                screen.still_failed(f"No still {outcome.exhibit}: {_still_reason(exc)}")
            return
        result = outcome.result
        assert result is not None

        def recorded(record: object) -> None:
            if self.screen is not None and self.screen.appointment == appointment:
                self.screen.still_taken(record.exhibit, None if record.at_s is None else record.at_text,
                                        record.recording_state)
            statement = self.host.statement_screen()
            opened = getattr(statement, "opened", None)
            if statement is not None and getattr(opened, "appointment_id", None) == appointment:
                statement.panel.add_still(record)

        def not_recorded(exc: BaseException) -> None:
            log.error("a still was taken but could not be recorded: %s", type(exc).__name__)
            if self.screen is not None:
                self.screen.still_failed(f"Still {outcome.exhibit} was saved but could not be listed: {exc}")

        Operation(self.host.worker, self.host.window,
                  lambda: session.record_still(appointment, outcome.exhibit, result)).success(recorded).failure(
            not_recorded).run()

    # -- signing on the victim's phone ------------------------------------------------
    def _phone_answer(self, e: object) -> None:
        """The phone's answer goes to the statement of that appointment, if it is open."""
        statement = self.host.statement_screen()
        opened = getattr(statement, "opened", None)
        if statement is None or getattr(opened, "appointment_id", None) != getattr(e, "appointment", None):
            log.warning("an answer from the victim's phone came with no statement open for it")
            self._status(getattr(e, "message", "") or "The victim's phone answered, but the statement is "
                         "not open: nothing was signed.", 15000)
            return
        statement.phone_event(e)

    def _open_call(self, a: Appointment, plan: RecordingPlan | BaseException | None = None) -> None:
        calls = self.embedded
        assert calls is not None and calls.engine is not None
        self._calling[a.id] = a
        from .call_screen import CallScreen

        if self.screen is None:
            self.screen = CallScreen(calls.engine, self.host.window)
            self.screen.ended.connect(self._call_ended)
            self.screen.still_requested.connect(self.capture_still)
            self.screen.set_speaker_note(calls.speaker_note)  # shown in the call, not only the status bar
            self.host.stack.addWidget(self.screen)
        screen = self.screen
        self.host.stack.setCurrentWidget(screen)
        if plan is not None:
            self._start_recording(a.id, plan)  # before start_call: the channel keeps the order
        screen.start(a.id)
        # The statement, docked beside the video; while the call is on it can be signed on the phone.
        engine = calls.engine

        def docked(statement: StatementScreen) -> None:
            screen.dock(statement)
            statement.set_phone_link(PhoneLink(engine, a.id))

        self.host.open_statement(a.id, docked)

    def _call_ended(self, appointment_id: str) -> None:
        self._record(appointment_id, Happening.CALL_ENDED)
        screen = self.host.statement_screen()
        if screen is not None:
            screen.set_phone_link(None)
        stack = self.host.stack
        if screen is not None and self.screen is not None and screen.parent() is not stack:
            stack.addWidget(screen)  # undock: go on with the statement after the call
            stack.setCurrentWidget(screen)


class PhoneLink:
    """The statement screen's way to the victim's phone in this call (``statement_screen.PhoneLink``)."""

    def __init__(self, engine: object, appointment: str):
        self.engine = engine
        self.appointment = appointment

    def send(self, review: PhoneReview) -> Future:
        return self.engine.send_statement_review(  # type: ignore[attr-defined]
            self.appointment, review.id, review.text, review.pages, review.declaration, review.kind)

    def withdraw(self, review_id: str) -> object:
        return self.engine.withdraw_statement_review(self.appointment, review_id)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StillOutcome:
    """A still's result from the media process, carried through the bridge to the GUI thread."""

    session: Session
    appointment: str
    exhibit: ExhibitReference
    result: dict[str, object] | None
    error: BaseException | None


def _still_reason(exc: BaseException) -> str:
    """Why a still was not taken, in plain words (no path, no error number)."""
    from ..domain.exhibit import failure_code

    kind, text = getattr(exc, "kind", type(exc).__name__), str(exc)
    code = failure_code(kind, text)
    if code == "disk_full":
        return "the disk is full. The call and what was recorded so far are not affected; free some space."
    if code == "no_frame":
        return "there is no video from the victim yet."
    if code == "write_error":
        return "the recording folder could not be written."
    if code == "media_unavailable":
        return "the video part of the app is restarting."
    reasons = getattr(exc, "reasons", None)
    return " ".join(reasons) if reasons else (text.strip() or kind)


def _recording_reason(exc: BaseException) -> str:
    """Why recording could not start, in plain words (no path, no traceback)."""
    kind = getattr(exc, "kind", type(exc).__name__)
    if kind in ("PermissionError", "FileExistsError", "NotADirectoryError", "FileNotFoundError", "OSError",
                "IsADirectoryError") or isinstance(exc, OSError):
        return "the recordings folder could not be written"
    if kind == "RecordingRefused":
        return str(exc)
    if type(exc).__name__ == "MediaUnavailable":
        return "the video part of the app is restarting"
    return str(exc).strip() or kind
