"""Exhibits taken during a call (issue 10, "Stills"): the exhibit reference,
when a still may be taken, and what the audit log keeps of one. Pure rules, no I/O.

**The reference.** An exhibit is known by the officer's initials and a number,
``RJ/1``, ``RJ/2``... (the way an officer labels a bag or a disc). The number
is the officer's own, counted across every call and never reused: a number
given to a still that then failed stays spent, so that no two exhibits, and
no exhibit and a gap in the log, ever share one. The store keeps the counter
(``store/stills.py``); this module only says what the reference looks like.

**Initials** (:func:`initials`): the first letter of each word of the name,
and of each part of a hyphenated one ("Rhiannon Jones-Smith" -> ``RJS``),
upper-cased in whatever script it is written ("Дмитрий Иванов" -> ``ДИ``);
an apostrophe does not start a word ("ann o'neil" -> ``AO``); a single
name gives one letter; a rank or title typed first is skipped ("PC Imogen
Testwright" -> ``IT``, :data:`RANKS`). A name with no letter at all is refused with a
sentence the officer can act on, because an exhibit without its officer is
no exhibit.

**The audit entries.** An audit action is a short code (lowercase ASCII,
digits, ``_`` and ``.``, at most 64 characters), so a still is a few
consecutive entries against the appointment (:func:`captured_actions`): its
exhibit *number* (initials may be in any script, so they are not in the
code; the officer of each entry is in the entry itself), the SHA-256 of the
encrypted file as stored (two halves), its time in the recording in
milliseconds (``none`` when the recording had no clock yet) and the state of
the recording when it was taken. A still that failed leaves its number and a
reason code (:func:`failed_actions`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .appointment import Status

CAPTURED_ACTION = "still.captured"
FAILED_ACTION = "still.failed"
MAX_INITIALS = 6  # "Mary Anne Louise Rhiannon Jones-Smith" is MALRJS, not longer

#: Why a still failed, as an audit code; the officer is told the sentence.
FAILURE_CODES = ("no_frame", "no_call", "no_recipients", "disk_full", "write_error", "media_unavailable", "other")

#: Ranks and titles skipped at the start of a name (they are not the officer's initials).
RANKS = frozenset({
    "pc", "wpc", "dc", "tdc", "pcso", "ps", "ds", "sgt", "insp", "di", "ci", "dci", "supt", "ch", "cs", "dsupt",
    "dcs", "acc", "dcc", "cc", "mr", "mrs", "ms", "miss", "mx", "dr",
})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_WORD_BREAKS = re.compile(r"[\s\-‐‑‒–—]+")  # spaces and hyphens (ASCII and typographic)


class NoInitials(ValueError):
    """The officer's name gives no initials (empty, or no letter in it)."""


def initials(name: str) -> str:
    """The officer's initials for exhibit references (see the module's docstring)."""
    text = unicodedata.normalize("NFC", name or "")
    words = [w for w in _WORD_BREAKS.split(text) if w]
    # A rank or title typed before the name is not an initial ("PC Imogen Testwright" -> IT).
    while len(words) > 1 and words[0].rstrip(".").lower() in RANKS:
        words.pop(0)
    letters = []
    for word in words:
        first = next((c for c in word if c.isalpha()), None)
        if first is not None:
            letters.append(first.upper())
    if not letters:
        raise NoInitials("The officer's name is needed for exhibit references (it has no letters): "
                         "set the name in the officer's details.")
    return "".join(letters[:MAX_INITIALS])


@dataclass(frozen=True)
class ExhibitReference:
    initials: str
    number: int

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("exhibit numbers start at 1")
        if not self.initials or "/" in self.initials:
            raise ValueError("an exhibit reference needs the officer's initials")

    def __str__(self) -> str:
        return f"{self.initials}/{self.number}"

    @classmethod
    def parse(cls, text: str) -> ExhibitReference:
        left, sep, right = text.rpartition("/")
        if not sep or not right.isdigit():
            raise ValueError(f"not an exhibit reference: {text[:20]!r}")
        return cls(left, int(right))


def reference_for(officer_name: str, number: int) -> ExhibitReference:
    return ExhibitReference(initials(officer_name), number)


def still_refusals(status: Status, call_open: bool = True) -> list[str]:
    """Why a still cannot be taken now (empty: it can). A still is part of a
    call's evidence, so it needs a call in progress for the appointment."""
    if status is not Status.IN_CALL or not call_open:
        return ["A still can only be taken during a call with the victim."]
    return []


def recording_time(at_s: float | None) -> str:
    """A time in the recording as the officer reads it: ``02:13`` (``1:02:13`` past an hour)."""
    if at_s is None:
        return "--:--"
    s = max(0, int(at_s))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def _sha_actions(prefix: str, digest: str) -> list[str]:
    if not _HEX64.fullmatch(digest):
        return [f"{prefix}.sha256.none"]
    return [f"{prefix}.sha256_1.{digest[:32]}", f"{prefix}.sha256_2.{digest[32:]}"]


def captured_actions(number: int, ciphertext_sha256: str, at_s: float | None, recording_state: str) -> list[str]:
    """The audit codes of a still taken, in order."""
    state = recording_state if recording_state in ("recording", "starting", "failed") else "other"
    return [
        f"{CAPTURED_ACTION}.exhibit_no.{int(number)}",
        *_sha_actions(CAPTURED_ACTION, ciphertext_sha256),
        f"{CAPTURED_ACTION}.at_ms.{'none' if at_s is None else max(0, round(at_s * 1000))}",
        f"{CAPTURED_ACTION}.recording.{state}",
    ]


def failed_actions(number: int | None, code: str) -> list[str]:
    """The audit codes of a still that failed (its number, if one was given, stays spent)."""
    return [f"{FAILED_ACTION}.exhibit_no.{'none' if number is None else int(number)}",
            f"{FAILED_ACTION}.{code if code in FAILURE_CODES else 'other'}"]


def failure_code(kind: str, message: str) -> str:
    """A failure's audit code from the error's kind and sentence (never the sentence itself)."""
    text = f"{kind} {message}".lower()
    if "no space" in text or "enospc" in text or "quota" in text:
        return "disk_full"
    if "no frame" in text or "no video" in text or kind == "NoFrame":
        return "no_frame"
    if "recipient" in text:
        return "no_recipients"
    if kind in ("MediaUnavailable",):
        return "media_unavailable"
    if "not in a call" in text or "no call" in text:
        return "no_call"
    if kind in ("OSError", "PermissionError", "IOError") or "errno" in text:
        return "write_error"
    return "other"
