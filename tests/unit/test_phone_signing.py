"""Signing on the victim's phone, the pure parts: the review text and its hash,
the checks on what the page sends back, and the strokes drawn as an image."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace

import pytest
from PIL import Image

from evr_desktop.domain.phone_signing import (
    MAX_POINTS,
    MAX_REVIEW_BYTES,
    RECORDING_NOTE_PLACEHOLDER,
    BadPageMessage,
    PhoneDeclined,
    PhoneSignature,
    ReviewTooLarge,
    check_strokes,
    normalise_text,
    parse_page_message,
    recording_note,
    review_message,
    review_sha256,
)
from evr_desktop.domain.statement_doc import StatementContent, StatementType
from evr_desktop.statement.phone_signature import strokes_png
from evr_desktop.statement.review import review_text
from evr_desktop.statement.templates import load_templates

RID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def templates():
    return load_templates()


def content(**kw) -> StatementContent:
    fields = {"classification": "OFFICIAL-SENSITIVE", "urn": "01TS7654321", "statement_of": "Morwenna INVENTED",
              "age": "Over 18", "occupation": "Glassblower", "visually_recorded": "yes",
              "home_address": "1 Secret Lane", "mobile_phone": "07700 900123"}
    return StatementContent(fields=fields, narrative="I was walking home.\r\nHe shouted at me.\rThen he ran.", **kw)


def test_review_text_is_the_page_one_header_and_the_narrative_with_newlines_normalised(templates):
    text = review_text(content(), templates)
    assert text == (
        "WITNESS STATEMENT\n"
        "URN: 01TS7654321\n"
        "Statement of: Morwenna INVENTED\n"
        "Age if under 18: Over 18\n"
        "Occupation: Glassblower\n"
        "This statement was also visually recorded: Yes\n"
        "\n"
        "I was walking home.\nHe shouted at me.\nThen he ran."
    )
    # Never the classification marking, never a rear-page (restricted) field.
    assert "OFFICIAL" not in text and "Secret Lane" not in text and "07700" not in text
    vps = review_text(replace(content(), statement_type=StatementType.VPS), templates)
    assert vps.startswith("VICTIM PERSONAL STATEMENT\n")


def test_review_text_shows_what_the_pdf_draws(templates):
    """A bidi override cannot make the phone show the text in another order than the PDF."""
    text = review_text(replace(content(), narrative="paid \u202e0001\u202c pounds\x00"), templates)
    assert "\u202e" not in text and "\x00" not in text and text.count("\ufffd") == 3


def test_the_hash_is_sha256_of_the_utf8_text_and_one_character_changes_it(templates):
    text = review_text(content(), templates)
    assert review_sha256(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    changed = review_text(replace(content(), narrative=content().narrative.replace("ran", "ran.")), templates)
    assert len(changed) == len(text) + 1 and review_sha256(changed) != review_sha256(text)
    # Welsh and accents: UTF-8, not Latin-1; no Unicode normalisation (what is typed is what is hashed).
    assert review_sha256("Dŵr") == hashlib.sha256("Dŵr".encode()).hexdigest()
    assert review_sha256("e\u0301") != review_sha256("\u00e9")
    assert normalise_text("a\r\nb\rc\n") == "a\nb\nc\n"


def test_the_review_message_is_bounded():
    body = json.loads(review_message(RID, "Text", 2, "Declaration (2 pages)", "witness"))
    assert body == {"type": "statement_review", "id": RID, "text": "Text", "pages": 2,
                    "declaration": "Declaration (2 pages)", "kind": "witness"}
    with pytest.raises(ReviewTooLarge, match="too long to send to the phone"):
        review_message(RID, "x" * MAX_REVIEW_BYTES, 1, "D", "witness")
    review_message(RID, "ŵ" * (MAX_REVIEW_BYTES // 2 - 200), 1, "D", "vps")  # ~200 KB of UTF-8: still fits
    with pytest.raises(ReviewTooLarge):
        review_message(RID, "ŵ" * (MAX_REVIEW_BYTES // 2), 1, "D", "vps")
    for bad in (dict(review_id="short"), dict(pages=0), dict(pages=True), dict(kind="mg2")):
        args = {"review_id": RID, "text": "T", "pages": 1, "declaration": "D", "kind": "witness", **bad}
        with pytest.raises(ValueError):
            review_message(**args)  # type: ignore[arg-type]


def stroke(n: int = 12, y: float = 40.0) -> list[list[float]]:
    return [[10.0 + 5 * i, y + (i % 3), 16 * i] for i in range(n)]


def signed(**over) -> dict:
    return {"type": "statement_signed", "id": RID, "sha256": "ab" * 32, "strokes": [stroke()], "width": 320,
            "height": 160, **over}


def test_a_good_signature_and_a_decline_parse():
    sig = parse_page_message(signed(strokes=[stroke(), stroke(3, 80)]))
    assert isinstance(sig, PhoneSignature) and sig.points == 15 and sig.width == 320.0
    assert sig.strokes[0][1] == (15.0, 41.0, 16)
    assert isinstance(sig.strokes, tuple) and isinstance(sig.strokes[0][0], tuple)
    assert parse_page_message({"type": "statement_declined", "id": RID}) == PhoneDeclined(RID)


@pytest.mark.parametrize("change, code", [
    ({"type": "chat"}, "bad-type"),
    ({"id": "NOT-HEX-0123456789"}, "bad-id"),
    ({"id": 12345678901234567}, "bad-id"),
    ({"sha256": "AB" * 32}, "bad-hash"),
    ({"sha256": "ab" * 31}, "bad-hash"),
    ({"sha256": None}, "bad-hash"),
    ({"width": "320"}, "bad-size"),
    ({"width": True}, "bad-size"),
    ({"height": 10}, "bad-size"),
    ({"height": 1e9}, "bad-size"),
    ({"width": float("nan")}, "bad-size"),
    ({"strokes": []}, "bad-strokes"),
    ({"strokes": "M0 0"}, "bad-strokes"),
    ({"strokes": [[]]}, "bad-strokes"),
    ({"strokes": [[[1, 2]]]}, "bad-strokes"),
    ({"strokes": [[[1, 2, "3"]] * 12]}, "bad-strokes"),
    ({"strokes": [[[1, 2, None]] * 12]}, "bad-strokes"),
    ({"strokes": [[[float("inf"), 2, 3]] * 12]}, "bad-strokes"),
    ({"strokes": [[[1, 2, 3, 4]] * 12]}, "bad-strokes"),
    ({"strokes": [[[-1, 2, 3]] * 12]}, "out-of-range"),
    ({"strokes": [[[1, 161, 3]] * 12]}, "out-of-range"),
    ({"strokes": [[[1, 2, -5]] * 12]}, "out-of-range"),
    ({"strokes": [[[1, 2, 3]]] * 201}, "too-many-points"),
    ({"strokes": [[[1, 2, 3]] * (MAX_POINTS + 1)]}, "too-many-points"),
    ({"strokes": [[[1, 2, 3]] * 9]}, "too-few-points"),
])
def test_a_malformed_signature_is_refused_with_a_code(change, code):
    with pytest.raises(BadPageMessage) as info:
        parse_page_message(signed(**change))
    assert info.value.code == code


def test_not_an_object_or_no_id_is_refused():
    with pytest.raises(BadPageMessage):
        parse_page_message(["statement_signed"])  # type: ignore[arg-type]
    with pytest.raises(BadPageMessage):
        parse_page_message({"type": "statement_declined"})


def test_the_recording_note_is_one_short_line_whatever_the_moment():
    assert recording_note(3723.9) == ("Declaration confirmed and signed on the witness's phone at 01:02:03 "
                                      "into the call's recording.")
    assert "not recorded" in recording_note(None)
    assert len(recording_note(None)) <= len(RECORDING_NOTE_PLACEHOLDER) <= 100  # ~400 of the 495 pt at 7.5 pt
    assert len(recording_note(359999.0)) == len(RECORDING_NOTE_PLACEHOLDER)


def test_the_strokes_become_a_cropped_transparent_png():
    strokes, w, h = check_strokes([stroke(), stroke(12, 100)], 320, 160)
    png = strokes_png(PhoneSignature(RID, "ab" * 32, strokes, w, h))
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA"
    # Cropped to what was drawn (x 10-65, y 40-102) plus an 8 px margin, at 3 px per CSS px.
    assert image.size == (round((65 + 8 - 2) * 3), round((102 + 8 - 32) * 3))
    alpha = image.getchannel("A")
    assert alpha.getextrema() == (0, 255)  # ink on a transparent background
    assert alpha.getpixel((0, 0)) == 0


# -- the engine's side: what the page sends over the data channel ------------------------------


class FakeChannel:
    readyState = "open"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, data: str) -> None:
        self.sent.append(data)


@pytest.fixture
def call():
    """A CallSession with a stand-in engine (only ``_emit``) and an open data channel."""
    from types import SimpleNamespace

    from evr_desktop.call.engine import CallSession

    events: list = []
    session = CallSession(SimpleNamespace(_emit=events.append), "appt-9")  # type: ignore[arg-type]
    session.channel = FakeChannel()
    return session, events


def run(coro):
    import asyncio

    return asyncio.run(coro)


def test_the_engine_sends_the_review_and_turns_the_answer_into_an_event(call):
    from evr_desktop.call import events as ev

    session, events = call
    run(session.send_statement_review(RID, "WITNESS STATEMENT\n\nText", 1, "Declaration", "witness"))
    assert json.loads(session.channel.sent[0])["type"] == "statement_review"
    session._on_channel_message(json.dumps(signed(sha256="ef" * 32)))
    (e,) = events
    assert isinstance(e, ev.StatementSigned) and e.review_id == RID and e.sha256 == "ef" * 32
    assert e.recording_at_s is None and len(e.strokes[0]) == 12
    # A second answer to the same review is refused (the first one stands).
    session._on_channel_message(json.dumps(signed()))
    assert isinstance(events[-1], ev.Error) and events[-1].code == "bad-phone-signature"
    # A decline, for a review sent again.
    run(session.send_statement_review(RID, "T", 1, "D", "witness"))
    session._on_channel_message(json.dumps({"type": "statement_declined", "id": RID}))
    assert events[-1] == ev.StatementDeclined("appt-9", RID)


@pytest.mark.parametrize("message", [
    json.dumps(signed(id="f" * 32)),  # a review this call never sent
    json.dumps(signed(strokes=[[[1, 2, 3]] * 9])),
    json.dumps(signed(strokes=[[[1e9, 2, 3]] * 12])),
    json.dumps(signed(width="wide")),
    json.dumps(signed(sha256="not a hash")),
    json.dumps({"type": "statement_signed"}),
    json.dumps({"type": "statement_declined", "id": ["list"]}),
])
def test_a_malformed_answer_is_an_error_event_never_a_crash(call, message):
    from evr_desktop.call import events as ev

    session, events = call
    run(session.send_statement_review(RID, "T", 1, "D", "witness"))
    session._on_channel_message(message)
    assert len(events) == 1 and isinstance(events[0], ev.Error) and events[0].code == "bad-phone-signature"
    assert "nothing was signed" in events[0].message
    # The review is still open: a good answer afterwards is taken.
    session._on_channel_message(json.dumps(signed()))
    assert isinstance(events[-1], ev.StatementSigned)


def test_garbage_oversized_and_withdrawn_answers_are_dropped(call):
    from evr_desktop.call import events as ev

    session, events = call
    for junk in ("not json", "[1, 2]", json.dumps({"type": 5}), json.dumps(signed()) + " " * 300_000, b"\x00"):
        session._on_channel_message(junk)
    assert events == []
    run(session.send_statement_review(RID, "T", 1, "D", "witness"))
    run(session.withdraw_statement_review(RID))
    assert json.loads(session.channel.sent[-1]) == {"type": "statement_withdrawn", "id": RID}
    session._on_channel_message(json.dumps(signed()))
    assert isinstance(events[-1], ev.Error)


def test_the_engine_refuses_to_send_too_much_or_without_the_channel(call):
    session, _events = call
    with pytest.raises(ReviewTooLarge):
        run(session.send_statement_review(RID, "x" * MAX_REVIEW_BYTES, 1, "D", "witness"))
    session.channel.readyState = "connecting"
    with pytest.raises(ConnectionError):
        run(session.send_statement_review(RID, "T", 1, "D", "witness"))
    assert session.channel.sent == []
