"""Video appointments and their status lifecycle.

Plain data and rules: no I/O, no Qt. The victim's identifying details live in
``VictimDetails`` so the store can encrypt them as one unit; everything else on
an ``Appointment`` (slot, URN, offence type, status) is operational data that
does not identify a person.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime


class OffenceType(enum.StrEnum):
    ASSAULT = "assault"
    STALKING_HARASSMENT = "stalking_harassment"
    BURGLARY_THEFT = "burglary_theft"
    CRIMINAL_DAMAGE = "criminal_damage"
    FRAUD = "fraud"
    HATE_CRIME = "hate_crime"
    DOMESTIC_ABUSE = "domestic_abuse"

    @property
    def label(self) -> str:
        return _OFFENCE_LABELS[self]


_OFFENCE_LABELS = {
    OffenceType.ASSAULT: "Assault",
    OffenceType.STALKING_HARASSMENT: "Stalking / harassment",
    OffenceType.BURGLARY_THEFT: "Burglary / theft",
    OffenceType.CRIMINAL_DAMAGE: "Criminal damage",
    OffenceType.FRAUD: "Fraud",
    OffenceType.HATE_CRIME: "Hate crime",
    OffenceType.DOMESTIC_ABUSE: "Domestic abuse",
}


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"
    LINK_SENT = "link_sent"
    VICTIM_WAITING = "victim_waiting"
    IN_CALL = "in_call"
    CALL_ENDED = "call_ended"
    STATEMENT_DRAFTED = "statement_drafted"
    SIGNED = "signed"
    EXPORTED = "exported"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    IN_PERSON = "in_person"  # converted to an in-person visit: no video for it

    @property
    def label(self) -> str:
        return _STATUS_LABELS.get(self) or self.value.replace("_", " ").capitalize()

    @property
    def is_final(self) -> bool:
        return not ALLOWED_TRANSITIONS[self]


_STATUS_LABELS = {Status.IN_PERSON: "In-person visit"}


class Happening(enum.StrEnum):
    """Something that happened to an appointment. The status follows what
    happens (``status_after``); widgets never choose it."""

    LINK_SENT = "link_sent"
    VICTIM_ARRIVED = "victim_arrived"  # opened the link and agreed: in the waiting room
    VICTIM_LEFT = "victim_left"  # left the waiting room before the call
    CALL_CONNECTED = "call_connected"
    CALL_ENDED = "call_ended"  # hung up, either side, or the connection was lost
    STATEMENT_SAVED = "statement_saved"
    STATEMENT_SIGNED = "statement_signed"
    EXPORTED = "exported"


# Statuses in which video with the victim is still ahead or under way.
_VIDEO_OPEN = frozenset({
    Status.SCHEDULED, Status.LINK_SENT, Status.VICTIM_WAITING, Status.IN_CALL, Status.CALL_ENDED,
    Status.STATEMENT_DRAFTED,
})

# What each happening does to each status; a status not listed stays as it is.
# A statement saved during the call leaves "In call" alone (the call is still
# the news); saved after it, the appointment says "Statement drafted". Drafting
# offline before any call leaves a booked appointment's status alone too.
_AFTER: dict[Happening, dict[Status, Status]] = {
    Happening.LINK_SENT: {
        s: Status.LINK_SENT
        for s in (Status.SCHEDULED, Status.LINK_SENT, Status.VICTIM_WAITING, Status.NO_SHOW)
    },
    Happening.VICTIM_ARRIVED: {
        s: Status.VICTIM_WAITING
        for s in (Status.LINK_SENT, Status.CALL_ENDED, Status.STATEMENT_DRAFTED)
    },
    Happening.VICTIM_LEFT: {Status.VICTIM_WAITING: Status.LINK_SENT},
    Happening.CALL_CONNECTED: {
        s: Status.IN_CALL
        for s in (Status.LINK_SENT, Status.VICTIM_WAITING, Status.CALL_ENDED, Status.STATEMENT_DRAFTED)
    },
    Happening.CALL_ENDED: {Status.IN_CALL: Status.CALL_ENDED},
    Happening.STATEMENT_SAVED: {Status.CALL_ENDED: Status.STATEMENT_DRAFTED},
    Happening.STATEMENT_SIGNED: {
        s: Status.SIGNED
        for s in (Status.SCHEDULED, Status.LINK_SENT, Status.VICTIM_WAITING, Status.IN_CALL,
                  Status.CALL_ENDED, Status.STATEMENT_DRAFTED)
    },
    Happening.EXPORTED: {Status.SIGNED: Status.EXPORTED},
}

# The moves an officer makes by hand ("Set status"): cancelling, a victim who
# did not show, rebooking a no-show, and converting to an in-person visit.
# Nothing that claims a connection (waiting, in call) or a document (drafted,
# signed, exported) can be set by hand: those follow what happened. Signed and
# exported appointments cannot be cancelled: the evidence exists and is kept.
MANUAL_MOVES: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset({Status.CANCELLED, Status.IN_PERSON}),
    Status.LINK_SENT: frozenset({Status.CANCELLED, Status.NO_SHOW, Status.IN_PERSON}),
    Status.VICTIM_WAITING: frozenset({Status.CANCELLED, Status.IN_PERSON}),
    Status.IN_CALL: frozenset(),
    Status.CALL_ENDED: frozenset({Status.CANCELLED, Status.IN_PERSON}),
    Status.STATEMENT_DRAFTED: frozenset({Status.IN_PERSON}),
    Status.SIGNED: frozenset(),
    Status.EXPORTED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.NO_SHOW: frozenset({Status.SCHEDULED, Status.IN_PERSON}),
    Status.IN_PERSON: frozenset(),
}

# Every move the lifecycle allows: by hand or by what happens.
ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    s: MANUAL_MOVES[s] | frozenset(table[s] for table in _AFTER.values() if s in table)
    for s in Status
}


def status_after(current: Status, happening: Happening) -> Status | None:
    """The status once ``happening`` has happened, or None when it stays."""
    new = _AFTER[happening].get(current)
    return None if new is None or new is current else new


def video_is_open(status: Status) -> bool:
    """Whether video with the victim is still ahead or under way at this status."""
    return status in _VIDEO_OPEN


class TransitionError(ValueError):
    """A status change that the lifecycle does not allow."""


@dataclass(frozen=True)
class Guardian:
    """Parent, guardian or appropriate adult present for a victim under 18."""

    name: str
    relationship: str
    present_for_call: bool = True


@dataclass(frozen=True)
class VictimDetails:
    """Everything that identifies the victim: stored only encrypted."""

    full_name: str
    date_of_birth: date | None = None
    mobile: str = ""
    guardian: Guardian | None = None
    interpreter_language: str = ""
    notes: str = ""
    # Eligibility facts, gathered by the call handler and confirmed by the officer.
    has_smartphone_with_video: bool = True
    has_data_or_wifi: bool = True
    offender_present: bool = False
    in_safe_place: bool | None = None  # asked for domestic abuse only


URN_PATTERN = re.compile(r"^[0-9]{2}[A-Z]{2}[0-9]{5,7}[0-9]{2}$")
MOBILE_PATTERN = re.compile(r"^(\+44\s?7\d{3}|07\d{3})\s?\d{3}\s?\d{3}$")
MAX_NAME = 120
MAX_NOTES = 4000


def normalise_urn(text: str) -> str:
    return re.sub(r"[\s/-]", "", text).upper()


@dataclass(frozen=True)
class Appointment:
    """A booked video appointment with a victim."""

    slot: datetime
    urn: str
    offence: OffenceType
    victim: VictimDetails
    status: Status = Status.SCHEDULED
    duration_minutes: int = 45
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def with_status(self, new: Status) -> Appointment:
        if new not in ALLOWED_TRANSITIONS[self.status]:
            raise TransitionError(
                f"An appointment that is '{self.status.label}' cannot become '{new.label}'."
            )
        return replace(self, status=new)

    @property
    def day(self) -> date:
        return self.slot.date()


def validate(appointment: Appointment) -> list[str]:
    """Problems with the data itself (not eligibility), in words; empty when fine."""
    problems: list[str] = []
    v = appointment.victim
    name = v.full_name.strip()
    if not name:
        problems.append("The victim's full name is required.")
    elif len(name) > MAX_NAME:
        problems.append(f"The victim's name is longer than {MAX_NAME} characters.")
    elif any(_is_control(ch) for ch in name):
        problems.append("The victim's name contains control characters.")
    if not URN_PATTERN.match(appointment.urn):
        problems.append(
            "The URN must look like 01AB1234567 (force code, station code, case number, year)."
        )
    if v.mobile and not MOBILE_PATTERN.match(v.mobile.strip()):
        problems.append("The mobile number must be a UK mobile, such as 07700 900123.")
    if not v.mobile.strip():
        problems.append("A mobile number is needed to send the video link.")
    if len(v.notes) > MAX_NOTES:
        problems.append(f"Notes are longer than {MAX_NOTES} characters.")
    if any(_is_control(ch) and ch not in "\n\t" for ch in v.notes):
        problems.append("The notes contain control characters.")
    if v.guardian is not None and not v.guardian.name.strip():
        problems.append("The guardian's name is required when a guardian is recorded.")
    if not 10 <= appointment.duration_minutes <= 240:
        problems.append("The appointment must last between 10 and 240 minutes.")
    return problems


def _is_control(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) in {"Cc", "Cf"} and ch not in "\u200d"
