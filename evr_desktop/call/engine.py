"""The call engine: one asyncio loop on its own thread running the signalling
client (the officer's socket to the rendezvous) and one aiortc peer
connection per call.

Threads (see docs/design.md "Threads" and docs/call-engine.md):

- ``call-engine``: the event loop. aiortc, the signalling WebSocket, stats.
  Listeners' ``on_event`` runs here: keep it short (the UI bridge only queues
  a Qt signal).
- ``capture-video`` / ``capture-audio``: read the camera and microphone (or
  the synthetic sources), paced by the device, and wrap frames for aiortc.
- ``display-frames``: converts the newest decoded remote frame to BGRA for
  ``latest_remote_bgra()`` / ``latest_remote_frame()`` (latest-wins: older frames are dropped, never
  queued), then calls ``frame_listener(key)`` so the UI paints it at once
  instead of finding it at its next poll.
- ``encoded-tap``: hands encoded frames to the recorder (see tap.py).
- aiortc's own decoder threads and its executor for encoding.

Everything the UI calls is thread-safe and returns at once:
``submit(coro)`` and the helpers built on it return a
``concurrent.futures.Future``; ``latest_*_frame()`` read a reference under a
lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from .. import wire
from ..capture.devices import SourceChoice, choose_sources
from ..capture.tracks import AudioSourceTrack, VideoSourceTrack
from ..domain.phone_signing import (
    MAX_PAGE_MESSAGE,
    BadPageMessage,
    PhoneDeclined,
    is_review_id,
    parse_page_message,
    review_message,
)
from ..domain.verification import (
    FingerprintMismatch,
    NoFingerprint,
    check_commitment,
    code_from_fingerprints,
    fingerprint_set,
    is_commitment,
    sha256_fingerprint,
)
from . import events as ev
from .dtls import PeerUnknown, dtls_peer_fingerprints
from .ice import set_host_addresses
from .jitter import use_marker_jitter_buffer
from .netwatch import NetworkWatcher
from .tap import EncodedFrameTap, TapUnsupported, tap_receiver, tap_sender

log = logging.getLogger("evr_desktop.call")

DATA_CHANNEL = "evr"  # the one data channel: chat, and the statement sent to the phone for signing
MAX_CHAT = 4000
MAX_REVIEWS_OUT = 16  # statement reviews a call remembers sending (the page answers one of them)
BAD_PHONE_SIGNATURE = ("The victim's phone sent back a signature the app cannot use, so nothing was signed. "
                       "Send the statement to the phone again.")

COMMIT_MISMATCH = ("The victim's connection did not match what their phone announced; someone "
                   "may be interfering. The call was stopped — send a new link.")
FINGERPRINT_MISMATCH = ("The victim's answer carried conflicting security fingerprints, as someone "
                        "interfering with the connection would send. The call was stopped — send a new link.")
VICTIM_SAW_INTERFERENCE = ("The victim's phone stopped the call: the connection did not match what your app "
                           "announced, so someone may be interfering. Send a new link.")
DTLS_MISMATCH = ("The encrypted connection was made with a different key from the one the victim's "
                 "phone announced; someone may be in the middle. The call was stopped — send a new link.")


class CommitTimeout(Exception):
    """No commitment from the victim's page arrived in time: no offer was sent."""


@dataclass
class CallSettings:
    rendezvous_url: str  # "http://127.0.0.1:8123" (embedded) or "https://meet.example.police.uk"
    # The bearer the rendezvous knows this officer by: the embedded demo's secret,
    # or in force mode a short-lived officer token (rendezvous/officer_token.py),
    # replaced before it expires (CallEngine.set_officer_secret; read at each
    # connect). Empty: the signalling client waits until one is given.
    officer_secret: str
    # Force mode: a CA bundle (PEM file) to trust for the rendezvous's TLS, when
    # it is not one the system trusts. None: the system's.
    rendezvous_ca: str | None = None
    # Force mode: credentials expire and are renewed by the app, so a refusal
    # (401) waits for new ones instead of stopping for good (the demo's fixed secret).
    renewable_credentials: bool = False
    # [{"urls": "turn:turn.example:3478", "username": "...", "credential": "..."}]. Empty: host
    # candidates only (aiortc's own default, a public Google STUN server, is never used).
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    host_candidates: str = "default"  # see ice.py: "default" | "with-loopback" | "loopback-only"
    prefer_real_devices: bool = True
    camera: int | None = None
    microphone: int | None = None
    width: int = 640
    height: int = 480
    fps: float = 30.0
    prefer_video_codec: str = "VP8"  # x264 costs ~2x VP8's CPU (RECIPES.md)
    stats_interval: float = 1.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 10.0
    connect_timeout: float = 5.0
    tap_queue: int = 1024
    # How long an offer waits for the victim page's "commit" (its first comes
    # right after it opens its socket; a restart needs the next one).
    commit_timeout: float = 20.0
    # Automatic ICE restarts (docs/call-engine.md "Reconnecting"): poll this
    # computer's addresses every network_poll s (0: off); a connection that is
    # "disconnected" for ice_grace s, or "failed", is rebuilt; at most
    # auto_restart_max automatic restarts per auto_restart_window s.
    network_poll: float = 2.0
    ice_grace: float = 3.0
    auto_restart_max: int = 3
    auto_restart_window: float = 60.0


Listener = Callable[[ev.Event], None]


def rendezvous_tls(s: CallSettings) -> Any:
    """TLS for the rendezvous: the system's trust, or the force's CA bundle."""
    if s.rendezvous_ca is None:
        return True
    import ssl

    return ssl.create_default_context(cafile=s.rendezvous_ca)


async def request_link(s: CallSettings, appointment_id: str, slot_start: Any, slot_end: Any) -> dict[str, Any]:
    """Force mode: a join link from the rendezvous's API, issued as this officer
    (the link then belongs to them: its victim's events reach them only).
    ``slot_start``/``slot_end``: aware datetimes. Raises ``ConnectionError``
    with plain words."""
    body = {"appointment": appointment_id, "slot_start": slot_start.isoformat(), "slot_end": slot_end.isoformat()}
    timeout = aiohttp.ClientTimeout(total=15, connect=s.connect_timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                         connector=aiohttp.TCPConnector(ssl=rendezvous_tls(s))) as http:
            async with http.post(s.rendezvous_url.rstrip("/") + "/api/links", json=body,
                                 headers={"Authorization": f"Bearer {s.officer_secret}"},
                                 allow_redirects=False) as r:
                status = r.status
                data = await r.json() if status == 200 else None
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise ConnectionError(f"Cannot reach the rendezvous ({_plain_network_error(exc)}): no link was issued.") \
            from None
    if isinstance(data, dict) and isinstance(data.get("url"), str):
        return data
    words = {401: "refused this app's credentials", 409: "says the appointment belongs to another officer",
             503: "has too many live links"}.get(status, f"answered HTTP {status}")
    raise ConnectionError(f"The rendezvous {words}: no link was issued.")


def clean_ice_servers(value: Any) -> list[dict[str, Any]]:
    """``iceServers`` from the rendezvous, checked: only stun:/turn:/turns: URLs
    and string credentials; other keys dropped (RTCIceServer refuses unknown ones).
    aioice uses the first usable TURN URL, so the server lists UDP first."""
    out: list[dict[str, Any]] = []
    if not isinstance(value, list):
        return out
    for server in value[:4]:
        if not isinstance(server, dict):
            continue
        urls = server.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls:
            continue
        urls = [
            u for u in urls[:4] if isinstance(u, str) and u.startswith(("stun:", "turn:", "turns:")) and len(u) < 256
        ]
        if not urls:
            continue
        clean: dict[str, Any] = {"urls": urls}
        for key in ("username", "credential"):
            if isinstance(server.get(key), str) and len(server[key]) < 512:
                clean[key] = server[key]
        out.append(clean)
    return out


def _plain_network_error(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the connection was refused or the address could not be found"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "its security certificate was not accepted"
    return "the network connection failed"


# --- latest-wins display frames ------------------------------------------------------


class LatestFrames:
    """Newest decoded frame per key, converted to BGRA on a worker thread.
    ``put`` (event loop) and ``get`` (any thread) never wait on a conversion;
    a frame that arrives before the previous one was converted replaces it.

    ``notify(key)``, if given, runs on the conversion thread after each
    conversion (keep it short: the UI only emits a queued signal)."""

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._converted: dict[str, np.ndarray] = {}
        self._wake = threading.Event()
        self._closed = False
        self.converted = 0
        self.replaced = 0  # frames dropped before conversion (latest-wins)
        self._thread = threading.Thread(target=self._work, name="display-frames", daemon=True)
        self._thread.start()

    def put(self, key: str, frame) -> None:
        with self._lock:
            if key in self._pending:
                self.replaced += 1
            self._pending[key] = frame
        self._wake.set()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            return self._converted.get(key)

    def forget(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)
            self._converted.pop(key, None)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(2.0)

    def _work(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            with self._lock:
                pending, self._pending = self._pending, {}
            for key, frame in pending.items():
                try:
                    # BGRA: the byte order of Qt's Format_RGB32 on little-endian
                    # machines, which Qt paints and scales ~7x faster than RGB888
                    # (the call window paints it without a conversion or a copy).
                    bgra = frame.to_ndarray(format="bgra")
                except Exception:
                    log.exception("display: could not convert a frame")
                    continue
                with self._lock:
                    self._converted[key] = bgra
                self.converted += 1
                if self._notify is not None:
                    try:
                        self._notify(key)
                    except Exception:
                        log.exception("display: the frame listener failed")


# --- signalling -------------------------------------------------------------------------


class SignallingClient:
    """The officer's one WebSocket to the rendezvous, reconnecting with
    exponential back-off (with jitter) until stopped. A refused secret (401)
    or a takeover by another app (close 4001) stops it: retrying cannot help."""

    def __init__(self, engine: CallEngine):
        self.engine = engine
        s = engine.settings
        self.url = s.rendezvous_url.rstrip("/") + "/ws/officer"
        self.connected = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        # Set (on the engine's loop) when the app gives new credentials.
        self.credentials_changed = asyncio.Event()

    async def _credentials(self) -> str:
        """The current bearer, waiting (without a connection attempt) while there is none."""
        while not self.engine.settings.officer_secret and not self._stopping:
            self.credentials_changed.clear()
            await self.credentials_changed.wait()
        return self.engine.settings.officer_secret

    async def run(self) -> None:
        s = self.engine.settings
        timeout = aiohttp.ClientTimeout(total=None, connect=s.connect_timeout,
                                        sock_connect=s.connect_timeout)
        self._http = aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                           connector=aiohttp.TCPConnector(ssl=rendezvous_tls(s)))
        delay = s.reconnect_initial
        outage_reported = False
        try:
            while not self._stopping:
                secret = await self._credentials()
                if self._stopping:
                    return
                try:
                    ws = await self._http.ws_connect(
                        self.url,
                        headers={"Authorization": f"Bearer {secret}"},
                        heartbeat=15.0,
                        compress=0,
                        max_msg_size=256 * 1024,
                    )
                except aiohttp.WSServerHandshakeError as exc:
                    if exc.status == 401 and self.engine.settings.renewable_credentials:
                        if self.engine.settings.officer_secret != secret:
                            continue  # new credentials arrived meanwhile: try them at once
                        self.engine._emit(ev.Error(
                            "The force's video service did not accept this officer's credentials. "
                            "Calls are unavailable until the app is unlocked again; if it keeps "
                            "happening, contact IT (the certificate may be revoked or expired).",
                            code="unauthorized"))
                        self.credentials_changed.clear()
                        await self.credentials_changed.wait()
                        delay = s.reconnect_initial
                        continue
                    if exc.status == 401:
                        self.engine._emit(ev.Error(
                            "The rendezvous refused this app's credentials, so victims "
                            "cannot be reached. Restart the app; if it keeps happening, "
                            "contact IT.", code="unauthorized", fatal=True))
                        return
                    message = (f"The rendezvous answered with an error (HTTP {exc.status}); "
                               "retrying.")
                    code = "rendezvous-error"
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    message = (f"Cannot reach the rendezvous: {_plain_network_error(exc)}. "
                               "The app keeps trying.")
                    code = "unreachable"
                else:
                    delay = s.reconnect_initial
                    outage_reported = False
                    self._ws = ws
                    self.connected = True
                    self.engine._emit(ev.SignallingChanged(True))
                    try:
                        await self._read(ws)
                    finally:
                        self._ws = None
                        self.connected = False
                        if not self._stopping:
                            self.engine._emit(ev.SignallingChanged(False))
                    if ws.close_code == 4001 and not self._stopping:
                        self.engine._emit(ev.Error(
                            "Another copy of the app connected to the rendezvous and took "
                            "over the victims' calls.", code="replaced", fatal=True))
                        return
                    if self._stopping:
                        return
                    message, code = "The connection to the rendezvous dropped; reconnecting.", "dropped"
                if self._stopping:
                    return
                if not outage_reported:  # once per outage, not once per retry
                    outage_reported = True
                    self.engine._emit(ev.Error(message, code=code))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, s.reconnect_max)
        finally:
            await self._http.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                data = wire.loads(msg.data)
            except wire.MessageError as exc:  # not JSON, or nested too deep: dropped, the task goes on
                log.warning("signalling: a message refused (%s)", exc.code)
                continue
            if not isinstance(data, dict):
                continue
            try:
                await self.engine._on_signal(data)
            except Exception:
                log.exception("signalling: handling a %r message failed", data.get("type"))

    async def send(self, message: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_str(json.dumps(message, separators=(",", ":")))
            return True
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            return False

    async def stop(self) -> None:
        self._stopping = True
        self.credentials_changed.set()  # a wait for credentials ends too
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await asyncio.wait_for(ws.close(), 2.0)
            except (TimeoutError, Exception):
                pass


# --- local media -------------------------------------------------------------------------


class LocalMedia:
    """The officer's camera and microphone tracks, shared by every call
    through a ``MediaRelay`` and stopped when the last call ends."""

    def __init__(self, choice: SourceChoice):
        self.choice = choice
        self.video = VideoSourceTrack(choice.video)
        self.audio = AudioSourceTrack(choice.audio)
        self.relay = MediaRelay()
        self.users = 0
        # The camera opens while ICE and DTLS run; audio starts at the first
        # recv() (a microphone opened early would only build a backlog).
        self.video.start()

    def stop(self) -> None:
        self.video.stop()
        self.audio.stop()


# --- one call ----------------------------------------------------------------------------


class CallSession:
    def __init__(self, engine: CallEngine, appointment: str):
        self.engine = engine
        self.appointment = appointment
        self.pc: RTCPeerConnection | None = None
        self.channel = None
        self.state = "new"
        self.code: str | None = None
        self._expected_peer: str | None = None  # the SHA-256 the victim's answer announced
        self._verified: object = None  # the peer connection whose DTLS peer was checked
        self.closed = False
        self.frames_in = {"video": 0, "audio": 0}
        self.remote_resolution: tuple[int, int] | None = None
        self.timings: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._tasks: set[asyncio.Task] = set()
        self._media: LocalMedia | None = None
        self._prev: dict[str, float] | None = None
        self._generation = 0  # bumped by a rebuild (restart_ice)
        self._early_ice: list[dict] = []
        self.commit: str | None = None  # the victim's commitment this offer is bound to
        self._auto_restarts: list[float] = []  # monotonic times of automatic restarts
        self._restarting = False
        self.auto_restarts = 0  # how many happened (tests, the log)
        self.reviews_out: list[str] = []  # ids of statements sent to the phone, newest last

    def _mark(self, what: str) -> None:
        self.timings.setdefault(what, time.monotonic() - self._t0)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_state(self, state: str) -> None:
        if state != self.state and not (self.closed and state != "closed"):
            self.state = state
            self.engine._emit(ev.CallStateChanged(self.appointment, state))

    async def start(self, *, ice_restart: bool = False) -> None:
        engine, s = self.engine, self.engine.settings
        self._generation += 1
        generation = self._generation
        self.commit = None
        engine._wake_commit_waiters(self.appointment)  # a superseded start() stops waiting
        if self._media is None:
            self._media = await engine._acquire_media()
        media = self._media
        # Time-limited TURN credentials from the rendezvous (per appointment,
        # refreshed on every victim_waiting) win over the static settings.
        servers = engine.turn_servers.get(self.appointment) or s.ice_servers
        pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[RTCIceServer(**server) for server in servers]))
        self.pc = pc
        video_sender = pc.addTrack(media.relay.subscribe(media.video, buffered=False))
        pc.addTrack(media.relay.subscribe(media.audio))
        for transceiver in pc.getTransceivers():
            if transceiver.sender is video_sender:
                caps = RTCRtpSender.getCapabilities("video").codecs
                want = f"video/{s.prefer_video_codec}".lower()
                transceiver.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == want]
                    + [c for c in caps if c.mimeType.lower() != want])
            try:
                tap_sender(transceiver.sender, engine.tap, self.appointment)
                tap_receiver(transceiver.receiver, engine.tap, self.appointment, transceiver.kind)
            except TapUnsupported as exc:
                log.error("encoded tap unavailable: %s", exc)
                engine._emit(ev.Error("Recording cannot tap this call's media (an unsupported "
                                      "aiortc version).", self.appointment, code="tap"))
            if transceiver.kind == "video" and use_marker_jitter_buffer(transceiver.receiver) is None:
                log.warning("video frames complete one frame later (aiortc's jitter buffer is not replaceable)")
        channel = pc.createDataChannel(DATA_CHANNEL, ordered=True)
        self.channel = channel

        @channel.on("message")
        def _on_message(message) -> None:
            self._on_channel_message(message)

        @channel.on("open")
        def _on_open() -> None:
            self._mark("datachannel_open")
            if self.appointment in self.engine.recording_on:
                self.send_recording_state()  # a restart's new channel: the page shows it again

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            if self.pc is not pc or self.closed:
                return
            state = pc.connectionState
            if state == "connected":
                self._mark("connected")
                await self._verify_peer(pc)
                if self.closed or self.pc is not pc:
                    return
            self._set_state(state)
            if state == "failed":
                self._spawn(self._restart_if_lost(pc, 0.0))
            elif state == "disconnected":
                self._spawn(self._restart_if_lost(pc, s.ice_grace))

        @pc.on("track")
        def _on_track(track) -> None:
            self._spawn(self._consume(track, pc))

        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)  # aiortc gathers every candidate here (no trickle)
        if self.closed or generation != self._generation:
            await pc.close()
            return
        # Our fingerprint goes out with the offer: the victim's page must have
        # committed to its own before that (docs/victim-page.md, "Commitment").
        commit = await self._await_commit(generation)
        if commit is None:  # closed or superseded while waiting
            await pc.close()
            return
        self.commit = commit
        message = {"type": "offer", "appointment": self.appointment,
                   "sdp": pc.localDescription.sdp}
        if ice_restart:
            message["iceRestart"] = True
        if not await engine.signalling.send(message):
            raise ConnectionError("the rendezvous is not connected")
        self._mark("offer_sent")
        self._set_state("calling")
        if generation == 1:
            self._spawn(self._poll_stats())

    async def _await_commit(self, generation: int) -> str | None:
        """The victim's latest commitment not yet opened by an answer; waits for
        one (state "waiting") up to ``commit_timeout``, then raises
        ``CommitTimeout``. None if the call was closed or restarted meanwhile."""
        engine = self.engine
        loop = asyncio.get_running_loop()
        deadline = loop.time() + engine.settings.commit_timeout
        while True:
            if self.closed or generation != self._generation:
                return None
            commit = engine.commits.get(self.appointment)
            if commit is not None:
                return commit
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CommitTimeout(self.appointment)
            self._set_state("waiting")
            arrived = engine._commit_arrived.setdefault(self.appointment, asyncio.Event())
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                pass

    def no_commit_message(self) -> str:
        if self.appointment in self.engine.waiting:
            return ("The victim's phone did not get ready for the call in time, so the call was "
                    "not started. Ask the victim to reload the page, or send a new link.")
        return "The victim is not in the waiting room, so the call was not started."

    async def stop_setup(self, message: str, code: str, reason: str, *, send_bye: bool) -> None:
        """Give up on this call: a plain Error for the officer, then close it."""
        engine = self.engine
        engine._emit(ev.Error(message, self.appointment, code=code))
        if engine.sessions.get(self.appointment) is self:
            del engine.sessions[self.appointment]
        await self.close("engine", reason, send_bye=send_bye)

    async def on_answer(self, sdp: str) -> None:
        pc = self.pc
        if pc is None or self.closed:
            return
        if pc.signalingState != "have-local-offer":
            log.warning("answer for %s in state %s: ignored", self.appointment, pc.signalingState)
            return
        if self.commit is None:  # our offer has not gone out: not an answer to it
            log.warning("answer for %s before the offer was sent: ignored", self.appointment)
            return
        self._mark("answer")
        # Checked before the answer is applied: an impostor's DTLS never starts.
        try:
            fingerprint_set(sdp)  # every m-section the same single set (domain/verification.py)
        except FingerprintMismatch:
            log.warning("call %s: the answer's m-sections carry different fingerprints; call stopped",
                        self.appointment)
            await self.stop_setup(FINGERPRINT_MISMATCH, "fingerprint-mismatch", "verification-failed",
                                  send_bye=True)
            return
        except NoFingerprint:
            pass  # the commitment check below refuses it
        if not check_commitment(self.commit, sdp):
            log.warning("call %s: the answer's fingerprint does not open the victim's "
                        "commitment; call stopped", self.appointment)
            await self.stop_setup(COMMIT_MISMATCH, "commit-mismatch", "verification-failed",
                                  send_bye=True)
            return
        self.engine._commit_opened(self.appointment, self.commit)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        early, self._early_ice = self._early_ice, []
        for data in early:
            try:
                await self.on_ice(data)
            except Exception:
                log.warning("a remote ICE candidate was refused", exc_info=True)
        self._expected_peer = sha256_fingerprint(sdp)  # opened the commitment just now
        self._set_state("connecting" if pc.connectionState != "connected" else "connected")
        if pc.connectionState == "connected":
            await self._verify_peer(pc)

    async def _verify_peer(self, pc: RTCPeerConnection) -> None:
        """Once DTLS is up: the certificate the handshake actually used must be the
        one the victim's answer announced (and their page committed to); the
        code is computed from it. A mismatch stops the call."""
        if self._verified is pc or self._expected_peer is None:
            return
        try:
            actual = dtls_peer_fingerprints(pc)
        except PeerUnknown:
            log.warning("call %s: this aiortc does not show the DTLS peer certificate; the code comes "
                        "from the SDP", self.appointment)
            actual = {self._expected_peer}
        if actual != {self._expected_peer}:
            log.warning("call %s: the DTLS peer certificate is not the one announced; call stopped",
                        self.appointment)
            await self.stop_setup(DTLS_MISMATCH, "dtls-mismatch", "verification-failed", send_bye=True)
            return
        self._verified = pc
        self.code = code_from_fingerprints(sha256_fingerprint(pc.localDescription.sdp), self._expected_peer)
        self.engine._emit(ev.VerificationCode(self.appointment, self.code))

    async def on_ice(self, data: dict) -> None:
        pc = self.pc
        if pc is None or self.closed:
            return
        if pc.remoteDescription is None:  # trickled ahead of the answer: keep (bounded)
            if len(self._early_ice) < 256:
                self._early_ice.append(data)
            return
        text = data.get("candidate")
        if not text:
            await pc.addIceCandidate(None)
            return
        try:
            cand = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        except (ValueError, IndexError):
            return
        cand.sdpMid = data.get("sdpMid")
        cand.sdpMLineIndex = data.get("sdpMLineIndex")
        if cand.sdpMid is None and cand.sdpMLineIndex is None:
            cand.sdpMLineIndex = 0
        await pc.addIceCandidate(cand)

    def _on_channel_message(self, message) -> None:
        if not isinstance(message, str) or len(message) > MAX_PAGE_MESSAGE:
            return
        try:
            data = wire.loads(message)
        except wire.MessageError:
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "chat":
            text, mid = data.get("text"), data.get("id")
            if isinstance(text, str) and 0 < len(text) <= MAX_CHAT and text.strip():
                self.engine._emit(ev.ChatReceived(
                    self.appointment, text, mid if isinstance(mid, str) else None))
        elif kind in ("statement_signed", "statement_declined"):
            self._on_statement_answer(data)

    def _on_statement_answer(self, data: dict[str, Any]) -> None:
        """The phone's answer to a statement sent for signing: checked here
        (``domain.phone_signing``) and for a review this call sent; anything
        else is refused with a plain Error, never a crash. Logs codes only."""
        try:
            answer = parse_page_message(data)
            if answer.review_id not in self.reviews_out:
                raise BadPageMessage("bad-id", "not a review this call sent")
        except BadPageMessage as exc:
            log.warning("call %s: the phone's %s was refused (%s)", self.appointment,
                        str(data.get("type"))[:20], exc.code)
            self.engine._emit(ev.Error(BAD_PHONE_SIGNATURE, self.appointment, code="bad-phone-signature"))
            return
        self.reviews_out.remove(answer.review_id)  # answered: a second answer is refused
        if isinstance(answer, PhoneDeclined):
            self.engine._emit(ev.StatementDeclined(self.appointment, answer.review_id))
            return
        log.info("call %s: the statement was signed on the phone (%d points)", self.appointment, answer.points)
        self.engine._emit(ev.StatementSigned(self.appointment, answer.review_id, answer.sha256, answer.strokes,
                                             answer.width, answer.height))

    async def send_statement_review(self, review_id: str, text: str, pages: int, declaration: str,
                                    kind: str) -> None:
        """The statement to the victim's phone for signing, over the data channel
        only (end to end encrypted; never relayed by the rendezvous). Raises
        ``ReviewTooLarge`` / ``ValueError`` (``review_message``) or
        ``ConnectionError`` when the channel is not open."""
        body = review_message(review_id, text, pages, declaration, kind)
        ch = self.channel
        if ch is None or ch.readyState != "open":
            raise ConnectionError("the call's data channel to the victim's phone is not open yet")
        ch.send(body)
        if review_id not in self.reviews_out:
            self.reviews_out = [*self.reviews_out, review_id][-MAX_REVIEWS_OUT:]

    async def withdraw_statement_review(self, review_id: str) -> None:
        """The officer withdrew a statement sent for signing: the phone puts it
        away, and an answer to it is refused from now on."""
        if not is_review_id(review_id):
            raise ValueError("a review id is 16-64 lowercase hex characters")
        if review_id in self.reviews_out:
            self.reviews_out.remove(review_id)
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            ch.send(json.dumps({"type": "statement_withdrawn", "id": review_id}))

    def send_recording_state(self) -> None:
        """Tell the victim's page whether the call is being recorded right now
        (issue 10: the page shows it). Sent only over the data channel, when open;
        the channel's ``open`` sends it again, so a reconnect keeps the page true."""
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            on = self.appointment in self.engine.recording_on
            ch.send(json.dumps({"type": "recording", "state": "on" if on else "off"}))

    async def send_chat(self, text: str, mid: str | None = None) -> str:
        """Over the data channel when open, else relayed by the rendezvous.
        Returns which way it went."""
        if not text.strip() or len(text) > MAX_CHAT:
            raise ValueError(f"a chat message is 1-{MAX_CHAT} characters")
        msg: dict[str, Any] = {"type": "chat", "text": text}
        if mid:
            msg["id"] = mid[:64]
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            ch.send(json.dumps(msg))
            return "datachannel"
        if await self.engine.signalling.send({**msg, "appointment": self.appointment}):
            return "signalling"
        raise ConnectionError("neither the data channel nor the rendezvous is connected")

    async def _consume(self, track, pc: RTCPeerConnection) -> None:
        display = self.engine.display
        key = f"remote:{self.appointment}"
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.pc is not pc:
                return
            kind = track.kind
            self.frames_in[kind] += 1
            if kind == "video":
                if self.frames_in["video"] == 1:
                    self._mark("first_remote_video")
                self.remote_resolution = (frame.width, frame.height)
                display.put(key, frame)
                self.engine._last_remote_key = key
            else:
                if self.frames_in["audio"] == 1:
                    self._mark("first_remote_audio")
                sink = self.engine.remote_audio_sink
                if sink is not None:
                    try:
                        sink(self.appointment, frame)
                    except Exception:
                        log.exception("remote audio sink failed")

    async def _poll_stats(self) -> None:
        interval = self.engine.settings.stats_interval
        while not self.closed:
            await asyncio.sleep(interval)
            pc = self.pc
            if pc is None or self.closed or pc.connectionState != "connected":
                continue
            try:
                report = await pc.getStats()
            except Exception:
                log.exception("getStats failed")
                continue
            self.engine._emit(self._stats_event(report))

    def _stats_event(self, report) -> ev.Stats:
        now = time.monotonic()
        rtts, lost_out = [], []
        received = lost = sent_bytes = recv_bytes = 0
        for stat in report.values():
            kind = getattr(stat, "type", "")
            if kind == "remote-inbound-rtp":
                if stat.roundTripTime is not None:
                    rtts.append(stat.roundTripTime)
                lost_out.append(stat.fractionLost)
            elif kind == "inbound-rtp":
                received += stat.packetsReceived
                lost += max(0, stat.packetsLost)
            elif kind == "transport":
                sent_bytes += stat.bytesSent
                recv_bytes += stat.bytesReceived
        cur = {"t": now, "received": received, "lost": lost, "sent": sent_bytes,
               "recv": recv_bytes}
        prev = self._prev or {"t": now - 1.0, "received": 0, "lost": 0, "sent": 0, "recv": 0}
        self._prev = cur
        dt = max(1e-3, now - prev["t"])
        d_recv, d_lost = received - prev["received"], lost - prev["lost"]
        media = self._media
        local = media.video.latest_rgb() if media is not None else None
        return ev.Stats(
            appointment=self.appointment,
            rtt_ms=round(max(rtts) * 1000, 1) if rtts else None,
            loss_in=(d_lost / (d_recv + d_lost)) if d_recv + d_lost > 0 else None,
            # aiortc reports RTCP's raw 8-bit fraction (0-255), not 0-1
            loss_out=(sum(lost_out) / len(lost_out) / 256) if lost_out else None,
            bitrate_in_kbps=round((recv_bytes - prev["recv"]) * 8 / dt / 1000, 1),
            bitrate_out_kbps=round((sent_bytes - prev["sent"]) * 8 / dt / 1000, 1),
            remote_resolution=self.remote_resolution,
            local_resolution=(local.shape[1], local.shape[0]) if local is not None else None,
            frames_in=self.frames_in["video"],
            frames_out=media.video.frames_produced if media is not None else 0,
        )

    async def restart(self) -> None:
        """aiortc cannot restart ICE on a live connection (no ``iceRestart``
        offer option; an RTCIceTransport's credentials are fixed), so a
        restart rebuilds the peer connection and sends a fresh offer marked
        ``iceRestart: true``; the victim's page answers such an offer with a
        fresh RTCPeerConnection. New DTLS certificates mean a new
        verification code (a VerificationCode event follows the answer)."""
        if self.closed:
            return
        old, self.pc = self.pc, None
        self._prev = None
        self._early_ice = []
        if old is not None:
            await old.close()
        self._set_state("restarting")
        self.timings.pop("connected", None)
        try:
            await self.start(ice_restart=True)
        except CommitTimeout:
            await self.stop_setup(self.no_commit_message(), "no-commit", "no commit",
                                  send_bye=False)
            raise

    async def auto_restart(self, why: str) -> bool:
        """An ICE restart nobody clicked for: this computer's addresses changed,
        the connection was lost, or the victim's page asked (its network
        changed). Skipped while one is under way or before the first offer;
        at most ``auto_restart_max`` per ``auto_restart_window`` seconds, so a
        network that keeps flapping cannot make the call rebuild itself in a
        loop. Returns whether a restart was made."""
        s = self.engine.settings
        if self.closed or self._restarting or self.pc is None or self.commit is None:
            return False
        now = time.monotonic()
        self._auto_restarts = [t for t in self._auto_restarts if now - t < s.auto_restart_window]
        if len(self._auto_restarts) >= s.auto_restart_max:
            log.warning("call %s: not restarting again (%s): %d restarts in %.0f s",
                        self.appointment, why, len(self._auto_restarts), s.auto_restart_window)
            return False
        self._auto_restarts.append(now)
        self.auto_restarts += 1
        log.info("call %s: restarting ICE automatically: %s", self.appointment, why)
        self._restarting = True
        try:
            await self.restart()
        except CommitTimeout:
            return False  # restart() has told the officer and closed the call
        finally:
            self._restarting = False
        return True

    async def _restart_if_lost(self, pc: RTCPeerConnection, after: float) -> None:
        """``pc`` went "disconnected" or "failed": give it ``after`` seconds to
        recover by itself, then restart. If no restart is allowed any more and
        the connection has failed, the call ends (the officer sees "The
        connection was lost", the victim gets a bye)."""
        if after > 0:
            await asyncio.sleep(after)
        if self.pc is not pc or self.closed or pc.connectionState not in ("disconnected", "failed"):
            return
        if await self.auto_restart(f"the connection was {pc.connectionState}"):
            return
        if self.pc is pc and not self.closed and not self._restarting and pc.connectionState == "failed":
            self.engine._emit(ev.Error("The connection to the victim was lost and could not be "
                                       "restored.", self.appointment, code="connection-failed"))
            await self.close("network", "connection-failed", send_bye=True)

    async def close(self, by: str, reason: str | None = None, *, send_bye: bool) -> None:
        if self.closed:
            return
        self.closed = True
        engine = self.engine
        engine._wake_commit_waiters(self.appointment)
        if send_bye:
            msg = {"type": "bye", "appointment": self.appointment}
            if reason:
                msg["reason"] = reason[:64]
            await engine.signalling.send(msg)
        pc, self.pc = self.pc, None
        for task in list(self._tasks):
            task.cancel()
        if pc is not None:
            try:
                await asyncio.wait_for(pc.close(), 5.0)
            except (TimeoutError, Exception):
                log.exception("closing the peer connection failed")
        if self._media is not None:
            engine._release_media()
            self._media = None
        engine.display.forget(f"remote:{self.appointment}")
        self.state = "closed"
        engine._emit(ev.CallStateChanged(self.appointment, "closed"))
        engine._emit(ev.CallEnded(self.appointment, by, reason))


# --- the engine ----------------------------------------------------------------------------


class CallEngine:
    """Construct cheaply; ``start()`` starts the thread and the signalling
    client; ``stop()`` ends every call (without spending the links) and the
    thread."""

    def __init__(
        self,
        settings: CallSettings,
        *,
        tap_sink: Callable[[Any], None] | None = None,
        sources: Callable[[], SourceChoice] | None = None,
    ):
        self.settings = settings
        self.tap = EncodedFrameTap(tap_sink, maxsize=settings.tap_queue)
        self.remote_audio_sink: Callable[[str, Any], None] | None = None  # (appointment, AudioFrame)
        self._sources = sources
        self.turn_servers: dict[str, list[dict[str, Any]]] = {}  # appointment -> iceServers from the rendezvous
        self._listeners = ev.Listeners(log)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._signalling_task: asyncio.Task | None = None
        self.signalling: SignallingClient | None = None
        self.display: LatestFrames | None = None
        # Called on the display thread with "remote:<appointment>" each time a
        # new remote frame is ready (the call window paints on it).
        self.frame_listener: Callable[[str], None] | None = None
        self.sessions: dict[str, CallSession] = {}
        self.waiting: set[str] = set()
        #: appointments whose recording is running (what the victim's page shows)
        self.recording_on: set[str] = set()
        # The victim page's commitments to its DTLS fingerprint (docs/victim-page.md):
        # the latest not yet opened by an answer, the last one opened, and who waits.
        self.commits: dict[str, str] = {}
        self._opened_commits: dict[str, str] = {}
        self._commit_arrived: dict[str, asyncio.Event] = {}
        self._media: LocalMedia | None = None
        self._last_remote_key: str | None = None
        self._muted = False
        self._camera_off = False
        self.network: NetworkWatcher | None = None  # polls the host's addresses (settings.network_poll)
        self.addresses: Callable[[], Iterable[str]] | None = None  # tests: stands in for the interfaces

    # -- listeners ---------------------------------------------------------------

    def add_listener(self, listener: Listener | Any) -> None:
        """``listener(event)`` or ``listener.on_event(event)``, called on the
        engine thread."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener | Any) -> None:
        self._listeners.remove(listener)

    def _emit(self, event: ev.Event) -> None:
        self._listeners.emit(event)

    def _frame_ready(self, key: str) -> None:
        fn = self.frame_listener
        if fn is not None:
            fn(key)

    def set_officer_secret(self, secret: str) -> None:
        """New credentials for the rendezvous (force mode's officer token, renewed
        by the app before it expires): used from the next connection on, and a
        client waiting for credentials tries at once. Thread-safe."""
        from dataclasses import replace

        # The settings object is immutable in use: swapping it is one reference assignment.
        self.settings = replace(self.settings, officer_secret=secret)
        loop, client = self._loop, self.signalling
        if loop is not None and client is not None and not loop.is_closed():
            loop.call_soon_threadsafe(client.credentials_changed.set)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        set_host_addresses(self.settings.host_candidates)
        self.display = LatestFrames(notify=self._frame_ready)
        self.tap.start()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="call-engine", daemon=True)
        self._thread.start()
        ready.wait()
        self.signalling = SignallingClient(self)

        async def begin() -> None:
            self._signalling_task = asyncio.get_running_loop().create_task(self.signalling.run())
            if self.settings.network_poll > 0:
                self.network = NetworkWatcher(self._network_changed, interval=self.settings.network_poll,
                                              addresses=self.addresses)
                self.network.start()

        self.submit(begin()).result(5)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        try:
            self.submit(self._shutdown()).result(timeout)
        except Exception:
            log.exception("call engine shutdown was not clean")
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(timeout)
        self._thread = None
        self.tap.close()
        if self.display is not None:
            self.display.close()

    async def _network_changed(self, old: frozenset[str], new: frozenset[str]) -> None:
        """This computer's addresses changed (docked, Wi-Fi to hotspot, VPN):
        the candidate pair of every live call may be dead. Restart them now
        rather than wait for ICE's consent checks to time out."""
        for session in list(self.sessions.values()):
            session._spawn(session.auto_restart("this computer's network changed"))

    async def _shutdown(self) -> None:
        if self.network is not None:
            await self.network.stop()
        for session in list(self.sessions.values()):
            await session.close("engine", "app closing", send_bye=False)
        self.sessions.clear()
        if self.signalling is not None:
            await self.signalling.stop()
        task = self._signalling_task
        if task is not None:
            task.cancel()
            try:
                await asyncio.wait_for(task, 3.0)
            except (TimeoutError, asyncio.CancelledError, Exception):
                pass
        if self._media is not None:
            self._media.stop()
            self._media = None
        # let aiortc's and aiohttp's close callbacks run
        await asyncio.sleep(0.05)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Run ``coro`` on the engine loop; thread-safe."""
        if self._loop is None or not self.running:
            coro.close()
            raise RuntimeError("the call engine is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # -- what the UI calls (thread-safe; each returns a Future) ---------------------

    def start_call(self, appointment: str) -> concurrent.futures.Future:
        return self.submit(self._start_call(appointment))

    def end_call(self, appointment: str, reason: str | None = None) -> concurrent.futures.Future:
        return self.submit(self._end_call(appointment, reason))

    def send_chat(self, appointment: str, text: str, mid: str | None = None
                  ) -> concurrent.futures.Future:
        return self.submit(self._with_session(appointment, lambda s: s.send_chat(text, mid)))

    def send_statement_review(self, appointment: str, review_id: str, text: str, pages: int, declaration: str,
                              kind: str) -> concurrent.futures.Future:
        """A statement to the victim's phone for signing (docs/victim-page.md, "Signing on the phone")."""
        return self.submit(self._with_session(
            appointment, lambda s: s.send_statement_review(review_id, text, pages, declaration, kind)))

    def withdraw_statement_review(self, appointment: str, review_id: str) -> concurrent.futures.Future:
        return self.submit(self._with_session(appointment, lambda s: s.withdraw_statement_review(review_id)))

    def restart_ice(self, appointment: str) -> concurrent.futures.Future:
        return self.submit(self._with_session(appointment, lambda s: s.restart()))

    def request_keyframe(self, appointment: str, direction: str) -> concurrent.futures.Future:
        """A video keyframe, for the recorder: "received" (a PLI to the victim) or
        "sent" (our encoder's next frame). See ``tap.request_keyframe``."""
        from .tap import request_keyframe

        async def ask() -> int:
            session = self.sessions.get(appointment)
            pc = session.pc if session is not None else None
            return 0 if pc is None else await request_keyframe(pc, direction)

        return self.submit(ask())

    def set_recording_shown(self, appointment: str, on: bool) -> concurrent.futures.Future:
        """The recorder's state for the victim's page: ``on`` while media is being
        recorded, off before it starts, after it failed and once it closed.
        Thread-safe (the recorder reports on its own thread)."""

        async def tell() -> None:
            if on:
                self.recording_on.add(appointment)
            else:
                self.recording_on.discard(appointment)
            session = self.sessions.get(appointment)
            if session is not None:
                session.send_recording_state()

        return self.submit(tell())

    def set_microphone_muted(self, muted: bool) -> None:
        self._muted = muted
        if self._media is not None:
            self._media.audio.enabled = not muted

    def set_camera_enabled(self, enabled: bool) -> None:
        self._camera_off = not enabled
        if self._media is not None:
            self._media.video.enabled = enabled

    def latest_remote_frame(self, appointment: str | None = None) -> np.ndarray | None:
        """The newest decoded frame from the victim, RGB (h, w, 3), or None
        (a view of ``latest_remote_bgra``'s array: no conversion, no copy)."""
        bgra = self.latest_remote_bgra(appointment)
        return None if bgra is None else bgra[:, :, 2::-1]

    def latest_remote_bgra(self, appointment: str | None = None) -> np.ndarray | None:
        """The same frame as it is kept for painting: BGRA (h, w, 4), the
        memory layout of Qt's ``QImage.Format_RGB32``. Never modified after
        it is published (a new frame is a new array)."""
        if self.display is None:
            return None
        key = f"remote:{appointment}" if appointment else self._last_remote_key
        return self.display.get(key) if key else None

    def latest_local_frame(self) -> np.ndarray | None:
        """The newest frame of the officer's own camera (or test pattern), RGB."""
        media = self._media
        return media.video.latest_rgb() if media is not None else None

    def latest_local_preview(self) -> np.ndarray | None:
        """The same, at most 320 px wide and BGRA (made on the capture thread):
        what the call window's self view paints, as it is."""
        media = self._media
        return media.video.latest_preview() if media is not None else None

    def session(self, appointment: str) -> CallSession | None:
        return self.sessions.get(appointment)

    def call_info(self, appointment: str) -> concurrent.futures.Future:
        """A call's counters as plain data (the media process answers this for
        tests and diagnostics): state, frames received per kind, automatic
        restarts, the video jitter buffer's ``by_marker``/``by_timestamp``."""

        async def info() -> dict[str, Any]:
            session = self.sessions.get(appointment)
            if session is None:
                raise LookupError(f"no call for appointment {appointment}")
            jitter: dict[str, int] = {}
            pc = session.pc
            for t in pc.getTransceivers() if pc is not None else ():
                buffer = getattr(t.receiver, "_RTCRtpReceiver__jitter_buffer", None) if t.kind == "video" else None
                if buffer is not None and hasattr(buffer, "by_marker"):
                    jitter = {"by_marker": buffer.by_marker, "by_timestamp": buffer.by_timestamp}
            return {"state": session.state, "frames_in": dict(session.frames_in),
                    "auto_restarts": session.auto_restarts, "jitter": jitter}

        return self.submit(info())

    # -- engine-loop side -------------------------------------------------------

    async def _with_session(self, appointment: str, fn):
        session = self.sessions.get(appointment)
        if session is None or session.closed:
            raise LookupError(f"no call for appointment {appointment}")
        return await fn(session)

    async def _start_call(self, appointment: str) -> CallSession:
        old = self.sessions.get(appointment)
        if old is not None and not old.closed:
            return old
        if self.signalling is None or not self.signalling.connected:
            self._emit(ev.Error("The call cannot start: the app is not connected to the "
                                "rendezvous.", appointment, code="not-connected"))
            raise ConnectionError("not connected to the rendezvous")
        session = CallSession(self, appointment)
        self.sessions[appointment] = session
        try:
            await session.start()
        except CommitTimeout:
            log.warning("call %s: no commitment from the victim's page in time", appointment)
            await session.stop_setup(session.no_commit_message(), "no-commit", "no commit",
                                     send_bye=False)
            raise
        except Exception as exc:
            log.exception("starting the call for %s failed", appointment)
            self._emit(ev.Error("The call could not be started; try again.", appointment,
                                code="start-failed"))
            await session.close("engine", type(exc).__name__, send_bye=False)
            self.sessions.pop(appointment, None)
            raise
        return session

    async def _end_call(self, appointment: str, reason: str | None) -> None:
        session = self.sessions.pop(appointment, None)
        if session is not None:
            await session.close("officer", reason, send_bye=True)
        else:  # no call running: still end the appointment at the rendezvous
            msg = {"type": "bye", "appointment": appointment}
            if reason:
                msg["reason"] = reason[:64]
            await self.signalling.send(msg)
        self.waiting.discard(appointment)

    async def _acquire_media(self) -> LocalMedia:
        if self._media is None:
            s = self.settings
            choice = (self._sources() if self._sources is not None else await
                      asyncio.get_running_loop().run_in_executor(None, lambda: choose_sources(
                          s.prefer_real_devices, camera=s.camera, microphone=s.microphone,
                          width=s.width, height=s.height, fps=s.fps)))
            media = LocalMedia(choice)
            media.video.enabled = not self._camera_off
            media.audio.enabled = not self._muted
            for track in (media.video, media.audio):
                track.on_error = lambda message: self._emit(ev.Error(message, code="device"))
            for note in choice.notes:
                self._emit(ev.Error(note, code="device-substituted"))
            self._media = media
        self._media.users += 1
        return self._media

    def _release_media(self) -> None:
        media = self._media
        if media is None:
            return
        media.users -= 1
        if media.users <= 0:
            media.stop()
            self._media = None

    def _wake_commit_waiters(self, appointment: str) -> None:
        event = self._commit_arrived.pop(appointment, None)
        if event is not None:
            event.set()

    def _commit_opened(self, appointment: str, commit: str) -> None:
        """An answer opened ``commit``: its fingerprint is public now, so a later
        offer (a restart) waits for the page's next commitment."""
        if self.commits.get(appointment) == commit:
            del self.commits[appointment]
        self._opened_commits[appointment] = commit

    async def _on_signal(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        appt = data.get("appointment")
        session = self.sessions.get(appt) if isinstance(appt, str) else None
        if kind == "welcome":
            return
        if kind == "error":
            code = str(data.get("code", ""))
            if code == "no-victim" and session is not None:
                self._emit(ev.Error("The victim is no longer connected.", appt, code=code))
            else:
                log.warning("rendezvous error %s: %s", code, data.get("message"))
            return
        if not isinstance(appt, str):
            return
        if kind == "victim_waiting":
            self.waiting.add(appt)
            servers = clean_ice_servers(data.get("iceServers"))
            if servers:
                self.turn_servers[appt] = servers
            self._emit(ev.VictimWaiting(appt))
        elif kind == "victim_left":
            self.waiting.discard(appt)
            self.commits.pop(appt, None)  # a page that comes back commits again
            self._opened_commits.pop(appt, None)
            self._emit(ev.VictimLeft(appt, data.get("why")))
            if session is not None and session.state in ("new", "waiting", "calling"):
                self.sessions.pop(appt, None)
                await session.close("victim", "left", send_bye=False)
        elif kind == "link_opened":
            self._emit(ev.LinkOpened(appt, bool(data.get("first"))))
        elif kind == "link_refused":
            self._emit(ev.LinkRefused(appt, str(data.get("reason")), str(data.get("note", ""))))
        elif kind == "flag":
            self._emit(ev.VictimFlag(appt, data.get("kind"), bool(data.get("held"))))
        elif kind == "quick_exit":
            self._emit(ev.QuickExit(appt, bool(data.get("held"))))
            if session is not None:  # the page has gone and let go of everything: so does the call
                self.sessions.pop(appt, None)
                await session.close("victim", "quick-exit", send_bye=False)
        elif kind == "restart" and session is not None:
            # The victim's phone changed network or lost the connection.
            session._spawn(session.auto_restart("the victim's phone asked (its network changed)"))
        elif kind == "chat":
            text = data.get("text")
            if isinstance(text, str):
                self._emit(ev.ChatReceived(appt, text, data.get("id"), via="signalling"))
        elif kind == "commit":
            digest = data.get("hash")
            if not is_commitment(digest):
                log.warning("signalling: a malformed commit for %s: ignored", appt)
            elif digest != self._opened_commits.get(appt):  # not one an answer already opened
                self.commits[appt] = digest
                self._wake_commit_waiters(appt)
        elif kind == "answer" and session is not None:
            try:
                await session.on_answer(str(data.get("sdp", "")))
            except Exception:
                log.exception("the victim's answer could not be used")
                self._emit(ev.Error("The victim's browser sent an answer the app cannot use.",
                                    appt, code="bad-answer"))
                self.sessions.pop(appt, None)
                await session.close("engine", "bad answer", send_bye=False)
        elif kind == "ice" and session is not None:
            try:
                await session.on_ice(data)
            except Exception:
                log.warning("a remote ICE candidate was refused", exc_info=True)
        elif kind == "bye":
            self.waiting.discard(appt)
            if data.get("reason") == "fingerprint-mismatch":  # the page refused our keys as it saw them
                self._emit(ev.Error(VICTIM_SAW_INTERFERENCE, appt, code="fingerprint-mismatch"))
            if session is not None:
                self.sessions.pop(appt, None)
                await session.close("victim", data.get("reason"), send_bye=False)
        elif kind == "hello":
            pass
