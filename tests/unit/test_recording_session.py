"""The session's side of recording: the plan (folder under the profile, the
vault's public recipients), the audit entries of start, end and the officer's
choice, and recovery at unlock (issue 10, items 3, 5 and 6)."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from evr_desktop.domain.recording import (
    RecordingChoice,
    RecordingOutcome,
    ended_actions,
    manifest_sha256_from,
    when_recording_cannot_run,
)
from evr_desktop.recording.manifest import MANIFEST_FILE, read_manifest
from evr_desktop.recording.recorder import Recorder
from evr_desktop.recording.recover import find_unfinished
from evr_desktop.vault.age import X25519Identity
from tests.conftest import PASSPHRASE
from tests.recording_media import call_frames
from tests.unit.test_domain import make


def _actions(session, object_id: str) -> list[str]:
    return [e.action for e in session.audit.entries() if e.object_id == object_id]


def escrow_identity(paths) -> X25519Identity:
    text = (paths.evidence_office / "escrow-identity-DEMO.txt").read_text()
    return X25519Identity.from_string(next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-")))


def test_the_rule_when_recording_cannot_run():
    problem = when_recording_cannot_run("No space left on device.")
    assert problem.warning == ("Recording stopped: No space left on device. The call can go on; what was "
                               "recorded so far is kept.")
    assert problem.choices == (RecordingChoice.CONTINUE_WITHOUT, RecordingChoice.END_CALL)
    assert [c.audit_action for c in problem.choices] == ["recording.continue_without", "recording.end_call"]
    assert when_recording_cannot_run("recording stopped: [Errno 28] No space left on device").warning.startswith(
        "Recording stopped: No space left on device. The call")


def test_end_actions_fit_the_audit_log_and_give_the_hash_back():
    digest = hashlib.sha256(b"m").hexdigest()
    actions = ended_actions(RecordingOutcome(digest, "2026-12-04T18:14:10.123+00:00",
                                             "2026-12-04T18:14:15.623+00:00", 5.5, True))
    assert actions == ["recording.end.finalised", f"recording.end.sha256_1.{digest[:32]}",
                       f"recording.end.sha256_2.{digest[32:]}",
                       "recording.end.started_at.20261204t181410_123z",
                       "recording.end.ended_at.20261204t181415_623z", "recording.end.duration_ms.5500"]
    assert all(len(a) <= 64 for a in actions)
    assert manifest_sha256_from(actions) == digest


def test_plan_start_choice_and_end_are_audited_by_appointment_id(session):
    a = session.save_appointment(make(), new=True)
    plan = session.recording_plan(a.id)
    assert plan.folder.parent == session.recordings / a.id and not plan.folder.exists()
    assert (plan.folder.parent.stat().st_mode & 0o777) == 0o700
    assert plan.officer_recipient == session.vault.header.age_recipient
    assert plan.escrow_recipient == session.vault.header.escrow_recipient
    assert not plan.officer_recipient.startswith("AGE-SECRET-KEY")
    session.record_recording_started(a.id)
    session.record_recording_failed(a.id)
    session.record_recording_choice(a.id, RecordingChoice.CONTINUE_WITHOUT)
    digest = "ab" * 32
    session.record_recording_ended(a.id, RecordingOutcome(digest, None, "2026-12-04T18:14:15+00:00", 0.0, False))
    actions = _actions(session, a.id)
    assert actions[-9:-6] == ["recording.start", "recording.failed", "recording.continue_without"]
    assert actions[-6] == "recording.end.unfinalised"
    assert actions[-3:] == ["recording.end.started_at.none", "recording.end.ended_at.20261204t181415_000z",
                            "recording.end.duration_ms.0"]
    assert manifest_sha256_from(actions) == digest


def test_a_recording_left_unfinished_is_recovered_and_audited_at_unlock(workspace, session):
    header = session.vault.header
    folder = session.recordings / "appt-crash" / "r1"
    recorder = Recorder(folder, officer_recipient=header.age_recipient, escrow_recipient=header.escrow_recipient,
                        session="appt-crash", segment_seconds=0.5)
    for frame in call_frames(3.0):
        recorder(frame)
    # The app is killed here: the recorder is never closed, no manifest.
    assert find_unfinished(session.recordings) == [folder]
    assert recorder.segments  # finalised segments are on disk
    session.lock()

    again = workspace.unlock(PASSPHRASE)
    try:
        assert find_unfinished(again.recordings) == []
        manifest = read_manifest(folder, [escrow_identity(workspace.paths)])
        assert manifest.finalised is False and "recovered" in manifest.data["reason"]
        actions = _actions(again, "appt-crash")
        assert actions[0] == "recording.recovered.unfinalised.app_stopped"
        stored = hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
        assert manifest_sha256_from(actions, "recording.recovered") == stored == manifest.sha256
        # Debian's age opens the manifest with the escrow identity.
        key = workspace.paths.evidence_office / "escrow-identity-DEMO.txt"
        out = subprocess.run(["age", "-d", "-i", str(key), str(folder / MANIFEST_FILE)], capture_output=True,
                             timeout=30, check=True).stdout
        assert b'"finalised": false' in out or b'"finalised":false' in out
        # A second unlock finds nothing more to do.
        assert again.recover_recordings() == []
    finally:
        again.lock()


@pytest.mark.parametrize("choice", list(RecordingChoice))
def test_labels(choice):
    assert choice.label
