"""The media process dies mid-call (SIGKILL, as a codec crash or the
out-of-memory killer would do it): the window stays up and keeps answering,
the statement typed during the call is intact and saved, the officer is told
in plain words, the media process is started again, and the victim, opening
the same link again, can be called again (issue 9)."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox, QPushButton

from evr_desktop.domain.appointment import OffenceType, Status
from tests.e2e.test_call_engine import Victim
from tests.ui.test_call_flow import _session, book_and_send_link, on_loop, select, victim_loop  # noqa: F401

pytestmark = pytest.mark.slow


def call_victim(qtbot, main, a, link: str, victim_loop) -> tuple[Victim, object]:  # noqa: F811
    """The victim opens ``link`` and waits; the officer starts the call; video flows."""
    base, token = link.split("/j/")
    http = on_loop(victim_loop, _session())
    victim = Victim(base, http)
    on_loop(victim_loop, victim.join(token))
    qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.VICTIM_WAITING, timeout=15000)
    select(main, a.id)
    qtbot.mouseClick(main.queue.detail.call_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.calls.screen is not None and main.calls.screen.appointment == a.id, timeout=10000)
    screen = main.calls.screen
    qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=30000)
    painted = screen.remote.frames_painted
    qtbot.waitUntil(lambda: screen.remote.frames_painted >= painted + 5 and victim.frames["video"] >= 5, timeout=30000)
    return victim, http


def test_sigkill_of_the_media_process_mid_call(qtbot, unlocked, victim_loop, monkeypatch):  # noqa: F811 - the fixture
    main = unlocked
    a = book_and_send_link(qtbot, main, "Morwenna Invented-Crash", "07700 900777", "99MC1234526", OffenceType.ASSAULT)
    first_link = main.calls.links[a.id]
    victim, http = call_victim(qtbot, main, a, first_link, victim_loop)
    screen = main.calls.screen
    try:
        # The officer types the statement docked beside the video.
        qtbot.waitUntil(lambda: main._statement_screen is not None
                        and main._statement_screen.parent() is screen.splitter, timeout=10000)
        statement = main._statement_screen
        statement._timer.setInterval(100)
        qtbot.keyClicks(statement.panel.narrative, "He wore a red coat.")

        # The GUI thread's pulse: a 10 ms timer; its longest gap is what the officer would feel.
        ticks: list[float] = []
        pulse = QTimer()
        pulse.setInterval(10)
        pulse.timeout.connect(lambda: ticks.append(time.monotonic()))
        pulse.start()
        pid = main.calls.embedded.pid
        os.kill(pid, signal.SIGKILL)

        # The call ends on screen with a plain sentence; the window and the draft stay.
        qtbot.waitUntil(lambda: screen.appointment is None, timeout=10000)
        assert "stopped unexpectedly" in screen.state.text() and "statement is safe" in screen.state.text()
        qtbot.waitUntil(lambda: main.calls.media_lost_box is not None and main.calls.media_lost_box.isVisible(),
                        timeout=5000)
        box = main.calls.media_lost_box
        assert "The link you sent still works" in box.text()
        assert box.findChild(QPushButton, "sendNewLink") is not None  # if the victim cannot open it
        assert main.stack.currentWidget() is statement  # undocked: the statement goes on
        qtbot.keyClicks(statement.panel.narrative, " Then he ran off.")  # typing while it restarts
        qtbot.waitUntil(lambda: main.calls.ready and main.calls.embedded.pid not in (None, pid), timeout=60000)
        qtbot.wait(200)
        pulse.stop()
        gaps = [b - t for t, b in itertools.pairwise(ticks)]
        print(f"\nGUI pulse while the media process died and restarted: longest gap {max(gaps) * 1000:.0f} ms")
        assert len(ticks) > 20 and max(gaps) < 0.5, f"the GUI stalled {max(gaps) * 1000:.0f} ms"
        assert "working again" in main.window.statusBar().currentMessage() or main.calls.ready

        # The draft is intact and saved.
        assert statement.panel.narrative.toPlainText() == "He wore a red coat. Then he ran off."
        opened = statement.opened
        qtbot.waitUntil(lambda: main.session.statements.repo.latest(opened.id).content.narrative
                        == "He wore a red coat. Then he ran off.", timeout=10000)
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())

    # The victim opens the same link again (same address: the app keeps the
    # rendezvous's socket; the new media process took the link back), and a
    # new call to them works.
    victim, http = call_victim(qtbot, main, a, first_link, victim_loop)
    try:
        screen = main.calls.screen
        qtbot.waitUntil(lambda: victim.codes and victim.codes[-1][:3] in screen.code.text(), timeout=10000)
        # End call asks first; the officer says yes.
        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any(m["type"] == "bye" for m in victim.messages), timeout=10000)
        assert main.calls.embedded.restarts == 1
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())
