"""A real microphone through sounddevice (PortAudio), 48 kHz mono 16-bit,
20 ms per read, paced by the device."""

from __future__ import annotations

import numpy as np

from .base import SAMPLE_RATE, SAMPLES_PER_FRAME, DeviceError


class MicrophoneSource:
    synthetic = False
    sample_rate = SAMPLE_RATE
    samples_per_frame = SAMPLES_PER_FRAME

    def __init__(self, device: int | str | None = None, *, name: str | None = None):
        self.device = device
        self.name = name or (str(device) if device is not None else "Default microphone")
        self._stream = None

    def open(self) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError):
            raise DeviceError(
                "The sound system is not available on this computer (PortAudio is missing)."
            ) from None
        try:
            stream = sd.InputStream(
                device=self.device, samplerate=self.sample_rate, channels=1, dtype="int16",
                blocksize=self.samples_per_frame, latency="low",
            )
            stream.start()
        except Exception:
            raise DeviceError(
                f"The microphone ({self.name}) could not be opened: check it is plugged in "
                "and not in use by another program."
            ) from None
        self._stream = stream

    def read(self) -> np.ndarray:
        if self._stream is None:
            raise DeviceError(f"The microphone ({self.name}) is not open.")
        try:
            data, _overflowed = self._stream.read(self.samples_per_frame)
        except Exception:
            raise DeviceError(f"The microphone ({self.name}) stopped working.") from None
        return np.ascontiguousarray(data[:, 0], dtype=np.int16)

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:
                pass
            self._stream = None
