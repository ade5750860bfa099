"""Synthetic sources for machines with no camera or microphone (and for tests
and benchmarks): a moving test pattern and a 440 Hz tone, both paced in real
time.

The test pattern carries the wall-clock time it was drawn twice: as text for
people, and as a strip of black and white blocks along the top for machines,
so glass-to-glass latency can be read back from a decoded frame on the far
side (:func:`read_timestamp`).

The block strip (its layout is relative to the frame size, so it survives
scaling by the far side's encoder): 2 rows of 26 blocks across the top of the
frame, each block ``width/26`` wide and ``height/24`` high, read left to
right, top row first, 52 bits, white = 1:

- bits 0-1: ``1, 0`` (sync: tells a stamped frame from any other picture);
- bits 2-45: the Unix time in milliseconds, 44 bits, most significant first;
- bits 46-51: ``crc32(ms as 6 bytes big-endian) & 0x3F``, a check.
"""

from __future__ import annotations

import math
import threading
import time
import zlib

import cv2
import numpy as np

from .base import SAMPLE_RATE, SAMPLES_PER_FRAME

COLS = 26
ROWS = 2
ROW_FRACTION = 24  # one strip row is height/24 high
TS_BITS = 44
CHECK_BITS = 6
_SYNC = (1, 0)


def _block_edges(size: int, parts: int) -> list[int]:
    return [round(i * size / parts) for i in range(parts + 1)]


def _check(ms: int) -> int:
    return zlib.crc32(ms.to_bytes(6, "big")) & ((1 << CHECK_BITS) - 1)


def _bits(ms: int) -> list[int]:
    if not 0 <= ms < (1 << TS_BITS):
        raise ValueError("timestamp out of range")
    ts = [(ms >> (TS_BITS - 1 - i)) & 1 for i in range(TS_BITS)]
    ck = [(_check(ms) >> (CHECK_BITS - 1 - i)) & 1 for i in range(CHECK_BITS)]
    return [*_SYNC, *ts, *ck]


def draw_timestamp(frame: np.ndarray, ms: int) -> None:
    """Draw ``ms`` as the block strip into ``frame`` (RGB, in place)."""
    h, w = frame.shape[:2]
    xs = _block_edges(w, COLS)
    row_h = h / ROW_FRACTION
    ys = [round(r * row_h) for r in range(ROWS + 1)]
    for i, bit in enumerate(_bits(ms)):
        r, c = divmod(i, COLS)
        frame[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = 255 if bit else 0


def read_timestamp(frame: np.ndarray) -> int | None:
    """The millisecond timestamp drawn by :func:`draw_timestamp`, read back
    from a (possibly scaled, lossy-coded) RGB or grey frame; None when the
    frame carries no valid strip."""
    # Only the strip's blocks are read, a row of blocks at a time: its rows
    # summed into one column profile, whose running sum gives each block's
    # mean. No grey copy of the whole frame (that cost a 640x480 frame 3 ms on
    # the GUI thread of a benchmark that reads every painted frame back).
    pixels = frame if frame.ndim == 3 else frame[..., None]
    pixels = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
    h, w = pixels.shape[:2]
    if w < COLS * 2 or h < ROW_FRACTION:
        return None
    row_h = h / ROW_FRACTION
    col_w = w / COLS
    bits = []
    for r in range(ROWS):
        # the middle half of each block: away from edges the codec smears
        y0, y1 = int(r * row_h + row_h / 4), int(r * row_h + row_h * 3 / 4) + 1
        profile = pixels[y0:y1].sum(axis=(0, 2), dtype=np.int64)
        running = np.concatenate(([0], np.cumsum(profile)))
        per_column = (y1 - y0) * pixels.shape[2]
        for c in range(COLS):
            x0, x1 = int(c * col_w + col_w / 4), int(c * col_w + col_w * 3 / 4) + 1
            mean = (running[x1] - running[x0]) / ((x1 - x0) * per_column)
            bits.append(1 if mean >= 128 else 0)
    if tuple(bits[:2]) != _SYNC:
        return None
    ms = 0
    for b in bits[2 : 2 + TS_BITS]:
        ms = (ms << 1) | b
    check = 0
    for b in bits[2 + TS_BITS :]:
        check = (check << 1) | b
    return ms if check == _check(ms) else None


class _Pacer:
    """Sleep until the next tick of a fixed period; if we fell behind by more
    than ``backlog`` seconds (one period unless told), skip ahead instead of
    bursting to catch up.

    Video skips (a camera drops frames it could not deliver); audio catches up
    over a sound card's buffer, because a microphone's samples are continuous:
    skipping would shorten the audio's timeline against the wall clock, and a
    recording that maps it by RTP spacing would drift out of lip sync."""

    def __init__(self, period: float, backlog: float | None = None):
        self.period = period
        self.backlog = period if backlog is None else backlog
        self.next: float | None = None
        self.started: float | None = None  # time.time() of the first tick

    def wait(self, stop: threading.Event | None = None) -> None:
        now = time.monotonic()
        if self.next is None:
            self.next = now
            self.started = time.time()
        delay = self.next - now
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
        elif delay < -self.backlog:
            if self.started is not None:
                self.started += -delay  # the skipped time is lost to the sample clock
            self.next = now
        self.next += self.period


class SyntheticVideoSource:
    """A moving colour-bar pattern with a bouncing box, the frame number, the
    time as text and the machine-readable time strip (see module doc)."""

    synthetic = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0):
        if width < 64 or height < 48 or width % 2 or height % 2:
            raise ValueError("the test pattern needs an even size of at least 64x48")
        self.width, self.height, self.fps = width, height, float(fps)
        self.name = f"Test pattern {width}x{height}"
        self.count = 0
        self._pacer = _Pacer(1.0 / self.fps)
        self._stop = threading.Event()
        self._period = 2 * width  # the bars repeat every 2 widths
        x = np.arange(width + self._period)
        bar = (x * 8 // self._period) % 8  # 8 bars over one period
        colours = np.array(
            [
                [235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                [235, 16, 235], [235, 16, 16], [16, 16, 235], [40, 40, 40],
            ],
            dtype=np.uint8,
        )
        row = colours[bar]  # (W + period, 3)
        self._base = np.broadcast_to(row, (height, width + self._period, 3))

    def open(self) -> None:
        self._stop.clear()

    def close(self) -> None:
        self._stop.set()

    def render(self, n: int, ms: int) -> np.ndarray:
        """Frame number ``n`` stamped with ``ms`` (no pacing): for tests."""
        w, h = self.width, self.height
        off = (n * max(2, w // 160)) % self._period
        frame = np.ascontiguousarray(self._base[:, off : off + w])
        # a box bouncing left-right in the lower half: motion is visible at a glance
        box = max(8, h // 8)
        span = max(1, w - box)
        pos = n * max(2, w // 100) % (2 * span)
        x = pos if pos < span else 2 * span - pos
        y = h * 5 // 8
        frame[y : y + box, x : x + box] = (255, 255, 255)
        scale = h / 480
        stamp = time.strftime("%H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"
        ty = int(h / ROW_FRACTION * ROWS) + int(40 * scale) + 4
        for text, yy in ((f"#{n}", ty), (stamp, ty + int(44 * scale) + 4)):
            cv2.putText(frame, text, (int(12 * scale) + 2, yy), cv2.FONT_HERSHEY_SIMPLEX,
                        1.2 * scale, (0, 0, 0), max(1, int(6 * scale)), cv2.LINE_AA)
            cv2.putText(frame, text, (int(12 * scale) + 2, yy), cv2.FONT_HERSHEY_SIMPLEX,
                        1.2 * scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
        draw_timestamp(frame, ms)
        return frame

    def read(self) -> np.ndarray:
        """The next frame, at the source's pace; the time stamped is the
        moment it is drawn."""
        self._pacer.wait(self._stop)
        n = self.count
        self.count += 1
        return self.render(n, int(time.time() * 1000))


class SyntheticAudioSource:
    """A continuous sine tone, 48 kHz mono 16-bit, 20 ms per ``read()``,
    paced in real time."""

    synthetic = True
    sample_rate = SAMPLE_RATE
    samples_per_frame = SAMPLES_PER_FRAME

    def __init__(self, frequency: float = 440.0, level: float = 0.2):
        self.name = f"Test tone {frequency:g} Hz"
        self.frequency = frequency
        self.level = level
        self.count = 0
        # a sound card's buffer: up to 200 ms missed by a busy reader is delivered late, not lost
        self._pacer = _Pacer(self.samples_per_frame / self.sample_rate, backlog=0.2)
        self._stop = threading.Event()

    def open(self) -> None:
        self._stop.clear()

    def close(self) -> None:
        self._stop.set()

    def sample_time(self, n: int) -> float:
        """The wall-clock time (``time.time()``) frame ``n``'s first sample
        stands for, on the source's own sample clock."""
        started = self._pacer.started if self._pacer.started is not None else time.time()
        return started + n * self.samples_per_frame / self.sample_rate

    def samples(self, n: int) -> np.ndarray:
        start = n * self.samples_per_frame
        t = (np.arange(self.samples_per_frame) + start) / self.sample_rate
        wave = np.sin(2 * math.pi * self.frequency * t) * self.level * 32767
        return wave.astype(np.int16)

    def read(self) -> np.ndarray:
        self._pacer.wait(self._stop)
        n = self.count
        self.count += 1
        return self.samples(n)
