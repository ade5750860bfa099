"""The victim's safety signals in an open :class:`SqliteStore` (same
connection, lock and transactions). Rows hold codes and times only; the
triggers of migration 5 keep a signal as it came and let it be acknowledged
once."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from ..domain.safety import SafetyAlert, Signal, Stage
from .base import NotFound, StoreError
from .sqlite import SqliteStore


class SqliteSafety:
    _COLUMNS = "id, appointment_id, signal, stage, at, held, acknowledged_at, acknowledged_by"

    def __init__(self, store: SqliteStore):
        self._con: sqlite3.Connection = store._con
        self._lock = store._lock
        self._tx = store._tx

    def add(self, appointment_id: str, signal: Signal, stage: Stage, at: datetime, held: bool) -> SafetyAlert:
        if not appointment_id:
            raise ValueError("A safety signal needs an appointment id.")
        try:
            with self._tx():
                cur = self._con.execute(
                    "INSERT INTO safety_alert(appointment_id, signal, stage, at, held) VALUES (?, ?, ?, ?, ?)",
                    (appointment_id, signal.value, stage.value, _iso(at), int(held)),
                )
                row_id = int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            raise StoreError(f"The safety signal could not be saved ({exc}).") from exc
        return SafetyAlert(row_id, appointment_id, signal, stage, at.astimezone(timezone.utc), held)

    def acknowledge(self, appointment_id: str, by: str, at: datetime) -> list[SafetyAlert]:
        """Acknowledge every open alert of the appointment; the ones acknowledged."""
        try:
            with self._tx():
                open_ = self._select("WHERE appointment_id = ? AND acknowledged_at IS NULL", (appointment_id,))
                self._con.execute(
                    "UPDATE safety_alert SET acknowledged_at = ?, acknowledged_by = ?"
                    " WHERE appointment_id = ? AND acknowledged_at IS NULL",
                    (_iso(at), by, appointment_id),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"The acknowledgement could not be saved ({exc}).") from exc
        if not open_:
            raise NotFound(f"Appointment {appointment_id} has no open safety signal.")
        return open_

    def alerts(self, *, open_only: bool = True, appointment_id: str | None = None) -> list[SafetyAlert]:
        where, args = [], []
        if open_only:
            where.append("acknowledged_at IS NULL")
        if appointment_id is not None:
            where.append("appointment_id = ?")
            args.append(appointment_id)
        with self._lock:
            return self._select(("WHERE " + " AND ".join(where)) if where else "", tuple(args))

    def _select(self, where: str, args: tuple) -> list[SafetyAlert]:
        rows = self._con.execute(f"SELECT {self._COLUMNS} FROM safety_alert {where} ORDER BY id", args).fetchall()
        return [
            SafetyAlert(int(r[0]), r[1], Signal(r[2]), Stage(r[3]), _parse(r[4]), bool(r[5]),
                        _parse(r[6]) if r[6] else None, r[7])
            for r in rows
        ]


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("safety signal times are aware (UTC)")
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
