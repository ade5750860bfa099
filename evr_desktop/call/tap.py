"""The encoded-frame tap: the recorder's view of a call's media as it is on
the wire, in both directions, never decoded or re-encoded.

Design (docs/call-engine.md has the long form):

- On the event loop the tap does one thing per frame: ``put_nowait`` of a
  small record into a bounded ``queue.Queue``. If the queue is full the frame
  is dropped for the recorder and counted (``dropped``); the call is never
  slowed down by a slow disk.
- One worker thread (owned by the tap) takes records off the queue, turns
  the send side's RTP payloads into the codec's frame (the same
  ``aiortc.codecs.depayload`` the receive side uses, so both directions come
  out in one form: a VP8 frame, an H.264 Annex-B access unit, an Opus
  packet), marks keyframes, and calls the sink (the recorder). A sink that
  raises is logged and counted, never propagated.
- ``monotonic`` is when the frame met the wire on our side: for a sent frame
  when the sender took the raw frame from its track (before the encoder's
  latency, tens of ms on a busy machine), for a received frame when its *first
  packet* reached the receiver, not when the jitter buffer released it. The
  recorder anchors RTP time on it, and the buffers hold the kinds unequally:
  aiortc's audio buffer releases a packet only once more are queued behind
  it, the video buffer on the frame's last packet (tests/e2e/test_recording_chromium.py
  measured the victim's beep ~95 ms after the flash with the release time).

Where it hooks into aiortc (pinned ``aiortc==1.16.0``; everything else in
the project uses aiortc's public API only):

- send: ``RTCRtpSender._next_encoded_frame(codec)`` (a coroutine returning
  ``RTCEncodedFrame(payloads, timestamp, audio_level)`` or None) is wrapped on
  the sender *instance*; ``RTCRtpSender._run_rtp`` looks it up on ``self``
  for every frame. The wrapper awaits the original and offers the payloads.
- receive: ``RTCRtpReceiver.__decoder_queue`` (name-mangled
  ``_RTCRtpReceiver__decoder_queue``, a ``queue.Queue`` of
  ``(codec, JitterFrame)`` that the jitter buffer fills with each complete,
  depayloaded frame for the decoder thread) is replaced, before
  ``receive()`` starts the decoder thread, by a subclass whose ``put`` also
  offers the frame to the tap. ``None`` (the decoder's stop signal) is passed
  through untouched. The receiver's ``_handle_rtp_packet`` is wrapped on the
  instance too (the DTLS transport looks it up on the receiver for every
  packet), to note the SSRC of the packet being handled (a frame is put
  on the decoder queue while the packet that completed it is handled) and the
  first arrival of each RTP timestamp; the receiver's ``TimestampMapper``
  (``_RTCRtpReceiver__timestamp_mapper``) is wrapped on the instance to learn
  the raw RTP timestamp of the frame being put. Without it the release time
  is used.

**Stream generation.** ``EncodedFrame.generation`` is an integer that changes
whenever a stream's RTP timestamp origin may have changed; frames of one
stream with one generation lie on one RTP timeline. A new value is drawn
from the tap's counter (so values are never reused within a tap):

- for each sender tapped, and again whenever its encoder object changes
  (aiortc's Opus encoder starts its timestamps at 0; a new sender has a new
  encoder). An ICE restart rebuilds the peer connection
  (``CallSession.restart``), so every stream of the call gets a new sender
  and receiver, tapped anew: new generations both ways.
- for each receiver tapped, and again whenever the SSRC of the frames it
  completes changes (a sender that restarted its stream; aiortc's receiver
  maps every SSRC through one ``TimestampMapper``, so a new SSRC arrives with
  an arbitrary jump). Retransmissions (RTX) count as their original SSRC.

The recorder re-anchors a stream's RTP time on its arrival time when the
generation changes (docs/recording.md "One clock").

:func:`tap_sender` and :func:`tap_receiver` check these internals exist and
raise :class:`TapUnsupported` otherwise (the engine then reports that the
recording tap is unavailable instead of failing the call).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("evr_desktop.call.tap")

SENT = "sent"
RECEIVED = "received"


class TapUnsupported(RuntimeError):
    """This aiortc does not have the internals the tap hooks into."""


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame as it travels the wire (for the recorder)."""

    session: str  # the appointment
    direction: str  # "sent" | "received"
    kind: str  # "audio" | "video"
    codec: str  # MIME type: "video/VP8", "video/H264", "audio/opus", ...
    clock_rate: int  # RTP clock: 90000 video, 48000 Opus
    timestamp: int  # RTP timestamp (ticks of clock_rate; per-stream origin)
    data: bytes  # the codec bitstream of the whole frame
    keyframe: bool  # video: decodable on its own; audio: always True
    monotonic: float  # time.monotonic() when it met the wire (received: its first packet; see the module doc)
    # A new value whenever this stream's RTP timestamp origin may have changed
    # (an ICE restart, a new SSRC received, a new encoder): see the module docstring.
    generation: int = 0


@dataclass(slots=True)
class _Raw:
    session: str
    direction: str
    kind: str
    codec: object  # RTCRtpCodecParameters
    timestamp: int
    payloads: object  # list[bytes] (sent) or bytes (received, already depayloaded)
    monotonic: float
    generation: int


def _is_keyframe(codec_name: str, data: bytes) -> bool:
    if not data:
        return False
    if codec_name == "VP8":
        return (data[0] & 0x01) == 0  # RFC 6386 9.1: P bit clear = key frame
    if codec_name == "H264":
        i, n = 0, len(data)
        while True:
            i = data.find(b"\x00\x00\x01", i)
            if i < 0 or i + 3 >= n:
                return False
            if data[i + 3] & 0x1F in (5, 7):  # IDR slice or SPS
                return True
            i += 3
    return True


class EncodedFrameTap:
    """A bounded, non-blocking hand-off of encoded frames to ``sink``, which
    runs on the tap's own worker thread."""

    def __init__(self, sink: Callable[[EncodedFrame], None] | None = None, *,
                 maxsize: int = 1024, name: str = "encoded-tap"):
        self.sink = sink
        self._queue: queue.Queue[_Raw | None] = queue.Queue(maxsize=maxsize)
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.offered: Counter[tuple[str, str]] = Counter()  # (direction, kind) -> frames queued
        self.delivered: Counter[tuple[str, str]] = Counter()  # -> frames handed to the sink
        self.dropped = 0  # queue full: lost to the recorder, not to the call
        self.sink_errors = 0
        self._generations = itertools.count(1)

    def new_generation(self) -> int:
        """A stream generation never handed out before by this tap."""
        with self._lock:
            return next(self._generations)

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then end the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        while True:
            try:
                self._queue.put(None, timeout=timeout)
                break
            except queue.Full:  # pragma: no cover - a wedged sink
                log.warning("encoded tap: sink not keeping up at close")
                break
        thread.join(timeout)

    # -- event-loop side: O(1), never blocks -------------------------------------

    def offer(self, session: str, direction: str, kind: str, codec, timestamp: int,
              payloads, generation: int = 0, at: float | None = None) -> bool:
        """Queue one frame; ``at``: when it met the wire (``time.monotonic``), now by default."""
        try:
            self._queue.put_nowait(_Raw(session, direction, kind, codec, timestamp, payloads,
                                        time.monotonic() if at is None else at, generation))
        except queue.Full:
            self.dropped += 1
            return False
        self.offered[(direction, kind)] += 1
        return True

    # -- worker thread -------------------------------------------------------------

    def _work(self) -> None:
        from aiortc.codecs import depayload

        while True:
            raw = self._queue.get()
            if raw is None:
                return
            codec = raw.codec
            try:
                if raw.direction == SENT:
                    data = b"".join(depayload(codec, p) for p in raw.payloads)
                else:
                    data = bytes(raw.payloads)
                frame = EncodedFrame(
                    session=raw.session, direction=raw.direction, kind=raw.kind,
                    codec=codec.mimeType, clock_rate=codec.clockRate,
                    timestamp=raw.timestamp, data=data,
                    keyframe=_is_keyframe(codec.name, data), monotonic=raw.monotonic,
                    generation=raw.generation,
                )
            except Exception:
                log.exception("encoded tap: could not assemble a %s frame", raw.kind)
                self.sink_errors += 1
                continue
            self.delivered[(raw.direction, raw.kind)] += 1
            if self.sink is not None:
                try:
                    self.sink(frame)
                except Exception:
                    self.sink_errors += 1
                    log.exception("encoded tap: the sink failed")


# --- hooks into aiortc ---------------------------------------------------------------


def tap_sender(sender, tap: EncodedFrameTap, session: str) -> None:
    """Offer every frame ``sender`` encodes (before packets go out) to ``tap``."""
    original = getattr(type(sender), "_next_encoded_frame", None)
    if original is None:
        raise TapUnsupported("RTCRtpSender._next_encoded_frame is missing")
    bound = sender._next_encoded_frame
    kind = sender.kind
    state: dict[str, Any] = {"encoder": None, "generation": tap.new_generation(), "taken": None}
    track = getattr(sender, "track", None)
    if track is not None and callable(getattr(track, "recv", None)):
        # When the sender takes each raw frame from its track (just captured: the
        # relay hands over the newest), before the encoder's latency: the time
        # the recorder anchors on, as the first packet's arrival is on the
        # receive side. aiortc calls ``self.__track.recv()``: found on the instance.
        take = track.recv

        async def _recv():
            frame = await take()
            state["taken"] = time.monotonic()
            return frame

        track.recv = _recv

    async def _next_encoded_frame(codec):
        state["taken"] = None
        enc = await bound(codec)
        if enc is not None:
            # aiortc makes the encoder at the first frame: the first one seen keeps
            # the sender's generation; any later replacement starts a new timeline.
            encoder = getattr(sender, _SENDER_ENCODER, None)
            if encoder is not state["encoder"]:
                if state["encoder"] is not None:
                    state["generation"] = tap.new_generation()
                state["encoder"] = encoder
            tap.offer(session, SENT, kind, codec, enc.timestamp, list(enc.payloads), state["generation"],
                      state["taken"])
        return enc

    sender._next_encoded_frame = _next_encoded_frame


_SENDER_ENCODER = "_RTCRtpSender__encoder"


class _TapQueue(queue.Queue):
    def __init__(self, tap: EncodedFrameTap, session: str, kind: str):
        super().__init__()
        self._tap, self._session, self._kind = tap, session, kind
        self.ssrc: int | None = None  # of the packet being handled (set by the receiver's wrapper)
        self._generation_ssrc: int | None = None
        self.generation = 0
        self.raw_timestamp: int | None = None  # of the frame being put (set by the mapper's wrapper)
        self.arrivals: dict[int, float] = {}  # raw RTP timestamp -> its first packet's arrival

    def arrived(self, timestamp: int) -> None:
        if timestamp not in self.arrivals:
            if len(self.arrivals) >= _ARRIVALS_KEPT:
                del self.arrivals[next(iter(self.arrivals))]  # the oldest (dicts keep insertion order)
            self.arrivals[timestamp] = time.monotonic()

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, frame = item
            if self.generation == 0 or self.ssrc != self._generation_ssrc:
                self._generation_ssrc = self.ssrc
                self.generation = self._tap.new_generation()
            raw, self.raw_timestamp = self.raw_timestamp, None
            self._tap.offer(self._session, RECEIVED, self._kind, codec, frame.timestamp, frame.data,
                            self.generation, self.arrivals.get(raw) if raw is not None else None)
        super().put(item, block, timeout)


_RECEIVER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RECEIVER_RTX = "_RTCRtpReceiver__rtx_ssrc"
_RECEIVER_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_ARRIVALS_KEPT = 512  # RTP timestamps remembered per receiver: more than its jitter buffer holds


def tap_receiver(receiver, tap: EncodedFrameTap, session: str, kind: str) -> None:
    """Offer every complete frame ``receiver`` hands its decoder to ``tap``.
    Must be called before the receiver starts (before the remote description
    that activates it is set)."""
    old = getattr(receiver, _RECEIVER_QUEUE, None)
    if not isinstance(old, queue.Queue) or not hasattr(receiver, _RECEIVER_THREAD):
        raise TapUnsupported("RTCRtpReceiver's decoder queue is not where the tap expects it")
    if getattr(receiver, _RECEIVER_THREAD) is not None:
        raise TapUnsupported("the receiver has already started: tap it before setRemoteDescription")
    if not callable(getattr(type(receiver), "_handle_rtp_packet", None)):
        raise TapUnsupported("RTCRtpReceiver._handle_rtp_packet is missing")
    if isinstance(old, _TapQueue):
        return
    tap_queue = _TapQueue(tap, session, kind)
    handle = receiver._handle_rtp_packet

    async def _handle_rtp_packet(packet, arrival_time_ms: int) -> None:
        rtx = getattr(receiver, _RECEIVER_RTX, None) or {}
        tap_queue.ssrc = rtx.get(packet.ssrc, packet.ssrc)  # a retransmission counts as its original
        tap_queue.arrived(packet.timestamp)
        await handle(packet, arrival_time_ms)

    setattr(receiver, _RECEIVER_QUEUE, tap_queue)
    receiver._handle_rtp_packet = _handle_rtp_packet
    mapper = getattr(receiver, _RECEIVER_MAPPER, None)
    if mapper is not None and callable(getattr(mapper, "map", None)):
        to_frame_time = mapper.map

        def _map(timestamp: int) -> int:  # called just before each frame is put on the decoder queue
            tap_queue.raw_timestamp = timestamp
            return to_frame_time(timestamp)

        mapper.map = _map
    else:
        log.warning("encoded tap: no timestamp mapper on the receiver; received frames are timed at release")


# --- keyframe requests (for the recorder's start; aiortc 1.16.0 internals) ------------


async def request_keyframe(pc: Any, direction: str) -> int:
    """Ask for a video keyframe on ``pc``: "received" sends a PLI to the victim
    for each video stream heard (``RTCRtpReceiver._send_rtcp_pli(ssrc)``, the
    SSRCs from ``_RTCRtpReceiver__remote_streams``); "sent" makes our
    encoder's next frame a keyframe (``_RTCRtpSender__force_keyframe``, what
    aiortc does itself on a PLI). Returns how many requests went out; an
    internal that is not there is skipped (logged), never raised."""
    done = 0
    for transceiver in pc.getTransceivers():
        if getattr(transceiver, "kind", None) != "video":
            continue
        if direction == "received":
            receiver = transceiver.receiver
            send_pli = getattr(receiver, "_send_rtcp_pli", None)
            streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", None)
            if send_pli is None or streams is None:
                log.warning("keyframe request: this aiortc has no PLI hook on the receiver")
                continue
            for ssrc in list(streams):
                await send_pli(ssrc)
                done += 1
        else:
            sender = transceiver.sender
            if not hasattr(sender, "_RTCRtpSender__force_keyframe"):
                log.warning("keyframe request: this aiortc has no forced keyframe on the sender")
                continue
            sender._RTCRtpSender__force_keyframe = True
            done += 1
    return done
