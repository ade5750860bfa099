"""The victim's safety signals (issue 11, item 3): the rules, their store
(kept as they came, acknowledged once) and the session's audit trail."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from evr_desktop.domain.appointment import Happening, Status
from evr_desktop.domain.safety import (
    DESKTOP_BODY,
    DESKTOP_TITLE,
    SafetyAlert,
    Signal,
    Stage,
    queue_marker,
    signal_for_flag,
    stage_for,
)
from evr_desktop.store.base import NotFound
from evr_desktop.store.safety import SqliteSafety
from tests.unit.test_domain import make

NOW = datetime(2026, 12, 4, 14, 5, tzinfo=timezone.utc)


def test_stage_follows_the_appointment_status():
    assert stage_for(Status.LINK_SENT) is Stage.BEFORE
    assert stage_for(Status.VICTIM_WAITING) is Stage.WAITING
    assert stage_for(Status.IN_CALL) is Stage.CALL
    for after in (Status.CALL_ENDED, Status.STATEMENT_DRAFTED, Status.SIGNED, Status.EXPORTED):
        assert stage_for(after) is Stage.AFTER


def test_flags_map_to_cant_talk_and_an_unknown_kind_is_still_a_signal():
    assert signal_for_flag("cannot-talk") is Signal.CANT_TALK
    assert signal_for_flag(None) is Signal.CANT_TALK
    assert signal_for_flag("something-new") is Signal.CANT_TALK  # shown, never dropped


def test_texts_markers_and_audit_codes():
    qx = SafetyAlert(1, "a1", Signal.QUICK_EXIT, Stage.WAITING, NOW, held=True)
    ct = SafetyAlert(2, "a1", Signal.CANT_TALK, Stage.CALL, NOW, held=False)
    assert qx.text("14:05") == (
        "The victim pressed Quick exit in the waiting room at 14:05 (it came while the app was offline). They may "
        "not be safe. Their link is locked: check it is safe before you call them or send a new link.")
    assert ct.text("14:05").startswith("The victim signalled they cannot talk freely during the call at 14:05.")
    assert queue_marker([ct]) == "⚠ Can't talk freely"
    assert queue_marker([ct, qx]) == "⚠ Quick exit"  # the more serious first
    done = SafetyAlert(3, "a1", Signal.QUICK_EXIT, Stage.AFTER, NOW, False, acknowledged_at=NOW)
    assert queue_marker([done]) is None
    assert qx.audit_action == "safety.quick_exit.waiting.held" and ct.audit_action == "safety.cant_talk.call"
    assert qx.acknowledged_action == "safety.acknowledged.quick_exit"
    assert all(len(x) <= 64 for x in (qx.audit_action, qx.acknowledged_action))
    # The desktop alert is seen by whoever is near the laptop: fixed words only.
    assert "victim needs" in DESKTOP_TITLE and "Open EVR Desktop" in DESKTOP_BODY


def test_the_store_keeps_a_signal_as_it_came_and_acknowledges_it_once(session):
    safety = SqliteSafety(session.store)
    first = safety.add("a1", Signal.CANT_TALK, Stage.WAITING, NOW, held=False)
    second = safety.add("a1", Signal.QUICK_EXIT, Stage.WAITING, NOW + timedelta(seconds=5), held=True)
    safety.add("a2", Signal.CANT_TALK, Stage.AFTER, NOW, held=False)
    assert [a.id for a in safety.alerts()] == [first.id, second.id, first.id + 2]
    assert safety.alerts(appointment_id="a1")[1] == second
    done = safety.acknowledge("a1", "PC 1234", NOW + timedelta(minutes=1))
    assert [a.id for a in done] == [first.id, second.id]
    assert [a.appointment_id for a in safety.alerts()] == ["a2"]
    kept = safety.alerts(open_only=False, appointment_id="a1")
    assert all(a.acknowledged_by == "PC 1234" and a.acknowledged_at == NOW + timedelta(minutes=1) for a in kept)
    with pytest.raises(NotFound):
        safety.acknowledge("a1", "PC 1234", NOW)
    con = session.store._con
    for sql in ("UPDATE safety_alert SET signal = 'cant_talk' WHERE id = 2",
                "UPDATE safety_alert SET acknowledged_by = 'someone else' WHERE id = 1",
                "DELETE FROM safety_alert WHERE id = 3",
                "INSERT INTO safety_alert(appointment_id, signal, stage, at, held) VALUES ('a', 'x', 'call', 't', 0)"):
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(sql)
    with pytest.raises(ValueError):
        safety.add("a3", Signal.CANT_TALK, Stage.CALL, datetime(2026, 12, 4, 14, 5), held=False)  # naive


def test_the_session_records_at_every_stage_audits_and_acknowledges(session):
    a = session.save_appointment(make(), new=True)
    stages = []
    for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED,
                      Happening.CALL_ENDED):
        session.record(a.id, happening)
        stages.append(session.record_safety_signal(a.id, Signal.CANT_TALK).stage)
    assert stages == [Stage.BEFORE, Stage.WAITING, Stage.CALL, Stage.AFTER]
    session.record_safety_signal(a.id, Signal.QUICK_EXIT, held=True)
    assert len(session.safety_alerts()) == 5
    actions = [e.action for e in session.audit.entries() if e.object_id == a.id]
    assert [x for x in actions if x.startswith("safety.")] == [
        "safety.cant_talk.before", "safety.cant_talk.waiting", "safety.cant_talk.call", "safety.cant_talk.after",
        "safety.quick_exit.after.held"]
    session.acknowledge_safety(a.id)
    assert session.safety_alerts() == []
    actions = [e.action for e in session.audit.entries() if e.object_id == a.id]
    assert actions[-5:] == ["safety.acknowledged.cant_talk"] * 4 + ["safety.acknowledged.quick_exit"]
    with pytest.raises(NotFound):  # on another screen already: said plainly, nothing changes
        session.acknowledge_safety(a.id)
    with pytest.raises(NotFound):  # the services layer refuses an appointment it does not hold
        session.record_safety_signal("no-such-appointment", Signal.QUICK_EXIT)
