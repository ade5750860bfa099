"""Stills (issue 10, item 8): the exhibit rule (domain/exhibit.py), the
encrypted PNG in the recording folder (recording/stills.py) read back by
Debian's ``age`` with either identity, the manifest and recovery listing it,
the exhibit counter in the store (never reused, across a restart), the
session's refusals and audit entries, and the channel's checks of
``capture_still`` both ways. The still through the real window and media
process is in tests/ui/test_call_stills.py."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from evr_desktop.domain.appointment import Happening, Status
from evr_desktop.domain.errors import Refused
from evr_desktop.domain.exhibit import (
    ExhibitReference,
    NoInitials,
    captured_actions,
    failed_actions,
    failure_code,
    initials,
    recording_time,
    still_refusals,
)
from evr_desktop.media.channel import CHILD_SENDS, PARENT_SENDS, STILL_RESULT_FIELDS, Channel, ProtocolError
from evr_desktop.recording.manifest import iter_recording, read_manifest
from evr_desktop.recording.recorder import Recorder
from evr_desktop.recording.recover import recover
from evr_desktop.recording.stills import (
    NoFrame,
    StillRefused,
    capture_still,
    encode_png,
    list_stills,
    png_text,
    write_encrypted,
)
from evr_desktop.store.migrations import MIGRATIONS
from evr_desktop.store.sqlite import SqliteStore
from evr_desktop.store.stills import SqliteStillRepository
from evr_desktop.vault.age import X25519Identity, decrypt
from tests.conftest import PASSPHRASE
from tests.recording_media import call_frames, small_filesystem
from tests.unit.test_domain import make
from tests.unit.test_media_channel import proxy_and_child as proxy_and_child  # the fixture
from tests.unit.test_media_channel import raw

PNG_MAGIC = b"\x89PNG"
STILLS_MIGRATION = next(n for n, script in enumerate(MIGRATIONS, 1) if "CREATE TABLE still" in script)


# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("Rhiannon Jones-Smith", "RJS"),  # each part of a hyphenated name
    ("ann o'neil", "AO"),  # upper-cased; the apostrophe does not start a word
    ("Madonna", "M"),  # a single name
    ("Дмитрий Иванов", "ДИ"),  # any script
    ("Łukasz Żółw", "ŁŻ"),
    ("王小明", "王"),
    ("PC Imogen Testwright", "IT"),  # a rank typed first is not an initial
    ("Ch. Insp. Ann Lee", "AL"),
    ("  Siân   ap  Rhys ", "SAR"),
    ("PC", "P"),  # nothing but a rank: the rank is what there is
])
def test_initials_from_names(name, expected):
    assert initials(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "12 34", "-- ."])
def test_a_name_without_letters_is_refused_clearly(name):
    with pytest.raises(NoInitials, match="officer's name is needed"):
        initials(name)


def test_the_reference_and_the_time_in_the_recording():
    ref = ExhibitReference("RJ", 12)
    assert str(ref) == "RJ/12" and ExhibitReference.parse("RJ/12") == ref
    assert ExhibitReference.parse("ДИ/3") == ExhibitReference("ДИ", 3)
    for bad in ("RJ", "RJ/x", "/4"):
        with pytest.raises(ValueError):
            ExhibitReference.parse(bad)
    with pytest.raises(ValueError):
        ExhibitReference("RJ", 0)
    assert [recording_time(x) for x in (None, 0, 133.9, 3725)] == ["--:--", "00:00", "02:13", "1:02:05"]


def test_a_still_needs_a_call_in_progress():
    assert still_refusals(Status.IN_CALL) == []
    for status in Status:
        if status is not Status.IN_CALL:
            assert still_refusals(status) == ["A still can only be taken during a call with the victim."]
    assert still_refusals(Status.IN_CALL, call_open=False)


def test_audit_codes_fit_the_log():
    digest = hashlib.sha256(b"x").hexdigest()
    actions = captured_actions(7, digest, 133.456, "recording")
    assert actions == ["still.captured.exhibit_no.7", f"still.captured.sha256_1.{digest[:32]}",
                       f"still.captured.sha256_2.{digest[32:]}", "still.captured.at_ms.133456",
                       "still.captured.recording.recording"]
    assert captured_actions(1, "nothex", None, "weird")[1:] == [
        "still.captured.sha256.none", "still.captured.at_ms.none", "still.captured.recording.other"]
    assert failed_actions(3, "disk_full") == ["still.failed.exhibit_no.3", "still.failed.disk_full"]
    assert failed_actions(None, "free text?") == ["still.failed.exhibit_no.none", "still.failed.other"]
    assert all(len(a) <= 64 for a in actions)
    assert failure_code("OSError", "[Errno 28] No space left on device") == "disk_full"
    assert failure_code("NoFrame", "no frame from the victim yet") == "no_frame"
    assert failure_code("StillRefused", "no force escrow recipient") == "no_recipients"
    assert failure_code("PermissionError", "[Errno 13] Permission denied") == "write_error"


# -- the file ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> tuple[X25519Identity, X25519Identity]:
    return X25519Identity.generate(), X25519Identity.generate()  # officer, escrow


def _frame(w: int = 1280, h: int = 720, seed: int = 7) -> np.ndarray:
    """A victim frame as the engine keeps it: BGRA, opaque, with detail everywhere (noise + a gradient)."""
    rng = np.random.default_rng(seed)
    bgra = np.empty((h, w, 4), np.uint8)
    bgra[:, :, :3] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    bgra[:, : w // 2, 1] = np.linspace(0, 255, w // 2, dtype=np.uint8)
    bgra[:, :, 3] = 255
    return bgra


def _recorder(folder: Path, keys, seconds: float = 2.0):
    """A recorder that has recorded ``seconds`` of a call, its clock at the last frame."""
    officer, escrow = keys
    frames = call_frames(seconds)
    now = [frames[0].monotonic]
    rec = Recorder(folder, officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                   session="appt-1", clock=lambda: now[0], fsync=False)
    for f in frames:
        now[0] = f.monotonic
        rec(f)
    return rec, now


def _age(identity: X25519Identity, path: Path, tmp_path: Path) -> bytes:
    key = tmp_path / f"key-{identity.recipient[-6:]}.txt"
    key.write_text(identity.to_string() + "\n")
    return subprocess.run(["age", "-d", "-i", str(key), str(path)], capture_output=True, timeout=30,
                          check=True).stdout


def test_a_still_is_the_exact_frame_at_full_size_encrypted_to_both(tmp_path, keys):
    officer, escrow = keys
    rec, now = _recorder(tmp_path / "rec", keys)
    now[0] += 0.25  # a quarter of a second after the last frame recorded
    frame = _frame()
    result = capture_still(rec, frame, exhibit="IT/1", appointment="appt-1")
    path = Path(result.file)
    assert path == tmp_path / "rec" / "stills" / "still-0001.png.age" and result.name == "stills/still-0001.png.age"
    assert (path.stat().st_mode & 0o777) == 0o600 and (path.parent.stat().st_mode & 0o777) == 0o700
    blob = path.read_bytes()
    assert blob.startswith(b"age-encryption.org/v1\n") and PNG_MAGIC not in blob
    assert result.ciphertext_sha256 == hashlib.sha256(blob).hexdigest() and result.ciphertext_size == len(blob)
    # Debian's age opens it with the escrow identity and with the officer's: the same PNG.
    by_escrow, by_officer = _age(escrow, path, tmp_path), _age(officer, path, tmp_path)
    assert by_escrow == by_officer and by_escrow.startswith(PNG_MAGIC)
    assert hashlib.sha256(by_escrow).hexdigest() == result.plaintext_sha256 and len(by_escrow) == result.plaintext_size
    decoded = cv2.imdecode(np.frombuffer(by_escrow, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (720, 1280, 3) and (result.width, result.height) == (1280, 720)
    assert np.array_equal(decoded, frame[:, :, :3])  # lossless, every pixel
    # Timestamped against the recording (its clock: the first frame is 0) and in UTC.
    assert result.at_s == pytest.approx(rec.elapsed(), abs=0.002) and 1.5 < result.at_s < 2.6
    assert result.taken_at.endswith("+00:00") and result.recording_state == "recording"
    assert png_text(by_escrow) == {"Exhibit": "IT/1", "Appointment": "appt-1", "Taken-At": result.taken_at,
                                   "At-Seconds": f"{rec.elapsed():.3f}", "Recording": rec.recording_id}
    # A second still takes the next file; both are in the manifest when the recording ends.
    second = capture_still(rec, _frame(640, 360, seed=8), exhibit="IT/2", appointment="appt-1")
    assert second.name == "stills/still-0002.png.age" and (second.width, second.height) == (640, 360)
    rec.close("call ended")
    manifest = read_manifest(tmp_path / "rec", [escrow])
    listed = manifest.data["stills"]
    assert [s["exhibit"] for s in listed] == ["IT/1", "IT/2"]
    assert listed[0] == {**result.manifest_entry(), "file": "stills/still-0001.png.age"}
    assert set(listed[0]) >= {"file", "ciphertext_sha256", "plaintext_sha256", "ciphertext_size", "at_s",
                              "exhibit", "width", "height", "taken_at"}
    # The stills are out of the segments' way: the recording still reads back whole.
    assert b"".join(iter_recording(tmp_path / "rec", [officer]))
    assert rec.add_still({"file": "late"}) is False  # after close: not silently lost from a written manifest


def test_the_png_text_is_utf8_and_a_standard_reader_accepts_it():
    from io import BytesIO

    from PIL import Image

    frame = _frame(32, 16)
    png = encode_png(frame, {"Exhibit": "ДИ/4", "Appointment": "appt-1"})
    assert png_text(png) == {"Exhibit": "ДИ/4", "Appointment": "appt-1"}
    image = Image.open(BytesIO(png))
    image.load()  # checks every chunk's CRC
    assert image.size == (32, 16) and image.info["EVR-Exhibit"] == "ДИ/4"
    assert np.array_equal(np.asarray(image)[:, :, ::-1], frame[:, :, :3])


def test_recovery_lists_the_stills_it_finds(tmp_path, keys):
    officer, escrow = keys
    rec, _ = _recorder(tmp_path / "rec", keys, seconds=1.0)
    result = capture_still(rec, _frame(320, 240), exhibit="IT/9", appointment="appt-1")
    # The app is killed here: no close(), no manifest.
    recover(tmp_path / "rec", [officer])
    listed = read_manifest(tmp_path / "rec", [escrow]).data["stills"]
    assert len(listed) == 1
    found = listed[0]
    assert found["file"] == "stills/still-0001.png.age" and found["exhibit"] == "IT/9"
    assert found["ciphertext_sha256"] == result.ciphertext_sha256
    assert found["plaintext_sha256"] == result.plaintext_sha256 and found["at_s"] == pytest.approx(result.at_s)
    assert list_stills(tmp_path / "rec")[0].keys() == {"file", "ciphertext_sha256", "ciphertext_size"}  # no key


def test_refusals_no_frame_no_recording_no_escrow(tmp_path, keys):
    officer, _ = keys
    rec, _ = _recorder(tmp_path / "rec", keys, seconds=0.5)
    with pytest.raises(NoFrame, match="no frame from the victim"):
        capture_still(rec, None, exhibit="IT/1", appointment="appt-1")
    with pytest.raises(StillRefused, match="not being recorded"):
        capture_still(None, _frame(64, 48), exhibit="IT/1", appointment="appt-1")
    png = encode_png(_frame(64, 48))
    for recipients in ([officer.recipient], [officer.recipient, ""], [officer.recipient, "age1notakey"]):
        with pytest.raises(StillRefused):
            write_encrypted(tmp_path / "rec", png, recipients)
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), np.uint8))
    assert not list((tmp_path / "rec").glob("stills/*"))  # nothing written by any refusal


def test_a_full_disk_refuses_the_still_and_loses_nothing(tmp_path, keys):
    officer, escrow = keys
    with small_filesystem(tmp_path, "256k") as mnt:
        rec = Recorder(mnt / "rec", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient)
        small = capture_still(rec, _frame(64, 48), exhibit="IT/1", appointment="appt-1")
        assert small.at_s is None and small.recording_state == "starting"  # before the recording's first frame
        # 1280x720 of noise is ~2.7 MB as PNG: it cannot fit in 256 KiB.
        with pytest.raises(OSError) as full:
            capture_still(rec, _frame(), exhibit="IT/2", appointment="appt-1")
        assert failure_code(type(full.value).__name__, str(full.value)) == "disk_full"
        # No partial file left; the first still is intact; the recorder goes on and lists only what was taken.
        assert sorted(p.name for p in (mnt / "rec" / "stills").iterdir()) == ["still-0001.png.age"]
        assert hashlib.sha256(decrypt(Path(small.file).read_bytes(), [escrow])).hexdigest() == small.plaintext_sha256
        assert [s["exhibit"] for s in rec.stills] == ["IT/1"]
        again = capture_still(rec, _frame(64, 48, seed=3), exhibit="IT/3", appointment="appt-1")
        assert again.name == "stills/still-0002.png.age"


def test_a_still_after_the_recording_failed_is_allowed_and_says_so(tmp_path, keys):
    """The disk filled mid-call (the recording stopped); the officer freed space: a still is
    still encrypted to the call's recipients, timed on the recording's clock, marked failed."""
    officer, escrow = keys
    with small_filesystem(tmp_path, "1m") as mnt:
        frames = call_frames(8.0)
        now = [frames[0].monotonic]
        rec = Recorder(mnt / "rec", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                       clock=lambda: now[0])
        for f in frames:
            now[0] = f.monotonic
            rec(f)
        assert rec.state == "failed"
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True)
        result = capture_still(rec, _frame(320, 240), exhibit="IT/5", appointment="appt-1")
        assert result.recording_state == "failed" and result.at_s == pytest.approx(8.0, abs=0.2)
        assert decrypt(Path(result.file).read_bytes(), [officer]).startswith(PNG_MAGIC)
        rec.close()
        from evr_desktop.recording.recover import find_unfinished

        if find_unfinished(mnt):  # no room for the manifest at close: recovery writes it
            recover(mnt / "rec", [officer])
        listed = read_manifest(mnt / "rec", [escrow]).data["stills"]
        assert [s["ciphertext_sha256"] for s in listed] == [result.ciphertext_sha256]


def test_a_folder_that_cannot_be_written_refuses_the_still(tmp_path, keys):
    rec, _ = _recorder(tmp_path / "rec", keys, seconds=0.5)
    (tmp_path / "rec" / "stills").write_bytes(b"a file where the stills folder goes")
    with pytest.raises(OSError):
        capture_still(rec, _frame(64, 48), exhibit="IT/1", appointment="appt-1")
    assert rec.stills == []


# -- the counter and the session ---------------------------------------------------------------------


def test_exhibit_numbers_are_persisted_never_reused_and_survive_a_restart(tmp_path):
    key = os.urandom(32)
    store = SqliteStore(tmp_path / "store.sqlite3", key)
    repo = SqliteStillRepository(store)
    assert [repo.next_exhibit_number("TW 9001") for _ in range(3)] == [1, 2, 3]
    assert repo.next_exhibit_number("XY 1") == 1  # per officer
    store.close()
    store = SqliteStore(tmp_path / "store.sqlite3", key)  # the app restarted
    repo = SqliteStillRepository(store)
    assert repo.last_exhibit_number("TW 9001") == 3 and repo.next_exhibit_number("TW 9001") == 4
    # The database itself refuses a counter that goes back, and a still whose number was never given.
    with pytest.raises(sqlite3.DatabaseError, match="only go up"):
        with store._tx():
            store._con.execute("UPDATE exhibit_counter SET last_number = 1 WHERE officer = 'TW 9001'")
    with pytest.raises(sqlite3.DatabaseError, match="only go up"):
        with store._tx():
            store._con.execute("DELETE FROM exhibit_counter")
    assert repo.next_exhibit_number("TW 9001") == 5
    store.close()


def test_the_session_refuses_a_still_without_a_call_and_records_and_audits_one(session, tmp_path, keys):
    a = session.save_appointment(make(), new=True)
    with pytest.raises(Refused, match="during a call"):
        session.begin_still(a.id)
    for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED):
        session.record(a.id, happening)
    assert session.store.get(a.id).status is Status.IN_CALL
    ref = session.begin_still(a.id)
    assert str(ref) == "IT/1"  # "PC Imogen Testwright"
    rec, _ = _recorder(tmp_path / "rec", keys, seconds=0.5)
    result = capture_still(rec, _frame(320, 240), exhibit=str(ref), appointment=a.id)
    record = session.record_still(a.id, ref, {k: getattr(result, k) for k in STILL_RESULT_FIELDS})
    assert record.exhibit == "IT/1" and record.width == 320 and record.file == result.file
    failed = session.begin_still(a.id)  # spent even though this one fails
    session.record_still_failed(a.id, failed, "no_frame")
    assert str(session.begin_still(a.id)) == "IT/3"
    actions = [e.action for e in session.audit.entries() if e.object_id == a.id]
    assert actions[-7:] == [*captured_actions(1, result.ciphertext_sha256, result.at_s, "recording"),
                            "still.failed.exhibit_no.2", "still.failed.no_frame"]
    assert [s.exhibit for s in session.list_stills(a.id)] == ["IT/1"]
    # Once the call has ended, no still.
    session.record(a.id, Happening.CALL_ENDED)
    with pytest.raises(Refused, match="during a call"):
        session.begin_still(a.id)
    # The statement opened for the appointment lists its stills (persisted: after a lock and unlock too).
    assert [s.exhibit for s in session.statements.open_for_appointment(a.id).stills] == ["IT/1"]


def test_stills_and_numbers_survive_lock_and_unlock(workspace, session):
    a = session.save_appointment(make(), new=True)
    for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED):
        session.record(a.id, happening)
    assert [str(session.begin_still(a.id)) for _ in range(2)] == ["IT/1", "IT/2"]
    session.lock()
    again = workspace.unlock(PASSPHRASE)
    try:
        session_status = again.store.get(a.id).status
        assert session_status is Status.CALL_ENDED  # reconciled at the first unlock: no call claims to be on
        for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED):
            again.record(a.id, happening)
        assert str(again.begin_still(a.id)) == "IT/3"
    finally:
        again.lock()


def test_an_officer_whose_name_gives_no_initials_is_told(session):
    from dataclasses import replace

    a = session.save_appointment(make(), new=True)
    for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED):
        session.record(a.id, happening)
    session.officer = replace(session.officer, name="12345")
    with pytest.raises(Refused, match="officer's name is needed"):
        session.begin_still(a.id)
    assert session.stills.last_exhibit_number(session.officer.collar) == 0  # no number spent


# -- the channel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    {"v": 1, "type": "capture_still", "id": 1, "appointment": "a"},  # no exhibit
    {"v": 1, "type": "capture_still", "id": 1, "appointment": "a", "exhibit": 1},
    {"v": 1, "type": "capture_still", "id": 1, "exhibit": "IT/1"},  # no appointment
    {"v": 1, "type": "capture_still", "id": 1, "appointment": "a", "exhibit": "IT/1", "folder": "/tmp"},
    {"v": 1, "type": "capture_still", "id": 1, "appointment": "a", "exhibit": None},
])
def test_the_child_refuses_a_bad_capture_still(data):
    a, b = socket.socketpair()
    parent, child = Channel(a, CHILD_SENDS), Channel(b, PARENT_SENDS)
    try:
        parent.send_raw(raw(data))
        parent.send({"type": "capture_still", "id": 2, "appointment": "a", "exhibit": "IT/1"})
        with pytest.raises(ProtocolError) as refused:
            child.recv()
        assert refused.value.code == "bad-fields" and refused.value.id == 1
        assert child.recv() == {"v": 1, "type": "capture_still", "id": 2, "appointment": "a", "exhibit": "IT/1"}
    finally:
        parent.close()
        child.close()


GOOD = {"file": "/p/rec/stills/still-0001.png.age", "name": "stills/still-0001.png.age", "exhibit": "IT/1",
        "ciphertext_sha256": "ab" * 32, "ciphertext_size": 1000, "plaintext_sha256": "cd" * 32,
        "plaintext_size": 900, "width": 1280, "height": 720, "at_s": 2.5, "taken_at": "2026-12-04T20:00:00+00:00",
        "recording_state": "recording"}


@pytest.mark.parametrize("bad", [
    "done", {**GOOD, "extra": 1}, {k: v for k, v in GOOD.items() if k != "at_s"}, {**GOOD, "width": True},
    {**GOOD, "width": 0}, {**GOOD, "ciphertext_sha256": "xyz"}, {**GOOD, "plaintext_sha256": "AB" * 32},
    {**GOOD, "at_s": -1.0}, {**GOOD, "at_s": "2.5"}, {**GOOD, "file": None},
])
def test_the_proxy_checks_the_still_result_field_by_field(proxy_and_child, bad):
    calls, other, _seen = proxy_and_child
    future = calls.engine.capture_still("appt-1", "IT/1")
    sent = other.recv()
    assert sent == {"v": 1, "type": "capture_still", "id": sent["id"], "appointment": "appt-1", "exhibit": "IT/1"}
    other.send({"type": "reply", "id": sent["id"], "ok": True, "result": bad})
    with pytest.raises(ProtocolError, match="capture_still"):
        future.result(5)
    good = calls.engine.capture_still("appt-1", "IT/2")
    sent = other.recv()
    other.send({"type": "reply", "id": sent["id"], "ok": True, "result": {**GOOD, "at_s": None}})
    assert good.result(5) == {**GOOD, "at_s": None}
    failed = calls.engine.capture_still("appt-1", "IT/3")
    sent = other.recv()
    other.send({"type": "reply", "id": sent["id"], "ok": False,
                "error": {"type": "NoFrame", "message": "no frame from the victim yet"}})
    deadline = time.monotonic() + 5
    with pytest.raises(Exception) as no_frame:
        failed.result(max(0.1, deadline - time.monotonic()))
    assert getattr(no_frame.value, "kind", "") == "NoFrame"


def test_a_store_from_before_stills_upgrades(tmp_path):
    assert STILLS_MIGRATION == len(MIGRATIONS)  # the last one: it is undone here by dropping its tables
    key = os.urandom(32)
    path = tmp_path / "old.sqlite3"
    SqliteStore(path, key).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE still")
    con.execute("DROP TABLE exhibit_counter")
    con.execute(f"PRAGMA user_version = {STILLS_MIGRATION - 1}")  # as written before stills
    con.commit()
    con.close()
    store = SqliteStore(path, key)
    try:
        assert store._con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert SqliteStillRepository(store).next_exhibit_number("TW 9001") == 1
    finally:
        store.close()
