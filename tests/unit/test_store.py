import os
import sqlite3
from datetime import date, datetime

import pytest

from evr_desktop.domain.appointment import Appointment, Guardian, OffenceType, Status, VictimDetails
from evr_desktop.store.base import NotFound, StoreCorrupt, StoreError, StoreKeyMismatch
from evr_desktop.store.migrations import MIGRATIONS
from evr_desktop.store.sqlite import SqliteStore
from tests.conftest import snapshot

KEY = bytes(range(32))


def appt(name="Gwenllian Invented-Price", day=date(2026, 12, 1), **kw) -> Appointment:
    return Appointment(
        slot=datetime.combine(day, datetime.min.time().replace(hour=10)).astimezone(),
        urn="99TT1234526", offence=OffenceType.FRAUD,
        victim=VictimDetails(full_name=name, date_of_birth=date(1980, 2, 3), mobile="07700 900555",
                             guardian=Guardian("G Invented", "Aunt"), notes="Lives by the canal", **kw),
    )


def test_round_trip_and_day_listing(tmp_path):
    store = SqliteStore(tmp_path / "s.db", KEY)
    a, b = appt(), appt("Other Invented", day=date(2026, 12, 2))
    store.add(a)
    store.add(b)
    assert store.get(a.id) == a
    assert store.list(date(2026, 12, 1)) == [a]
    assert {x.id for x in store.list()} == {a.id, b.id}
    store.update(a.with_status(Status.LINK_SENT))
    assert store.get(a.id).status is Status.LINK_SENT
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(StoreError, match="already exists"):
        store.add(a)
    assert oct((tmp_path / "s.db").stat().st_mode & 0o777) == "0o600"
    store.close()


def test_victim_details_are_not_in_the_file(tmp_path):
    store = SqliteStore(tmp_path / "s.db", KEY)
    store.add(appt())
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (b"Gwenllian", b"900555", b"canal", b"Aunt"):
        assert secret not in raw


def test_schema_version_recorded(tmp_path):
    SqliteStore(tmp_path / "s.db", KEY).close()
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    con.close()


def test_newer_schema_is_refused_untouched(tmp_path):
    SqliteStore(tmp_path / "s.db", KEY).close()
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    con.commit()
    con.close()
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match="newer EVR Desktop"):
        SqliteStore(tmp_path / "s.db", KEY)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("keep", [0.5, 0.1, 100])
def test_truncated_database_is_refused_and_left_as_it_is(tmp_path, keep):
    store = SqliteStore(tmp_path / "s.db", KEY)
    for i in range(40):
        store.add(appt(f"Invented Person {i}"))
    store.close()
    data = (tmp_path / "s.db").read_bytes()
    cut = int(len(data) * keep) if keep < 1 else keep
    (tmp_path / "s.db").write_bytes(data[:cut])
    before = snapshot(tmp_path)
    with pytest.raises(StoreCorrupt, match="damaged"):
        SqliteStore(tmp_path / "s.db", KEY)
    assert snapshot(tmp_path) == before


def test_a_store_from_another_vault_is_refused(tmp_path):
    SqliteStore(tmp_path / "s.db", KEY).close()
    before = snapshot(tmp_path)
    with pytest.raises(StoreKeyMismatch):
        SqliteStore(tmp_path / "s.db", os.urandom(32))
    assert snapshot(tmp_path) == before


def test_a_victim_blob_moved_to_another_row_fails_to_decrypt(tmp_path):
    store = SqliteStore(tmp_path / "s.db", KEY)
    a, b = appt("First Invented"), appt("Second Invented")
    store.add(a)
    store.add(b)
    store.close()
    con = sqlite3.connect(tmp_path / "s.db")
    blob = con.execute("SELECT victim FROM appointment WHERE id=?", (a.id,)).fetchone()[0]
    con.execute("UPDATE appointment SET victim=? WHERE id=?", (blob, b.id))
    con.commit()
    con.close()
    store = SqliteStore(tmp_path / "s.db", KEY)
    with pytest.raises(StoreError, match="integrity"):
        store.get(b.id)
    assert store.get(a.id).victim.full_name == "First Invented"
    store.close()


def test_a_failed_transaction_start_does_not_hang_the_store(tmp_path):
    store = SqliteStore(tmp_path / "s.db", KEY)
    store._con.close()  # as if the file had gone away under the store
    for _ in range(2):  # the second call would hang forever if the lock leaked
        with pytest.raises(sqlite3.ProgrammingError):  # "Cannot operate on a closed database"
            store.add(appt())
