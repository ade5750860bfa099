"""aiortc tracks fed by a source's own thread.

Each track runs one producer thread that calls the source's blocking, paced
``read()``, wraps the result in a PyAV frame *on that thread* and hands it to
the event loop with one ``call_soon_threadsafe``: the loop never waits on a
device and never converts pixels. Video is latest-wins (a slow encoder drops
frames, never queues them); audio keeps a short bounded backlog (200 ms) and
drops the oldest beyond it.

A source error ends the track: ``recv()`` raises ``MediaStreamError`` and
``error`` holds the plain message; ``on_error`` (if set) is called once on
the event loop with it.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .base import AudioSource, DeviceError, VideoSource

log = logging.getLogger("evr_desktop.capture")

VIDEO_CLOCK = 90_000


class _SourceTrack(MediaStreamTrack):
    def __init__(self, source) -> None:
        super().__init__()
        self.source = source
        self.enabled = True  # False: black frames / silence, the device stays open
        self.error: str | None = None
        self.on_error: Callable[[str], None] | None = None
        self.frames_produced = 0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future | None = None
        self._t0 = 0.0

    # -- producer side (own thread) --------------------------------------------

    def start(self) -> None:
        """Open the device and start producing now (call on the event loop),
        rather than at the first ``recv()``: a camera that takes a few hundred
        milliseconds to open does so while the call is being set up."""
        self._ensure_started()

    def _ensure_started(self) -> None:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._t0 = time.monotonic()
            self._thread = threading.Thread(
                target=self._produce, name=f"capture-{self.kind}", daemon=True
            )
            self._thread.start()

    def _produce(self) -> None:
        try:
            self.source.open()
            while not self._stop_event.is_set():
                data = self.source.read()
                if self._stop_event.is_set():
                    break
                frame = self._wrap(data)
                self.frames_produced += 1
                with self._lock:
                    self._push(frame, data)
                    waiter, self._waiter = self._waiter, None
                if waiter is not None:
                    self._call(self._wake, waiter)
        except DeviceError as exc:
            self._fail(str(exc))
        except Exception as exc:  # never a traceback to the officer; log it for IT
            log.exception("capture %s failed", self.kind)
            self._fail(f"The {self._device_word()} stopped working ({type(exc).__name__}).")
        finally:
            try:
                self.source.close()
            except Exception:
                pass

    def _device_word(self) -> str:
        return "camera" if self.kind == "video" else "microphone"

    def _fail(self, message: str) -> None:
        if self._stop_event.is_set():
            return
        self.error = message
        with self._lock:
            waiter, self._waiter = self._waiter, None
        self._call(self._ended, waiter)

    def _call(self, fn, *args) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # loop closed meanwhile
                pass

    # -- loop side ---------------------------------------------------------------

    @staticmethod
    def _wake(waiter: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_result(None)

    def _ended(self, waiter: asyncio.Future | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_error is not None and self.error is not None:
            callback, self.on_error = self.on_error, None
            callback(self.error)
        self.stop()

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        self._ensure_started()
        while True:
            with self._lock:
                frame = self._pop()
                if frame is None:
                    waiter = self._waiter = self._loop.create_future()
            if frame is not None:
                return frame
            await waiter
            if self.readyState != "live":
                raise MediaStreamError

    def stop(self) -> None:
        self._stop_event.set()
        try:
            self.source.close()  # unblocks a paced synthetic read at once
        except Exception:
            pass
        with self._lock:
            waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            try:
                waiter.get_loop().call_soon_threadsafe(self._wake, waiter)
            except RuntimeError:
                pass
        super().stop()

    def join(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class VideoSourceTrack(_SourceTrack):
    """Latest-wins video from a :class:`VideoSource` (RGB ndarray frames)."""

    kind = "video"

    PREVIEW_WIDTH = 320  # the self view is 192 px wide; a little more for HiDPI

    def __init__(self, source: VideoSource) -> None:
        super().__init__(source)
        self._latest: av.VideoFrame | None = None
        self._latest_rgb: np.ndarray | None = None
        self._latest_preview: np.ndarray | None = None
        self._next_preview: np.ndarray | None = None
        self._fresh = False

    def _wrap(self, rgb: np.ndarray) -> av.VideoFrame:
        if not self.enabled:
            rgb = np.zeros_like(rgb)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = int((time.monotonic() - self._t0) * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        # outside the track's lock (_push runs under it), on the capture thread
        self._next_preview = self._preview(rgb) if self.enabled else None
        return frame

    def _preview(self, rgb: np.ndarray) -> np.ndarray:
        """A small copy for the officer's self view, made here on the capture
        thread (OpenCV releases the GIL) rather than by scaling a 720p frame
        on the GUI thread 30 times a second. BGRA, the byte order Qt paints
        without a conversion (``Format_RGB32``) and the media process's frame
        slots carry: nothing converts it again on its way to the screen (the
        media process did, in numpy, for ~0.015 cores at 30 frames a second)."""
        import cv2

        h, w = rgb.shape[:2]
        if w > self.PREVIEW_WIDTH:
            size = (self.PREVIEW_WIDTH, max(2, round(h * self.PREVIEW_WIDTH / w)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)

    def _push(self, frame, data) -> None:
        self._latest = frame
        self._latest_rgb = data if self.enabled else None
        self._latest_preview = self._next_preview
        self._fresh = True

    def _pop(self):
        if self._fresh:
            self._fresh = False
            return self._latest
        return None

    def latest_rgb(self) -> np.ndarray | None:
        """The newest frame the source produced (RGB; None while camera is off)."""
        with self._lock:
            return self._latest_rgb

    def latest_preview(self) -> np.ndarray | None:
        """The same frame at most ``PREVIEW_WIDTH`` wide (BGRA), for the self view."""
        with self._lock:
            return self._latest_preview


class AudioSourceTrack(_SourceTrack):
    """Paced audio from an :class:`AudioSource` (int16 mono frames)."""

    kind = "audio"
    BACKLOG = 10  # 200 ms

    def __init__(self, source: AudioSource) -> None:
        super().__init__(source)
        self._queue: deque[av.AudioFrame] = deque(maxlen=self.BACKLOG)
        self._samples = 0
        self.dropped = 0

    def _wrap(self, pcm: np.ndarray) -> av.AudioFrame:
        if not self.enabled:
            pcm = np.zeros_like(pcm)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.source.sample_rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, self.source.sample_rate)
        self._samples += pcm.shape[-1]
        return frame

    def _push(self, frame, data) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(frame)

    def _pop(self):
        return self._queue.popleft() if self._queue else None
