"""What kind of processing an audit entry records (pure data, no I/O)."""

from __future__ import annotations

import enum


class Category(enum.StrEnum):
    """The processing operations DPA 2018 s.62 requires to be logged."""

    COLLECTION = "collection"
    ALTERATION = "alteration"
    CONSULTATION = "consultation"
    DISCLOSURE = "disclosure"
    COMBINATION = "combination"
    ERASURE = "erasure"
