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

from .appointment import Appointment, OffenceType


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
