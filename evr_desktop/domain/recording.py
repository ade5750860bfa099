"""The call's recording: what happens when it cannot run, and what the audit
log keeps of it (issue 10). Pure rules, no I/O.

**When recording cannot run** (it was refused at the start: no escrow
recipient, the folder could not be made; or it stopped mid-call: the disk is
full, a write failed) the call is *not* stopped for the officer, nor silently
continued: the officer is told at once, loudly, in the call window, and must
choose between the two :class:`RecordingChoice`\\ s. What was recorded so
far is kept either way. The choice is audited (``recording.continue_without``
or ``recording.end_call``) against the appointment.

**The audit entries.** An audit action is a short code (lowercase, digits,
``_`` and ``.``, at most 64 characters) and the object is the appointment's
ID, so the end of a recording is written as a few consecutive entries whose
codes carry the data: the manifest's SHA-256 (hex, in two halves of 32
characters: ``sha256_1`` then ``sha256_2``), start and end (UTC, ``20261204t181410_123z``) and the
duration in milliseconds. :func:`ended_actions` makes them and
:func:`manifest_sha256_from` reads the hash back.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

START_ACTION = "recording.start"
END_ACTION = "recording.end"
FAILED_ACTION = "recording.failed"
RECOVERED_ACTION = "recording.recovered"
VIEWED_ACTION = "recording.viewed"  # then "recording.viewed.<recording id>": which one was opened

WARNING = "Recording stopped: {reason}. The call can go on; what was recorded so far is kept."
QUESTION = "Go on with the call without recording, or end the call now?"


class RecordingChoice(enum.StrEnum):
    """What the officer may decide when recording cannot run."""

    CONTINUE_WITHOUT = "continue_without"
    END_CALL = "end_call"

    @property
    def audit_action(self) -> str:
        return f"recording.{self.value}"

    @property
    def label(self) -> str:
        return {"continue_without": "Go on without recording", "end_call": "End the call"}[self.value]


@dataclass(frozen=True)
class RecordingProblem:
    """Recording cannot run for this call: what the officer is told, and what they choose from."""

    reason: str

    @property
    def warning(self) -> str:
        return WARNING.format(reason=plain_reason(self.reason) or "an unknown error")

    @property
    def question(self) -> str:
        return QUESTION

    @property
    def choices(self) -> tuple[RecordingChoice, ...]:
        # Nothing decides for the officer: no default that silently goes on.
        return (RecordingChoice.CONTINUE_WITHOUT, RecordingChoice.END_CALL)


def plain_reason(reason: str) -> str:
    """The recorder's sentence for the officer: without a repeated "recording
    stopped:" and without the operating system's error number."""
    text = re.sub(r"^\s*recording (stopped|refused)\s*:\s*", "", reason, flags=re.IGNORECASE)
    text = re.sub(r"\[Errno \d+\]\s*", "", text).strip().rstrip(".")
    return text


def when_recording_cannot_run(reason: str) -> RecordingProblem:
    """The rule: the call may go on, but only because the officer chose so."""
    return RecordingProblem(reason)


@dataclass(frozen=True)
class RecordingOutcome:
    """A recording as it ended (from the recorder's result)."""

    manifest_sha256: str | None
    started_at: str | None  # ISO 8601
    ended_at: str | None
    duration_s: float
    finalised: bool


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _when(iso: str | None) -> str:
    if not iso:
        return "none"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.strftime("%Y%m%dt%H%M%S_") + f"{moment.microsecond // 1000:03d}z"


def sha256_actions(prefix: str, digest: str | None) -> list[str]:
    if digest is None or not _HEX64.fullmatch(digest):
        return [f"{prefix}.sha256.none"]
    return [f"{prefix}.sha256_1.{digest[:32]}", f"{prefix}.sha256_2.{digest[32:]}"]


def ended_actions(outcome: RecordingOutcome) -> list[str]:
    """The audit codes for a recording's end, in order."""
    return [
        f"{END_ACTION}.{'finalised' if outcome.finalised else 'unfinalised'}",
        *sha256_actions(END_ACTION, outcome.manifest_sha256),
        f"{END_ACTION}.started_at.{_when(outcome.started_at)}",
        f"{END_ACTION}.ended_at.{_when(outcome.ended_at)}",
        f"{END_ACTION}.duration_ms.{max(0, round(outcome.duration_s * 1000))}",
    ]


def recovered_actions(manifest_sha256: str, reason_code: str = "app_stopped") -> list[str]:
    """The audit codes for a recording recovered at unlock (never finalised)."""
    return [f"{RECOVERED_ACTION}.unfinalised.{reason_code}", *sha256_actions(RECOVERED_ACTION, manifest_sha256)]


def manifest_sha256_from(actions: Iterable[str], prefix: str = END_ACTION) -> str | None:
    """The manifest hash written by :func:`ended_actions` (the last one among ``actions``)."""
    h1 = h2 = None
    for a in actions:
        if a.startswith(f"{prefix}.sha256_1."):
            h1, h2 = a.rsplit(".", 1)[1], None
        elif a.startswith(f"{prefix}.sha256_2.") and h1 is not None:
            h2 = a.rsplit(".", 1)[1]
    return h1 + h2 if h1 is not None and h2 is not None else None
