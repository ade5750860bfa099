"""The victim's safety signals: what reaches the officer, and how it stays
until they have seen it (issue 11, item 3). Pure rules, no I/O.

Two signals come from the victim's page: **"I can't talk freely"** (someone
may be with them) and **Quick exit** (they left the page at once: they may not
be safe, and their link is locked until a new one is sent). Either may come
before the call (the consent or waiting screen), during it, or after it, and
while the officer's app is offline (the rendezvous holds it: ``held``).

Wherever the officer is in the app, a signal must not be missed: it becomes
a :class:`SafetyAlert` stored against the appointment, audited, shown on
the queue (the appointment's row) and in a banner that stays until the
officer **acknowledges** it (also audited), with a desktop alert that names
no one. Nothing here decides the appointment's status: the victim leaving
moves it as any departure does (``Happening.VICTIM_LEFT``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .appointment import Status


class Signal(enum.StrEnum):
    CANT_TALK = "cant_talk"
    QUICK_EXIT = "quick_exit"

    @property
    def label(self) -> str:
        return _LABELS[self]


class Stage(enum.StrEnum):
    """When, in the appointment, the signal came."""

    BEFORE = "before"  # before the waiting room (consent, camera screens)
    WAITING = "waiting"
    CALL = "call"
    AFTER = "after"


_LABELS = {Signal.CANT_TALK: "Can't talk freely", Signal.QUICK_EXIT: "Quick exit"}
_WHAT = {
    Signal.CANT_TALK: "The victim signalled they cannot talk freely",
    Signal.QUICK_EXIT: "The victim pressed Quick exit",
}
_ADVICE = {
    Signal.CANT_TALK: "Someone may be with them: keep questions closed (yes/no) and do not say why you are "
                      "calling if you phone them.",
    Signal.QUICK_EXIT: "They may not be safe. Their link is locked: check it is safe before you call them or "
                       "send a new link.",
}
_WHEN = {
    Stage.BEFORE: "before joining",
    Stage.WAITING: "in the waiting room",
    Stage.CALL: "during the call",
    Stage.AFTER: "after the call",
}

# The words of the desktop alert: seen by whoever is near the laptop, so no
# name, no offence, nothing about the victim.
DESKTOP_TITLE = "EVR Desktop: a victim needs your attention"
DESKTOP_BODY = "A safety signal came in on one of your appointments. Open EVR Desktop."

# The kinds the rendezvous relays for "flag" (``join.js`` sends "cannot-talk").
FLAG_KINDS = {None: Signal.CANT_TALK, "": Signal.CANT_TALK, "cannot-talk": Signal.CANT_TALK}


def stage_for(status: Status) -> Stage:
    """Where the appointment was when the signal came, from its status then."""
    if status is Status.VICTIM_WAITING:
        return Stage.WAITING
    if status is Status.IN_CALL:
        return Stage.CALL
    if status in (Status.CALL_ENDED, Status.STATEMENT_DRAFTED, Status.SIGNED, Status.EXPORTED):
        return Stage.AFTER
    return Stage.BEFORE


def signal_for_flag(kind: str | None) -> Signal:
    """A ``flag`` from the page: today only "I can't talk freely". An unknown kind
    is still a signal from the victim, so it is shown as one rather than dropped."""
    return FLAG_KINDS.get(kind, Signal.CANT_TALK)


@dataclass(frozen=True)
class SafetyAlert:
    id: int
    appointment_id: str
    signal: Signal
    stage: Stage
    at: datetime  # aware UTC: when the app heard it
    held: bool  # it came while the app was not connected (the rendezvous held it)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None  # the officer's collar number

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def audit_action(self) -> str:
        return f"safety.{self.signal.value}.{self.stage.value}" + (".held" if self.held else "")

    @property
    def acknowledged_action(self) -> str:
        return f"safety.acknowledged.{self.signal.value}"

    def text(self, when: str) -> str:
        """The banner's sentence; ``when`` is the local time it came, as the UI shows times."""
        held = " (it came while the app was offline)" if self.held else ""
        return f"{_WHAT[self.signal]} {_WHEN[self.stage]} at {when}{held}. {_ADVICE[self.signal]}"


def queue_marker(alerts: list[SafetyAlert]) -> str | None:
    """What the appointment's row says while any of its alerts is open: the most
    serious first (a quick exit over "can't talk freely")."""
    open_signals = {a.signal for a in alerts if a.open}
    for signal in (Signal.QUICK_EXIT, Signal.CANT_TALK):
        if signal in open_signals:
            return f"⚠ {signal.label}"
    return None
