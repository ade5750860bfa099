"""Time-limited TURN credentials for coturn's ``use-auth-secret`` (TURN REST API).

coturn, started with ``--use-auth-secret --static-auth-secret=S``, accepts
any username of the form ``"<expiry unix time>:<anything>"`` whose password is
``base64(HMAC-SHA1(S, username))``, until that expiry time. The rendezvous
holds ``S`` and hands each side of a call a username made from the expiry and
an opaque id (the join link's public ``link_id``: never the appointment id,
a name or anything else identifying), so coturn's logs show only that id.

Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

MIN_TTL = 60  # a call set-up needs more than a minute's grace
MAX_TTL = 24 * 3600  # coturn accepts any expiry; a leaked credential should not live for days
MIN_SECRET = 16

# RFC 7065: turn:host[:port][?transport=udp|tcp], turns:host[:port][?transport=tcp].
# Host: a name, an IPv4 address or a bracketed IPv6 address. No user info, path or fragment.
_URL = re.compile(
    r"^(?P<scheme>turns?):"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?$"
)
_OPAQUE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_turn_url(url: str) -> str:
    """``url`` if it is a ``turn:`` or ``turns:`` URL (RFC 7065), else ValueError."""
    if not isinstance(url, str):
        raise ValueError("a TURN URL must be text")
    m = _URL.match(url)
    if m is None or unquote(url) != url:
        raise ValueError(
            f"not a TURN URL: {url[:80]!r} (expected turn:host[:port][?transport=udp|tcp] "
            "or turns:host[:port][?transport=tcp])"
        )
    port = m.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"TURN URL port out of range: {url[:80]!r}")
    if m.group("scheme") == "turns" and m.group("transport") == "udp":
        raise ValueError(f"turns: runs over TCP (TLS) only: {url[:80]!r}")
    return url


@dataclass(frozen=True)
class TurnConfig:
    """The TURN servers phones and the officer's app are given, and coturn's
    ``static-auth-secret``. ``ttl_seconds``: how long a credential stays good."""

    urls: list[str]
    secret: str = field(repr=False)
    ttl_seconds: int = 3600

    def __post_init__(self) -> None:
        if isinstance(self.urls, str) or not self.urls:
            raise ValueError("TurnConfig.urls must be a non-empty list of turn:/turns: URLs")
        object.__setattr__(self, "urls", [check_turn_url(u) for u in self.urls])
        if not isinstance(self.secret, str) or len(self.secret) < MIN_SECRET:
            raise ValueError(f"the TURN secret must be at least {MIN_SECRET} characters")
        ttl = self.ttl_seconds
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
            raise ValueError(f"ttl_seconds must be an integer {MIN_TTL}-{MAX_TTL}")


def credential_for(secret: str, username: str) -> str:
    """coturn's REST-API password: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers_for(config: TurnConfig, opaque_id: str, now: float) -> list[dict[str, Any]]:
    """The WebRTC ``iceServers`` list for one side of one call, good until
    ``now + config.ttl_seconds`` (``now``: Unix time in seconds)."""
    if not isinstance(opaque_id, str) or not _OPAQUE.match(opaque_id):
        raise ValueError("the opaque id must be 1-64 characters of [A-Za-z0-9_-]")
    expiry = int(now) + config.ttl_seconds
    username = f"{expiry}:{opaque_id}"
    return [
        {
            "urls": list(config.urls),
            "username": username,
            "credential": credential_for(config.secret, username),
        }
    ]
