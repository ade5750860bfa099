"""What every media source is: a blocking, paced ``read()`` called from the
source's own thread (never from the engine's event loop).

Video sources return RGB frames (``uint8``, shape ``(height, width, 3)``);
audio sources return 20 ms of signed 16-bit mono samples at 48 kHz
(``int16``, shape ``(960,)``). ``open()`` raises :class:`DeviceError` with a
message an officer can read; ``read()`` raises it when the device goes away.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

SAMPLE_RATE = 48_000
FRAME_MS = 20
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000  # 960


class DeviceError(Exception):
    """A camera or microphone is missing, busy or stopped. ``str(exc)`` is a
    plain sentence for the officer (no traceback, no errno jargon)."""


@runtime_checkable
class VideoSource(Protocol):
    name: str
    synthetic: bool
    width: int
    height: int
    fps: float

    def open(self) -> None: ...

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    name: str
    synthetic: bool
    sample_rate: int
    samples_per_frame: int

    def open(self) -> None: ...

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...
