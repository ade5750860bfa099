"""Sending the join link: the text (composition, GSM-7/UCS-2 lengths, Welsh),
UK mobile numbers, and the encrypted outbox (the embedded default notifier)."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from evr_desktop.domain import sms
from evr_desktop.domain.appointment import Appointment, OffenceType, VictimDetails
from evr_desktop.domain.sms import (
    GSM7,
    MAX_SEGMENTS,
    STRINGS,
    UCS2,
    InvalidMobile,
    SmsInputError,
    SmsTooLong,
    check_length,
    compose,
    compose_for_appointment,
    format_when,
    measure,
    to_e164,
)
from evr_desktop.notify.base import Notifier, SendStatus
from evr_desktop.notify.gateway import GatewayConfig, GatewayConfigError, NotifyGateway, make_jwt
from evr_desktop.notify.outbox import OutboxError, OutboxNotifier
from evr_desktop.store.migrations import MIGRATIONS
from evr_desktop.store.outbox import OutboxStatus, SqliteOutbox
from evr_desktop.store.sqlite import SqliteStore

KEY = bytes(range(32))
LINK = "https://evr.testshire.police.uk/j/Zq3xY7bN1vK8pL0sT4uW6rA2cE5gH9jM"
NUMBER = "+447700900456"
SLOT = datetime(2026, 3, 3, 14, 30)  # a Tuesday
NAME = "Angharad Invented-Pryce"


def appointment(offence=OffenceType.DOMESTIC_ABUSE) -> Appointment:
    return Appointment(
        slot=SLOT, urn="99TT1234526", offence=offence,
        victim=VictimDetails(full_name=NAME, date_of_birth=date(1985, 5, 5), mobile="07700 900456",
                             notes="Ex-partner checks her phone"),
    )


# -- composition ----------------------------------------------------------------

def test_english_text_has_force_day_time_link_and_101():
    m = compose("Testshire Police", SLOT, LINK)
    assert m.text.startswith("Testshire Police: ")
    assert "Tuesday 3 March at 2:30pm" in m.text
    assert f"\n{LINK}\n" in m.text  # on its own line, so every phone makes it a link
    assert "call 101" in m.text and "999" in m.text
    assert m.language == "en" and m.length.encoding == GSM7 and m.length.segments == 2


def test_welsh_text_has_the_same_facts_in_welsh():
    m = compose("Heddlu Testshire", SLOT, LINK, "cy")
    assert "ddydd Mawrth 3 Mawrth am 2:30yp" in m.text
    assert LINK in m.text and "ffoniwch 101" in m.text and "999" in m.text
    assert "appointment" not in m.text  # no English left in it
    assert m.length.encoding == GSM7  # the Welsh wording avoids ŵ/ŷ/â, so it keeps 153-character parts


def test_every_language_has_every_string_and_the_same_placeholders():
    keys = set(STRINGS["en"])
    for lang, strings in STRINGS.items():
        assert set(strings) == keys, lang
        assert len(strings["weekdays"]) == 7 and len(strings["months"]) == 12
        for placeholder in ("{force}", "{when}", "{link}"):
            assert placeholder in strings["body"], (lang, placeholder)


def test_the_text_never_names_the_victim_or_the_offence():
    for offence in OffenceType:
        a = appointment(offence)
        for lang in STRINGS:
            text = compose_for_appointment(a, "Testshire Police", LINK, lang).text.lower()
            secrets = ("angharad", "pryce", "900456", "99tt1234526", "partner", offence.value, offence.label.lower())
            for secret in secrets:
                assert secret.replace("_", " ") not in text, (lang, secret)
            for word in ("victim", "crime", "offence", "abuse", "assault"):
                assert word not in text


def test_the_reason_is_in_the_docstring():
    assert "someone other than the victim" in sms.__doc__
    assert "never says the victim's name, the offence" in sms.__doc__


def test_times_in_both_languages_and_time_zones():
    assert format_when(datetime(2026, 1, 5, 0, 5)) == "Monday 5 January at 12:05am"
    assert format_when(datetime(2026, 1, 5, 12, 0)) == "Monday 5 January at 12:00pm"
    assert format_when(datetime(2026, 1, 11, 9, 0), "cy") == "ddydd Sul 11 Ionawr am 9:00yb"
    # An aware slot shown in the victim's zone: 13:30 UTC is 14:30 at UTC+1 (BST).
    bst = timezone(timedelta(hours=1))
    assert format_when(datetime(2026, 7, 1, 13, 30, tzinfo=timezone.utc), tz=bst).endswith("at 2:30pm")
    with pytest.raises(SmsInputError, match="time zone"):
        format_when(datetime(2026, 7, 1, 13, 30), tz=bst)


@pytest.mark.parametrize(
    "force, link, match",
    [
        ("", LINK, "force name is needed"),
        ("X" * 65, LINK, "longer than 64"),
        ("Testshire\u202ePolice", LINK, "control characters"),
        ("Testshire Police", "javascript:alert(1)", "not a web address"),
        ("Testshire Police", "https://evr.example/j/a b", "not a web address"),
        ("Testshire Police", "https://evr.example/j/\n0800 scam", "not a web address"),
        ("Testshire Police", "https://evr.example/" + "a" * 300, "not a web address"),
    ],
)
def test_bad_inputs_are_refused_in_words(force, link, match):
    with pytest.raises(SmsInputError, match=match):
        compose(force, SLOT, link)


def test_unknown_language_is_refused():
    with pytest.raises(SmsInputError, match="en, cy"):
        compose("Testshire Police", SLOT, LINK, "fr")


# -- length accounting ----------------------------------------------------------

@pytest.mark.parametrize(
    "text, encoding, units, segments",
    [
        ("", GSM7, 0, 0),
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),
        ("a" * 307, GSM7, 307, 3),
        ("a" * 459, GSM7, 459, 3),
        ("a" * 460, GSM7, 460, 4),
        ("€" * 80, GSM7, 160, 1),  # extension characters count two
        ("[" * 81, GSM7, 162, 2),
        ("£@èÄ§¿\n", GSM7, 7, 1),  # basic set, not ASCII, still one septet each
        ("ŵ" * 70, UCS2, 70, 1),
        ("a" * 69 + "ŷ", UCS2, 70, 1),
        ("ŵ" * 71, UCS2, 71, 2),
        ("ŵ" * 134, UCS2, 134, 2),
        ("ŵ" * 135, UCS2, 135, 3),
        ("😀" * 35, UCS2, 70, 1),  # outside the BMP: a surrogate pair each
        ("`", UCS2, 1, 1),  # the backtick is not in GSM 03.38
    ],
)
def test_measure(text, encoding, units, segments):
    got = measure(text)
    assert (got.encoding, got.units, got.segments) == (encoding, units, segments)


def test_pairs_never_straddle_parts():
    # 459 septets would fit three 153-septet parts if an escape pair could be cut
    # in two; it cannot, so each euro that meets a boundary moves whole to the
    # next part, and the text needs four.
    text = "a" * 152 + "€" + "a" * 152 + "€" + "a" * 151
    assert measure(text).units == 459 and measure(text).segments == 4
    assert measure(("a" * 151 + "€") * 3).segments == 3  # each part exactly 153
    # The same for a surrogate pair in UCS-2: 134 units, but three parts.
    assert measure("a" * 66 + "😀" + "a" * 66).units == 134
    assert measure("a" * 66 + "😀" + "a" * 66).segments == 3
    assert measure("a" * 65 + "😀" + "a" * 67).segments == 2


def test_over_three_parts_is_refused_with_a_clear_message():
    assert check_length("a" * 459).segments == MAX_SEGMENTS
    with pytest.raises(SmsTooLong, match=r"4 parts \(460 characters\); at most 3 parts"):
        check_length("a" * 460)
    with pytest.raises(SmsTooLong, match="outside the basic SMS alphabet \\('ŵ'\\).*67 characters instead of 153"):
        check_length("ŵ" * 202)


def test_one_non_gsm_character_costs_the_whole_text_and_the_refusal_says_so():
    # A circumflex in the force name turns the whole Welsh text into UCS-2: 4 parts.
    with pytest.raises(SmsTooLong) as err:
        compose("Heddlu Gŵyr", SLOT, LINK, "cy")
    assert "('ŵ')" in str(err.value) and "without such characters it would need 2" in str(err.value)
    short = compose("Gŵyr", SLOT, "https://e.uk/j/abc", "cy")
    assert short.length.encoding == UCS2 and short.length.segments == 3
    long_link = "https://evr.testshire.police.uk/" + "j" * 250
    with pytest.raises(SmsTooLong, match="shorter force name or a shorter link"):
        compose("Testshire Police", SLOT, long_link)


# -- numbers --------------------------------------------------------------------

@pytest.mark.parametrize(
    "written",
    ["07700 900123", "07700900123", "077009 00123", "+447700900123", "+44 7700 900123", "+44 (0)7700 900-123",
     "0044 7700 900123", "447700900123", " 07700.900.123 ", "(07700) 900123"],
)
def test_uk_mobiles_as_people_write_them(written):
    assert to_e164(written) == "+447700900123"


def test_crown_dependency_mobiles_are_uk_mobiles():
    assert to_e164("07624 123456") == "+447624123456"  # Isle of Man


@pytest.mark.parametrize(
    "written, match",
    [
        ("", "needed"),
        ("07700 9OO123", "only contain digits"),
        ("07700 900123 ext 2", "only contain digits"),
        ("0770+0900123", r"\+ can only come at the start"),
        ("+33 6 12 34 56 78", "Only UK mobile numbers"),
        ("0033612345678", "Only UK mobile numbers"),
        ("020 7946 0123", "landline"),
        ("+44 20 7946 0123", "landline"),
        ("0800 123 4567", "landline"),
        ("07700 90012", "too short"),
        ("07700 9001234", "too long"),
        ("7700900123", "starts with 07"),
    ],
)
def test_not_uk_mobiles_are_refused_in_words(written, match):
    with pytest.raises(InvalidMobile, match=match):
        to_e164(written)


def test_the_booking_rule_and_the_sms_rule_agree_on_the_usual_forms():
    from evr_desktop.domain.appointment import MOBILE_PATTERN

    for written in ("07700 900123", "+44 7700 900123", "07700900123"):
        assert MOBILE_PATTERN.match(written) and to_e164(written) == "+447700900123"


# -- the outbox -----------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "store.sqlite3", KEY)
    yield s
    try:
        s.close()
    except Exception:
        pass


def text() -> str:
    return compose("Testshire Police", SLOT, LINK).text


def test_outbox_is_a_notifier_and_queues_for_the_officer(store):
    outbox = OutboxNotifier(store)
    assert isinstance(outbox, Notifier)
    result = outbox.send("appt-1", NUMBER, text())
    assert result.status is SendStatus.QUEUED and result.ok
    assert "outbox" in result.message and "copy" in result.message.lower()
    [m] = outbox.list()
    assert (m.id, m.appointment_id, m.status, m.to_e164, m.body) == (
        result.provider_id, "appt-1", OutboxStatus.QUEUED, NUMBER, text())
    assert NUMBER not in repr(m) and LINK not in repr(m)


def test_status_transitions(store):
    outbox = OutboxNotifier(store)
    mid = outbox.send("appt-1", NUMBER, text()).provider_id
    assert outbox.mark_copied(mid).status is OutboxStatus.COPIED
    assert outbox.mark_copied(mid).status is OutboxStatus.COPIED  # copying again is fine
    assert outbox.mark_sent(mid).status is OutboxStatus.SENT
    with pytest.raises(OutboxError, match="'sent' cannot become 'copied'"):
        outbox.mark_copied(mid)
    with pytest.raises(OutboxError, match="cannot become 'cancelled'"):
        outbox.cancel(mid)
    with pytest.raises(OutboxError, match="no longer in the outbox"):
        outbox.mark_copied("no-such-id")
    other = outbox.send("appt-2", NUMBER, text()).provider_id
    assert outbox.cancel(other).status is OutboxStatus.CANCELLED
    with pytest.raises(OutboxError):
        outbox.mark_sent(other)


def test_a_new_text_for_the_appointment_cancels_the_open_ones(store):
    outbox = OutboxNotifier(store)
    first = outbox.send("appt-1", NUMBER, text()).provider_id
    outbox.mark_copied(first)
    elsewhere = outbox.send("appt-2", NUMBER, text()).provider_id
    second = outbox.send("appt-1", NUMBER, text()).provider_id
    status = {m.id: m.status for m in outbox.list()}
    assert status == {first: OutboxStatus.CANCELLED, elsewhere: OutboxStatus.QUEUED, second: OutboxStatus.QUEUED}
    assert [m.id for m in outbox.list("appt-1", open_only=True)] == [second]
    assert [m.id for m in outbox.list()][0] == second  # newest first


def test_the_database_itself_holds_the_rules(store):
    outbox = OutboxNotifier(store)
    mid = outbox.send("appt-1", NUMBER, text()).provider_id
    con = store._con
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        con.execute("UPDATE outbox SET body = x'00' WHERE id = ?", (mid,))
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        con.execute('UPDATE outbox SET "to" = x\'00\' WHERE id = ?', (mid,))
    con.execute("UPDATE outbox SET status = 'sent' WHERE id = ?", (mid,))
    with pytest.raises(sqlite3.IntegrityError, match="not allowed"):
        con.execute("UPDATE outbox SET status = 'queued' WHERE id = ?", (mid,))
    with pytest.raises(sqlite3.IntegrityError, match="starts queued"):
        con.execute("INSERT INTO outbox VALUES ('x', 'a', 't', 'sent', x'00', x'00', 't')")
    with pytest.raises(sqlite3.IntegrityError, match="not allowed"):
        con.execute("UPDATE outbox SET status = 'lost' WHERE id = ?", (mid,))


def test_the_outbox_refuses_bad_input_in_words_and_queues_nothing(store):
    outbox = OutboxNotifier(store)
    for to, body, match in (
        ("07700900456", text(), "not a UK mobile"),  # not E.164: the caller must normalise
        ("+33612345678", text(), "not a UK mobile"),
        (NUMBER, "   ", "empty"),
        (NUMBER, "a" * 460, "4 parts"),
    ):
        r = outbox.send("appt-1", to, body)
        assert r.status is SendStatus.FAILED and r.provider_id is None and match in r.message
    assert outbox.list() == []


class _DiskFull:
    """The store's connection, except that every INSERT fails as on a full disk."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith("INSERT"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._con.execute(sql, *args)


def test_a_store_failure_is_a_plain_message(store):
    box = SqliteOutbox(store)
    box._con = _DiskFull(store._con)
    r = OutboxNotifier(box).send("appt-1", NUMBER, text())
    assert r.status is SendStatus.FAILED and r.provider_id is None
    assert r.message == (
        "The text was not queued: The text message could not be put in the outbox (database or disk is full)."
    )
    assert OutboxNotifier(store).list() == []  # rolled back, and the store still works
    assert OutboxNotifier(store).send("appt-1", NUMBER, text()).ok


def test_nothing_in_plaintext_on_disk(store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    outbox = OutboxNotifier(store)
    for lang in STRINGS:
        m = compose("Testshire Police", SLOT, LINK, lang)
        mid = outbox.send("appt-1", NUMBER, m.text).provider_id
        outbox.mark_copied(mid)
    assert len(outbox.list()) == 2
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"appt-1" in raw  # the check can see plain columns...
    token = LINK.rsplit("/", 1)[1]
    for secret in (NUMBER, "7700900456", "900456", LINK, token, "ymunwch", "join here", "Testshire Police"):
        for encoded in (secret.encode("utf-8"), secret.encode("utf-16-le")):
            assert encoded not in raw, secret  # ...but not the number, the link or the words
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "appt-1" in logged and NUMBER not in logged and token not in logged


def test_a_blob_moved_to_another_row_does_not_decrypt(store):
    outbox = OutboxNotifier(store)
    a = outbox.send("appt-1", NUMBER, text()).provider_id
    b = outbox.send("appt-2", "+447700900999", text()).provider_id
    con = store._con
    con.execute("DROP TRIGGER outbox_message_is_fixed")  # as an attacker with the file would
    con.execute('UPDATE outbox SET "to" = (SELECT "to" FROM outbox WHERE id = ?) WHERE id = ?', (a, b))
    with pytest.raises(OutboxError, match="integrity check"):
        outbox.get(b)


def test_deleting_erases(store, tmp_path):
    box = SqliteOutbox(store)
    m1 = box.add("appt-1", NUMBER, text())
    box.add("appt-1", NUMBER, text(), supersede=False)
    box.add("appt-2", NUMBER, text())
    box.delete(m1.id)
    assert box.delete_for_appointment("appt-1") == 1
    assert [m.appointment_id for m in box.list()] == ["appt-2"]


def test_migration_three_is_appended_and_an_old_store_upgrades(tmp_path):
    assert len(MIGRATIONS) >= 3 and "CREATE TABLE outbox" in MIGRATIONS[2]
    path = tmp_path / "old.sqlite3"
    SqliteStore(path, KEY).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE outbox")
    con.execute("DROP TABLE IF EXISTS statement_rear_page")  # migration 4 and later
    con.execute("DROP TABLE IF EXISTS safety_alert")  # migration 5
    con.execute("DROP TABLE IF EXISTS still")  # migration 6
    con.execute("DROP TABLE IF EXISTS exhibit_counter")
    con.execute("PRAGMA user_version = 2")  # as a store written before this release
    con.commit()
    con.close()
    s = SqliteStore(path, KEY)
    assert OutboxNotifier(s).send("appt-1", NUMBER, text()).ok
    cols = [r[1] for r in s._con.execute("PRAGMA table_info(outbox)")]
    assert cols[:6] == ["id", "appointment_id", "created", "status", "body", "to"]
    s.close()


# -- the gateway's pure parts (its network behaviour: tests/e2e/test_notify_gateway.py)

SERVICE = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"


def test_jwt_matches_a_known_token():
    # Header and claims as GOV.UK Notify's client library (PyJWT) makes them.
    token = make_jwt(SERVICE, SECRET, 1_700_000_000.9)
    header, claims, signature = token.split(".")
    import base64  # noqa: E401
    import hashlib
    import hmac
    import json

    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(header))) == {"typ": "JWT", "alg": "HS256"}
    assert json.loads(base64.urlsafe_b64decode(pad(claims))) == {"iss": SERVICE, "iat": 1_700_000_000}
    expected = hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(pad(signature)) == expected and "=" not in token


def test_gateway_config_defaults_and_checks():
    cfg = GatewayConfig(SERVICE, SECRET, TEMPLATE)
    assert (cfg.connect_timeout, cfg.total_timeout) == (5.0, 15.0)
    assert cfg.url == "https://api.notifications.service.gov.uk/v2/notifications/sms"
    assert SECRET not in repr(cfg)
    assert cfg.worst_case_seconds() < 60
    key = f"evr_live-{SERVICE}-{SECRET}"
    assert GatewayConfig.from_api_key(key, TEMPLATE) == cfg
    for bad, match in (
        (dict(base_url="http://notify.example.org"), "https://"),
        (dict(base_url="ftp://x"), "https://"),
        (dict(base_url="https://u:p@notify.example.org"), "password"),
        (dict(service_id="nope"), "service id must be a UUID"),
        (dict(template_id="nope"), "template id must be a UUID"),
        (dict(secret_key="short"), "too short"),
        (dict(connect_timeout=20.0), "connect <= total"),
        (dict(max_attempts=0), "attempts"),
    ):
        with pytest.raises(GatewayConfigError, match=match):
            replace(cfg, **bad)
    assert replace(cfg, base_url="http://127.0.0.1:8080").url == "http://127.0.0.1:8080/v2/notifications/sms"
    with pytest.raises(GatewayConfigError, match="Notify API key"):
        GatewayConfig.from_api_key("not-a-key", TEMPLATE)


def test_gateway_refuses_bad_input_before_the_network(monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    gw = NotifyGateway(GatewayConfig(SERVICE, SECRET, TEMPLATE))
    assert isinstance(gw, Notifier)
    r = gw.send("appt-1", "07700900123", text())
    assert r.status is SendStatus.FAILED and "not a UK mobile" in r.message
    r = gw.send("appt-1", NUMBER, "a" * 460)
    assert r.status is SendStatus.FAILED and "4 parts" in r.message
