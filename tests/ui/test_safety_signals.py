"""The victim's safety signals reach the officer wherever they are in the app
(issue 11, item 3): "I can't talk freely" and Quick exit, pressed in the
waiting room, during the call and after it, each give the banner (until
acknowledged), the desktop alert, the audit entry and the queue row's status,
through the real main window, media process and rendezvous, with a victim
peer speaking the page's protocol (the page itself is tests/e2e/test_victim_page.py)."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from evr_desktop.domain.appointment import OffenceType, Status
from evr_desktop.domain.safety import DESKTOP_TITLE
from evr_desktop.rendezvous.server import COOKIE
from evr_desktop.ui.queue_model import COL_STATUS
from tests.e2e.test_call_engine import Victim
from tests.ui.test_call_flow import _session, book_and_send_link, on_loop, select
from tests.ui.test_call_flow import victim_loop as victim_loop  # the fixture

pytestmark = pytest.mark.slow


class Alerts:
    """Counts the desktop alerts (the controller's notifier call and the task-bar flash)."""

    def __init__(self, main, monkeypatch):
        self.desktop: list[tuple[str, str]] = []
        self.flashes = 0
        real = main.calls._notify_desktop
        monkeypatch.setattr(main.calls, "_notify_desktop",
                            lambda title, text: (self.desktop.append((title, text)), real(title, text)))
        monkeypatch.setattr(QApplication, "alert", lambda *_a: setattr(self, "flashes", self.flashes + 1))

    @property
    def safety(self) -> list[tuple[str, str]]:
        return [d for d in self.desktop if d[0] == DESKTOP_TITLE]


def _row_status(main, appointment_id: str) -> str:
    m = main.queue.model
    for r in range(m.rowCount()):
        if m.appointment(r).id == appointment_id:
            return m.data(m.index(r, COL_STATUS))
    raise AssertionError("not in the queue")


def _banner(main) -> str:
    b = main.safety_banner
    return " ".join(w.text() for line in b.lines for w in line.findChildren(type(b.more))) if b.isVisible() else ""


def _safety_actions(main, appointment_id: str) -> list[str]:
    return [e.action for e in main.session.audit.entries()
            if e.object_id == appointment_id and e.action.startswith("safety.")]


def _join(qtbot, main, victim_loop, name: str, urn: str):
    a = book_and_send_link(qtbot, main, name, "07700 900777", urn, OffenceType.ASSAULT)
    base, token = main.calls.links[a.id].split("/j/")
    http = on_loop(victim_loop, _session())
    victim = Victim(base, http)
    on_loop(victim_loop, victim.join(token))
    qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.VICTIM_WAITING, timeout=10000)
    return a, victim, http


def _quick_exit(victim_loop, victim) -> int:
    async def go() -> int:  # what the page does: navigate to the link's exit route, with its cookie
        async with victim.http.get(f"{victim.base}/j/{victim.token}/exit", allow_redirects=False,
                                   headers={"Cookie": f"{COOKIE}={victim.cookie}"}) as r:
            return r.status

    return on_loop(victim_loop, go())


def _flag_over_http(victim_loop, victim) -> int:
    async def go() -> int:  # the page's fallback when its socket is down (after the call)
        async with victim.http.post(f"{victim.base}/j/{victim.token}/flag",
                                    headers={"Cookie": f"{COOKIE}={victim.cookie}"}) as r:
            return r.status

    return on_loop(victim_loop, go())


def test_signals_in_the_waiting_room_reach_the_officer_until_acknowledged(qtbot, unlocked, victim_loop, monkeypatch):
    main = unlocked
    alerts = Alerts(main, monkeypatch)
    a, victim, http = _join(qtbot, main, victim_loop, "Nesta Invented-Waiting", "99SF1111126")
    try:
        # "I can't talk freely", in the waiting room.
        on_loop(victim_loop, victim.ws.send_json({"type": "flag", "kind": "cannot-talk"}))
        qtbot.waitUntil(lambda: "cannot talk freely in the waiting room" in _banner(main), timeout=10000)
        assert f"URN {a.urn}" in _banner(main) and a.victim.full_name not in _banner(main)
        qtbot.waitUntil(lambda: _row_status(main, a.id) == "Victim waiting · ⚠ Can't talk freely", timeout=5000)
        assert _safety_actions(main, a.id) == ["safety.cant_talk.waiting"]
        assert alerts.safety and all(a.victim.full_name not in t + b for t, b in alerts.desktop)
        assert alerts.flashes >= 1
        # Quick exit, still in the waiting room: the victim has gone, the link is locked.
        assert _quick_exit(victim_loop, victim) == 303
        qtbot.waitUntil(lambda: "pressed Quick exit in the waiting room" in _banner(main), timeout=10000)
        qtbot.waitUntil(lambda: _row_status(main, a.id) == "Link sent · ⚠ Quick exit", timeout=5000)
        assert "left the waiting room" in main.window.statusBar().currentMessage()
        assert _safety_actions(main, a.id) == ["safety.cant_talk.waiting", "safety.quick_exit.waiting"]
        assert len(alerts.safety) == 2
        # The banner is above every page: it is still there on the statement screen.
        main.open_statement(a.id)
        qtbot.waitUntil(lambda: main._statement_screen is not None
                        and main.stack.currentWidget() is main._statement_screen, timeout=10000)
        assert main.safety_banner.isVisible()
        keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
        if keep:
            main.window.grab().save(os.path.join(keep, "safety-banner.png"))
        # "Show appointment" goes back to the queue with its row selected.
        qtbot.mouseClick(main.safety_banner.lines[0].findChild(type(main.queue.new_button), "safetyShow"),
                         Qt.MouseButton.LeftButton)
        assert main.stack.currentWidget() is main.queue and main.queue.selected().id == a.id
        # Acknowledged: the banner and the row's marker go; the signals stay on record.
        qtbot.mouseClick(main.safety_banner.lines[0].findChild(type(main.queue.new_button), "safetyAcknowledge"),
                         Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not main.safety_banner.isVisible(), timeout=5000)
        qtbot.waitUntil(lambda: _row_status(main, a.id) == "Link sent", timeout=5000)
        assert _safety_actions(main, a.id)[-2:] == ["safety.acknowledged.cant_talk", "safety.acknowledged.quick_exit"]
        assert len(main.session.safety.alerts(open_only=False, appointment_id=a.id)) == 2
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())


def test_signals_during_and_after_the_call(qtbot, unlocked, victim_loop, monkeypatch):
    main = unlocked
    alerts = Alerts(main, monkeypatch)
    a, victim, http = _join(qtbot, main, victim_loop, "Olwen Invented-Called", "99SF2222226")
    try:
        select(main, a.id)
        qtbot.mouseClick(main.queue.detail.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.calls.screen is not None and main.calls.screen.state.text() == "Connected",
                        timeout=20000)
        screen = main.calls.screen
        # During the call: the call window says so, and so do the banner and the row.
        on_loop(victim_loop, victim.ws.send_json({"type": "flag", "kind": "cannot-talk"}))
        qtbot.waitUntil(lambda: "cannot talk freely during the call" in _banner(main), timeout=10000)
        assert screen.flag.isVisible() and "cannot talk freely" in screen.flag.text()
        qtbot.waitUntil(lambda: _row_status(main, a.id) == "In call · ⚠ Can't talk freely", timeout=5000)
        # The officer ends the call; the victim's page has closed its socket.
        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.CALL_ENDED, timeout=10000)
        # After the call: the flag comes over HTTP, then a quick exit.
        assert _flag_over_http(victim_loop, victim) == 200
        qtbot.waitUntil(lambda: "cannot talk freely after the call" in _banner(main), timeout=10000)
        assert _quick_exit(victim_loop, victim) == 303
        qtbot.waitUntil(lambda: "pressed Quick exit after the call" in _banner(main), timeout=10000)
        qtbot.waitUntil(lambda: _row_status(main, a.id) == "Call ended · ⚠ Quick exit", timeout=5000)
        assert _safety_actions(main, a.id) == ["safety.cant_talk.call", "safety.cant_talk.after",
                                               "safety.quick_exit.after"]
        assert len(alerts.safety) == 3 and alerts.flashes >= 3
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())


def test_a_quick_exit_in_the_call_ends_it(qtbot, unlocked, victim_loop, monkeypatch):
    main = unlocked
    Alerts(main, monkeypatch)
    a, victim, http = _join(qtbot, main, victim_loop, "Tegwen Invented-Exit", "99SF3333326")
    try:
        select(main, a.id)
        qtbot.mouseClick(main.queue.detail.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.calls.screen is not None and main.calls.screen.state.text() == "Connected",
                        timeout=20000)
        assert _quick_exit(victim_loop, victim) == 303
        qtbot.waitUntil(lambda: "pressed Quick exit during the call" in _banner(main), timeout=10000)
        qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.CALL_ENDED, timeout=10000)
        assert _safety_actions(main, a.id) == ["safety.quick_exit.call"]
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())
