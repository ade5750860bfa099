"""The main window: a thin shell that switches between screens.

It contains a QMainWindow rather than inheriting from one (napari's Window),
owns no business rules, and reaches the services only through background
operations. A locked window shows the unlock page and nothing else: victim
data is dropped from the model, dialogs holding it are closed, and the title
never carries a victim's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QStackedWidget, QWidget

from ..services import Refused, Session, Workspace
from .actions import Actions
from .idle import InactivityWatcher
from .operations import Operation, Worker
from .unlock_page import UnlockPage
from .widgets import FirstPaint, remember_geometry

# Only what the unlock screen needs is imported above: the first paint should
# not wait for the appointment domain, the vault's internals or the call
# machinery (each is imported where first used).
if TYPE_CHECKING:
    from ..domain.appointment import Appointment, Status
    from ..domain.safety import SafetyAlert
    from ..statement.service import OpenedStatement
    from .appointment_dialog import AppointmentDialog
    from .call_controller import CallController
    from .queue_screen import QueueScreen
    from .safety_banner import SafetyBanner
    from .setup_page import SetupPage
    from .statement_screen import StatementScreen

log = logging.getLogger(__name__)
APP_TITLE = "EVR Desktop"


def plain_message(exc: BaseException) -> str:
    """What the officer sees for an error: the domain's own words, never a traceback."""
    from ..store.base import StoreError
    from ..vault.vault import VaultError

    if isinstance(exc, Refused):
        return " ".join(exc.reasons)
    if isinstance(exc, (VaultError, StoreError, ValueError)):
        return str(exc)
    if type(exc) is ConnectionError and str(exc):  # the call engine's own sentence (rendezvous refused or away)
        return str(exc)
    if isinstance(exc, OSError):
        return f"The disk could not be written or read ({exc.strerror or exc}). Nothing was lost."
    return f"Something went wrong ({type(exc).__name__}). Nothing was saved; please try again or call IT."


class MainWindow:
    def __init__(self, workspace: Workspace, worker: Worker):
        self.workspace = workspace
        self.worker = worker
        self.session: Session | None = None
        self._dialogs: list[AppointmentDialog] = []
        self.on_queue_ready: Callable[[int], None] | None = None

        self.window = QMainWindow()
        self.window.setObjectName("mainWindow")
        self.window.resize(1280, 760)
        remember_geometry(self.window, "main")  # clamped to the screen (1366x768, or 1280x720 at 150%)
        self.actions = Actions.create(self.window)
        self.stack = QStackedWidget(self.window)
        self.starting = QLabel("Starting…", self.window)
        self.unlock_page = UnlockPage(self.window)
        self.error_page = QLabel(self.window)
        self.error_page.setObjectName("errorPage")
        self.error_page.setWordWrap(True)
        for page in (self.starting, self.unlock_page, self.error_page):
            self.stack.addWidget(page)
        # The set-up page and the queue are built on first use: the first paint
        # (the unlock screen) should not wait for pages it does not show.
        self._setup_page: SetupPage | None = None
        self._queue: QueueScreen | None = None
        self._statement_screen: StatementScreen | None = None
        self._calls: CallController | None = None
        self._start_calls_after_paint = False
        self._page_filters: list[QObject] = []
        self._close_guard: QObject | None = None
        self.window.setCentralWidget(self.stack)
        self._safety_banner: SafetyBanner | None = None  # built after unlock, above every page
        menu = self.window.menuBar().addMenu("&Appointments")
        for a in (self.actions.new_appointment, self.actions.edit_appointment, self.actions.find,
                  self.actions.new_statement):
            menu.addAction(a)
        menu.addAction(self.actions.outbox)
        menu.addAction(self.actions.devices)
        menu.addSeparator()
        menu.addAction(self.actions.lock)
        menu.addAction(self.actions.quit)

        self.idle = InactivityWatcher(workspace.settings.lock_after_minutes, self.window)
        self.idle.idle.connect(self._idle)
        self.actions.lock.triggered.connect(self.lock_asked)
        self.actions.quit.triggered.connect(self.window.close)
        self.actions.new_appointment.triggered.connect(self.new_appointment)
        self.actions.edit_appointment.triggered.connect(
            lambda: self._queue is not None and (a := self._queue.selected()) and self.edit_appointment(a)
        )
        self.actions.find.triggered.connect(lambda: self.queue.search.setFocus())
        self.actions.new_statement.triggered.connect(self.new_standalone_statement)
        self.actions.devices.triggered.connect(lambda: self.calls.choose_devices())
        self.actions.outbox.triggered.connect(lambda: self.calls.show_outbox())
        self.unlock_page.unlock_requested.connect(self._unlock)
        self._show_locked_state()

    # -- pages, built on first use ----------------------------------------------
    @property
    def calls(self) -> CallController:
        """The call machinery (engine, rendezvous, call screen), made on first use."""
        if self._calls is None:
            from .call_controller import CallController, CallHost

            def keep(dialog: QWidget) -> None:
                self._dialogs.append(dialog)  # type: ignore[arg-type]  closed on lock like the others
                dialog.finished.connect(  # type: ignore[attr-defined]
                    lambda _r: dialog in self._dialogs and self._dialogs.remove(dialog))  # type: ignore[arg-type]

            self._calls = CallController(CallHost(
                window=self.window, worker=self.worker, stack=self.stack,
                session=lambda: self.session, queue=lambda: self.queue, show_error=self._error,
                keep_dialog=keep,
                open_statement=lambda appointment_id, show: self._open_statement(
                    lambda s: s.statements.open_for_appointment(appointment_id), show=show),
                statement_screen=lambda: self._statement_screen,
                safety_changed=self.refresh_safety,
            ))
        return self._calls

    def watch_pages(self, event_filter: QObject) -> None:
        """Install an event filter on the set-up and unlock pages (now or when built)."""
        self._page_filters.append(event_filter)
        self.unlock_page.installEventFilter(event_filter)
        if self._setup_page is not None:
            self._setup_page.installEventFilter(event_filter)

    @property
    def setup_page(self) -> SetupPage:
        if self._setup_page is None:
            from .setup_page import SetupPage

            page = SetupPage(demo=self.workspace.paths.demo, parent=self.window)
            page.create_requested.connect(self._create)
            for f in self._page_filters:
                page.installEventFilter(f)
            self.stack.addWidget(page)
            self._setup_page = page
        return self._setup_page

    @property
    def queue(self) -> QueueScreen:
        if self._queue is None:
            from .queue_screen import QueueScreen

            q = QueueScreen(self.window)
            q.new_requested.connect(self.new_appointment)
            q.edit_requested.connect(self.edit_appointment)
            q.status_requested.connect(self._change_status)
            q.viewed.connect(self._audit_view)
            q.statement_requested.connect(lambda a: self.open_statement(a.id))
            q.vps_requested.connect(lambda a: self.open_statement(a.id, "vps"))
            q.link_requested.connect(self.calls.send_link)
            q.call_requested.connect(self.calls.start_call)
            q.recordings_requested.connect(self.show_recordings)
            q.export_requested.connect(self.export_evidence)
            self.stack.addWidget(q)
            self._queue = q
        return self._queue

    def _statement_screen_for(self, templates: object) -> StatementScreen:
        if self._statement_screen is None:
            from .statement_panel import StatementPanel
            from .statement_screen import StatementScreen

            def run(fn, ok, fail) -> None:  # noqa: ANN001
                Operation(self.worker, screen, fn).success(ok).failure(fail).run()

            panel = StatementPanel(templates, self.window)  # type: ignore[arg-type]
            screen = StatementScreen(
                panel, run, lambda: self.session.statements if self.session else None, self.window
            )
            screen.back_requested.connect(self._back_to_queue)
            self.stack.addWidget(screen)
            self._statement_screen = screen
        return self._statement_screen

    # -- statements -------------------------------------------------------------
    def open_statement(self, appointment_id: str, statement_type: str = "witness") -> None:
        """``statement_type``: a ``StatementType`` value (the module loads on
        first use, not before the first paint)."""
        from ..domain.statement_doc import StatementType

        kind = StatementType(statement_type)
        self._open_statement(lambda s: s.statements.open_for_appointment(appointment_id, kind))

    def new_standalone_statement(self) -> None:
        self._open_statement(lambda s: s.statements.open_standalone())

    def _open_statement(
        self, opener: Callable[[Session], OpenedStatement], show: Callable[[StatementScreen], None] | None = None
    ) -> None:
        session = self.session
        if session is None:
            return

        def load() -> tuple[object, OpenedStatement]:
            return session.statements.templates(), opener(session)

        def loaded(result: tuple[object, OpenedStatement]) -> None:
            if self.session is not session:
                return
            templates, opened = result
            screen = self._statement_screen_for(templates)
            screen.show_statement(opened)
            if show is not None:
                show(screen)
            else:
                if screen.parent() is not self.stack:
                    self.stack.addWidget(screen)
                self.stack.setCurrentWidget(screen)
            screen.panel.narrative.setFocus()

        Operation(self.worker, self.window, load).success(loaded).failure(self._error).run()

    def _back_to_queue(self) -> None:
        self.stack.setCurrentWidget(self.queue)
        self.refresh()

    # -- start-up -------------------------------------------------------------
    def start(self, passphrase: str | None = None) -> None:
        """Read the profile in the background, then show set-up or unlock."""

        def load() -> tuple[bool, str]:
            self.workspace.start()
            if self.workspace.needs_setup:
                return True, ""
            return False, self.workspace.header().officer.display

        def loaded(result: tuple[bool, str]) -> None:
            needs_setup, officer = result
            self.idle.set_timeout_ms(self.workspace.settings.lock_after_minutes * 60_000)
            if needs_setup:
                self.stack.setCurrentWidget(self.setup_page)
                if passphrase and self.workspace.paths.demo:
                    from .setup_page import DEMO_OFFICER

                    self.setup_page.busy()
                    self._create(DEMO_OFFICER, passphrase, None)
            else:
                self.unlock_page.set_officer(f"Unlock as {officer}")
                self.stack.setCurrentWidget(self.unlock_page)
                self.unlock_page.reset()
                if passphrase:
                    self.unlock_page.busy()
                    self._unlock(passphrase)

        if self.workspace.paths.vault.exists():
            # The usual case: show the unlock screen at once (one stat, no
            # reading), with the button off until the profile has been checked.
            self.stack.setCurrentWidget(self.unlock_page)
            self.unlock_page.button.setEnabled(False)
            self.unlock_page.set_officer("Checking the profile…")
        Operation(self.worker, self.window, load).success(loaded).failure(self._fatal).run()

    def _fatal(self, exc: BaseException) -> None:
        self.error_page.setText(
            "<h2>EVR Desktop cannot open this profile</h2><p>"
            + plain_message(exc).replace("<", "&lt;")
            + "</p><p>Nothing was changed. Call IT and quote this message.</p>"
        )
        self.stack.setCurrentWidget(self.error_page)
        log.error("profile could not be opened: %s", type(exc).__name__)

    # -- set-up and unlock ----------------------------------------------------
    def _create(self, officer: object, passphrase: str, provisioning: object) -> None:
        op = Operation(
            self.worker, self.window, lambda: self.workspace.create(officer, passphrase, provisioning)  # type: ignore[arg-type]
        )
        op.success(self._unlocked).failure(lambda e: self.setup_page.failed(plain_message(e))).run()

    def _unlock(self, passphrase: str) -> None:
        from ..vault.vault import WrongPassphrase

        def failed(exc: BaseException) -> None:
            self.unlock_page.failed(plain_message(exc), isinstance(exc, WrongPassphrase))

        Operation(self.worker, self.window, lambda: self.workspace.unlock(passphrase)).success(
            self._unlocked
        ).failure(failed).run()

    def _unlocked(self, session: Session) -> None:
        self.session = session
        self.unlock_page.set_officer(f"Unlock as {session.officer.display}")
        self.unlock_page.succeeded()
        self.actions.set_unlocked(True)
        mode = " — DEMO" if session.vault.header.is_demo else ""
        self.window.setWindowTitle(f"{APP_TITLE}{mode} — {session.officer.display}")
        self.stack.setCurrentWidget(self.queue)
        self.idle.start()
        self.refresh()
        self._start_calls_after_paint = True
        if self._close_guard is None:  # installed after the first paint: nothing to guard before a call
            from .widgets import CloseGuard

            self._close_guard = CloseGuard(self._may_quit, self.window)
            self.window.installEventFilter(self._close_guard)

    def refresh(self) -> None:
        session = self.session
        if session is None:
            return

        def loaded(items: list[Appointment]) -> None:
            if self.session is not session:  # locked meanwhile: drop the data
                return
            self.queue.set_appointments(items)
            if self._calls is not None:
                self._calls.store_safety_signals()  # heard while locked
            self.refresh_safety()
            log.info("queue ready: %d appointments", len(items))
            if self.on_queue_ready:
                self.on_queue_ready(len(items))
            if self._start_calls_after_paint:
                self._start_calls_after_paint = False
                self._start_calls_when_painted()

        Operation(self.worker, self.window, session.list_appointments).success(loaded).failure(self._error).run()

    def _start_calls_when_painted(self) -> None:
        """Start the call engine (aiortc, codecs, the loopback rendezvous) once
        the unlocked queue has been painted with its rows, not alongside it:
        the engine's imports hold the GIL on the worker while every table cell
        the GUI paints calls into Python, and starting both at once tripled
        unlock-to-queue (~0.5 -> ~1.5 s, bench/startup.py B)."""
        viewport = self.queue.table.viewport()
        started = False

        def start() -> None:
            nonlocal started
            if started:
                return
            started = True
            import shiboken6

            if not shiboken6.isValid(viewport):  # the window closed first (the fallback timer outlives it)
                return
            viewport.removeEventFilter(starter)
            if self.session is not None:
                QTimer.singleShot(0, self.calls.start)

        starter = FirstPaint(start, self.window)
        viewport.installEventFilter(starter)
        viewport.update()
        QTimer.singleShot(2000, start)  # a hidden or minimised window is never painted

    # -- locking --------------------------------------------------------------
    def _show_locked_state(self) -> None:
        self.window.setWindowTitle(f"{APP_TITLE} — locked")
        self.actions.set_unlocked(False)

    def _idle(self) -> None:
        """No input for the set time: lock, unless a call is under way (talking
        to the victim is activity even when nobody touches the keyboard)."""
        if self._calls is not None and self._calls.in_call:
            self.idle.start()
            return
        self.lock()

    def _may_quit(self) -> bool:
        """Closing the window (quitting) with a call open asks first."""
        screen = self._calls.screen if self._calls is not None else None
        return screen is None or screen.confirm_leave("Quit EVR Desktop")

    def lock_asked(self) -> None:
        """Ctrl+L or the menu: with a call open, ask first (the idle lock does not ask)."""
        if self._calls is None or self._calls.screen is None or self._calls.screen.confirm_leave("Lock the app"):
            self.lock()

    def lock(self) -> None:
        if self._calls is not None and self._calls.in_call:
            assert self._calls.screen is not None
            self._calls.screen.end_call()  # a locked app shows nothing, so no call goes on behind it
        if self._statement_screen is not None:
            # Queued on the single worker ahead of session.lock(): nothing typed is lost.
            self._statement_screen.save_now()
            self._statement_screen.clear()
        session, self.session = self.session, None
        for dialog in list(self._dialogs):
            dialog.reject()
        self._dialogs.clear()
        if self._queue is not None:
            self._queue.clear()
        if self._safety_banner is not None:
            self._safety_banner.set_alerts([], str)
        self.idle.stop()
        self._show_locked_state()
        self.stack.setCurrentWidget(self.unlock_page)
        self.unlock_page.reset()
        if session is not None:
            Operation(self.worker, None, session.lock).failure(self._error).run()
        log.info("locked")

    # -- the victims' safety signals ---------------------------------------------
    @property
    def safety_banner(self) -> SafetyBanner:
        """The banner above every page (queue, statement, call), built on first
        use after the unlock: the first paint should not wait for it."""
        if self._safety_banner is None:
            from PySide6.QtWidgets import QVBoxLayout

            from .safety_banner import SafetyBanner

            banner = self._safety_banner = SafetyBanner(self.window)
            banner.show_requested.connect(self._show_appointment)
            banner.acknowledge_requested.connect(self._acknowledge_safety)
            self.window.takeCentralWidget()  # the stack, kept
            central = QWidget(self.window)
            column = QVBoxLayout(central)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(0)
            column.addWidget(banner)
            column.addWidget(self.stack, 1)
            self.window.setCentralWidget(central)
        return self._safety_banner

    def refresh_safety(self) -> None:
        """Show the open safety signals: the banner and the queue's rows."""
        session = self.session
        if session is None:
            return

        def shown(alerts: list[SafetyAlert]) -> None:
            from ..domain.safety import queue_marker

            if self.session is not session:
                return
            self.safety_banner.set_alerts(alerts, self._describe)
            markers: dict[str, str] = {}
            for alert in alerts:
                marker = queue_marker([a for a in alerts if a.appointment_id == alert.appointment_id])
                if marker is not None:
                    markers[alert.appointment_id] = marker
            self.queue.set_safety(markers)

        Operation(self.worker, self.window, session.safety_alerts).success(shown).failure(self._error).run()

    def _describe(self, appointment_id: str) -> str:
        """How the banner names an appointment: its time and URN, never the victim."""
        a = self.queue.find(appointment_id) if self._queue is not None else None
        if a is None:
            return "An appointment"
        return f"{a.slot.strftime('%H:%M')} appointment, URN {a.urn}"

    def _show_appointment(self, appointment_id: str) -> None:
        if self.session is None:
            return
        self.stack.setCurrentWidget(self.queue)
        self.queue.select_appointment(appointment_id)

    def _acknowledge_safety(self, appointment_id: str) -> None:
        session = self.session
        if session is None:
            return

        def failed(exc: BaseException) -> None:
            from ..store.base import NotFound

            if not isinstance(exc, NotFound):  # acknowledged already: nothing to say
                self._error(exc)
            self.refresh_safety()

        Operation(self.worker, self.window, lambda: session.acknowledge_safety(appointment_id)).success(
            lambda _done: self.refresh_safety()).failure(failed).run()

    # -- appointments ---------------------------------------------------------
    def new_appointment(self) -> None:
        if self.session is not None:
            self._open_dialog(None)

    def edit_appointment(self, a: Appointment) -> None:
        if self.session is not None:
            self._open_dialog(a)

    def _open_dialog(self, existing: Appointment | None) -> AppointmentDialog:
        from .appointment_dialog import AppointmentDialog

        dialog = AppointmentDialog(self.window, existing)
        dialog.addAction(self.actions.lock)  # Ctrl+L works from inside the dialog too
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda _r: self._dialogs.remove(dialog) if dialog in self._dialogs else None)
        dialog.submitted.connect(lambda a: self._save(dialog, a, new=existing is None))
        dialog.open()
        return dialog

    def _save(self, dialog: AppointmentDialog, a: Appointment, new: bool) -> None:
        session = self.session
        if session is None:
            return

        in_person = dialog.in_person

        def saved(stored: Appointment) -> None:
            if self.session is session:
                self.queue.upsert(stored)
                self.window.statusBar().showMessage(f"Saved appointment {stored.urn}", 5000)
            dialog.saved()

        Operation(self.worker, dialog, lambda: session.save_appointment(a, new=new, in_person=in_person)).success(
            saved).failure(
            lambda e: dialog.show_refusal([plain_message(e)])
        ).run()

    def _change_status(self, a: Appointment, status: Status) -> None:
        session = self.session
        if session is None:
            return
        Operation(self.worker, self.window, lambda: session.change_status(a.id, status)).success(
            lambda changed: self.session is session and self.queue.upsert(changed)
        ).failure(self._error).run()

    def _audit_view(self, appointment_id: str) -> None:
        # The session reads the appointment and audits the consultation: one rule, one place.
        session = self.session
        if session is not None:
            Operation(self.worker, None, lambda: session.view_appointment(appointment_id)).failure(self._error).run()

    def export_evidence(self, a: Appointment) -> None:
        """The case's evidence bundle, into a folder the officer picks (``ui.export_flow``)."""
        session = self.session
        if session is None:
            return
        from .export_flow import export_evidence

        calls = self._calls.embedded if self._calls is not None else None
        export_evidence(self.window, self.worker, session, a, self._error,
                        lambda text: self.window.statusBar().showMessage(text, 15000),
                        engine=getattr(calls, "engine", None))

    def show_recordings(self, a: Appointment) -> None:
        """The appointment's recordings (``ui.recordings_dialog``), and the player for one."""
        session = self.session
        if session is None:
            return
        from .recordings_dialog import RecordingsDialog

        dialog: RecordingsDialog

        def load() -> None:
            Operation(self.worker, dialog, lambda: session.list_recordings(a.id)).success(dialog.show_items).failure(
                lambda e: dialog.show_error(plain_message(e))).run()

        dialog = RecordingsDialog(a.urn, load, self.window)
        dialog.addAction(self.actions.lock)
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda _r: self._dialogs.remove(dialog) if dialog in self._dialogs else None)
        dialog.play_requested.connect(lambda r: self._play_recording(dialog, a, r.folder.name))
        dialog.open()
        dialog.refresh()

    def _play_recording(self, dialog: QWidget, a: Appointment, recording_id: str) -> None:
        session = self.session
        calls = self._calls.embedded if self._calls is not None else None
        engine = getattr(calls, "engine", None)
        if session is None or dialog is None:
            return
        if engine is None or not hasattr(engine, "player_open") or not engine.running:
            self._error(Refused(["Playback needs the video part, which is not running yet. Try again in a "
                                 "moment."]))
            return

        def opened(plan: object) -> None:
            from .player_window import PlayerWindow

            if self.session is not session:
                return
            player = PlayerWindow(engine, plan, a.urn)
            player.addAction(self.actions.lock)
            self._dialogs.append(player)
            player.destroyed.connect(lambda *_: self._dialogs.remove(player) if player in self._dialogs else None)
            player.show()
            player.start()

        Operation(self.worker, dialog, lambda: session.open_recording(a.id, recording_id)).success(opened).failure(
            self._error).run()

    def _error(self, exc: BaseException) -> None:
        log.error("operation failed: %s", type(exc).__name__)
        # Non-blocking: a modal exec() would spin a nested event loop.
        box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE, plain_message(exc), parent=self.window)
        box.setObjectName("errorBox")
        box.open()

    def shutdown(self) -> None:
        """Stop the call engine and rendezvous (on quit)."""
        if self._calls is not None:
            self._calls.shutdown()

    def show(self) -> None:
        self.window.show()

    @property
    def widget(self) -> QWidget:
        return self.window
