"""The officer using the app, and what counts as valid officer details."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

COLLAR_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,31}$")


@dataclass(frozen=True)
class OfficerIdentity:
    name: str
    collar: str  # collar or warrant number: the officer's ID in logs
    force: str
    station: str

    @property
    def display(self) -> str:
        return f"{self.name} ({self.collar})"


def validate_officer(o: OfficerIdentity) -> list[str]:
    problems = []
    for label, value, limit in (
        ("name", o.name, 80), ("force", o.force, 64), ("station", o.station, 64)
    ):
        if not value.strip():
            problems.append(f"The officer's {label} is required.")
        elif len(value) > limit:
            problems.append(f"The officer's {label} is longer than {limit} characters.")
        elif any(unicodedata.category(c) in {"Cc", "Cf"} for c in value):
            problems.append(f"The officer's {label} contains control characters.")
    if not COLLAR_PATTERN.fullmatch(o.collar):
        problems.append("The collar or warrant number may use letters, digits, spaces and . _ / - (up to 32).")
    return problems
