"""The rendezvous over real sockets on loopback: join links, the waiting room,
the signalling relay, and bad input of every kind, after each of which the
server must still serve another appointment.

Plain ``asyncio.run`` in sync tests (no pytest-asyncio); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import re
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from evr_desktop.rendezvous.server import COOKIE, Limits, create_app, start
from evr_desktop.rendezvous.tokens import Reason, TokenRegistry

SECRET = "officer-secret-for-tests-0123456789"
SLOT = datetime(2025, 3, 4, 14, 0, tzinfo=timezone.utc)
NO_WEB_ROOT = Path("/nonexistent/evr-web")  # the built-in placeholder page, whatever resources/web holds
WAIT = 3.0  # seconds: the longest any single expectation may take


@dataclass
class Clock:
    now: datetime = SLOT

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    registry: TokenRegistry
    base: str
    clock: Clock
    http: aiohttp.ClientSession
    counter: int = 0
    sockets: list = field(default_factory=list)
    last_set_cookie: str = ""
    last_token: str = ""

    def link(self, appt: str | None = None) -> tuple[str, str]:
        if appt is None:
            self.counter += 1
            appt = f"appt-{self.counter}"
        token, _ = self.registry.issue(appt, SLOT, SLOT + timedelta(minutes=45), self.clock())
        return appt, token

    async def open_link(self, token: str, cookie: str | None = None, **headers: str):
        """The phone opens the link (a GET, which claims nothing) and, if the
        page came, the victim agrees (the page's POST, which claims it):
        (the GET's response, its text, the device cookie set by the claim)."""
        h = dict(headers)
        if cookie:
            h["Cookie"] = f"{COOKIE}={cookie}"
        async with self.http.get(f"{self.base}/j/{token}", headers=h) as r:
            text = await r.text()
            assert COOKIE not in r.cookies and "Set-Cookie" not in r.headers
        if r.status != 200:
            return r, text, None
        async with self.http.post(f"{self.base}/j/{token}/claim", headers=h) as claimed:
            assert claimed.status == 200, claimed.status
            self.last_set_cookie = claimed.headers["Set-Cookie"]
            morsel = claimed.cookies.get(COOKIE)
            return r, text, (morsel.value if morsel else cookie)

    async def officer(self, secret: str = SECRET) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(
            f"{self.base}/ws/officer", headers={"Authorization": f"Bearer {secret}"}
        )
        self.sockets.append(ws)
        assert (await recv(ws, "welcome"))["type"] == "welcome"
        return ws

    async def victim_socket(self, cookie: str) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(f"{self.base}/ws/victim", headers={"Cookie": f"{COOKIE}={cookie}"})
        self.sockets.append(ws)
        return ws

    async def victim(self, appt: str | None = None) -> tuple[str, str, aiohttp.ClientWebSocketResponse]:
        """A victim who opens a fresh link and waits: (appointment, cookie, socket)."""
        appt, token = self.link(appt)
        self.last_token = token
        r, _, cookie = await self.open_link(token)
        assert r.status == 200 and cookie
        ws = await self.victim_socket(cookie)
        assert (await recv(ws, "waiting"))["type"] == "waiting"
        return appt, cookie, ws


async def recv(ws: aiohttp.ClientWebSocketResponse, kind: str | None = None, timeout: float = WAIT) -> dict:
    """The next message (of type ``kind``, skipping others); fails on close."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                raise AssertionError(f"socket closed ({msg.type.name}, code {ws.close_code}) waiting for {kind}")
            data = json.loads(msg.data)
            if kind is None or data["type"] == kind:
                return data


async def closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = WAIT) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                return ws.close_code


def vanish(ws: aiohttp.ClientWebSocketResponse) -> None:
    """The phone's battery dies: the TCP connection is cut with no goodbye."""
    ws._conn.transport.abort()


@contextlib.asynccontextmanager
async def serving(limits: Limits | None = None, **kw: Any) -> AsyncIterator[Harness]:
    registry = TokenRegistry()
    clock = Clock()
    app = create_app(registry, SECRET, limits=limits, clock=clock, web_root=kw.pop("web_root", NO_WEB_ROOT), **kw)
    runner, port = await start(app, "127.0.0.1", 0)
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    h = Harness(registry, f"http://127.0.0.1:{port}", clock, http)
    try:
        yield h
    finally:
        for ws in h.sockets:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 1)
        await http.close()
        await asyncio.wait_for(runner.cleanup(), 5)


def run(coro) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 12))


async def call_works(h: Harness, officer: aiohttp.ClientWebSocketResponse, appt: str, victim) -> None:
    """Offer, answer, ICE and chat go both ways between officer and victim."""
    await officer.send_json({"type": "offer", "appointment": appt, "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})
    got = await recv(victim, "offer")
    assert got == {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}
    await victim.send_json({"type": "answer", "sdp": "v=0\r\nanswer\r\n", "smuggled": "x"})
    assert await recv(officer, "answer") == {"type": "answer", "sdp": "v=0\r\nanswer\r\n", "appointment": appt}
    cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    await officer.send_json({"type": "ice", "appointment": appt, **cand})
    assert (await recv(victim, "ice"))["candidate"] == cand["candidate"]
    await victim.send_json({"type": "ice", **cand})
    assert (await recv(officer, "ice"))["appointment"] == appt
    await victim.send_json({"type": "chat", "text": "I can't talk, typing instead"})
    assert (await recv(officer, "chat"))["text"] == "I can't talk, typing instead"
    await officer.send_json({"type": "chat", "appointment": appt, "text": "Thank you. Take your time."})
    assert (await recv(victim, "chat"))["text"] == "Thank you. Take your time."


async def still_serving(h: Harness, officer=None) -> None:
    """Another appointment can still be set up from scratch."""
    own = officer is None or officer.closed
    if own:
        officer = await h.officer()
    appt, _, victim = await h.victim()
    while (await recv(officer, "victim_waiting"))["appointment"] != appt:
        pass  # others may be waiting too
    await call_works(h, officer, appt, victim)
    await victim.close()
    if own:
        await officer.close()


# --- the happy path ----------------------------------------------------------------


def test_happy_path_waiting_room_relay_and_bye():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, token = h.link()
            r, page, cookie = await h.open_link(token)
            assert r.status == 200 and "Joining" in page
            set_cookie = h.last_set_cookie
            assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
            assert "Secure" not in set_cookie  # plain http on loopback
            opened = await recv(officer, "link_opened")
            assert opened["appointment"] == appt and opened["first"] is True
            # A reload on the same phone is fine.
            r2, _, _ = await h.open_link(token, cookie)
            assert r2.status == 200

            victim = await h.victim_socket(cookie)
            assert await recv(victim, "waiting") == {"type": "waiting", "officer": True}
            assert (await recv(officer, "victim_waiting"))["appointment"] == appt
            await victim.send_json({"type": "hello", "lang": "cy"})
            assert await recv(officer, "hello") == {"type": "hello", "lang": "cy", "appointment": appt}
            await call_works(h, officer, appt, victim)
            await victim.send_json({"type": "flag", "kind": "cannot-talk"})
            assert (await recv(officer, "flag"))["appointment"] == appt
            # the phone's network changed: it asks the officer's app to restart ICE
            await victim.send_json({"type": "restart", "extra": "dropped"})
            assert await recv(officer, "restart") == {"type": "restart", "appointment": appt}

            await officer.send_json({"type": "bye", "appointment": appt})
            assert (await recv(victim, "bye"))["type"] == "bye"
            assert await closed(victim) == 1000
            # The link is spent now, even on the phone that used it.
            r3, page3, _ = await h.open_link(token, cookie)
            assert r3.status == 410 and "finished" in page3
            assert (await recv(officer, "link_refused"))["reason"] == "used"
            again = await h.victim_socket(cookie)
            assert (await recv(again, "refused"))["reason"] == "used"
            assert await closed(again) == 4403

    run(main())


def test_opening_a_link_claims_nothing_only_the_victims_post_does():
    """SMS previews and URL scanners GET and HEAD links: none of that may lock
    the victim out or tell the officer the link was opened."""

    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, token = h.link()
            for _ in range(3):
                async with h.http.head(f"{h.base}/j/{token}") as r:
                    assert r.status == 200 and "Set-Cookie" not in r.headers
                async with h.http.get(f"{h.base}/j/{token}") as r:
                    assert r.status == 200 and "Set-Cookie" not in r.headers
            # Another site's page cannot claim it on the victim's behalf.
            async with h.http.post(f"{h.base}/j/{token}/claim", headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403 and "Set-Cookie" not in r.headers
            with pytest.raises(asyncio.TimeoutError):  # nothing reached the officer
                await recv(officer, timeout=0.3)
            # The victim's phone: the page, then agreeing, from the page's own origin.
            r, _, cookie = await h.open_link(token, Origin=h.base)
            assert r.status == 200 and cookie
            assert (await recv(officer, "link_opened"))["first"] is True
            # Now it is that phone's: a preview fetched later is refused, the phone is not.
            async with h.http.get(f"{h.base}/j/{token}") as r:
                assert r.status == 403
            assert (await recv(officer, "link_refused"))["reason"] == "second-device"
            async with h.http.post(f"{h.base}/j/{token}/claim") as r:
                assert r.status == 403 and (await r.json()) == {"refused": "second-device"}
            r, _, again = await h.open_link(token, cookie)
            assert r.status == 200 and again == cookie
            assert (await recv(officer, "link_opened"))["first"] is False

    run(main())


def test_quick_exit_locks_the_link_clears_the_site_and_tells_the_officer():
    async def main():
        async with serving(neutral_url="https://weather.example.test/today") as h:
            officer = await h.officer()
            appt, cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            token = h.last_token
            # Someone else's browser (no cookie) cannot close a claimed link.
            async with h.http.get(f"{h.base}/j/{token}/exit", allow_redirects=False) as r:
                assert r.status == 303
            async with h.http.get(f"{h.base}/j/{token}", headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
                assert r.status == 200
            # The victim's quick exit.
            async with h.http.get(f"{h.base}/j/{token}/exit", allow_redirects=False,
                                  headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
                assert r.status == 303
                assert r.headers["Location"] == "https://weather.example.test/today"
                assert r.headers["Clear-Site-Data"] == '"cache", "cookies", "storage"'
                assert r.headers["Referrer-Policy"] == "no-referrer"
                gone = r.headers["Set-Cookie"]
                assert gone.startswith(f"{COOKIE}=") and ("Max-Age=0" in gone or "expires=" in gone.lower())
            assert (await recv(victim, "refused"))["reason"] == "closed"
            assert await closed(victim) == 4403
            exit_event = await recv(officer, "quick_exit")
            assert exit_event["appointment"] == appt
            # The same phone cannot open it again, with or without its cookie.
            for headers in ({"Cookie": f"{COOKIE}={cookie}"}, {}):
                async with h.http.get(f"{h.base}/j/{token}", headers=headers) as r:
                    assert r.status == 410 and "closed" in (await r.text())
                assert (await recv(officer, "link_refused"))["reason"] == "closed"
            back = await h.victim_socket(cookie)
            assert (await recv(back, "refused"))["reason"] == "closed"
            # An unknown token gets the same answer and changes nothing.
            async with h.http.get(f"{h.base}/j/{'x' * 32}/exit", allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Clear-Site-Data"]
            # Until the officer sends a new link.
            _, new_token = h.link(appt)
            r, _, new_cookie = await h.open_link(new_token)
            assert r.status == 200 and new_cookie

    run(main())


def test_quick_exit_while_no_officer_is_connected_is_held_for_them():
    async def main():
        async with serving() as h:
            appt, cookie, victim = await h.victim()
            async with h.http.get(f"{h.base}/j/{h.last_token}/exit", allow_redirects=False,
                                  headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
                assert r.status == 303 and r.headers["Location"].startswith("https://")
            officer = await h.officer()
            got = [await recv(officer) for _ in range(2)]
            assert [g["type"] for g in got] == ["link_opened", "quick_exit"]
            assert got[1]["appointment"] == appt and got[1]["held"] is True

    run(main())


def test_the_neutral_page_must_be_an_address_elsewhere():
    for bad in ("/web/neutral.html", "javascript:alert(1)", "weather", ""):
        with pytest.raises(ValueError):
            create_app(TokenRegistry(), SECRET, neutral_url=bad)


def test_victim_bye_leaves_the_link_usable_on_the_same_phone():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            await victim.send_json({"type": "bye"})
            assert (await recv(officer, "bye"))["appointment"] == appt
            assert await closed(victim) == 1000
            assert (await recv(officer, "victim_left"))["appointment"] == appt
            back = await h.victim_socket(cookie)
            assert (await recv(back, "waiting"))["officer"] is True

    run(main())


def test_victim_waits_before_the_officer_connects_and_events_are_held():
    async def main():
        async with serving() as h:
            appt, cookie, victim = await h.victim()
            # The same link opened on a second phone while no officer is connected.
            token_appt, token = h.link()
            await h.open_link(token)
            r, _, _ = await h.open_link(token)
            assert r.status == 403
            officer = await h.officer()
            assert (await recv(victim, "officer_joined"))["type"] == "officer_joined"
            got = [await recv(officer) for _ in range(4)]
            # Held events first (oldest first, marked), then who is waiting now.
            assert [g["type"] for g in got] == ["link_opened", "link_opened", "link_refused", "victim_waiting"]
            assert all(g.get("held") for g in got[:3])
            assert got[2]["appointment"] == token_appt and got[2]["reason"] == "second-device"
            assert got[3]["appointment"] == appt
            await call_works(h, officer, appt, victim)

    run(main())


def test_links_issued_over_the_api():
    async def main():
        async with serving(public_url="https://meet.example.test") as h:
            body = {"appointment": "api-1", "slot_start": SLOT.isoformat(),
                    "slot_end": (SLOT + timedelta(minutes=45)).isoformat()}
            async with h.http.post(f"{h.base}/api/links", json=body) as r:
                assert r.status == 401
            auth = {"Authorization": f"Bearer {SECRET}"}
            async with h.http.post(f"{h.base}/api/links", json=body, headers=auth) as r:
                assert r.status == 200
                made = await r.json()
            assert re.fullmatch(r"https://meet\.example\.test/j/[A-Za-z0-9_-]{32}", made["url"])
            token = made["url"].rsplit("/", 1)[1]
            async with h.http.get(f"{h.base}/j/{token}") as r:
                assert r.status == 200
                assert r.headers["Strict-Transport-Security"]
            async with h.http.post(f"{h.base}/j/{token}/claim") as r:
                assert r.status == 200
                set_cookie = r.headers["Set-Cookie"]
                assert set_cookie.startswith("__Host-evr_device=") and "Secure" in set_cookie
                assert "max-age=" in set_cookie.lower()
            naive = dict(body, slot_start="2025-03-04T14:00:00")
            async with h.http.post(f"{h.base}/api/links", json=naive, headers=auth) as r:
                assert r.status == 400
            async with h.http.post(f"{h.base}/api/links", data="x" * 100_000, headers=auth) as r:
                assert r.status == 413
            async with h.http.delete(f"{h.base}/api/links/api-1", headers=auth) as r:
                assert (await r.json()) == {"revoked": True}
            async with h.http.get(f"{h.base}/j/{token}") as r:
                assert r.status == 410

    run(main())


# --- authentication and headers ----------------------------------------------------


def test_wrong_officer_secret_and_missing_cookie_are_refused():
    async def main():
        async with serving() as h:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {SECRET}"},
                            {"Authorization": f"Bearer {SECRET}x"}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await h.http.ws_connect(f"{h.base}/ws/officer", headers=headers)
                assert err.value.status == 401
            for cookie in (None, "A" * 43, "not valid!"):
                headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await h.http.ws_connect(f"{h.base}/ws/victim", headers=headers)
                assert err.value.status == 403
            # A page on another site cannot use the victim's cookie (Origin check).
            appt, token = h.link()
            _, _, cookie = await h.open_link(token)
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await h.http.ws_connect(f"{h.base}/ws/victim", headers={
                    "Cookie": f"{COOKIE}={cookie}", "Origin": "https://evil.example"})
            assert err.value.status == 403
            ok = await h.http.ws_connect(f"{h.base}/ws/victim", headers={
                "Cookie": f"{COOKIE}={cookie}", "Origin": h.base})
            h.sockets.append(ok)
            assert (await recv(ok, "waiting"))["officer"] is False
            await still_serving(h)

    run(main())


def test_security_headers_on_every_response():
    async def main():
        async with serving() as h:
            _, token = h.link()
            _, _, cookie = await h.open_link(token)
            pages = [f"/j/{token}", "/j/forged-token-that-does-not-exist", "/nowhere", "/ws/victim"]
            for path in pages:
                async with h.http.get(h.base + path, headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
                    hd = r.headers
                    assert hd["X-Content-Type-Options"] == "nosniff", path
                    assert hd["Referrer-Policy"] == "no-referrer"
                    assert hd["Cache-Control"] == "no-store"
                    assert hd["X-Frame-Options"] == "DENY"
                    assert "camera=(self)" in hd["Permissions-Policy"]
                    assert "microphone=(self)" in hd["Permissions-Policy"]
                    csp = hd["Content-Security-Policy"]
                    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
                    assert hd["Server"] == "rendezvous"  # no version banner
            async with h.http.get(f"{h.base}/j/{token}", headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
                assert r.status == 200
                csp = r.headers["Content-Security-Policy"]
                assert "default-src 'self'" in csp and "script-src 'self'" in csp

    run(main())


def test_the_real_join_page_is_served_when_present(tmp_path):
    (tmp_path / "join.html").write_text("<!doctype html><title>x</title><p>REAL PAGE</p>")
    (tmp_path / "app.js").write_text("console.log('hi')")

    async def main():
        async with serving(web_root=tmp_path) as h:
            _, token = h.link()
            _, page, _ = await h.open_link(token)
            assert "REAL PAGE" in page
            async with h.http.get(f"{h.base}/web/app.js") as r:
                assert r.status == 200 and "javascript" in r.headers["Content-Type"]
            async with h.http.get(f"{h.base}/web/../../etc/passwd") as r:
                assert r.status in (403, 404)

    run(main())


# --- bad links -----------------------------------------------------------------------


def test_replayed_expired_not_yet_forged_and_second_device_links():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            cases = []
            # second device
            appt, token = h.link()
            await h.open_link(token)
            await recv(officer, "link_opened")
            cases.append((appt, token, None, 403, Reason.SECOND_DEVICE, "another phone"))
            # replay after the call ended
            appt2, token2 = h.link()
            _, _, cookie2 = await h.open_link(token2)
            await recv(officer, "link_opened")
            h.registry.end(appt2)
            cases.append((appt2, token2, cookie2, 410, Reason.USED, "finished"))
            # not yet, and expired (same link, the clock moves)
            appt3, token3 = h.link()
            for appt_, token_, cookie_, status, reason, words in cases:
                r, page, set_cookie = await h.open_link(token_, cookie_, **{"Accept-Language": "en-GB"})
                assert r.status == status and words in page and set_cookie is None
                assert r.headers["Cache-Control"] == "no-store"
                assert "<script" not in page and "http" not in page.split("</head>")[1]
                event = await recv(officer, "link_refused")
                assert event["appointment"] == appt_ and event["reason"] == reason.value and event["note"]
            h.clock.now = SLOT - timedelta(hours=1)
            r, page, _ = await h.open_link(token3, **{"Accept-Language": "cy"})
            assert r.status == 403 and page.index("Dyw eich apwyntiad") < page.index("started yet")
            assert (await recv(officer, "link_refused"))["reason"] == "not-yet"
            h.clock.now = SLOT + timedelta(hours=2)
            r, page, _ = await h.open_link(token3)
            assert r.status == 410 and "expired" in page
            assert (await recv(officer, "link_refused"))["reason"] == "expired"
            h.clock.now = SLOT
            for forged in ("A" * 32, "x", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "a" * 5000):
                r, page, _ = await h.open_link(forged)
                assert r.status in (404, 414) and "<script>alert" not in page
            with pytest.raises(asyncio.TimeoutError):  # nobody to tell about a forged link
                await recv(officer, "link_refused", timeout=0.2)
            await still_serving(h, officer)

    run(main())


# --- bad messages ----------------------------------------------------------------------


def test_malformed_json_gets_errors_then_the_socket_is_closed():
    async def main():
        async with serving(Limits(max_errors=5)) as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            await recv(officer, "victim_waiting")
            for bad in ("{not json", "[1,2,3]", '"text"', "null", '{"type": 7}'):
                await victim.send_str(bad)
                err = await recv(victim, "error")
                assert err["code"] in ("bad-json", "not-object", "unknown-type") and err["message"]
                if bad != '{"type": 7}':  # until the limit the socket stays usable
                    await victim.send_json({"type": "chat", "text": "still here"})
                    assert (await recv(officer, "chat"))["text"] == "still here"
            assert await closed(victim) == 1008
            assert (await recv(officer, "victim_left"))["appointment"] == appt
            # The officer's socket too.
            await officer.send_str("{{{")
            assert (await recv(officer, "error"))["code"] == "bad-json"
            await officer.send_bytes(b"\x00\x01")
            assert (await recv(officer, "error"))["code"] == "binary"
            await still_serving(h, officer)

    run(main())


def test_unknown_types_and_bad_fields_get_an_error_and_the_socket_stays_open():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            await recv(officer, "victim_waiting")
            bad_victim = [
                ({"type": "launch_missiles"}, "unknown-type"),
                ({"type": "victim_waiting"}, "unknown-type"),  # server events cannot be forged
                ({"type": "offer", "sdp": 5}, "bad-field"),
                ({"type": "offer", "sdp": "not sdp"}, "bad-field"),
                ({"type": "ice", "candidate": "x" * 3000}, "bad-field"),
                ({"type": "ice", "candidate": "c", "sdpMLineIndex": True}, "bad-field"),
                ({"type": "chat", "text": ""}, "bad-field"),
                ({"type": "chat", "text": "x" * 5000}, "bad-field"),
                ({"type": "commit"}, "bad-field"),  # the commitment's hash: exactly 64 lowercase hex
                ({"type": "commit", "hash": "A" * 64}, "bad-field"),
                ({"type": "commit", "hash": "a" * 63}, "bad-field"),
                ({"type": "commit", "hash": "a" * 65}, "bad-field"),
                ({"type": "commit", "hash": "g" * 64}, "bad-field"),
                ({"type": "commit", "hash": " " + "a" * 63}, "bad-field"),
                ({"type": "commit", "hash": 7}, "bad-field"),
                ({"type": "commit", "hash": ["a" * 64]}, "bad-field"),
            ]
            for msg, code in bad_victim:
                await victim.send_json(msg)
                assert (await recv(victim, "error"))["code"] == code, msg
            bad_officer = [
                ({"type": "offer", "sdp": "v=0"}, "bad-field"),  # no appointment
                ({"type": "offer", "sdp": "v=0", "appointment": "nobody"}, "no-victim"),
                ({"type": "flag", "appointment": appt}, "not-allowed"),
                ({"type": "commit", "appointment": appt, "hash": "a" * 64}, "not-allowed"),
                ({"type": "restart", "appointment": appt}, "not-allowed"),
                ({"type": "teleport", "appointment": appt}, "unknown-type"),
            ]
            for msg, code in bad_officer:
                await officer.send_json(msg)
                assert (await recv(officer, "error"))["code"] == code, msg
            await call_works(h, officer, appt, victim)
            # none of the malformed commits reached the officer
            await victim.send_json({"type": "commit", "hash": "c" * 64})
            assert (await recv(officer, "commit"))["hash"] == "c" * 64
            await still_serving(h, officer)

    run(main())


def test_commit_is_relayed_to_the_officer_and_replayed_when_it_connects():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            await recv(officer, "victim_waiting")
            first, second = "0123456789abcdef" * 4, "f" * 64
            await victim.send_json({"type": "commit", "hash": first, "extra": "dropped"})
            assert await recv(officer, "commit") == {"type": "commit", "hash": first, "appointment": appt}
            await victim.send_json({"type": "commit", "hash": second})  # a new certificate
            assert (await recv(officer, "commit"))["hash"] == second
            # An absent officer is no error for a commit: it is kept (the newest)...
            await officer.close()
            await recv(victim, "officer_left")
            third = "e" * 64
            await victim.send_json({"type": "commit", "hash": third})
            with pytest.raises(TimeoutError):
                await recv(victim, "error", timeout=0.3)
            # ...and sent again right after the victim's victim_waiting to the next officer socket
            officer2 = await h.officer()
            got = [await recv(officer2) for _ in range(2)]
            assert got == [{"type": "victim_waiting", "appointment": appt},
                           {"type": "commit", "hash": third, "appointment": appt}]
            # a victim who never committed gets no commit replayed
            other, _, _ = await h.victim()
            assert (await recv(officer2, "victim_waiting"))["appointment"] == other
            officer3 = await h.officer()
            kinds = [(m["type"], m["appointment"]) for m in [await recv(officer3) for _ in range(3)]]
            assert sorted(kinds) == sorted([("victim_waiting", appt), ("commit", appt), ("victim_waiting", other)])
            await call_works(h, officer3, appt, victim)
            await still_serving(h, officer3)

    run(main())


def sdp_with_candidates(n: int, compact: bool = False) -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "m=video 9 UDP/TLS/RTP/SAVPF 96"]
    for i in range(n):
        if compact:
            lines.append(f"a=candidate:{i} 1 udp 1 10.0.{i // 256}.{i % 256} {1024 + i} typ host")
        else:
            lines.append(
                f"a=candidate:{i} 1 udp 2122260223 192.168.{i // 256}.{i % 256} {1024 + i} typ host "
                "generation 0 network-id 1 network-cost 10"
            )
    return "\r\n".join(lines) + "\r\n"


def test_oversized_messages_and_sdp_with_thousands_of_candidates():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            await recv(officer, "victim_waiting")
            # Thousands of candidates: over the 64 KiB limit -> a clear error, socket open.
            big = sdp_with_candidates(2000)
            assert 64 * 1024 < len(big) < 256 * 1024
            await victim.send_json({"type": "offer", "sdp": big})
            err = await recv(victim, "error")
            assert err["code"] == "too-large" and "65536" in err["message"]
            await officer.send_json({"type": "offer", "appointment": appt, "sdp": big})
            assert (await recv(officer, "error"))["code"] == "too-large"
            # A thousand compact candidates fit in 64 KiB but are still too many.
            many = sdp_with_candidates(1000, compact=True)
            assert len(many) < 60_000
            await victim.send_json({"type": "answer", "sdp": many})
            err = await recv(victim, "error")
            assert err["code"] == "too-many-candidates" and "1000" in err["message"]
            await call_works(h, officer, appt, victim)
            # Over the hard limit: the connection is closed (1009, message too big).
            await victim.send_str("x" * (300 * 1024))
            assert await closed(victim) == 1009
            assert (await recv(officer, "victim_left"))["appointment"] == appt
            await still_serving(h, officer)

    run(main())


def test_a_flood_of_messages_closes_the_socket():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            await recv(officer, "victim_waiting")
            other, _, other_victim = await h.victim()
            await recv(officer, "victim_waiting")
            with contextlib.suppress(ConnectionError):
                for i in range(1000):
                    await victim.send_json({"type": "chat", "text": f"spam {i}"})
            assert await closed(victim, timeout=5) == 1008
            left = await recv(officer, "victim_left")
            assert left["appointment"] == appt
            # The burst that got through was relayed, no more than the bucket allows.
            # The other victim, waiting all along, is unaffected.
            await call_works(h, officer, other, other_victim)
            await still_serving(h, officer)

    run(main())


def test_a_side_that_does_not_keep_up_is_closed_not_buffered_for():
    async def main():
        async with serving(Limits(outbox_messages=4, officer_burst=1000)) as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            await recv(officer, "victim_waiting")
            # Many messages arrive in one read, faster than the victim's socket is
            # written to; its queue holds 4 at most, so it is closed, not buffered for.
            for i in range(200):
                await officer.send_json({"type": "chat", "appointment": appt, "text": f"m{i}"})
            assert await closed(victim, timeout=5) == 4008
            assert (await recv(officer, "victim_left"))["appointment"] == appt
            await still_serving(h, officer)

    run(main())


# --- people leaving --------------------------------------------------------------------


def test_victim_vanishing_mid_call():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            await call_works(h, officer, appt, victim)
            vanish(victim)
            assert (await recv(officer, "victim_left"))["appointment"] == appt
            await officer.send_json({"type": "ice", "appointment": appt, "candidate": None})
            assert (await recv(officer, "error"))["code"] == "no-victim"
            # The phone comes back (same cookie): the call can be set up again.
            back = await h.victim_socket(cookie)
            await recv(back, "waiting")
            assert (await recv(officer, "victim_waiting"))["appointment"] == appt
            await call_works(h, officer, appt, back)
            await still_serving(h, officer)

    run(main())


def test_officer_app_crashing_mid_call():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, _, victim = await h.victim()
            appt2, _, victim2 = await h.victim()
            await call_works(h, officer, appt, victim)
            vanish(officer)  # the officer's app crashes
            assert (await recv(victim, "officer_left"))["type"] == "officer_left"
            assert (await recv(victim2, "officer_left"))["type"] == "officer_left"
            # The waiting room survives: the victim is still connected, and is told
            # the officer is away if they try to talk.
            await victim.send_json({"type": "chat", "text": "hello?"})
            assert (await recv(victim, "error"))["code"] == "officer-absent"
            await victim2.send_json({"type": "flag"})  # held for the officer
            # The app restarts and reconnects: it sees who is waiting.
            officer2 = await h.officer()
            got = [await recv(officer2) for _ in range(3)]
            assert got[0] == {"type": "flag", "appointment": appt2, "held": True}
            assert {g["appointment"] for g in got[1:] if g["type"] == "victim_waiting"} == {appt, appt2}
            assert (await recv(victim, "officer_joined"))["type"] == "officer_joined"
            await call_works(h, officer2, appt, victim)
            await still_serving(h, officer2)

    run(main())


def test_a_second_officer_socket_replaces_the_first():
    async def main():
        async with serving() as h:
            first = await h.officer()
            appt, _, victim = await h.victim()
            await recv(first, "victim_waiting")
            second = await h.officer()
            assert await closed(first) == 4001
            assert (await recv(second, "victim_waiting"))["appointment"] == appt
            await call_works(h, second, appt, victim)

    run(main())


def test_victim_sockets_are_bounded():
    async def main():
        async with serving(Limits(max_victims=2)) as h:
            await h.victim()
            _, cookie, _ = await h.victim()
            _, token = h.link()
            _, _, third = await h.open_link(token)
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await h.victim_socket(third)
            assert err.value.status == 503
            again = await h.victim_socket(cookie)  # a waiting victim may still reconnect
            assert (await recv(again, "waiting"))["type"] == "waiting"

    run(main())


def test_service_command_line_refuses_bad_settings(tmp_path):
    from evr_desktop.rendezvous.__main__ import main

    short = tmp_path / "short"
    short.write_text("tooshort")
    good = tmp_path / "good"
    good.write_text(SECRET)
    assert main(["--officer-secret-file", str(tmp_path / "missing")]) == 2
    assert main(["--officer-secret-file", str(short)]) == 2
    assert main(["--officer-secret-file", str(good), "--cert", str(good)]) == 2
    assert main(["--officer-secret-file", str(good), "--cert", str(good), "--key", str(good)]) == 2
    assert main(["--officer-secret-file", str(good), "--public-url", "ftp://x"]) == 2
    # Force mode: certificates, or a secret, never both or neither; mutual TLS needs TLS.
    assert main([]) == 2
    assert main(["--officer-ca", str(good), "--officer-secret-file", str(good)]) == 2
    assert main(["--officer-ca", str(good)]) == 2
    assert main(["--officer-ca", str(good), "--cert", str(good), "--key", str(good)]) == 2  # not a CA


# --- many at once ----------------------------------------------------------------------


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_fifty_victims_waiting_at_once(capsys):
    n = 50

    async def main():
        async with serving() as h:
            officer = await h.officer()
            await still_serving(h, officer)  # warm up: first-use allocations out of the way
            await recv(officer, "victim_left")
            gc.collect()
            tracemalloc.start()
            base_traced = tracemalloc.get_traced_memory()[0]
            base_rss = _rss_kib()
            t0 = asyncio.get_running_loop().time()
            victims = await asyncio.gather(*(h.victim() for _ in range(n)))
            seen = set()
            while len(seen) < n:
                seen.add((await recv(officer, "victim_waiting"))["appointment"])
            elapsed = asyncio.get_running_loop().time() - t0
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - base_traced
            rss = _rss_kib() - base_rss
            tracemalloc.stop()
            assert seen == {appt for appt, _, _ in victims}
            server = h.registry  # all 50 hold claimed links
            assert len(server) == n + 1
            # Every one of them is served: a message from each reaches the officer.
            for _appt, _, ws in victims:
                await ws.send_json({"type": "hello"})
            hellos = {(await recv(officer, "hello"))["appointment"] for _ in range(n)}
            assert hellos == seen
            with capsys.disabled():
                print(
                    f"\n50 victims waiting: all in the waiting room in {elapsed * 1000:.0f} ms; "
                    f"memory (server and 50 test clients in one process): "
                    f"tracemalloc +{traced / 1024:.0f} KiB ({traced / 1024 / n:.1f} KiB per victim), "
                    f"RSS +{rss} KiB"
                )
            assert traced < 50 * 1024 * 1024

    run(main())


def test_fifty_victims_on_the_evr_rendezvous_service(tmp_path, capsys):
    """The service as a force runs it (``python -m evr_desktop.rendezvous``, its
    own process, links issued over the API): 50 victims wait at once, and the
    server process's own memory is measured."""
    import socket
    import subprocess
    import sys

    secret_file = tmp_path / "officer-secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "evr_desktop.rendezvous", "--host", "127.0.0.1", "--port", str(port),
         "--officer-secret-file", str(secret_file), "--log-level", "INFO"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {SECRET}"}
    secrets_seen: list[str] = []

    def rss(pid: int) -> int:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

    async def main():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with asyncio.timeout(5):
                while True:
                    try:
                        async with http.get(f"{base}/j/x"):
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            officer = await http.ws_connect(f"{base}/ws/officer", headers=auth)
            await recv(officer, "welcome")
            now = datetime.now(timezone.utc)

            async def one(i: int):
                body = {"appointment": f"svc-{i}", "slot_start": now.isoformat(),
                        "slot_end": (now + timedelta(minutes=45)).isoformat()}
                async with http.post(f"{base}/api/links", json=body, headers=auth) as r:
                    url = (await r.json())["url"]
                async with http.get(url) as r:
                    assert r.status == 200
                async with http.post(f"{url}/claim") as r:
                    assert r.status == 200
                    cookie = r.cookies[COOKIE].value
                secrets_seen.extend([url.rsplit("/", 1)[1], cookie])
                ws = await http.ws_connect(f"{base}/ws/victim", headers={"Cookie": f"{COOKIE}={cookie}"})
                await recv(ws, "waiting")
                return ws

            await (await one(-1)).close()  # warm up
            before = rss(proc.pid)
            sockets = await asyncio.gather(*(one(i) for i in range(50)))
            seen = set()
            while len(seen) < 50:
                event = await recv(officer)
                if event["type"] == "victim_waiting":
                    seen.add(event["appointment"])
            after = rss(proc.pid)
            with capsys.disabled():
                print(f"\nevr-rendezvous process: RSS {before} KiB -> {after} KiB with 50 victims "
                      f"waiting (+{after - before} KiB, {(after - before) / 50:.1f} KiB per victim)")
            assert after - before < 50 * 1024
            for ws in sockets:
                await ws.close()
            await officer.close()

    try:
        run(main())
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    # The service logs by ID only: no secret, token, cookie or request line.
    log_text = err.decode()
    assert "link issued: appointment=svc-7" in log_text and "victim waiting" in log_text
    assert len(secrets_seen) == 102
    for secret in [SECRET, *secrets_seen]:
        assert secret not in log_text
    assert "/j/" not in log_text and "GET " not in log_text


# --- operations ------------------------------------------------------------------------


def test_healthz_and_metrics_count_without_naming_anyone():
    async def main():
        async with serving() as h:
            async with h.http.get(f"{h.base}/healthz") as r:
                assert r.status == 200 and (await r.json()) == {"status": "ok"}
            officer = await h.officer()
            appt, cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            async with h.http.get(f"{h.base}/j/{'x' * 32}") as r:
                assert r.status == 404
            await officer.send_json({"type": "offer", "appointment": appt, "sdp": "v=0\r\n"})
            await recv(victim, "offer")
            await victim.send_json({"type": "flag"})
            await victim.send_str("{not json")
            await recv(victim, "error")
            async with h.http.get(f"{h.base}/metrics") as r:  # from this machine: allowed
                assert r.status == 200 and r.content_type == "text/plain"
                text = await r.text()
            values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                      for line in text.splitlines() if line and not line.startswith("#")}
            assert values["evr_officers_connected"] == 1
            assert values["evr_victims_in_call"] == 1 and values["evr_victims_waiting"] == 0
            assert values["evr_links_claimed_total"] == 1 and values["evr_calls_started_total"] == 1
            assert values["evr_cant_talk_flags_total"] == 1
            assert values['evr_protocol_errors_total{code="bad-json"}'] == 1
            # Nothing about anyone: no appointment, link, cookie or address.
            for secret in (appt, cookie, "127.0.0.1", h.last_token):
                assert secret not in text
            assert "# TYPE evr_links_refused_total counter" in text

    run(main())


def test_metrics_need_the_token_when_one_is_set():
    async def main():
        async with serving(metrics_token="metrics-token-0123456789") as h:
            async with h.http.get(f"{h.base}/metrics") as r:
                assert r.status == 401
            async with h.http.get(f"{h.base}/metrics", headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
            async with h.http.get(f"{h.base}/metrics",
                                  headers={"Authorization": "Bearer metrics-token-0123456789"}) as r:
                assert r.status == 200 and "evr_officers_connected 0" in await r.text()
        with pytest.raises(ValueError):
            create_app(TokenRegistry(), SECRET, metrics_token="short")

    run(main())
