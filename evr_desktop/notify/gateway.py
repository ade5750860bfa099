"""An SMS gateway adapter in the style of GOV.UK Notify.

``POST {base_url}/v2/notifications/sms`` with JSON::

    {"phone_number": "+447700900123", "template_id": "<uuid>",
     "personalisation": {"body": "<the composed text>"}, "reference": "<appointment id>"}

and ``Authorization: Bearer <JWT>``: HS256 over ``{"iss": service id, "iat":
now}``, signed with the API key's secret (Notify refuses a token whose ``iat``
is more than 30 seconds from its clock, so a fresh token is made per attempt).
The JWT is made here with ``hmac``/``hashlib``/``base64``: no new dependency.
The Notify template is expected to be ``((body))``: the text is composed once
by ``domain/sms.py``, so the outbox and the gateway send the same words. The
appointment id goes as ``reference`` (an opaque id, nothing about the victim).

Behaviour:

- Timeouts per attempt: connect 5 s, total 15 s (``GatewayConfig``).
- Retries, with exponential back-off and jitter, only where sending again is
  the right thing: a 5xx answer, a timeout, or a connection that failed. A
  4xx is final: 400 (the number or the request), 401/403 (the key), 429 (the
  rate limit: waiting a minute is the officer's call, not a retry loop's).
  A timeout after the gateway accepted the message can, rarely, mean the
  victim gets the text twice; that is preferred to not getting it at all.
- Redirects are not followed (the bearer token and the number go to the
  configured host or nowhere), the environment's proxy settings are ignored
  (``trust_env=False``), and plain ``http://`` is refused except on loopback.
- ``send`` returns a :class:`SendResult` with plain words; it never raises for
  a network or gateway problem. Logs carry the appointment id, the attempt,
  the HTTP status and the gateway's notification id, never the number, the
  text, the link or the key.

Synchronous API built on aiohttp: ``send`` runs its own short-lived event loop
(``asyncio.run``), so call it from a worker thread; ``send_async`` is there for
code already on a loop (the engine thread). aiohttp because its
``ClientTimeout`` bounds connect and *total* time, which ``urllib`` cannot (its
timeout applies to each socket operation, so a slow-drip server could hold a
send for ever).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..domain.sms import SmsTooLong, check_length, is_e164_uk_mobile
from .base import SendResult, SendStatus, failed

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"
SMS_PATH = "/v2/notifications/sms"
MAX_RESPONSE_BYTES = 64 * 1024
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_TOKEN_WORD = re.compile(r"[A-Za-z]{1,40}")

# What the officer reads. No gateway text is passed through: it could, in
# principle, echo the number or the message.
MSG_SENT = "The text was sent to the victim's phone through the SMS gateway."
MSG_BAD_NUMBER = (
    "The SMS gateway refused the mobile number. Check it with the victim and send again, "
    "or use the outbox to send the text from your work phone."
)
MSG_TEAM_ONLY = (
    "The SMS gateway account can only text its own team (a trial or team-only key). "
    "Ask IT for a live key; meanwhile use the outbox."
)
MSG_BAD_REQUEST = (
    "The SMS gateway refused the message ({detail}). Check the gateway's template setting or call IT; "
    "meanwhile use the outbox."
)
MSG_AUTH = (
    "The SMS gateway did not accept the app's key. Ask IT to check the gateway API key and service "
    "ID in the settings; meanwhile use the outbox."
)
MSG_RATE_LIMITED = (
    "The SMS gateway is limiting how many texts can be sent just now. Wait a minute and send again."
)
MSG_REFUSED = "The SMS gateway refused the message (HTTP {status}). Call IT; meanwhile use the outbox."
MSG_REDIRECT = "The SMS gateway address in the settings is out of date (it redirects). Call IT."
MSG_SERVER = (
    "The SMS gateway is not working just now (tried {attempts} times). The text was not sent: "
    "try again later or use the outbox."
)
MSG_TIMEOUT = (
    "The SMS gateway did not answer in time (tried {attempts} times). The text was probably not sent: "
    "try again later or use the outbox."
)
MSG_UNREACHABLE = (
    "The SMS gateway could not be reached (tried {attempts} times). Check the network, "
    "or use the outbox."
)


class GatewayConfigError(ValueError):
    """A gateway setting that cannot work; the message says which."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class GatewayConfig:
    service_id: str
    secret_key: str = field(repr=False)
    template_id: str
    base_url: str = DEFAULT_BASE_URL
    personalisation_key: str = "body"
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_attempts: int = 3
    backoff: float = 1.0  # the first wait; doubled for each retry after it
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise GatewayConfigError("The SMS gateway address must be an https:// web address.")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise GatewayConfigError(
                "The SMS gateway address must use https:// (plain http is only allowed on this machine)."
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise GatewayConfigError("The SMS gateway address must not carry a query, fragment or password.")
        for name in ("service_id", "template_id"):
            if not _UUID.fullmatch(getattr(self, name)):
                raise GatewayConfigError(f"The gateway {name.replace('_', ' ')} must be a UUID.")
        if len(self.secret_key) < 16:
            raise GatewayConfigError("The gateway secret key is missing or too short.")
        if not 0 < self.connect_timeout <= self.total_timeout <= 120:
            raise GatewayConfigError("Gateway timeouts must satisfy 0 < connect <= total <= 120 seconds.")
        if not 1 <= self.max_attempts <= 6:
            raise GatewayConfigError("Gateway attempts must be between 1 and 6.")
        if not 0 <= self.backoff <= self.max_backoff <= 60:
            raise GatewayConfigError("Gateway back-off must satisfy 0 <= backoff <= max_backoff <= 60 seconds.")

    @classmethod
    def from_api_key(cls, api_key: str, template_id: str, **kwargs: Any) -> GatewayConfig:
        """From a Notify API key, ``{key name}-{service id}-{secret}`` (both UUIDs)."""
        key = api_key.strip()
        if len(key) < 74 or key[-37] != "-" or not _UUID.fullmatch(key[-73:-37]) or not _UUID.fullmatch(key[-36:]):
            raise GatewayConfigError(
                "That is not a GOV.UK Notify API key (key name, then the service ID and the secret)."
            )
        return cls(service_id=key[-73:-37], secret_key=key[-36:], template_id=template_id, **kwargs)

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + SMS_PATH

    def backoff_for(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based), before jitter."""
        return min(self.max_backoff, self.backoff * 2 ** (retry - 1))

    def worst_case_seconds(self) -> float:
        """The longest ``send`` can take: every attempt times out, every wait at its longest."""
        waits = sum(self.backoff_for(r) * 1.25 for r in range(1, self.max_attempts))
        return self.max_attempts * self.total_timeout + waits


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(service_id: str, secret_key: str, issued_at: float) -> str:
    """The HS256 JWT GOV.UK Notify expects: ``iss`` the service id, ``iat`` now."""
    header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"iss": service_id, "iat": int(issued_at)}, separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode("ascii")
    signature = hmac.new(secret_key.encode("utf-8"), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(signature)}"


def _error_details(raw: bytes) -> tuple[list[str], list[str]]:
    """The ``errors[].error`` and ``errors[].message`` of a Notify error body."""
    try:
        doc = json.loads(raw)
        errors = doc.get("errors") if isinstance(doc, dict) else None
    except (ValueError, UnicodeDecodeError):
        return [], []
    kinds, messages = [], []
    for e in errors if isinstance(errors, list) else []:
        if isinstance(e, dict):
            kinds.append(str(e.get("error", "")))
            messages.append(str(e.get("message", "")))
    return kinds, messages


async def _read_bounded(stream: Any, limit: int) -> bytes:
    """The whole body, or its first ``limit`` bytes: within the total timeout either way."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _final_4xx(status: int, raw: bytes) -> str:
    if status == 400:
        kinds, messages = _error_details(raw)
        joined = " ".join(messages).lower()
        if "team-only" in joined or "trial mode" in joined or "team only" in joined:
            return MSG_TEAM_ONLY
        if not messages or "phone_number" in joined or "phone number" in joined or "mobile" in joined:
            return MSG_BAD_NUMBER
        detail = next((k for k in kinds if _TOKEN_WORD.fullmatch(k)), "bad request")
        return MSG_BAD_REQUEST.format(detail=detail)
    if status in (401, 403):
        return MSG_AUTH
    if status == 429:
        return MSG_RATE_LIMITED
    return MSG_REFUSED.format(status=status)


class NotifyGateway:
    """A :class:`~evr_desktop.notify.base.Notifier` that posts to a Notify-style API."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()

    def send(self, appointment_id: str, to_e164: str, text: str) -> SendResult:
        """Blocking: run it on a worker thread (see the module docstring)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.send_async(appointment_id, to_e164, text))
        raise RuntimeError("NotifyGateway.send blocks: call send_async on an event loop thread.")

    async def send_async(self, appointment_id: str, to_e164: str, text: str) -> SendResult:
        try:
            return await self._send(appointment_id, to_e164, text)
        except Exception as exc:  # never a traceback to the officer
            log.error("gateway: appointment %s: unexpected %s", appointment_id, type(exc).__name__)
            return failed("The text was not sent because of an unexpected problem; use the outbox or call IT.")

    async def _send(self, appointment_id: str, to_e164: str, text: str) -> SendResult:
        import aiohttp

        if not is_e164_uk_mobile(to_e164):
            return failed("The text was not sent: the number is not a UK mobile number (07...).")
        try:
            check_length(text)
        except SmsTooLong as exc:
            return failed(f"The text was not sent. {exc}")
        cfg = self.config
        payload = {
            "phone_number": to_e164,
            "template_id": cfg.template_id,
            "personalisation": {cfg.personalisation_key: text},
            "reference": appointment_id,
        }
        timeout = aiohttp.ClientTimeout(
            total=cfg.total_timeout, connect=cfg.connect_timeout, sock_connect=cfg.connect_timeout
        )
        last = "unreachable"
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            for attempt in range(1, cfg.max_attempts + 1):
                if attempt > 1:
                    await asyncio.sleep(self._wait(attempt - 1))
                headers = {
                    "Authorization": f"Bearer {make_jwt(cfg.service_id, cfg.secret_key, self._clock())}",
                    "User-Agent": "evr-desktop",
                }
                try:
                    async with session.post(
                        cfg.url, json=payload, headers=headers, allow_redirects=False
                    ) as response:
                        status = response.status
                        raw = await _read_bounded(response.content, MAX_RESPONSE_BYTES)
                except TimeoutError:  # aiohttp's timeouts subclass it
                    last = "timeout"
                    log.warning("gateway: appointment %s: attempt %d timed out", appointment_id, attempt)
                    continue
                except (aiohttp.ClientError, OSError) as exc:
                    last = "unreachable"
                    log.warning(
                        "gateway: appointment %s: attempt %d could not connect (%s)",
                        appointment_id, attempt, type(exc).__name__,
                    )
                    continue
                if 200 <= status < 300:
                    provider_id = self._notification_id(raw)
                    log.info(
                        "gateway: appointment %s: accepted as notification %s (HTTP %d, attempt %d)",
                        appointment_id, provider_id, status, attempt,
                    )
                    return SendResult(SendStatus.SENT, provider_id, MSG_SENT)
                if status >= 500:
                    last = "server"
                    log.warning("gateway: appointment %s: attempt %d got HTTP %d", appointment_id, attempt, status)
                    continue
                log.warning("gateway: appointment %s: refused with HTTP %d (not retried)", appointment_id, status)
                if 300 <= status < 400:
                    return failed(MSG_REDIRECT)
                return failed(_final_4xx(status, raw))
        message = {"timeout": MSG_TIMEOUT, "server": MSG_SERVER}.get(last, MSG_UNREACHABLE)
        log.warning("gateway: appointment %s: gave up after %d attempts (%s)", appointment_id, cfg.max_attempts, last)
        return failed(message.format(attempts=cfg.max_attempts))

    def _wait(self, retry: int) -> float:
        base = self.config.backoff_for(retry)
        return base * (0.75 + 0.5 * self._rng.random())  # +/- 25 % so many senders do not retry in step

    @staticmethod
    def _notification_id(raw: bytes) -> str | None:
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        value = doc.get("id") if isinstance(doc, dict) else None
        return value if isinstance(value, str) and _UUID.fullmatch(value) else None
