"""The tamper-evident, append-only audit log (Data Protection Act 2018 Part 3).

Part 3 requires a log of collection, alteration, consultation (viewing),
disclosure (export), combination and erasure of personal data. This module
keeps that log as JSON Lines in ``<folder>/audit.log``:

* Every entry is hash-chained: ``hash`` is the SHA-256 of the entry's canonical
  JSON without ``hash``, and ``prev`` is the previous entry's ``hash`` (64 zeros
  for entry 1). Editing, deleting, reordering or duplicating a line breaks the
  chain at that line.
* ``<folder>/audit.checkpoint`` records the size, the last hash and the RFC 6962
  Merkle root of all entry hashes. It catches what a chain cannot: entries
  deleted from the end. The root is what an export's audit extract carries, so a
  third party can later check that the extract is part of this log.
* The log carries IDs and action codes only, never victim data. ``append``
  refuses (``ValueError``) any value that is not a plain identifier, before
  anything is written, and the error message never repeats the refused value
  (it could be a name or phone number, and messages end up in app logs).

What a local log cannot prove: someone who can write to the folder can rebuild
the whole chain and checkpoint, or delete the folder. The checkpoint root
travelling with each evidence export is the defence against that.

Entries after the checkpoint: ``append`` makes the line durable (fsync) before
it rewrites the checkpoint, so a crash in between leaves exactly one entry that
the checkpoint does not yet cover. ``verify`` accepts that one entry (it is
still fully chain-checked; ``VerifyResult.pending`` is 1) and ``AuditLog.open``
seals it by rewriting the checkpoint. Two or more entries beyond the checkpoint
cannot come from a crash (``append`` refuses to write while the checkpoint is
behind) and count as tampering.

A torn last line (bytes after the last newline) is an append that was cut off
by a crash: the newline goes out in the same write as the entry and the caller
only hears of success after the fsync, so that entry was never acknowledged.
It is benign only when the complete lines match the checkpoint exactly;
``open`` then sets the bytes aside in ``audit.log.torn-<UTC time>``, truncates
them off and logs ``audit.recovered_torn_write``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from evr_desktop.domain.audit import Category  # re-exported: audit.log.Category
from evr_desktop.fsutil import append_durably, atomic_write, ensure_private_dir

LOG_NAME = "audit.log"
CHECKPOINT_NAME = "audit.checkpoint"
TORN_PREFIX = "audit.log.torn-"
ZERO_HASH = "0" * 64

# The wall clock can step backwards legitimately: NTP or Windows Time
# correcting a drifting laptop clock, a VM or a laptop resuming from sleep.
# Such steps are seconds, rarely a minute or two, so the verifier tolerates 5
# minutes. The chain (seq and prev), not the time, is what proves order; the
# time check only catches an entry moved, or a time edited, by someone who
# also recomputed the hashes. ``append`` never writes a time that the verifier
# would reject: after a bigger backwards step it repeats the previous time.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

OBJECT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
ACTION_MAX = 64
OFFICER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,31}")
_TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_HEX64_PATTERN = re.compile(r"[0-9a-f]{64}")

ENTRY_KEYS = frozenset(
    {"seq", "time", "officer", "category", "object_id", "action", "prev", "hash"}
)
CHECKPOINT_KEYS = frozenset({"size", "head", "root"})

RECOVERY_ACTION = "audit.recovered_torn_write"
RECOVERY_OBJECT_ID = "audit-log"
SYSTEM_OFFICER = "system"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str  # ISO 8601 UTC with milliseconds, e.g. 2024-05-01T10:15:00.123Z
    officer: str  # collar or warrant number, or "system"
    category: Category
    object_id: str
    action: str  # a code such as "appointment.create"
    prev: str  # hex SHA-256 of the previous entry; 64 zeros for entry 1
    hash: str  # hex SHA-256 of this entry's canonical JSON without "hash"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "officer": self.officer,
            "category": str(self.category),
            "object_id": self.object_id,
            "action": self.action,
            "prev": self.prev,
            "hash": self.hash,
        }

    def to_line(self) -> bytes:
        return canonical_json(self.to_dict()) + b"\n"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking a log folder.

    ``first_bad_seq`` is the earliest entry that may have been tampered with
    (entries before it are confirmed), or None when the fault cannot be pinned
    to an entry (the checkpoint itself is damaged or disagrees with a chain
    that is internally consistent). ``first_bad_line`` is the 1-based line
    where the problem shows, when there is one.
    """

    ok: bool
    count: int
    first_bad_seq: int | None = None
    first_bad_line: int | None = None
    reason: str = ""
    unreadable: bool = False  # no log to check (missing, not readable): exit code 2
    pending: int = 0  # complete entries not yet covered by the checkpoint (0 or 1)
    torn_bytes: int = 0  # bytes of an unfinished last line left by a crash


class AuditTamperedError(Exception):
    """The log failed verification; the app must stop and send the officer to IT."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(result.reason)
        self.result = result


# --- hashing -----------------------------------------------------------------


def canonical_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def entry_hash(fields: dict[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``fields`` without "hash"."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class _MerkleAccumulator:
    """RFC 6962 Merkle Tree Hash, built incrementally.

    Keeps the roots of the complete subtrees ("peaks", sizes strictly
    decreasing powers of two, left to right). Appending is amortised O(1) hashes
    and the root costs O(log n): folding the peaks from the right reproduces the
    RFC's split at the largest power of two smaller than n.
    """

    def __init__(self) -> None:
        self._peaks: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        self._peaks.append((1, _leaf_hash(leaf)))
        self.size += 1
        while len(self._peaks) >= 2 and self._peaks[-1][0] == self._peaks[-2][0]:
            right_size, right = self._peaks.pop()
            left_size, left = self._peaks.pop()
            self._peaks.append((left_size + right_size, _node_hash(left, right)))

    def root(self) -> bytes:
        if not self._peaks:
            return hashlib.sha256(b"").digest()
        acc = self._peaks[-1][1]
        for _, peak in reversed(self._peaks[:-1]):
            acc = _node_hash(peak, acc)
        return acc


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash of ``leaves`` (for this log: raw 32-byte entry hashes)."""
    acc = _MerkleAccumulator()
    for leaf in leaves:
        acc.add(leaf)
    return acc.root()


# --- validation ----------------------------------------------------------------


def _check_field(name: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    # fullmatch, not match with "$": "$" would let a trailing newline through.
    # The message names the field and the rule, never the value.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"audit {name} refused: it must be {rule}")
    return value


def validate_officer(value: object) -> str:
    return _check_field(
        "officer",
        value,
        OFFICER_PATTERN,
        "a collar or warrant number (letters, digits, space . _ / -, up to 32)",
    )


def validate_object_id(value: object) -> str:
    return _check_field(
        "object_id",
        value,
        OBJECT_ID_PATTERN,
        "an identifier (letters, digits . _ : -, up to 64, no spaces)",
    )


def validate_action(value: object) -> str:
    value = _check_field(
        "action",
        value,
        ACTION_PATTERN,
        "an action code such as appointment.create (lowercase, digits, _ and .)",
    )
    if len(value) > ACTION_MAX:
        raise ValueError(f"audit action refused: it must be at most {ACTION_MAX} characters")
    return value


def validate_category(value: object) -> Category:
    if isinstance(value, str):  # a Category is a str too
        try:
            return Category(value)
        except ValueError:
            pass
    allowed = ", ".join(c.value for c in Category)
    raise ValueError(f"audit category refused: it must be one of {allowed}")


def _format_time(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    """Parse a time in the log's format; ValueError for anything else."""
    if not _TIME_PATTERN.fullmatch(text):
        raise ValueError("not in the log's time format")
    # fromisoformat is ~20x faster than strptime, which matters at 100k entries.
    return datetime.fromisoformat(text[:-1] + "+00:00")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --- reading and verifying -------------------------------------------------------


@dataclass
class _Scan:
    result: VerifyResult
    fresh: bool = False  # neither file exists: open starts a new log
    merkle: _MerkleAccumulator | None = None  # over every complete entry
    last_seq: int = 0
    last_time: datetime | None = None
    head: str = ZERO_HASH
    good_length: int = 0  # bytes up to the end of the last complete line
    torn: bytes = b""
    checkpoint_needed: bool = False  # pending entry, or an empty log without checkpoint


def _bad(count: int, reason: str, seq: int | None = None, line: int | None = None) -> _Scan:
    return _Scan(VerifyResult(False, count, seq, line, reason))


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _span(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first} to {last} are"


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _seq_appears_later(lines: list[bytes], start: int, seq: int) -> bool:
    for raw in lines[start:]:
        obj = _parse_line(raw)
        if obj is not None and obj.get("seq") == seq:
            return True
    return False


def _read_checkpoint(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The checkpoint, or None with a reason. Raises FileNotFoundError."""
    data = path.read_bytes()
    obj = _parse_line(data.rstrip(b"\n"))
    if obj is None:
        return None, "the checkpoint file is damaged (it is not valid JSON)"
    if set(obj) != CHECKPOINT_KEYS:
        return None, "the checkpoint file is damaged (it does not have the expected fields)"
    size, head, root = obj["size"], obj["head"], obj["root"]
    if (
        not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or not isinstance(head, str)
        or not _HEX64_PATTERN.fullmatch(head)
        or not isinstance(root, str)
        or not _HEX64_PATTERN.fullmatch(root)
    ):
        return None, "the checkpoint file is damaged (a field has the wrong form)"
    if data != canonical_json(obj) + b"\n":
        return None, "the checkpoint file was edited (it is not in the form the app writes)"
    return obj, ""


def _scan(folder: Path) -> _Scan:
    folder = Path(folder)
    log_path = folder / LOG_NAME
    cp_path = folder / CHECKPOINT_NAME

    try:
        data = log_path.read_bytes()
    except FileNotFoundError:
        if not cp_path.exists():
            # A new log may be started only where no audit file has ever been:
            # a set-aside torn write proves an earlier log existed.
            leftovers = folder.is_dir() and any(folder.glob(TORN_PREFIX + "*"))
            reason = f"there is no audit log in {folder}"
            if leftovers:
                reason += ", although files set aside from an earlier log are there"
            return _Scan(
                VerifyResult(False, 0, reason=reason, unreadable=True), fresh=not leftovers
            )
        return _Scan(
            VerifyResult(
                False,
                0,
                reason=(
                    f"the audit log file is missing from {folder}, but its checkpoint is "
                    "there: the log was deleted or moved"
                ),
                unreadable=True,
            )
        )
    except OSError as exc:
        return _Scan(
            VerifyResult(
                False,
                0,
                reason=f"the audit log could not be read ({exc.strerror or exc})",
                unreadable=True,
            )
        )

    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline, as it should
    good_length = len(data) - len(torn)

    # Read the checkpoint first so the Merkle root at its size can be taken on
    # the way past, in the one pass over the entries.
    checkpoint, damage, cp_missing, cp_error = None, "", False, ""
    try:
        checkpoint, damage = _read_checkpoint(cp_path)
    except FileNotFoundError:
        cp_missing = True
    except OSError as exc:
        cp_error = f"{exc.strerror or exc}"
    cp_size = checkpoint["size"] if checkpoint else -1
    merkle = _MerkleAccumulator()
    root_at_size = merkle.root() if cp_size == 0 else b""
    head_at_size = ZERO_HASH

    seen: dict[str, int] = {}  # entry hash -> line number, to recognise duplicates
    prev_hash = ZERO_HASH
    prev_time: datetime | None = None
    count = 0

    for index, raw in enumerate(lines):
        line_no = index + 1
        expected = count + 1
        obj = _parse_line(raw)
        if obj is None:
            return _bad(
                count,
                f"line {line_no} is not a readable log entry (entry {expected} should be there)",
                expected,
                line_no,
            )
        if set(obj) != ENTRY_KEYS:
            return _bad(
                count,
                f"entry {expected} was edited (line {line_no} does not have the expected fields)",
                expected,
                line_no,
            )
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not all(
            isinstance(obj[k], str) for k in ENTRY_KEYS - {"seq"}
        ):
            return _bad(
                count,
                f"entry {expected} was edited (a field on line {line_no} has the wrong type)",
                expected,
                line_no,
            )
        canonical = canonical_json(obj)
        if raw == canonical:
            # Cheaper than re-encoding the entry without "hash": in canonical
            # form the hash field sits mid-line, followed by a comma, and its
            # text cannot occur inside a JSON string (quotes there are escaped).
            marker = b'"hash":' + json.dumps(obj["hash"]).encode("ascii") + b","
            actual = hashlib.sha256(raw.replace(marker, b"", 1)).hexdigest()
        else:
            actual = entry_hash(obj)
        if actual != obj["hash"]:
            return _bad(
                count,
                f"entry {expected} was edited (its hash does not match its content)",
                expected,
                line_no,
            )
        if raw != canonical:
            return _bad(
                count,
                f"entry {expected} was edited (line {line_no} is not in the form the app writes)",
                expected,
                line_no,
            )

        if seq != expected:
            if seq < expected and obj["hash"] in seen:
                reason = (
                    f"entry {seq} appears twice (line {line_no} repeats line {seen[obj['hash']]})"
                )
            elif seq < expected:
                reason = (
                    f"entries out of order at line {line_no} "
                    f"(entry {seq} comes after entry {expected - 1})"
                )
            elif _seq_appears_later(lines, index + 1, expected):
                reason = (
                    f"entries out of order at line {line_no} "
                    f"(entry {seq} comes before entry {expected})"
                )
            elif expected == 1:
                reason = f"entry 1 is missing (the log starts at entry {seq})"
            elif seq == expected + 1:
                reason = f"entry {expected} is missing (entry {seq} follows entry {expected - 1})"
            else:
                reason = (
                    f"{_span(expected, seq - 1)} missing "
                    f"(entry {seq} follows entry {expected - 1})"
                )
            return _bad(count, reason, expected, line_no)

        if obj["prev"] != prev_hash:
            if expected == 1:
                return _bad(
                    count,
                    "entry 1 was edited (it does not start the chain: its previous hash is "
                    "not all zeros)",
                    1,
                    line_no,
                )
            # Both hashes recompute, so one of the two was rewritten with a
            # fresh hash; the earlier one is the first that may be bad.
            return _bad(
                count - 1,
                f"entry {seq} does not link to entry {seq - 1} (its record of the previous "
                f"entry's hash differs): entry {seq - 1} or {seq} was rewritten",
                seq - 1,
                line_no - 1,
            )

        problem, entry_time = _field_problem(obj)
        if problem or entry_time is None:
            return _bad(
                count,
                f"entry {seq} was altered ({problem}); the app never writes such an entry",
                seq,
                line_no,
            )
        if prev_time is not None and entry_time < prev_time - CLOCK_SKEW_ALLOWANCE:
            minutes = round((prev_time - entry_time).total_seconds() / 60)
            return _bad(
                count,
                f"entry {seq} is dated {obj['time']}, {minutes} minutes before entry {seq - 1} "
                f"({_format_time(prev_time)}): entries were moved or a time was edited",
                seq,
                line_no,
            )

        seen[obj["hash"]] = line_no
        merkle.add(bytes.fromhex(obj["hash"]))
        prev_hash = obj["hash"]
        prev_time = entry_time
        count += 1
        if count == cp_size:
            root_at_size = merkle.root()
            head_at_size = prev_hash

    # The chain is intact; now compare it with the checkpoint.
    scan = _Scan(
        VerifyResult(True, count),
        merkle=merkle,
        last_seq=count,
        last_time=prev_time,
        head=prev_hash,
        good_length=good_length,
        torn=torn,
    )
    torn_note = f" and an unfinished line follows entry {count}" if torn else ""
    if cp_missing:
        if count == 0 and not torn:
            scan.result = VerifyResult(
                True, 0, reason="the audit log is empty (the checkpoint will be created)"
            )
            scan.checkpoint_needed = True
            return scan
        return _bad(
            count,
            f"the checkpoint file is missing but the log has {_plural(count, 'entry')}"
            f"{torn_note}: the checkpoint was deleted",
        )
    if cp_error:
        return _bad(count, f"the checkpoint could not be read ({cp_error})")
    if checkpoint is None:
        return _bad(count, damage)

    size = checkpoint["size"]
    if count < size:
        end = f"the log ends at entry {count}" if count else "the log is empty"
        return _bad(
            count,
            f"{end} but the checkpoint records {size} entries: entries were deleted from "
            f"the end{' (an unfinished line follows)' if torn else ''}",
            count + 1,
        )
    if count > size + 1 or (count == size + 1 and torn):
        return _bad(
            size,
            f"{_span(size + 1, count)} not in the checkpoint (which records "
            f"{_plural(size, 'entry')}){torn_note}: entries were added outside the app, or "
            "the checkpoint was replaced with an older one",
            size + 1,
            size + 1,
        )
    if checkpoint["head"] != head_at_size:
        return _bad(
            count,
            f"the checkpoint's last hash does not match entry {size}: the log was rewritten "
            "from some point with new hashes, or the checkpoint was edited",
        )
    if checkpoint["root"] != root_at_size.hex():
        return _bad(
            count,
            "the checkpoint's Merkle root does not match the entries although its last hash "
            "does: the checkpoint was edited",
        )

    pending = count - size
    notes = []
    if pending:
        notes.append(
            f"entry {count} was written just before the app stopped and is not yet in the "
            "checkpoint; it will be added when the app next opens the log"
        )
        scan.checkpoint_needed = True
    if torn:
        notes.append(
            f"{_plural(len(torn), 'byte')} of an unfinished entry (a write cut off by a "
            "crash, never confirmed) follow; the app will set them aside when it next opens "
            "the log"
        )
    reason = f"all {_plural(count, 'entry')} are intact and match the checkpoint"
    if notes:
        reason += "; " + "; ".join(notes)
    scan.result = VerifyResult(True, count, reason=reason, pending=pending, torn_bytes=len(torn))
    return scan


def _field_problem(obj: dict[str, Any]) -> tuple[str, datetime | None]:
    """What is wrong with an entry's fields ("" if nothing), and its time."""
    checks: Iterable[tuple[str, Callable[[object], object]]] = (
        ("officer", validate_officer),
        ("category", validate_category),
        ("object_id", validate_object_id),
        ("action", validate_action),
    )
    for name, check in checks:
        try:
            check(obj[name])
        except ValueError:
            return f"its {name} is not an allowed value", None
    if not _HEX64_PATTERN.fullmatch(obj["prev"]):
        return "its previous hash is not in the app's format", None
    try:
        return "", _parse_time(obj["time"])
    except ValueError:
        return "its time is not a valid time in the app's format", None


def verify(folder: Path) -> VerifyResult:
    """Check the log in ``folder``. Reads only; never writes or repairs."""
    return _scan(Path(folder)).result


def format_result(result: VerifyResult) -> str:
    if result.unreadable:
        return f"Cannot check the audit log: {result.reason}."
    if result.ok:
        return f"Audit log OK: {result.reason}."
    lines = [f"AUDIT LOG FAILED VERIFICATION: {result.reason}."]
    if result.first_bad_seq is not None:
        where = f" (line {result.first_bad_line})" if result.first_bad_line else ""
        lines.append(f"First bad entry: {result.first_bad_seq}{where}.")
        confirmed = result.first_bad_seq - 1
        lines.append(
            f"Entries 1 to {confirmed} are confirmed." if confirmed else "No entry is confirmed."
        )
    lines.append(
        "Keep the folder exactly as it is (do not edit, copy over or delete files) "
        "and report it to the force's IT security team."
    )
    return "\n".join(lines)


def run_verify(folder: Path, out: TextIO | None = None) -> int:
    """`evr-desktop audit verify`: 0 intact, 1 tampered, 2 missing or unreadable."""
    out = out if out is not None else sys.stdout  # resolved late so tests can capture it
    result = verify(Path(folder))
    print(format_result(result), file=out)
    if result.unreadable:
        return 2
    return 0 if result.ok else 1


# --- the log -------------------------------------------------------------------


class AuditLog:
    """An open, verified audit log. Construct with ``AuditLog.open(folder)``."""

    def __init__(self, folder: Path, scan: _Scan, clock: Callable[[], datetime]) -> None:
        self._folder = folder
        self._log_path = folder / LOG_NAME
        self._cp_path = folder / CHECKPOINT_NAME
        self._clock = clock
        self._lock = threading.Lock()
        self._merkle = scan.merkle or _MerkleAccumulator()
        self._seq = scan.last_seq
        self._head = scan.head
        self._last_time = scan.last_time
        self._length = scan.good_length  # bytes on disk that are ours and complete
        self._checkpoint_stale = False

    @classmethod
    def open(cls, folder: Path, *, clock: Callable[[], datetime] = _utc_now) -> AuditLog:
        """Open (or create) the log in ``folder``.

        Raises ``AuditTamperedError`` and writes nothing if verification fails.
        """
        folder = Path(folder)
        scan = _scan(folder)
        if scan.fresh:
            ensure_private_dir(folder)
            append_durably(folder / LOG_NAME, b"")
            log = cls(folder, _Scan(VerifyResult(True, 0)), clock)
            log._write_checkpoint()
            return log
        if not scan.result.ok:
            raise AuditTamperedError(scan.result)
        ensure_private_dir(folder)
        log = cls(folder, scan, clock)
        if scan.torn:
            log._set_aside_torn(scan.torn)
            log.append(SYSTEM_OFFICER, Category.ALTERATION, RECOVERY_OBJECT_ID, RECOVERY_ACTION)
        elif scan.checkpoint_needed:
            log._write_checkpoint()
        return log

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def head(self) -> str:
        """Hex hash of the last entry (64 zeros when the log is empty)."""
        with self._lock:
            return self._head

    def __len__(self) -> int:
        with self._lock:
            return self._seq

    def checkpoint(self) -> tuple[int, str, str]:
        """(size, head, Merkle root hex) now: what a signed checkpoint signs."""
        with self._lock:
            return self._seq, self._head, self._merkle.root().hex()

    def append(
        self, officer: str, category: Category | str, object_id: str, action: str
    ) -> AuditEntry:
        """Record one action. Durable (fsynced) before it returns.

        Raises ``ValueError`` for any value that is not a plain ID or code;
        nothing is written then.
        """
        officer = validate_officer(officer)
        category = validate_category(category)
        object_id = validate_object_id(object_id)
        action = validate_action(action)
        with self._lock:
            if self._checkpoint_stale:
                # Keeps "at most one entry beyond the checkpoint" true: without
                # a checkpoint we refuse to write rather than fall further behind.
                self._write_checkpoint()
            moment = self._clock().astimezone(timezone.utc)
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            if self._last_time is not None and moment < self._last_time - CLOCK_SKEW_ALLOWANCE:
                moment = self._last_time
            fields: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": _format_time(moment),
                "officer": officer,
                "category": str(category),
                "object_id": object_id,
                "action": action,
                "prev": self._head,
            }
            fields["hash"] = entry_hash(fields)
            entry = AuditEntry(**{**fields, "category": category})
            line = entry.to_line()
            try:
                append_durably(self._log_path, line)
            except BaseException:
                self._undo_partial_append()
                raise
            self._seq = entry.seq
            self._head = entry.hash
            self._last_time = moment
            self._length += len(line)
            self._merkle.add(bytes.fromhex(entry.hash))
            try:
                self._write_checkpoint()
            except OSError:
                # The entry itself is durable, so report success; the next
                # append retries the checkpoint first and fails loudly if it
                # still cannot be written.
                self._checkpoint_stale = True
            return entry

    def entries(self) -> list[AuditEntry]:
        """Every entry, read back from disk."""
        with self._lock:
            data = self._log_path.read_bytes()[: self._length]
        result = []
        for raw in data.splitlines():
            obj = json.loads(raw)
            obj["category"] = Category(obj["category"])
            result.append(AuditEntry(**obj))
        return result

    def _write_checkpoint(self) -> None:
        checkpoint = {"size": self._seq, "head": self._head, "root": self._merkle.root().hex()}
        atomic_write(self._cp_path, canonical_json(checkpoint) + b"\n")
        self._checkpoint_stale = False

    def _undo_partial_append(self) -> None:
        # A failed write (full disk) may have left part of a line; cut it off so
        # the next append starts on a clean line.
        try:
            fd = os.open(self._log_path, os.O_WRONLY)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size > self._length:
                os.ftruncate(fd, self._length)
                os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _set_aside_torn(self, torn: bytes) -> None:
        # Keep the bytes first, then cut them off: a crash in between leaves a
        # second copy next time, never a loss.
        stamp = self._clock().astimezone(timezone.utc)
        base = TORN_PREFIX + stamp.strftime("%Y%m%dT%H%M%S") + f".{stamp.microsecond // 1000:03d}Z"
        target = self._folder / base
        n = 2
        while target.exists():
            target = self._folder / f"{base}-{n}"
            n += 1
        atomic_write(target, torn)
        fd = os.open(self._log_path, os.O_WRONLY)
        try:
            os.ftruncate(fd, self._length)
            os.fsync(fd)
        finally:
            os.close(fd)
