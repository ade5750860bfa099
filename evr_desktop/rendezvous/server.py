"""The rendezvous: join links, the waiting room and the signalling relay.

One aiohttp application. The victim's phone opens ``/j/{token}`` (the one-time
link from the SMS), which serves the page and claims nothing (SMS previews and
URL scanners fetch links too); the victim's consent on the page POSTs
``/j/{token}/claim``, which claims the link and sets a device cookie; the page
then opens ``/ws/victim`` (authenticated by that cookie) and waits. Quick
exit leaves through ``/j/{token}/exit``: the link is locked, the browser told
to clear this site's cookies, storage and cache, and sent to a neutral page
on another site. The
officer's app keeps one ``/ws/officer`` socket (authenticated by a bearer
secret) over which it hears about every victim and relays WebRTC signalling
to any of them. The protocol is in ``docs/rendezvous.md``.

Everything is bounded: message size, message rate, errors per socket, the
queue towards each socket (a side that does not read is closed, never
buffered for), events held for an absent officer, and victim sockets in all.
Logs carry appointment and link IDs only: no token, no cookie, no address, no
message content.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from .. import wire
from ..domain.verification import is_commitment
from .guard import ConnectionGuard, GuardedRunner
from .metrics import Metrics
from .officers import DEFAULT_OFFICER, OfficerAuth, SecretAuth
from .tokens import (
    OFFICER_NOTES,
    VICTIM_TEXTS,
    Claim,
    Opened,
    Reason,
    Refusal,
    RegistryFull,
    TokenRegistry,
    kind_text,
    pick_language,
)
from .turn import TurnConfig, ice_servers_for

log = logging.getLogger("evr_desktop.rendezvous")

COOKIE = "evr_device"
COOKIE_HTTPS = "__Host-evr_device"  # __Host-: Secure, Path=/, no Domain, enforced by browsers

# Close codes (4000-4999 are ours).
CLOSE_REPLACED = 4001  # a newer socket took this one's place
CLOSE_SLOW = 4008  # the socket did not read its messages fast enough
CLOSE_REFUSED = 4403  # the device's link is no longer good (ended, expired...)
CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION  # 1008: flood or too many errors

RELAYED = frozenset({"hello", "offer", "answer", "ice", "chat", "bye"})
# From the victim to the officer only: "flag" ("I can't talk freely", never shown
# to the victim), "commit" (the hash of the page's DTLS fingerprint, sent
# before any offer; see docs/victim-page.md "Commitment") and "restart" (the
# phone's network changed or its connection failed: please restart ICE; no fields).
VICTIM_ONLY = frozenset({"flag", "commit", "restart"})
# Events the officer should still hear about if it was away when they happened.
HELD_FOR_OFFICER = frozenset({"link_opened", "link_refused", "flag", "victim_left", "quick_exit"})
# Where quick exit sends the phone: an everyday page on another site, so that
# neither the address bar nor the history shows the police. A force sets its
# own (``--neutral-url``).
DEFAULT_NEUTRAL_URL = "https://www.bbc.co.uk/weather"
# What quick exit asks the browser to forget for this site (the device
# cookie, anything the page stored, cached copies of the page).
CLEAR_SITE_DATA = '"cache", "cookies", "storage"'


def default_web_root() -> Path:
    import sys

    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS")) / "resources" / "web"
    return Path(__file__).resolve().parents[2] / "resources" / "web"


@dataclass(frozen=True)
class Limits:
    max_message_chars: int = 64 * 1024  # larger: an error back, the socket stays open
    hard_message_bytes: int = 256 * 1024  # larger: the socket is closed (1009)
    max_sdp_candidates: int = 256
    max_victim_candidates: int = 64  # trickled ICE candidates on one victim socket
    max_chat_chars: int = 4000
    victim_rate: float = 50.0  # messages per second, token bucket
    victim_burst: int = 100
    officer_rate: float = 400.0  # one officer socket carries every appointment
    officer_burst: int = 800
    max_errors: int = 20  # protocol errors on one socket before it is closed
    outbox_messages: int = 256  # queued towards one socket
    outbox_bytes: int = 1024 * 1024
    max_victims: int = 2000  # victim sockets at once
    held_events_per_appointment: int = 16
    held_appointments: int = 2000
    heartbeat: float = 15.0  # seconds; a silent phone is dropped after ~1.5x this
    max_api_body: int = 16 * 1024


class ProtocolError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


_CLOSE = object()  # outbox sentinel: close after everything before it is sent


class Peer:
    """One WebSocket with a bounded outbox drained by its own writer task.
    ``send`` never waits: if the outbox is full the socket is closed instead."""

    def __init__(
        self, ws: web.WebSocketResponse, role: str, appointment: str | None, limits: Limits
    ):
        self.ws = ws
        self.role = role
        self.appointment = appointment
        self.limits = limits
        rate, burst = (
            (limits.victim_rate, limits.victim_burst)
            if role == "victim"
            else (limits.officer_rate, limits.officer_burst)
        )
        self.bucket = TokenBucket(rate, burst)
        self.errors = 0
        self.closing = False
        self.link_id: str | None = None  # a victim's link: the opaque id in its TURN username
        self.commit: str | None = None  # a victim's latest "commit", replayed to a new officer
        self.candidates = 0  # trickled ICE candidates received (a victim's)
        self.officer_id: str | None = None  # an officer's socket: who
        self._queue: deque[Any] = deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._drain())

    def send(self, message: dict[str, Any], *, droppable: bool = False) -> bool:
        """Queue a message. A full queue closes the socket (it is not keeping up),
        except for ``droppable`` messages (error replies), which are dropped."""
        if self.closing:
            return False
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        full = len(self._queue) >= self.limits.outbox_messages
        if full or self._bytes + len(data) > self.limits.outbox_bytes:
            if droppable:
                return False
            log.warning("%s socket %s too slow: closing", self.role, self.appointment or "-")
            self.close(CLOSE_SLOW, "too slow")
            return False
        self._queue.append(data)
        self._bytes += len(data)
        self._wake.set()
        return True

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Close the socket: at once, or after what is already queued is sent."""
        if self.closing:
            return
        self.closing = True
        if not flush:
            self._queue.clear()
            self._bytes = 0
        self._queue.append((_CLOSE, code, reason))
        self._wake.set()

    async def _drain(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    item = self._queue.popleft()
                    if isinstance(item, tuple):
                        await self.ws.close(code=item[1], message=item[2].encode())
                        return
                    self._bytes -= len(item)
                    await self.ws.send_str(item)
        except (ConnectionError, RuntimeError):
            pass  # the other end went away; the reader notices

    async def stop(self) -> None:
        """The reader is done: send what close is pending, then end the writer."""
        if not self.closing:
            self.close(WSCloseCode.OK, "closed")
        try:
            await asyncio.wait_for(self._writer, timeout=2.0)
        except (TimeoutError, asyncio.CancelledError, Exception):
            pass


# --- message checking ----------------------------------------------------------


def _opt_str(msg: dict, key: str, limit: int) -> str | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ProtocolError("bad-field", f"'{key}' must be text of at most {limit} characters")
    return value


def candidate_address(candidate: str) -> str | None:
    """The connection address of an ICE candidate line (RFC 8839: ``candidate:``
    foundation, component, transport, priority, *address*, port, ...)."""
    parts = candidate.removeprefix("a=").split()
    return parts[4] if len(parts) > 5 and parts[0].startswith("candidate:") else None


def unroutable(address: str | None) -> bool:
    """Loopback, link-local or unspecified: never a real phone's path to the
    officer, only a way to probe the officer's own machine. (An mDNS name,
    which browsers use to hide a host address, is not an IP address: allowed.)"""
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified


def without_unroutable(sdp: str) -> tuple[str, int]:
    """The SDP without its loopback and link-local candidate lines; how many went."""
    lines = sdp.split("\n")
    kept = [line for line in lines
            if not (line.startswith("a=candidate:") and unroutable(candidate_address(line.strip())))]
    return "\n".join(kept), len(lines) - len(kept)


def clean_message(msg: Any, *, role: str, limits: Limits) -> dict[str, Any]:
    """A checked copy of ``msg`` holding only the fields its type allows."""
    if not isinstance(msg, dict):
        raise ProtocolError("not-object", "a message must be a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in RELAYED | VICTIM_ONLY:
        shown = kind[:32] if isinstance(kind, str) else repr(type(kind).__name__)
        raise ProtocolError("unknown-type", f"unknown message type {shown!r}")
    if kind in VICTIM_ONLY and role != "victim":
        raise ProtocolError("not-allowed", f"'{kind}' is sent by the victim only")
    out: dict[str, Any] = {"type": kind}
    if kind in ("offer", "answer"):
        sdp = msg.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise ProtocolError("bad-field", "'sdp' must be an SDP text starting with v=0")
        n = sdp.count("a=candidate:")
        if n > limits.max_sdp_candidates:
            raise ProtocolError(
                "too-many-candidates",
                f"the SDP has {n} ICE candidates; at most {limits.max_sdp_candidates} are accepted",
            )
        out["sdp"] = sdp
        restart = msg.get("iceRestart")
        if isinstance(restart, bool):
            out["iceRestart"] = restart
    elif kind == "ice":
        cand = msg.get("candidate")
        if cand is not None and (not isinstance(cand, str) or len(cand) > 2048):
            raise ProtocolError(
                "bad-field", "'candidate' must be text of at most 2048 characters, or null"
            )
        out["candidate"] = cand
        out["sdpMid"] = _opt_str(msg, "sdpMid", 64)
        index = msg.get("sdpMLineIndex")
        not_int = isinstance(index, bool) or not isinstance(index, int)
        if index is not None and (not_int or not 0 <= index < 64):
            raise ProtocolError("bad-field", "'sdpMLineIndex' must be an integer 0-63, or null")
        out["sdpMLineIndex"] = index
        out["usernameFragment"] = _opt_str(msg, "usernameFragment", 256)
    elif kind == "chat":
        text = msg.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > limits.max_chat_chars:
            raise ProtocolError("bad-field", f"'text' must be 1-{limits.max_chat_chars} characters")
        out["text"] = text
        if (mid := _opt_str(msg, "id", 64)) is not None:
            out["id"] = mid
    elif kind == "hello":
        if (lang := _opt_str(msg, "lang", 16)) is not None:
            out["lang"] = lang
    elif kind == "bye":
        if (reason := _opt_str(msg, "reason", 64)) is not None:
            out["reason"] = reason
    elif kind == "flag":
        if (what := _opt_str(msg, "kind", 32)) is not None:
            out["kind"] = what
    elif kind == "commit":
        digest = msg.get("hash")
        if not is_commitment(digest):  # the officer's app checks it by the same rule
            raise ProtocolError(
                "bad-field", "'hash' must be exactly 64 lowercase hexadecimal characters"
            )
        out["hash"] = digest
    return out


# --- pages -----------------------------------------------------------------------

_KIND_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
    "background:#f6f6f4;color:#1b1b1b;font-size:1.15rem;line-height:1.5}"
    "main{max-width:36rem;margin:0 auto;padding:1.5rem}"
    "section{background:#fff;border-radius:.75rem;padding:1.25rem 1.5rem;margin:0 0 1rem}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}p{margin:0}"
)
_KIND_CSS_HASH = base64.b64encode(hashlib.sha256(_KIND_CSS.encode()).digest()).decode()
_KIND_CSP = (
    f"default-src 'none'; style-src 'sha256-{_KIND_CSS_HASH}'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Video appointment</title></head>
<body><main><p>Joining your video appointment&hellip;</p></main></body></html>
"""


def kind_page(reason: Reason, accept_language: str | None, wanted: str | None = None) -> str:
    """The refusal page: the preferred language first, then the others (English
    and Welsh side by side, as Welsh public bodies publish)."""
    first = pick_language(accept_language, wanted)
    langs = [first] + [lang for lang in VICTIM_TEXTS if lang != first]
    sections = []
    for lang in langs:
        text = kind_text(reason, lang)
        sections.append(
            f'<section lang="{html.escape(lang)}"><h1>{html.escape(text.title)}</h1>'
            f"<p>{html.escape(text.body)}</p></section>"
        )
    title = html.escape(str(VICTIM_TEXTS[first]["page_title"]))
    return (
        f'<!doctype html>\n<html lang="{html.escape(first)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{title}</title>'
        f"<style>{_KIND_CSS}</style></head><body><main>{''.join(sections)}</main></body></html>\n"
    )


# --- the application ------------------------------------------------------------


class Rendezvous:
    def __init__(
        self,
        registry: TokenRegistry,
        officer_secret: str | None,
        *,
        public_url: str | None,
        limits: Limits,
        clock: Callable[[], datetime],
        web_root: Path | None,
        turn: TurnConfig | None = None,
        neutral_url: str = DEFAULT_NEUTRAL_URL,
        force: bool | None = None,
        metrics_token: str | None = None,
        officer_auth: OfficerAuth | None = None,
    ):
        if officer_auth is None:
            if officer_secret is None:
                raise ValueError("an officer secret or certificate authentication is needed")
            officer_auth = SecretAuth(officer_secret)
        self.auth = officer_auth
        self.registry = registry
        self.public_url = public_url.rstrip("/") if public_url else None
        self.limits = limits
        self.clock = clock
        self.web_root = web_root
        self.turn = turn
        if urlsplit(neutral_url).scheme not in ("https", "http") or not urlsplit(neutral_url).netloc:
            raise ValueError("the neutral page must be an absolute http(s) address")
        self.neutral_url = neutral_url
        self.turn_clock: Callable[[], float] = time.time  # coturn checks expiry against real time
        self.https = bool(public_url and public_url.startswith("https://"))
        # Force mode: phones come from the internet. A victim's loopback or
        # link-local candidates are then refused (they could only point the
        # officer's machine at itself or its own network).
        self.force = self.https if force is None else force
        if metrics_token is not None and len(metrics_token) < 16:
            raise ValueError("the metrics token must be at least 16 characters")
        self._metrics_token = hashlib.sha256(metrics_token.encode()).digest() if metrics_token else None
        self.cookie_name = COOKIE_HTTPS if self.https else COOKIE
        self.officers: dict[str, Peer] = {}  # officer id -> their one socket
        self.owner: dict[str, str] = {}  # appointment -> the officer who issued its link
        self.victims: dict[str, Peer] = {}
        self.metrics = Metrics()
        self.in_call: set[str] = set()  # appointments whose victim has had the officer's offer
        self.held: OrderedDict[str, deque[dict]] = OrderedDict()

    # -- security --------------------------------------------------------------

    def officer_ok(self, request: web.Request) -> bool:
        return self.auth.identify(request) is not None

    def owner_of(self, appt: str) -> str:
        """Whose appointment: the officer who issued its link (the one officer of
        the embedded demo, whose app issues links straight into the registry)."""
        return self.owner.get(appt, DEFAULT_OFFICER)

    def officer_of(self, appt: str) -> Peer | None:
        """The connected socket of the appointment's officer, if any: a victim's
        events reach that officer only."""
        peer = self.officers.get(self.owner_of(appt))
        return peer if peer is not None and not peer.closing else None

    def origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser; the cookie is still required
        allowed = {f"{request.scheme}://{request.host}"}
        if self.public_url:
            parts = urlsplit(self.public_url)
            allowed.add(f"{parts.scheme}://{parts.netloc}")
        return origin in allowed

    def csp(self, request: web.Request) -> str:
        ws = f"{'wss' if self.https or request.secure else 'ws'}://{request.host}"
        return (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"media-src 'self' blob: mediastream:; connect-src 'self' {ws}; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )

    def link_url(self, request: web.Request, token: str) -> str:
        base = self.public_url or f"{request.scheme}://{request.host}"
        return f"{base}/j/{token}"

    def ice_fields(self, opaque_id: str | None) -> dict[str, Any]:
        """``{"iceServers": [...]}`` with fresh TURN credentials for ``opaque_id``
        (a link id, or a random id for the officer's socket), or ``{}`` without TURN."""
        if self.turn is None or opaque_id is None:
            return {}
        return {"iceServers": ice_servers_for(self.turn, opaque_id, self.turn_clock())}

    def victim_waiting(self, appt: str, victim: Peer) -> dict[str, Any]:
        return {"type": "victim_waiting", "appointment": appt, **self.ice_fields(victim.link_id)}

    # -- the officer's event stream -----------------------------------------------

    def tell_officer(self, event: dict[str, Any]) -> None:
        officer = self.officer_of(event["appointment"])
        if officer is not None:
            officer.send(event)
            return
        if event["type"] not in HELD_FOR_OFFICER:
            return
        appt = event["appointment"]
        held = self.held.get(appt)
        if held is None:
            while len(self.held) >= self.limits.held_appointments:
                self.held.popitem(last=False)
            held = self.held[appt] = deque(maxlen=self.limits.held_events_per_appointment)
        held.append(event)

    # -- HTTP ------------------------------------------------------------------

    def _refused(self, result: Refusal) -> None:
        """Log a refusal of a link and tell the officer, if the link is known."""
        self.metrics.links_refused[result.reason.value] += 1
        log.info(
            "link refused: %s appointment=%s link=%s",
            result.reason, result.appointment_id or "-", result.link_id or "-",
        )
        if result.appointment_id is not None:
            self.tell_officer(
                {
                    "type": "link_refused",
                    "appointment": result.appointment_id,
                    "link_id": result.link_id,
                    "reason": result.reason.value,
                    "note": OFFICER_NOTES[result.reason],
                }
            )

    def _refusal_page(self, request: web.Request, reason: Reason) -> web.Response:
        resp = web.Response(
            status=reason.http_status,
            text=kind_page(reason, request.headers.get("Accept-Language"), request.query.get("lang")),
            content_type="text/html",
        )
        resp.headers["Content-Security-Policy"] = _KIND_CSP
        return resp

    async def join(self, request: web.Request) -> web.StreamResponse:
        """GET (and HEAD) of a link: the page, or the refusal page. Claims nothing,
        tells the officer nothing but refusals: previews and scanners fetch links."""
        result = self.registry.peek(
            request.match_info["token"], request.cookies.get(self.cookie_name), self.clock()
        )
        if isinstance(result, Refusal):
            self._refused(result)
            return self._refusal_page(request, result.reason)
        page = self.web_root / "join.html" if self.web_root else None
        body = page.read_text("utf-8") if page is not None and page.is_file() else _PLACEHOLDER
        resp = web.Response(text=body, content_type="text/html")
        resp.headers["Content-Security-Policy"] = self.csp(request)
        return resp

    async def claim(self, request: web.Request) -> web.Response:
        """POST from the page when the victim agrees: the link becomes this device's.
        Only from this site's own page (``Origin``), so another site cannot claim
        a link on the victim's behalf."""
        if not self.origin_ok(request):
            raise web.HTTPForbidden(text="forbidden")
        result = self.registry.claim(
            request.match_info["token"], request.cookies.get(self.cookie_name), self.clock()
        )
        if isinstance(result, Refusal):
            self._refused(result)
            return web.json_response({"refused": result.reason.value}, status=result.reason.http_status)
        self.metrics.links_claimed += 1
        log.info(
            "link claimed: appointment=%s link=%s first=%s",
            result.appointment_id, result.link_id, result.first,
        )
        self.tell_officer(
            {
                "type": "link_opened",
                "appointment": result.appointment_id,
                "link_id": result.link_id,
                "first": result.first,
            }
        )
        resp = web.json_response({"claimed": True})
        window = self.registry.window(result.appointment_id)
        max_age = None
        if window is not None:
            max_age = max(60, int((window[1] - self.clock()).total_seconds()))
        resp.set_cookie(
            self.cookie_name,
            result.device_secret,
            path="/",
            max_age=max_age,
            httponly=True,
            secure=self.https or None,
            samesite="Lax",
        )
        return resp

    async def flag(self, request: web.Request) -> web.Response:
        """"I can't talk freely" over HTTP: from a page whose socket is down (the
        call has ended, the network is changing). Same origin, the link's own
        device; the officer is told as for the socket's ``flag`` (held if away)."""
        if not self.origin_ok(request):
            raise web.HTTPForbidden(text="forbidden")
        held = self.registry.holder(request.match_info["token"], request.cookies.get(self.cookie_name))
        if isinstance(held, Refusal) or not held.claimed:
            raise web.HTTPForbidden(text="forbidden")
        log.info("flag (over HTTP): appointment=%s", held.appointment_id)
        self.metrics.flags += 1
        self.tell_officer({"type": "flag", "appointment": held.appointment_id, "kind": "cannot-talk"})
        return web.json_response({"sent": True})

    async def quick_exit(self, request: web.Request) -> web.StreamResponse:
        """Quick exit, as a top-level navigation from the page: lock the link
        (the officer is told, the victim's socket closed), then send the phone
        to the neutral page with ``Clear-Site-Data``. Whatever the token, the
        answer is the same redirect: it says nothing about the link."""
        result = self.registry.close(request.match_info["token"], request.cookies.get(self.cookie_name))
        if isinstance(result, Opened):
            appt = result.appointment_id
            log.info("quick exit: appointment=%s link=%s", appt, result.link_id)
            self.metrics.quick_exits += 1
            self.tell_officer({"type": "quick_exit", "appointment": appt, "link_id": result.link_id})
            victim = self.victims.get(appt)
            if victim is not None:
                victim.send({"type": "refused", "reason": Reason.CLOSED.value})
                victim.close(CLOSE_REFUSED, "closed", flush=True)
        else:
            log.info("quick exit on a link that was not open: %s", result.reason)
        resp = web.HTTPSeeOther(self.neutral_url)
        resp.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
        resp.del_cookie(self.cookie_name, path="/")
        raise resp

    async def issue(self, request: web.Request) -> web.Response:
        officer_id = self.auth.identify(request)
        if officer_id is None:
            raise _unauthorized()
        try:
            body = await request.json()
            appt = body["appointment"]
            start = datetime.fromisoformat(body["slot_start"])
            end = datetime.fromisoformat(body["slot_end"])
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("times need a UTC offset")
            if not isinstance(appt, str):
                raise TypeError("appointment")
            if self.owner.get(appt, officer_id) != officer_id and self.registry.window(appt) is not None:
                log.warning("link refused: appointment=%s belongs to another officer", appt)
                raise web.HTTPConflict(text="this appointment's link belongs to another officer")
            token, link_id = self.registry.issue(appt, start, end, self.clock())
            self._own(appt, officer_id)
        except RegistryFull:
            raise web.HTTPServiceUnavailable(text="too many live links") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad request: {type(exc).__name__}") from None
        window = self.registry.window(appt)
        assert window is not None
        log.info("link issued: appointment=%s link=%s", appt, link_id)
        self.metrics.links_issued += 1
        return web.json_response(
            {
                "url": self.link_url(request, token),
                "link_id": link_id,
                "not_before": window[0].isoformat(),
                "not_after": window[1].isoformat(),
            }
        )

    def _own(self, appt: str, officer_id: str) -> None:
        """Bind the appointment to the officer who issued its link. Bounded: the
        owners of appointments with no live link go first."""
        self.owner[appt] = officer_id
        if len(self.owner) > 2 * self.registry.max_entries:
            for stale in [a for a in self.owner if self.registry.window(a) is None]:
                del self.owner[stale]

    async def revoke(self, request: web.Request) -> web.Response:
        officer_id = self.auth.identify(request)
        if officer_id is None:
            raise _unauthorized()
        appt = request.match_info["appointment"]
        if self.owner_of(appt) != officer_id:
            raise web.HTTPForbidden(text="this appointment belongs to another officer")
        found = self.registry.revoke(appt)
        victim = self.victims.get(appt)
        if victim is not None:
            victim.send({"type": "refused", "reason": Reason.REVOKED.value})
            victim.close(CLOSE_REFUSED, "revoked", flush=True)
        return web.json_response({"revoked": found})

    # -- WebSockets ----------------------------------------------------------------

    def _socket(self) -> web.WebSocketResponse:
        return web.WebSocketResponse(
            max_msg_size=self.limits.hard_message_bytes,
            heartbeat=self.limits.heartbeat,
            compress=False,  # no permessage-deflate: no inflation bombs, less CPU
        )

    async def officer_socket(self, request: web.Request) -> web.StreamResponse:
        officer_id = self.auth.identify(request)
        if officer_id is None:
            log.warning("officer socket refused: not authenticated")
            raise _unauthorized()
        ws = self._socket()
        await ws.prepare(request)
        peer = Peer(ws, "officer", None, self.limits)
        peer.officer_id = officer_id
        old = self.officers.get(officer_id)
        self.officers[officer_id] = peer
        if old is not None:  # the same officer again (their app restarted): the newer wins
            old.close(CLOSE_REPLACED, "replaced")
        mine = {appt: v for appt, v in self.victims.items() if self.owner_of(appt) == officer_id}
        log.info("officer connected (%d of their victims waiting; %d officers)", len(mine), len(self.officers))
        peer.send({"type": "welcome", "waiting": len(mine), **self.ice_fields(secrets.token_hex(6))})
        # What happened to their appointments while they were away, oldest
        # first, then who is waiting now (so a held victim_left is followed by
        # the victim's victim_waiting if they came back).
        for appt in [a for a in self.held if self.owner_of(a) == officer_id]:
            for event in self.held.pop(appt):
                peer.send({**event, "held": True})
        for appt, victim in mine.items():
            peer.send(self.victim_waiting(appt, victim))
            if victim.commit is not None:  # the page sends it once per certificate
                peer.send({"type": "commit", "hash": victim.commit, "appointment": appt})
            if old is None:
                victim.send({"type": "officer_joined"})
        try:
            await self._read(peer, self._from_officer)
        finally:
            await peer.stop()
            if self.officers.get(officer_id) is peer:
                del self.officers[officer_id]
                log.info("officer disconnected (%d officers)", len(self.officers))
                for appt, victim in self.victims.items():
                    if self.owner_of(appt) == officer_id:
                        victim.send({"type": "officer_left"})
        return ws

    async def victim_socket(self, request: web.Request) -> web.StreamResponse:
        result = self.registry.device(request.cookies.get(self.cookie_name), self.clock())
        if not self.origin_ok(request):
            raise web.HTTPForbidden(text="forbidden")
        if isinstance(result, Refusal) and result.reason is Reason.INVALID:
            raise web.HTTPForbidden(text="forbidden")
        if isinstance(result, Claim) and result.appointment_id not in self.victims:
            if len(self.victims) >= self.limits.max_victims:
                log.warning("victim socket refused: %d victims connected", len(self.victims))
                raise web.HTTPServiceUnavailable(text="busy")
        ws = self._socket()
        await ws.prepare(request)
        if isinstance(result, Refusal):
            await ws.send_json({"type": "refused", "reason": result.reason.value})
            await ws.close(code=CLOSE_REFUSED, message=result.reason.value.encode())
            return ws
        appt = result.appointment_id
        peer = Peer(ws, "victim", appt, self.limits)
        peer.link_id = result.link_id
        old = self.victims.get(appt)
        self.victims[appt] = peer
        if old is not None:
            old.close(CLOSE_REPLACED, "replaced")
            self.tell_officer({"type": "victim_left", "appointment": appt, "why": "replaced"})
        present = self.officer_of(appt) is not None
        peer.send({"type": "waiting", "officer": present, **self.ice_fields(peer.link_id)})
        self.tell_officer(self.victim_waiting(appt, peer))
        log.info("victim waiting: appointment=%s link=%s", appt, result.link_id)
        try:
            await self._read(peer, self._from_victim)
        finally:
            await peer.stop()
            if self.victims.get(appt) is peer:
                del self.victims[appt]
                log.info("victim left: appointment=%s", appt)
                self.in_call.discard(appt)
                self.tell_officer({"type": "victim_left", "appointment": appt})
        return ws

    async def _read(self, peer: Peer, handle: Callable[[Peer, dict], None]) -> None:
        ws, limits = peer.ws, self.limits
        async for msg in ws:
            if peer.closing:
                break
            if msg.type is WSMsgType.TEXT:
                if not peer.bucket.take():
                    log.warning("%s socket %s flooding: closing", peer.role, peer.appointment)
                    peer.close(CLOSE_POLICY, "rate limit")
                    break
                try:
                    if len(msg.data) > limits.max_message_chars:
                        raise ProtocolError(
                            "too-large",
                            f"message of {len(msg.data)} characters; "
                            f"at most {limits.max_message_chars} are accepted",
                        )
                    try:
                        data = wire.loads(msg.data)
                    except wire.MessageError as exc:  # not JSON, or nested too deep
                        raise ProtocolError(exc.code, str(exc)) from None
                    handle(peer, data)
                except ProtocolError as exc:
                    self._error(peer, exc)
            elif msg.type is WSMsgType.BINARY:
                if peer.bucket.take():
                    self._error(peer, ProtocolError("binary", "only JSON text messages are accepted"))
                else:
                    peer.close(CLOSE_POLICY, "rate limit")
                    break
            else:  # ERROR (e.g. over the hard size limit: aiohttp closes with 1009)
                break

    def _error(self, peer: Peer, exc: ProtocolError, *, counts: bool = True) -> None:
        self.metrics.protocol_errors[exc.code] += 1
        peer.send({"type": "error", "code": exc.code, "message": exc.message}, droppable=True)
        if counts:
            peer.errors += 1
            if peer.errors >= self.limits.max_errors:
                log.warning("%s socket %s: too many errors, closing", peer.role, peer.appointment)
                peer.close(CLOSE_POLICY, "too many errors", flush=True)

    def _from_victim(self, peer: Peer, data: Any) -> None:
        msg = clean_message(data, role="victim", limits=self.limits)
        appt = peer.appointment
        assert appt is not None
        msg["appointment"] = appt
        if msg["type"] == "ice" and msg["candidate"]:
            peer.candidates += 1
            if peer.candidates > self.limits.max_victim_candidates:
                raise ProtocolError("too-many-candidates",
                                    f"at most {self.limits.max_victim_candidates} ICE candidates are accepted")
            if self.force and unroutable(candidate_address(msg["candidate"])):
                self._error(peer, ProtocolError("bad-candidate", "loopback and link-local candidates are not "
                                                "accepted"), counts=False)
                return
        if msg["type"] in ("offer", "answer") and self.force:
            msg["sdp"], dropped = without_unroutable(msg["sdp"])
            if dropped:
                log.info("victim sdp: %d unroutable candidates dropped: appointment=%s", dropped, appt)
        if msg["type"] == "flag":
            log.info("victim flag: appointment=%s", appt)
            self.metrics.flags += 1
            self.tell_officer(msg)  # held if the officer is away
            return
        if msg["type"] == "commit":
            # Kept per socket (the newest wins) and replayed after victim_waiting
            # when an officer socket connects, so an absent officer is no error.
            peer.commit = msg["hash"]
            self.tell_officer(msg)
            return
        officer = self.officer_of(appt)
        if officer is None:
            if msg["type"] != "bye":
                absent = ProtocolError("officer-absent", "the officer is not connected")
                self._error(peer, absent, counts=False)
        else:
            officer.send(msg)
        if msg["type"] == "bye":
            peer.close(1000, "bye", flush=True)

    def _from_officer(self, peer: Peer, data: Any) -> None:
        appt = data.get("appointment") if isinstance(data, dict) else None
        msg = clean_message(data, role="officer", limits=self.limits)
        if not isinstance(appt, str):
            raise ProtocolError("bad-field", "'appointment' is required")
        if self.owner_of(appt) != peer.officer_id:
            raise ProtocolError("not-allowed", "this appointment belongs to another officer")
        victim = self.victims.get(appt)
        if msg["type"] == "bye":
            # The officer ends the call: the link is spent.
            self.registry.end(appt)
            log.info("call ended by officer: appointment=%s", appt)
            self.metrics.calls_ended += 1
            self.in_call.discard(appt)
            if victim is not None:
                victim.send(msg)
                victim.close(1000, "ended", flush=True)
            return
        if victim is None or victim.closing:
            self._error(
                peer,
                ProtocolError("no-victim", f"no victim is connected for appointment {appt[:64]}"),
                counts=False,
            )
            return
        if msg["type"] == "offer" and appt not in self.in_call:
            self.in_call.add(appt)
            self.metrics.calls_started += 1
        victim.send(msg)

    async def health(self, request: web.Request) -> web.Response:
        """Liveness for a load balancer or systemd watchdog: no data, no auth."""
        return web.json_response({"status": "ok"})

    async def metrics_text(self, request: web.Request) -> web.Response:
        """Prometheus text (``metrics.py``: counts only). Read with the metrics
        token as a bearer, or, when none is set, from this machine only."""
        if self._metrics_token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            digest = hashlib.sha256(given.strip().encode()).digest()
            if scheme.lower() != "bearer" or not hmac.compare_digest(digest, self._metrics_token):
                raise _unauthorized()
        elif not _loopback(request.remote):
            raise web.HTTPForbidden(text="forbidden")
        guard = request.app[GUARD]
        officers = sum(1 for p in self.officers.values() if not p.closing)
        text = self.metrics.render(
            officers=officers, victims_waiting=len(self.victims.keys() - self.in_call),
            in_call=len(self.victims.keys() & self.in_call), connections_refused=guard.refused,
            requests_timed_out=guard.timed_out)
        return web.Response(text=text, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def recheck_officers(self, every: float) -> None:
        """Drop a connected officer whose credentials no longer hold (a CRL that
        now lists their certificate): they are told 4403 and must reconnect,
        which the TLS layer or ``identify`` then refuses."""
        while True:
            await asyncio.sleep(every)
            for officer_id, peer in list(self.officers.items()):
                if not peer.closing and not self.auth.still_valid(officer_id):
                    log.warning("officer disconnected: their certificate is no longer valid")
                    peer.close(CLOSE_REFUSED, "revoked")

    async def close_all(self, app: web.Application) -> None:
        peers = list(self.victims.values()) + list(self.officers.values())
        for peer in peers:
            try:
                await peer.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            except Exception:
                pass


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text="unauthorized", headers={"WWW-Authenticate": "Bearer"})


RENDEZVOUS = web.AppKey("rendezvous", Rendezvous)
GUARD = web.AppKey("guard", ConnectionGuard)


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    rdv = request.app[RENDEZVOUS]
    h = response.headers
    h["Server"] = "rendezvous"
    h.setdefault(
        "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    h["Permissions-Policy"] = (
        "camera=(self), microphone=(self), geolocation=(), display-capture=(), "
        "payment=(), usb=(), interest-cohort=()"
    )
    h["Cache-Control"] = "no-store"
    if rdv.https:
        h["Strict-Transport-Security"] = "max-age=31536000"


def create_app(
    registry: TokenRegistry,
    officer_secret: str | None,
    *,
    public_url: str | None = None,
    limits: Limits | None = None,
    clock: Callable[[], datetime] | None = None,
    web_root: Path | None = None,
    turn: TurnConfig | None = None,
    neutral_url: str = DEFAULT_NEUTRAL_URL,
    guard: ConnectionGuard | None = None,
    force: bool | None = None,
    metrics_token: str | None = None,
    officer_auth: OfficerAuth | None = None,
    recheck_seconds: float = 60.0,
) -> web.Application:
    """The rendezvous as an aiohttp application.

    ``registry`` must be fed timezone-aware datetimes (the server's clock is
    UTC-aware unless ``clock`` says otherwise). ``public_url`` is where phones
    reach this server (``https://meet.example.police.uk``); None means "as the
    request came in" (the embedded loopback default). ``web_root`` holds the
    victim's page (``join.html`` and its files); by default ``resources/web``.
    ``turn``: coturn's URLs and ``static-auth-secret``; when set, the victim's
    ``waiting`` and the officer's ``welcome`` and ``victim_waiting`` messages
    carry ``iceServers`` with time-limited credentials (see ``turn.py``).
    ``neutral_url``: where quick exit sends the phone (another site's address).
    ``guard``: the request deadline and per-address cap (``guard.py``) that
    ``start`` and ``run`` apply to every connection. ``force``: phones come from
    the internet (default: when ``public_url`` is https): a victim's loopback
    and link-local ICE candidates are refused. ``officer_auth``: how officers
    are known (``officers.py``: a ``CertificateAuth`` for a force, mutual TLS
    on an officer listener; by default the bearer ``officer_secret`` of the
    embedded demo); connected officers are checked again every
    ``recheck_seconds`` (a certificate revoked since is disconnected)."""
    rdv = Rendezvous(
        registry,
        officer_secret,
        public_url=public_url,
        limits=limits or Limits(),
        clock=clock or (lambda: datetime.now(timezone.utc)),
        web_root=web_root if web_root is not None else default_web_root(),
        turn=turn,
        neutral_url=neutral_url,
        force=force,
        metrics_token=metrics_token,
        officer_auth=officer_auth,
    )
    app = web.Application(client_max_size=rdv.limits.max_api_body)
    app[RENDEZVOUS] = rdv
    app[GUARD] = guard or ConnectionGuard()
    app.on_response_prepare.append(_on_prepare)
    app.on_shutdown.append(rdv.close_all)

    async def recheck(app: web.Application) -> Any:
        task = asyncio.get_running_loop().create_task(rdv.recheck_officers(recheck_seconds))
        yield
        task.cancel()

    app.cleanup_ctx.append(recheck)
    app.router.add_get("/j/{token}", rdv.join)  # and HEAD: neither claims
    app.router.add_post("/j/{token}/claim", rdv.claim)
    app.router.add_get("/j/{token}/exit", rdv.quick_exit)
    app.router.add_post("/j/{token}/flag", rdv.flag)
    app.router.add_get("/healthz", rdv.health)
    app.router.add_get("/metrics", rdv.metrics_text)
    app.router.add_get("/ws/victim", rdv.victim_socket)
    app.router.add_get("/ws/officer", rdv.officer_socket)
    app.router.add_post("/api/links", rdv.issue)
    app.router.add_delete("/api/links/{appointment}", rdv.revoke)
    if rdv.web_root is not None and rdv.web_root.is_dir():
        app.router.add_static("/web/", rdv.web_root, follow_symlinks=False, show_index=False)
    return app


async def start(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, ssl_context: Any = None,
    sock: Any = None, officer_port: int | None = None, officer_ssl_context: Any = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` from the running loop (the embedded default); returns the
    runner (``await runner.cleanup()`` to stop) and the port actually bound.
    ``sock``: a listening socket to serve on instead of binding ``host:port``
    (the app keeps one across media processes so the demo's links keep their
    address). There is no access log: request paths carry join tokens."""
    runner = GuardedRunner(app, app[GUARD], access_log=None)
    await runner.setup()
    site: web.BaseSite
    if sock is not None:
        site = web.SockSite(runner, sock, ssl_context=ssl_context)
    else:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1]
    if officer_ssl_context is not None:
        # The officers' listener: mutual TLS (officers.officer_tls_context). The
        # same application; officer routes answer only a verified certificate.
        officers = web.TCPSite(runner, host, officer_port or 0, ssl_context=officer_ssl_context)
        await officers.start()
        app[GUARD].uncapped_ports.add(runner.addresses[-1][1])
    return runner, bound


def run(app: web.Application, host: str, port: int, ssl_context: Any = None, officer_port: int | None = None,
        officer_ssl_context: Any = None) -> None:
    """Serve until interrupted (the ``evr-rendezvous`` service), its connections
    guarded (``guard.py``: request deadline, per-address cap)."""

    async def serve() -> None:
        runner, _port = await start(app, host, port, ssl_context, officer_port=officer_port,
                                    officer_ssl_context=officer_ssl_context)
        try:
            await asyncio.Event().wait()  # until cancelled (SIGINT, SIGTERM)
        finally:
            await runner.cleanup()

    import signal

    loop = asyncio.new_event_loop()
    task = loop.create_task(serve())
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C still raises KeyboardInterrupt
            pass
    try:
        loop.run_until_complete(task)
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    finally:
        loop.close()
