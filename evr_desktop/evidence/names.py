"""File names for an evidence bundle: from internal IDs and sanitised parts
only, never raw user text (a URN or a name may hold ``../``, ``C:\\``,
``CON``, ``:stream``, look-alike Unicode or 300 characters).

A part keeps ASCII letters, digits, ``-`` and ``_`` (after NFKD, so ``é``
becomes ``e``; anything else becomes ``-``), at most ``limit`` characters,
never empty, never starting with ``-`` or ``.``, and never a name Windows
reserves (``CON``, ``NUL``, ``COM1``...: with or without an extension).
"""

from __future__ import annotations

import re
import unicodedata

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10)),
             "CONIN$", "CONOUT$"}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def safe_part(text: str, limit: int = 40, empty: str = "x") -> str:
    """``text`` as one safe file-name part (see the module's doc)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", ascii_text)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-_")[:limit].strip("-_")
    if not cleaned:
        cleaned = empty
    if cleaned.split(".")[0].upper() in _RESERVED:
        cleaned = f"x-{cleaned}"
    return cleaned


def safe_id(value: str) -> str:
    """An internal ID as a name part: IDs are ours (hex, uuids), so anything
    else is refused rather than repaired."""
    if not isinstance(value, str) or not _ID.fullmatch(value) or value.upper() in _RESERVED:
        raise ValueError("an internal identifier is not in the expected form")
    return value
