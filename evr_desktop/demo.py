"""Invented demo appointments for the demo profile.

Every person here is fictional. Phone numbers are from Ofcom's range reserved
for drama (07700 900000-900999), URNs use the fictional force code 99.
No appointment claims a connection ("Victim waiting", "In call"): nobody is
connected to a demo profile that has just been made. The last one fails the
domestic-abuse criteria (no confirmed safe place), to show the refusal and the
in-person way out.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from .domain.appointment import Appointment, Guardian, OffenceType, Status, VictimDetails


def demo_appointments(day: date) -> list[Appointment]:
    def at(hh: int, mm: int) -> datetime:
        return datetime.combine(day, time(hh, mm)).astimezone()

    yy = day.strftime("%y")
    # hour, minute, offence, victim's name, date of birth, status, other victim details
    rows: list[tuple[int, int, str, str, date | None, Status, dict[str, Any]]] = [
        (9, 0, "assault", "Morwenna Trelawny-Fitch", date(1987, 3, 14), Status.EXPORTED, {}),
        (9, 30, "burglary_theft", "Idris Abernethy-Cole", date(1979, 11, 2), Status.SIGNED, {}),
        (10, 0, "criminal_damage", "Saoirse Quennell", date(1994, 6, 21), Status.STATEMENT_DRAFTED, {}),
        (10, 45, "fraud", "Bartholomew Ndiaye-Winter", date(1950, 1, 30), Status.CALL_ENDED,
         {"interpreter_language": ""}),
        (11, 15, "hate_crime", "Zofia Wiśniewska-Hart", date(1990, 9, 9), Status.LINK_SENT,
         {"interpreter_language": "Polish"}),
        (12, 0, "stalking_harassment", "Caradog Pennant", date(2001, 4, 5), Status.LINK_SENT, {}),
        (13, 0, "domestic_abuse", "Ottilie Marchbanks", date(1985, 12, 12), Status.SCHEDULED,
         {"in_safe_place": True}),
        (13, 45, "assault", "Kwabena Ashworth-Lyle", date(day.year - 16, 2, 1), Status.SCHEDULED,
         {"guardian": Guardian("Efua Ashworth-Lyle", "Mother")}),
        (14, 30, "burglary_theft", "Henrietta Voss-Pembridge", None, Status.SCHEDULED, {}),
        (15, 15, "fraud", "Lucjan Oyelaran", date(1968, 8, 17), Status.NO_SHOW, {}),
        (16, 0, "criminal_damage", "Perpetua Lindqvist", date(1999, 5, 28), Status.CANCELLED, {}),
        (16, 45, "domestic_abuse", "Tamsin Okonkwo-Reeve", date(1992, 7, 3), Status.SCHEDULED,
         {"in_safe_place": None}),
    ]
    out = []
    for n, (hh, mm, offence, name, dob, status, extra) in enumerate(rows, start=1):
        victim = VictimDetails(
            full_name=name,
            date_of_birth=dob,
            mobile=f"07700 900{100 + n * 7:03d}",
            notes="Demo appointment: invented person.",
            **extra,
        )
        out.append(
            Appointment(
                slot=at(hh, mm),
                urn=f"99DM{40000 + n * 113:05d}{yy}",
                offence=OffenceType(offence),
                victim=victim,
                status=status,
            )
        )
    return out


