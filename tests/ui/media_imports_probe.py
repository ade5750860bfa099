"""Run by tests/ui/test_media_imports.py in a pytest of its own (the file name
keeps it out of the normal collection): a real call through the app, the
victim in Chromium, and then the modules the GUI's process has loaded are
written to $EVR_MODULES_OUT. Imports nothing of aiortc here (the aiortc victim
of the other call tests would load it into this process)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, datetime, timedelta

from PySide6.QtCore import Qt

from evr_desktop.domain.appointment import Appointment, OffenceType, Status, VictimDetails
from evr_desktop.ui.queue_model import APPOINTMENT_ROLE
from tests.e2e.browser import chromium, phone, playwright

WAIT_MS = 30000


def wait_until(page, expression: str, timeout: int = WAIT_MS) -> None:
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def test_a_call_in_the_app_with_the_modules_written_out(qtbot, unlocked):
    main = unlocked
    qtbot.waitUntil(lambda: main.calls.ready, timeout=WAIT_MS)
    a = Appointment(slot=datetime.now().astimezone() + timedelta(minutes=5), urn="99MI1234526",
                    offence=OffenceType.ASSAULT, victim=VictimDetails("Tegwen Invented-Probe", date(1980, 1, 1),
                                                                      "07700 900888"))
    main.session.save_appointment(a, new=True)
    main.queue.upsert(a)
    main.queue.day_enabled.setChecked(False)
    proxy = main.queue.proxy
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data(APPOINTMENT_ROLE).id == a.id)
    main.queue.table.selectRow(row)
    qtbot.mouseClick(main.queue.detail.link_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: a.id in main.calls.links, timeout=WAIT_MS)
    with playwright() as p, chromium(p) as browser:
        context = browser.new_context(**phone(p))
        page = context.new_page()
        page.goto(main.calls.links[a.id])
        page.locator("#consent-agree").click()
        page.locator("#perm-start").click()
        page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.VICTIM_WAITING, timeout=WAIT_MS)
        main.queue.table.selectRow(row)
        qtbot.mouseClick(main.queue.detail.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.calls.screen is not None and main.calls.screen.appointment is not None,
                        timeout=WAIT_MS)
        screen = main.calls.screen
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: screen.remote.frames_painted >= 10 and screen.local.frames_painted >= 3,
                        timeout=WAIT_MS)
        wait_until(page, "document.getElementById('remote-video').videoWidth > 0")
        screen.chat_input.setText("Hello from the officer")
        screen.send_chat()
        page.locator("#chat-log .from-officer >> text=Hello from the officer").wait_for(state="attached",
                                                                                       timeout=WAIT_MS)
        # The devices dialog probes hardware too: in the child.
        main.actions.devices.trigger()
        qtbot.waitUntil(lambda: getattr(main.calls, "devices_dialog", None) is not None, timeout=WAIT_MS)
        main.calls.devices_dialog.reject()
        screen.end_call()  # (End call's button asks first: tests/ui/test_forms_and_call_window.py)
        page.locator("#screen-ended").wait_for(state="visible", timeout=WAIT_MS)
        context.close()
    with open(os.environ["EVR_MODULES_OUT"], "w", encoding="utf-8") as fh:
        json.dump({"modules": sorted(sys.modules), "media_pid": getattr(main.calls.embedded, "pid", None),
                   "painted": screen.remote.frames_painted}, fh)
