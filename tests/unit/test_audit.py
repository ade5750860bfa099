"""The audit log: what it records, what it refuses, and how it shows tampering."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import re
import stat
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from evr_desktop.audit import (
    AuditLog,
    AuditTamperedError,
    Category,
    format_result,
    merkle_root,
    run_verify,
    verify,
)
from evr_desktop.audit import log as audit_log

START = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)
OFFICER = "PC 1234"
APPOINTMENT = "3f2b8c0e9a7d4e1b8f6a5c4d3e2f1a0b"  # a uuid4 hex, as the app's IDs are


def ticking_clock(start: datetime = START, step: timedelta = timedelta(seconds=1)):
    counter = itertools.count()
    return lambda: start + step * next(counter)


def make_log(folder: Path, n: int = 10) -> AuditLog:
    log = AuditLog.open(folder, clock=ticking_clock())
    for i in range(n):
        log.append(OFFICER, Category.CONSULTATION, f"apt-{i + 1}", "appointment.view")
    return log


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file's SHA-256 and mode: proof that nothing on disk changed."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.iterdir())
    }


def read_lines(folder: Path) -> list[bytes]:
    return (folder / "audit.log").read_bytes().splitlines(keepends=True)


def write_lines(folder: Path, lines: list[bytes]) -> None:
    (folder / "audit.log").write_bytes(b"".join(lines))


# --- an independent implementation, for rebuilding a chain as a forger would ----


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written out as literally as possible."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return ref_leaf(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_root(leaves[:k]) + ref_root(leaves[k:])).digest()


def canon(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def forge(folder: Path, edit: Callable[[list[dict]], None]) -> None:
    """Edit the entries, then recompute every hash, link and the checkpoint."""
    entries = [json.loads(line) for line in read_lines(folder)]
    edit(entries)
    prev = "0" * 64
    for e in entries:
        e["prev"] = prev
        body = {k: v for k, v in e.items() if k != "hash"}
        e["hash"] = prev = hashlib.sha256(canon(body)).hexdigest()
    write_lines(folder, [canon(e) + b"\n" for e in entries])
    leaves = [bytes.fromhex(e["hash"]) for e in entries]
    checkpoint = {"size": len(entries), "head": prev, "root": ref_root(leaves).hex()}
    (folder / "audit.checkpoint").write_bytes(canon(checkpoint) + b"\n")


# --- writing and reading ----------------------------------------------------------


def test_append_and_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    log = AuditLog.open(folder, clock=ticking_clock())
    first = log.append(OFFICER, Category.COLLECTION, APPOINTMENT, "appointment.create")
    second = log.append("1234/AB", "consultation", "stmt-1:v2", "statement.view")
    third = log.append(OFFICER, Category.DISCLOSURE, "export_7", "evidence.export")

    assert log.entries() == [first, second, third]
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert first.prev == "0" * 64
    assert (second.prev, third.prev) == (first.hash, second.hash)
    assert second.category is Category.CONSULTATION
    assert first.time == "2024-05-01T10:00:00.000Z"
    assert log.head == third.hash and len(log) == 3

    lines = read_lines(folder)
    assert len(lines) == 3
    for entry, line in zip((first, second, third), lines, strict=True):
        obj = json.loads(line)
        assert line == canon(obj) + b"\n"  # keys sorted, compact
        body = {k: v for k, v in obj.items() if k != "hash"}
        assert obj["hash"] == hashlib.sha256(canon(body)).hexdigest() == entry.hash
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"])

    checkpoint = json.loads((folder / "audit.checkpoint").read_bytes())
    leaves = [bytes.fromhex(e.hash) for e in (first, second, third)]
    assert checkpoint == {"size": 3, "head": third.hash, "root": ref_root(leaves).hex()}

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("audit.log", "audit.checkpoint"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600

    result = verify(folder)
    assert (result.ok, result.count, result.first_bad_seq) == (True, 3, None)

    reopened = AuditLog.open(folder)
    fourth = reopened.append(OFFICER, Category.ERASURE, APPOINTMENT, "appointment.purge")
    assert (fourth.seq, fourth.prev) == (4, third.hash)
    assert verify(folder).ok


def test_a_new_log_has_an_empty_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "audit"
    log = AuditLog.open(folder)
    assert log.head == "0" * 64 and log.entries() == []
    assert (folder / "audit.log").read_bytes() == b""
    checkpoint = json.loads((folder / "audit.checkpoint").read_bytes())
    assert checkpoint == {
        "size": 0,
        "head": "0" * 64,
        "root": hashlib.sha256(b"").hexdigest(),
    }
    assert verify(folder).ok


def test_an_empty_log_without_checkpoint_is_a_start_that_was_interrupted(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "audit.log").write_bytes(b"")
    assert verify(folder).ok
    AuditLog.open(folder)
    assert json.loads((folder / "audit.checkpoint").read_bytes())["size"] == 0


def test_time_repeats_rather_than_jumping_back_beyond_the_allowance(tmp_path: Path) -> None:
    times = iter([START, START - timedelta(minutes=2), START - timedelta(hours=1)])
    log = AuditLog.open(tmp_path, clock=lambda: next(times))
    a, b, c = (log.append(OFFICER, Category.CONSULTATION, "x", "a.b") for _ in range(3))
    assert b.time == "2024-05-01T09:58:00.000Z"  # a small step back is kept as it was
    assert c.time == b.time  # a big one would fail verification, so the time repeats
    assert verify(tmp_path).ok


# --- no victim data ---------------------------------------------------------------

REFUSED = [
    ("object_id", "Jane Smith"),
    ("object_id", "jane.smith@example.com"),
    ("object_id", "+447700900123"),
    ("object_id", "07700 900123"),
    ("object_id", "10 Downing Street"),
    ("object_id", ""),
    ("object_id", "a" * 65),
    ("object_id", "apt-1\n"),
    ("object_id", "Zoë"),
    ("object_id", "-starts-with-dash"),
    ("object_id", 12345),
    ("action", "Jane Smith"),
    ("action", "appointment.create jane@example.com"),
    ("action", "Appointment.Create"),
    ("action", "appointment..create"),
    ("action", "appointment.create\n"),
    ("action", "a" * 65),
    ("action", ""),
    ("officer", "jane.smith@police.uk"),
    ("officer", "+44 7700 900123"),
    ("officer", "PC 1234\n"),
    ("officer", "x" * 33),
    ("officer", ""),
    ("officer", " 1234"),
    ("category", "viewing"),
    ("category", "Jane Smith"),
]


@pytest.mark.parametrize(("field", "value"), REFUSED)
def test_anything_but_plain_ids_is_refused_and_nothing_written(
    tmp_path: Path, field: str, value: object
) -> None:
    log = make_log(tmp_path, 2)
    before = snapshot(tmp_path)
    args = {
        "officer": OFFICER,
        "category": Category.CONSULTATION,
        "object_id": APPOINTMENT,
        "action": "appointment.view",
    }
    args[field] = value
    with pytest.raises(ValueError) as excinfo:
        log.append(**args)  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert field in message
    if isinstance(value, str) and len(value) > 3:
        assert value not in message  # the refused value never reaches a log file
    assert snapshot(tmp_path) == before
    assert len(log) == 2
    assert log.append(OFFICER, Category.CONSULTATION, APPOINTMENT, "appointment.view").seq == 3


def test_longest_allowed_values_are_accepted(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path)
    log.append("A" * 32, Category.COMBINATION, "a" * 64, "a" * 64)
    log.append("Sgt 42/Met-B.1_x", "alteration", "urn:42AB1234524", "statement.sign_v2")
    assert verify(tmp_path).ok


# --- tampering --------------------------------------------------------------------


def edit_action_of_entry_7(folder: Path) -> None:
    lines = read_lines(folder)
    lines[6] = lines[6].replace(b"appointment.view", b"appointment.vie_", 1)
    write_lines(folder, lines)


def delete_line(number: int) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        lines = read_lines(folder)
        del lines[number - 1]
        write_lines(folder, lines)

    return mutate


def delete_last(count: int) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        write_lines(folder, read_lines(folder)[:-count])

    return mutate


def swap_lines_3_and_4(folder: Path) -> None:
    lines = read_lines(folder)
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(folder, lines)


def move_line_3_after_line_7(folder: Path) -> None:
    lines = read_lines(folder)
    lines.insert(7, lines.pop(2))
    write_lines(folder, lines)


def duplicate_line_5(folder: Path) -> None:
    lines = read_lines(folder)
    lines.insert(5, lines[4])
    write_lines(folder, lines)


def blank_line_after_4(folder: Path) -> None:
    lines = read_lines(folder)
    lines.insert(4, b"\n")
    write_lines(folder, lines)


def spaces_in_entry_6(folder: Path) -> None:
    lines = read_lines(folder)
    lines[5] = lines[5].replace(b'","', b'", "', 1)
    write_lines(folder, lines)


def rehash_entry_5(folder: Path) -> None:
    """A forger edits entry 5 and recomputes its hash, but not the rest."""
    lines = read_lines(folder)
    obj = json.loads(lines[4])
    obj["object_id"] = "apt-99"
    body = {k: v for k, v in obj.items() if k != "hash"}
    obj["hash"] = hashlib.sha256(canon(body)).hexdigest()
    lines[4] = canon(obj) + b"\n"
    write_lines(folder, lines)


def victim_name_in_entry_3_with_everything_recomputed(folder: Path) -> None:
    forge(folder, lambda entries: entries[2].update(object_id="Jane Smith"))


def time_of_entry_8_an_hour_early_with_everything_recomputed(folder: Path) -> None:
    forge(folder, lambda entries: entries[7].update(time="2024-05-01T09:00:07.000Z"))


def checkpoint_field(name: str, value: object) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / "audit.checkpoint"
        checkpoint = json.loads(path.read_bytes())
        checkpoint[name] = value
        path.write_bytes(canon(checkpoint) + b"\n")

    return mutate


def delete_checkpoint(folder: Path) -> None:
    (folder / "audit.checkpoint").unlink()


def garble_checkpoint(folder: Path) -> None:
    (folder / "audit.checkpoint").write_bytes(b"size=10\n")


TAMPERING = [
    # (what was done, first bad seq, first bad line, words the reason must contain)
    (edit_action_of_entry_7, 7, 7, "entry 7 was edited (its hash does not match its content)"),
    (delete_line(5), 5, 5, "entry 5 is missing (entry 6 follows entry 4)"),
    (delete_line(1), 1, 1, "entry 1 is missing (the log starts at entry 2)"),
    (
        delete_last(1),
        10,
        None,
        "the log ends at entry 9 but the checkpoint records 10 entries: "
        "entries were deleted from the end",
    ),
    (delete_last(3), 8, None, "the log ends at entry 7 but the checkpoint records 10 entries"),
    (delete_last(10), 1, None, "the log is empty but the checkpoint records 10 entries"),
    (swap_lines_3_and_4, 3, 3, "entries out of order at line 3"),
    (move_line_3_after_line_7, 3, 3, "entries out of order at line 3"),
    (duplicate_line_5, 6, 6, "entry 5 appears twice (line 6 repeats line 5)"),
    (blank_line_after_4, 5, 5, "line 5 is not a readable log entry"),
    (spaces_in_entry_6, 6, 6, "entry 6 was edited (line 6 is not in the form the app writes)"),
    (rehash_entry_5, 5, 5, "entry 6 does not link to entry 5"),
    (
        victim_name_in_entry_3_with_everything_recomputed,
        3,
        3,
        "entry 3 was altered (its object_id is not an allowed value)",
    ),
    (
        time_of_entry_8_an_hour_early_with_everything_recomputed,
        8,
        8,
        "entry 8 is dated 2024-05-01T09:00:07.000Z, 60 minutes before entry 7",
    ),
    (
        checkpoint_field("size", 12),
        11,
        None,
        "the log ends at entry 10 but the checkpoint records 12 entries",
    ),
    (checkpoint_field("head", "ab" * 32), None, None, "last hash does not match entry 10"),
    (checkpoint_field("root", "ab" * 32), None, None, "the checkpoint was edited"),
    (checkpoint_field("size", 8), 9, 9, "entries 9 to 10 are not in the checkpoint"),
    (delete_checkpoint, None, None, "the checkpoint file is missing but the log has 10 entries"),
    (garble_checkpoint, None, None, "the checkpoint file is damaged"),
]


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "bad_line", "words"),
    TAMPERING,
    ids=[t[0].__qualname__.split(".")[0] + f"-{i}" for i, t in enumerate(TAMPERING)],
)
def test_tampering_is_found_and_open_refuses_without_writing(
    tmp_path: Path,
    tamper: Callable[[Path], None],
    bad_seq: int | None,
    bad_line: int | None,
    words: str,
) -> None:
    make_log(tmp_path, 10)
    tamper(tmp_path)
    before = snapshot(tmp_path)

    result = verify(tmp_path)
    assert not result.ok and not result.unreadable
    assert words in result.reason
    assert (result.first_bad_seq, result.first_bad_line) == (bad_seq, bad_line)
    assert result.count == (bad_seq - 1 if bad_seq else result.count)
    assert "Jane" not in result.reason

    with pytest.raises(AuditTamperedError) as excinfo:
        AuditLog.open(tmp_path)
    assert excinfo.value.result == result
    assert snapshot(tmp_path) == before

    out = io.StringIO()
    assert run_verify(tmp_path, out) == 1
    assert words in out.getvalue()
    assert snapshot(tmp_path) == before


def test_a_checkpoint_rolled_back_to_an_older_copy(tmp_path: Path) -> None:
    log = make_log(tmp_path, 7)
    old = (tmp_path / "audit.checkpoint").read_bytes()
    for _ in range(3):
        log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view")
    (tmp_path / "audit.checkpoint").write_bytes(old)
    result = verify(tmp_path)
    assert (result.ok, result.first_bad_seq) == (False, 8)
    assert "entries 8 to 10 are not in the checkpoint (which records 7 entries)" in result.reason


def test_a_deleted_log_is_not_replaced_by_a_new_one(tmp_path: Path) -> None:
    make_log(tmp_path, 3)
    (tmp_path / "audit.log").unlink()
    before = snapshot(tmp_path)
    result = verify(tmp_path)
    assert (result.ok, result.unreadable) == (False, True)
    assert "the log was deleted or moved" in result.reason
    with pytest.raises(AuditTamperedError):
        AuditLog.open(tmp_path)
    assert snapshot(tmp_path) == before


# --- crashes ------------------------------------------------------------------------


def test_torn_last_line_is_set_aside_and_recorded(tmp_path: Path) -> None:
    make_log(tmp_path, 5)
    good = (tmp_path / "audit.log").read_bytes()
    torn = b'{"action":"appointment.vi'
    (tmp_path / "audit.log").write_bytes(good + torn)

    result = verify(tmp_path)
    assert (result.ok, result.count, result.torn_bytes) == (True, 5, len(torn))
    assert "unfinished" in result.reason

    recovered_at = datetime(2024, 5, 2, 8, 30, 1, 250000, timezone.utc)
    log = AuditLog.open(tmp_path, clock=lambda: recovered_at)
    kept = tmp_path / "audit.log.torn-20240502T083001.250Z"
    assert kept.read_bytes() == torn
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert (tmp_path / "audit.log").read_bytes().startswith(good)

    entries = log.entries()
    assert len(entries) == 6
    last = entries[-1]
    assert (last.officer, last.category, last.object_id, last.action) == (
        "system",
        Category.ALTERATION,
        "audit-log",
        "audit.recovered_torn_write",
    )
    assert verify(tmp_path).ok and verify(tmp_path).torn_bytes == 0
    assert log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view").seq == 7


def test_a_whole_entry_without_its_newline_is_torn_too(tmp_path: Path) -> None:
    """The newline goes out in the same write; without it the append never returned."""
    make_log(tmp_path, 3)
    lines = read_lines(tmp_path)
    whole_but_unterminated = lines[2].replace(b'"seq":3', b'"seq":4').rstrip(b"\n")
    (tmp_path / "audit.log").write_bytes(b"".join(lines) + whole_but_unterminated)
    assert verify(tmp_path).ok
    AuditLog.open(tmp_path)
    assert len(list(tmp_path.glob("audit.log.torn-*"))) == 1
    assert verify(tmp_path).ok


def test_a_last_entry_cut_in_half_is_deletion_not_a_torn_write(tmp_path: Path) -> None:
    make_log(tmp_path, 5)
    data = (tmp_path / "audit.log").read_bytes()
    (tmp_path / "audit.log").write_bytes(data[:-40])
    before = snapshot(tmp_path)
    result = verify(tmp_path)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert "the log ends at entry 4 but the checkpoint records 5 entries" in result.reason
    with pytest.raises(AuditTamperedError):
        AuditLog.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_crash_before_the_checkpoint_leaves_one_entry_that_open_seals(tmp_path: Path) -> None:
    log = make_log(tmp_path, 4)
    old = (tmp_path / "audit.checkpoint").read_bytes()
    log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view")
    sealed = (tmp_path / "audit.checkpoint").read_bytes()
    (tmp_path / "audit.checkpoint").write_bytes(old)  # as if the process died in between

    result = verify(tmp_path)
    assert (result.ok, result.count, result.pending) == (True, 5, 1)
    assert "not yet in the checkpoint" in result.reason
    AuditLog.open(tmp_path)
    assert (tmp_path / "audit.checkpoint").read_bytes() == sealed
    assert verify(tmp_path).pending == 0


def test_appends_stop_while_the_checkpoint_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log(tmp_path, 2)
    real = audit_log.atomic_write

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_log, "atomic_write", disk_full)
    third = log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view")
    assert third.seq == 3  # durable, so it counts; the checkpoint is one behind
    before = snapshot(tmp_path)
    with pytest.raises(OSError):
        log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view")
    assert snapshot(tmp_path) == before  # never two entries beyond the checkpoint
    assert verify(tmp_path).pending == 1

    monkeypatch.setattr(audit_log, "atomic_write", real)
    assert log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view").seq == 4
    result = verify(tmp_path)
    assert (result.ok, result.count, result.pending) == (True, 4, 0)


def test_a_failed_write_leaves_no_partial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log(tmp_path, 2)
    before = snapshot(tmp_path)

    def half_then_fail(path: Path, data: bytes) -> None:
        with open(path, "ab") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_log, "append_durably", half_then_fail)
    with pytest.raises(OSError):
        log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view")
    assert snapshot(tmp_path) == before
    monkeypatch.undo()
    assert log.append(OFFICER, Category.CONSULTATION, "apt-1", "appointment.view").seq == 3
    assert verify(tmp_path).ok


def test_concurrent_appends_from_four_threads_make_one_valid_chain(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                log.append(f"PC {n}", Category.CONSULTATION, f"apt-{n}-{i}", "appointment.view")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify(tmp_path)
    assert (result.ok, result.count) == (True, 100)
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 101))
    assert {e.object_id for e in entries} == {f"apt-{n}-{i}" for n in range(4) for i in range(25)}


# --- the Merkle root -----------------------------------------------------------------

# The Certificate Transparency reference inputs and tree heads for sizes 0..8.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_merkle_root_known_values() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()
    leaf = bytes(range(32))
    assert merkle_root([leaf]) == hashlib.sha256(b"\x00" + leaf).digest()
    a, b = b"a" * 32, b"b" * 32
    assert merkle_root([a, b]) == hashlib.sha256(b"\x01" + ref_leaf(a) + ref_leaf(b)).digest()
    for size, expected in enumerate(CT_ROOTS):
        assert merkle_root(CT_LEAVES[:size]).hex() == expected


def test_merkle_root_matches_the_recursive_definition_for_every_size() -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(70)]
    for n in range(len(leaves) + 1):
        assert merkle_root(leaves[:n]) == ref_root(leaves[:n]), n


# --- the command line ----------------------------------------------------------------


def test_run_verify_exit_codes_and_messages(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    out = io.StringIO()
    assert run_verify(folder, out) == 2
    assert "Cannot check the audit log: there is no audit log in" in out.getvalue()
    assert not folder.exists()  # verifying never creates anything

    make_log(folder, 3)
    out = io.StringIO()
    assert run_verify(folder, out) == 0
    assert out.getvalue().startswith("Audit log OK: all 3 entries are intact")

    lines = read_lines(folder)
    lines[1] = lines[1].replace(b"apt-2", b"apt-9")
    write_lines(folder, lines)
    out = io.StringIO()
    assert run_verify(folder, out) == 1
    text = out.getvalue()
    assert "AUDIT LOG FAILED VERIFICATION: entry 2 was edited" in text
    assert "First bad entry: 2 (line 2)." in text
    assert "Entries 1 to 1 are confirmed." in text
    assert "IT" in text
    assert format_result(verify(folder)) + "\n" == text


def test_run_verify_reports_an_unreadable_log(tmp_path: Path) -> None:
    (tmp_path / "audit.log").mkdir()  # unreadable as a file on every platform
    out = io.StringIO()
    assert run_verify(tmp_path, out) == 2
    assert "could not be read" in out.getvalue()


def test_run_verify_defaults_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_log(tmp_path, 1)
    assert run_verify(tmp_path) == 0
    assert "Audit log OK" in capsys.readouterr().out


def test_verify_never_writes(tmp_path: Path) -> None:
    make_log(tmp_path, 3)
    (tmp_path / "audit.log").write_bytes((tmp_path / "audit.log").read_bytes() + b'{"x')
    before = snapshot(tmp_path)
    verify(tmp_path)
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == list(before)
