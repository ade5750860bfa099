"""A real camera through OpenCV, read on the source's own thread."""

from __future__ import annotations

import numpy as np

from .base import DeviceError


class CameraSource:
    synthetic = False

    def __init__(self, index: int = 0, width: int = 640, height: int = 480, fps: float = 30.0,
                 *, name: str | None = None):
        self.index = index
        self.width, self.height, self.fps = width, height, float(fps)
        self.name = name or f"Camera {index}"
        self._cap = None

    def open(self) -> None:
        import cv2

        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(
                f"The camera ({self.name}) could not be opened: check it is plugged in "
                "and not in use by another program."
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a backlog
        self._cap = cap

    def read(self) -> np.ndarray:
        import cv2

        if self._cap is None:
            raise DeviceError(f"The camera ({self.name}) is not open.")
        ok, bgr = self._cap.read()  # blocks until the camera's next frame: paced by the device
        if not ok or bgr is None:
            raise DeviceError(f"The camera ({self.name}) stopped sending pictures.")
        if bgr.shape[1] % 2 or bgr.shape[0] % 2:  # encoders want even sizes
            bgr = bgr[: bgr.shape[0] // 2 * 2, : bgr.shape[1] // 2 * 2]
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
