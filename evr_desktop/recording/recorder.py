"""The call recorder: encoded frames in, encrypted Matroska segments out.

One :class:`Recorder` per call (not per engine). It is the tap's sink: it
takes each encoded frame as it crossed the wire and muxes it, never decoded
or re-encoded, into one Matroska stream with five tracks, in this order:

    0 victim video (received)   1 victim audio (received)
    2 officer video (sent)      3 officer audio (sent)
    4 chat and flags (S_TEXT/UTF8 subtitles: who, the text, at its time)

**One clock.** Timestamps are milliseconds since the recording's first frame.
Each stream's RTP timestamps are mapped onto the tap's arrival clock
(``time.monotonic``): the first frame of a stream anchors it (RTP ts -> its
arrival time), and later frames keep the RTP spacing, so audio stays gapless
and video keeps the sender's cadence, free of network jitter. The mapping is
re-anchored on a new stream generation (``frame.generation``, when the tap
provides it), a change of clock rate, or whenever the RTP prediction and the
arrival differ by more than :data:`REANCHOR_SECONDS` (an ICE restart brings a
new timestamp origin; a phone that stalled). A frame that arrives more than
:data:`EARLIER_SECONDS` before its prediction becomes the anchor (the anchor
frame itself was late: delay only adds). The four tracks are thereby in
sync to within the arrival jitter at the anchor.

**Keyframes.** Each video track starts on a keyframe; frames before it are
dropped and ``on_keyframe_wanted(direction)`` is called (at most once a
second) so the engine can send a PLI or force its encoder. The same happens
after a re-anchor of a video stream. A resolution change needs nothing: VP8
and H.264 carry their size in each keyframe.

**Start.** The Matroska header names all tracks, so frames are held (at most
``start_wait`` seconds) until every track has its first frame (video: its
first keyframe); tracks still silent then are declared with the default
codec (VP8, Opus).

**Never disturbs the call.** ``__call__`` (the sink) never raises. A write
error (disk full) stops the recording: ``state`` becomes ``failed``,
``on_status`` is told once, what was finalised stays valid.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write, ensure_private_dir
from ..vault.age import parse_recipient
from .frames import AUDIO, RECEIVED, SENT, VIDEO, Frame, vp8_size
from .manifest import MANIFEST_FORMAT, START_FILE, START_FORMAT, write_manifest
from .segments import SegmentInfo, SegmentWriter

log = logging.getLogger("evr_desktop.recording")

TRACKS: tuple[tuple[str, str], ...] = ((RECEIVED, VIDEO), (RECEIVED, AUDIO), (SENT, VIDEO), (SENT, AUDIO))
TRACK_TITLES = {
    (RECEIVED, VIDEO): "victim video", (RECEIVED, AUDIO): "victim audio",
    (SENT, VIDEO): "officer video", (SENT, AUDIO): "officer audio",
}
#: MIME type (lower case) -> the FFmpeg codec name the muxer declares.
CODECS = {"video/vp8": "vp8", "video/h264": "h264", "audio/opus": "opus"}
DEFAULT_CODEC = {VIDEO: "video/VP8", AUDIO: "audio/opus"}
REANCHOR_SECONDS = 1.0
#: A frame that arrives this much earlier than its stream's anchor predicts moves
#: the anchor to it. Above ordinary arrival jitter (so a steady stream keeps its
#: sender's cadence exactly) and well inside the 100 ms sync goal.
EARLIER_SECONDS = 0.05
CHAT_SHOWN_MS = 4000
_MS = Fraction(1, 1000)

STARTING = "starting"  # waiting for the first keyframes
RECORDING = "recording"
FAILED = "failed"  # a write error: stopped, what was finalised is valid
CLOSED = "closed"


class RecordingRefused(ValueError):
    """The recorder cannot start (no escrow recipient, a bad recipient, a used folder)."""


@dataclass(frozen=True)
class RecorderStatus:
    state: str
    message: str = ""


@dataclass(frozen=True)
class RecordingResult:
    """What the caller audits when the recording ends."""

    folder: Path
    recording_id: str
    manifest_sha256: str | None  # None only if the manifest could not be written
    started_at: str | None  # ISO 8601 UTC of the first frame
    ended_at: str
    duration_s: float
    segments: int
    finalised: bool
    error: str | None


@dataclass
class _Clock:
    generation: object
    rate: int
    anchor_ext: int
    anchor_t: float
    last_rtp: int
    ext: int
    last_ms: int = -1


@dataclass
class _Track:
    key: tuple[str, str]
    codec: str | None = None  # MIME type
    started: bool = False  # video: a keyframe has been muxed or queued
    stream: Any = None
    size: tuple[int, int] | None = None
    frames: int = 0
    dropped: int = 0
    last_want: float = -1e9


@dataclass
class _Held:
    track: int  # index into TRACKS, or 4 for text
    ms: int
    data: bytes
    keyframe: bool


@dataclass
class _Counts:
    chat: int = 0
    flags: int = 0
    mux_errors: int = 0
    ignored: int = 0
    keyframe_requests: int = 0  # asked of on_keyframe_wanted (each costs the call a keyframe)


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds")


class Recorder:
    """Records one call into ``folder`` (created; must be new or empty)."""

    def __init__(
        self,
        folder: Path,
        *,
        officer_recipient: str,
        escrow_recipient: str,
        session: str = "",
        on_status: Callable[[RecorderStatus], None] | None = None,
        on_keyframe_wanted: Callable[[str], None] | None = None,
        segment_seconds: float = 1.5,
        start_wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        fsync: bool = True,
    ) -> None:
        if not escrow_recipient or not escrow_recipient.strip():
            raise RecordingRefused(
                "no force escrow recipient: recording refused (the evidence office could not read it)")
        recipients = [officer_recipient.strip(), escrow_recipient.strip()]
        for r in recipients:
            try:
                parse_recipient(r)
            except ValueError as exc:
                raise RecordingRefused(f"recording refused: {exc}") from None
        if not 0.2 <= segment_seconds <= 2.0:
            raise ValueError("segment_seconds must be between 0.2 and 2.0")
        self.folder = Path(folder)
        if self.folder.exists() and any(self.folder.iterdir()):
            raise RecordingRefused(f"{self.folder} is not empty")
        ensure_private_dir(self.folder)
        self.recipients = recipients
        self.session = session
        self.recording_id = uuid.uuid4().hex
        self._on_status = on_status
        self._on_keyframe_wanted = on_keyframe_wanted
        self._segment_ms = int(segment_seconds * 1000)
        self._start_wait = start_wait
        self._clock = clock
        self._wall = wall
        self._lock = threading.RLock()
        self._tracks = [_Track(k) for k in TRACKS]
        self._clocks: dict[tuple[str, str], _Clock] = {}
        self._held: list[_Held] = []
        self._t0: float | None = None
        self._wall0: float | None = None
        self._first_seen: float | None = None
        self._text_last_ms = -1
        self._last_ms = 0
        self._container: Any = None
        self.counts = _Counts()
        self.stills: list[dict[str, Any]] = []  # stills taken during the call (recording/stills.py), for the manifest
        self.state = STARTING
        self.error: str | None = None
        self.writer = SegmentWriter(self.folder, recipients, fsync=fsync)
        atomic_write(self.folder / START_FILE, json.dumps({
            "format": START_FORMAT, "recording_id": self.recording_id, "session": session,
            "created_at": _iso(wall()), "recipients": recipients, "container": "matroska",
        }, indent=1).encode("utf-8"))

    # -- public -----------------------------------------------------------------------

    @property
    def segments(self) -> list[SegmentInfo]:
        return list(self.writer.segments)

    @property
    def keyframe_wanted(self) -> list[str]:
        """Directions whose video track waits for a keyframe."""
        with self._lock:
            return [t.key[0] for t in self._tracks if t.key[1] == VIDEO and not t.started]

    def __call__(self, frame: Frame) -> None:
        """The tap's sink. Never raises."""
        self.add_frame(frame)

    def add_frame(self, frame: Frame) -> None:
        try:
            with self._lock:
                self._add_frame(frame)
        except Exception:  # never into the tap's caller
            log.exception("recorder: a frame could not be recorded")
            self.counts.mux_errors += 1
            self._check_writer()

    def add_chat(self, sender: str, text: str, at: float | None = None) -> None:
        """A chat line (``sender``: "victim" or "officer"), at ``at`` (monotonic; now by default)."""
        who = "Victim" if sender in ("victim", RECEIVED) else "Officer"
        if self._add_text(f"{who}: {text}", at):
            self.counts.chat += 1

    def add_flag(self, kind: str, held: bool, at: float | None = None) -> None:
        """The victim's quiet signal (``kind`` such as "cant-talk"), raised or cleared."""
        what = "can't talk freely" if kind in ("cant-talk", "cant_talk", "cannot-talk") else kind
        if self._add_text(f"[Victim signal: {what} — {'ON' if held else 'cleared'}]", at):
            self.counts.flags += 1

    def elapsed(self) -> float | None:
        """Seconds on the recording's clock now (its first frame is 0); None before the first frame."""
        with self._lock:
            return None if self._t0 is None else max(0.0, self._clock() - self._t0)

    def add_still(self, entry: dict[str, Any]) -> bool:
        """List a still (``recording/stills.py``) in the manifest written at ``close()``.
        False once the recording is closed (its manifest is written already)."""
        with self._lock:
            if self.state == CLOSED:
                return False
            self.stills.append(dict(entry))
            return True

    def close(self, reason: str = "") -> RecordingResult:
        """End the recording: flush the muxer, finalise the last segment,
        write the manifest. Safe to call once the call ended, from any thread."""
        with self._lock:
            if self.state == CLOSED:
                raise RuntimeError("the recording is already closed")
            if self._container is None and self._held and self.state != FAILED:
                try:
                    self._start_container()
                except Exception as exc:
                    self._fail(exc)
            if self._container is not None:
                try:
                    self._container.close()
                except Exception as exc:
                    log.exception("recorder: closing the muxer failed")
                    self._fail(exc)
            self.writer.close(last_ms=self._last_ms)
            self._check_writer()
            finalised = self.state != FAILED and self.writer.error is None
            ended = self._wall()
            duration = self._last_ms / 1000 if self._t0 is not None else 0.0
            data = self._manifest(finalised=finalised, reason=reason, ended=ended, duration=duration)
            manifest_sha: str | None = None
            try:
                manifest_sha = write_manifest(self.folder, data, self.recipients)
            except OSError as exc:
                log.error("recorder: the manifest could not be written: %s", exc)
                self.error = self.error or f"the manifest could not be written: {exc}"
            self.state = CLOSED
            sync = self.writer.syncer.stats
            log.info("recorder: closed after %.1f s: %d segments, frames per track %s, dropped %s, "
                     "keyframe requests %d, fsyncs %d files + %d folder, %.1f ms in all, longest %.1f ms",
                     duration, len(self.writer.segments),
                     [t.frames for t in self._tracks], [t.dropped for t in self._tracks],
                     self.counts.keyframe_requests, sync.files, sync.folders, sync.seconds * 1000,
                     sync.longest * 1000)
            finalised = finalised and manifest_sha is not None  # else the next unlock's recovery closes it
            return RecordingResult(
                folder=self.folder, recording_id=self.recording_id, manifest_sha256=manifest_sha,
                started_at=_iso(self._wall0) if self._wall0 is not None else None, ended_at=_iso(ended),
                duration_s=duration, segments=sum(1 for s in self.writer.segments if s.complete),
                finalised=finalised, error=self.error,
            )

    # -- frames -----------------------------------------------------------------------

    def _add_frame(self, frame: Frame) -> None:
        if self.state in (FAILED, CLOSED):
            self.counts.ignored += 1
            return
        key = (frame.direction, frame.kind)
        if key not in TRACKS:
            self.counts.ignored += 1
            return
        index = TRACKS.index(key)
        track = self._tracks[index]
        mime = frame.codec.lower()
        if mime not in CODECS or (track.codec is not None and track.codec.lower() != mime):
            track.dropped += 1
            return
        if self._t0 is None:
            self._t0 = frame.monotonic
            self._wall0 = self._wall() - (self._clock() - frame.monotonic)
            self._first_seen = self._clock()
        ms, reanchored = self._map_time(key, frame)
        if frame.kind == VIDEO:
            if reanchored and track.started and not frame.keyframe:
                self._want_keyframe(track)  # a new origin: the decoder may need a fresh start
            if not track.started:
                if not frame.keyframe:
                    track.dropped += 1
                    self._want_keyframe(track)
                    return
                track.started = True
                if mime == "video/vp8":
                    track.size = vp8_size(frame.data)
        else:
            track.started = True
        if track.codec is None:
            track.codec = frame.codec
        self._last_ms = max(self._last_ms, ms)
        self._emit(_Held(index, ms, bytes(frame.data), frame.keyframe))

    def _map_time(self, key: tuple[str, str], frame: Frame) -> tuple[int, bool]:
        assert self._t0 is not None
        arrival = frame.monotonic - self._t0
        generation = getattr(frame, "generation", None)
        c = self._clocks.get(key)
        reanchored = False
        if c is None or c.generation != generation or c.rate != frame.clock_rate or frame.clock_rate <= 0:
            reanchored = c is not None
            c = _Clock(generation, frame.clock_rate or 1, 0, arrival, frame.timestamp, 0,
                       c.last_ms if c is not None else -1)
            self._clocks[key] = c
            t = arrival
        else:
            step = (frame.timestamp - c.last_rtp) & 0xFFFFFFFF
            if step >= 1 << 31:
                step -= 1 << 32  # a little backwards (reordering)
            c.ext += step
            c.last_rtp = frame.timestamp
            t = c.anchor_t + (c.ext - c.anchor_ext) / c.rate
            if t - arrival > EARLIER_SECONDS and t - arrival <= REANCHOR_SECONDS:
                # This frame met the wire well before its anchor predicts: the anchor
                # frame itself was late (a first keyframe that took long to encode on a
                # busy machine, a congested first second). Delay only ever adds, so the
                # least-delayed frame is the better anchor.
                c.anchor_ext, c.anchor_t = c.ext, arrival
                t = arrival
            elif abs(t - arrival) > REANCHOR_SECONDS:
                c.anchor_ext, c.anchor_t = c.ext, arrival
                t = arrival
                reanchored = True
        ms = max(0, round(t * 1000))
        if ms <= c.last_ms:
            ms = c.last_ms + 1  # strictly increasing per track
        c.last_ms = ms
        return ms, reanchored

    def _want_keyframe(self, track: _Track) -> None:
        now = self._clock()
        if now - track.last_want < 1.0 or self._on_keyframe_wanted is None:
            return
        track.last_want = now
        self.counts.keyframe_requests += 1
        try:
            self._on_keyframe_wanted(track.key[0])
        except Exception:
            log.exception("recorder: on_keyframe_wanted failed")

    def _add_text(self, text: str, at: float | None) -> bool:
        try:
            with self._lock:
                if self.state in (FAILED, CLOSED):
                    return False
                now = self._clock() if at is None else at
                if self._t0 is None:
                    self._t0 = now
                    self._wall0 = self._wall() - (self._clock() - now)
                    self._first_seen = self._clock()
                ms = max(0, round((now - self._t0) * 1000), self._text_last_ms + 1)
                self._text_last_ms = ms
                self._last_ms = max(self._last_ms, ms)
                self._emit(_Held(4, ms, text.encode("utf-8"), True))
                return True
        except Exception:
            log.exception("recorder: a chat line could not be recorded")
            self._check_writer()
            return False

    # -- muxing -----------------------------------------------------------------------

    def _emit(self, held: _Held) -> None:
        if self._container is None:
            self._held.append(held)
            ready = all(t.started for t in self._tracks)
            waited = self._first_seen is not None and self._clock() - self._first_seen >= self._start_wait
            if not (ready or waited):
                return
            self._start_container()
            return
        self._mux(held)

    def _start_container(self) -> None:
        import av

        container = av.open(self.writer, "w", format="matroska", options={
            "cluster_time_limit": str(self._segment_ms),
            "cluster_size_limit": str(64 << 20),
            "max_interleave_delta": "1",  # write through: never hold media back waiting for a silent track
        })
        for track in self._tracks:
            mime = track.codec or DEFAULT_CODEC[track.key[1]]
            track.codec = mime
            name = CODECS[mime.lower()]
            if track.key[1] == VIDEO:
                w, h = track.size or (640, 480)
                stream = container.add_mux_stream(name, width=w, height=h)
            else:
                stream = container.add_mux_stream(name, rate=48000)
            stream.time_base = _MS
            stream.metadata["title"] = TRACK_TITLES[track.key]
            track.stream = stream
        text = container.add_mux_stream("subrip")
        text.time_base = _MS
        text.metadata["title"] = "chat and victim signals"
        self._text_stream = text
        self._container = container
        self.state = RECORDING
        self._status(RecorderStatus(RECORDING))
        pending, self._held = self._held, []
        pending.sort(key=lambda h: h.ms)
        for item in pending:
            self._mux(item)

    def _mux(self, held: _Held) -> None:
        import av

        stream = self._text_stream if held.track == 4 else self._tracks[held.track].stream
        packet = av.Packet(held.data)
        packet.stream = stream
        packet.time_base = _MS
        packet.pts = packet.dts = held.ms
        if held.track == 4:
            packet.duration = CHAT_SHOWN_MS
        if held.keyframe:
            packet.is_keyframe = True
        try:
            self._container.mux(packet)
        except Exception as exc:
            if self.writer.error is None:
                log.warning("recorder: the muxer refused a packet: %s", exc)
                self.counts.mux_errors += 1
        if held.track != 4:
            self._tracks[held.track].frames += 1
        self._check_writer()

    # -- state --------------------------------------------------------------------------

    def _check_writer(self) -> None:
        if self.writer.error is not None and self.state not in (FAILED, CLOSED):
            self._fail(self.writer.error)

    def _fail(self, exc: BaseException) -> None:
        if self.state in (FAILED, CLOSED):
            return
        self.state = FAILED
        self.error = f"recording stopped: {exc}"
        log.error("recorder: %s", self.error)
        if self.writer.error is None:
            self.writer.abandon(exc)
        self._status(RecorderStatus(FAILED, self.error))

    def _status(self, status: RecorderStatus) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(status)
        except Exception:
            log.exception("recorder: on_status failed")

    def _manifest(self, *, finalised: bool, reason: str, ended: float, duration: float) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "recording_id": self.recording_id,
            "session": self.session,
            "finalised": finalised,
            "reason": reason if finalised else (self.error or reason or "not finalised"),
            "started_at": _iso(self._wall0) if self._wall0 is not None else None,
            "ended_at": _iso(ended),
            "duration_s": duration,
            "recipients": self.recipients,
            "container": "matroska",
            "clock": "ms since the first frame; per-stream RTP time anchored to arrival (docs/recording.md)",
            "tracks": [
                {"index": i, "title": TRACK_TITLES[t.key], "direction": t.key[0], "kind": t.key[1],
                 "codec": t.codec, "frames": t.frames, "dropped": t.dropped}
                for i, t in enumerate(self._tracks)
            ] + [{"index": 4, "title": "chat and victim signals", "kind": "text", "codec": "S_TEXT/UTF8",
                  "chat": self.counts.chat, "flags": self.counts.flags}],
            "segments": [s.to_json() for s in self.writer.segments],
            "stills": list(self.stills),
        }
