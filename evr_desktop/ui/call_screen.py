"""The call window: the victim's video large, self view small, controls,
chat, verification code, connection quality and the statement panel docked
at the side.

Engine events arrive through ``CallBridge`` (``call_bridge.py``, queued onto the GUI thread);
video is pulled latest-wins from the engine at the display rate, so a slow
paint drops frames instead of queueing them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..call import events as ev

# The victim's frames are pushed: the engine's display thread signals each
# converted frame and it is painted at once (a 16 ms poll alone made each
# frame wait 8 ms on average). The poll stays for the self view and as a
# safety net; an unchanged frame is not copied or painted again.
FRAME_INTERVAL_MS = 16


class VideoView(QWidget):
    """Paints the newest frame, scaled to fit with its aspect ratio."""

    painted = Signal()

    def __init__(self, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None  # the array a BGRA image points into
        self._placeholder = placeholder
        self.frames_painted = 0
        self.setMinimumSize(160, 120)

    def show_frame(self, frame: np.ndarray | None) -> None:
        """``frame``: RGB (h, w, 3), copied; or BGRA (h, w, 4) as the engine
        keeps the victim's frames, painted straight from the array (kept
        alive here; the engine never changes a published frame)."""
        if frame is None:
            return
        h, w, channels = frame.shape
        if channels == 4 and frame.flags.c_contiguous:
            self._buffer = frame
            self._image = QImage(frame.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        else:
            frame = np.ascontiguousarray(frame[:, :, :3])
            self._buffer = None
            self._image = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def clear(self) -> None:
        self._image = None
        self.update()

    def paintEvent(self, _e: Any) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#111"))
        if self._image is None:
            p.setPen(QColor("#ccc"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
        else:
            img = self._image
            scale = min(self.width() / img.width(), self.height() / img.height())
            w, h = img.width() * scale, img.height() * scale
            p.drawImage(QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h), img)
            self.frames_painted += 1
            self.painted.emit()
        p.end()


class CallScreen(QWidget):
    ended = Signal(str)  # appointment id
    _remote_frame = Signal()  # emitted on the engine's display thread; queued here

    def __init__(self, engine: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("callScreen")
        self.engine = engine
        self.appointment: str | None = None
        self._started = 0.0
        self._last_remote: np.ndarray | None = None
        self._last_local: np.ndarray | None = None
        self._muted = False
        self._camera_on = True
        self._last_error = ""

        self.remote = VideoView("Waiting for the victim's video…", self)
        self.remote.setObjectName("remoteVideo")
        self.local = VideoView("Your camera", self)
        self.local.setObjectName("localVideo")
        self.local.setFixedSize(192, 144)
        self.state = QLabel("Not connected", self)
        self.state.setObjectName("callState")
        self.timer_label = QLabel("00:00", self)
        self.timer_label.setObjectName("callTimer")
        self.quality = QLabel("", self)
        self.quality.setObjectName("callQuality")
        self.code = QLabel("Verification code: …", self)
        self.code.setObjectName("verificationCode")
        self.code.setStyleSheet("font-size: 14pt; font-weight: 600;")
        self.code.setToolTip(
            "Read this code to the victim: the same code on their screen means no one sits in the middle."
        )
        self.flag = QLabel("", self)
        self.flag.setObjectName("victimFlag")
        self.flag.setStyleSheet("background: #a4161a; color: white; padding: 6px; font-weight: 600;")
        self.flag.hide()
        self.mute_button = QPushButton("&Mute", self)
        self.mute_button.setObjectName("muteButton")
        self.camera_button = QPushButton("Camera &off", self)
        self.camera_button.setObjectName("cameraButton")
        self.reconnect_button = QPushButton("&Reconnect", self)
        self.reconnect_button.setObjectName("reconnectButton")
        self.reconnect_button.setToolTip("After a network change: restart the connection (ICE restart)")
        self.end_button = QPushButton("&End call", self)
        self.end_button.setObjectName("endCallButton")
        self.end_button.setStyleSheet("background: #a4161a; color: white; font-weight: 600;")
        self.chat = QListWidget(self)
        self.chat.setObjectName("chatLog")
        self.chat_input = QLineEdit(self)
        self.chat_input.setObjectName("chatInput")
        self.chat_input.setPlaceholderText("Type a message to the victim and press Enter")

        controls = QHBoxLayout()
        for w in (self.mute_button, self.camera_button, self.reconnect_button, self.end_button):
            controls.addWidget(w)
        controls.addStretch(1)
        controls.addWidget(self.state)
        controls.addWidget(self.quality)
        controls.addWidget(self.timer_label)
        side = QVBoxLayout()
        side.addWidget(self.local)
        side.addWidget(self.code)
        side.addWidget(QLabel("Chat", self))
        side.addWidget(self.chat, 1)
        side.addWidget(self.chat_input)
        video_row = QHBoxLayout()
        video_row.addWidget(self.remote, 1)
        video_row.addLayout(side)
        call_area = QWidget(self)
        left = QVBoxLayout(call_area)
        left.addWidget(self.flag)
        left.addLayout(video_row, 1)
        left.addLayout(controls)
        self.splitter = QSplitter(self)
        self.splitter.addWidget(call_area)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        self.mute_button.clicked.connect(self.toggle_mute)
        self.camera_button.clicked.connect(self.toggle_camera)
        self.end_button.clicked.connect(self.end_call)
        self.reconnect_button.clicked.connect(self.reconnect)
        self.chat_input.returnPressed.connect(self.send_chat)
        for keys, slot in (("Ctrl+Shift+M", self.toggle_mute), ("Ctrl+Shift+V", self.toggle_camera),
                           ("Ctrl+Shift+E", self.end_call)):
            QShortcut(QKeySequence(keys), self, activated=slot)
        self._frames = QTimer(self)
        self._frames.setInterval(FRAME_INTERVAL_MS)
        self._frames.timeout.connect(self._pull_frames)
        self._remote_frame.connect(self._pull_frames)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)

    def dock(self, widget: QWidget) -> None:
        """Put the statement (screen) beside the call."""
        self.splitter.addWidget(widget)
        widget.show()
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        total = max(self.splitter.width(), 1000)
        self.splitter.setSizes([total * 3 // 5, total * 2 // 5])

    # -- the call --------------------------------------------------------------
    def start(self, appointment_id: str) -> None:
        self.appointment = appointment_id
        self.chat.clear()
        self.flag.hide()
        self.code.setText("Verification code: …")
        self.state.setText("Calling…")
        self._last_error = ""
        self.remote.clear()
        self._started = time.monotonic()
        key = f"remote:{appointment_id}"
        self.engine.frame_listener = lambda k: k == key and self._remote_frame.emit()
        self._frames.start()
        self._clock.start()
        self.engine.start_call(appointment_id)

    def end_call(self) -> None:
        if self.appointment is None:
            return
        self.engine.end_call(self.appointment)
        self._finish(self.appointment, "You ended the call.")

    def _finish(self, appointment: str, text: str) -> None:
        self.engine.frame_listener = None
        self._frames.stop()
        self._clock.stop()
        self.state.setText(text)
        self.appointment = None
        self.ended.emit(appointment)

    def reconnect(self) -> None:
        if self.appointment is not None:
            self.state.setText("Reconnecting…")
            self.engine.restart_ice(self.appointment)

    def toggle_mute(self) -> None:
        self._muted = not self._muted
        self.engine.set_microphone_muted(self._muted)
        self.mute_button.setText("Un&mute" if self._muted else "&Mute")

    def toggle_camera(self) -> None:
        self._camera_on = not self._camera_on
        self.engine.set_camera_enabled(self._camera_on)
        self.camera_button.setText("Camera &off" if self._camera_on else "Camera &on")

    def send_chat(self) -> None:
        text = self.chat_input.text().strip()
        if not text or self.appointment is None:
            return
        self.engine.send_chat(self.appointment, text)
        self.chat.addItem(f"You: {text}")
        self.chat_input.clear()

    def _pull_frames(self) -> None:
        if self.appointment is None:
            return
        remote = self.engine.latest_remote_bgra(self.appointment)
        if remote is not None and remote is not self._last_remote:
            self._last_remote = remote
            self.remote.show_frame(remote)
        local = self.engine.latest_local_preview()
        if local is not None and local is not self._last_local:
            self._last_local = local
            self.local.show_frame(local)

    def _tick(self) -> None:
        s = int(time.monotonic() - self._started)
        self.timer_label.setText(f"{s // 60:02d}:{s % 60:02d}")

    # -- engine events (GUI thread, via the bridge) ---------------------------
    def on_event(self, e: ev.Event) -> None:
        if getattr(e, "appointment", None) != self.appointment or self.appointment is None:
            return
        if isinstance(e, ev.CallStateChanged):
            self.state.setText({
                "connected": "Connected",
                "waiting": "Waiting for the victim's phone to get ready…",
                "restarting": "Reconnecting…",
            }.get(e.state, e.state.capitalize()))
        elif isinstance(e, ev.VerificationCode):
            self.code.setText(f"Verification code: {e.code[:3]} {e.code[3:]}")
        elif isinstance(e, ev.ChatReceived):
            self.chat.addItem(f"Victim: {e.text}")
        elif isinstance(e, ev.VictimFlag):
            self.flag.setText("The victim indicated they cannot talk freely. Keep questions closed (yes/no).")
            self.flag.show()
        elif isinstance(e, ev.Stats):
            rtt = f"{e.rtt_ms:.0f} ms" if e.rtt_ms is not None else "–"
            res = f"{e.remote_resolution[0]}x{e.remote_resolution[1]}" if e.remote_resolution else "–"
            loss = e.loss_in or 0.0
            grade = "Good" if loss < 0.02 and (e.rtt_ms or 0) < 300 else ("Fair" if loss < 0.08 else "Poor")
            self.quality.setText(f"{grade} · {rtt} · {e.bitrate_in_kbps:.0f} kbit/s · {res}")
        elif isinstance(e, ev.CallEnded):
            # A call the engine stopped (the answer did not open the victim's
            # commitment, no commitment came) keeps its reason on screen.
            who = {"victim": "The victim ended the call.", "network": "The connection was lost."}.get(
                e.by, self._last_error or "Call ended.")
            self._finish(e.appointment, who)
        elif isinstance(e, ev.Error):
            self.state.setText(e.message)
            self._last_error = e.message
