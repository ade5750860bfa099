import sqlite3
from datetime import date, datetime

import pytest

from evr_desktop.domain.appointment import Appointment, OffenceType, VictimDetails
from evr_desktop.domain.statement_doc import StatementContent, StatementType
from evr_desktop.store import migrations as migrations_module
from evr_desktop.store import sqlite as sqlite_module
from evr_desktop.store.base import NotFound, StoreError
from evr_desktop.store.migrations import MIGRATIONS
from evr_desktop.store.sqlite import SqliteStore
from evr_desktop.store.statements import SqliteStatementRepository, StatementLocked

KEY = bytes(range(32))
PDF = b"%PDF-1.7\n% invented signed statement\n%%EOF\n"

NARRATIVE = (
    "On Tuesday evening I was walking past the Quillfeather Bakery on Invented Lane.\n"
    "A man I now know as Bartholomew Zzyzx-Invented pushed me against the railings."
)


def content(narrative: str = NARRATIVE, **fields) -> StatementContent:
    values = {"statement_of": "Perpetua Invented-Okonkwo", "occupation": "Lighthouse keeper"}
    values.update(fields)
    return StatementContent(fields=values, narrative=narrative,
                            ticked_prompts=frozenset({"assault.injury_size"}), offence="assault")


def appt(name: str = "Invented Victim") -> Appointment:
    return Appointment(
        slot=datetime(2026, 12, 1, 10, 0).astimezone(), urn="99TT1234526", offence=OffenceType.ASSAULT,
        victim=VictimDetails(full_name=name, date_of_birth=date(1980, 2, 3), mobile="07700 900123"),
    )


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "s.db", KEY)
    yield s
    try:
        s.close()
    except sqlite3.ProgrammingError:
        pass


@pytest.fixture
def repo(store):
    return SqliteStatementRepository(store)


def raw(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "s.db", isolation_level=None)


def test_round_trip(store, repo):
    a = appt()
    store.add(a)
    sid = repo.create(StatementType.WITNESS, a.id)
    assert repo.latest(sid) is None and repo.versions(sid) == []
    v1 = repo.save_version(sid, content())
    assert v1 is not None and v1.number == 1 and v1.reason == ""
    assert repo.latest(sid) == v1 == repo.version(sid, 1)
    assert repo.latest(sid).content == content()
    v2 = repo.save_version(sid, content(occupation="Retired"), reason="witness changed job")
    assert [v.number for v in repo.versions(sid)] == [1, 2]
    assert repo.versions(sid) == [v1, v2]
    assert repo.version(sid, 2).reason == "witness changed job"
    with pytest.raises(NotFound):
        repo.version(sid, 3)
    with pytest.raises(NotFound):
        repo.latest("no-such-statement")
    with pytest.raises(NotFound):
        repo.save_version("no-such-statement", content())
    with pytest.raises(ValueError, match="witness statement"):
        repo.save_version(sid, StatementContent(statement_type=StatementType.VPS, narrative="x"))


def test_create_checks_the_appointment_and_accepts_none(repo):
    assert repo.create(StatementType.VPS, None)
    assert repo.create("witness")
    with pytest.raises(NotFound):
        repo.create(StatementType.WITNESS, "no-such-appointment")
    with pytest.raises(ValueError):
        repo.create("not-a-type")


def test_unchanged_autosave_adds_nothing(repo):
    sid = repo.create(StatementType.WITNESS, None)
    assert repo.save_version(sid, content()) is not None
    assert repo.save_version(sid, content()) is None
    # Equal content built differently (field order, new objects) is still equal.
    same = StatementContent(fields={"occupation": "Lighthouse keeper", "statement_of": "Perpetua Invented-Okonkwo"},
                            narrative=NARRATIVE, ticked_prompts=frozenset(["assault.injury_size"]), offence="assault")
    assert repo.save_version(sid, same) is None
    assert len(repo.versions(sid)) == 1


def test_fifty_autosaves_over_three_states_keep_three_versions(repo):
    sid = repo.create(StatementType.WITNESS, None)
    states = [content(), content(NARRATIVE + "\nHe ran off."), content(NARRATIVE + "\nHe ran off towards the canal.")]
    saved = [repo.save_version(sid, states[min(i // 17, 2)]) for i in range(50)]
    assert sum(v is not None for v in saved) == 3
    assert [v.content for v in repo.versions(sid)] == states
    # Going back to an earlier text is a change too: it is kept as a new version.
    assert repo.save_version(sid, states[0]).number == 4


def test_versions_are_never_overwritten_the_database_refuses(tmp_path, store, repo):
    sid = repo.create(StatementType.WITNESS, None)
    repo.save_version(sid, content())
    repo.save_version(sid, content(occupation="Retired"))
    con = raw(tmp_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE statement_version SET saved_at = 'x' WHERE statement_id = ?", (sid,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM statement_version WHERE statement_id = ? AND number = 2", (sid,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM statement_version")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        con.execute("DELETE FROM statement WHERE id = ?", (sid,))
    # Nor can a version be replaced by re-inserting its number, or skipped.
    row = con.execute("SELECT saved_at, content, content_hash, reason FROM statement_version"
                      " WHERE statement_id = ? AND number = 1", (sid,)).fetchone()
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT OR REPLACE INTO statement_version VALUES (?, 1, ?, ?, ?, ?)", (sid, *row))
    with pytest.raises(sqlite3.IntegrityError, match="without gaps"):
        con.execute("INSERT INTO statement_version VALUES (?, 7, ?, ?, ?, ?)", (sid, *row))
    with pytest.raises(sqlite3.IntegrityError, match="never replaced"):
        con.execute("INSERT OR REPLACE INTO statement(id, statement_type, created) VALUES (?, 'witness', 'x')",
                    (sid,))
    con.close()
    assert [v.number for v in repo.versions(sid)] == [1, 2]
    assert repo.version(sid, 1).content == content()


def test_signed_statement_needs_a_reason_and_keeps_the_signed_version(tmp_path, repo):
    sid = repo.create(StatementType.WITNESS, None)
    repo.save_version(sid, content())
    repo.save_version(sid, content(occupation="Retired"))
    assert repo.signed(sid) is None
    repo.mark_signed(sid, 2, PDF)
    assert repo.signed(sid) == (2, PDF)

    assert repo.save_version(sid, content(occupation="Retired")) is None  # an autosave of the signed text
    with pytest.raises(StatementLocked, match="reason"):
        repo.save_version(sid, content(occupation="Astronaut"))
    with pytest.raises(StatementLocked):
        repo.save_version(sid, content(occupation="Astronaut"), reason="   ")
    v3 = repo.save_version(sid, content(occupation="Astronaut"), reason="witness corrected occupation by phone")
    assert v3.number == 3 and v3.reason == "witness corrected occupation by phone"
    assert repo.signed(sid) == (2, PDF)
    assert repo.version(sid, 2).content == content(occupation="Retired")
    assert repo.latest(sid) == v3

    with pytest.raises(StatementLocked, match="already signed"):
        repo.mark_signed(sid, 2, PDF)
    with pytest.raises(StatementLocked):
        repo.mark_signed(sid, 3, PDF)
    con = raw(tmp_path)
    with pytest.raises(sqlite3.IntegrityError, match="signed statement is final"):
        con.execute("UPDATE statement SET signed_version = 3 WHERE id = ?", (sid,))
    with pytest.raises(sqlite3.IntegrityError, match="signed statement is final"):
        con.execute("UPDATE statement SET signed_pdf = x'00' WHERE id = ?", (sid,))
    con.close()
    assert repo.signed(sid) == (2, PDF)


def test_mark_signed_refuses_a_missing_version_or_a_non_pdf(repo):
    sid = repo.create(StatementType.WITNESS, None)
    with pytest.raises(NotFound):
        repo.mark_signed(sid, 1, PDF)
    repo.save_version(sid, content())
    with pytest.raises(NotFound):
        repo.mark_signed(sid, 2, PDF)
    with pytest.raises(ValueError, match="PDF"):
        repo.mark_signed(sid, 1, b"not a pdf")
    with pytest.raises(NotFound):
        repo.mark_signed("no-such-statement", 1, PDF)
    assert repo.signed(sid) is None


def test_summaries(store, repo):
    a, b = appt("First Invented"), appt("Second Invented")
    store.add(a)
    store.add(b)
    s1 = repo.create(StatementType.WITNESS, a.id)
    s2 = repo.create(StatementType.VPS, a.id)
    s3 = repo.create(StatementType.WITNESS, b.id)
    s4 = repo.create(StatementType.WITNESS, None)
    repo.save_version(s1, content())
    repo.save_version(s1, content(occupation="Retired"))
    repo.mark_signed(s1, 2, PDF)
    repo.save_version(s3, content())
    listed = repo.list_for_appointment(a.id)
    assert [x.id for x in listed] == [s1, s2]
    one, two = listed
    expected = (StatementType.WITNESS, 2, True, 2)
    assert (one.statement_type, one.latest_number, one.signed, one.signed_version) == expected
    assert one.saved_at is not None and one.appointment_id == a.id
    assert (two.statement_type, two.latest_number, two.saved_at, two.signed) == (StatementType.VPS, None, None, False)
    everything = repo.list_all()
    assert [x.id for x in everything] == [s1, s2, s3, s4]
    assert everything[3].appointment_id is None
    assert repo.list_for_appointment("nobody") == []


def test_a_blob_moved_to_another_row_fails_to_decrypt(tmp_path, store, repo):
    s1 = repo.create(StatementType.WITNESS, None)
    s2 = repo.create(StatementType.WITNESS, None)
    repo.save_version(s1, content("First invented narrative."), reason="first reason")
    repo.save_version(s1, content("First invented narrative, amended."))
    repo.save_version(s2, content("Second invented narrative."))
    repo.mark_signed(s1, 1, PDF)
    con = raw(tmp_path)
    # Triggers stop honest mistakes; an attacker with the file can drop them.
    con.execute("DROP TRIGGER statement_version_no_update")
    con.execute("DROP TRIGGER statement_signature_is_final")
    blob, mac, reason = con.execute(
        "SELECT content, content_hash, reason FROM statement_version WHERE statement_id = ? AND number = 1", (s1,)
    ).fetchone()
    # Statement 1's version 1 into statement 2's version 1 ...
    con.execute("UPDATE statement_version SET content = ?, content_hash = ? WHERE statement_id = ? AND number = 1",
                (blob, mac, s2))
    # ... and into statement 1's own version 2 (bound to the number too) ...
    con.execute("UPDATE statement_version SET content = ? WHERE statement_id = ? AND number = 2", (blob, s1))
    # ... a reason onto another statement's version, and the signed PDF onto another version.
    s3 = repo.create(StatementType.WITNESS, None)
    repo.save_version(s3, content("Third invented narrative."))
    con.execute("UPDATE statement_version SET reason = ? WHERE statement_id = ? AND number = 1", (reason, s3))
    con.execute("UPDATE statement SET signed_version = 2 WHERE id = ?", (s1,))
    con.close()

    with pytest.raises(StoreError, match="integrity"):
        repo.version(s2, 1)
    with pytest.raises(StoreError, match="integrity"):
        repo.version(s1, 2)
    with pytest.raises(StoreError, match="integrity"):
        repo.latest(s3)
    with pytest.raises(StoreError, match="integrity"):
        repo.signed(s1)
    assert repo.version(s1, 1).content.narrative == "First invented narrative."


def test_a_doctored_content_hash_is_caught_and_cannot_hide_a_change(tmp_path, repo):
    sid = repo.create(StatementType.WITNESS, None)
    repo.save_version(sid, content("Version one, invented."))
    repo.save_version(sid, content("Version two, invented."))
    con = raw(tmp_path)
    con.execute("DROP TRIGGER statement_version_no_update")
    mac1 = con.execute("SELECT content_hash FROM statement_version WHERE statement_id = ? AND number = 1",
                       (sid,)).fetchone()[0]
    con.execute("UPDATE statement_version SET content_hash = ? WHERE statement_id = ? AND number = 2", (mac1, sid))
    con.close()
    with pytest.raises(StoreError, match="content hash"):
        repo.version(sid, 2)
    # Saving version one's text again is a change from version two: it is kept.
    assert repo.save_version(sid, content("Version one, invented.")).number == 3


def test_content_hash_is_keyed_not_a_plain_hash(tmp_path, repo):
    import hashlib

    sid = repo.create(StatementType.WITNESS, None)
    repo.save_version(sid, content())
    con = raw(tmp_path)
    mac = con.execute("SELECT content_hash FROM statement_version").fetchone()[0]
    con.close()
    assert mac != hashlib.sha256(content().to_json().encode("utf-8")).hexdigest()
    # Same content in another statement gives another hash: nothing links the two.
    other = repo.create(StatementType.WITNESS, None)
    repo.save_version(other, content())
    con = raw(tmp_path)
    assert len({r[0] for r in con.execute("SELECT content_hash FROM statement_version")}) == 2
    con.close()


def test_no_plaintext_in_the_file(tmp_path, store, repo):
    a = appt()
    store.add(a)
    sid = repo.create(StatementType.WITNESS, a.id)
    repo.save_version(sid, content())
    repo.save_version(sid, content(occupation="Zeppelin mechanic"), reason="Mrs Hyacinth Invented-Bucket rang")
    repo.mark_signed(sid, 2, PDF)
    repo.save_version(sid, content(NARRATIVE + "\nCorrection: it was Thursday."), reason="Hyacinth called back")
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for secret in ("Quillfeather", "Zzyzx", "Perpetua", "Okonkwo", "Lighthouse keeper", "Zeppelin",
                   "Hyacinth", "Bucket", "Thursday", "invented signed statement", "injury_size"):
        assert secret.encode("utf-8") not in data, secret
        assert secret.encode("utf-16-le") not in data, secret


def test_migration_from_v1_keeps_the_appointments(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(migrations_module, "MIGRATIONS", MIGRATIONS[:1])
        m.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS[:1])
        old = SqliteStore(tmp_path / "s.db", KEY)
        people = [appt(f"Invented Person {i}") for i in range(5)]
        for p in people:
            old.add(p)
        old.close()
    con = raw(tmp_path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'statement'").fetchone()[0] == 0
    con.close()

    store = SqliteStore(tmp_path / "s.db", KEY)
    assert store.count() == 5
    assert {a.id: a for a in store.list()} == {p.id: p for p in people}
    repo = SqliteStatementRepository(store)
    sid = repo.create(StatementType.WITNESS, people[0].id)
    assert repo.save_version(sid, content()).number == 1
    store.close()
    con = raw(tmp_path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 2
    con.close()


def test_migration_keeps_trigger_bodies_whole():
    statements = migrations_module._statements(MIGRATIONS[1])
    triggers = [s for s in statements if "CREATE TRIGGER" in s]
    assert len(triggers) >= 3
    assert all(sqlite3.complete_statement(s) and s.rstrip().endswith("END;") for s in triggers)
    assert len(migrations_module._statements(MIGRATIONS[0])) == 3


def test_the_mac_key_survives_reopening(tmp_path):
    store = SqliteStore(tmp_path / "s.db", KEY)
    repo = SqliteStatementRepository(store)
    sid = repo.create(StatementType.WITNESS, None)
    repo.save_version(sid, content())
    store.close()
    store = SqliteStore(tmp_path / "s.db", KEY)
    repo = SqliteStatementRepository(store)
    assert repo.latest(sid).content == content()
    assert repo.save_version(sid, content()) is None
    store.close()


REAR = b"%PDF-1.7\n% invented signed rear page: 1 Nowhere Mews\n%%EOF\n"


def test_the_rear_page_is_recorded_with_the_signature_sealed_and_final(tmp_path, repo, store):
    sid = repo.create(StatementType.WITNESS, None)
    repo.save_version(sid, content())
    assert repo.signed_rear_page(sid) is None
    with pytest.raises(ValueError, match="rear page must be a PDF"):
        repo.mark_signed(sid, 1, PDF, rear_page_pdf=b"not a pdf")
    assert repo.signed(sid) is None  # refused as a whole: no half-recorded signature
    repo.mark_signed(sid, 1, PDF, rear_page_pdf=REAR)
    assert repo.signed(sid) == (1, PDF)
    assert repo.signed_rear_page(sid) == (1, REAR)
    with pytest.raises(NotFound):
        repo.signed_rear_page("no-such-statement")
    con = raw(tmp_path)
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        con.execute("UPDATE statement_rear_page SET pdf = x'00' WHERE statement_id = ?", (sid,))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        con.execute("DELETE FROM statement_rear_page WHERE statement_id = ?", (sid,))
    # Only for the signed version of its statement, and only once.
    other = repo.create(StatementType.WITNESS, None)
    repo.save_version(other, content())
    with pytest.raises(sqlite3.IntegrityError, match="only for the signed version"):
        con.execute("INSERT INTO statement_rear_page VALUES (?, 1, x'00', 'now')", (other,))
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO statement_rear_page VALUES (?, 1, x'00', 'now')", (sid,))
    # A blob moved onto another statement fails to decrypt (bound to its row).
    repo.mark_signed(other, 1, PDF, rear_page_pdf=REAR)
    con.close()
    store.close()
    data = (tmp_path / "s.db").read_bytes()
    assert b"Nowhere Mews" not in data


def test_a_statement_signed_before_migration_4_has_no_rear_page(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(migrations_module, "MIGRATIONS", MIGRATIONS[:3])
        m.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS[:3])
        old = SqliteStore(tmp_path / "s.db", KEY)
        repo = SqliteStatementRepository(old)
        sid = repo.create(StatementType.WITNESS, None)
        repo.save_version(sid, content())
        repo.mark_signed(sid, 1, PDF)
        old.close()
    store = SqliteStore(tmp_path / "s.db", KEY)
    repo = SqliteStatementRepository(store)
    assert repo.signed(sid) == (1, PDF)
    assert repo.signed_rear_page(sid) is None
    store.close()


def test_statements_made_in_the_same_millisecond_list_in_the_order_made(store, repo, monkeypatch):
    import evr_desktop.store.statements as statements_module

    monkeypatch.setattr(statements_module, "_now", lambda: "2026-12-04T10:00:00.000+00:00")
    a = appt("Same Millisecond Invented")
    store.add(a)
    made = [repo.create(StatementType.WITNESS, a.id) for _ in range(12)]
    assert [x.id for x in repo.list_for_appointment(a.id)] == made
    assert [x.id for x in repo.list_all()] == made


def test_one_summary_by_id(store, repo):
    a = appt("Summary Invented")
    store.add(a)
    s1 = repo.create(StatementType.WITNESS, a.id)
    repo.save_version(s1, content())
    one = repo.summary(s1)
    assert (one.id, one.appointment_id, one.latest_number, one.signed) == (s1, a.id, 1, False)
    assert one == next(x for x in repo.list_all() if x.id == s1)
    with pytest.raises(NotFound):
        repo.summary("no-such-statement")
