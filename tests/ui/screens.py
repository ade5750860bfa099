"""Every window of the app on a real (virtual) screen: screenshots and geometry.

Run in a child process by ``tests/ui/test_screen_fit.py`` (a real X server
and, for 150% scaling, ``QT_SCALE_FACTOR``, both fixed before Qt starts), or
by hand to look at the screens::

    Xvfb :58 -screen 0 1366x768x24 -nolisten tcp &
    DISPLAY=:58 QT_QPA_PLATFORM=xcb PYTHONPATH=. .venv/bin/python -m tests.ui.screens /tmp/evr-shots

It sets up a demo profile in a temporary folder and walks through the set-up
page, the queue, the booking dialog, a statement with 30+ items missing, the
call window with the statement docked, history, devices and the outbox. For
each it saves ``NAME.png`` in the output folder and records every visible
top-level window's frame against the screen's available area in
``report.json`` (and, for the call, where the End button is).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QPoint, QRect, QSettings
from PySide6.QtWidgets import QApplication, QWidget

from evr_desktop.config import Paths
from evr_desktop.domain.appointment import Appointment, OffenceType, VictimDetails
from evr_desktop.services import Workspace
from evr_desktop.ui.application import build
from tests.conftest import PASSPHRASE, fast_kdf


def wait_until(condition: Any, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def settle(seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def rect(r: QRect) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


class Recorder:
    def __init__(self, out: Path):
        self.out = out
        self.report: dict[str, Any] = {"screens": {}}

    def shot(self, name: str, **extra: Any) -> dict[str, Any]:
        settle()
        app = QApplication.instance()
        screen = QApplication.primaryScreen()
        area = screen.availableGeometry()
        windows = [
            {"name": w.objectName() or type(w).__name__, "frame": rect(w.frameGeometry()),
             "inside": area.contains(w.frameGeometry())}
            for w in app.topLevelWidgets() if w.isVisible()
        ]
        screen.grabWindow(0).save(str(self.out / f"{name}.png"))
        entry = {"screen": rect(area), "windows": windows, "squeezed": squeezed_buttons(), **extra}
        self.report["screens"][name] = entry
        return entry


def squeezed_buttons() -> list[str]:
    """Visible buttons narrower than their text needs (Qt cuts the text of a
    button squeezed below its size hint): each as "window/button: width < hint"."""
    from PySide6.QtWidgets import QAbstractButton, QCheckBox, QRadioButton

    out = []
    for top in QApplication.topLevelWidgets():
        if not top.isVisible():
            continue
        for b in top.findChildren(QAbstractButton):
            if not b.isVisible() or not b.text() or isinstance(b, (QCheckBox, QRadioButton)):
                continue
            if b.width() < b.sizeHint().width() - 1:
                out.append(f"{top.objectName() or type(top).__name__}/{b.objectName() or b.text()}: "
                           f"{b.width()} < {b.sizeHint().width()}")
    return out


def visible_rect(widget: QWidget) -> dict[str, Any]:
    """Where ``widget`` is, in its window's and the screen's coordinates."""
    window = widget.window()
    top_left = widget.mapTo(window, QPoint(0, 0))
    in_window = QRect(top_left, widget.size())
    global_rect = QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size())
    area = QApplication.primaryScreen().availableGeometry()
    return {
        "visible": widget.isVisible(),
        "in_window": window.rect().contains(in_window),
        "on_screen": area.contains(global_rect),
        "rect": rect(global_rect),
    }


def run(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Window geometry is remembered in QSettings: keep this run's to itself.
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(tmp) / "settings"))
        workspace = Workspace(Paths(profile=Path(tmp) / "profile", demo=True), make_kdf=fast_kdf)
        _app, worker, main = build(workspace)
        rec = Recorder(out)
        try:
            walk(main, rec)
        finally:
            main.lock()
            wait_until(lambda: worker.pending == 0, 20, "the worker")
            main.shutdown()
            worker.shutdown()
            main.window.close()
            settle(0.2)
    (out / "report.json").write_text(json.dumps(rec.report, indent=1))
    return rec.report


def walk(main: Any, rec: Recorder) -> None:
    main.show()
    main.start()
    wait_until(lambda: main.stack.currentWidget() is main.setup_page, what="the set-up page")
    page = main.setup_page
    page.passphrase.setText("short")
    page.button.click()  # a weak passphrase: the page says why
    rec.shot("1-setup", message=page.message.text())
    page.passphrase.setText(PASSPHRASE)
    page.confirm.setText(PASSPHRASE)
    page.button.click()
    wait_until(lambda: main.stack.currentWidget() is main.queue, 30, "the queue")
    wait_until(lambda: main.queue.model.rowCount() == 12, 30, "the demo appointments")
    main.queue.table.selectRow(0)
    rec.shot("2-queue")

    dialog = main._open_dialog(None)
    wait_until(dialog.isVisible, what="the booking dialog")
    rec.shot("3-booking-dialog")
    dialog.reject()

    # A statement with 30 or more things missing before signing: an empty
    # witness statement for an offence with many prompts, a suspect named (ADVOKATE).
    session = main.session
    a = Appointment(
        slot=datetime.now().astimezone() + timedelta(minutes=5), urn="99SF1234526", offence=OffenceType.DOMESTIC_ABUSE,
        victim=VictimDetails("Ffion Invented-Screens", date(1980, 1, 1), "07700 900777", in_safe_place=True),
    )
    session.save_appointment(a, new=True)
    main.queue.upsert(a)
    main.open_statement(a.id)
    wait_until(lambda: main._statement_screen is not None and main.stack.currentWidget() is main._statement_screen,
               what="the statement")
    screen = main._statement_screen
    for editor in screen.panel.editors.values():
        if editor.field.id not in ("urn",):
            editor.set_value(None)
    screen.panel.suspect_identified.setChecked(True)
    missing = screen.panel.missing_items()
    screen.sign_button.click()  # refused: lists what is missing
    rec.shot("4-statement-missing", missing=len(missing))

    # A second version (the cleared fields, a line of narrative), so History shows a diff in words.
    screen.save_now()
    wait_until(lambda: (screen.opened.version_number or 0) >= 1 and not screen._saving, what="a first version")
    screen.panel.editors["date_of_birth"].set_value("1980-01-01")
    screen.panel.narrative.setPlainText("He came to the door at about nine.")
    screen.save_now()
    wait_until(lambda: (screen.opened.version_number or 0) >= 2, what="the second version")
    screen.show_history()
    wait_until(lambda: screen.findChild(QWidget, "historyDialog") is not None
               and screen.findChild(QWidget, "historyDialog").isVisible(), what="history")
    history = screen.findChild(QWidget, "historyDialog")
    wait_until(lambda: history.summary.text() != "Comparing…", what="the diff")
    rec.shot("5-history", diff=history.view.toPlainText())
    history.reject()
    main._back_to_queue()

    # The call window, the statement docked beside the video. The victim
    # never joins: the call waits for their phone, which is enough to see it.
    wait_until(lambda: main.calls.ready, 30, "the call engine")
    main.calls.send_link(a)  # a call needs a link first
    wait_until(lambda: a.id in main.calls.links, what="the link")
    main.calls.start_call(a)
    wait_until(lambda: main.calls.screen is not None and main.calls.screen.appointment == a.id, what="the call")
    call = main.calls.screen
    wait_until(lambda: main._statement_screen.parent() is call.splitter and main._statement_screen.isVisible(),
               what="the docked statement")
    settle(1.0)
    remote = call.remote.width() * call.remote.height()
    largest = max(
        (w for w in call.findChildren(QWidget) if w.isVisible() and w is not call.remote
         and w.window() is call.window() and not w.findChildren(QWidget) and w is not call.remote),
        key=lambda w: w.width() * w.height(),
    )
    rec.shot(
        "6-call-docked",
        end_button=visible_rect(call.end_button),
        remote_area=remote,
        statement_area=main._statement_screen.width() * main._statement_screen.height(),
        largest_other=[largest.objectName() or type(largest).__name__, largest.width() * largest.height()],
        warnings=call.warnings.text() if call.warnings.isVisible() else "",
    )
    main.calls.choose_devices()
    wait_until(lambda: getattr(main.calls, "devices_dialog", None) is not None
               and main.calls.devices_dialog.isVisible(), what="the devices dialog")
    rec.shot("7-devices")
    main.calls.devices_dialog.reject()
    call.end_call()
    wait_until(lambda: call.appointment is None, what="the end of the call")

    main._back_to_queue()
    main.actions.outbox.trigger()
    wait_until(lambda: getattr(main.calls, "outbox_dialog", None) is not None
               and main.calls.outbox_dialog.isVisible(), what="the outbox")
    rec.shot("8-outbox")
    main.calls.outbox_dialog.reject()


if __name__ == "__main__":
    report = run(Path(sys.argv[1]))
    print(json.dumps(report, indent=1))
