from datetime import date

import pytest

from evr_desktop.audit.log import verify
from evr_desktop.domain.appointment import Status
from evr_desktop.services import Refused, Workspace
from evr_desktop.vault.vault import WrongPassphrase
from tests.conftest import OFFICER, PASSPHRASE, fast_kdf
from tests.unit.test_domain import make


def test_create_logs_and_unlock_reopens(workspace, paths):
    s = workspace.create(OFFICER, PASSPHRASE, with_demo_data=True)
    assert len(s.list_appointments(date.today())) == 12
    s.lock()
    ws = Workspace(paths, make_kdf=fast_kdf)
    ws.start()
    with pytest.raises(WrongPassphrase):
        ws.unlock("not the passphrase at all")
    s2 = ws.unlock(PASSPHRASE)
    assert len(s2.list_appointments()) == 12
    s2.lock()
    result = verify(paths.audit)
    assert result.ok, result.reason
    actions = [e.action for e in ws.audit.entries()]
    assert actions[0] == "vault.create" and "session.unlock" in actions and actions[-1] == "session.lock"
    assert all(e.officer == OFFICER.collar for e in ws.audit.entries())


def test_weak_passphrase_and_bad_officer_details_are_refused(workspace, paths):
    with pytest.raises(Refused) as info:
        workspace.create(OFFICER.__class__("", "bad\nnumber", "F", "S"), "short")
    text = " ".join(info.value.reasons)
    assert "name is required" in text and "collar" in text and "12 characters" in text
    assert not paths.vault.exists()


def test_a_passphrase_with_the_officers_station_or_a_common_shape_is_refused(workspace, paths):
    for weak in ("Testford otter quilt marble", "Liverpool2023"):
        with pytest.raises(Refused) as info:
            workspace.create(OFFICER, weak)
        assert info.value.reasons
    assert not paths.vault.exists()


def test_ineligible_booking_is_refused_with_reasons_and_not_stored(session):
    with pytest.raises(Refused, match="offender is present"):
        session.save_appointment(make(offender_present=True), new=True)
    assert session.store.count() == 0
    session.save_appointment(make(), new=True)
    assert session.store.count() == 1


def test_status_changes_follow_the_lifecycle_and_are_audited(session):
    a = make()
    session.save_appointment(a, new=True)
    session.change_status(a.id, Status.CANCELLED)
    assert session.store.get(a.id).status is Status.CANCELLED
    assert session.audit.entries()[-1].action == "appointment.status.cancelled"
    with pytest.raises(ValueError, match="cannot be set to"):
        session.change_status(a.id, Status.SCHEDULED)
    assert all(a.victim.full_name not in e.to_line().decode() for e in session.audit.entries())
