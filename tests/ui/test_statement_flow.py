"""Statement drafting, autosave, history, signing and the lock, end to end
through the real main window (offscreen), with the real store, renderer and
officer's key."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from evr_desktop.domain.appointment import Status
from evr_desktop.domain.statement import FieldType
from evr_desktop.domain.statement_doc import StatementContent
from evr_desktop.ui.statement_screen import HistoryDialog


def complete_fields(templates, base: StatementContent) -> StatementContent:
    """Fill every required field with a valid invented value, tick required prompts."""
    fields = dict(base.fields)
    for section in templates.mg11.sections:
        for f in section.fields:
            if f.required and fields.get(f.id) in (None, ""):
                fields[f.id] = {
                    FieldType.DATE: "1990-01-01", FieldType.DATETIME: "2026-11-28T10:00",
                    FieldType.BOOLEAN: True, FieldType.YES_NO: "yes", FieldType.YES_NO_NA: "n/a",
                    FieldType.CHOICE: f.choices[0] if f.choices else "",
                }.get(f.type, "Invented value")
    ticked = {p.key for s in (templates.victims_code, *[o for o in templates.offences if o.id == base.offence])
              for p in s.prompts if p.required_for_signing}
    return StatementContent(
        offence=base.offence, fields=fields, narrative=base.narrative or "I was walking home when it happened.",
        ticked_prompts=frozenset(ticked),
    )


def open_statement_for_row(qtbot, main, status: Status):
    q = main.queue
    q.status_filter.setCurrentIndex(q.status_filter.findData(status.value))
    q.table.selectRow(0)
    a = q.selected()
    qtbot.mouseClick(q.detail.statement_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: main._statement_screen is not None and main.stack.currentWidget() is main._statement_screen,
        timeout=10000,
    )
    screen = main._statement_screen
    screen._timer.setInterval(100)  # autosave quickly in tests
    return a, screen


def versions(main, screen):
    return main.session.statements.repo.versions(screen.opened.id)


def test_draft_autosave_history_and_prefill(qtbot, unlocked):
    a, screen = open_statement_for_row(qtbot, unlocked, Status.CALL_ENDED)
    panel = screen.panel
    assert panel.editors["statement_of"].widget.text() == a.victim.full_name
    assert panel.editors["urn"].widget.text() == a.urn
    assert panel.content().offence == a.offence.value
    qtbot.keyClicks(panel.narrative, "The man punched me twice in the face.")
    qtbot.waitUntil(lambda: len(versions(unlocked, screen)) == 1, timeout=5000)
    qtbot.waitUntil(lambda: "Draft, version 1" in screen.status.text(), timeout=5000)
    panel.narrative.clear()
    qtbot.keyClicks(panel.narrative, "The man kicked me three times in the face.")
    qtbot.waitUntil(lambda: len(versions(unlocked, screen)) == 2, timeout=5000)
    # Focus leaving a field saves at once, and an unchanged state adds nothing.
    qtbot.keyClicks(panel.editors["occupation"].widget, "Baker")
    panel.narrative.setFocus()
    qtbot.waitUntil(lambda: len(versions(unlocked, screen)) == 3, timeout=5000)
    screen.save_now()
    qtbot.wait(300)
    assert len(versions(unlocked, screen)) == 3
    # History with a readable diff.
    qtbot.mouseClick(screen.history_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: any(isinstance(w, HistoryDialog) and w.isVisible() for w in QApplication.topLevelWidgets()),
        timeout=5000,
    )
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, HistoryDialog) and w.isVisible())
    dialog.old.setCurrentIndex(0)
    dialog.new.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "kicked" in dialog.view.toPlainText(), timeout=5000)  # computed on the worker
    text = dialog.view.toPlainText()
    assert "kicked" in text and "punched" in text
    assert "narrative" in dialog.summary.text().lower()
    dialog.close()


def test_completeness_blocks_signing_with_reasons(qtbot, unlocked):
    _a, screen = open_statement_for_row(qtbot, unlocked, Status.SCHEDULED)
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    assert "Cannot sign yet" in screen.status.text()
    assert "The narrative is empty." in screen.status.text()
    assert not any(w.objectName() == "signaturePad" and w.isVisible() for w in QApplication.topLevelWidgets())


def draw(qtbot, canvas) -> None:
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(30, 100))
    for x in range(30, 320, 8):
        qtbot.mouseMove(canvas, QPoint(x, 90 + (x * 7) % 30))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(320, 100))


def test_sign_end_to_end_then_locked(qtbot, unlocked, tmp_path):
    main = unlocked
    a, screen = open_statement_for_row(qtbot, main, Status.STATEMENT_DRAFTED)
    templates = main.session.statements.templates()
    screen.panel.set_content(complete_fields(templates, screen.panel.content()))
    screen._changed()
    qtbot.waitUntil(lambda: screen.opened.version_number is not None, timeout=5000)
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: getattr(screen, "signature_dialog", None) is not None and screen.signature_dialog.isVisible(),
        timeout=3000,
    )
    pad = screen.signature_dialog
    draw(qtbot, pad.canvas)
    qtbot.mouseClick(pad.confirmed, Qt.MouseButton.LeftButton)  # the witness read the declaration
    qtbot.mouseClick(pad.buttons.button(pad.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.status.text().startswith("Signed"), timeout=30000)
    assert "Signature valid" in screen.status.text()
    # The statement is locked: typing changes nothing and signing is off.
    before = screen.panel.content().narrative
    qtbot.keyClicks(screen.panel.narrative, " and more")
    assert screen.panel.content().narrative == before and not screen.sign_button.isEnabled()
    # The appointment moved on, and the signing was audited; opening the signed
    # statement again is audited as a view of it, with its verification shown.
    assert main.session.store.get(a.id).status is Status.SIGNED
    statement_id = screen.opened.id
    assert "statement.sign" in [e.action for e in main.session.audit.entries() if e.object_id == statement_id]
    qtbot.mouseClick(screen.back_button, Qt.MouseButton.LeftButton)
    main.open_statement(a.id)
    qtbot.waitUntil(
        lambda: "statement.view_signed"
        in [e.action for e in main.session.audit.entries() if e.object_id == statement_id],
        timeout=10000,
    )
    qtbot.waitUntil(lambda: main.stack.currentWidget() is screen, timeout=5000)
    assert screen.status.text().startswith("Signed") and "Signature valid" in screen.status.text()
    # The signed PDF validates with poppler's pdfsig.
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(main.session.statements.repo.signed(screen.opened.id)[1])
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True).stdout
    assert "Signature is Valid" in out and "Total document signed" in out
    pdf.unlink()
    # A change after signing is a new version with a reason; the signed one stays.
    screen._amend_reason = "Correction of the time"
    screen._show_state()
    signed_version = screen.opened.signed.version
    qtbot.keyClicks(screen.panel.narrative, " Correction.")
    qtbot.waitUntil(lambda: len(versions(main, screen)) == signed_version + 1, timeout=5000)
    assert versions(main, screen)[-1].reason == "Correction of the time"
    assert main.session.statements.repo.signed(screen.opened.id)[0] == signed_version


def test_lock_saves_the_draft_and_clears_the_screen(qtbot, unlocked):
    main = unlocked
    _a, screen = open_statement_for_row(qtbot, main, Status.LINK_SENT)
    screen._timer.setInterval(60_000)  # only the lock will save
    qtbot.keyClicks(screen.panel.narrative, "Typed just before the lock.")
    statement_id = screen.opened.id
    main.lock()
    qtbot.waitUntil(lambda: main.worker.pending == 0, timeout=5000)
    assert screen.panel.content().narrative == "" and screen.opened is None
    assert main.stack.currentWidget() is main.unlock_page
    from tests.conftest import PASSPHRASE

    reopened = main.workspace.unlock(PASSPHRASE)
    assert reopened.statements.repo.latest(statement_id).content.narrative == "Typed just before the lock."
    reopened.lock()


def test_standalone_statement_and_vps_open(qtbot, unlocked):
    main = unlocked
    qtbot.keyClick(main.window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(
        lambda: main._statement_screen is not None and main.stack.currentWidget() is main._statement_screen,
        timeout=10000,
    )
    screen = main._statement_screen
    assert "no appointment" in screen.title.text()
    assert screen.panel.editors["taken_by_number"].widget.text() == main.session.officer.collar
    qtbot.mouseClick(screen.back_button, Qt.MouseButton.LeftButton)
    assert main.stack.currentWidget() is main.queue
    q = main.queue
    q.table.selectRow(0)
    qtbot.mouseClick(q.detail.vps_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.title.text().startswith("Victim Personal Statement"), timeout=10000)
    keys = screen.panel.content().statement_type.value
    assert keys == "vps"


# -- the declaration on the pad, and copies of the signed PDFs ------------------------------


def open_pad(qtbot, main, narrative_lines: int = 0):
    """A complete statement on screen, and the pad opened by its Sign… button."""
    a, screen = open_statement_for_row(qtbot, main, Status.STATEMENT_DRAFTED)
    templates = main.session.statements.templates()
    content = complete_fields(templates, screen.panel.content())
    if narrative_lines:
        from dataclasses import replace

        content = replace(content, narrative="\n".join(f"Line {i} of the account." for i in range(narrative_lines)))
    screen.panel.set_content(content)
    screen._changed()
    qtbot.waitUntil(lambda: screen.opened.version_number is not None, timeout=5000)
    screen.signature_dialog = None
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.signature_dialog is not None and screen.signature_dialog.isVisible(), timeout=10000)
    return a, screen, screen.signature_dialog


def test_the_pad_shows_the_declaration_with_the_page_count_and_sign_waits_for_confirmation(qtbot, unlocked, tmp_path):
    main = unlocked
    _a, screen, pad = open_pad(qtbot, main, narrative_lines=40)  # a two-page statement
    mg11 = main.session.statements.templates().mg11
    assert pad.declaration.text() == mg11.declaration_text(2)
    assert "consisting of 2 page(s)" in pad.declaration.text()
    assert pad.declaration.isVisible() and pad.declaration.geometry().bottom() < pad.canvas.geometry().top()
    draw(qtbot, pad.canvas)
    assert not pad.confirmed.isChecked() and not pad.sign_button.isEnabled()
    pad.accept()  # Enter or a direct call cannot get round the tick either
    assert pad.isVisible() and pad.signature is None and "read the declaration" in pad.message.text()
    qtbot.mouseClick(pad.confirmed, Qt.MouseButton.LeftButton)
    assert pad.sign_button.isEnabled()
    qtbot.mouseClick(pad.confirmed, Qt.MouseButton.LeftButton)
    assert not pad.sign_button.isEnabled()
    qtbot.mouseClick(pad.confirmed, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(pad.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.status.text().startswith("Signed"), timeout=30000)
    # The statement really has the two pages the witness was told of.
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(main.session.statements.repo.signed(screen.opened.id)[1])
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+2$", info, re.MULTILINE), info
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "consisting of 2 page(s)" in text


def sign_on_screen(qtbot, main):
    _a, screen, pad = open_pad(qtbot, main)
    draw(qtbot, pad.canvas)
    qtbot.mouseClick(pad.confirmed, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(pad.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.status.text().startswith("Signed"), timeout=30000)
    return screen


def message(qtbot, screen, title: str):
    qtbot.waitUntil(lambda: screen.message_box is not None and screen.message_box.isVisible()
                    and screen.message_box.windowTitle() == title, timeout=10000)
    return screen.message_box


def test_save_pdf_writes_the_signed_statement_where_chosen_and_offers_to_open_it(
    qtbot, unlocked, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    from evr_desktop.domain.audit import Category

    main = unlocked
    screen = sign_on_screen(qtbot, main)
    assert screen.save_pdf_button.isVisible() and screen.save_rear_button.isVisible()
    assert "Restricted rear page (a separate signed PDF): signature valid" in screen.status.text()
    opened_files = []
    screen.open_file = opened_files.append  # no real PDF viewer in tests
    chosen = tmp_path / "copies" / "statement"  # no suffix typed: .pdf is added
    chosen.parent.mkdir()
    asked = []

    def fake_dialog(parent, caption, suggested, file_filter, options=None):
        asked.append((caption, suggested))
        return str(chosen), file_filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    statement_id = screen.opened.id
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "PDF saved")
    target = chosen.with_name("statement.pdf")
    assert target.read_bytes() == main.session.statements.repo.signed(statement_id)[1]
    assert "signed statement" in asked[0][0] and asked[0][1].endswith(".pdf")
    suggested = Path(asked[0][1]).name  # the form and the URN, never the witness's name
    assert suggested == f"MG11 {screen.opened.content.fields['urn']}.pdf"
    assert screen.opened.content.witness_name().split()[-1] not in suggested
    assert str(target) in screen.status.text()
    disclosures = [e.action for e in main.session.audit.entries()
                   if e.object_id == statement_id and e.category is Category.DISCLOSURE]
    assert disclosures == ["statement.save_pdf"]
    qtbot.mouseClick(box.button(box.StandardButton.Open), Qt.MouseButton.LeftButton)
    assert opened_files == [target]

    # Saving again to the same name asks before replacing; "No" keeps the file.
    target.write_bytes(b"changed by hand")
    chosen = target
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "Replace the file?")
    qtbot.mouseClick(box.button(box.StandardButton.No), Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert target.read_bytes() == b"changed by hand"
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "Replace the file?")
    qtbot.mouseClick(box.button(box.StandardButton.Yes), Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "PDF saved")
    qtbot.mouseClick(box.button(box.StandardButton.Close), Qt.MouseButton.LeftButton)
    assert opened_files == [target]  # Close opens nothing
    assert target.read_bytes() == main.session.statements.repo.signed(statement_id)[1]

    # The rear page is its own file, saved by its own action.
    chosen = tmp_path / "copies" / "rear.pdf"
    qtbot.mouseClick(screen.save_rear_button, Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "PDF saved")
    qtbot.mouseClick(box.button(box.StandardButton.Close), Qt.MouseButton.LeftButton)
    assert chosen.read_bytes() == main.session.statements.repo.signed_rear_page(statement_id)[1]
    assert "restricted rear page" in asked[-1][0]
    disclosures = [e.action for e in main.session.audit.entries()
                   if e.object_id == statement_id and e.category is Category.DISCLOSURE]
    assert disclosures == ["statement.save_pdf", "statement.save_pdf", "statement.save_rear_page_pdf"]

    # A bad place is refused in words and nothing is written.
    chosen = tmp_path / "no-such-folder" / "statement.pdf"
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.status.text().startswith("Not saved"), timeout=10000)
    assert "does not exist" in screen.status.text()
    assert not chosen.parent.exists()
    # Cancelling the dialog does nothing.
    chosen = ""
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert len(disclosures) == 3 and opened_files == [target]


def test_a_pdf_signed_with_its_rear_page_inside_is_saved_only_after_a_warning(qtbot, unlocked, tmp_path, monkeypatch):
    """A statement signed before the rear page was separate: one PDF holds both."""
    from PySide6.QtWidgets import QFileDialog

    from evr_desktop.statement.pdf import render_statement
    from evr_desktop.statement.signing import sign_with_vault

    main = unlocked
    service = main.session.statements
    opened = service.open_standalone()
    content = complete_fields(service.templates(), opened.content)
    service.save(opened.id, content)
    pdf = sign_with_vault(render_statement(content, service.templates(), main.session.officer), main.session.vault)
    service.repo.mark_signed(opened.id, 1, pdf)  # as signed before migration 4: no rear page beside it
    main._open_statement(lambda s: s.statements.open(opened.id))
    qtbot.waitUntil(lambda: main._statement_screen is not None and main.stack.currentWidget() is main._statement_screen
                    and main._statement_screen.opened.id == opened.id, timeout=10000)
    screen = main._statement_screen
    assert screen.save_pdf_button.isVisible() and not screen.save_rear_button.isVisible()
    target = tmp_path / "old.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "The rear page is inside this PDF")
    assert "police and prosecution only" in box.text()
    qtbot.mouseClick(box.button(box.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert not target.exists()
    qtbot.mouseClick(screen.save_pdf_button, Qt.MouseButton.LeftButton)
    box = message(qtbot, screen, "The rear page is inside this PDF")
    qtbot.mouseClick(box.button(box.StandardButton.Save), Qt.MouseButton.LeftButton)
    message(qtbot, screen, "PDF saved")
    assert target.read_bytes() == pdf
    assert [e.action for e in main.session.audit.entries() if e.object_id == opened.id][-1] == \
        "statement.save_pdf_with_rear_page"
