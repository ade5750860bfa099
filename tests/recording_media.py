"""Synthetic encoded media for the recording tests: real VP8 and Opus
bitstreams (PyAV's libvpx and libopus), shaped like the tap's frames."""

from __future__ import annotations

import contextlib
import fractions
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest


@dataclass(frozen=True)
class TapFrame:
    direction: str
    kind: str
    codec: str
    clock_rate: int
    timestamp: int
    data: bytes
    keyframe: bool
    monotonic: float
    session: str = "appt-1"
    generation: int = 0


def vp8_stream(n: int, w: int = 320, h: int = 240, fps: int = 30, gop: int = 90,
               seed: int = 0) -> list[tuple[bytes, bool]]:
    cc = av.CodecContext.create("libvpx", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.time_base = fractions.Fraction(1, fps)
    cc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    cc.bit_rate = 800_000
    cc.gop_size = gop
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    out: list[tuple[bytes, bool]] = []
    for i in range(n):
        arr = noise.copy()
        arr[:, (i * 4) % w] = 255
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        for p in cc.encode(frame):
            out.append((bytes(p), bool(p.is_keyframe)))
    for p in cc.encode(None):
        out.append((bytes(p), bool(p.is_keyframe)))
    return out


def h264_stream(n: int, w: int = 320, h: int = 240, fps: int = 30) -> list[tuple[bytes, bool]]:
    """Annex-B access units, as the tap delivers H.264 (SPS/PPS before each IDR)."""
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.time_base = fractions.Fraction(1, fps)
    cc.options = {"preset": "ultrafast", "tune": "zerolatency", "repeat-headers": "1"}
    out: list[tuple[bytes, bool]] = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), i % 255, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        out.extend((bytes(p), bool(p.is_keyframe)) for p in cc.encode(frame))
    return out


def opus_stream(n: int, freq: float = 440.0) -> list[bytes]:
    cc = av.CodecContext.create("libopus", "w")
    cc.sample_rate, cc.layout, cc.format, cc.bit_rate = 48000, "stereo", "s16", 32000
    out: list[bytes] = []
    for i in range(n):
        t = np.arange(960) + i * 960
        s = (np.sin(2 * np.pi * freq * t / 48000) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.stack([s, s]).T.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 960
        out.extend(bytes(p) for p in cc.encode(frame))
    return out


def call_frames(seconds: float, *, t0: float = 1000.0, rtp0: dict[str, int] | None = None,
                fps: int = 30, size: tuple[int, int] = (320, 240)) -> list[TapFrame]:
    """Both directions, audio and video, in arrival order, over ``seconds``."""
    rtp0 = rtp0 or {}
    nv, na = int(seconds * fps), int(seconds * 50)
    frames: list[TapFrame] = []
    for direction, seed in (("received", 1), ("sent", 2)):
        video = vp8_stream(nv, w=size[0], h=size[1], fps=fps, seed=seed)
        base = rtp0.get(direction + "v", 12345 * seed)
        for i, (data, key) in enumerate(video):
            frames.append(TapFrame(direction, "video", "video/VP8", 90000, (base + i * 90000 // fps) & 0xFFFFFFFF,
                                   data, key, t0 + i / fps + 0.003 * seed))
        abase = rtp0.get(direction + "a", 777 * seed)
        for i, data in enumerate(opus_stream(na, 440.0 * seed)):
            frames.append(TapFrame(direction, "audio", "audio/opus", 48000, (abase + i * 960) & 0xFFFFFFFF,
                                   data, True, t0 + i * 0.02 + 0.001 * seed))
    frames.sort(key=lambda f: f.monotonic)
    return frames


def record_paced_main() -> None:
    """Child process for the kill test: ``python -c ... FOLDER OFFICER ESCROW SECONDS [FRAMES]``.
    Records a synthetic call fed at its real pace; prints ``START <monotonic>``
    (``time.monotonic`` is the system's CLOCK_MONOTONIC: the parent's clock too),
    the moment media time 0 is due. FRAMES: a pickle of ``call_frames(..., t0=0.0)``
    made once by the parent (many children need not each encode the same media)."""
    import dataclasses
    import pickle
    import sys
    import time

    from evr_desktop.recording.recorder import Recorder

    folder, officer, escrow, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    if len(sys.argv) > 5:
        with open(sys.argv[5], "rb") as f:
            frames = pickle.load(f)
    else:
        frames = call_frames(seconds, t0=0.0)
    rec = Recorder(__import__("pathlib").Path(folder), officer_recipient=officer, escrow_recipient=escrow)
    t0 = time.monotonic()
    print(f"START {t0}", flush=True)
    reported = 0.0
    for f in frames:
        delay = t0 + f.monotonic - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        rec(dataclasses.replace(f, monotonic=t0 + f.monotonic))
        if f.monotonic - reported >= 0.05:  # what the recorder has been given (a loaded machine may lag)
            reported = f.monotonic
            print(f"FED {f.monotonic:.3f}", flush=True)
    rec.close()
    print("DONE", flush=True)


@contextlib.contextmanager
def small_filesystem(tmp_path: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs (``size``: "1m", "256k") mounted at ``tmp_path/small``
    for a full-disk test; unmounted afterwards. Needs root (./dev test runs as
    root in CI): without it the test fails rather than pass unseen."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a size-limited tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def open_under(folder: Path) -> list[str]:
    """This process's open descriptors on ``folder`` or anything in it. (Not a
    count of all descriptors: other tests' threads open and close theirs
    meanwhile.)"""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing (the listing's own descriptor, too)
            continue
        if target == str(folder) or target.startswith(str(folder) + os.sep):
            found.append(target)
    return found
