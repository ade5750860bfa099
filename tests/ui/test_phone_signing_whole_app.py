"""Signing on the phone as an officer does it, every part real: the app's
main window (offscreen) with the engine in its media process, the victim's
page in headless Debian Chromium (phone emulation, fake camera and
microphone) through the app's own rendezvous. The officer books, sends the
link, calls; the call is recorded and the phone shows it; the officer fills
the statement docked beside the video and presses "Sign on the phone…"; the
victim reads it on the phone, confirms, draws a signature with the pointer
and signs; the app checks the answer, makes the PDF with the drawn signature
and the officer's digital signature, and notes the moment in the recording.

tests/e2e/test_phone_signing_chromium.py is the same chain with the engine
in the test's process and goes on to the export; tests/ui/test_phone_signing_flow.py
is the statement screen's rules with a stand-in link."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from evr_desktop.domain.appointment import OffenceType, Status
from tests.e2e.browser import PageWatch, chromium, phone, playwright
from tests.e2e.test_phone_signing_chromium import draw_signature
from tests.ui.test_call_flow import book_and_send_link, chromium_victim_called
from tests.ui.test_statement_flow import complete_fields

pytestmark = pytest.mark.slow
WAIT_MS = 20000


def test_the_victim_signs_on_the_phone_in_a_recorded_call_of_the_whole_app(qtbot, unlocked, tmp_path: Path,
                                                                           monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    main = unlocked
    a = book_and_send_link(qtbot, main, "Catrin Invented-Signer", "07700 900556", "99PS1234567",
                           OffenceType.BURGLARY_THEFT)
    with playwright() as p, chromium(p) as browser:
        context = browser.new_context(**phone(p))
        page = context.new_page()
        watch = PageWatch(page)
        call = chromium_victim_called(qtbot, main, a, page, WAIT_MS)
        page.locator("#rec-indicator").wait_for(state="visible", timeout=WAIT_MS)  # recorded, and the phone says so
        qtbot.waitUntil(lambda: main._statement_screen is not None
                        and main._statement_screen.parent() is call.splitter, timeout=10000)
        statement = main._statement_screen
        # The officer writes the statement beside the video, then sends it to the phone.
        statement.panel.set_content(complete_fields(main.session.statements.templates(), statement.panel.content()))
        statement._changed()
        qtbot.waitUntil(lambda: statement.opened.version_number is not None, timeout=5000)
        qtbot.waitUntil(lambda: statement.phone_button.isVisible(), timeout=5000)
        qtbot.mouseClick(statement.phone_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: statement.status.text().startswith("On the victim's phone"), timeout=WAIT_MS)

        # The victim reads, confirms and signs with a finger.
        page.locator("#screen-review").wait_for(state="visible", timeout=WAIT_MS)
        keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
        if keep:  # for a person to look at: the officer's window at a force laptop's size, and the phone
            main.window.resize(1366, 768)
            qtbot.wait(300)
            main.window.grab().save(os.path.join(keep, "whole-app-on-the-phone.png"))
            page.screenshot(path=os.path.join(keep, "whole-app-phone-review.png"))
        assert page.evaluate("document.getElementById('review-text').textContent").startswith("WITNESS STATEMENT\n")
        assert "Catrin" in page.evaluate("document.getElementById('review-text').textContent")
        page.locator("#review-confirm").check()
        draw_signature(page)
        assert page.evaluate("window.EVR.signaturePoints()") >= 20
        page.locator("#review-sign").click()

        # The app signs: the witness's drawn signature and the officer's digital one.
        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.waitUntil(lambda: statement.status.text().startswith("Signed"), timeout=30000)
        assert "Signature valid" in statement.status.text()
        if keep:
            main.window.grab().save(os.path.join(keep, "whole-app-signed.png"))
        assert main.session.store.get(a.id).status is Status.SIGNED
        page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_MS)  # the call went on underneath
        assert call.appointment == a.id and call.state.text() == "Connected"
        watch.assert_clean()
        pdf = tmp_path / "signed.pdf"
        pdf.write_bytes(main.session.statements.repo.signed(statement.opened.id)[1])
        text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
        assert "into the call's recording" in text  # the declaration's moment on the recording's clock
        sig = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True)
        assert "Signature is Valid" in sig.stdout or "Signature is Valid" in sig.stderr, sig.stdout + sig.stderr
        pdf.unlink()  # no victim data left behind in the test's folder
        qtbot.mouseClick(call.end_button, Qt.MouseButton.LeftButton)
        page.locator("#screen-ended").wait_for(state="visible", timeout=WAIT_MS)
        context.close()
