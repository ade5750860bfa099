"""The call window paints the victim's frames straight from the engine's BGRA
array (Qt's Format_RGB32 layout): red must stay red and blue stay blue, and
the RGB path (the self view) must agree."""

from __future__ import annotations

import av
import numpy as np

from evr_desktop.ui.call_screen import VideoView


def frame_bgra() -> tuple[np.ndarray, np.ndarray]:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (220, 20, 30)  # red on the left
    rgb[:, 32:] = (20, 30, 220)  # blue on the right
    decoded = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return rgb, decoded.to_ndarray(format="bgra")  # as the engine's display thread makes it


def painted(qtbot, frame: np.ndarray) -> tuple[tuple, tuple]:
    view = VideoView("waiting")
    qtbot.addWidget(view)
    view.show_frame(frame)
    view.show()
    qtbot.waitUntil(lambda: view.frames_painted > 0, timeout=5000)
    img = view.grab().toImage()
    y = view.height() // 2
    return img.pixelColor(view.width() // 4, y).getRgb()[:3], img.pixelColor(3 * view.width() // 4, y).getRgb()[:3]


def close(a, b, tol=12) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def test_bgra_frames_paint_in_their_true_colours_without_a_copy(qtbot):
    _rgb, bgra = frame_bgra()
    left, right = painted(qtbot, bgra)
    assert close(left, (220, 20, 30)) and close(right, (20, 30, 220)), (left, right)
    # the engine's RGB view of the same array agrees (latest_remote_frame)
    view = bgra[:, :, 2::-1]
    assert close(tuple(view[24, 10]), (220, 20, 30)) and close(tuple(view[24, 54]), (20, 30, 220))


def test_rgb_frames_paint_the_same(qtbot):
    rgb, _bgra = frame_bgra()
    left, right = painted(qtbot, rgb)
    assert close(left, (220, 20, 30)) and close(right, (20, 30, 220)), (left, right)
