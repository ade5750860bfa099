"""Playing a recording back, in the media process (issue 10 item 9). No Qt.

The app (which holds the officer's identity) unwraps each segment's file key
and sends only those; here they open the segments through
``vault.age.FileKeyReader``. ``PlaintextView`` is a read-only, seekable file
object over the concatenated plaintext, decrypted chunk by chunk as PyAV
asks for bytes, held only in memory (a few chunks cached): no plaintext file,
no temporary file, ever.

The recording has no Cues (it is written as a live, non-seekable stream),
so ``Player.open`` demuxes it once: that pass gives the duration, the chat
lines (the ``S_TEXT/UTF8`` track) with their times, and lets FFmpeg's
Matroska demuxer index every keyframe it met, after which a seek by time
lands on the keyframe at or before it; frames from there to the asked time
are decoded and not shown. A seek decrypts only the chunks from that
keyframe on.

Both video tracks are decoded, scaled to one height and put side by side
(victim left, officer right) into the display slot through ``publish``;
both audio tracks are mixed to mono 48 kHz and played with sounddevice as
the call's speaker is (``capture.speaker``). Video is paced by a wall clock
started at play (or seek) time.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..vault.age import AgeError, FileKeyReader

log = logging.getLogger(__name__)

RATE = 48_000
HEIGHT = 360  # each side is scaled to this height for the window
GAP = 8  # px of black between the two pictures
CACHE_CHUNKS = 8  # decrypted 64 KiB chunks kept in memory
OPEN_SEGMENTS = 8  # segment files kept open while reading
STATUS_EVERY = 0.25  # s between position updates while playing


class PlayerError(Exception):
    """The recording cannot be played (the message says which segment and why)."""


@dataclass(frozen=True)
class SegmentKey:
    """One segment as the app sends it: the file, its file key, its plaintext size, finalised or not."""

    file: str
    file_key: bytes
    plaintext_size: int | None
    complete: bool


@dataclass(frozen=True)
class ChatLine:
    at: float  # seconds from the recording's start
    text: str


class PlaintextView(io.RawIOBase):
    """The recording's plaintext as one seekable, read-only file, decrypted on demand."""

    def __init__(self, folder: Path, segments: Sequence[SegmentKey]):
        super().__init__()
        # An hour's recording has ~1,800 segments: more than a process may keep open
        # (1,024 by default on Linux). Each is opened and checked here (its header MAC
        # with its file key, its size), then closed; reading reopens the few in use
        # (at most OPEN_SEGMENTS, least recently used closed first). A file swapped in
        # meanwhile fails its header MAC on reopening, as a wrong key would.
        self._paths: list[Path] = []
        self._segments = list(segments)
        self._open: OrderedDict[int, tuple[BinaryIO, FileKeyReader]] = OrderedDict()
        self._names: list[str] = []
        self._starts: list[int] = []
        total = 0
        for i, seg in enumerate(segments, start=1):
            path = Path(folder) / seg.file
            if path.name != seg.file or not seg.file.startswith("seg-"):
                raise PlayerError(f"segment {i}: {seg.file!r} is not a segment file name")
            with open(path, "rb") as fh:
                try:
                    reader = FileKeyReader(fh, seg.file_key, finalised=seg.complete)
                except AgeError as exc:
                    raise PlayerError(f"segment {i} ({seg.file}) cannot be read: {exc}") from None
            if seg.plaintext_size is not None and reader.plaintext_size != seg.plaintext_size:
                raise PlayerError(f"segment {i} ({seg.file}) holds {reader.plaintext_size} bytes, "
                                  f"the manifest says {seg.plaintext_size}")
            self._paths.append(path)
            self._names.append(f"segment {i} ({seg.file})")
            self._starts.append(total)
            total += reader.plaintext_size
        self._size = total
        self._pos = 0
        self.failure: PlayerError | None = None  # the first chunk that did not authenticate
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def _reader(self, seg: int) -> FileKeyReader:
        found = self._open.get(seg)
        if found is not None:
            self._open.move_to_end(seg)
            return found[1]
        fh = open(self._paths[seg], "rb")  # noqa: SIM115 - kept in the LRU, closed in close()
        try:
            reader = FileKeyReader(fh, self._segments[seg].file_key, finalised=self._segments[seg].complete)
        except BaseException:
            fh.close()
            raise
        self._open[seg] = (fh, reader)
        if len(self._open) > OPEN_SEGMENTS:
            self._open.popitem(last=False)[1][0].close()
        return reader

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _chunk(self, seg: int, index: int) -> bytes:
        key = (seg, index)
        data = self._cache.get(key)
        if data is None:
            try:
                data = self._reader(seg).chunk(index)
            except (AgeError, OSError) as exc:
                # PyAV may drop an exception raised in its read callback and
                # see an end of file: the failure is kept for the player to raise.
                self.failure = PlayerError(f"{self._names[seg]} cannot be decrypted: {exc}")
                raise self.failure from None
            self._cache[key] = data
            if len(self._cache) > CACHE_CHUNKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        out = bytearray()
        while len(out) < size and self._pos < self._size:
            seg = _bisect(self._starts, self._pos)
            within = self._pos - self._starts[seg]
            index, offset = divmod(within, 64 * 1024)
            piece = self._chunk(seg, index)[offset: offset + size - len(out)]
            if not piece:  # an empty segment (cut in its header): go on to the next
                self._pos = self._starts[seg + 1] if seg + 1 < len(self._starts) else self._size
                continue
            out += piece
            self._pos += len(piece)
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        for fh, _reader in getattr(self, "_open", {}).values():
            fh.close()
        if hasattr(self, "_open"):
            self._open.clear()
        if hasattr(self, "_cache"):
            self._cache.clear()
        super().close()


def _bisect(starts: list[int], pos: int) -> int:
    import bisect

    return bisect.bisect_right(starts, pos) - 1


class _Mixer:
    """Both sides' audio, mixed by time into one mono stream for the speaker.

    Samples are placed at their own time (``pts`` x 48 kHz) and summed, so the
    two sides stay together whatever order the demuxer gives them in; the
    sound card's callback takes from ``cursor`` on, silence where nothing is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = np.zeros(0, np.float32)
        self._base = 0  # sample index of _buf[0]
        self.stream: Any = None
        self.samples_played = 0
        self._resamplers: dict[int, Any] = {}

    def start(self) -> str:
        """Open the output device; returns a plain note when there is none (playback goes on silent)."""
        try:
            import sounddevice as sd  # type: ignore[import-untyped]

            self.stream = sd.RawOutputStream(samplerate=RATE, channels=1, dtype="int16", blocksize=RATE // 50,
                                             callback=self._callback)
            self.stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio raises several kinds; no speaker is not fatal
            self.stream = None
            log.warning("player: no sound output (%s)", type(exc).__name__)
            return "No speaker or headset was found: the recording plays without sound."
        return ""

    def reset(self, seconds: float) -> None:
        with self._lock:
            self._buf = np.zeros(0, np.float32)
            self._base = int(seconds * RATE)
        self._resamplers.clear()  # a resampler keeps samples across calls: none may leak past a seek

    def add(self, side: int, frame: Any) -> None:
        import av

        if self.stream is None or frame.time is None:
            return
        resampler = self._resamplers.get(side)
        if resampler is None:
            resampler = self._resamplers[side] = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        start = int(frame.time * RATE)
        pcm = np.concatenate([out.to_ndarray().reshape(-1) for out in resampler.resample(frame)] or
                             [np.zeros(0, np.float32)]).astype(np.float32)
        with self._lock:
            offset = start - self._base
            if offset < 0:
                pcm, offset = pcm[-offset:], 0
            if not len(pcm):
                return
            end = offset + len(pcm)
            if end > len(self._buf):
                self._buf = np.concatenate([self._buf, np.zeros(end - len(self._buf), np.float32)])
            self._buf[offset:end] += pcm

    def _callback(self, outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        with self._lock:
            take = self._buf[:frames]
            self._buf = self._buf[frames:]
            self._base += frames
        pcm = np.zeros(frames, np.int16)
        pcm[: len(take)] = np.clip(take * 32767, -32768, 32767).astype(np.int16)
        outdata[:] = pcm.tobytes()
        self.samples_played += len(take)

    def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001 - closing: nothing more to do
                log.warning("player: the speaker did not close cleanly")


def side_by_side(left: np.ndarray | None, right: np.ndarray | None, height: int = HEIGHT) -> np.ndarray:
    """The two pictures (BGRA, already ``height`` tall) in one frame; a black 4:3 box for a missing one."""
    blank_w = height * 4 // 3
    lw = left.shape[1] if left is not None else blank_w
    rw = right.shape[1] if right is not None else blank_w
    out = np.zeros((height, lw + GAP + rw, 4), np.uint8)
    out[:, :, 3] = 255
    if left is not None:
        out[:, :lw] = left
    if right is not None:
        out[:, lw + GAP:] = right
    return out


class Player:
    """One recording being played. ``open()`` (blocking: demuxes once), then
    ``play``/``pause``/``seek``/``close`` from any thread; a thread of its
    own decodes and paces. ``on_status(state, position, message)`` reports
    ``playing``, ``paused``, ``ended`` and ``error`` (with a plain message),
    and the position every ``STATUS_EVERY`` while playing."""

    def __init__(self, folder: Path, segments: Sequence[SegmentKey], *,
                 publish: Callable[[np.ndarray], None],
                 on_status: Callable[[str, float, str], None] = lambda s, p, m: None,
                 audio: bool = True, height: int = HEIGHT):
        self.folder = Path(folder)
        self.segments = list(segments)
        self.publish = publish
        self.on_status = on_status
        self.height = height
        self.duration = 0.0
        self.chat: list[ChatLine] = []
        self.frames_shown = 0
        self.frame_time: float | None = None  # media time of the newest picture shown
        self.note = ""
        self._audio = audio
        self._mixer = _Mixer()
        self._view: PlaintextView | None = None
        self._container: Any = None
        self._cond = threading.Condition()
        self._playing = False
        self._closed = False
        self._seek_to: float | None = 0.0
        self._clock0 = 0.0  # monotonic time at which position 0 would have played
        self._position = 0.0
        self._thread: threading.Thread | None = None
        self._sides: dict[int, np.ndarray] = {}

    # -- setting up -------------------------------------------------------------------

    def open(self) -> dict[str, Any]:
        """Check and index the recording; returns ``duration``, ``chat`` and ``tracks``.
        Raises ``PlayerError`` with a plain message."""
        import av

        self._view = PlaintextView(self.folder, self.segments)
        try:
            self._container = av.open(self._view, mode="r", format="matroska")
            self._index()
            self._check_view()
        except PlayerError:
            self.close()
            raise
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            view = self._view
            failure = view.failure if view is not None else None
            self.close()
            if failure is not None:
                raise failure from None
            raise PlayerError(f"the recording cannot be read as a video file ({type(exc).__name__}: {exc})") \
                from None
        if self._audio:
            self.note = self._mixer.start()
        self._thread = threading.Thread(target=self._run, name="player", daemon=True)
        self._thread.start()
        return {"duration": self.duration, "chat": [{"at": c.at, "text": c.text} for c in self.chat],
                "tracks": [s.type for s in self._container.streams], "note": self.note}

    def _index(self) -> None:
        end = 0.0
        for packet in self._container.demux():
            if packet.pts is None:
                continue
            t = float(packet.pts * packet.stream.time_base)
            if packet.duration:
                t_end = t + float(packet.duration * packet.stream.time_base)
            else:
                t_end = t
            if packet.stream.type == "subtitle":
                self.chat.append(ChatLine(round(t, 3), bytes(packet).decode("utf-8", "replace")))
            else:
                end = max(end, t_end)
        self.duration = round(end, 3)

    # -- commands (any thread) ------------------------------------------------------------

    def play(self) -> None:
        with self._cond:
            if self._position >= self.duration > 0 and self._seek_to is None:
                self._seek_to = 0.0  # played to the end: start again
            self._playing = True
            self._clock0 = time.monotonic() - self._position
            self._cond.notify_all()
        self.on_status("playing", self._position, self.note)

    def pause(self) -> None:
        with self._cond:
            self._playing = False
            self._cond.notify_all()
        self.on_status("paused", self._position, "")

    def seek(self, seconds: float) -> None:
        seconds = min(max(0.0, float(seconds)), self.duration)
        with self._cond:
            self._seek_to = seconds
            self._position = seconds
            self._clock0 = time.monotonic() - seconds
            self._cond.notify_all()

    @property
    def position(self) -> float:
        return self._position

    @property
    def playing(self) -> bool:
        return self._playing

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._playing = False
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._mixer.close()
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._view is not None:
            self._view.close()
            self._view = None
        self._sides.clear()
        self.segments = []  # the file keys go with the player

    # -- the decoding thread -------------------------------------------------------------

    def _do_seek(self, t: float) -> Any:
        container = self._container
        video = [s for s in container.streams if s.type == "video"]
        stream = video[0] if video else container.streams[0]
        container.seek(max(0, int(t / stream.time_base)), stream=stream, backward=True)
        for s in container.streams:
            if s.type in ("video", "audio"):
                s.codec_context.flush_buffers()
        self._mixer.reset(t)
        self._sides.clear()
        self.frame_time = None
        return container.demux()

    def _run(self) -> None:
        packets: Any = None
        skip_until = 0.0
        last_status = 0.0
        video_index: dict[int, int] = {}
        audio_index: dict[int, int] = {}
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._playing and self._seek_to is None:
                        self._cond.wait()
                    if self._closed:
                        return
                    seek_to, self._seek_to = self._seek_to, None
                if seek_to is not None:
                    packets = self._do_seek(seek_to)
                    skip_until = seek_to
                    video_index = {s.index: i for i, s in enumerate(
                        x for x in self._container.streams if x.type == "video")}
                    audio_index = {s.index: i for i, s in enumerate(
                        x for x in self._container.streams if x.type == "audio")}
                    if not self._playing:
                        self._show_frame_at(packets, seek_to, video_index)  # paused: show where we landed
                        landed = self.frame_time
                        sides = dict(self._sides)
                        packets = self._do_seek(seek_to)  # play resumes from the keyframe again
                        self._sides, self.frame_time = sides, landed
                        self.on_status("paused", landed if landed is not None else seek_to, "")
                        continue
                try:
                    packet = next(packets)
                except StopIteration:
                    self._check_view()
                    with self._cond:
                        self._playing = False
                        self._position = self.duration
                    self.on_status("ended", self.duration, "")
                    with self._cond:
                        while not self._closed and self._seek_to is None and not self._playing:
                            self._cond.wait()
                        if self._playing and self._seek_to is None:
                            self._seek_to = 0.0
                    continue
                if packet.stream.type not in ("video", "audio") or packet.pts is None:
                    continue
                for frame in self._decode(packet):
                    t = frame.time
                    if t is None or t < skip_until - 0.001:
                        continue
                    if packet.stream.type == "audio":
                        self._mixer.add(audio_index.get(packet.stream.index, 0), frame)
                        continue
                    if not self._wait_until(t):
                        break  # paused, sought or closed meanwhile
                    self._sides[video_index.get(packet.stream.index, 0)] = self._scaled(frame)
                    self.publish(side_by_side(self._sides.get(0), self._sides.get(1), self.height))
                    self.frames_shown += 1
                    self.frame_time = self._position = t
                now = time.monotonic()
                if now - last_status >= STATUS_EVERY and self._playing:
                    last_status = now
                    self.on_status("playing", self._position, "")
        except PlayerError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the media process goes on; the window says why
            view = self._view
            if view is not None and view.failure is not None:
                self._fail(str(view.failure))
            else:
                log.exception("player: playback failed")
                self._fail(f"playback stopped: {type(exc).__name__}: {exc}")

    def _check_view(self) -> None:
        view = self._view
        if view is not None and view.failure is not None:
            raise view.failure

    def _fail(self, message: str) -> None:
        with self._cond:
            self._playing = False
        self.on_status("error", self._position, message)

    def _decode(self, packet: Any) -> list[Any]:
        import av

        try:
            return list(packet.decode())
        except av.error.InvalidDataError:
            return []  # a frame that needs a reference before a seek's keyframe: skipped

    def _scaled(self, frame: Any) -> np.ndarray:
        w = max(2, round(frame.width * self.height / max(1, frame.height)) // 2 * 2)
        return frame.reformat(width=w, height=self.height, format="bgra").to_ndarray()

    def _wait_until(self, t: float) -> bool:
        """Sleep until the clock reaches ``t``; False if paused, sought or closed meanwhile."""
        with self._cond:
            while True:
                if self._closed or not self._playing or self._seek_to is not None:
                    return False
                delay = self._clock0 + t - time.monotonic()
                if delay <= 0:
                    return True
                self._cond.wait(min(delay, 0.1))

    def _show_frame_at(self, packets: Any, t: float, video_index: dict[int, int]) -> None:
        """While paused: decode up to ``t`` and show the pictures there."""
        for packet in packets:
            if packet.pts is None or packet.stream.type != "video":
                if packet.pts is not None and float(packet.pts * packet.stream.time_base) > t + 0.5:
                    break
                continue
            done = False
            for frame in self._decode(packet):
                if frame.time is None or frame.time < t - 0.001:
                    continue
                self._sides[video_index.get(packet.stream.index, 0)] = self._scaled(frame)
                if video_index.get(packet.stream.index, 0) == 0:
                    self.frame_time = frame.time  # the victim's picture: the one the seek is judged by
                done = True
            if done and len(self._sides) >= min(2, len(video_index)):
                break
        if self._sides:
            self.publish(side_by_side(self._sides.get(0), self._sides.get(1), self.height))
            self.frames_shown += 1


def segment_keys(items: object) -> list[SegmentKey]:
    """The ``segments`` of a ``player_open`` message, checked field by field
    (``ValueError`` with a plain message: the reply fails, nothing opens)."""
    import base64
    import binascii

    if not isinstance(items, list) or not items:
        raise ValueError("player_open: segments must be a non-empty list")
    out = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or set(item) != {"file", "file_key", "plaintext_size", "complete"}:
            raise ValueError(f"player_open: segment {i} must have file, file_key, plaintext_size and complete")
        file, key, size, complete = item["file"], item["file_key"], item["plaintext_size"], item["complete"]
        if not isinstance(file, str) or not file.startswith("seg-") or "/" in file or "\\" in file:
            raise ValueError(f"player_open: segment {i} has a bad file name")
        try:
            raw = base64.b64decode(key, validate=True) if isinstance(key, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 16:
            raise ValueError(f"player_open: segment {i} has a bad file key (16 bytes, base64)")
        if size is not None and (type(size) is not int or size < 0):
            raise ValueError(f"player_open: segment {i} has a bad plaintext size")
        if type(complete) is not bool:
            raise ValueError(f"player_open: segment {i}: complete must be true or false")
        out.append(SegmentKey(file, raw, size, complete))
    return out
