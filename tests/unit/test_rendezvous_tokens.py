"""Join links: unguessable, one-time, one device, only around the slot."""

from __future__ import annotations

import base64
import math
from datetime import datetime, timedelta, timezone

import pytest

from evr_desktop.rendezvous.tokens import (
    OFFICER_NOTES,
    VICTIM_TEXTS,
    Claim,
    KindText,
    Opened,
    Reason,
    Refusal,
    RegistryFull,
    TokenRegistry,
    digest,
    kind_text,
    pick_language,
)

SLOT = datetime(2025, 3, 4, 14, 0, tzinfo=timezone.utc)
END = SLOT + timedelta(minutes=45)
NOW = SLOT - timedelta(minutes=5)


def issued(reg: TokenRegistry | None = None, appt: str = "a1") -> tuple[TokenRegistry, str, str]:
    reg = reg or TokenRegistry()
    token, link_id = reg.issue(appt, SLOT, END, NOW - timedelta(hours=2))
    return reg, token, link_id


def test_tokens_are_long_random_and_distinct():
    reg = TokenRegistry()
    tokens = [reg.issue(f"a{i}", SLOT, END, NOW)[0] for i in range(500)]
    assert len(set(tokens)) == 500
    for t in tokens:
        assert len(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))) * 8 >= 128
        assert t.replace("-", "").replace("_", "").isalnum()
    # Rough entropy check: characters spread over the base64 alphabet.
    chars = "".join(tokens)
    counts = {c: chars.count(c) for c in set(chars)}
    entropy = -sum(n / len(chars) * math.log2(n / len(chars)) for n in counts.values())
    assert len(counts) == 64 and entropy > 5.9


def test_only_digests_are_stored():
    reg, token, _ = issued()
    claim = reg.claim(token, None, NOW)
    assert isinstance(claim, Claim)
    held = list(reg.stored_secrets())
    assert digest(token) in held and digest(claim.device_secret) in held
    # Neither secret appears anywhere in the registry's state.
    state = repr(vars(reg)) + "".join(repr(vars(e)) for e in reg._by_hash.values())
    assert token not in state and claim.device_secret not in state
    assert token.encode() not in b"".join(held)


def test_first_device_claims_and_may_come_back():
    reg, token, link_id = issued()
    first = reg.claim(token, None, NOW)
    assert isinstance(first, Claim) and first.first and first.appointment_id == "a1"
    assert first.link_id == link_id
    again = reg.claim(token, first.device_secret, NOW + timedelta(minutes=1))
    assert isinstance(again, Claim) and not again.first
    assert reg.device(first.device_secret, NOW) == Claim("a1", link_id, first.device_secret, False)


@pytest.mark.parametrize("other", [None, "x" * 43, "not a secret!", ""])
def test_second_device_is_refused(other):
    reg, token, link_id = issued()
    assert isinstance(reg.claim(token, None, NOW), Claim)
    assert reg.claim(token, other, NOW) == Refusal(Reason.SECOND_DEVICE, "a1", link_id)


def test_peek_changes_nothing():
    reg, token, link_id = issued()
    for _ in range(5):  # a preview, a scanner, the phone itself
        assert reg.peek(token, None, NOW) == Opened("a1", link_id, claimed=False)
    claim = reg.claim(token, None, NOW)
    assert isinstance(claim, Claim) and claim.first  # peeking did not claim it
    assert reg.peek(token, claim.device_secret, NOW) == Opened("a1", link_id, claimed=True)
    assert reg.peek(token, None, NOW) == Refusal(Reason.SECOND_DEVICE, "a1", link_id)
    assert reg.peek("x" * 32, None, NOW) == Refusal(Reason.INVALID)


def test_close_locks_the_link_for_its_device_until_a_new_one_is_issued():
    reg, token, link_id = issued()
    claim = reg.claim(token, None, NOW)
    assert isinstance(claim, Claim)
    # Only the device holding it can close a claimed link.
    assert reg.close(token, None) == Refusal(Reason.SECOND_DEVICE, "a1", link_id)
    assert isinstance(reg.claim(token, claim.device_secret, NOW), Claim)
    assert reg.close(token, claim.device_secret) == Opened("a1", link_id, claimed=True)
    for secret in (claim.device_secret, None):
        assert reg.claim(token, secret, NOW) == Refusal(Reason.CLOSED, "a1", link_id)
        assert reg.peek(token, secret, NOW) == Refusal(Reason.CLOSED, "a1", link_id)
    assert reg.device(claim.device_secret, NOW) == Refusal(Reason.CLOSED, "a1", link_id)
    assert isinstance(reg.close(token, claim.device_secret), Opened)  # twice: reported again, still closed
    assert reg.peek(token, claim.device_secret, NOW).reason is Reason.CLOSED
    new_token, _ = reg.issue("a1", SLOT, END, NOW)
    assert isinstance(reg.claim(new_token, claim.device_secret, NOW), Claim)
    assert reg.claim(token, None, NOW).reason is Reason.CLOSED  # the old one stays closed


def test_quick_exit_after_the_call_or_the_window_still_closes_and_is_reported():
    for finish in ("end", "late"):
        reg, token, link_id = issued()
        claim = reg.claim(token, None, NOW)
        if finish == "end":
            assert reg.end("a1")
        later = END + timedelta(hours=3)
        assert isinstance(reg.peek(token, claim.device_secret, later), Refusal)
        assert reg.holder(token, claim.device_secret) == Opened("a1", link_id, claimed=True)
        assert reg.close(token, claim.device_secret) == Opened("a1", link_id, claimed=True)
        assert reg.holder(token, None) == Refusal(Reason.SECOND_DEVICE, "a1", link_id)


def test_an_unclaimed_link_can_be_closed_by_whoever_holds_it():
    reg, token, link_id = issued()
    assert reg.close(token, None) == Opened("a1", link_id, claimed=False)
    assert reg.claim(token, None, NOW).reason is Reason.CLOSED


def test_replay_after_the_call_ended_is_used_even_for_the_same_device():
    reg, token, _ = issued()
    claim = reg.claim(token, None, NOW)
    assert reg.end("a1")
    for secret in (claim.device_secret, None):
        r = reg.claim(token, secret, NOW)
        assert isinstance(r, Refusal) and r.reason is Reason.USED
    assert reg.device(claim.device_secret, NOW).reason is Reason.USED


def test_window_around_the_slot():
    reg, token, _ = issued()
    assert reg.window("a1") == (SLOT - timedelta(minutes=30), END + timedelta(minutes=30))
    assert reg.claim(token, None, SLOT - timedelta(minutes=31)).reason is Reason.NOT_YET
    assert reg.claim(token, None, END + timedelta(minutes=31)).reason is Reason.EXPIRED
    claim = reg.claim(token, None, SLOT - timedelta(minutes=30))
    assert isinstance(claim, Claim)
    assert isinstance(reg.claim(token, claim.device_secret, END + timedelta(minutes=30)), Claim)
    assert reg.device(claim.device_secret, END + timedelta(hours=1)).reason is Reason.EXPIRED


def test_window_is_configurable():
    reg = TokenRegistry(early=timedelta(minutes=5), late=timedelta(0))
    token, _ = reg.issue("a1", SLOT, END, NOW)
    assert reg.claim(token, None, SLOT - timedelta(minutes=6)).reason is Reason.NOT_YET
    assert reg.claim(token, None, END + timedelta(seconds=1)).reason is Reason.EXPIRED


@pytest.mark.parametrize(
    "forged",
    ["", "short", "A" * 32, "a" * 500, "../../etc/passwd", "x" * 31 + "\u00e9", None, 12345],
)
def test_forged_or_unknown_tokens_are_invalid(forged):
    reg, token, _ = issued()
    assert reg.claim(forged, None, NOW) == Refusal(Reason.INVALID)
    # A token differing in one character is just as unknown.
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert reg.claim(flipped, None, NOW) == Refusal(Reason.INVALID)


def test_device_lookup_refuses_unknown_cookies():
    reg, _, _ = issued()
    for cookie in (None, "", "x" * 43, "bad cookie"):
        assert reg.device(cookie, NOW) == Refusal(Reason.INVALID)


def test_revoke_and_reissue():
    reg, token, _ = issued()
    claim = reg.claim(token, None, NOW)
    assert reg.revoke("a1") and not reg.revoke("a1")
    assert reg.claim(token, claim.device_secret, NOW).reason is Reason.REVOKED
    assert reg.device(claim.device_secret, NOW).reason is Reason.REVOKED
    # A new link for the same appointment makes the previous one stop working.
    new, _ = reg.issue("a1", SLOT, END, NOW)
    newer, _ = reg.issue("a1", SLOT, END, NOW)
    assert reg.claim(new, None, NOW).reason is Reason.REVOKED
    assert isinstance(reg.claim(newer, None, NOW), Claim)
    assert not reg.end("nope") and not reg.revoke("nope")


def test_issue_checks_its_arguments():
    reg = TokenRegistry()
    with pytest.raises(ValueError):
        reg.issue("", SLOT, END, NOW)
    with pytest.raises(ValueError):
        reg.issue("a" * 65, SLOT, END, NOW)
    with pytest.raises(ValueError):
        reg.issue("a1", END, SLOT, NOW)
    with pytest.raises(ValueError):
        reg.issue("a1", SLOT, END, END + timedelta(hours=1))


def test_bounded_live_links_refused_finished_ones_evicted():
    reg = TokenRegistry(max_entries=50)
    for i in range(50):
        reg.issue(f"a{i}", SLOT, END, NOW)
    with pytest.raises(RegistryFull):
        reg.issue("one-too-many", SLOT, END, NOW)
    assert len(reg) == 50
    # A finished link makes room (the one that closed first goes).
    reg.end("a7")
    reg.issue("b1", SLOT, END, NOW)
    assert len(reg) == 50 and reg.window("b1") is not None
    # Links past the retention period are all forgotten when room is needed.
    later = END + timedelta(days=2)
    reg.issue("c1", later, later + timedelta(minutes=45), later)
    assert len(reg) == 1


def test_thousands_of_links_stay_within_the_bound():
    reg = TokenRegistry(max_entries=10_000)
    t0 = NOW
    for i in range(12_000):
        slot = t0 + timedelta(minutes=i)  # every slot a minute later: old ones finish
        reg.issue(f"a{i}", slot, slot + timedelta(minutes=1), slot)
    assert len(reg) <= 10_000


def test_every_reason_has_kind_texts_in_every_language_and_an_officer_note():
    assert {"en", "cy"} <= set(VICTIM_TEXTS)
    for lang, texts in VICTIM_TEXTS.items():
        assert isinstance(texts["page_title"], str) and texts["page_title"]
        for reason in Reason:
            text = texts[reason]
            assert isinstance(text, KindText), (lang, reason)
            assert text.title and len(text.body) > 60
            assert "999" in text.body  # always the way out in an emergency
            assert "101" in text.body  # and someone to call
        # no police jargon on a victim's screen
        words = " ".join(t.body.lower() for t in texts.values() if isinstance(t, KindText))
        for jargon in ("token", "revoked", "invalid", "urn", "http", "error"):
            assert jargon not in words, (lang, jargon)
    for reason in Reason:
        assert OFFICER_NOTES[reason]
        assert reason.http_status in (403, 404, 410)
        assert kind_text(reason, "xx") == kind_text(reason, "en")
    assert kind_text(Reason.USED, "cy") != kind_text(Reason.USED, "en")


@pytest.mark.parametrize(
    "header,wanted,expected",
    [
        (None, None, "en"),
        ("cy-GB,en;q=0.8", None, "cy"),
        ("en-GB,cy;q=0.9", None, "en"),
        ("fr-FR,cy;q=0.5,en;q=0.4", None, "cy"),
        ("en;q=0.1,cy;q=0.9", None, "cy"),
        ("cy;q=0", None, "en"),
        ("garbage;q=x,,,", None, "en"),
        ("en", "cy", "cy"),
        ("cy", "zz", "cy"),
    ],
)
def test_language_choice(header, wanted, expected):
    assert pick_language(header, wanted) == expected


def test_a_link_restored_after_its_registry_is_gone_works_again_unclaimed():
    """The media process that held the demo's registry crashed: the app gives
    the new one the link back (evr_desktop/media/proxy.py)."""
    from datetime import datetime, timedelta, timezone

    from evr_desktop.rendezvous.tokens import Claim, Reason, Refusal, TokenRegistry

    now = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    start, end = now + timedelta(minutes=5), now + timedelta(minutes=35)
    old = TokenRegistry()
    token, _ = old.issue("appt-1", start, end, now)
    first = old.claim(token, None, now)
    assert isinstance(first, Claim)
    new = TokenRegistry()  # the new media process
    new.restore(token, "appt-1", start, end, now)
    again = new.claim(token, first.device_secret, now)  # the same phone, its cookie unknown here
    assert isinstance(again, Claim) and again.first and again.appointment_id == "appt-1"
    other = new.claim(token, None, now)  # and from then on, first device only again
    assert isinstance(other, Refusal) and other.reason is Reason.SECOND_DEVICE
    with pytest.raises(ValueError):
        new.restore(token, "appt-1", start, end, now)  # known already
    with pytest.raises(ValueError):
        new.restore("not a token!", "appt-2", start, end, now)
    with pytest.raises(ValueError):
        new.restore(old.issue("appt-3", start, end, now)[0], "appt-3", start - timedelta(days=1),
                    end - timedelta(days=1), now)  # its slot is over
    # A new link for the appointment still revokes the restored one.
    new.issue("appt-1", start, end, now)
    assert isinstance(new.claim(token, again.device_secret, now), Refusal)
