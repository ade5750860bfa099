"""SQLite implementation of the appointment repository.

Only operational fields (slot, URN, offence type, status) are plain columns;
everything that identifies the victim is one encrypted JSON blob per row (see
``crypto.py``). ``secure_delete`` overwrites freed pages, and the rollback
journal (not WAL) keeps the store to one file plus a transient journal.

A connection is used from one thread at a time: the UI runs every store call
on its single writer worker, so reads and writes never race.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..domain.appointment import Appointment, Guardian, OffenceType, Status, VictimDetails
from ..fsutil import PRIVATE_FILE_MODE
from .base import NotFound, StoreCorrupt, StoreError, StoreKeyMismatch
from .crypto import FieldCipher
from .migrations import MIGRATIONS, migrate

STORE_FILE = "store.sqlite3"
_KEY_CHECK = b"evr-desktop store key check v1"


def _victim_to_json(v: VictimDetails) -> bytes:
    return json.dumps(
        {
            "full_name": v.full_name,
            "date_of_birth": v.date_of_birth.isoformat() if v.date_of_birth else None,
            "mobile": v.mobile,
            "guardian": None
            if v.guardian is None
            else {
                "name": v.guardian.name,
                "relationship": v.guardian.relationship,
                "present_for_call": v.guardian.present_for_call,
            },
            "interpreter_language": v.interpreter_language,
            "notes": v.notes,
            "has_smartphone_with_video": v.has_smartphone_with_video,
            "has_data_or_wifi": v.has_data_or_wifi,
            "offender_present": v.offender_present,
            "in_safe_place": v.in_safe_place,
        },
        ensure_ascii=False,
    ).encode("utf-8")


def _victim_from_json(raw: bytes) -> VictimDetails:
    d: dict[str, Any] = json.loads(raw)
    g = d.get("guardian")
    return VictimDetails(
        full_name=d["full_name"],
        date_of_birth=date.fromisoformat(d["date_of_birth"]) if d.get("date_of_birth") else None,
        mobile=d.get("mobile", ""),
        guardian=None if g is None else Guardian(g["name"], g["relationship"], g.get("present_for_call", True)),
        interpreter_language=d.get("interpreter_language", ""),
        notes=d.get("notes", ""),
        has_smartphone_with_video=d.get("has_smartphone_with_video", True),
        has_data_or_wifi=d.get("has_data_or_wifi", True),
        offender_present=d.get("offender_present", False),
        in_safe_place=d.get("in_safe_place"),
    )


def check_integrity(path: Path) -> None:
    """Open read-only and run SQLite's own check; raise StoreCorrupt on damage.

    Read-only (``mode=ro``) so that checking a damaged file can never write to
    it, create a journal beside it, or "repair" it into something else.
    """
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupt(
            f"The local store is damaged ({exc}). Nothing was changed. Restore the profile "
            "from backup or call IT; do not delete the file."
        ) from exc
    if rows != [("ok",)]:
        raise StoreCorrupt(
            "The local store is damaged (SQLite integrity check: "
            + "; ".join(str(r[0]) for r in rows[:3])
            + "). Nothing was changed; call IT."
        )


class SqliteStore:
    def __init__(self, path: Path, key: bytes):
        self.path = Path(path)
        self._cipher = FieldCipher(key)
        self._lock = threading.Lock()
        if self.path.exists():
            check_integrity(self.path)
        else:
            # Create the file with owner-only permissions before SQLite writes a byte.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            os.close(fd)
        try:
            self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=DELETE")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.execute("PRAGMA secure_delete=ON")
            self._con.execute("PRAGMA foreign_keys=ON")
            self._check_version()
            migrate(self._con)
            self._check_key()
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"The local store could not be opened ({exc}).") from exc

    # -- set-up ---------------------------------------------------------------
    def _check_version(self) -> None:
        version = self._con.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"The local store was written by a newer EVR Desktop (schema {version}); "
                "update the app. Nothing was changed."
            )

    def _check_key(self) -> None:
        row = self._con.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        if row is None:
            with self._tx():
                self._con.execute(
                    "INSERT INTO meta(key, value) VALUES ('key_check', ?)",
                    (self._cipher.seal(_KEY_CHECK, "meta:key_check"),),
                )
            return
        try:
            ok = self._cipher.open(row[0], "meta:key_check") == _KEY_CHECK
        except StoreError:
            ok = False
        if not ok:
            self._con.close()
            raise StoreKeyMismatch("The local store belongs to a different vault; it was left untouched.")

    def _tx(self) -> Any:
        store = self

        class _Tx:
            def __enter__(self) -> None:
                store._lock.acquire()
                try:
                    store._con.execute("BEGIN IMMEDIATE")
                except BaseException:
                    # Without this a failed BEGIN (closed store, locked file)
                    # would leave the lock held and hang every later call.
                    store._lock.release()
                    raise

            def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
                try:
                    store._con.execute("ROLLBACK" if exc_type else "COMMIT")
                finally:
                    store._lock.release()

        return _Tx()

    # -- repository -----------------------------------------------------------
    def _row_values(self, a: Appointment) -> tuple[Any, ...]:
        victim = self._cipher.seal(_victim_to_json(a.victim), f"appointment:{a.id}:victim")
        return (
            a.slot.isoformat(), a.urn, a.offence.value, a.status.value, a.duration_minutes, victim,
            datetime.now().astimezone().isoformat(timespec="seconds"),
        )

    def add(self, appointment: Appointment) -> None:
        values = self._row_values(appointment)
        try:
            with self._tx():
                self._con.execute(
                    "INSERT INTO appointment(slot, urn, offence, status, duration_minutes, victim, updated, id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, appointment.id),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"Appointment {appointment.id} already exists.") from exc
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The appointment could not be saved ({exc}); nothing was lost.") from exc

    def update(self, appointment: Appointment) -> None:
        values = self._row_values(appointment)
        try:
            with self._tx():
                cur = self._con.execute(
                    "UPDATE appointment SET slot=?, urn=?, offence=?, status=?, duration_minutes=?,"
                    " victim=?, updated=? WHERE id=?",
                    (*values, appointment.id),
                )
                if cur.rowcount != 1:
                    raise NotFound(f"Appointment {appointment.id} does not exist.")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The appointment could not be saved ({exc}); the old version is kept.") from exc

    def _from_row(self, row: tuple[Any, ...]) -> Appointment:
        id_, slot, urn, offence, status, duration, victim = row
        return Appointment(
            id=id_,
            slot=datetime.fromisoformat(slot),
            urn=urn,
            offence=OffenceType(offence),
            status=Status(status),
            duration_minutes=duration,
            victim=_victim_from_json(self._cipher.open(victim, f"appointment:{id_}:victim")),
        )

    _COLUMNS = "id, slot, urn, offence, status, duration_minutes, victim"

    def get(self, appointment_id: str) -> Appointment:
        with self._lock:
            row = self._con.execute(
                f"SELECT {self._COLUMNS} FROM appointment WHERE id = ?", (appointment_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"Appointment {appointment_id} does not exist.")
        return self._from_row(row)

    def list(self, day: date | None = None) -> list[Appointment]:
        with self._lock:
            if day is None:
                rows = self._con.execute(f"SELECT {self._COLUMNS} FROM appointment ORDER BY slot").fetchall()
            else:
                rows = self._con.execute(
                    f"SELECT {self._COLUMNS} FROM appointment WHERE substr(slot, 1, 10) = ? ORDER BY slot",
                    (day.isoformat(),),
                ).fetchall()
        return [self._from_row(r) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM appointment").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()
