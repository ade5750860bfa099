"""The rules of an officer's day, through the real window: an appointment that
fails the EVR criteria gets no link and no call at any status and is offered
the in-person way out; a Victim Personal Statement is drafted and signed end
to end. (The rules themselves: tests/unit/test_lifecycle.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from evr_desktop.domain import eligibility
from evr_desktop.domain.appointment import OffenceType, Status
from evr_desktop.domain.statement_doc import StatementType
from evr_desktop.ui.queue_model import APPOINTMENT_ROLE
from tests.ui.test_call_flow import book_and_send_link
from tests.ui.test_queue_ui import fill, open_new_dialog
from tests.ui.test_statement_flow import complete_fields, draw, versions


def select(main, appointment_id: str) -> None:
    q = main.queue
    q.day_enabled.setChecked(False)
    q.status_filter.setCurrentIndex(0)
    for row in range(q.proxy.rowCount()):
        if q.proxy.data(q.proxy.index(row, 0), APPOINTMENT_ROLE).id == appointment_id:
            q.table.selectRow(row)
            return
    raise AssertionError("appointment not in the queue")


def the_ineligible_one(main):
    rows = [main.queue.model.appointment(r) for r in range(main.queue.model.rowCount())]
    return next(a for a in rows if a.offence is OffenceType.DOMESTIC_ABUSE and not eligibility.check(a).eligible)


@pytest.fixture
def ready(qtbot, unlocked):
    qtbot.waitUntil(lambda: unlocked.calls.ready, timeout=20000)
    return unlocked


def refusal_shown(qtbot, main):
    qtbot.waitUntil(lambda: main.calls.refusal_box is not None and main.calls.refusal_box.isVisible(), timeout=5000)
    box = main.calls.refusal_box
    main.calls.refusal_box = None
    return box


def error_box(main):
    from PySide6.QtWidgets import QMessageBox

    box = main.window.findChild(QMessageBox, "errorBox")
    return box if box is not None and box.isVisible() else None


def test_send_link_and_start_call_are_refused_at_every_status_with_the_way_out(qtbot, ready):
    from evr_desktop.domain.appointment import MANUAL_MOVES

    main = ready
    a = the_ineligible_one(main)
    for status in Status:
        # As if the queue had moved on before the facts changed (an old profile, a force queue).
        main.session.store.update(replace(main.session.store.get(a.id), status=status))
        main.queue.upsert(main.session.store.get(a.id))
        select(main, a.id)
        way_out = Status.IN_PERSON in MANUAL_MOVES[status]
        for button in (main.queue.detail.link_button, main.queue.detail.call_button):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
            if way_out:
                box = refusal_shown(qtbot, main)
                assert box.findChild(type(box.buttons()[0]), "convertInPerson") is not None
            else:  # nothing left to convert (cancelled, signed, in person...): refused in words all the same
                qtbot.waitUntil(lambda: error_box(main) is not None, timeout=5000)
                box = error_box(main)
                box.setObjectName("seen")
            assert "Not eligible for video" in box.text() and "safe place" in box.text(), status
            box.done(0)
        assert a.id not in main.calls.links and main.calls.screen is None
        assert main.session.store.get(a.id).status is status
    assert main.session.outbox.list() == []
    main.session.store.update(replace(main.session.store.get(a.id), status=Status.SCHEDULED))
    main.queue.upsert(main.session.store.get(a.id))
    select(main, a.id)
    # The way out: convert to an in-person visit, recorded as such.
    qtbot.mouseClick(main.queue.detail.link_button, Qt.MouseButton.LeftButton)
    box = refusal_shown(qtbot, main)
    convert = next(b for b in box.buttons() if b.objectName() == "convertInPerson")
    qtbot.mouseClick(convert, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.IN_PERSON, timeout=5000)
    qtbot.waitUntil(lambda: main.queue.detail.fields["status"].text() == "In-person visit", timeout=5000)
    assert "appointment.converted_in_person" in [e.action for e in main.session.audit.entries() if e.object_id == a.id]
    offered = [main.queue.detail.next_status.itemData(i) for i in range(main.queue.detail.next_status.count())]
    assert offered == []  # final


def test_booking_that_fails_the_criteria_is_offered_an_in_person_visit(qtbot, unlocked):
    main = unlocked
    d = open_new_dialog(qtbot, main)
    fill(qtbot, d, "Branwen Invented-Safe", "07700 900555")
    d.offender_present.setChecked(True)
    qtbot.mouseClick(d.buttons.button(d.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    assert "Video cannot go ahead" in d.problems.text() and d.in_person_button.isVisible()
    assert d.isVisible()
    qtbot.mouseClick(d.in_person_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=5000)
    stored = main.session.store.get(d.result_appointment.id)
    assert stored.status is Status.IN_PERSON


def test_a_victim_personal_statement_is_drafted_and_signed_end_to_end(qtbot, unlocked):
    main = unlocked
    q = main.queue
    q.status_filter.setCurrentIndex(q.status_filter.findData(Status.CALL_ENDED.value))
    q.table.selectRow(0)
    a = q.selected()
    qtbot.mouseClick(q.detail.vps_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main._statement_screen is not None
                    and main._statement_screen.title.text().startswith("Victim Personal Statement"), timeout=10000)
    screen = main._statement_screen
    screen._timer.setInterval(100)
    panel = screen.panel
    assert panel.content().statement_type is StatementType.VPS
    # Only the VPS prompts are shown, and none is needed to sign.
    templates = main.session.statements.templates()
    shown = {panel.prompt_model.item(r).text() for r in range(panel.prompt_model.rowCount())}
    assert templates.vps.label in shown and templates.victims_code.label not in shown
    base = panel.content()
    filled = complete_fields(templates, base)
    panel.set_content(replace(filled, statement_type=StatementType.VPS, ticked_prompts=frozenset()))
    panel.narrative.clear()
    qtbot.keyClicks(panel.narrative, "Since the break-in I check the locks every night.")
    assert panel.missing_items() == []
    qtbot.waitUntil(lambda: len(versions(main, screen)) >= 1, timeout=5000)
    qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.STATEMENT_DRAFTED, timeout=5000)
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(screen, "signature_dialog", None) is not None
                    and screen.signature_dialog.isVisible(), timeout=3000)
    pad = screen.signature_dialog
    assert "consisting of 1 page(s)" in pad.declaration.text()
    qtbot.mouseClick(pad.confirmed, Qt.MouseButton.LeftButton)  # the witness read the declaration
    draw(qtbot, pad.canvas)
    qtbot.mouseClick(pad.buttons.button(pad.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.status.text().startswith("Signed"), timeout=30000)
    assert "Signature valid" in screen.status.text()
    qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.SIGNED, timeout=5000)


def test_the_outbox_note_shows_only_with_its_own_appointment(qtbot, ready):
    main = ready
    q = main.queue
    a = book_and_send_link(qtbot, main, "Elin Invented-Note", "07700 900321", "99NT1234526", OffenceType.ASSAULT)
    other = next(q.model.appointment(r) for r in range(q.model.rowCount()) if q.model.appointment(r).id != a.id)
    qtbot.waitUntil(lambda: main.calls.links[a.id] in q.detail.link_label.text(), timeout=5000)
    select(main, other.id)
    assert q.detail.link_label.text() == ""  # a message that no longer applies goes
    q.table.clearSelection()
    assert q.detail.link_label.text() == ""
    select(main, a.id)
    assert main.calls.links[a.id] in q.detail.link_label.text()
