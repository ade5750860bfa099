"""Passphrase strength: a pure rule, so it is testable without a dialog.

A deliberately simple, explainable estimate: length first (long passphrases of
ordinary words are both strong and memorable), character variety second, and a
refusal of obvious patterns. The result says what to do, not just a score.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MIN_LENGTH = 12
MIN_BITS = 50.0
_COMMON = {
    "password", "passw0rd", "qwerty", "letmein", "welcome", "police", "constable",
    "123456", "iloveyou", "monkey", "dragon", "football", "sunshine", "admin",
}


@dataclass(frozen=True)
class Strength:
    acceptable: bool
    bits: float
    problems: tuple[str, ...]


def assess(passphrase: str, personal: tuple[str, ...] = ()) -> Strength:
    """Estimate strength; ``personal`` holds words the passphrase must not contain
    (the officer's name, collar number, force)."""
    problems: list[str] = []
    pool = 0
    if re.search(r"[a-z]", passphrase):
        pool += 26
    if re.search(r"[A-Z]", passphrase):
        pool += 26
    if re.search(r"[0-9]", passphrase):
        pool += 10
    if re.search(r"[^A-Za-z0-9]", passphrase):
        pool += 33
    distinct = len(set(passphrase))
    # Repeated characters add little: count distinct characters at full weight
    # and repeats at a quarter.
    effective_len = distinct + (len(passphrase) - distinct) / 4
    bits = effective_len * math.log2(pool) if pool else 0.0
    lowered = passphrase.lower()
    if len(passphrase) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters; a few unrelated words work well.")
    for word in _COMMON:
        if word in lowered:
            problems.append(f"Avoid common words such as '{word}'.")
            bits = min(bits, 30.0)
            break
    for item in personal:
        item = item.strip().lower()
        if len(item) >= 3 and item in lowered:
            problems.append("Do not use your own name, number or force in the passphrase.")
            bits = min(bits, 30.0)
            break
    if re.search(r"(.)\1{3,}", passphrase) or re.search(r"(0123|1234|2345|3456|4567|5678|6789|abcd)", lowered):
        problems.append("Avoid runs and repeated characters.")
        bits = min(bits, 35.0)
    if not problems and bits < MIN_BITS:
        problems.append("Make it longer, or mix in digits or symbols.")
    return Strength(acceptable=not problems, bits=round(bits, 1), problems=tuple(problems))
