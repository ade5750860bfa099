"""The SMS outbox, in the same SQLite store as the appointments (migration 3).

This machine reaches no SMS gateway, so the join-link text for a victim waits
here until the officer copies it and sends it from a work phone. Each message
holds a live join link and the victim's mobile number, so both are AES-256-GCM
with associated data naming the row and column (``outbox:ID:body``,
``outbox:ID:to``): a blob copied into another row fails to decrypt. Only the
appointment id, the times and the status are plain.

A message is never edited; only its status moves on::

    queued --copied--> copied --(copied again)--> copied
       |                  |
       +------------------+--> sent       (the officer says it went)
       +------------------+--> cancelled  (superseded by a newer link, or withdrawn)

Migration 3's triggers hold the same rules in the database itself.
``delete``/``delete_for_appointment`` erase messages once they are no longer
needed (the store runs with ``secure_delete``, so freed pages are zeroed).
"""

from __future__ import annotations

import enum
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .base import NotFound, StoreError
from .sqlite import SqliteStore


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"
    COPIED = "copied"
    SENT = "sent"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    OutboxStatus.QUEUED: "Waiting to be sent",
    OutboxStatus.COPIED: "Copied",
    OutboxStatus.SENT: "Sent",
    OutboxStatus.CANCELLED: "Cancelled",
}

OUTBOX_TRANSITIONS: dict[OutboxStatus, frozenset[OutboxStatus]] = {
    OutboxStatus.QUEUED: frozenset({OutboxStatus.COPIED, OutboxStatus.SENT, OutboxStatus.CANCELLED}),
    OutboxStatus.COPIED: frozenset({OutboxStatus.COPIED, OutboxStatus.SENT, OutboxStatus.CANCELLED}),
    OutboxStatus.SENT: frozenset(),
    OutboxStatus.CANCELLED: frozenset(),
}
OPEN_STATUSES = frozenset({OutboxStatus.QUEUED, OutboxStatus.COPIED})


class OutboxTransitionError(StoreError):
    """A status change the outbox does not allow (the message says which)."""


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    appointment_id: str
    created: datetime
    updated: datetime
    status: OutboxStatus
    # Kept out of repr so that a message object that ends up in a log line or
    # a traceback does not carry the number or the link with it.
    to_e164: str = field(repr=False)
    body: str = field(repr=False)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _body_where(message_id: str) -> str:
    return f"outbox:{message_id}:body"


def _to_where(message_id: str) -> str:
    return f"outbox:{message_id}:to"


class SqliteOutbox:
    """The outbox in an open :class:`SqliteStore`: same connection, cipher,
    lock and transactions (the store's single writer worker runs all three)."""

    _COLUMNS = 'id, appointment_id, created, updated, status, body, "to"'

    def __init__(self, store: SqliteStore):
        self._con: sqlite3.Connection = store._con
        self._cipher = store._cipher
        self._lock = store._lock
        self._tx = store._tx

    # -- writing --------------------------------------------------------------
    def add(self, appointment_id: str, to_e164: str, body: str, *, supersede: bool = True) -> OutboxMessage:
        """Queue a message. With ``supersede`` (the default), open messages for
        the same appointment are cancelled in the same transaction: a new join
        link revokes the old one, so the old text must not be sent."""
        if not appointment_id:
            raise ValueError("An outbox message needs an appointment id.")
        message_id = uuid.uuid4().hex
        now = _now()
        try:
            with self._tx():
                if supersede:
                    self._con.execute(
                        "UPDATE outbox SET status = 'cancelled', updated = ?"
                        " WHERE appointment_id = ? AND status IN ('queued', 'copied')",
                        (now, appointment_id),
                    )
                self._con.execute(
                    f"INSERT INTO outbox({self._COLUMNS}) VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                    (
                        message_id, appointment_id, now, now,
                        self._cipher.seal(body.encode("utf-8"), _body_where(message_id)),
                        self._cipher.seal(to_e164.encode("ascii"), _to_where(message_id)),
                    ),
                )
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The text message could not be put in the outbox ({exc}).") from exc
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"The outbox refused the text message ({exc}).") from exc
        return OutboxMessage(
            id=message_id, appointment_id=appointment_id, created=datetime.fromisoformat(now),
            updated=datetime.fromisoformat(now), status=OutboxStatus.QUEUED, to_e164=to_e164, body=body,
        )

    def set_status(self, message_id: str, status: OutboxStatus | str) -> OutboxMessage:
        new = OutboxStatus(status)
        try:
            with self._tx():
                row = self._con.execute("SELECT status FROM outbox WHERE id = ?", (message_id,)).fetchone()
                if row is None:
                    raise NotFound(f"Outbox message {message_id} does not exist.")
                old = OutboxStatus(row[0])
                if new not in OUTBOX_TRANSITIONS[old]:
                    raise OutboxTransitionError(
                        f"An outbox message that is '{old.label.lower()}' cannot become '{new.label.lower()}'."
                    )
                self._con.execute(
                    "UPDATE outbox SET status = ?, updated = ? WHERE id = ?", (new.value, _now(), message_id)
                )
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The outbox could not be updated ({exc}).") from exc
        except sqlite3.IntegrityError as exc:
            raise OutboxTransitionError(f"The outbox refused the change ({exc}).") from exc
        return self.get(message_id)

    def delete(self, message_id: str) -> None:
        with self._tx():
            cur = self._con.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
            if cur.rowcount != 1:
                raise NotFound(f"Outbox message {message_id} does not exist.")

    def delete_for_appointment(self, appointment_id: str) -> int:
        with self._tx():
            return int(self._con.execute("DELETE FROM outbox WHERE appointment_id = ?", (appointment_id,)).rowcount)

    # -- reading --------------------------------------------------------------
    def _decode(self, row: tuple[Any, ...]) -> OutboxMessage:
        id_, appointment_id, created, updated, status, body, to = row
        return OutboxMessage(
            id=id_,
            appointment_id=appointment_id,
            created=datetime.fromisoformat(created),
            updated=datetime.fromisoformat(updated),
            status=OutboxStatus(status),
            to_e164=self._cipher.open(to, _to_where(id_)).decode("ascii"),
            body=self._cipher.open(body, _body_where(id_)).decode("utf-8"),
        )

    def get(self, message_id: str) -> OutboxMessage:
        with self._lock:
            row = self._con.execute(f"SELECT {self._COLUMNS} FROM outbox WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"Outbox message {message_id} does not exist.")
        return self._decode(row)

    def list(
        self, appointment_id: str | None = None, statuses: Iterable[OutboxStatus | str] | None = None
    ) -> list[OutboxMessage]:
        """Messages, newest first; optionally for one appointment and/or some statuses."""
        where, args = [], []
        if appointment_id is not None:
            where.append("appointment_id = ?")
            args.append(appointment_id)
        if statuses is not None:
            wanted = [OutboxStatus(s).value for s in statuses]
            if not wanted:
                return []
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        sql = f"SELECT {self._COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, rowid DESC"
        with self._lock:
            rows = self._con.execute(sql, args).fetchall()
        return [self._decode(r) for r in rows]
