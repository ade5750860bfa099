"""Issue 4's end-to-end: the real officer app (pytest-qt, offscreen) and the
victim's real page in headless Debian Chromium (phone emulation, fake camera
and microphone), through the app's own loopback rendezvous."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from evr_desktop.domain.appointment import OffenceType, Status
from tests.e2e.browser import chromium, phone, playwright
from tests.e2e.test_victim_page import wait_until
from tests.ui.test_call_flow import book_and_send_link, select

pytestmark = pytest.mark.slow
WAIT_MS = 20000


def test_app_and_chromium_victim_call_end_to_end(qtbot, unlocked):
    main = unlocked
    a = book_and_send_link(
        qtbot, main, "Eirlys Invented-Browser", "07700 900555", "99CR1234526", OffenceType.BURGLARY_THEFT
    )

    with playwright() as p, chromium(p) as browser:
        context = browser.new_context(**phone(p))
        page = context.new_page()
        page.goto(main.calls.links[a.id])
        page.locator("#consent-agree").click()
        page.locator("#perm-start").click()
        page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT_MS)
        # The queue shows the victim waiting.
        qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.VICTIM_WAITING, timeout=10000)
        qtbot.waitUntil(lambda: (select(main, a.id), main.queue.detail.fields["status"].text())[1] == "Victim waiting",
                        timeout=10000)

        # The officer starts the call.
        qtbot.mouseClick(main.queue.detail.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: main.calls.screen is not None and main.calls.screen.appointment is not None, timeout=10000
        )
        screen = main.calls.screen
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=WAIT_MS)
        page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_MS)
        # The call is recorded: the officer's red indicator, and the phone's, shown
        # only once the recorder (in the media process) is actually running.
        qtbot.waitUntil(lambda: screen.recording.isVisible() and "Recording" in screen.recording.text(),
                        timeout=WAIT_MS)
        page.locator("#rec-indicator").wait_for(state="visible", timeout=WAIT_MS)
        assert page.locator("#rec-indicator").inner_text().strip() == "Recording"
        # Video both ways: painted in the call window, playing on the phone.
        qtbot.waitUntil(lambda: screen.remote.frames_painted >= 10, timeout=WAIT_MS)
        wait_until(page, "document.getElementById('remote-video').videoWidth > 0", timeout=WAIT_MS)
        # Audio too: the victim's fake microphone reaches the engine, and the
        # officer's tone plays in the page (its audio track is live and unmuted).
        # (The engine runs in the media process: its counters come back through call_info.)
        engine = main.calls.embedded.engine

        def info() -> dict:
            return engine.call_info(a.id).result(10)

        qtbot.waitUntil(lambda: info()["frames_in"]["audio"] > 25, timeout=WAIT_MS)
        # Chromium marks the last packet of each video frame, so the officer's
        # jitter buffer completes frames on it, not one frame interval later.
        jitter = info()["jitter"]
        assert jitter["by_marker"] >= 10 and jitter["by_timestamp"] <= 1, jitter
        wait_until(
            page,
            "document.getElementById('remote-video').srcObject.getAudioTracks()"
            ".some(t => t.readyState === 'live' && !t.muted)",
            timeout=WAIT_MS,
        )
        # Chat each way.
        screen.chat_input.setText("Hello from the officer")
        screen.send_chat()
        page.locator("#chat-log .from-officer >> text=Hello from the officer").wait_for(
            state="attached", timeout=WAIT_MS
        )
        if not page.locator("#chat-input").is_visible():
            page.locator("#btn-chat").click()
        page.locator("#chat-input").fill("Hello from the victim")
        page.locator("#chat-send").click()
        qtbot.waitUntil(
            lambda: any("Hello from the victim" in screen.chat.item(i).text() for i in range(screen.chat.count())),
            timeout=WAIT_MS,
        )
        # "I can't talk freely" on the phone: the red banner in the call window.
        page.locator("#flag").click()
        qtbot.waitUntil(lambda: screen.flag.isVisible(), timeout=WAIT_MS)
        assert "cannot talk freely" in screen.flag.text()
        # The same verification code on both sides.
        wait_until(page, "document.getElementById('verification-code').hasAttribute('data-code')", timeout=WAIT_MS)
        code = page.locator("#verification-code").get_attribute("data-code")
        qtbot.waitUntil(lambda: screen.code.text().replace(" ", "").endswith(code), timeout=WAIT_MS)
        # The phone changes network (Wi-Fi to 4G): the page asks for an ICE
        # restart, the app rebuilds the connection, and both show the new code.
        page.evaluate("window.dispatchEvent(new Event('online'))")
        wait_until(page, "window.EVR.restartAsks() === 1", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: info()["auto_restarts"] == 1, timeout=WAIT_MS)
        wait_until(
            page,
            f"(document.getElementById('verification-code').getAttribute('data-code') || '{code}') !== '{code}'",
            timeout=WAIT_MS,
        )
        new_code = page.locator("#verification-code").get_attribute("data-code")
        qtbot.waitUntil(lambda: screen.code.text().replace(" ", "").endswith(new_code), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=WAIT_MS)
        painted = screen.remote.frames_painted
        qtbot.waitUntil(lambda: screen.remote.frames_painted > painted + 5, timeout=WAIT_MS)
        # The same recording goes on across the restart, and the new connection's
        # channel tells the page again.
        page.locator("#rec-indicator").wait_for(state="visible", timeout=WAIT_MS)
        keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
        if keep:
            main.window.grab().save(os.path.join(keep, "call-with-chromium.png"))
            page.screenshot(path=os.path.join(keep, "victim-in-call.png"))
        # The victim ends the call on the phone; the officer's window says so.
        # (The officer ending it is tests/ui/test_call_flow.py and the Welsh run
        # of tests/e2e/test_victim_page.py.)
        page.locator("#btn-end").click()
        page.locator("#screen-ended").wait_for(state="visible", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: screen.state.text() == "The victim ended the call.", timeout=WAIT_MS)
        assert screen.appointment is None
        context.close()
