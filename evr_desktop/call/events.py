"""What the call engine tells its listeners (the UI bridge re-emits these as
Qt signals). Plain frozen dataclasses; every text is a plain sentence for the
officer, never a traceback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class SignallingChanged(Event):
    connected: bool


@dataclass(frozen=True)
class VictimWaiting(Event):
    appointment: str


@dataclass(frozen=True)
class VictimLeft(Event):
    appointment: str
    why: str | None = None


@dataclass(frozen=True)
class LinkOpened(Event):
    appointment: str
    first: bool


@dataclass(frozen=True)
class LinkRefused(Event):
    appointment: str
    reason: str
    note: str


@dataclass(frozen=True)
class CallStateChanged(Event):
    """``state``: "waiting" (for the victim page's ``commit``: no offer yet),
    "calling" (offer sent), "connecting", "connected", "disconnected" (may
    recover), "failed", "restarting", "closed"."""

    appointment: str
    state: str


@dataclass(frozen=True)
class VerificationCode(Event):
    appointment: str
    code: str  # six digits, see verification.py


@dataclass(frozen=True)
class Stats(Event):
    appointment: str
    rtt_ms: float | None  # round trip, from RTCP (None until the first report)
    loss_in: float | None  # fraction of the victim's packets lost since the last Stats
    loss_out: float | None  # fraction of ours the victim reports lost (RTCP)
    bitrate_in_kbps: float  # over the last interval, whole transport
    bitrate_out_kbps: float
    remote_resolution: tuple[int, int] | None  # (width, height) of the newest decoded frame
    local_resolution: tuple[int, int] | None
    frames_in: int  # decoded video frames from the victim, in all
    frames_out: int  # video frames our source produced, in all


@dataclass(frozen=True)
class ChatReceived(Event):
    appointment: str
    text: str
    id: str | None = None
    via: str = "datachannel"  # or "signalling" (before the data channel opens)


@dataclass(frozen=True)
class QuickExit(Event):
    """The victim pressed Quick exit: their page is gone and the link is locked
    until the officer sends a new one. They may not be safe to talk."""

    appointment: str
    held: bool = False  # it happened while the app was not connected


@dataclass(frozen=True)
class VictimFlag(Event):
    """The victim's discreet "I can't talk freely". Never shown to the victim."""

    appointment: str
    kind: str | None = None
    held: bool = False


@dataclass(frozen=True)
class StatementSigned(Event):
    """The victim confirmed the declaration and signed the statement sent to
    their phone (``review_id``): ``sha256`` is what their page computed over
    the text it displayed, ``strokes`` the signature drawn on its canvas of
    ``width`` x ``height`` CSS px, each stroke ``((x, y, t_ms), ...)``, all
    checked by ``domain.phone_signing`` (here and again where it crosses the
    media channel). ``recording_at_s``: the moment on the call's recording
    clock (filled in by the media process; None with no recording)."""

    appointment: str
    review_id: str
    sha256: str
    strokes: tuple[tuple[tuple[float, float, int], ...], ...]
    width: float
    height: float
    recording_at_s: float | None = None


@dataclass(frozen=True)
class StatementDeclined(Event):
    """The victim chose not to sign the statement sent to their phone."""

    appointment: str
    review_id: str


@dataclass(frozen=True)
class CallEnded(Event):
    appointment: str
    by: str  # "officer" | "victim" | "network" | "engine"
    reason: str | None = None


@dataclass(frozen=True)
class Error(Event):
    message: str  # a plain sentence for the officer
    appointment: str | None = None
    # A stable code for the UI ("unauthorized", "unreachable", ...). "commit-mismatch":
    # the victim's answer did not match what their phone committed to; the call was
    # stopped before any media and no code shown (docs/victim-page.md, "Commitment").
    code: str | None = None
    fatal: bool = False  # True: the engine will not retry by itself


@dataclass(frozen=True)
class RecordingStatus(Event):
    """The call's recording (in the media process): ``state`` "recording"
    (the first frames are in) or "failed" (``message``: a plain reason; the
    call goes on, what was recorded so far is kept)."""

    appointment: str
    state: str
    message: str = ""


@dataclass(frozen=True)
class RecordingEnded(Event):
    """The call's recording was closed: what the app audits (the manifest's
    SHA-256 as stored, start, end, duration)."""

    appointment: str
    recording_id: str
    manifest_sha256: str | None  # None only if the manifest could not be written (recovered at the next unlock)
    started_at: str | None  # ISO 8601 UTC
    ended_at: str
    duration_s: float
    segments: int
    finalised: bool
    error: str | None = None


@dataclass(frozen=True)
class MediaProcessLost(Event):
    """The media process (the engine's own process) stopped: it crashed, was
    killed, or hung and was stopped by the watchdog. Calls in progress ended
    (each got an ``Error(code="media-lost", fatal=True)`` and a ``CallEnded``
    first); the app goes on, and restarts it when ``restarting``. The demo's
    rendezvous lived in it; the app keeps its address and gives the new one
    the links not yet spent, so they work again, unclaimed (``links_lost``
    is True only when no new one is coming)."""

    message: str  # a plain sentence for the officer
    why: str  # "exited" (crash, signal, out of memory) | "hung"
    appointments: tuple[str, ...] = ()  # the calls that were in progress
    restarting: bool = True
    links_lost: bool = True


@dataclass(frozen=True)
class MediaProcessRestarted(Event):
    """A new media process is ready after ``MediaProcessLost``: calls work again."""


class Listeners:
    """The listeners of an event source (the engine, or its proxy in the app's
    process): thread-safe to change while events are delivered; a listener
    that raises is logged and skipped, never propagated into the source."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._items: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    def add(self, listener: Any) -> None:
        """``listener(event)`` or ``listener.on_event(event)``."""
        fn = getattr(listener, "on_event", listener)
        with self._lock:
            self._items.append(fn)

    def remove(self, listener: Any) -> None:
        fn = getattr(listener, "on_event", listener)
        with self._lock:
            if fn in self._items:
                self._items.remove(fn)

    def emit(self, event: Event) -> None:
        with self._lock:
            items = list(self._items)
        for fn in items:
            try:
                fn(event)
            except Exception:
                self._log.exception("a call listener failed on %s", type(event).__name__)
