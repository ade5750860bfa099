"""The GOV.UK Notify-style gateway adapter against a fake Notify on loopback.

The fake runs aiohttp on 127.0.0.1 (a random port) on its own thread, checks
every request's JWT (HS256 signature, ``iss``, ``iat`` within 30 s, as Notify
does), records what it got, and answers as it is told: 201, 400, 403, 429,
500, a redirect, a request that never answers, or a body that drips in. A
guard (autouse) refuses and records any connection to, or name lookup of,
anything but loopback, so nothing here can reach a real gateway.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web

from evr_desktop.domain.sms import compose
from evr_desktop.notify import gateway as gw
from evr_desktop.notify.base import SendStatus
from evr_desktop.notify.gateway import SMS_PATH, GatewayConfig, NotifyGateway

SERVICE = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
NUMBER = "+447700900321"
LINK = "https://evr.testshire.police.uk/j/Zq3xY7bN1vK8pL0sT4uW6rA2cE5gH9jM"
TEXT = compose("Testshire Police", datetime(2026, 3, 3, 14, 30), LINK).text
APPT = "5f0c1e9a7d2b4c3e8a6f9b1d2c3e4f50"
HANG = 30.0  # how long a "timeout" request would hang if the client did not give up


# -- the network guard ----------------------------------------------------------

def _loopback(host: Any) -> bool:
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    allowed: list[Any] = field(default_factory=list)
    refused: list[Any] = field(default_factory=list)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch) -> Iterator[Guard]:
    guard = Guard()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _loopback(host.decode() if isinstance(host, bytes) else host):
            guard.refused.append(("lookup", host))
            raise socket.gaierror(socket.EAI_NONAME, "refused by the test's loopback guard")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            if not _loopback(address[0]):
                guard.refused.append(("connect", address))
                raise ConnectionRefusedError("refused by the test's loopback guard")
            guard.allowed.append(address)

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    assert all(_loopback(a[0]) for a in guard.allowed)


# -- the fake Notify ------------------------------------------------------------

def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_jwt(authorization: str, service_id: str, secret: str, now: float) -> str | None:
    """None when the token is good; else what is wrong (as Notify would say)."""
    if not authorization.startswith("Bearer "):
        return "Unauthorized: authentication token must be provided"
    token = authorization[len("Bearer "):]
    try:
        header_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(claims_b64))
        signature = _unb64(sig_b64)
    except ValueError:
        return "Invalid token: malformed"
    if header != {"typ": "JWT", "alg": "HS256"}:
        return "Invalid token: algorithm"
    expected = hmac.new(secret.encode(), f"{header_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return "Invalid token: signature, api token not found"
    if claims.get("iss") != service_id:
        return "Invalid token: service not found"
    iat = claims.get("iat")
    if not isinstance(iat, int):
        return "Invalid token: iat missing"
    if abs(now - iat) > 30:
        return "Error: Your system clock must be accurate to within 30 seconds"
    return None


@dataclass
class Request:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    jwt_problem: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeNotify:
    ERRORS = {
        "400": (400, "ValidationError", "phone_number Not a UK mobile number"),
        "400-template": (400, "BadRequestError", "Template not found"),
        "400-team": (400, "BadRequestError", "Can't send to this recipient using a team-only API key"),
        "403": (403, "AuthError", "Invalid token: API key not found"),
        "404": (404, "NoResultFound", "No result found"),
        "429": (429, "RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"),
        "500": (500, "Exception", "Internal server error"),
        "503": (503, "Exception", "Service unavailable"),
    }

    def __init__(self, service_id: str = SERVICE, secret: str = SECRET):
        self.service_id, self.secret = service_id, secret
        self.script: list[str] = []  # one behaviour per request; "201" once it runs out
        self.requests: list[Request] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-notify", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)

    async def _start(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            self._release.set()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @staticmethod
    def _error(status: int, kind: str, message: str) -> web.Response:
        return web.json_response(
            {"status_code": status, "errors": [{"error": kind, "message": message}]}, status=status
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        problem = check_jwt(request.headers.get("Authorization", ""), self.service_id, self.secret, time.time())
        self.requests.append(
            Request(time.monotonic(), request.method, request.path, dict(request.headers), body, problem)
        )
        if request.method != "POST" or request.path != SMS_PATH:
            return self._error(404, "NoResultFound", "No result found")
        if problem:
            return self._error(403, "AuthError", problem)
        behaviour = self.script.pop(0) if self.script else "201"
        if behaviour == "201":
            doc = json.loads(body)
            return web.json_response(
                {
                    "id": str(uuid.uuid4()),
                    "reference": doc.get("reference"),
                    "content": {"body": "(the rendered template)", "from_number": "GOVUK"},
                    "uri": f"{self.base_url}/v2/notifications/x",
                    "template": {"id": doc["template_id"], "version": 1, "uri": "x"},
                },
                status=201,
            )
        if behaviour == "timeout":  # never answers (until the server stops)
            try:
                await asyncio.wait_for(self._release.wait(), HANG)
            except TimeoutError:
                pass
            return self._error(500, "Exception", "too late")
        if behaviour == "drip":  # headers at once, then a byte every 0.2 s for ever
            response = web.StreamResponse(status=201, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for _ in range(int(HANG / 0.2)):
                if self._release.is_set():
                    break
                await response.write(b" ")
                await asyncio.sleep(0.2)
            return response
        if behaviour == "302":
            raise web.HTTPFound(f"{self.base_url}/elsewhere")
        if behaviour == "garbage":
            return web.Response(status=500, body=b"\x00<html>not json")
        return self._error(*self.ERRORS[behaviour])


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    fake = FakeNotify()
    fake.start()
    yield fake
    fake.stop()


FAST = dict(connect_timeout=0.5, total_timeout=1.0, backoff=0.05, max_backoff=0.2)


def make_gateway(fake: FakeNotify, **kwargs: Any) -> NotifyGateway:
    clock = kwargs.pop("clock", time.time)
    settings = {**FAST, **kwargs}
    secret = settings.pop("secret", SECRET)
    return NotifyGateway(GatewayConfig(SERVICE, secret, TEMPLATE, base_url=fake.base_url, **settings), clock=clock)


def on_worker(g: NotifyGateway, to: str = NUMBER, text: str = TEXT):
    """As the app calls it: from a worker thread, never the GUI or the engine loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(g.send, APPT, to, text).result(60)


@pytest.fixture(autouse=True)
def no_secrets_in_logs(caplog) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    token = LINK.rsplit("/", 1)[1]
    for secret in (NUMBER, NUMBER[1:], "7700900321", token, SECRET, "Bearer", "Testshire"):
        assert secret not in logged, f"{secret!r} was logged"


# -- tests ------------------------------------------------------------------------

def test_success_posts_notify_json_with_a_valid_jwt(notify, loopback_only, caplog):
    result = on_worker(make_gateway(notify))
    assert result.status is SendStatus.SENT and result.ok
    assert result.message == gw.MSG_SENT
    uuid.UUID(result.provider_id)
    [req] = notify.requests
    assert (req.method, req.path, req.jwt_problem) == ("POST", "/v2/notifications/sms", None)
    assert req.headers["Content-Type"].startswith("application/json")
    assert req.json == {
        "phone_number": NUMBER,
        "template_id": TEMPLATE,
        "personalisation": {"body": TEXT},
        "reference": APPT,
    }
    claims = json.loads(_unb64(req.headers["Authorization"].split(".")[1]))
    assert claims["iss"] == SERVICE and abs(claims["iat"] - time.time()) < 5
    assert loopback_only.allowed and not loopback_only.refused
    assert APPT in caplog.text and result.provider_id in caplog.text  # logs carry IDs


@pytest.mark.parametrize(
    "behaviour, message",
    [
        ("400", gw.MSG_BAD_NUMBER),
        ("400-team", gw.MSG_TEAM_ONLY),
        ("400-template", gw.MSG_BAD_REQUEST.format(detail="BadRequestError")),
        ("403", gw.MSG_AUTH),
        ("429", gw.MSG_RATE_LIMITED),
        ("404", gw.MSG_REFUSED.format(status=404)),
        ("302", gw.MSG_REDIRECT),
    ],
)
def test_each_4xx_is_a_plain_message_and_is_not_retried(notify, behaviour, message):
    notify.script = [behaviour, "201"]
    result = on_worker(make_gateway(notify))
    assert result.status is SendStatus.FAILED and result.provider_id is None
    assert result.message == message
    assert "Traceback" not in result.message and "Not a UK mobile" not in result.message
    assert len(notify.requests) == 1  # no retry, and the redirect was not followed
    assert notify.script == ["201"]


def test_wrong_key_is_refused_by_the_signature_check(notify):
    result = on_worker(make_gateway(notify, secret="0" * 36))
    assert result.message == gw.MSG_AUTH
    assert [r.jwt_problem for r in notify.requests] == ["Invalid token: signature, api token not found"]


def test_a_clock_out_by_a_minute_is_refused_on_iat(notify):
    result = on_worker(make_gateway(notify, clock=lambda: time.time() - 60))
    assert result.message == gw.MSG_AUTH
    assert "30 seconds" in notify.requests[0].jwt_problem


def test_retries_on_500_then_succeeds_with_back_off_and_fresh_tokens(notify):
    notify.script = ["500", "503", "201"]
    result = on_worker(make_gateway(notify, backoff=0.1, max_backoff=0.4))
    assert result.status is SendStatus.SENT
    assert len(notify.requests) == 3 and all(r.jwt_problem is None for r in notify.requests)
    gaps = [b.at - a.at for a, b in itertools.pairwise(notify.requests)]
    assert gaps[0] >= 0.1 * 0.75 and gaps[1] >= 0.2 * 0.75  # doubling, with at most 25 % jitter off
    assert len({r.body for r in notify.requests}) == 1  # the same message each time


def test_gives_up_after_the_bounded_attempts_on_5xx(notify):
    notify.script = ["500", "garbage", "500", "201"]
    result = on_worker(make_gateway(notify))
    assert result.status is SendStatus.FAILED
    assert result.message == gw.MSG_SERVER.format(attempts=3)
    assert len(notify.requests) == 3 and notify.script == ["201"]


def test_a_gateway_that_never_answers_is_given_up_within_the_bound(notify):
    notify.script = ["timeout"] * 3
    g = make_gateway(notify)
    started = time.monotonic()
    result = on_worker(g)
    elapsed = time.monotonic() - started
    assert result.message == gw.MSG_TIMEOUT.format(attempts=3)
    assert len(notify.requests) == 3
    assert 3 * FAST["total_timeout"] <= elapsed <= g.config.worst_case_seconds() + 1.0


def test_a_body_that_drips_in_is_bounded_by_the_total_timeout(notify):
    notify.script = ["drip"]
    g = make_gateway(notify, max_attempts=1)
    started = time.monotonic()
    result = on_worker(g)
    assert result.message == gw.MSG_TIMEOUT.format(attempts=1)
    assert time.monotonic() - started < FAST["total_timeout"] + 0.5  # not one timeout per read


def test_a_timeout_then_an_answer_is_a_success(notify):
    notify.script = ["timeout", "201"]
    assert on_worker(make_gateway(notify)).status is SendStatus.SENT
    assert len(notify.requests) == 2


def test_nothing_listening_is_unreachable_not_a_traceback(notify):
    with socket.socket() as s:  # a loopback port with no server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = NotifyGateway(GatewayConfig(SERVICE, SECRET, TEMPLATE, base_url=f"http://127.0.0.1:{port}", **FAST))
    result = on_worker(g)
    assert result.message == gw.MSG_UNREACHABLE.format(attempts=3)


def test_the_real_gateway_is_never_contacted(loopback_only):
    """The default address is GOV.UK Notify's: the guard refuses it, so this
    also shows the guard works, and the officer gets a plain message."""
    g = NotifyGateway(replace(GatewayConfig(SERVICE, SECRET, TEMPLATE), **FAST))
    result = on_worker(g)
    assert result.message == gw.MSG_UNREACHABLE.format(attempts=3)
    assert loopback_only.refused and not loopback_only.allowed


def test_send_async_on_a_loop_and_send_refuses_to_block_one(notify):
    g = make_gateway(notify)

    async def main():
        with pytest.raises(RuntimeError, match="blocks"):
            g.send(APPT, NUMBER, TEXT)
        return await g.send_async(APPT, NUMBER, TEXT)

    assert asyncio.run(main()).status is SendStatus.SENT
    assert len(notify.requests) == 1


def test_concurrent_sends_from_several_workers(notify):
    g = make_gateway(notify)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: g.send(f"appt-{i}", NUMBER, TEXT), range(8)))
    assert all(r.status is SendStatus.SENT for r in results)
    assert sorted(r.json["reference"] for r in notify.requests) == sorted(f"appt-{i}" for i in range(8))
