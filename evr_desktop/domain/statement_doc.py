"""A statement as the officer and witness make it: what is drafted, versioned,
rendered to PDF and signed. Pure data; the templates (``statement.py``) say
what the fields mean.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

FieldValue = str | bool | None


class StatementType(enum.StrEnum):
    WITNESS = "witness"  # the MG11 witness statement
    VPS = "vps"  # Victim Personal Statement: a separate MG11


class SignatureKind(enum.StrEnum):
    DRAWN = "drawn"  # mouse, pen or touch on the signature pad (or the victim's phone)
    TYPED = "typed"  # typed name; the reason must be recorded


@dataclass(frozen=True)
class WitnessSignature:
    kind: SignatureKind
    png: bytes  # the image placed on every page (a drawn signature, or the typed name rendered)
    signed_at: datetime
    typed_name: str = ""
    reason: str = ""  # required for TYPED: why the witness could not draw a signature

    def problems(self) -> list[str]:
        out = []
        if not self.png.startswith(b"\x89PNG\r\n\x1a\n"):
            out.append("The witness signature image is not a PNG.")
        if self.kind is SignatureKind.TYPED and not self.reason.strip():
            out.append("A typed signature needs the reason the witness could not sign.")
        if self.kind is SignatureKind.TYPED and not self.typed_name.strip():
            out.append("A typed signature needs the typed name.")
        return out


@dataclass(frozen=True)
class StatementContent:
    """Everything the officer drafts. ``fields`` holds the MG11 field values by
    template field id (header and restricted rear page alike); ``narrative``
    is the statement text itself, plain text, rendered literally."""

    statement_type: StatementType = StatementType.WITNESS
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    narrative: str = ""
    ticked_prompts: frozenset[str] = frozenset()  # qualified ids: "assault.injury_size"
    offence: str | None = None
    suspect_identified: bool = False

    def to_json(self) -> str:
        """Canonical JSON: equal content gives equal text (used to detect change)."""
        return json.dumps(
            {
                "statement_type": self.statement_type.value,
                "fields": dict(sorted(self.fields.items())),
                "narrative": self.narrative,
                "ticked_prompts": sorted(self.ticked_prompts),
                "offence": self.offence,
                "suspect_identified": self.suspect_identified,
            },
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> StatementContent:
        d = json.loads(text)
        return cls(
            statement_type=StatementType(d["statement_type"]),
            fields=dict(d["fields"]),
            narrative=d["narrative"],
            ticked_prompts=frozenset(d["ticked_prompts"]),
            offence=d.get("offence"),
            suspect_identified=bool(d.get("suspect_identified", False)),
        )

    def witness_name(self) -> str:
        value = self.fields.get("statement_of")
        return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class StatementVersion:
    """One saved state. Versions are never overwritten (CPIA disclosure)."""

    statement_id: str
    number: int  # 1, 2, 3 ... per statement
    content: StatementContent
    saved_at: datetime
    reason: str = ""  # why a new version after signing, e.g. "correction of date"


def new_statement_id() -> str:
    return uuid.uuid4().hex
