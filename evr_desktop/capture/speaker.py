"""Plays the victim's voice on the officer's speakers or headset.

The engine hands each decoded audio frame to ``put()`` on its event loop; it
is resampled to 48 kHz mono 16-bit and appended to a small buffer that the
sound card's own callback drains. The buffer is bounded (``max_ms``): when
playback falls behind, the oldest audio is dropped so the officer never hears
the victim seconds late.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .base import DeviceError

log = logging.getLogger(__name__)
RATE = 48_000
BYTES_PER_SAMPLE = 2


class Speaker:
    def __init__(self, device: int | str | None = None, max_ms: int = 200):
        self.device = device
        self.max_bytes = RATE * BYTES_PER_SAMPLE * max_ms // 1000
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._stream: Any = None
        self._resampler: Any = None
        self.frames_played = 0
        self.dropped_bytes = 0

    def start(self) -> None:
        """Open the output device; a plain ``DeviceError`` when there is none."""
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise DeviceError("Sound output is not available on this computer (PortAudio is missing).") from exc
        try:
            self._stream = sd.RawOutputStream(
                samplerate=RATE, channels=1, dtype="int16", device=self.device,
                blocksize=RATE // 50, callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio raises several kinds
            self._stream = None
            raise DeviceError(
                "No speaker or headset was found: you will not hear the victim. "
                "Plug one in and start the call again."
            ) from exc

    @property
    def running(self) -> bool:
        return self._stream is not None

    def put(self, frame: Any) -> None:
        """One decoded ``av.AudioFrame`` from the victim (any rate or layout)."""
        if self._stream is None:
            return
        import av

        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        pcm = b"".join(
            bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE] for out in self._resampler.resample(frame)
        )
        with self._lock:
            self._buffer += pcm
            excess = len(self._buffer) - self.max_bytes
            if excess > 0:  # behind: drop the oldest, keep the latency bounded
                del self._buffer[:excess]
                self.dropped_bytes += excess
        self.frames_played += 1

    def _callback(self, outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        want = frames * BYTES_PER_SAMPLE
        with self._lock:
            chunk = bytes(self._buffer[:want])
            del self._buffer[:want]
        outdata[: len(chunk)] = chunk
        if len(chunk) < want:
            outdata[len(chunk):want] = b"\x00" * (want - len(chunk))  # silence, not old audio

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001 - closing: nothing more to do
                log.warning("speaker did not close cleanly")
