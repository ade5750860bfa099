"""Schema migrations, numbered from the first release.

``PRAGMA user_version`` holds how many have run. Each migration runs in its own
transaction, so an interrupted upgrade leaves the previous schema intact. Add
new ones at the end; never edit a released one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: appointments and a key/value table for store metadata.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE appointment (
        id TEXT PRIMARY KEY,
        slot TEXT NOT NULL,
        urn TEXT NOT NULL,
        offence TEXT NOT NULL,
        status TEXT NOT NULL,
        duration_minutes INTEGER NOT NULL,
        victim BLOB NOT NULL,   -- AES-256-GCM, see store/crypto.py
        updated TEXT NOT NULL
    );
    CREATE INDEX appointment_slot ON appointment(slot);
    """,
    # 2: statements and their versions (CPIA: drafts whose content differs are
    # kept; a version is never overwritten). Everything written by the officer or
    # the witness is AES-256-GCM bound to its row (store/statements.py). The
    # triggers make the rules the database's, not just the code's: no UPDATE or
    # DELETE of a version, and a signature once recorded stays as it was.
    """
    CREATE TABLE statement (
        id TEXT PRIMARY KEY,
        appointment_id TEXT,    -- NULL for a statement drafted without an appointment
        statement_type TEXT NOT NULL,
        created TEXT NOT NULL,
        signed_version INTEGER,
        signed_pdf BLOB,        -- AES-256-GCM, bound to statement:ID:signed_pdf:VERSION
        signed_at TEXT,
        CHECK ((signed_version IS NULL) = (signed_pdf IS NULL)
               AND (signed_version IS NULL) = (signed_at IS NULL))
    );
    CREATE INDEX statement_appointment ON statement(appointment_id);
    CREATE TABLE statement_version (
        statement_id TEXT NOT NULL REFERENCES statement(id),
        number INTEGER NOT NULL CHECK (number >= 1),
        saved_at TEXT NOT NULL,
        content BLOB NOT NULL,      -- AES-256-GCM, bound to statement:ID:version:N
        content_hash TEXT NOT NULL, -- HMAC-SHA256 of the canonical JSON under a store-secret key
        reason BLOB NOT NULL,       -- AES-256-GCM, bound to statement:ID:version:N:reason
        PRIMARY KEY (statement_id, number)
    );
    CREATE TRIGGER statement_version_no_update BEFORE UPDATE ON statement_version
    BEGIN
        SELECT RAISE(ABORT, 'statement versions are append-only: a version is never changed');
    END;
    CREATE TRIGGER statement_version_no_delete BEFORE DELETE ON statement_version
    BEGIN
        SELECT RAISE(ABORT, 'statement versions are append-only: a version is never deleted');
    END;
    -- Also what stops INSERT OR REPLACE: the number must be new, so nothing is replaced.
    CREATE TRIGGER statement_version_in_sequence BEFORE INSERT ON statement_version
    WHEN NEW.number != 1 + coalesce(
        (SELECT max(number) FROM statement_version WHERE statement_id = NEW.statement_id), 0)
    BEGIN
        SELECT RAISE(ABORT, 'statement versions are numbered 1, 2, 3 ... without gaps');
    END;
    CREATE TRIGGER statement_signature_is_final
    BEFORE UPDATE OF id, statement_type, created, signed_version, signed_pdf, signed_at ON statement
    WHEN OLD.signed_version IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'a signed statement is final: its record is never changed');
    END;
    CREATE TRIGGER statement_signs_an_existing_version BEFORE UPDATE OF signed_version ON statement
    WHEN NEW.signed_version IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM statement_version WHERE statement_id = NEW.id AND number = NEW.signed_version)
    BEGIN
        SELECT RAISE(ABORT, 'a statement can only be signed at a version it has');
    END;
    CREATE TRIGGER statement_born_unsigned BEFORE INSERT ON statement
    WHEN NEW.signed_version IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'a statement can only be signed at a version it has');
    END;
    CREATE TRIGGER statement_never_replaced BEFORE INSERT ON statement
    WHEN EXISTS (SELECT 1 FROM statement WHERE id = NEW.id)
    BEGIN
        SELECT RAISE(ABORT, 'a statement is never replaced');
    END;
    CREATE TRIGGER statement_no_delete_once_versioned BEFORE DELETE ON statement
    WHEN EXISTS (SELECT 1 FROM statement_version WHERE statement_id = OLD.id)
    BEGIN
        SELECT RAISE(ABORT, 'a statement with versions is never deleted');
    END;
    """,
    # 3: the SMS outbox (store/outbox.py). This machine reaches no SMS gateway,
    # so a join-link text waits here for the officer to copy and send from a
    # work phone. The text (which holds the live link) and the number are
    # AES-256-GCM bound to outbox:ID:body and outbox:ID:to; only the
    # appointment id, times and status are plain. A message is never edited:
    # only its status moves on, along the transitions the trigger allows.
    """
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        appointment_id TEXT NOT NULL,
        created TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'copied', 'sent', 'cancelled')),
        body BLOB NOT NULL,     -- AES-256-GCM, bound to outbox:ID:body
        "to" BLOB NOT NULL,     -- AES-256-GCM, bound to outbox:ID:to (E.164)
        updated TEXT NOT NULL
    );
    CREATE INDEX outbox_appointment ON outbox(appointment_id);
    CREATE TRIGGER outbox_message_is_fixed
    BEFORE UPDATE OF id, appointment_id, created, body, "to" ON outbox
    BEGIN
        SELECT RAISE(ABORT, 'an outbox message is never changed, only its status');
    END;
    CREATE TRIGGER outbox_born_queued BEFORE INSERT ON outbox
    WHEN NEW.status != 'queued'
    BEGIN
        SELECT RAISE(ABORT, 'an outbox message starts queued');
    END;
    CREATE TRIGGER outbox_status_moves_on BEFORE UPDATE OF status ON outbox
    WHEN NOT (
        (OLD.status = 'queued' AND NEW.status IN ('copied', 'sent', 'cancelled'))
        OR (OLD.status = 'copied' AND NEW.status IN ('copied', 'sent', 'cancelled'))
    )
    BEGIN
        SELECT RAISE(ABORT, 'this outbox status change is not allowed');
    END;
    """,
    # 4: the restricted rear page, signed as its own PDF beside the signed
    # statement (the statement PDF no longer contains it; statements signed
    # before this have no row here). AES-256-GCM bound to
    # statement:ID:rear_page_pdf:VERSION. Recorded once, with the signature,
    # for the version that was signed; never changed or deleted.
    """
    CREATE TABLE statement_rear_page (
        statement_id TEXT PRIMARY KEY REFERENCES statement(id),
        version INTEGER NOT NULL,
        pdf BLOB NOT NULL,      -- AES-256-GCM, bound to statement:ID:rear_page_pdf:VERSION
        signed_at TEXT NOT NULL
    );
    CREATE TRIGGER statement_rear_page_of_the_signed_version BEFORE INSERT ON statement_rear_page
    WHEN NOT EXISTS (
        SELECT 1 FROM statement WHERE id = NEW.statement_id AND signed_version = NEW.version)
    BEGIN
        SELECT RAISE(ABORT, 'a rear page is recorded only for the signed version of its statement');
    END;
    CREATE TRIGGER statement_rear_page_no_update BEFORE UPDATE ON statement_rear_page
    BEGIN
        SELECT RAISE(ABORT, 'a signed rear page is final: it is never changed');
    END;
    CREATE TRIGGER statement_rear_page_no_delete BEFORE DELETE ON statement_rear_page
    BEGIN
        SELECT RAISE(ABORT, 'a signed rear page is final: it is never deleted');
    END;
    """,
    # 5: the victim's safety signals ("can't talk freely", quick exit), kept
    # against the appointment until the officer acknowledges them. Only codes
    # and times: nothing here names anyone. The signal itself is never changed
    # or deleted; only its acknowledgement is filled in, once.
    """
    CREATE TABLE safety_alert (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        appointment_id TEXT NOT NULL,
        signal TEXT NOT NULL CHECK (signal IN ('cant_talk', 'quick_exit')),
        stage TEXT NOT NULL CHECK (stage IN ('before', 'waiting', 'call', 'after')),
        at TEXT NOT NULL,
        held INTEGER NOT NULL CHECK (held IN (0, 1)),
        acknowledged_at TEXT,
        acknowledged_by TEXT
    );
    CREATE INDEX safety_alert_open ON safety_alert(acknowledged_at, appointment_id);
    CREATE TRIGGER safety_alert_is_fixed
    BEFORE UPDATE OF id, appointment_id, signal, stage, at, held ON safety_alert
    BEGIN
        SELECT RAISE(ABORT, 'a safety signal is never changed, only acknowledged');
    END;
    CREATE TRIGGER safety_alert_acknowledged_once
    BEFORE UPDATE OF acknowledged_at, acknowledged_by ON safety_alert
    WHEN OLD.acknowledged_at IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'a safety signal is acknowledged once');
    END;
    CREATE TRIGGER safety_alert_no_delete BEFORE DELETE ON safety_alert
    BEGIN
        SELECT RAISE(ABORT, 'a safety signal is never deleted');
    END;
    """,
    # 6: stills taken during a call (store/stills.py, domain/exhibit.py). The
    # officer's exhibit counter only ever goes up, so a number is never given
    # twice, even to a still that failed; a still's record is written once and
    # never changed or deleted (the file it names is evidence). The details
    # (file, hashes, sizes, time in the recording) are AES-256-GCM bound to
    # still:ID:details; the appointment, the officer, the number and the time
    # taken are plain, as for statements.
    """
    CREATE TABLE exhibit_counter (
        officer TEXT PRIMARY KEY,   -- collar or warrant number
        last_number INTEGER NOT NULL CHECK (last_number >= 1)
    );
    CREATE TRIGGER exhibit_counter_only_up BEFORE UPDATE ON exhibit_counter
    WHEN NEW.last_number <= OLD.last_number OR NEW.officer != OLD.officer
    BEGIN
        SELECT RAISE(ABORT, 'exhibit numbers only go up: a number is never given twice');
    END;
    CREATE TRIGGER exhibit_counter_no_delete BEFORE DELETE ON exhibit_counter
    BEGIN
        SELECT RAISE(ABORT, 'exhibit numbers only go up: the counter is never deleted');
    END;
    CREATE TABLE still (
        id TEXT PRIMARY KEY,
        appointment_id TEXT NOT NULL,
        officer TEXT NOT NULL,
        exhibit_number INTEGER NOT NULL,
        exhibit TEXT NOT NULL,      -- the reference as shown, e.g. RJ/1
        taken_at TEXT NOT NULL,     -- ISO 8601 UTC
        details BLOB NOT NULL,      -- AES-256-GCM, bound to still:ID:details
        UNIQUE (officer, exhibit_number)
    );
    CREATE INDEX still_appointment ON still(appointment_id);
    CREATE TRIGGER still_no_update BEFORE UPDATE ON still
    BEGIN
        SELECT RAISE(ABORT, 'a still is evidence: its record is never changed');
    END;
    CREATE TRIGGER still_no_delete BEFORE DELETE ON still
    BEGIN
        SELECT RAISE(ABORT, 'a still is evidence: its record is never deleted');
    END;
    CREATE TRIGGER still_number_was_given BEFORE INSERT ON still
    WHEN NOT EXISTS (
        SELECT 1 FROM exhibit_counter WHERE officer = NEW.officer AND last_number >= NEW.exhibit_number)
    BEGIN
        SELECT RAISE(ABORT, 'a still takes an exhibit number the counter gave');
    END;
    """,
]


def _statements(script: str) -> list[str]:
    """Split a migration into statements. A plain ``split(";")`` would cut a
    trigger body (``BEGIN ...; END``) in half, so pieces are joined until
    SQLite says the statement is complete."""
    out: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip().strip(";").strip():
                out.append(buf)
            buf = ""
    if buf.strip().strip(";").strip():
        raise ValueError(f"Incomplete SQL at the end of a migration: {buf.strip()[:60]!r}")
    return out


def migrate(con: sqlite3.Connection) -> int:
    """Bring the schema up to date; return the version reached."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    for number in range(version + 1, len(MIGRATIONS) + 1):
        con.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number - 1]):
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {number}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
