"""Passphrase strength: a pure rule, so it is testable without a dialog.

The estimate is zxcvbn's (Dropbox's estimator, maintained Python port): it
knows the passwords people really choose (leaked-password lists, names, English
words, football clubs and cities among them), keyboard runs, repeats, dates and
"l33t" substitutions, so "Summer2024!!" or "Liverpool2023" is seen for what it
is. The officer's own details and police words are given to it as user inputs:
an attacker who has the laptop knows the force and will try them first. On top
of the estimate, three plain rules: a minimum length, none of the officer's own
details in the passphrase, and what is left without the police words must be
strong on its own. The result says what to do, not just a score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from zxcvbn import zxcvbn

MIN_LENGTH = 12
#: zxcvbn's top score: at least 10^10 guesses (about 33 bits). The vault is
#: sealed with Argon2id tuned to ~0.5 s on the laptop, so an attacker with a
#: stolen laptop pays that per guess (a GPU rig a few hundred times less).
MIN_SCORE = 4
#: Only the first characters are given to zxcvbn. Its matching grows steeply
#: with length (measured here, worst of several shapes: 24 ms at 64 characters,
#: 84 ms at 100, over a second at 200, minutes at 800) and it runs on every
#: keystroke of the set-up page, on the GUI thread; the library itself refuses
#: more than 72 by default. Cutting is safe: characters after the cut can only
#: add guesses, so the estimate of the prefix is a lower bound.
MAX_ASSESSED = 64

#: What an attacker who knows the laptop is a police officer's tries first.
FORCE_WORDS = (
    "police", "constable", "constabulary", "officer", "warrant", "collar", "sergeant",
    "inspector", "detective", "superintendent", "custody", "station", "force", "policing",
    "evidence", "statement", "victim", "crime",
)


@dataclass(frozen=True)
class Strength:
    acceptable: bool
    bits: float  # log2 of zxcvbn's estimated guesses (of the assessed prefix)
    problems: tuple[str, ...]


class _Officer(Protocol):  # an OfficerIdentity, or anything shaped like one
    @property
    def name(self) -> str: ...
    @property
    def collar(self) -> str: ...
    @property
    def force(self) -> str: ...
    @property
    def station(self) -> str: ...


def officer_words(officer: _Officer) -> tuple[str, str, str, str]:
    """The officer's details that a passphrase must not contain."""
    return (officer.name, officer.collar, officer.force, officer.station)


def _personal_words(personal: Iterable[str]) -> list[str]:
    """Each detail whole (spaces removed too: "TW 9001" -> "tw9001") and its
    words of four letters or more, or three digits or more ("and" in "Devon and
    Cornwall Police" must not refuse every passphrase with "and" in it)."""
    words: list[str] = []
    for item in personal:
        item = item.strip().lower()
        if len(item) >= 3:
            words += [item, item.replace(" ", "")]
        for token in re.findall(r"[^\W_]+", item):
            if len(token) >= 4 or (token.isdigit() and len(token) >= 3):
                words.append(token)
    return list(dict.fromkeys(words))


def assess(passphrase: str, personal: Iterable[str] = ()) -> Strength:
    """Estimate strength; ``personal`` holds the officer's details (name, collar
    number, force, station: see ``officer_words``), which the passphrase must not
    contain and which zxcvbn treats as the first guesses."""
    problems: list[str] = []
    mine = _personal_words(personal)
    result = _estimate(passphrase, [*mine, *FORCE_WORDS])
    bits = float(result["guesses_log10"]) * math.log2(10)
    if len(passphrase) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters; a few unrelated words work well.")
    lowered = passphrase.lower()
    if any(word in lowered for word in mine):
        problems.append("Do not use your own name, number, force or station in the passphrase.")
        bits = min(bits, 30.0)
    if result["score"] < MIN_SCORE:
        problems += _reasons(result)
    else:
        # zxcvbn charges a toll for every extra piece it matches, so words it
        # already knows to be cheap still add up ("police constable warrant
        # 2024" scores 4). What is left without the police words must be strong
        # on its own.
        used = [w for w in FORCE_WORDS if w in lowered]
        if used:
            rest = lowered
            for w in used:
                rest = rest.replace(w, " ")
            without = _estimate(rest, mine)
            if without["score"] < MIN_SCORE:
                problems.append(
                    f"Police words ({_listed(used)}) count for little: an attacker tries them first. "
                    "Add a few unrelated words."
                )
                bits = min(bits, float(without["guesses_log10"]) * math.log2(10))
    return Strength(acceptable=not problems, bits=round(bits, 1), problems=tuple(problems))


def _estimate(text: str, user_inputs: list[str]) -> dict[str, Any]:
    """zxcvbn on the first ``MAX_ASSESSED`` characters (it fails on empty text)."""
    if not text:
        return {"score": 0, "guesses_log10": 0.0, "feedback": {"warning": "", "suggestions": []}, "sequence": []}
    result: dict[str, Any] = zxcvbn(text[:MAX_ASSESSED], user_inputs=user_inputs)
    return result


def _reasons(result: dict[str, Any]) -> list[str]:
    """zxcvbn's own feedback in plain words; when it has none (a guessable but
    not notorious passphrase such as "Summer2024!!"), what it matched."""
    feedback = result["feedback"]
    reasons = [feedback["warning"]] if feedback["warning"] else []
    matched = [m for m in result["sequence"] if m["pattern"] != "bruteforce"]
    if not reasons and matched:
        reasons.append(f"Too easy to guess: attackers try {_listed(m['token'] for m in matched)} early.")
    elif not reasons:
        reasons.append("Too easy to guess.")
    suggestions = list(feedback["suggestions"]) or ["Add another word or two. Uncommon words are better."]
    return reasons + suggestions


def _listed(words: Iterable[str]) -> str:
    quoted = [f"'{w}'" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
