"""The rendezvous and the app's signalling under hostile input (issue 11,
item 7): slowloris and one address opening many connections; deeply nested
JSON (a typed error, on the server and in the app's signalling task, which
goes on); the number of a victim's ICE candidates, and in force mode no
loopback or link-local ones."""

from __future__ import annotations

import asyncio
import json

import pytest

from evr_desktop import wire
from evr_desktop.call import events as ev
from evr_desktop.rendezvous.guard import ConnectionGuard
from evr_desktop.rendezvous.server import RENDEZVOUS, Limits, candidate_address, unroutable, without_unroutable
from tests.e2e.test_call_engine import World
from tests.e2e.test_rendezvous import closed, recv, run, serving

DEEP = "[" * 30_000 + "]" * 30_000  # under the 64 Ki-character message limit


def nested(depth: int) -> list:
    value: list = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _eof(reader: asyncio.StreamReader, within: float) -> bool:
    """True if the server closed the connection (EOF or reset) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_a_request_sent_a_byte_at_a_time_is_cut_off_and_a_websocket_is_not():
    async def main():
        guard = ConnectionGuard(header_timeout=0.5)
        async with serving(guard=guard) as h:
            port = int(h.base.rsplit(":", 1)[1])
            reader, writer = await _raw(port)
            writer.write(b"GET /j/abcdefghijklmnopqrstuvwxyz012345 HTTP/1.1\r\nHost: x\r\n")
            cut = False
            for _ in range(30):  # one header line every 0.1 s: never finishing
                try:
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
                except ConnectionError:
                    cut = True
                    break
                if await _eof(reader, 0.1):
                    cut = True
                    break
            assert cut and guard.timed_out == 1
            writer.close()
            # An honest victim's WebSocket outlives the deadline: it is upgraded, so not timed.
            officer = await h.officer()
            appt, cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            await asyncio.sleep(1.0)
            await victim.send_json({"type": "hello", "lang": "en"})
            assert (await recv(officer, "hello"))["appointment"] == appt
            assert guard.timed_out == 1

    run(main())


def test_one_address_cannot_hold_more_than_its_share_of_connections():
    async def main():
        guard = ConnectionGuard(per_address=3)
        async with serving(guard=guard) as h:
            port = int(h.base.rsplit(":", 1)[1])
            held = [await _raw(port) for _ in range(3)]
            extra_reader, extra_writer = await _raw(port)
            assert await _eof(extra_reader, 5.0)  # closed at once
            assert guard.refused == 1
            for _, w in held:  # one address's connections go: it may connect again
                w.close()
            await asyncio.sleep(0.2)
            async with h.http.get(f"{h.base}/j/{'x' * 32}") as r:
                assert r.status == 404

    run(main())


def test_deeply_nested_json_gets_a_typed_error_and_the_socket_goes_on():
    async def main():
        async with serving() as h:
            officer = await h.officer()
            appt, _cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            for sock in (victim, officer):
                await sock.send_str(DEEP)
                error = await recv(sock, "error")
                assert error["code"] == "too-deep"
                await sock.send_str(json.dumps({"type": "chat", "text": nested(20)}))
                assert (await recv(sock, "error"))["code"] == "too-deep"
            await victim.send_json({"type": "chat", "text": "still here"})
            assert (await recv(officer, "chat"))["text"] == "still here"

    run(main())


def test_the_apps_signalling_task_survives_deep_json_from_the_rendezvous():
    async def main():
        async with World() as w:
            engine = w.make_engine()
            engine.start()
            await w.events.wait(ev.SignallingChanged, lambda e: e.connected)
            officer = w.runner.app[RENDEZVOUS].officers["officer"]
            await officer.ws.send_str(DEEP)  # a compromised or broken rendezvous
            await officer.ws.send_str(json.dumps({"type": "victim_waiting", "appointment": nested(20)}))
            await w.victim("appt-deep")
            waiting = await w.events.wait(ev.VictimWaiting)
            assert waiting.appointment == "appt-deep"
            assert [e for e in w.events.of(ev.SignallingChanged) if not e.connected] == []

    run(main())


def test_a_victims_candidates_are_bounded_and_in_force_mode_never_loopback_or_link_local():
    async def main():
        async with serving(limits=Limits(max_victim_candidates=5), force=True) as h:
            officer = await h.officer()
            appt, _cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            bad = ["candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                   "candidate:2 1 udp 2122260223 169.254.10.20 50001 typ host",
                   "candidate:3 1 udp 2122260223 fe80::1%eth0 50002 typ host",
                   "candidate:4 1 udp 2122260223 ::1 50003 typ host"]
            for cand in bad:
                await victim.send_json({"type": "ice", "candidate": cand, "sdpMid": "0"})
                assert (await recv(victim, "error"))["code"] == "bad-candidate"
            good = "candidate:5 1 udp 1686052607 198.51.100.20 61000 typ srflx raddr 0.0.0.0 rport 0"
            await victim.send_json({"type": "ice", "candidate": good, "sdpMid": "0"})
            assert (await recv(officer, "ice"))["candidate"] == good
            await victim.send_json({"type": "ice", "candidate": good.replace(":5 ", ":6 "), "sdpMid": "0"})
            assert (await recv(victim, "error"))["code"] == "too-many-candidates"
            # An answer's candidate lines: the unroutable ones are taken out, the rest relayed.
            sdp = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                   f"a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na={good}\r\n")
            await victim.send_json({"type": "answer", "sdp": sdp})
            relayed = (await recv(officer, "answer"))["sdp"]
            assert "127.0.0.1" not in relayed and "198.51.100.20" in relayed
            assert await victim.send_json({"type": "chat", "text": "ok"}) is None
            assert (await recv(officer, "chat"))["text"] == "ok"  # still connected

    run(main())


def test_candidates_on_loopback_stay_allowed_off_force_mode():
    async def main():
        async with serving() as h:  # the embedded demo: the victim's browser may be on this machine
            officer = await h.officer()
            appt, _cookie, victim = await h.victim()
            await recv(officer, "victim_waiting")
            cand = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"
            await victim.send_json({"type": "ice", "candidate": cand, "sdpMid": "0"})
            assert (await recv(officer, "ice"))["candidate"] == cand
            await victim.close()
            assert await closed(victim) in (None, 1000)

    run(main())


@pytest.mark.parametrize(("line", "address", "bad"), [
    ("candidate:1 1 udp 2122260223 192.168.1.5 5000 typ host", "192.168.1.5", False),
    ("a=candidate:1 1 udp 2122260223 127.0.0.2 5000 typ host", "127.0.0.2", True),
    ("candidate:1 1 udp 2122260223 0.0.0.0 5000 typ host", "0.0.0.0", True),
    ("candidate:1 1 udp 2122260223 5f3c1a2b-1111-2222-3333-444455556666.local 5000 typ host",
     "5f3c1a2b-1111-2222-3333-444455556666.local", False),
    ("not a candidate", None, False),
])
def test_candidate_addresses(line, address, bad):
    assert candidate_address(line) == address
    assert unroutable(address) is bad


def test_sdp_filter_and_wire_depth():
    sdp = "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\na=candidate:2 1 udp 1 198.51.100.1 5 typ host\r\n"
    out, dropped = without_unroutable(sdp)
    assert dropped == 1 and "198.51.100.1" in out and "127.0.0.1" not in out
    assert wire.loads('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    for text, code in ((DEEP, "too-deep"), ("[" * 17 + "]" * 17, "too-deep"), ("{not json", "bad-json")):
        with pytest.raises(wire.MessageError) as err:
            wire.loads(text)
        assert err.value.code == code and isinstance(err.value, ValueError)
    assert wire.loads("[" * 16 + "]" * 16) is not None
