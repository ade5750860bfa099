"""The text message that carries a victim's join link. Pure: no I/O, no clock.

An SMS can be read by someone other than the victim: a partner picking up the
phone, a child, the person the victim is afraid of, a lock screen preview on
the kitchen table. So the text says only what the victim needs to join:

- which force is calling (so it is not mistaken for a scam),
- the day and time of the appointment,
- the link,
- what to do if the time is not good (call 101) and, in an emergency, 999.

It never says the victim's name, the offence, the officer's name, the URN or
anything else from the appointment. :func:`compose_for_appointment` takes an
``Appointment`` but reads nothing from it except the slot, and the tests check
that the name and the offence do not appear.

Length: an SMS is 140 bytes. In the GSM 03.38 7-bit alphabet that is 160
characters (the extension characters ``^{}\\[~]|€`` and form feed count 2);
any other character (a Welsh ``ŵ``, a curly quote, an emoji) switches the
whole message to UCS-2, 70 UTF-16 units. A longer text is sent in parts that
each lose room to the joining header: 153 GSM-7 characters or 67 UCS-2 units
per part, and a part never splits an escape pair or a surrogate pair. A text
that needs more than :data:`MAX_SEGMENTS` parts is refused (:class:`SmsTooLong`)
rather than sent as a run of fragments some phones show out of order.

Numbers: :func:`to_e164` accepts a UK mobile number as people write it and
returns it in E.164 (``+447700900123``), or raises :class:`InvalidMobile` with a
message an officer can act on. Like GOV.UK Notify, it accepts any UK number
that starts 07 with 11 digits (this includes the Crown dependencies' 07624 and
friends) and nothing else.

All the words live in :data:`STRINGS`, one entry per language, so adding a
language is data. The Welsh text should be checked by the force's Welsh
language officer before use.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .appointment import Appointment

MAX_SEGMENTS = 3
MAX_FORCE_NAME = 64
MAX_LINK = 300

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 basic character set (without ESC, which only introduces the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (ESC + the character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (single message, per part of a longer message)
_CAPACITY = {GSM7: (160, 153), UCS2: (70, 67)}


STRINGS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "en": {
        "language_name": "English",
        "body": (
            "{force}: your video appointment is on {when}.\n"
            "At that time, join here:\n{link}\n"
            "If the time is not good for you, call 101 to change it. In an emergency, call 999."
        ),
        "when": "{weekday} {day} {month} at {time}",
        "weekdays": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "months": (
            "January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December",
        ),
        "am": "am",
        "pm": "pm",
    },
    "cy": {
        "language_name": "Cymraeg",
        "body": (
            "{force}: mae eich apwyntiad fideo ar {when}.\n"
            "Ar yr amser hwnnw, ymunwch yma:\n{link}\n"
            "Os nad yw'r amser yn gyfleus, ffoniwch 101 i'w newid. Mewn argyfwng, ffoniwch 999."
        ),
        # "ar ddydd ..." (soft mutation after "ar"); day names follow "dydd" unmutated.
        "when": "ddydd {weekday} {day} {month} am {time}",
        "weekdays": ("Llun", "Mawrth", "Mercher", "Iau", "Gwener", "Sadwrn", "Sul"),
        "months": (
            "Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf", "Awst",
            "Medi", "Hydref", "Tachwedd", "Rhagfyr",
        ),
        "am": "yb",
        "pm": "yp",
    },
}
LANGUAGES = tuple(STRINGS)


class SmsTooLong(ValueError):
    """The text would need more than :data:`MAX_SEGMENTS` parts."""


class SmsInputError(ValueError):
    """Something given to compose the text cannot go into an SMS."""


class InvalidMobile(ValueError):
    """Not a UK mobile number; the message says why, in words."""


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # GSM7 or UCS2
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    # The first character that forced UCS-2, for the officer's message (None for GSM-7).
    first_non_gsm: str | None = None


@dataclass(frozen=True)
class SmsMessage:
    text: str
    language: str
    length: SmsLength


def _gsm_cost(ch: str) -> int | None:
    if ch in GSM7_BASIC:
        return 1
    if ch in GSM7_EXTENSION:
        return 2
    return None


def measure(text: str) -> SmsLength:
    """Encoding, length in that encoding's units, and how many parts."""
    costs: list[int] = []
    first_non_gsm = None
    for ch in text:
        cost = _gsm_cost(ch)
        if cost is None:
            first_non_gsm = ch
            break
        costs.append(cost)
    if first_non_gsm is None:
        encoding = GSM7
    else:
        encoding = UCS2
        # A character outside the Basic Multilingual Plane is a surrogate pair: two units.
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(costs)
    single, per_part = _CAPACITY[encoding]
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        # Greedy packing: an escape pair or a surrogate pair never straddles two parts.
        segments, used = 1, 0
        for cost in costs:
            if used + cost > per_part:
                segments += 1
                used = 0
            used += cost
    return SmsLength(encoding, units, segments, first_non_gsm)


def check_length(text: str) -> SmsLength:
    """:func:`measure`, raising :class:`SmsTooLong` past :data:`MAX_SEGMENTS` parts."""
    length = measure(text)
    if length.segments > MAX_SEGMENTS:
        single, per_part = _CAPACITY[length.encoding]
        limit = per_part * MAX_SEGMENTS
        why = ""
        if length.encoding == UCS2:
            plain = measure("".join(ch if _gsm_cost(ch) else "?" for ch in text))
            why = (
                f" It uses a character outside the basic SMS alphabet ({length.first_non_gsm!r}),"
                f" so each part holds {per_part} characters instead of {_CAPACITY[GSM7][1]};"
                f" without such characters it would need {plain.segments}."
            )
        raise SmsTooLong(
            f"The text message would need {length.segments} parts ({length.units} characters); "
            f"at most {MAX_SEGMENTS} parts (about {limit} characters) are allowed.{why} "
            "Use a shorter force name or a shorter link."
        )
    return length


def _strings(language: str) -> dict[str, str | tuple[str, ...]]:
    try:
        return STRINGS[language]
    except KeyError:
        raise SmsInputError(
            f"There is no text message in language {language!r}; choose one of {', '.join(LANGUAGES)}."
        ) from None


def format_when(slot: datetime, language: str = "en", tz: tzinfo | None = None) -> str:
    """The day and time as the victim reads it, e.g. ``Tuesday 4 March at 2:30pm``.

    ``tz`` converts an aware ``slot`` to the victim's time zone (the UK's); by
    default the slot is shown in its own time zone. No year: the link only
    works around the slot, which is days away at most."""
    s = _strings(language)
    if tz is not None:
        if slot.tzinfo is None:
            raise SmsInputError("The appointment time has no time zone, so it cannot be converted.")
        slot = slot.astimezone(tz)
    hour12 = slot.hour % 12 or 12
    suffix = s["pm"] if slot.hour >= 12 else s["am"]
    weekdays, months = s["weekdays"], s["months"]
    assert isinstance(weekdays, tuple) and isinstance(months, tuple)
    return str(s["when"]).format(
        weekday=weekdays[slot.weekday()],
        day=slot.day,
        month=months[slot.month - 1],
        time=f"{hour12}:{slot.minute:02d}{suffix}",
    )


_LINK = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(?:/[!-~]*)?")


def _check_inputs(force_name: str, link: str) -> tuple[str, str]:
    force = " ".join(force_name.split())
    if not force:
        raise SmsInputError("The force name is needed for the text message (set it in the officer's details).")
    if len(force) > MAX_FORCE_NAME:
        raise SmsInputError(f"The force name is longer than {MAX_FORCE_NAME} characters.")
    if any(unicodedata.category(c) in {"Cc", "Cf"} for c in force):
        raise SmsInputError("The force name contains control characters.")
    link = link.strip()
    if len(link) > MAX_LINK or not _LINK.fullmatch(link):
        raise SmsInputError("The join link is not a web address that can go into a text message.")
    return force, link


def compose(
    force_name: str, slot: datetime, link: str, language: str = "en", tz: tzinfo | None = None
) -> SmsMessage:
    """The text for a join link, checked for length (:class:`SmsTooLong`).

    Takes only what the text may contain; see the module docstring for why it
    holds nothing else."""
    s = _strings(language)
    force, link = _check_inputs(force_name, link)
    text = str(s["body"]).format(force=force, when=format_when(slot, language, tz), link=link)
    return SmsMessage(text=text, language=language, length=check_length(text))


def compose_for_appointment(
    appointment: Appointment, force_name: str, link: str, language: str = "en", tz: tzinfo | None = None
) -> SmsMessage:
    """:func:`compose` for an appointment: its slot is the only thing read."""
    return compose(force_name, appointment.slot, link, language, tz)


# -- numbers ------------------------------------------------------------------

_ALLOWED_IN_NUMBER = re.compile(r"[0-9\s()+\-.]*")
E164_UK_MOBILE = re.compile(r"\+447[0-9]{9}")


def to_e164(number: str) -> str:
    """A UK mobile number as written (``07700 900123``, ``+44 (0)7700 900-123``,
    ``0044 7700 900123``) in E.164: ``+447700900123``."""
    raw = number.strip()
    if not raw:
        raise InvalidMobile("A mobile number is needed to send the text.")
    if not _ALLOWED_IN_NUMBER.fullmatch(raw):
        raise InvalidMobile("A mobile number can only contain digits, spaces and ( ) + - .")
    if raw.count("+") > 1 or ("+" in raw and not raw.startswith("+")):
        raise InvalidMobile("A + can only come at the start of a mobile number.")
    digits = re.sub(r"[^0-9]", "", raw)
    international = raw.startswith("+") or digits.startswith("00")
    if digits.startswith("00"):
        digits = digits[2:]
    if international or (digits.startswith("44") and len(digits) in (12, 13)):
        if not digits.startswith("44"):
            raise InvalidMobile("Only UK mobile numbers (+44 or 07...) can be sent a text from here.")
        digits = digits[2:]
        if digits.startswith("0"):  # +44 (0)7700 ...
            digits = digits[1:]
    elif digits.startswith("0"):
        digits = digits[1:]
    else:
        raise InvalidMobile("A UK mobile number starts with 07 or +44 7.")
    if not digits.startswith("7"):
        raise InvalidMobile("This is not a UK mobile number (they start with 07): a landline cannot get a text.")
    if len(digits) < 10:
        raise InvalidMobile("The mobile number is too short: a UK mobile has 11 digits, starting 07.")
    if len(digits) > 10:
        raise InvalidMobile("The mobile number is too long: a UK mobile has 11 digits, starting 07.")
    return "+44" + digits


def is_e164_uk_mobile(value: str) -> bool:
    return bool(E164_UK_MOBILE.fullmatch(value))
