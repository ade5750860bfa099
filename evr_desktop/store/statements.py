"""Statements and their versions, in the same SQLite store as the appointments.

The rules (docs/domain.md, "Evidence handling" and "Signing when the statement is taken remotely"):

- A draft whose content differs from the one before is kept: every change is a
  new version, numbered 1, 2, 3 ... per statement; a version is never updated
  or deleted. Saving content equal to the latest version adds nothing, so an
  autosave every few seconds does not pile up identical copies.
- Once signed, the signed version and its PDF stay as they were. A later change
  is a new version that must carry a reason (an annotation, in the words of the
  domain brief), never an edit of the signed one.

Migration 2 (``migrations.py``) adds triggers so that SQLite itself refuses an
UPDATE or DELETE of a version and any change to a recorded signature; this
module keeps to the same rules and says why in words an officer can act on.

The restricted rear page is signed as a PDF of its own and recorded with the
statement's signature, in the same transaction (migration 4): it is never part
of the statement PDF, so the statement can be disclosed without it.

At rest: the content (canonical JSON), the reason and the signed PDFs are
AES-256-GCM with associated data naming the statement and the version, so a
blob copied into another row, another statement or another version fails to
decrypt. ``content_hash`` is an HMAC-SHA256 under a random key that is itself
kept sealed in ``meta``: a plain SHA-256 of the text would let anyone holding
the file confirm a guessed statement. The statement type, appointment id,
version numbers and timestamps are plain: they are operational and let the
queue list statements without decrypting a narrative.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.statement_doc import StatementContent, StatementType, StatementVersion, new_statement_id
from .base import NotFound, StoreError
from .sqlite import SqliteStore

_MAC_KEY_NAME = "statement_content_mac_key"  # a row of meta, sealed
_MAC_KEY_WHERE = f"meta:{_MAC_KEY_NAME}"


class StatementLocked(StoreError):
    """The statement is signed: a change needs a reason and becomes a new version."""


@dataclass(frozen=True)
class StatementSummary:
    """What a list of statements shows, read without decrypting any content."""

    id: str
    statement_type: StatementType
    appointment_id: str | None
    created: datetime
    latest_number: int | None  # None: created, nothing saved yet
    saved_at: datetime | None  # when the latest version was saved
    signed: bool
    signed_version: int | None = None


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _content_where(statement_id: str, number: int) -> str:
    return f"statement:{statement_id}:version:{number}"


def _reason_where(statement_id: str, number: int) -> str:
    return f"statement:{statement_id}:version:{number}:reason"


def _pdf_where(statement_id: str, number: int) -> str:
    return f"statement:{statement_id}:signed_pdf:{number}"


def _rear_pdf_where(statement_id: str, number: int) -> str:
    return f"statement:{statement_id}:rear_page_pdf:{number}"


class SqliteStatementRepository:
    """Statements in an open :class:`SqliteStore`: same connection, cipher,
    lock and transactions (the store's single writer worker runs both)."""

    def __init__(self, store: SqliteStore):
        # The store package's own objects: shared, not copied, so one lock
        # serialises appointments and statements on the one connection.
        self._con: sqlite3.Connection = store._con
        self._cipher = store._cipher
        self._lock = store._lock
        self._tx = store._tx
        self._mac_key = self._load_mac_key()

    # -- keys -----------------------------------------------------------------
    def _load_mac_key(self) -> bytes:
        with self._tx():
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", (_MAC_KEY_NAME,)).fetchone()
            if row is None:
                key = os.urandom(32)
                self._con.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    (_MAC_KEY_NAME, self._cipher.seal(key, _MAC_KEY_WHERE)),
                )
                return key
        return self._cipher.open(row[0], _MAC_KEY_WHERE)

    def _mac(self, statement_id: str, canonical: bytes) -> str:
        msg = b"evr statement content v1\x00" + statement_id.encode("utf-8") + b"\x00" + canonical
        return hmac.new(self._mac_key, msg, hashlib.sha256).hexdigest()

    # -- helpers --------------------------------------------------------------
    @staticmethod
    def _canonical(content: StatementContent) -> bytes:
        try:
            return content.to_json().encode("utf-8")
        except TypeError as exc:
            raise ValueError(f"A statement field holds a value that is not text, yes/no or empty: {exc}") from exc

    def _statement_row(self, statement_id: str) -> tuple[Any, ...]:
        row = self._con.execute(
            "SELECT statement_type, signed_version FROM statement WHERE id = ?", (statement_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"Statement {statement_id} does not exist.")
        return row

    def _decode(self, statement_id: str, row: tuple[Any, ...]) -> StatementVersion:
        number, saved_at, content, content_hash, reason = row
        canonical = self._cipher.open(content, _content_where(statement_id, number))
        if not hmac.compare_digest(self._mac(statement_id, canonical).encode(), str(content_hash).encode()):
            raise StoreError(
                f"Statement {statement_id} version {number} failed its integrity check (content hash)."
            )
        return StatementVersion(
            statement_id=statement_id,
            number=number,
            content=StatementContent.from_json(canonical.decode("utf-8")),
            saved_at=datetime.fromisoformat(saved_at),
            reason=self._cipher.open(reason, _reason_where(statement_id, number)).decode("utf-8"),
        )

    _VERSION_COLUMNS = "number, saved_at, content, content_hash, reason"

    # -- writing --------------------------------------------------------------
    def create(self, statement_type: StatementType | str, appointment_id: str | None = None) -> str:
        kind = StatementType(statement_type)
        statement_id = new_statement_id()
        try:
            with self._tx():
                if appointment_id is not None and self._con.execute(
                    "SELECT 1 FROM appointment WHERE id = ?", (appointment_id,)
                ).fetchone() is None:
                    raise NotFound(f"Appointment {appointment_id} does not exist.")
                self._con.execute(
                    "INSERT INTO statement(id, appointment_id, statement_type, created) VALUES (?, ?, ?, ?)",
                    (statement_id, appointment_id, kind.value, _now()),
                )
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The statement could not be created ({exc}).") from exc
        return statement_id

    def save_version(
        self, statement_id: str, content: StatementContent, reason: str = ""
    ) -> StatementVersion | None:
        """Append ``content`` as the next version, or return None if it equals
        the latest. After signing, a change needs a ``reason`` (else
        :class:`StatementLocked`); saving unchanged content is never refused."""
        canonical = self._canonical(content)
        mac = self._mac(statement_id, canonical)
        try:
            with self._tx():
                kind, signed_version = self._statement_row(statement_id)
                if content.statement_type.value != kind:
                    raise ValueError(
                        f"Statement {statement_id} is a {kind} statement, not {content.statement_type.value}."
                    )
                latest = self._con.execute(
                    "SELECT number, content, content_hash FROM statement_version"
                    " WHERE statement_id = ? ORDER BY number DESC LIMIT 1",
                    (statement_id,),
                ).fetchone()
                number = 1
                if latest is not None:
                    last_number, last_blob, last_mac = latest
                    # The HMAC says "probably the same"; the authenticated
                    # ciphertext decides, so a doctored hash column can never
                    # make a changed draft vanish.
                    if hmac.compare_digest(str(last_mac).encode(), mac.encode()) and canonical == self._cipher.open(
                        last_blob, _content_where(statement_id, last_number)
                    ):
                        return None
                    number = last_number + 1
                if signed_version is not None and not reason.strip():
                    raise StatementLocked(
                        f"This statement was signed at version {signed_version}; the signed text stays "
                        "as it is. Give a reason to keep this change as a new version."
                    )
                saved_at = _now()
                self._con.execute(
                    "INSERT INTO statement_version(statement_id, number, saved_at, content, content_hash, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        statement_id, number, saved_at,
                        self._cipher.seal(canonical, _content_where(statement_id, number)),
                        mac,
                        self._cipher.seal(reason.encode("utf-8"), _reason_where(statement_id, number)),
                    ),
                )
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The statement could not be saved ({exc}); the previous version is kept.") from exc
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"The statement version was refused by the store ({exc}).") from exc
        return StatementVersion(
            statement_id=statement_id,
            number=number,
            content=StatementContent.from_json(canonical.decode("utf-8")),
            saved_at=datetime.fromisoformat(saved_at),
            reason=reason,
        )

    def mark_signed(
        self, statement_id: str, version_number: int, signed_pdf: bytes, signed_at: datetime | None = None,
        rear_page_pdf: bytes | None = None,
    ) -> None:
        """Record that ``version_number`` was signed, with the signed PDF and
        the separately signed restricted rear page (both sealed), in one
        transaction. A statement is signed once: the record is then final."""
        if not bytes(signed_pdf).startswith(b"%PDF-"):
            raise ValueError("The signed statement must be a PDF.")
        if rear_page_pdf is not None and not bytes(rear_page_pdf).startswith(b"%PDF-"):
            raise ValueError("The signed rear page must be a PDF.")
        when = (signed_at or datetime.now()).astimezone().isoformat(timespec="milliseconds")
        try:
            with self._tx():
                _, signed_version = self._statement_row(statement_id)
                if signed_version is not None:
                    raise StatementLocked(
                        f"Statement {statement_id} is already signed at version {signed_version}; "
                        "that signature stays as it is."
                    )
                if self._con.execute(
                    "SELECT 1 FROM statement_version WHERE statement_id = ? AND number = ?",
                    (statement_id, version_number),
                ).fetchone() is None:
                    raise NotFound(f"Statement {statement_id} has no version {version_number}.")
                self._con.execute(
                    "UPDATE statement SET signed_version = ?, signed_pdf = ?, signed_at = ?"
                    " WHERE id = ? AND signed_version IS NULL",
                    (
                        version_number,
                        self._cipher.seal(bytes(signed_pdf), _pdf_where(statement_id, version_number)),
                        when,
                        statement_id,
                    ),
                )
                if rear_page_pdf is not None:
                    self._con.execute(
                        "INSERT INTO statement_rear_page(statement_id, version, pdf, signed_at) VALUES (?, ?, ?, ?)",
                        (
                            statement_id, version_number,
                            self._cipher.seal(bytes(rear_page_pdf), _rear_pdf_where(statement_id, version_number)),
                            when,
                        ),
                    )
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The signature could not be recorded ({exc}).") from exc
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"The signature was refused by the store ({exc}).") from exc

    # -- reading --------------------------------------------------------------
    def latest(self, statement_id: str) -> StatementVersion | None:
        with self._lock:
            self._statement_row(statement_id)
            row = self._con.execute(
                f"SELECT {self._VERSION_COLUMNS} FROM statement_version"
                " WHERE statement_id = ? ORDER BY number DESC LIMIT 1",
                (statement_id,),
            ).fetchone()
        return None if row is None else self._decode(statement_id, row)

    def versions(self, statement_id: str) -> list[StatementVersion]:
        """Every version, oldest first."""
        with self._lock:
            self._statement_row(statement_id)
            rows = self._con.execute(
                f"SELECT {self._VERSION_COLUMNS} FROM statement_version WHERE statement_id = ? ORDER BY number",
                (statement_id,),
            ).fetchall()
        return [self._decode(statement_id, r) for r in rows]

    def version(self, statement_id: str, number: int) -> StatementVersion:
        with self._lock:
            self._statement_row(statement_id)
            row = self._con.execute(
                f"SELECT {self._VERSION_COLUMNS} FROM statement_version WHERE statement_id = ? AND number = ?",
                (statement_id, number),
            ).fetchone()
        if row is None:
            raise NotFound(f"Statement {statement_id} has no version {number}.")
        return self._decode(statement_id, row)

    def signed(self, statement_id: str) -> tuple[int, bytes] | None:
        """The signed version's number and the signed PDF, or None if unsigned."""
        with self._lock:
            row = self._con.execute(
                "SELECT signed_version, signed_pdf FROM statement WHERE id = ?", (statement_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"Statement {statement_id} does not exist.")
        number, blob = row
        if number is None:
            return None
        return number, self._cipher.open(blob, _pdf_where(statement_id, number))

    def signed_rear_page(self, statement_id: str) -> tuple[int, bytes] | None:
        """The signed version's number and its signed restricted rear page, or
        None (unsigned, or signed before the rear page was a PDF of its own)."""
        with self._lock:
            self._statement_row(statement_id)
            row = self._con.execute(
                "SELECT version, pdf FROM statement_rear_page WHERE statement_id = ?", (statement_id,)
            ).fetchone()
        if row is None:
            return None
        number, blob = row
        return number, self._cipher.open(blob, _rear_pdf_where(statement_id, number))

    # Listed in the order made: ``created`` has millisecond resolution, so two
    # statements made in the same millisecond are ordered by rowid (the order
    # of insertion), not by their random ids (which made the order flaky).
    _SUMMARY = (
        "SELECT s.id, s.statement_type, s.appointment_id, s.created, s.signed_version, v.number, v.saved_at"
        " FROM statement s LEFT JOIN statement_version v ON v.statement_id = s.id"
        " AND v.number = (SELECT max(number) FROM statement_version WHERE statement_id = s.id)"
    )

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> StatementSummary:
        id_, kind, appointment_id, created, signed_version, number, saved_at = row
        return StatementSummary(
            id=id_,
            statement_type=StatementType(kind),
            appointment_id=appointment_id,
            created=datetime.fromisoformat(created),
            latest_number=number,
            saved_at=None if saved_at is None else datetime.fromisoformat(saved_at),
            signed=signed_version is not None,
            signed_version=signed_version,
        )

    def summary(self, statement_id: str) -> StatementSummary:
        """One statement's summary (autosave asks for it every few seconds:
        one row, not the whole list)."""
        with self._lock:
            row = self._con.execute(f"{self._SUMMARY} WHERE s.id = ?", (statement_id,)).fetchone()
        if row is None:
            raise NotFound(f"Statement {statement_id} does not exist.")
        return self._summary(row)

    def list_for_appointment(self, appointment_id: str) -> list[StatementSummary]:
        with self._lock:
            rows = self._con.execute(
                f"{self._SUMMARY} WHERE s.appointment_id = ? ORDER BY s.created, s.rowid", (appointment_id,)
            ).fetchall()
        return [self._summary(r) for r in rows]

    def list_all(self) -> list[StatementSummary]:
        with self._lock:
            rows = self._con.execute(f"{self._SUMMARY} ORDER BY s.created, s.rowid").fetchall()
        return [self._summary(r) for r in rows]
