"""TURN for real: a coturn ``turnserver`` with ``use-auth-secret`` on loopback,
credentials issued by the rendezvous, and two aiortc peers that may use relay
candidates only (``iceTransportPolicy="relay"``), so a data-channel message
can only get through coturn. A wrong or expired credential gets no relay
candidate. Needs ``turnserver`` (Debian package ``coturn``): a missing one
fails the test, it is never skipped.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType
from aioice import stun
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from evr_desktop.rendezvous.server import COOKIE, create_app, start
from evr_desktop.rendezvous.tokens import TokenRegistry
from evr_desktop.rendezvous.turn import TurnConfig, ice_servers_for
from tests.e2e.conftest import require

pytestmark = pytest.mark.timeout(60)

OFFICER_SECRET = "officer-secret-for-turn-tests-0123"
WAIT = 5.0


@dataclass
class Coturn:
    port: int
    secret: str
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stun_answers(port: int) -> bool:
    """A STUN Binding request to coturn gets a Binding success back."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(bytes(request), ("127.0.0.1", port))
            data = s.recv(2048)
        except OSError:
            return False
    reply = stun.parse_message(data)
    return reply.transaction_id == request.transaction_id and reply.message_class == stun.Class.RESPONSE


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    exe = require("turnserver")
    port = _free_udp_port()
    low = random.randrange(40000, 60000, 20)
    secret = secrets.token_urlsafe(24)
    log = tmp_path / "turnserver.log"
    args = [
        exe, "-n",  # no configuration file: the command line only
        "--listening-ip=127.0.0.1", f"--listening-port={port}", "--relay-ip=127.0.0.1",
        f"--min-port={low}", f"--max-port={low + 19}",
        "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=evr.test",
        "--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay", "--relay-threads=0",
        # the peers' relay addresses are on 127.0.0.1, which coturn refuses by default
        "--allow-loopback-peers",
        f"--pidfile={tmp_path / 'turnserver.pid'}", f"--userdb={tmp_path / 'turndb'}",
        "--log-file=stdout", "--simple-log", "--verbose",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Coturn(port, secret, proc, log)
    try:
        deadline = time.monotonic() + 5.0
        while not _stun_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"turnserver did not start:\n{server.log_text()[-3000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)


# --- the rendezvous hands out the credentials -----------------------------------------


async def _recv(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:
    async with asyncio.timeout(WAIT):
        while True:
            msg = await ws.receive()
            assert msg.type is WSMsgType.TEXT, f"socket closed waiting for {kind}"
            data = msg.json()
            if data["type"] == kind:
                return data


async def _credentials_from_rendezvous(turn: TurnConfig) -> tuple[dict, dict, dict, str]:
    """A victim opens a link and waits, an officer connects: the ``waiting``,
    ``welcome`` and ``victim_waiting`` messages, and the link id."""
    registry = TokenRegistry()
    app = create_app(registry, OFFICER_SECRET, web_root=Path("/nonexistent"), turn=turn)
    runner, port = await start(app)
    base = f"http://127.0.0.1:{port}"
    try:
        now = datetime.now(timezone.utc)
        token, link_id = registry.issue("appt-turn-1", now - timedelta(minutes=5),
                                        now + timedelta(minutes=40), now)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/j/{token}") as r:
                assert r.status == 200
            async with http.post(f"{base}/j/{token}/claim") as r:  # the victim agrees on the page
                assert r.status == 200
                cookie = r.cookies[COOKIE].value
            victim = await http.ws_connect(f"{base}/ws/victim",
                                           headers={"Cookie": f"{COOKIE}={cookie}"})
            waiting = await _recv(victim, "waiting")
            officer = await http.ws_connect(f"{base}/ws/officer",
                                            headers={"Authorization": f"Bearer {OFFICER_SECRET}"})
            welcome = await _recv(officer, "welcome")
            victim_waiting = await _recv(officer, "victim_waiting")
            await victim.close()
            await officer.close()
        return waiting, welcome, victim_waiting, link_id
    finally:
        await runner.cleanup()


# --- two aiortc peers, relay only ---------------------------------------------------------


def _pc(ice_servers: list[dict]) -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(
        iceServers=[RTCIceServer(**s) for s in ice_servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    ))


def _candidate_types(sdp: str) -> list[str]:
    return re.findall(r"^a=candidate:.* typ (\w+)", sdp, flags=re.M)


def _selected_pair(pc: RTCPeerConnection):
    """The nominated ICE pair (aioice's, private: there is no public getter)."""
    ice = pc.sctp.transport.transport  # RTCSctpTransport -> RTCDtlsTransport -> RTCIceTransport
    return ice._connection._nominated[1]


async def _relay_call(officer_ice: list[dict], victim_ice: list[dict]) -> dict:
    officer, victim = _pc(officer_ice), _pc(victim_ice)
    got: asyncio.Queue[str] = asyncio.Queue()
    try:
        channel = officer.createDataChannel("evr")

        @victim.on("datachannel")
        def on_channel(ch) -> None:
            @ch.on("message")
            def on_message(message) -> None:
                got.put_nowait(message)
                ch.send("pong:" + message)

        @channel.on("message")
        def on_reply(message) -> None:
            got.put_nowait(message)

        opened = asyncio.Event()
        channel.on("open", opened.set)

        async with asyncio.timeout(10):
            await officer.setLocalDescription(await officer.createOffer())  # gathers (no trickle)
            offer = officer.localDescription.sdp
            await victim.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await victim.setLocalDescription(await victim.createAnswer())
            answer = victim.localDescription.sdp
            await officer.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            await opened.wait()
            channel.send("hello through coturn")
            first = await got.get()
            second = await got.get()
        return {
            "offer_types": _candidate_types(offer),
            "answer_types": _candidate_types(answer),
            "messages": [first, second],
            "pairs": [_selected_pair(officer), _selected_pair(victim)],
        }
    finally:
        await officer.close()
        await victim.close()


async def _gathered_types(ice_servers: list[dict]) -> list[str]:
    pc = _pc(ice_servers)
    try:
        pc.createDataChannel("evr")
        async with asyncio.timeout(10):
            await pc.setLocalDescription(await pc.createOffer())
        return _candidate_types(pc.localDescription.sdp)
    finally:
        await pc.close()


# --- the tests -----------------------------------------------------------------------


def test_call_through_coturn_with_rendezvous_credentials(coturn: Coturn):
    turn = TurnConfig([coturn.url], coturn.secret, ttl_seconds=600)
    started = time.time()
    waiting, welcome, victim_waiting, link_id = asyncio.run(_credentials_from_rendezvous(turn))

    # What the server hands out: the WebRTC shape, the link id as the only name in
    # the username (never the appointment id), expiring ttl seconds from now.
    for msg in (waiting, welcome, victim_waiting):
        [server] = msg["iceServers"]
        assert server["urls"] == [coturn.url]
        expiry, _, name = server["username"].partition(":")
        assert started + 600 - 1 <= int(expiry) <= time.time() + 600
        assert "appt" not in server["username"]
    assert waiting["iceServers"][0]["username"].endswith(f":{link_id}")
    assert victim_waiting["iceServers"][0]["username"].endswith(f":{link_id}")
    assert not welcome["iceServers"][0]["username"].endswith(f":{link_id}")

    result = asyncio.run(_relay_call(victim_waiting["iceServers"], waiting["iceServers"]))

    # Only relay candidates were offered and answered, with coturn's relay address,
    # and the message went there and back.
    assert result["offer_types"] and set(result["offer_types"]) == {"relay"}
    assert result["answer_types"] and set(result["answer_types"]) == {"relay"}
    assert result["messages"] == ["hello through coturn", "pong:hello through coturn"]
    for pair in result["pairs"]:
        assert pair.local_candidate.type == "relay"
        assert pair.remote_candidate.type == "relay"
        assert pair.local_candidate.host == "127.0.0.1"
        assert coturn.port != pair.local_candidate.port  # a relay port, not the listener
    log = coturn.log_text()
    # coturn's own word: allocations and channel bindings for the link id's username.
    user = r"user <\d+:" + re.escape(link_id) + ">"
    assert len(re.findall(user + r": incoming packet ALLOCATE processed, success", log)) == 2, log
    assert re.search(user + r": incoming packet CHANNEL_BIND processed, success", log), log


def test_wrong_or_expired_credentials_are_refused(coturn: Coturn):
    good = TurnConfig([coturn.url], coturn.secret, ttl_seconds=600)
    wrong = TurnConfig([coturn.url], coturn.secret + "-not-it", ttl_seconds=600)
    now = time.time()

    async def run() -> tuple[list[str], list[str], list[str], list[str]]:
        return (
            await _gathered_types(ice_servers_for(good, "control", now)),
            await _gathered_types(ice_servers_for(wrong, "wrongsecret", now)),
            await _gathered_types(ice_servers_for(good, "expired", now - 3600)),
            await _gathered_types([{**ice_servers_for(good, "tampered", now)[0],
                                    "username": f"{int(now) + 86400}:tampered"}]),
        )

    control, wrong_secret, expired, tampered = asyncio.run(run())
    assert control == ["relay"]  # the same server and path do work
    assert wrong_secret == [] and expired == [] and tampered == []
    log = coturn.log_text()
    assert re.search(r"user <\d+:control>: incoming packet ALLOCATE processed, success", log), log
    for name in ("wrongsecret", "expired", "tampered"):  # coturn refused each, by name
        assert re.search(rf"user <\d+:{name}>: incoming packet .* error 401", log), log
        assert not re.search(rf"user <\d+:{name}>: incoming packet ALLOCATE processed, success",
                             log), log
