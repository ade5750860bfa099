"""Statement drafting, autosave, history, signing and the lock, end to end
through the real main window (offscreen), with the real store, renderer and
officer's key."""

from __future__ import annotations

import subprocess

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
    a, screen = open_statement_for_row(qtbot, unlocked, Status.IN_CALL)
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
