"""The appointment's recordings as the app lists them, and opening one for
playback: file keys only, audited as a view (issue 10 item 9)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from evr_desktop.domain.errors import Refused
from evr_desktop.recording.library import DAMAGED, FINALISED, IN_PROGRESS, UNFINALISED, list_recordings
from evr_desktop.recording.manifest import MANIFEST_FILE, iter_recording
from evr_desktop.recording.recorder import Recorder
from evr_desktop.vault.age import FileKeyReader
from tests.recording_media import call_frames
from tests.unit.test_domain import make


def record(folder: Path, header, seconds: float = 3.0, close: bool = True) -> Recorder:
    frames = call_frames(seconds)
    now = [frames[0].monotonic]
    rec = Recorder(folder, officer_recipient=header.age_recipient, escrow_recipient=header.escrow_recipient,
                   session=folder.parent.name, clock=lambda: now[0], fsync=False, segment_seconds=1.0)
    for f in frames:
        now[0] = f.monotonic
        rec(f)
    if close:
        rec.close("call ended")
    return rec


def _actions(session, object_id: str) -> list[str]:
    return [e.action for e in session.audit.entries() if e.object_id == object_id]


def test_list_shows_each_state_and_damage_is_named(session):
    a = session.save_appointment(make(), new=True)
    root = session.recordings / a.id
    header = session.vault.header
    record(root / "aaaa1111", header)
    record(root / "bbbb2222", header, close=False)  # still recording (or killed, not yet recovered)
    damaged = root / "cccc3333"
    record(damaged, header)
    seg = sorted(damaged.glob("seg-*.age"))[1]
    blob = bytearray(seg.read_bytes())
    blob[-5] ^= 1
    seg.write_bytes(bytes(blob))
    unreadable = root / "dddd4444"
    record(unreadable, header)
    (unreadable / MANIFEST_FILE).write_bytes(b"age-encryption.org/v1\n-> nonsense\n")

    items = {r.folder.name: r for r in session.list_recordings(a.id)}
    assert set(items) == {"aaaa1111", "bbbb2222", "cccc3333", "dddd4444"}
    good = items["aaaa1111"]
    assert good.state == FINALISED and good.playable and good.reason == ""
    assert good.started_at is not None and good.started_at.tzinfo is not None
    assert good.duration_s is not None and 2.0 < good.duration_s < 4.0
    assert good.segments >= 2 and good.size_bytes > 0 and good.stills == 0
    assert items["bbbb2222"].state == IN_PROGRESS and not items["bbbb2222"].playable
    assert items["cccc3333"].state == DAMAGED
    assert "does not match the manifest" in items["cccc3333"].reason and not items["cccc3333"].playable
    assert items["dddd4444"].state == DAMAGED and "cannot be read" in items["dddd4444"].reason
    assert _actions(session, a.id)[-1] == "recording.list"


def test_stills_are_counted_when_there_and_absence_is_fine(tmp_path, session):
    header = session.vault.header
    folder = tmp_path / "appt" / "eeee5555"
    record(folder, header)
    from evr_desktop.vault.age import X25519Identity

    me = X25519Identity.from_string(session.vault.age_identity)
    assert list_recordings(folder.parent, [me])[0].stills == 0
    (folder / "stills").mkdir()
    for i in (1, 2):
        (folder / "stills" / f"still-{i:04d}.png.age").write_bytes(b"x")
    assert list_recordings(folder.parent, [me])[0].stills == 2
    assert list_recordings(tmp_path / "nothing", [me]) == []


def test_unfinalised_after_recovery_is_playable_with_its_reason(workspace, session):
    from tests.conftest import PASSPHRASE

    a = session.save_appointment(make(), new=True)
    record(session.recordings / a.id / "ffff6666", session.vault.header, close=False)
    session.lock()
    again = workspace.unlock(PASSPHRASE)
    try:
        (item,) = again.list_recordings(a.id)
        assert item.state == UNFINALISED and item.playable and "recovered" in item.reason
        plan = again.open_recording(a.id, "ffff6666")
        assert not plan.finalised
    finally:
        again.lock()


def test_open_gives_file_keys_that_read_the_recording_and_audits_the_view(session):
    a = session.save_appointment(make(), new=True)
    folder = session.recordings / a.id / "abcd0001"
    record(folder, session.vault.header)
    plan = session.open_recording(a.id, "abcd0001")
    assert plan.finalised and plan.segments
    # The file keys alone give back the recording, byte for byte.
    from evr_desktop.vault.age import X25519Identity

    whole = b"".join(iter_recording(folder, [X25519Identity.from_string(session.vault.age_identity)]))
    parts = []
    for seg in plan.segments:
        with open(folder / seg.file, "rb") as fh:
            reader = FileKeyReader(fh, seg.file_key)
            assert reader.plaintext_size == seg.plaintext_size
            parts.append(reader.read_at(0, reader.plaintext_size))
    assert hashlib.sha256(b"".join(parts)).digest() == hashlib.sha256(whole).digest()
    message = [s.message() for s in plan.segments]
    assert set(message[0]) == {"file", "file_key", "plaintext_size", "complete"}
    assert "AGE-SECRET-KEY" not in repr(message)
    assert _actions(session, a.id)[-2:] == ["recording.viewed", "recording.viewed.abcd0001"]


def test_open_refuses_what_is_not_a_recording_of_that_appointment(session):
    a = session.save_appointment(make(), new=True)
    for bad in ("../x", "nope", ""):
        with pytest.raises(Refused):
            session.open_recording(a.id, bad)
    folder = session.recordings / a.id / "abcd0002"
    record(folder, session.vault.header)
    shutil.copy(sorted(folder.glob("seg-*.age"))[0], folder / "seg-000099.age")
    before = _actions(session, a.id)
    with pytest.raises(Exception, match="not in the manifest"):
        session.open_recording(a.id, "abcd0002")
    assert _actions(session, a.id) == before  # nothing opened, nothing audited as viewed
