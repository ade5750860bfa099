"""One source per rule: eligibility at every status, the status lifecycle, the
prompt sets a statement needs. Checked in the domain and through the session
(the UI's own tests press the buttons: tests/ui/test_officer_rules.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from evr_desktop import demo
from evr_desktop.domain import eligibility
from evr_desktop.domain.appointment import (
    ALLOWED_TRANSITIONS,
    MANUAL_MOVES,
    Happening,
    OffenceType,
    Status,
    status_after,
)
from evr_desktop.domain.audit import Category
from evr_desktop.domain.errors import NotEligible
from evr_desktop.domain.statement import missing_before_signing, prompt_sets
from evr_desktop.domain.statement_doc import StatementContent, StatementType
from evr_desktop.services import Refused, Workspace
from evr_desktop.statement.templates import load_templates
from tests.conftest import PASSPHRASE, fast_kdf
from tests.unit.test_domain import make


def not_eligible(status: Status):
    """Domestic abuse with no safe place confirmed: video must not go ahead."""
    a = make(offence=OffenceType.DOMESTIC_ABUSE, in_safe_place=None)
    return replace(a, status=status)


# -- eligibility holds at every status ------------------------------------------------


@pytest.mark.parametrize("status", list(Status))
def test_an_ineligible_appointment_gets_no_link_and_no_call_at_any_status(status):
    a = not_eligible(status)
    for refusals in (eligibility.link_refusals(a), eligibility.call_refusals(a)):
        assert refusals[0] == "Not eligible for video:"
        assert "Domestic abuse: confirm the victim will be in a safe place." in refusals
        # The way out is offered wherever it is still open.
        assert (refusals[-1] == eligibility.IN_PERSON_WAY_OUT) is (Status.IN_PERSON in MANUAL_MOVES[status])


@pytest.mark.parametrize("status", list(Status))
def test_the_session_refuses_link_and_call_at_every_status_and_changes_nothing(session, status):
    a = not_eligible(Status.SCHEDULED)
    session.store.add(replace(a, status=status))
    before = len(session.audit.entries())
    issued: list[str] = []
    expected = NotEligible if Status.IN_PERSON in MANUAL_MOVES[status] else Refused
    with pytest.raises(expected) as info:
        session.send_link(a.id, lambda appointment: issued.append(appointment.id) or "http://x/j/never")
    assert "safe place" in " ".join(info.value.reasons)
    with pytest.raises(expected):
        session.check_call(a.id)
    assert issued == []  # no link was ever made
    assert session.outbox.list() == []  # no text queued
    assert session.store.get(a.id).status is status
    assert len(session.audit.entries()) == before  # nothing disclosed, nothing moved


def test_the_way_out_is_an_in_person_visit_recorded_as_such(session):
    a = not_eligible(Status.SCHEDULED)
    session.store.add(a)
    changed = session.convert_to_in_person(a.id)
    assert changed.status is Status.IN_PERSON and changed.status.is_final
    assert session.audit.entries()[-1].action == "appointment.converted_in_person"
    assert session.audit.entries()[-1].category is Category.ALTERATION
    with pytest.raises(Refused) as info:
        session.check_call(a.id)
    assert not isinstance(info.value, NotEligible)  # no way out left to offer


def test_a_booking_failing_the_criteria_can_be_saved_only_as_an_in_person_visit(session):
    a = not_eligible(Status.SCHEDULED)
    with pytest.raises(Refused, match="Video cannot go ahead"):
        session.save_appointment(a, new=True)
    stored = session.save_appointment(a, new=True, in_person=True)
    assert stored.status is Status.IN_PERSON
    assert [e.action for e in session.audit.entries()[-2:]] == ["appointment.create", "appointment.converted_in_person"]


def test_an_edit_never_moves_the_status(session):
    a = make()
    session.save_appointment(a, new=True)
    session.change_status(a.id, Status.CANCELLED)
    stored = session.save_appointment(replace(a, status=Status.SIGNED, duration_minutes=30), new=False)
    assert stored.status is Status.CANCELLED and session.store.get(a.id).duration_minutes == 30


# -- the lifecycle -----------------------------------------------------------------------------


def test_every_move_a_happening_makes_is_an_allowed_transition():
    for s in Status:
        for h in Happening:
            new = status_after(s, h)
            assert new is None or new in ALLOWED_TRANSITIONS[s], (s, h, new)
        assert MANUAL_MOVES[s] <= ALLOWED_TRANSITIONS[s]


def test_after_a_hang_up_nothing_stays_in_call_and_nothing_claims_a_connection_by_hand():
    assert status_after(Status.IN_CALL, Happening.CALL_ENDED) is Status.CALL_ENDED
    for s in Status:
        assert status_after(s, Happening.CALL_ENDED) is not Status.IN_CALL
        # Waiting, in call, drafted, signed and exported follow what happened; never set by hand.
        assert not MANUAL_MOVES[s] & {Status.VICTIM_WAITING, Status.IN_CALL, Status.CALL_ENDED,
                                      Status.STATEMENT_DRAFTED, Status.SIGNED, Status.EXPORTED}


def test_signed_and_exported_cannot_be_cancelled():
    assert Status.CANCELLED not in ALLOWED_TRANSITIONS[Status.SIGNED]
    assert Status.CANCELLED not in ALLOWED_TRANSITIONS[Status.EXPORTED]


def test_the_session_walks_the_lifecycle_with_what_happens(session):
    a = make()
    session.save_appointment(a, new=True)
    sent = session.send_link(a.id, lambda appointment: f"http://127.0.0.1:1/j/token-for-{appointment.id[:4]}")
    assert sent.appointment.status is Status.LINK_SENT and sent.link in sent.text
    assert a.victim.full_name not in sent.text
    assert [m.appointment_id for m in session.outbox.list()] == [a.id]
    assert "appointment.link_sent" in [e.action for e in session.audit.entries() if e.category is Category.DISCLOSURE]
    steps = [
        (Happening.VICTIM_ARRIVED, Status.VICTIM_WAITING),
        (Happening.VICTIM_LEFT, Status.LINK_SENT),
        (Happening.VICTIM_ARRIVED, Status.VICTIM_WAITING),
        (Happening.CALL_CONNECTED, Status.IN_CALL),
        (Happening.STATEMENT_SAVED, Status.IN_CALL),  # saving during the call leaves it alone
        (Happening.CALL_ENDED, Status.CALL_ENDED),
        (Happening.CALL_ENDED, Status.CALL_ENDED),  # the engine and the screen both say so: once
        (Happening.STATEMENT_SAVED, Status.STATEMENT_DRAFTED),
        (Happening.STATEMENT_SIGNED, Status.SIGNED),
        (Happening.EXPORTED, Status.EXPORTED),
    ]
    for happening, expected in steps:
        session.record(a.id, happening)
        assert session.store.get(a.id).status is expected, happening
    with pytest.raises(Refused):
        session.check_call(a.id)


def test_a_restart_leaves_nobody_waiting_or_in_call(paths):
    ws = Workspace(paths, make_kdf=fast_kdf)
    s = ws.create(demo_officer(), PASSPHRASE, with_demo_data=False)
    waiting, in_call = make(), make()
    s.store.add(replace(waiting, status=Status.VICTIM_WAITING))
    s.store.add(replace(in_call, status=Status.IN_CALL))
    s.lock()
    ws2 = Workspace(paths, make_kdf=fast_kdf)
    ws2.start()
    s2 = ws2.unlock(PASSPHRASE)
    assert s2.store.get(waiting.id).status is Status.LINK_SENT
    assert s2.store.get(in_call.id).status is Status.CALL_ENDED
    s2.lock()


def demo_officer():
    from tests.conftest import OFFICER

    return OFFICER


def test_demo_data_claims_no_connection():
    statuses = {a.status for a in demo.demo_appointments(date.today())}
    assert Status.VICTIM_WAITING not in statuses and Status.IN_CALL not in statuses
    # ...and it still shows one appointment that video must be refused for.
    assert any(not eligibility.check(a).eligible for a in demo.demo_appointments(date.today()))


# -- which prompts a statement needs ----------------------------------------------------------


@pytest.fixture(scope="module")
def templates():
    return load_templates()


def test_a_vps_needs_no_witness_statement_prompts(templates):
    assert prompt_sets(templates, vps=True, offence="assault", suspect_identified=True) == [templates.vps]
    fields = {f.id: "x" for f in templates.mg11.fields}
    from tests.unit.test_templates import complete_fields

    vps = StatementContent(statement_type=StatementType.VPS, fields=complete_fields(templates),
                           narrative="Since the burglary I have not slept well.", offence="assault",
                           suspect_identified=True)
    assert missing_before_signing(vps, templates) == []
    witness = replace(vps, statement_type=StatementType.WITNESS)
    missing = missing_before_signing(witness, templates)
    assert any(m.startswith(templates.victims_code.label) for m in missing)
    assert fields  # the template has fields at all


def test_the_panel_order_and_the_required_sets_come_from_one_function(templates):
    sets = prompt_sets(templates, offence="assault", suspect_identified=True)
    assert sets == [templates.offence("assault"), templates.advokate, templates.victims_code]
    assert prompt_sets(templates) == [templates.victims_code]
