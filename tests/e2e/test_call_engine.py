"""The call engine against the real rendezvous and a real (aiortc) victim, on
loopback: waiting room, offer/answer, media both ways, chat, verification
codes, stats, the encoded-frame tap, hang-ups from either side, restart, and
errors reaching listeners as plain messages.

The rendezvous and the victim run on the test's own event loop
(``asyncio.run``); the engine runs on its own thread, as in the app. Every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import WSMsgType
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCCertificate

from evr_desktop.call import events as ev
from evr_desktop.call.dtls import dtls_peer_fingerprints
from evr_desktop.call.engine import COMMIT_MISMATCH, CallEngine, CallSettings, CommitTimeout
from evr_desktop.call.jitter import MarkerJitterBuffer
from evr_desktop.call.tap import RECEIVED, SENT, EncodedFrame
from evr_desktop.capture.devices import SourceChoice
from evr_desktop.capture.synthetic import SyntheticAudioSource, SyntheticVideoSource, read_timestamp
from evr_desktop.capture.tracks import AudioSourceTrack, VideoSourceTrack
from evr_desktop.domain.verification import commitment, sha256_fingerprint, verification_code
from evr_desktop.rendezvous.server import COOKIE, COOKIE_HTTPS, create_app, start
from evr_desktop.rendezvous.tokens import TokenRegistry

SECRET = "officer-secret-for-call-tests-0123456789"
NO_WEB_ROOT = Path("/nonexistent/evr-web")
WAIT = 10.0


class Recorder:
    """Collects engine events (called on the engine thread)."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.lock = threading.Lock()

    def on_event(self, event: ev.Event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, cls) -> list:
        with self.lock:
            return [e for e in self.events if isinstance(e, cls)]

    async def wait(self, cls, pred=lambda e: True, timeout: float = WAIT):
        return await until(lambda: next((e for e in self.of(cls) if pred(e)), None), timeout,
                           f"{cls.__name__} event")


async def until(fn, timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None and value is not False and (isinstance(value, np.ndarray) or value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def small_sources() -> SourceChoice:
    return SourceChoice(SyntheticVideoSource(320, 240, 15), SyntheticAudioSource(), [])


def certificate_fingerprint(cert: RTCCertificate) -> str:
    return next(f.value for f in cert.getFingerprints() if f.algorithm == "sha-256")


def use_certificate(pc: RTCPeerConnection, cert: RTCCertificate) -> None:
    """aiortc's stand-in for the browser's ``new RTCPeerConnection({certificates:
    [cert]})``: it has no such option, so set the one it generated aside (its
    DTLS transport is made from this list at setRemoteDescription)."""
    pc._RTCPeerConnection__certificates = [cert]


class Victim:
    """The victim's page, in Python: opens the link, waits, commits to a fresh
    DTLS certificate (``commit``), answers the officer's offer with that
    certificate and its own synthetic camera and microphone, then commits to
    the next one (for a restart); chats over the data channel, hangs up with
    ``bye``. Follows the protocol of docs/rendezvous.md, docs/call-engine.md
    and docs/victim-page.md ("Commitment").

    ``auto_commit=False``: never commits by itself (``commit()`` does it).
    ``impostor=True``: commits to one certificate and answers with another,
    as a man in the middle grinding its certificate would have to."""

    def __init__(self, base: str, http: aiohttp.ClientSession, trickle: bool = False,
                 auto_commit: bool = True, impostor: bool = False, split_fingerprints: bool = False):
        """``split_fingerprints`` (with ``impostor``): the answer carries the
        impostor's certificate as sha-384 in its first m-section and the
        committed honest sha-256 in the others, the attack of issue 11 item 2."""
        self.split_fingerprints = split_fingerprints
        self.base, self.http = base, http
        self.trickle = trickle  # send candidates as `ice` messages, as browsers do
        self.auto_commit = auto_commit
        self.impostor = impostor
        self.certificate: RTCCertificate | None = None  # committed to, not yet revealed
        self.sent_commits: list[str] = []
        self.answer_fingerprints: list[str] = []
        self.connection_states: list[str] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pc: RTCPeerConnection | None = None
        self.channel = None
        self.messages: list[dict] = []
        self.chats: list[str] = []
        self.recording: list[str] = []  # what the officer's app said of its recorder ("on"/"off")
        self.frames = {"video": 0, "audio": 0}
        self.last_video = None
        self.latencies_ms: list[int] = []
        self.codes: list[str] = []
        self.tracks: list = []
        self.closed_code: int | None = None
        self._tasks: list[asyncio.Task] = []

    async def join(self, token: str) -> None:
        async with self.http.get(f"{self.base}/j/{token}") as r:  # the page: claims nothing
            assert r.status == 200
            assert COOKIE not in r.cookies
        async with self.http.post(f"{self.base}/j/{token}/claim") as r:  # the victim agrees
            assert r.status == 200
            name = COOKIE if COOKIE in r.cookies else COOKIE_HTTPS  # __Host- when served over https
            cookie = r.cookies[name].value
        self.token, self.cookie = token, cookie
        self.ws = await self.http.ws_connect(f"{self.base}/ws/victim",
                                             headers={"Cookie": f"{name}={cookie}"})
        self._tasks.append(asyncio.create_task(self._read()))
        await until(lambda: any(m["type"] == "waiting" for m in self.messages), 5, "waiting")
        if self.auto_commit:
            await self.commit()
        await self.ws.send_json({"type": "hello", "lang": "en"})

    async def commit(self) -> None:
        """A fresh certificate for the next peer connection, and ``commit`` with
        the hash of its fingerprint, as the page does."""
        self.certificate = RTCCertificate.generateCertificate()
        digest = commitment(certificate_fingerprint(self.certificate))
        self.sent_commits.append(digest)
        await self.ws.send_json({"type": "commit", "hash": digest})

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            self.messages.append(data)
            if data["type"] == "offer":
                await self._answer(data)
            elif data["type"] == "bye":
                await self._close_pc()
        self.closed_code = self.ws.close_code

    async def _answer(self, offer: dict) -> None:
        if self.pc is not None:  # iceRestart: a fresh peer connection, as the page does
            await self._close_pc()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.certificate is not None and not self.impostor:
            use_certificate(pc, self.certificate)  # the one committed to
        # (an impostor keeps the certificate aiortc made: not the committed one)
        self.pc = pc

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            self.connection_states.append(pc.connectionState)

        video = VideoSourceTrack(SyntheticVideoSource(320, 240, 15))
        audio = AudioSourceTrack(SyntheticAudioSource(880))
        self.tracks = [video, audio]
        pc.addTrack(video)
        pc.addTrack(audio)

        @pc.on("datachannel")
        def _on_channel(channel) -> None:
            self.channel = channel

            @channel.on("message")
            def _on_message(message) -> None:
                data = json.loads(message)
                if data.get("type") == "chat":
                    self.chats.append(data["text"])
                elif data.get("type") == "recording":
                    self.recording.append(data["state"])

        @pc.on("track")
        def _on_track(track) -> None:
            self._tasks.append(asyncio.create_task(self._consume(track)))

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self.codes.append(verification_code(pc.localDescription.sdp, offer["sdp"]))
        sdp = pc.localDescription.sdp
        if self.split_fingerprints:
            sdp = self._split(sdp, pc)
            self.answer_fingerprints.append(certificate_fingerprint(self.certificate))
        else:
            self.answer_fingerprints.append(sha256_fingerprint(sdp))
        if not self.trickle:
            await self.ws.send_json({"type": "answer", "sdp": sdp})
        else:
            await self._trickled_answer(sdp)
        if self.auto_commit:  # this fingerprint is public now: commit to the next one
            await self.commit()

    def _split(self, sdp: str, pc: RTCPeerConnection) -> str:
        from aiortc.rtcdtlstransport import certificate_digest

        actual = pc._RTCPeerConnection__certificates[0]._cert  # the impostor's own, used by DTLS
        honest = certificate_fingerprint(self.certificate)  # the committed one
        sections = sdp.split("\r\nm=")
        out = []
        for i, section in enumerate(sections):
            lines = [ln for ln in section.split("\r\n") if not ln.startswith("a=fingerprint:")]
            if i == 1:
                lines.append(f"a=fingerprint:sha-384 {certificate_digest(actual, 'sha-384')}")
            elif i > 1:
                lines.append(f"a=fingerprint:sha-256 {honest}")
            out.append("\r\n".join(lines))
        return "\r\nm=".join(out)

    async def _trickled_answer(self, sdp: str) -> None:
        lines = sdp.split("\r\n")
        candidates = [ln[2:] for ln in lines if ln.startswith("a=candidate:")]
        assert candidates
        # the worst order: candidates ahead of the answer, then end-of-candidates
        for cand in candidates:
            await self.ws.send_json({"type": "ice", "candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0})
        bare = "\r\n".join(ln for ln in lines
                            if not ln.startswith(("a=candidate:", "a=end-of-candidates")))
        await self.ws.send_json({"type": "answer", "sdp": bare})
        await self.ws.send_json({"type": "ice", "candidate": None, "sdpMid": "0", "sdpMLineIndex": 0})

    async def _consume(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames[track.kind] += 1
            if track.kind == "video":
                rgb = frame.to_ndarray(format="rgb24")
                self.last_video = rgb
                ms = read_timestamp(rgb)
                if ms is not None:
                    self.latencies_ms.append(int(time.time() * 1000) - ms)

    def chat(self, text: str) -> None:
        self.channel.send(json.dumps({"type": "chat", "text": text, "id": "v1"}))

    async def hang_up(self) -> None:
        await self.ws.send_json({"type": "bye", "reason": "victim-ended"})
        await self._close_pc()

    async def _close_pc(self) -> None:
        pc, self.pc = self.pc, None
        for t in self.tracks:
            t.stop()
        if pc is not None:
            await pc.close()

    async def close(self) -> None:
        await self._close_pc()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        for t in self._tasks:
            t.cancel()


class World:
    def __init__(self) -> None:
        self.registry = TokenRegistry()
        self.runner = None
        self.base = ""
        self.http: aiohttp.ClientSession | None = None
        self.engine: CallEngine | None = None
        self.events = Recorder()
        self.tapped: list[EncodedFrame] = []
        self.victims: list[Victim] = []

    async def __aenter__(self) -> World:
        app = create_app(self.registry, SECRET, web_root=NO_WEB_ROOT)
        self.runner, port = await start(app, "127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{port}"
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self

    def make_engine(self, **kw: Any) -> CallEngine:
        settings = CallSettings(
            rendezvous_url=kw.pop("url", self.base), officer_secret=kw.pop("secret", SECRET),
            ice_servers=[], host_candidates="loopback-only", prefer_real_devices=False,
            stats_interval=0.5, **kw)
        self.engine = CallEngine(settings, tap_sink=self.tapped.append, sources=small_sources)
        self.engine.add_listener(self.events)
        return self.engine

    def link(self, appt: str) -> str:
        from datetime import datetime, timezone

        now = datetime.now(timezone.utc)
        token, _ = self.registry.issue(appt, now, now + timedelta(minutes=45), now)
        return token

    async def victim(self, appt: str, **kw: Any) -> Victim:
        v = Victim(self.base, self.http, **kw)
        self.victims.append(v)
        await v.join(self.link(appt))
        return v

    async def __aexit__(self, *exc) -> None:
        if self.engine is not None:
            await asyncio.to_thread(self.engine.stop)
        for v in self.victims:
            await v.close()
        await self.http.close()
        await asyncio.wait_for(self.runner.cleanup(), 5)


def run(coro, timeout: float = 45) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connected_call(w: World, appt: str, *, engine_kw: dict | None = None,
                         addresses: Any = None, **kw: Any) -> tuple[Victim, float]:
    engine = w.make_engine(**(engine_kw or {}))
    engine.addresses = addresses  # None: the real interfaces
    engine.start()
    await w.events.wait(ev.SignallingChanged, lambda e: e.connected)
    victim = await w.victim(appt, **kw)
    await w.events.wait(ev.VictimWaiting, lambda e: e.appointment == appt)
    t0 = time.monotonic()
    await asyncio.wrap_future(engine.start_call(appt))
    await w.events.wait(ev.CallStateChanged, lambda e: e.appointment == appt and e.state == "connected")
    return victim, time.monotonic() - t0


def test_a_whole_call_officer_hangs_up():
    async def main() -> None:
        async with World() as w:
            appt = "appt-call-1"
            victim, setup = await connected_call(w, appt)
            engine = w.engine
            session = engine.session(appt)
            print(f"\ncall set-up (start_call -> connected): {setup * 1000:.0f} ms")

            # media both ways, counted on both sides
            await until(lambda: session.frames_in["video"] >= 10 and session.frames_in["audio"] >= 25,
                        what="officer receiving video and audio")
            await until(lambda: victim.frames["video"] >= 10 and victim.frames["audio"] >= 25,
                        what="victim receiving video and audio")

            print("timings since start_call: " + ", ".join(
                f"{k} {v * 1000:.0f} ms" for k, v in sorted(session.timings.items(), key=lambda kv: kv[1])))
            assert setup < 5

            # latest-wins frames for display
            remote = await until(lambda: engine.latest_remote_frame(appt), what="remote frame")
            local = engine.latest_local_frame()
            assert remote.shape == (240, 320, 3) and remote.dtype == np.uint8
            assert local is not None and local.shape == (240, 320, 3)
            # the stamps survive VP8 both ways: glass-to-glass can be read back
            assert read_timestamp(remote) is not None
            # video frames are completed on the RTP marker bit (one frame interval sooner)
            receiver = next(t.receiver for t in session.pc.getTransceivers() if t.kind == "video")
            buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer")
            assert isinstance(buffer, MarkerJitterBuffer)
            assert buffer.by_marker >= 10 and buffer.by_timestamp == 0
            await until(lambda: len(victim.latencies_ms) >= 5, what="stamped frames at the victim")
            assert 0 <= sorted(victim.latencies_ms)[len(victim.latencies_ms) // 2] < 2000
            print(f"officer->victim stamp latency (aiortc decode, median): "
                  f"{sorted(victim.latencies_ms)[len(victim.latencies_ms) // 2]} ms")

            # chat both ways over the data channel
            await until(lambda: victim.channel is not None and victim.channel.readyState == "open",
                        what="data channel")
            via = await asyncio.wrap_future(engine.send_chat(appt, "Hello, can you hear me?"))
            assert via == "datachannel"
            await until(lambda: "Hello, can you hear me?" in victim.chats, what="chat to victim")
            victim.chat("Yes, I can.")
            chat = await w.events.wait(ev.ChatReceived)
            assert (chat.appointment, chat.text, chat.id, chat.via) == (appt, "Yes, I can.", "v1", "datachannel")

            # the same verification code on both sides
            code = await w.events.wait(ev.VerificationCode)
            assert code.appointment == appt and len(code.code) == 6 and code.code.isdigit()
            assert victim.codes == [code.code] and session.code == code.code

            # stats: round trip and bit rates
            stats = await w.events.wait(ev.Stats, lambda s: s.rtt_ms is not None
                                        and s.bitrate_in_kbps > 0 and s.bitrate_out_kbps > 0)
            assert stats.remote_resolution == (320, 240) and stats.local_resolution == (320, 240)
            assert 0 <= stats.rtt_ms < 1000
            print(f"stats: {stats}")

            # the encoded-frame tap saw both directions, audio and video, with no drops
            await until(lambda: all(engine.tap.delivered[(d, k)] > 10
                                    for d in (SENT, RECEIVED) for k in ("audio", "video")),
                        what="tapped frames both ways")
            assert engine.tap.dropped == 0 and engine.tap.sink_errors == 0
            codecs = {(f.direction, f.codec) for f in list(w.tapped)}
            assert {(SENT, "video/VP8"), (RECEIVED, "video/VP8"),
                    (SENT, "audio/opus"), (RECEIVED, "audio/opus")} <= codecs
            sent_video = [f for f in list(w.tapped) if f.direction == SENT and f.kind == "video"]
            assert sent_video[0].keyframe and all(f.session == appt and f.data for f in sent_video)
            print(f"tap: delivered {dict(engine.tap.delivered)}, dropped {engine.tap.dropped}")

            # the officer ends the call: the victim is told and disconnected
            await asyncio.wrap_future(engine.end_call(appt, "finished"))
            ended = await w.events.wait(ev.CallEnded)
            assert (ended.appointment, ended.by) == (appt, "officer")
            await until(lambda: any(m["type"] == "bye" for m in victim.messages), what="victim told")
            await until(lambda: victim.closed_code is not None, what="victim socket closed")
            assert engine.session(appt) is None
            assert engine.latest_local_frame() is None  # the camera is released after the call
            assert not [e for e in w.events.of(ev.Error) if e.code not in ("device-substituted",)]

    run(main())


def test_the_victim_hangs_up():
    async def main() -> None:
        async with World() as w:
            appt = "appt-call-2"
            victim, _ = await connected_call(w, appt)
            await until(lambda: victim.frames["video"] >= 3, what="victim video")
            await victim.hang_up()
            ended = await w.events.wait(ev.CallEnded)
            assert (ended.appointment, ended.by, ended.reason) == (appt, "victim", "victim-ended")
            assert w.engine.session(appt) is None
            await w.events.wait(ev.VictimLeft, lambda e: e.appointment == appt)

    run(main())


def test_quick_exit_in_the_call_reaches_the_officer_and_ends_it():
    async def main() -> None:
        async with World() as w:
            appt = "appt-call-qx"
            victim, _ = await connected_call(w, appt)
            await until(lambda: victim.frames["video"] >= 3, what="victim video")
            # What the page does: navigate to the link's exit route, with its cookie.
            async with victim.http.get(f"{victim.base}/j/{victim.token}/exit", allow_redirects=False,
                                       headers={"Cookie": f"{COOKIE}={victim.cookie}"}) as r:
                assert r.status == 303
            exit_event = await w.events.wait(ev.QuickExit)
            assert exit_event == ev.QuickExit(appt, held=False)
            await w.events.wait(ev.VictimLeft, lambda e: e.appointment == appt)
            await w.events.wait(ev.CallEnded, lambda e: e.appointment == appt)

    run(main())


def test_trickled_candidates_even_ahead_of_the_answer():
    """Browsers trickle: candidates come as `ice` messages, possibly before the answer."""

    async def main() -> None:
        async with World() as w:
            victim, _ = await connected_call(w, "appt-trickle", trickle=True)
            session = w.engine.session("appt-trickle")
            await until(lambda: session.frames_in["video"] >= 3 and victim.frames["video"] >= 3,
                        what="media both ways")
            ice = session.pc.getTransceivers()[0].receiver.transport.transport  # RTCIceTransport
            remote = ice.getRemoteCandidates()
            assert any(c.type == "host" and c.ip == "127.0.0.1" for c in remote)  # from the trickle

    run(main())


def test_restart_rebuilds_the_connection():
    async def main() -> None:
        async with World() as w:
            appt = "appt-call-3"
            victim, _ = await connected_call(w, appt)
            session = w.engine.session(appt)
            first = (await w.events.wait(ev.VerificationCode)).code
            await asyncio.wrap_future(w.engine.restart_ice(appt))
            await w.events.wait(ev.CallStateChanged, lambda e: e.state == "restarting")
            await until(lambda: len(w.events.of(ev.VerificationCode)) == 2, what="second code")
            states = [e.state for e in w.events.of(ev.CallStateChanged)]
            await until(lambda: "connected" in [e.state for e in w.events.of(ev.CallStateChanged)][
                states.index("restarting"):], what="connected again")
            assert session.state == "connected" and w.engine.session(appt) is session
            before = session.frames_in["video"]
            await until(lambda: session.frames_in["video"] > before + 5, what="video after restart")
            second = w.events.of(ev.VerificationCode)[1].code
            assert victim.codes == [first, second]
            assert any(m.get("iceRestart") for m in victim.messages if m["type"] == "offer")
            # a fresh certificate for the fresh connection, each committed to before its offer
            assert len(set(victim.answer_fingerprints)) == 2
            assert [commitment(f) for f in victim.answer_fingerprints] == victim.sent_commits[:2]

    run(main())


# --- automatic ICE restarts (docs/call-engine.md "Reconnecting") --------------------------


async def reconnected(w: World, session: Any, codes: int) -> None:
    """Wait for the ``codes``-th verification code and the call connected after it."""
    await until(lambda: len(w.events.of(ev.VerificationCode)) >= codes, what=f"code {codes}")
    await until(lambda: session.state == "connected", what="connected again")
    before = session.frames_in["video"]
    await until(lambda: session.frames_in["video"] > before + 5, what="video after the restart")


def test_a_network_change_on_the_officers_computer_restarts_the_call_by_itself():
    async def main() -> None:
        async with World() as w:
            appt = "appt-net-1"
            interfaces = [["192.0.2.10", "fd00::10"]]  # the office Wi-Fi
            victim, _ = await connected_call(w, appt, engine_kw={"network_poll": 0.05},
                                             addresses=lambda: interfaces[0])
            session = w.engine.session(appt)
            await w.events.wait(ev.VerificationCode)
            await asyncio.sleep(0.3)
            assert session.auto_restarts == 0  # nothing changed, nothing restarted
            interfaces[0] = ["198.51.100.7"]  # docked, or a phone's hotspot took over
            await w.events.wait(ev.CallStateChanged, lambda e: e.state == "restarting")
            await reconnected(w, session, 2)
            assert session.auto_restarts == 1 and w.engine.session(appt) is session
            assert sum(1 for m in victim.messages if m["type"] == "offer" and m.get("iceRestart")) == 1
            assert len(victim.codes) == 2 and victim.codes[-1] == session.code

    run(main())


def test_the_victims_phone_can_ask_for_a_restart_and_a_flapping_network_is_bounded():
    async def main() -> None:
        async with World() as w:
            appt = "appt-net-2"
            victim, _ = await connected_call(w, appt, engine_kw={"auto_restart_max": 2, "network_poll": 0})
            session = w.engine.session(appt)
            assert w.engine.network is None  # network_poll 0: no watcher
            await w.events.wait(ev.VerificationCode)
            await victim.ws.send_json({"type": "restart"})  # the phone moved from Wi-Fi to 4G
            await reconnected(w, session, 2)
            assert session.auto_restarts == 1
            for _ in range(4):  # a flapping network: asks again and again
                await victim.ws.send_json({"type": "restart"})
                await asyncio.sleep(0.02)
            await reconnected(w, session, 3)
            await asyncio.sleep(1.0)
            assert session.auto_restarts == 2  # the limit: no rebuild loop
            assert session.state == "connected" and not w.events.of(ev.CallEnded)

    run(main())


# --- the commitment to the victim's fingerprint (docs/victim-page.md) --------------------


async def waiting_victim(w: World, appt: str, **kw: Any) -> Victim:
    victim = await w.victim(appt, **kw)
    await w.events.wait(ev.VictimWaiting, lambda e: e.appointment == appt)
    return victim


async def started_engine(w: World, **kw: Any) -> CallEngine:
    engine = w.make_engine(**kw)
    engine.start()
    await w.events.wait(ev.SignallingChanged, lambda e: e.connected)
    return engine


def offers(victim: Victim) -> list[dict]:
    return [m for m in victim.messages if m["type"] == "offer"]


def test_a_matching_commitment_connects_as_before():
    async def main() -> None:
        async with World() as w:
            appt = "appt-commit-ok"
            victim, _ = await connected_call(w, appt)
            session = w.engine.session(appt)
            # the offer was bound to the commit sent before it, and the answer opened it
            assert session.commit == victim.sent_commits[0]
            assert commitment(victim.answer_fingerprints[0]) == victim.sent_commits[0]
            code = await w.events.wait(ev.VerificationCode)
            assert victim.codes == [code.code] and session.code == code.code
            assert not [e for e in w.events.of(ev.Error) if e.code != "device-substituted"]
            # the page's next commitment (for a restart) replaces the opened one
            await until(lambda: len(victim.sent_commits) == 2, what="the next commit")
            await until(lambda: w.engine.commits.get(appt) == victim.sent_commits[1],
                        what="the next commit at the engine")

    run(main())


def test_an_answer_that_does_not_open_the_commitment_stops_the_call():
    """A man in the middle must show the officer a certificate other than the
    one the victim's phone committed to: the call is stopped, no code is shown,
    and the rendezvous and the engine go on serving others."""

    async def main() -> None:
        async with World() as w:
            engine = await started_engine(w)
            appt = "appt-mitm"
            impostor = await waiting_victim(w, appt, impostor=True)
            await asyncio.wrap_future(engine.start_call(appt))  # the offer went out

            err = await w.events.wait(ev.Error, lambda e: e.code == "commit-mismatch")
            assert err.appointment == appt and err.message == COMMIT_MISMATCH
            assert "someone may be interfering" in err.message and "send a new link" in err.message
            ended = await w.events.wait(ev.CallEnded, lambda e: e.appointment == appt)
            assert (ended.by, ended.reason) == ("engine", "verification-failed")
            assert engine.session(appt) is None
            assert not w.events.of(ev.VerificationCode)
            states = [e.state for e in w.events.of(ev.CallStateChanged) if e.appointment == appt]
            assert "connected" not in states and "connecting" not in states and states[-1] == "closed"
            # it really was the other certificate, and its side never connected
            assert impostor.sent_commits and impostor.answer_fingerprints
            assert commitment(impostor.answer_fingerprints[0]) != impostor.sent_commits[0]
            # the link is spent: the phone is told the call ended
            await until(lambda: any(m["type"] == "bye" for m in impostor.messages), what="bye")
            assert "connected" not in impostor.connection_states
            assert engine.latest_local_frame() is None  # the camera was let go

            # another victim on the same engine and rendezvous: a normal call
            other = "appt-after-mitm"
            honest = await waiting_victim(w, other)
            await asyncio.wrap_future(engine.start_call(other))
            await w.events.wait(ev.CallStateChanged, lambda e: e.appointment == other and e.state == "connected")
            code = await w.events.wait(ev.VerificationCode, lambda e: e.appointment == other)
            assert honest.codes == [code.code]
            assert [e.code for e in w.events.of(ev.Error) if e.code != "device-substituted"] == ["commit-mismatch"]

    run(main())


def test_fingerprints_split_across_m_sections_stop_the_call():
    """The attack: the impostor's certificate as sha-384 in the first m-section
    (what aiortc checks DTLS against), the committed honest sha-256 in the
    others (what the code and the commitment used to read). Refused before
    DTLS starts, with the reason shown; no code."""

    async def main() -> None:
        async with World() as w:
            engine = await started_engine(w)
            appt = "appt-split"
            attacker = await waiting_victim(w, appt, impostor=True, split_fingerprints=True)
            await asyncio.wrap_future(engine.start_call(appt))
            err = await w.events.wait(ev.Error, lambda e: e.code == "fingerprint-mismatch")
            assert err.appointment == appt and "conflicting security fingerprints" in err.message
            ended = await w.events.wait(ev.CallEnded, lambda e: e.appointment == appt)
            assert (ended.by, ended.reason) == ("engine", "verification-failed")
            assert not w.events.of(ev.VerificationCode)
            assert "connected" not in attacker.connection_states
            # The same answer without the split opens the commitment check as before:
            # only the m-section rule stopped it.
            assert attacker.sent_commits

    run(main())


def test_the_code_comes_from_the_certificate_dtls_used(monkeypatch):
    """An honest call: the peer certificate aiortc's DTLS accepted is the one the
    answer announced, and the code is made from it. Were it another (an aiortc
    that checked less), the call stops."""

    async def main() -> None:
        async with World() as w:
            appt = "appt-dtls"
            victim, _ = await connected_call(w, appt)
            engine = w.engine
            code = await w.events.wait(ev.VerificationCode, lambda e: e.appointment == appt)
            pc = engine.session(appt).pc
            assert dtls_peer_fingerprints(pc) == {victim.answer_fingerprints[-1]}
            assert victim.codes[-1] == code.code

            import evr_desktop.call.engine as engine_module

            monkeypatch.setattr(engine_module, "dtls_peer_fingerprints", lambda _pc: {"00:" * 31 + "00"})
            other = "appt-dtls-2"
            await waiting_victim(w, other)
            await asyncio.wrap_future(engine.start_call(other))
            err = await w.events.wait(ev.Error, lambda e: e.code == "dtls-mismatch")
            assert err.appointment == other and "different key" in err.message
            await w.events.wait(ev.CallEnded, lambda e: e.appointment == other)
            assert [c.appointment for c in w.events.of(ev.VerificationCode)] == [appt]

    run(main())


def test_the_offer_waits_for_the_commitment():
    """The officer starts the call before the victim's phone has committed: the
    call waits (state "waiting") and no offer goes out until the commit does."""

    async def main() -> None:
        async with World() as w:
            engine = await started_engine(w)
            appt = "appt-commit-late"
            victim = await waiting_victim(w, appt, auto_commit=False)
            started = asyncio.wrap_future(engine.start_call(appt))
            await w.events.wait(ev.CallStateChanged, lambda e: e.appointment == appt and e.state == "waiting")
            await asyncio.sleep(0.3)
            assert not offers(victim) and not started.done()
            await victim.commit()
            await started
            await w.events.wait(ev.CallStateChanged, lambda e: e.appointment == appt and e.state == "connected")
            assert engine.session(appt).commit == victim.sent_commits[0]
            states = [e.state for e in w.events.of(ev.CallStateChanged) if e.appointment == appt]
            assert states[:2] == ["waiting", "calling"]

    run(main())


def test_a_restart_waits_for_the_next_commitment():
    """Once an answer has revealed the committed fingerprint, a restart must not
    reuse that commitment: its offer waits for the page's next one."""

    async def main() -> None:
        async with World() as w:
            engine = await started_engine(w)
            appt = "appt-commit-restart"
            victim = await waiting_victim(w, appt, auto_commit=False)
            await victim.commit()
            await asyncio.wrap_future(engine.start_call(appt))
            await w.events.wait(ev.CallStateChanged, lambda e: e.appointment == appt and e.state == "connected")
            assert appt not in engine.commits  # opened by the answer

            restarted = asyncio.wrap_future(engine.restart_ice(appt))
            await until(lambda: [e.state for e in w.events.of(ev.CallStateChanged)][-1:] == ["waiting"],
                        what="restart waiting for a commit")
            await asyncio.sleep(0.3)
            assert len(offers(victim)) == 1 and not restarted.done()
            # the page re-sending the opened commitment does not count
            await victim.ws.send_json({"type": "commit", "hash": victim.sent_commits[0]})
            await asyncio.sleep(0.3)
            assert len(offers(victim)) == 1
            await victim.commit()
            await restarted
            await until(lambda: len(w.events.of(ev.VerificationCode)) == 2, what="second code")
            await until(lambda: [e.state for e in w.events.of(ev.CallStateChanged)][-1] == "connected",
                        what="connected again")
            assert offers(victim)[1].get("iceRestart") is True
            assert engine.session(appt).commit == victim.sent_commits[1]
            assert victim.answer_fingerprints[0] != victim.answer_fingerprints[1]
            assert victim.codes == [e.code for e in w.events.of(ev.VerificationCode)]

    run(main())


def test_no_commitment_in_time_is_a_plain_message():
    async def main() -> None:
        async with World() as w:
            engine = await started_engine(w, commit_timeout=0.5)
            appt = "appt-no-commit"
            victim = await waiting_victim(w, appt, auto_commit=False)
            # a malformed commit (as a broken rendezvous might relay) is ignored
            await asyncio.wrap_future(engine.submit(engine._on_signal(
                {"type": "commit", "appointment": appt, "hash": "AB" * 32})))
            assert appt not in engine.commits
            with pytest.raises(CommitTimeout):
                await asyncio.wrap_future(engine.start_call(appt))
            err = await w.events.wait(ev.Error, lambda e: e.code == "no-commit")
            assert err.appointment == appt and "reload the page" in err.message
            assert "Traceback" not in err.message and "commit" not in err.message
            ended = await w.events.wait(ev.CallEnded, lambda e: e.appointment == appt)
            assert ended.by == "engine" and engine.session(appt) is None
            assert not offers(victim)
            assert not any(m["type"] == "bye" for m in victim.messages)  # the link is not spent
            # nobody in the waiting room at all
            with pytest.raises(CommitTimeout):
                await asyncio.wrap_future(engine.start_call("appt-nobody"))
            err = await w.events.wait(ev.Error, lambda e: e.appointment == "appt-nobody")
            assert (err.code, err.message) == (
                "no-commit", "The victim is not in the waiting room, so the call was not started.")

    run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_rendezvous_is_a_plain_error():
    async def main() -> None:
        async with World() as w:
            engine = w.make_engine(url=f"http://127.0.0.1:{_free_port()}", reconnect_initial=0.1)
            engine.start()
            err = await w.events.wait(ev.Error)
            assert err.code == "unreachable" and not err.fatal
            assert "Traceback" not in err.message and err.message.startswith("Cannot reach")
            await asyncio.sleep(0.5)  # several retries: still one message per outage
            assert len(w.events.of(ev.Error)) == 1
            with pytest.raises(ConnectionError):
                await asyncio.wrap_future(engine.start_call("appt-x"))
            assert w.events.of(ev.Error)[-1].code == "not-connected"

    run(main())


def test_wrong_secret_is_a_plain_fatal_error():
    async def main() -> None:
        async with World() as w:
            engine = w.make_engine(secret="not-the-officer-secret-at-all")
            engine.start()
            err = await w.events.wait(ev.Error)
            assert (err.code, err.fatal) == ("unauthorized", True)
            assert "credentials" in err.message and "Traceback" not in err.message
            assert not w.events.of(ev.SignallingChanged)

    run(main())


def test_engine_reconnects_after_its_socket_drops():
    async def main() -> None:
        async with World() as w:
            engine = w.make_engine(reconnect_initial=0.1)
            engine.start()
            await w.events.wait(ev.SignallingChanged, lambda e: e.connected)
            # a victim joins; the officer's socket drops and comes back: still told who waits
            await w.victim("appt-r")
            await w.events.wait(ev.VictimWaiting)
            from evr_desktop.rendezvous.server import RENDEZVOUS

            officer = w.runner.app[RENDEZVOUS].officers["officer"]
            await officer.ws.close(code=1011, message=b"test drop")
            await w.events.wait(ev.SignallingChanged, lambda e: not e.connected)
            await until(lambda: len([e for e in w.events.of(ev.SignallingChanged) if e.connected]) == 2,
                        what="reconnected")
            await until(lambda: len(w.events.of(ev.VictimWaiting)) == 2, what="waiting snapshot")
            assert [e.code for e in w.events.of(ev.Error)] == ["dropped"]

    run(main())


# --- pieces, without a call ------------------------------------------------------------

FP_A = ":".join(["AB"] * 31 + ["CD"])
FP_B = ":".join(["01"] * 31 + ["EF"])


def test_verification_code_known_vector():
    """The vector docs/call-engine.md gives the victim page's JavaScript."""
    from evr_desktop.domain.verification import code_from_fingerprints

    assert code_from_fingerprints(FP_A, FP_B) == "061911"
    assert code_from_fingerprints(FP_B.lower(), FP_A) == "061911"  # order and case do not matter
    assert code_from_fingerprints(FP_A, FP_A.replace("CD", "CE")) != "061911"


def test_verification_code_reads_the_sha256_line_of_each_sdp():
    from evr_desktop.domain.verification import NoFingerprint, sha256_fingerprint

    local = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
             f"a=fingerprint:sha-384 {FP_B}:00\r\na=fingerprint:sha-256 {FP_A.lower()}\r\n")
    remote = f"v=0\r\na=fingerprint:SHA-256 {FP_B}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    assert sha256_fingerprint(local) == FP_A
    assert verification_code(local, remote) == verification_code(remote, local) == "061911"
    with pytest.raises(NoFingerprint):
        sha256_fingerprint("v=0\r\na=fingerprint:sha-1 AB:CD\r\n")


class _Codec:
    def __init__(self, name: str, kind: str = "video", rate: int = 90000):
        self.name, self.mimeType, self.clockRate = name, f"{kind}/{name}", rate


def test_tap_drops_and_counts_when_the_recorder_falls_behind():
    from evr_desktop.call.tap import EncodedFrameTap

    release = threading.Event()
    got: list[EncodedFrame] = []

    def slow_sink(frame: EncodedFrame) -> None:
        release.wait(5)
        got.append(frame)

    tap = EncodedFrameTap(slow_sink, maxsize=4)
    tap.start()
    vp8 = _Codec("VP8")
    t0 = time.perf_counter()
    results = [tap.offer("a", RECEIVED, "video", vp8, i, bytes([0x10, i])) for i in range(20)]
    assert time.perf_counter() - t0 < 0.05  # never blocks, however slow the sink
    assert results.count(False) == tap.dropped >= 20 - 5
    release.set()
    tap.close()
    assert len(got) == 20 - tap.dropped and tap.delivered[(RECEIVED, "video")] == len(got)
    assert got[0].keyframe and got[0].codec == "video/VP8"  # VP8 P bit clear


def test_tap_assembles_sent_payloads_and_survives_a_failing_sink():
    from aiortc.codecs.vpx import VpxPayloadDescriptor

    from evr_desktop.call.tap import EncodedFrameTap, _is_keyframe

    calls = []

    def sink(frame: EncodedFrame) -> None:
        calls.append(frame)
        raise RuntimeError("disk full")

    tap = EncodedFrameTap(sink)
    tap.start()
    d1 = bytes(VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=5))
    d2 = bytes(VpxPayloadDescriptor(partition_start=0, partition_id=0, picture_id=5))
    tap.offer("a", SENT, "video", _Codec("VP8"), 3000, [d1 + b"\x00abc", d2 + b"def"])
    tap.offer("a", SENT, "audio", _Codec("opus", "audio", 48000), 960, [b"\x78opus"])
    tap.close()
    assert [f.data for f in calls] == [b"\x00abcdef", b"\x78opus"]
    assert tap.sink_errors == 2 and tap.delivered[(SENT, "video")] == 1
    assert _is_keyframe("H264", b"\x00\x00\x00\x01\x67abc") and not _is_keyframe("H264", b"\x00\x00\x01\x41x")
    assert not _is_keyframe("VP8", b"\x01\x02")


def test_tap_refuses_a_receiver_that_already_started():
    from evr_desktop.call.tap import EncodedFrameTap, TapUnsupported, tap_receiver

    class Started:
        pass

    import queue as _queue

    r = Started()
    r._RTCRtpReceiver__decoder_queue = _queue.Queue()
    r._RTCRtpReceiver__decoder_thread = threading.Thread(target=lambda: None)
    with pytest.raises(TapUnsupported):
        tap_receiver(r, EncodedFrameTap(), "a", "video")
    with pytest.raises(TapUnsupported):
        tap_receiver(object(), EncodedFrameTap(), "a", "video")
