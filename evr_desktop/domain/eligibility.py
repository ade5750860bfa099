"""Whether a victim can be seen over video, with reasons in words.

The rules are the Enhanced Video Response criteria (docs/domain.md): 18 or
over or a parent/guardian present; a smartphone with video and data; the
offender not present; for domestic abuse, a safe place. The result explains
itself so the officer can tell the victim why, and so the dialog can show it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from .appointment import MANUAL_MOVES, Appointment, OffenceType, Status, validate, video_is_open


class Severity(enum.StrEnum):
    BLOCKING = "blocking"  # video must not go ahead
    WARNING = "warning"  # the officer should check before the call


@dataclass(frozen=True)
class Reason:
    code: str
    severity: Severity
    text: str


@dataclass(frozen=True)
class Eligibility:
    reasons: tuple[Reason, ...]

    @property
    def eligible(self) -> bool:
        return not any(r.severity is Severity.BLOCKING for r in self.reasons)

    @property
    def blocking(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.severity is Severity.BLOCKING)

    @property
    def warnings(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.severity is Severity.WARNING)

    def summary(self) -> str:
        if not self.reasons:
            return "Eligible for video"
        return " ".join(r.text for r in self.reasons)


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def check(appointment: Appointment) -> Eligibility:
    """Eligibility on the day of the appointment (age is taken at the slot)."""
    v = appointment.victim
    reasons: list[Reason] = []
    on = appointment.slot.date()
    if v.date_of_birth is None:
        reasons.append(
            Reason("age_unknown", Severity.WARNING, "Date of birth not recorded: confirm the victim is 18 or over.")
        )
    elif v.date_of_birth > on:
        reasons.append(Reason("dob_future", Severity.BLOCKING, "The date of birth is after the appointment date."))
    else:
        age = age_on(v.date_of_birth, on)
        if age < 18 and (v.guardian is None or not v.guardian.present_for_call):
            reasons.append(
                Reason(
                    "under_18_no_guardian",
                    Severity.BLOCKING,
                    f"The victim will be {age}: a parent or guardian must be present for the call.",
                )
            )
    if not v.has_smartphone_with_video:
        reasons.append(
            Reason(
                "no_video_phone", Severity.BLOCKING,
                "The victim has no smartphone with video: offer an in-person visit.",
            )
        )
    if not v.has_data_or_wifi:
        reasons.append(
            Reason("no_data", Severity.BLOCKING, "The victim has no mobile data or Wi-Fi: offer an in-person visit.")
        )
    if v.offender_present:
        reasons.append(
            Reason(
                "offender_present", Severity.BLOCKING, "The offender is present: video is not safe, attend in person."
            )
        )
    if appointment.offence is OffenceType.DOMESTIC_ABUSE:
        if v.in_safe_place is None:
            reasons.append(
                Reason(
                    "safe_place_unknown", Severity.BLOCKING,
                    "Domestic abuse: confirm the victim will be in a safe place.",
                )
            )
        elif not v.in_safe_place:
            reasons.append(
                Reason("not_safe_place", Severity.BLOCKING, "Domestic abuse: the victim will not be in a safe place.")
            )
    return Eligibility(tuple(reasons))


# -- what the criteria allow, at any status ------------------------------------------------

IN_PERSON_WAY_OUT = "Offer an in-person visit instead (Convert to in-person visit)."

# Statuses from which a join link may be (re)sent and a call started.
_LINK_STATUSES = frozenset({
    Status.SCHEDULED, Status.LINK_SENT, Status.VICTIM_WAITING, Status.CALL_ENDED, Status.STATEMENT_DRAFTED,
})
_CALL_STATUSES = frozenset({
    Status.LINK_SENT, Status.VICTIM_WAITING, Status.CALL_ENDED, Status.STATEMENT_DRAFTED,
})


def _status_refusal(a: Appointment, allowed: frozenset[Status], what: str) -> list[str]:
    if a.status in allowed:
        return []
    if a.status is Status.IN_CALL:
        return [f"{what}: a call for this appointment is already under way."]
    if a.status is Status.SCHEDULED:
        return [f"{what}: send the victim a link first."]
    return [f"{what}: the appointment is '{a.status.label}'."]


def in_person_possible(a: Appointment) -> bool:
    """Whether the appointment can still be converted to an in-person visit."""
    return Status.IN_PERSON in MANUAL_MOVES[a.status]


def _criteria_refusal(a: Appointment) -> list[str]:
    reasons = [r.text for r in check(a).blocking]
    if not reasons:
        return []
    return ["Not eligible for video:", *reasons, *([IN_PERSON_WAY_OUT] if in_person_possible(a) else [])]


def link_refusals(a: Appointment) -> list[str]:
    """Why a join link cannot be sent for this appointment (empty: it can).
    The EVR criteria hold at every status: an appointment that fails them
    never gets a link, whatever the queue says about it."""
    return _criteria_refusal(a) or _status_refusal(a, _LINK_STATUSES, "No link can be sent")


def call_refusals(a: Appointment) -> list[str]:
    """Why a call cannot be started for this appointment (empty: it can)."""
    return _criteria_refusal(a) or _status_refusal(a, _CALL_STATUSES, "No call can be started")


def booking_refusals(a: Appointment) -> list[str]:
    """Why this appointment cannot be saved as a video appointment (empty: it
    can). A booking that fails the criteria is refused while video is still
    ahead; the way out is to book or convert it as an in-person visit."""
    if not video_is_open(a.status):
        return []
    return ["Video cannot go ahead: " + r.text for r in check(a).blocking]


def booking_problems(a: Appointment) -> list[str]:
    """Everything that stops this appointment being saved as it stands: the
    data's own problems, then the criteria. The booking dialog and the
    session both ask this."""
    return validate(a) + booking_refusals(a)
