"""The recording's working copy (issue 12, item 3): one file that plays in
ordinary players, H.264 and AAC in MP4, both sides visible and heard, made
after the call in the media process (PyAV; never the GUI's process).

The original as received stays the master (what the hashes pin); this copy
is for watching. Both video tracks are decoded and put side by side, each
letterboxed into a ``SIDE_W`` x ``SIDE_H`` box (victim left, officer right),
at ``FPS``; the two audio tracks become the two stereo channels (victim
left, officer right), so both are heard and either can be isolated; the chat
lines with their times are returned (the bundle lists them as ``chat.json``).

The MP4 is fragmented (``frag_keyframe+empty_moov``), so it is written
strictly forwards: straight into an age ``Encryptor`` (the laptop never
holds it in plaintext) or any pipe. Input is a seekable plaintext view
(``player.PlaintextView``, decrypting in memory). Cancellable between frames.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

FPS = 15
SIDE_W, SIDE_H = 480, 360
RATE = 48_000
AAC_FRAME = 1024
AUDIO_SLACK = 0.5  # s: audio is written once both sides are this far past it (interleaving in the source)


class WorkingCopyCancelled(Exception):
    pass


class _ForwardWriter(io.RawIOBase):
    """A write-only, non-seekable file object over ``sink.write``."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self.written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        n = len(memoryview(data))
        self._sink.write(bytes(data))
        self.written += n
        return n


_BLACK = (16, 128, 128)  # Y, U, V (limited range)


def _boxed(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A decoded picture (``av.VideoFrame``) letterboxed into one side's box, as
    yuv420p planes (Y, U, V): scaled and converted in one swscale pass
    (``reformat``), only when shown; the encoder then takes it as it is."""
    planes = [np.full((SIDE_H, SIDE_W), _BLACK[0], np.uint8),
              np.full((SIDE_H // 2, SIDE_W // 2), _BLACK[1], np.uint8),
              np.full((SIDE_H // 2, SIDE_W // 2), _BLACK[2], np.uint8)]
    if frame is None:
        return planes[0], planes[1], planes[2]
    w, h = frame.width, frame.height
    scale = min(SIDE_W / w, SIDE_H / h)
    nw, nh = max(2, int(w * scale)) // 4 * 4, max(2, int(h * scale)) // 4 * 4
    small = frame.reformat(width=nw, height=nh, format="yuv420p", interpolation="AREA").to_ndarray()
    y, x = (SIDE_H - nh) // 4 * 2, (SIDE_W - nw) // 4 * 2
    planes[0][y:y + nh, x:x + nw] = small[:nh]
    planes[1][y // 2:(y + nh) // 2, x // 2:(x + nw) // 2] = small[nh:nh + nh // 4].reshape(nh // 2, nw // 2)
    planes[2][y // 2:(y + nh) // 2, x // 2:(x + nw) // 2] = small[nh + nh // 4:].reshape(nh // 2, nw // 2)
    return planes[0], planes[1], planes[2]


def _picture(boxes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """The two sides side by side, as PyAV's yuv420p array (Y rows, then U and V packed)."""
    y = np.hstack([b[0] for b in boxes])
    u = np.hstack([b[1] for b in boxes])
    v = np.hstack([b[2] for b in boxes])
    width = y.shape[1]
    return np.vstack([y, u.reshape(-1, width), v.reshape(-1, width)])


def make_working_copy(source: BinaryIO | io.RawIOBase, sink: Any, *, cancelled: Callable[[], bool] | None = None,
                      progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Read the recording (Matroska: victim video/audio, officer video/audio,
    chat) from ``source`` and write the MP4 to ``sink.write``. Returns
    ``duration_s``, ``video_frames`` and ``chat`` ([{"at_s", "text"}])."""
    import av

    is_cancelled = cancelled or (lambda: False)
    inp = av.open(source, mode="r", format="matroska")
    out = av.open(_ForwardWriter(sink), mode="w", format="mp4",
                  options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
    try:
        streams = list(inp.streams)
        videos = [s for s in streams if s.type == "video"][:2]
        audios = [s for s in streams if s.type == "audio"][:2]
        side_of = {s.index: i for i, s in enumerate(videos)} | {s.index: i for i, s in enumerate(audios)}
        vout = out.add_stream("libx264", rate=FPS)
        vout.width, vout.height = SIDE_W * 2, SIDE_H
        vout.pix_fmt = "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "28", "tune": "zerolatency"}
        aout = out.add_stream("aac", rate=RATE, layout="stereo")
        latest: list[Any] = [None, None]  # the newest decoded picture per side, converted only when shown
        dirty = [False, False]
        boxes = [_boxed(None), _boxed(None)]
        next_out = 0  # index of the next output video frame
        chat: list[dict[str, Any]] = []
        audio = np.zeros((2, 0), np.float32)  # from sample `base` on
        base = 0
        flushed = 0  # samples handed to the encoder
        audio_seen = [0, 0]  # per side: the sample index its audio has reached
        end = 0.0

        def emit_video_until(t: float) -> None:
            nonlocal next_out
            while next_out / FPS < t:
                for side in (0, 1):
                    if dirty[side]:
                        boxes[side] = _boxed(latest[side])
                        dirty[side] = False
                frame = av.VideoFrame.from_ndarray(_picture(boxes), format="yuv420p")
                frame.pts = next_out
                for p in vout.encode(frame):
                    out.mux(p)
                next_out += 1

        def flush_audio(upto: int) -> None:
            nonlocal audio, base, flushed
            while flushed + AAC_FRAME <= upto:
                start = flushed - base
                chunk = audio[:, start:start + AAC_FRAME]
                if chunk.shape[1] < AAC_FRAME:
                    chunk = np.pad(chunk, ((0, 0), (0, AAC_FRAME - chunk.shape[1])))
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                frame.sample_rate = RATE
                frame.pts = flushed
                for p in aout.encode(frame):
                    out.mux(p)
                flushed += AAC_FRAME
            drop = flushed - base
            if drop > RATE * 5:  # keep the buffer short
                audio = audio[:, drop:]
                base = flushed

        for packet in inp.demux():
            if is_cancelled():
                raise WorkingCopyCancelled()
            stream: Any = packet.stream
            if packet.pts is None:
                continue
            t = float(packet.pts * stream.time_base)
            if stream.type == "subtitle":
                chat.append({"at_s": round(t, 3), "text": bytes(packet).decode("utf-8", "replace")})
                continue
            if stream.index not in side_of:
                continue
            side = side_of[stream.index]
            try:
                frames: list[Any] = list(packet.decode())
            except av.error.FFmpegError:
                continue  # a damaged packet: the next keyframe recovers
            for frame in frames:
                if frame.pts is None:
                    continue
                ft = float(frame.pts * frame.time_base)
                end = max(end, ft)
                if stream.type == "video":
                    emit_video_until(ft)
                    latest[side] = frame
                    dirty[side] = True
                else:
                    pcm = frame.to_ndarray()
                    mono = pcm.astype(np.float32).mean(axis=0) if pcm.ndim == 2 else pcm.astype(np.float32)
                    if pcm.dtype == np.int16:
                        mono = mono / 32768.0
                    if frame.sample_rate != RATE:
                        continue  # Opus decodes at 48 kHz; anything else is not ours
                    at = int(round(ft * RATE))
                    need = at + mono.shape[0] - base
                    if need > audio.shape[1]:
                        audio = np.pad(audio, ((0, 0), (0, need - audio.shape[1])))
                    lo = max(at - base, 0)
                    seg = mono[lo - (at - base):]
                    audio[side, lo:lo + seg.shape[0]] += seg
                    audio_seen[side] = max(audio_seen[side], at + mono.shape[0])
                    active = [s for s in audio_seen if s > 0]
                    flush_audio(min(active) - int(AUDIO_SLACK * RATE) if active else 0)
            if progress is not None:
                progress(end)
        emit_video_until(end + 1 / FPS)
        flush_audio(max(audio_seen) + AAC_FRAME - 1 if any(audio_seen) else 0)
        for p in vout.encode(None):
            out.mux(p)
        for p in aout.encode(None):
            out.mux(p)
    finally:
        out.close()
        inp.close()
    return {"duration_s": round(end, 3), "video_frames": next_out, "chat": chat}


def chat_json(chat: list[dict[str, Any]]) -> bytes:
    return json.dumps({"chat": chat}, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"


def write_working_copy(folder: Any, keys: Any, recipients: list[str]) -> dict[str, Any]:
    """``working-copy.mp4.age`` and ``chat.json.age`` in the recording's folder,
    from its segments' file keys, encrypted as written to the two public
    recipients (age): nothing in plaintext reaches the disk. Atomic: a
    half-made copy is removed, never left under the final name."""
    import os
    from pathlib import Path

    from ..fsutil import atomic_write
    from ..vault.age import Encryptor, encrypt
    from .player import PlaintextView

    base = Path(folder)
    partial = base / ".working-copy.mp4.age.partial"
    view = PlaintextView(base, keys)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as fh:
            enc = Encryptor(fh, recipients)
            result = make_working_copy(view, enc)
            enc.close()
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write(base / "chat.json.age", encrypt(chat_json(result["chat"]), recipients))
        os.replace(partial, base / "working-copy.mp4.age")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        view.close()
    return result
