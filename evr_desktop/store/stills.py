"""Stills and the officer's exhibit counter, in the same SQLite store (migration 6).

``next_exhibit_number`` gives the officer's next number and records it in
the same transaction, before any still is taken: the number is spent once
given, so a crash, a failed capture or a second window can never hand the
same number out again (the migration's trigger refuses a counter that goes
down). A still's record (``add``) is written once and never changed; the
trigger also refuses a record whose number the counter never gave.

At rest: the details (file, hashes, sizes, time in the recording, size of the
frame) are one AES-256-GCM blob bound to ``still:ID:details``; the
appointment, officer, number, reference and time taken are plain columns,
like a statement's, so the statement panel can list them in order.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from .base import StoreError
from .sqlite import SqliteStore


@dataclass(frozen=True)
class StillRecord:
    """One still as the app keeps it (the file itself is in the recording's folder)."""

    id: str
    appointment_id: str
    officer: str  # collar or warrant number
    exhibit_number: int
    exhibit: str  # e.g. "RJ/1"
    taken_at: str  # ISO 8601 UTC
    file: str  # the encrypted PNG, absolute path
    ciphertext_sha256: str
    ciphertext_size: int
    plaintext_sha256: str
    plaintext_size: int
    width: int
    height: int
    at_s: float | None  # seconds from the recording's start; None: it had no clock yet
    recording_state: str  # "recording", "starting" or "failed" when the still was taken

    @property
    def at_text(self) -> str:
        from ..domain.exhibit import recording_time

        return recording_time(self.at_s)


_DETAILS = ("file", "ciphertext_sha256", "ciphertext_size", "plaintext_sha256", "plaintext_size", "width",
            "height", "at_s", "recording_state")


def _where(still_id: str) -> str:
    return f"still:{still_id}:details"


class SqliteStillRepository:
    """Stills in an open :class:`SqliteStore`: its connection, cipher, lock and transactions."""

    def __init__(self, store: SqliteStore):
        self._con: sqlite3.Connection = store._con
        self._cipher = store._cipher
        self._lock = store._lock
        self._tx = store._tx

    def next_exhibit_number(self, officer: str) -> int:
        """The officer's next exhibit number, spent as it is given."""
        try:
            with self._tx():
                row = self._con.execute("SELECT last_number FROM exhibit_counter WHERE officer = ?",
                                        (officer,)).fetchone()
                number = 1 if row is None else int(row[0]) + 1
                if row is None:
                    self._con.execute("INSERT INTO exhibit_counter(officer, last_number) VALUES (?, ?)",
                                      (officer, number))
                else:
                    self._con.execute("UPDATE exhibit_counter SET last_number = ? WHERE officer = ?",
                                      (number, officer))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"No exhibit number could be given ({exc}); nothing was taken.") from exc
        return number

    def last_exhibit_number(self, officer: str) -> int:
        with self._lock:
            row = self._con.execute("SELECT last_number FROM exhibit_counter WHERE officer = ?",
                                    (officer,)).fetchone()
        return 0 if row is None else int(row[0])

    def add(self, record: StillRecord) -> None:
        details = {k: v for k, v in asdict(record).items() if k in _DETAILS}
        blob = self._cipher.seal(json.dumps(details, sort_keys=True).encode("utf-8"), _where(record.id))
        try:
            with self._tx():
                self._con.execute(
                    "INSERT INTO still(id, appointment_id, officer, exhibit_number, exhibit, taken_at, details)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.appointment_id, record.officer, record.exhibit_number, record.exhibit,
                     record.taken_at, blob))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The still {record.exhibit} could not be recorded ({exc}); its file is kept.") from exc

    def list_for_appointment(self, appointment_id: str) -> list[StillRecord]:
        with self._lock:
            rows = self._con.execute(
                "SELECT id, appointment_id, officer, exhibit_number, exhibit, taken_at, details FROM still"
                " WHERE appointment_id = ? ORDER BY taken_at, rowid", (appointment_id,)).fetchall()
        return [self._from_row(r) for r in rows]

    def _from_row(self, row: tuple[Any, ...]) -> StillRecord:
        still_id, appointment_id, officer, number, exhibit, taken_at, blob = row
        details = json.loads(self._cipher.open(blob, _where(still_id)))
        return StillRecord(still_id, appointment_id, officer, int(number), exhibit, taken_at,
                           **{k: details.get(k) for k in _DETAILS})


def new_still_id() -> str:
    return uuid.uuid4().hex
