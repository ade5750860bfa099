"""Signing a statement on the victim's phone (issue 12, item 1): the messages
that cross the call's data channel, and the checks on what the page returns.

In a video call the witness is not at the officer's laptop. The app sends the
final text (``statement_review``); the victim's page shows it, the page count
and the declaration, and answers with the strokes of a finger-drawn signature
and the SHA-256 of exactly the text it displayed (``statement_signed``), or
``statement_declined``. The app recomputes the text from the statement it is
about to sign and refuses to sign if the hashes differ (one character is
enough): see ``statement/review.py`` and ``StatementService.sign_remote``.

Everything the page sends is untrusted: ``parse_page_message`` checks types,
counts, ranges and sizes and raises ``BadPageMessage`` (with a stable code),
never anything else. Pure: no I/O, nothing outside ``domain``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The review message as sent (JSON, UTF-8): a statement of ~30 A4 pages is
# ~100 KB; Chromium and Safari accept data-channel messages of 256 KB.
MAX_REVIEW_BYTES = 200 * 1024
# What the page may send back (a signature of MAX_POINTS points is ~100 KB of JSON).
MAX_PAGE_MESSAGE = 256 * 1024
MAX_STROKES = 200
MAX_POINTS = 5000  # over all strokes: a signature drawn slowly is ~300-1500 at 60 Hz
MIN_POINTS = 10  # fewer is a tap or a slip, not a signature (as the laptop's pad)
MIN_CANVAS, MAX_CANVAS = 50, 4096  # the canvas's CSS size, px
MAX_T_MS = 30 * 60 * 1000  # a point's time since the first touch on the canvas
KINDS = ("witness", "vps")
_ID = re.compile(r"[0-9a-f]{16,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Point = tuple[float, float, int]
Strokes = tuple[tuple[Point, ...], ...]


class BadPageMessage(ValueError):
    """What the page sent cannot be used. ``code``: "bad-type", "bad-id",
    "bad-hash", "bad-size", "bad-strokes", "too-many-points", "too-few-points",
    "out-of-range", "too-large"."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ReviewTooLarge(ValueError):
    """The statement is too long to send to the phone in one message."""


@dataclass(frozen=True)
class PhoneSignature:
    """``statement_signed`` as checked: the review it answers, the SHA-256 the
    page computed over the text it displayed, and the strokes drawn on its
    canvas (CSS px from the canvas's top left; t in ms since the first point)."""

    review_id: str
    sha256: str
    strokes: Strokes
    width: float
    height: float

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.strokes)


@dataclass(frozen=True)
class PhoneDeclined:
    review_id: str


def normalise_text(text: str) -> str:
    """The newline convention of the review text: "\\n" only (CRLF and CR become LF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def review_sha256(text: str) -> str:
    """Lowercase hex SHA-256 of the text's UTF-8 bytes: what the page computes
    with ``crypto.subtle.digest`` over the text it displayed."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_review_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def review_message(review_id: str, text: str, pages: int, declaration: str, kind: str) -> str:
    """The ``statement_review`` message as it goes on the data channel (JSON).
    Raises ``ReviewTooLarge`` (in words) over ``MAX_REVIEW_BYTES``, ``ValueError``
    for a malformed id, page count or kind."""
    if not is_review_id(review_id):
        raise ValueError("a review id is 16-64 lowercase hex characters")
    if type(pages) is not int or not 1 <= pages <= 999:
        raise ValueError("a statement has 1-999 pages")
    if kind not in KINDS:
        raise ValueError(f"a review kind is one of {KINDS}")
    body = json.dumps({"type": "statement_review", "id": review_id, "text": text, "pages": pages,
                       "declaration": declaration, "kind": kind}, ensure_ascii=False, separators=(",", ":"))
    size = len(body.encode("utf-8"))
    if size > MAX_REVIEW_BYTES:
        raise ReviewTooLarge(
            f"The statement is too long to send to the phone ({size // 1024} KB; at most "
            f"{MAX_REVIEW_BYTES // 1024} KB). Sign it with the witness in person, or split it.")
    return body


def _number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_strokes(strokes: object, width: object, height: object) -> tuple[Strokes, float, float]:
    """The strokes and canvas size as the page sent them (lists from JSON), checked
    and frozen into tuples. Raises ``BadPageMessage``."""
    if not _number(width) or not _number(height):
        raise BadPageMessage("bad-size", "width and height must be numbers")
    w, h = float(width), float(height)  # type: ignore[arg-type]
    if not (MIN_CANVAS <= w <= MAX_CANVAS and MIN_CANVAS <= h <= MAX_CANVAS):
        raise BadPageMessage("bad-size", f"a canvas of {MIN_CANVAS}-{MAX_CANVAS} px each way")
    if not isinstance(strokes, (list, tuple)) or not strokes:
        raise BadPageMessage("bad-strokes", "strokes must be a non-empty list")
    if len(strokes) > MAX_STROKES:
        raise BadPageMessage("too-many-points", f"more than {MAX_STROKES} strokes")
    out: list[tuple[Point, ...]] = []
    total = 0
    for stroke in strokes:
        if not isinstance(stroke, (list, tuple)) or not stroke:
            raise BadPageMessage("bad-strokes", "each stroke is a non-empty list of points")
        total += len(stroke)
        if total > MAX_POINTS:
            raise BadPageMessage("too-many-points", f"more than {MAX_POINTS} points")
        points: list[Point] = []
        for p in stroke:
            if not isinstance(p, (list, tuple)) or len(p) != 3 or not all(_number(v) for v in p):
                raise BadPageMessage("bad-strokes", "each point is [x, y, t_ms], three numbers")
            x, y, t = float(p[0]), float(p[1]), p[2]
            if not (0 <= x <= w and 0 <= y <= h):
                raise BadPageMessage("out-of-range", "a point lies outside the canvas")
            if not 0 <= t <= MAX_T_MS:
                raise BadPageMessage("out-of-range", "a point's time is out of range")
            points.append((round(x, 2), round(y, 2), int(t)))
        out.append(tuple(points))
    if total < MIN_POINTS:
        raise BadPageMessage("too-few-points", f"fewer than {MIN_POINTS} points: not a signature")
    return tuple(out), w, h


def parse_page_message(data: Mapping[str, Any]) -> PhoneSignature | PhoneDeclined:
    """``statement_signed`` or ``statement_declined`` from the page (already
    JSON-decoded), checked. Raises ``BadPageMessage``; never anything else."""
    if not isinstance(data, Mapping):
        raise BadPageMessage("bad-type", "not an object")
    kind = data.get("type")
    review_id = data.get("id")
    if kind not in ("statement_signed", "statement_declined"):
        raise BadPageMessage("bad-type", "not a statement message")
    if not is_review_id(review_id):
        raise BadPageMessage("bad-id", "the review id is malformed")
    assert isinstance(review_id, str)
    if kind == "statement_declined":
        return PhoneDeclined(review_id)
    digest = data.get("sha256")
    if not isinstance(digest, str) or _SHA256.fullmatch(digest) is None:
        raise BadPageMessage("bad-hash", "sha256 must be 64 lowercase hex characters")
    strokes, w, h = check_strokes(data.get("strokes"), data.get("width"), data.get("height"))
    return PhoneSignature(review_id, digest, strokes, w, h)


def recording_note(at_s: float | None) -> str:
    """The line under "This statement was also visually recorded": when, on the
    recording's clock, the witness confirmed the declaration and signed on their
    phone. Always one short line (the PDF's page count must not depend on it):
    with no recording running, it says so."""
    if at_s is None or not math.isfinite(at_s) or at_s < 0:
        return "Declaration confirmed and signed on the witness's phone in the video call (not recorded)."
    s = int(at_s)
    return (f"Declaration confirmed and signed on the witness's phone at {s // 3600:02d}:{s // 60 % 60:02d}:"
            f"{s % 60:02d} into the call's recording.")


# A note of the same shape as any real one, to count the pages before signing.
RECORDING_NOTE_PLACEHOLDER = recording_note(0.0)
