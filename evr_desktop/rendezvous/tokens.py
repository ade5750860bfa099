"""One-time join links for video appointments. Pure: no I/O, no clock.

A join link is ``{public_url}/j/{token}``. The token carries 192 bits from
``secrets`` and nothing else: it says nothing about the appointment, and the
registry keeps only its SHA-256 digest, so a copy of the registry (a memory
dump, a future persistent store) does not reveal a link that still works.

Lifecycle of a link (one per appointment; issuing again revokes the old one)::

    issued --claim()--> claimed (bound to one device) --end()--> used
       |                  |
       +-- revoke() ------+--------------------------------------> revoked
       +-- close() -------+--------------------------------------> closed (quick exit)

Opening the link (``peek``) claims nothing: an SMS preview or a URL scanner
that fetches it must not lock the victim out. The victim's deliberate action
on the page (agreeing to the call: a POST) *claims* it, and the device
receives a device secret (the server puts it in an HttpOnly cookie). The
same device may claim again (a reload, the SMS tapped twice); any other
device is refused. The victim's quick exit *closes* the link: refused, even
on that phone, until the officer sends a new one. Outside
the validity window (``early`` before the slot to ``late`` after its end) the
link is refused as "not yet" or "expired".

Every refusal has a short code for the officer and a kind text for the victim
in each language of :data:`VICTIM_TEXTS` (more languages are data).

Times are ``datetime`` objects supplied by the caller: all naive local or all
aware, as long as ``issue`` and ``claim`` use the same kind.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TOKEN_BYTES = 24  # 192 bits; token_urlsafe gives 32 characters
DEVICE_SECRET_BYTES = 32
MAX_ENTRIES = 10_000
DEFAULT_EARLY = timedelta(minutes=30)
DEFAULT_LATE = timedelta(minutes=30)
# How long a finished link (expired, used, revoked) is remembered so that its
# victim sees "expired" or "used" rather than "we can't open this link".
DEFAULT_RETENTION = timedelta(hours=24)

# What a token or device secret from the outside may look like before it is
# even hashed: URL-safe base64 and a sane length (anything else is "invalid").
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{16,128}")


class Reason(enum.StrEnum):
    """Why a link was refused. The value is the short code the officer sees."""

    INVALID = "invalid"  # unknown, forged, mistyped, or forgotten long ago
    NOT_YET = "not-yet"  # before the window opens
    EXPIRED = "expired"  # after the window closes
    USED = "used"  # the call has ended; the link cannot be used again
    SECOND_DEVICE = "second-device"  # already claimed by another device
    REVOKED = "revoked"  # the appointment was moved or cancelled, or a new link sent
    CLOSED = "closed"  # the victim pressed quick exit: locked until a new link is sent

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    Reason.INVALID: 404,
    Reason.NOT_YET: 403,
    Reason.EXPIRED: 410,
    Reason.USED: 410,
    Reason.SECOND_DEVICE: 403,
    Reason.REVOKED: 410,
    Reason.CLOSED: 410,
}

# For the officer: what happened and what to do (English; the officer's app
# may translate by code).
OFFICER_NOTES: dict[Reason, str] = {
    Reason.INVALID: "A link that does not exist was opened.",
    Reason.NOT_YET: "The victim opened the link before the joining window.",
    Reason.EXPIRED: "The victim opened the link after the joining window closed: rebook.",
    Reason.USED: "The link was opened again after the call ended.",
    Reason.SECOND_DEVICE: (
        "The link was opened on a second phone or browser and refused. "
        "Check with the victim; send a new link if they changed phone."
    ),
    Reason.REVOKED: "An old link (replaced or cancelled) was opened.",
    Reason.CLOSED: (
        "The link was opened again after the victim pressed Quick exit. It stays locked: "
        "check the victim is safe to talk before sending a new link."
    ),
}


@dataclass(frozen=True)
class KindText:
    title: str
    body: str


_DANGER_EN = "If you are in danger right now, call 999."
_DANGER_CY = "Os ydych chi mewn perygl nawr, ffoniwch 999."

# Written for someone who may be frightened, on a small screen, perhaps not
# alone: short sentences, no jargon, always a next step. The page title stays
# neutral ("Video appointment") in case someone else sees the screen.
# The Welsh wants a check by a Welsh-language officer before going live.
VICTIM_TEXTS: dict[str, dict[str | Reason, KindText | str]] = {
    "en": {
        "page_title": "Video appointment",
        "lang_name": "English",
        Reason.INVALID: KindText(
            "We can't open this link",
            "This link doesn't work. Please check that you opened the whole link from "
            "your text message: sometimes part of it gets cut off. If it still doesn't "
            "work, call 101 and say you have a video appointment. " + _DANGER_EN,
        ),
        Reason.NOT_YET: KindText(
            "Your video appointment hasn't started yet",
            "This link opens a short time before your appointment. Please come back "
            "nearer the time given in your text message. If you need a different time, "
            "call 101. " + _DANGER_EN,
        ),
        Reason.EXPIRED: KindText(
            "This link has expired",
            "Links only work around the time of the appointment. If you missed it, or "
            "you still need to talk to us, call 101 and we will arrange a new time. "
            + _DANGER_EN,
        ),
        Reason.USED: KindText(
            "This appointment has finished",
            "This link was used for a video call that has now ended, so it can't be "
            "used again. If you need to talk to us again, call 101. " + _DANGER_EN,
        ),
        Reason.SECOND_DEVICE: KindText(
            "This link is already open on another phone",
            "To keep you safe, each link works on one phone or browser only. If you "
            "opened it in a different browser or app on this phone, please go back to "
            "that one. If this was not you, call 101 and tell them: we will send you a "
            "new link. " + _DANGER_EN,
        ),
        Reason.REVOKED: KindText(
            "This link is no longer in use",
            "Your appointment may have been moved or cancelled. If you have been sent a "
            "newer link, please use that one. If you are not sure, call 101. "
            + _DANGER_EN,
        ),
        # Deliberately plain: whoever opens this may not be the victim.
        Reason.CLOSED: KindText(
            "This link is closed",
            "This link can't be opened again. If you need to talk to us, call 101. " + _DANGER_EN,
        ),
    },
    "cy": {
        "page_title": "Apwyntiad fideo",
        "lang_name": "Cymraeg",
        Reason.INVALID: KindText(
            "Allwn ni ddim agor y ddolen hon",
            "Dyw'r ddolen hon ddim yn gweithio. Gwnewch yn siŵr eich bod wedi agor y "
            "ddolen gyfan o'ch neges destun: weithiau mae rhan ohoni'n cael ei cholli. "
            "Os nad yw'n gweithio o hyd, ffoniwch 101 a dweud bod gennych chi apwyntiad "
            "fideo. " + _DANGER_CY,
        ),
        Reason.NOT_YET: KindText(
            "Dyw eich apwyntiad fideo ddim wedi dechrau eto",
            "Mae'r ddolen hon yn agor ychydig cyn eich apwyntiad. Dewch yn ôl yn nes at "
            "yr amser sydd yn eich neges destun. Os oes angen amser gwahanol arnoch chi, "
            "ffoniwch 101. " + _DANGER_CY,
        ),
        Reason.EXPIRED: KindText(
            "Mae'r ddolen hon wedi dod i ben",
            "Dim ond o gwmpas amser yr apwyntiad y mae dolenni'n gweithio. Os gwnaethoch "
            "chi ei golli, neu os oes angen i chi siarad â ni o hyd, ffoniwch 101 a "
            "byddwn ni'n trefnu amser newydd. " + _DANGER_CY,
        ),
        Reason.USED: KindText(
            "Mae'r apwyntiad hwn wedi gorffen",
            "Cafodd y ddolen hon ei defnyddio ar gyfer galwad fideo sydd bellach wedi "
            "dod i ben, felly does dim modd ei defnyddio eto. Os oes angen i chi siarad "
            "â ni eto, ffoniwch 101. " + _DANGER_CY,
        ),
        Reason.SECOND_DEVICE: KindText(
            "Mae'r ddolen hon eisoes ar agor ar ffôn arall",
            "Er mwyn eich cadw'n ddiogel, dim ond ar un ffôn neu borwr y mae pob dolen "
            "yn gweithio. Os gwnaethoch chi ei hagor mewn porwr neu ap gwahanol ar y "
            "ffôn hwn, ewch yn ôl i hwnnw. Os nad chi oedd hyn, ffoniwch 101 a dweud "
            "wrthyn nhw: byddwn ni'n anfon dolen newydd atoch chi. " + _DANGER_CY,
        ),
        Reason.REVOKED: KindText(
            "Dyw'r ddolen hon ddim yn cael ei defnyddio mwyach",
            "Efallai fod eich apwyntiad wedi cael ei symud neu ei ganslo. Os ydych chi "
            "wedi cael dolen fwy newydd, defnyddiwch honno. Os nad ydych chi'n siŵr, "
            "ffoniwch 101. " + _DANGER_CY,
        ),
        Reason.CLOSED: KindText(
            "Mae'r ddolen hon wedi cau",
            "Does dim modd agor y ddolen hon eto. Os oes angen i chi siarad â ni, ffoniwch 101. "
            + _DANGER_CY,
        ),
    },
}
DEFAULT_LANGUAGE = "en"


def kind_text(reason: Reason, lang: str = DEFAULT_LANGUAGE) -> KindText:
    texts = VICTIM_TEXTS.get(lang, VICTIM_TEXTS[DEFAULT_LANGUAGE])
    text = texts[reason]
    assert isinstance(text, KindText)
    return text


def pick_language(accept_language: str | None, wanted: str | None = None) -> str:
    """``wanted`` (e.g. ``?lang=cy``) if known, else the first known language in an
    ``Accept-Language`` header (quality values honoured), else English."""
    if wanted and wanted in VICTIM_TEXTS:
        return wanted
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "")[:512].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower().split("-")[0]))
    for negq, _, lang in sorted(ranked):
        if negq < 0 and lang in VICTIM_TEXTS:
            return lang
    return DEFAULT_LANGUAGE


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def _same_secret(secret: str | None, expected: bytes | None) -> bool:
    if secret is None or expected is None or not _WELL_FORMED.fullmatch(secret):
        return False
    return hmac.compare_digest(digest(secret), expected)


@dataclass(frozen=True)
class Claim:
    """A device holds the link. ``device_secret`` goes into its cookie."""

    appointment_id: str
    link_id: str
    device_secret: str
    first: bool  # True when this open claimed the link; False for the same device again


@dataclass(frozen=True)
class Opened:
    """The link may be opened by this device (nothing claimed yet)."""

    appointment_id: str
    link_id: str
    claimed: bool  # True: this device already holds it (its cookie matched)


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    appointment_id: str | None = None  # None when the link is unknown
    link_id: str | None = None


class RegistryFull(RuntimeError):
    """Too many live links: refuse to issue rather than grow without bound."""


@dataclass
class _Entry:
    token_hash: bytes
    link_id: str
    appointment_id: str
    not_before: datetime
    not_after: datetime
    device_hash: bytes | None = None
    ended: bool = False
    revoked: bool = False
    closed: bool = False

    def finished(self, now: datetime) -> bool:
        return self.ended or self.revoked or self.closed or now > self.not_after


@dataclass
class TokenRegistry:
    """Join links in memory, bounded to ``max_entries``. Not thread-safe: use it
    from one asyncio loop (the rendezvous's)."""

    max_entries: int = MAX_ENTRIES
    early: timedelta = DEFAULT_EARLY
    late: timedelta = DEFAULT_LATE
    retention: timedelta = DEFAULT_RETENTION
    _by_hash: dict[bytes, _Entry] = field(default_factory=dict, repr=False)
    _current: dict[str, _Entry] = field(default_factory=dict, repr=False)
    _by_device: dict[bytes, _Entry] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self._by_hash)

    def issue(
        self, appointment_id: str, slot_start: datetime, slot_end: datetime, now: datetime
    ) -> tuple[str, str]:
        """A new link for the appointment: ``(token, link_id)``. The token is
        returned once and never stored; any earlier link for the appointment
        is revoked. ``link_id`` is a short public name for logs and the officer."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        return token, self._add(token, appointment_id, slot_start, slot_end, now)

    def restore(
        self, token: str, appointment_id: str, slot_start: datetime, slot_end: datetime, now: datetime
    ) -> str:
        """Take back a link issued by a registry that is gone (the app's media
        process, which held the demo's, crashed): the same token works again,
        **unclaimed** (the first device to open it now holds it). Only for a
        link its caller knows was not spent; any other link for the
        appointment is revoked, as by ``issue``. Returns the link_id."""
        if not _WELL_FORMED.fullmatch(token):
            raise ValueError("not a join token")
        if digest(token) in self._by_hash:
            raise ValueError("this link is already known")
        return self._add(token, appointment_id, slot_start, slot_end, now)

    def _add(self, token: str, appointment_id: str, slot_start: datetime, slot_end: datetime, now: datetime) -> str:
        if not appointment_id or len(appointment_id) > 64:
            raise ValueError("appointment_id must be 1-64 characters")
        if slot_end < slot_start:
            raise ValueError("the slot ends before it starts")
        if slot_end + self.late <= now:
            raise ValueError("the slot is already over")
        self._make_room(now)
        old = self._current.get(appointment_id)
        if old is not None:
            old.revoked = True
        entry = _Entry(
            token_hash=digest(token),
            link_id=secrets.token_hex(6),
            appointment_id=appointment_id,
            not_before=slot_start - self.early,
            not_after=slot_end + self.late,
        )
        self._by_hash[entry.token_hash] = entry
        self._current[appointment_id] = entry
        return entry.link_id

    def peek(self, token: str, device_secret: str | None, now: datetime) -> Opened | Refusal:
        """May the device holding ``device_secret`` (None: no cookie) open the
        link at ``token``? Changes nothing: a GET or HEAD of the link (an SMS
        preview, a URL scanner) must never claim it."""
        entry = self._lookup(token)
        if entry is None:
            return Refusal(Reason.INVALID)
        return self._check(entry, now) or self._holding(entry, device_secret)

    def claim(self, token: str, device_secret: str | None, now: datetime) -> Claim | Refusal:
        """The device holding ``device_secret`` (None: a device with no cookie)
        takes the link at ``token``: the victim's deliberate action on the page."""
        opened = self.peek(token, device_secret, now)
        if isinstance(opened, Refusal):
            return opened
        if opened.claimed:
            assert device_secret is not None
            return Claim(opened.appointment_id, opened.link_id, device_secret, first=False)
        entry = self._lookup(token)
        assert entry is not None
        secret = secrets.token_urlsafe(DEVICE_SECRET_BYTES)
        entry.device_hash = digest(secret)
        self._by_device[entry.device_hash] = entry
        return Claim(entry.appointment_id, entry.link_id, secret, first=True)

    @staticmethod
    def _holding(entry: _Entry, device_secret: str | None) -> Opened | Refusal:
        """Whether the device may speak for the link: anyone while it is unclaimed
        (no more than claiming it allows), only its own device once claimed."""
        if entry.device_hash is None:
            return Opened(entry.appointment_id, entry.link_id, claimed=False)
        if _same_secret(device_secret, entry.device_hash):
            return Opened(entry.appointment_id, entry.link_id, claimed=True)
        return Refusal(Reason.SECOND_DEVICE, entry.appointment_id, entry.link_id)

    def device(self, device_secret: str | None, now: datetime) -> Claim | Refusal:
        """Which appointment a device cookie belongs to, if its link is still good
        (how the victim's WebSocket is authenticated)."""
        if not device_secret or not _WELL_FORMED.fullmatch(device_secret):
            return Refusal(Reason.INVALID)
        h = digest(device_secret)
        entry = self._by_device.get(h)
        if entry is None or not _same_secret(device_secret, entry.device_hash):
            return Refusal(Reason.INVALID)
        refused = self._check(entry, now)
        if refused is not None:
            return refused
        return Claim(entry.appointment_id, entry.link_id, device_secret, first=False)

    def revoke(self, appointment_id: str) -> bool:
        """The appointment was cancelled or moved: its link stops working."""
        entry = self._current.pop(appointment_id, None)
        if entry is None:
            return False
        entry.revoked = True
        return True

    def holder(self, token: str, device_secret: str | None) -> Opened | Refusal:
        """The link at ``token`` if the device holding ``device_secret`` may still
        speak for it, whatever its state (the window, the call's end): its safety
        signals, quick exit and "I can't talk freely", must reach the officer even
        after the call (``_holding`` says who may)."""
        entry = self._lookup(token)
        return Refusal(Reason.INVALID) if entry is None else self._holding(entry, device_secret)

    def close(self, token: str, device_secret: str | None) -> Opened | Refusal:
        """Quick exit: lock the link at ``token`` until a new one is issued (see
        ``holder`` for who may). Returns the link closed, or why nothing was."""
        held = self.holder(token, device_secret)
        if isinstance(held, Refusal):
            return held
        entry = self._lookup(token)
        assert entry is not None
        entry.closed = True
        if self._current.get(entry.appointment_id) is entry:
            del self._current[entry.appointment_id]
        return held

    def end(self, appointment_id: str) -> bool:
        """The call is over: the link is spent, even for the device that held it."""
        entry = self._current.pop(appointment_id, None)
        if entry is None:
            return False
        entry.ended = True
        return True

    def window(self, appointment_id: str) -> tuple[datetime, datetime] | None:
        entry = self._current.get(appointment_id)
        return None if entry is None else (entry.not_before, entry.not_after)

    def stored_secrets(self) -> Iterator[bytes]:
        """Every secret-derived value held (for tests: only digests, never tokens)."""
        for entry in self._by_hash.values():
            yield entry.token_hash
            if entry.device_hash is not None:
                yield entry.device_hash

    # -- inside ---------------------------------------------------------------

    def _lookup(self, token: str) -> _Entry | None:
        if not isinstance(token, str) or not _WELL_FORMED.fullmatch(token):
            return None
        h = digest(token)
        # The dict lookup is keyed by the SHA-256 digest, so its timing can only
        # tell an attacker about digests of strings they chose, which says
        # nothing about live tokens; the final comparison is constant-time.
        entry = self._by_hash.get(h)
        if entry is None or not hmac.compare_digest(h, entry.token_hash):
            return None
        return entry

    @staticmethod
    def _check(entry: _Entry, now: datetime) -> Refusal | None:
        reason = None
        if entry.revoked:
            reason = Reason.REVOKED
        elif entry.closed:
            reason = Reason.CLOSED
        elif entry.ended:
            reason = Reason.USED
        elif now > entry.not_after:
            reason = Reason.EXPIRED
        elif now < entry.not_before:
            reason = Reason.NOT_YET
        return None if reason is None else Refusal(reason, entry.appointment_id, entry.link_id)

    def _forget_device(self, entry: _Entry) -> None:
        if entry.device_hash is not None:
            self._by_device.pop(entry.device_hash, None)

    def _drop(self, entry: _Entry) -> None:
        self._by_hash.pop(entry.token_hash, None)
        self._forget_device(entry)
        if self._current.get(entry.appointment_id) is entry:
            del self._current[entry.appointment_id]

    def _make_room(self, now: datetime) -> None:
        if len(self._by_hash) < self.max_entries:
            return
        # First forget links finished longer ago than the retention period,
        # then the finished link that closed earliest; never a live one.
        stale = [e for e in self._by_hash.values() if e.not_after + self.retention < now]
        for entry in stale:
            self._drop(entry)
        if len(self._by_hash) < self.max_entries:
            return
        finished = [e for e in self._by_hash.values() if e.finished(now)]
        if not finished:
            raise RegistryFull(f"{len(self._by_hash)} live join links: refusing to issue more")
        self._drop(min(finished, key=lambda e: e.not_after))
