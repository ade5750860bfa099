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
]


def migrate(con: sqlite3.Connection) -> int:
    """Bring the schema up to date; return the version reached."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    for number in range(version + 1, len(MIGRATIONS) + 1):
        con.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute(f"PRAGMA user_version = {number}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
