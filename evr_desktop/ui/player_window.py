"""The player window: a recording played back, both sides seen and heard.

It decodes nothing. The media process plays the recording from the file keys
the session unwrapped (``Session.open_recording``, audited as a view) and puts
both pictures, side by side, into the shared display slot under
``player:<recording id>``; this window polls the slot (as the call window
does), sends play, pause and seek, and shows the position and the chat,
each line highlighted once its time has passed. An unfinalised recording
says so, with its reason; a recording that cannot be played says why, in
the window, and nothing else happens.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .recordings_dialog import duration_text

log = logging.getLogger(__name__)

POLL_MS = 33  # the picture is looked for ~30 times a second, as the call window's
AT_ROLE = Qt.ItemDataRole.UserRole + 1


class _Relay(QObject):
    """Carries the media process's answers from the channel's reader thread to the GUI thread."""

    opened = Signal(object)  # dict, or an exception
    status = Signal(dict)
    failed = Signal(object)


class PlayerWindow(QWidget):
    """``engine``: the app's ``media.proxy.MediaEngine``; ``plan``: a ``services.PlaybackPlan``."""

    def __init__(self, engine: Any, plan: Any, title: str, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("playerWindow")
        self.setWindowTitle(f"Recording: {title}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(1200, 640)
        self.engine = engine
        self.plan = plan
        self.recording = plan.recording_id
        self.duration = 0.0
        self.position = 0.0
        self.playing = False
        self.opened = False
        self.frames_painted = 0
        self.last_status: dict[str, Any] | None = None  # the media process's newest word (tests read it)
        self._dragging = False
        self._relay = _Relay(self)
        self._relay.opened.connect(self._on_opened)
        self._relay.status.connect(self._on_status)
        self._relay.failed.connect(lambda exc: self.show_error(_plain(exc)))

        self.state_label = QLabel(self)
        self.state_label.setObjectName("playerState")
        self.state_label.setWordWrap(True)
        self._note = ""  # what the media process says besides the state (no speaker, ...)
        if plan.finalised:
            self._state = "Finalised recording."
        else:
            self._state = (f"UNFINALISED recording: {plan.reason or 'not finalised'}. "
                           "It plays up to where it was cut.")
            self.state_label.setStyleSheet("color: #8a5a00; font-weight: 600;")
        self.state_label.setText(self._state)
        self.picture = QLabel("Opening the recording…", self)
        self.picture.setObjectName("playerPicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(480, 200)
        self.picture.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.picture.setStyleSheet("background: #111; color: #ddd;")
        captions = QHBoxLayout()
        for text in ("Victim (as received)", "Officer (as sent)"):
            caption = QLabel(text, self)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            captions.addWidget(caption, 1)
        self.play_button = QPushButton("&Play", self)
        self.play_button.setObjectName("playPause")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("playerSeek")
        self.slider.setEnabled(False)
        self.slider.setRange(0, 0)
        self.slider.sliderPressed.connect(lambda: setattr(self, "_dragging", True))
        self.slider.sliderReleased.connect(self._released)
        self.time_label = QLabel("0:00 / 0:00", self)
        self.time_label.setObjectName("playerTime")
        self.error_label = QLabel(self)
        self.error_label.setObjectName("playerError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020; font-weight: 600;")
        self.error_label.hide()
        self.chat = QListWidget(self)
        self.chat.setObjectName("playerChat")
        self.chat.setWordWrap(True)
        self.chat.itemActivated.connect(lambda item: self.seek(float(item.data(AT_ROLE))))

        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        left = QWidget(self)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.picture, 1)
        lv.addLayout(captions)
        lv.addLayout(controls)
        right = QWidget(self)
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("Chat and signals (double-click a line to go there)", right))
        rv.addWidget(self.chat, 1)
        splitter = QSplitter(self)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state_label)
        layout.addWidget(self.error_label)
        layout.addWidget(splitter, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._paint)

    # -- opening -------------------------------------------------------------------------

    def start(self) -> None:
        """Ask the media process to open the recording (from its file keys only)."""
        self.engine.player_listener = self._relay.status.emit
        segments = [s.message() for s in self.plan.segments]
        try:
            future = self.engine.player_open(self.recording, str(self.plan.folder), segments)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.show_error(_plain(exc))
            return
        future.add_done_callback(lambda f: self._relay.opened.emit(f.exception() or f.result()))

    def _on_opened(self, result: Any) -> None:
        if isinstance(result, BaseException):
            self.show_error(f"This recording cannot be played: {_plain(result)}")
            self.picture.setText("Cannot be played")
            return
        self.opened = True
        self.duration = float(result.get("duration") or 0.0)
        self.slider.setRange(0, int(self.duration * 1000))
        self.slider.setEnabled(True)
        self.play_button.setEnabled(True)
        for line in result.get("chat") or []:
            item = QListWidgetItem(f"{clock_text(line['at'])}  {line['text']}")
            item.setData(AT_ROLE, float(line["at"]))
            self.chat.addItem(item)
        if not self.chat.count():
            empty = QListWidgetItem("No chat or signals in this recording.")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.chat.addItem(empty)
        self._set_note(str(result.get("note") or ""))
        self._show_position(0.0)
        self._timer.start()
        self.play()

    # -- commands -----------------------------------------------------------------------

    def _send(self, future: Any) -> None:
        future.add_done_callback(lambda f: f.exception() is not None and self._relay.failed.emit(f.exception()))

    def play(self) -> None:
        if self.opened:
            self._send(self.engine.player_play())

    def pause(self) -> None:
        if self.opened:
            self._send(self.engine.player_pause())

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def seek(self, seconds: float) -> None:
        if self.opened:
            self._send(self.engine.player_seek(max(0.0, min(seconds, self.duration))))
            self._show_position(seconds)

    def _released(self) -> None:
        self._dragging = False
        self.seek(self.slider.value() / 1000)

    # -- what the media process says -------------------------------------------------------

    def _on_status(self, m: dict[str, Any]) -> None:
        if m.get("recording") != self.recording:
            return
        self.last_status = m
        state = m.get("state")
        self.playing = state == "playing"
        self.play_button.setText("&Pause" if self.playing else "&Play")
        if state == "error":
            self.show_error(f"Playback stopped: {m.get('message')}")
        elif m.get("message"):
            self._set_note(str(m["message"]))
        self._show_position(float(m.get("position") or 0.0))

    def _show_position(self, seconds: float) -> None:
        self.position = seconds
        if not self._dragging:
            self.slider.blockSignals(True)
            self.slider.setValue(int(seconds * 1000))
            self.slider.blockSignals(False)
        self.time_label.setText(f"{clock_text(seconds)} / {clock_text(self.duration)}")
        current = None
        for i in range(self.chat.count()):
            item = self.chat.item(i)
            if item.data(AT_ROLE) is None:
                continue
            passed = float(item.data(AT_ROLE)) <= seconds + 0.05
            font = QFont(item.font())
            font.setBold(passed)
            item.setFont(font)
            item.setForeground(QBrush(QColor("#000000" if passed else "#888888")))
            if passed:
                current = item
        if current is not None:
            self.chat.setCurrentItem(current)
            self.chat.scrollToItem(current)

    def _paint(self) -> None:
        frame = self.engine.latest_player_bgra(self.recording)
        if frame is None:
            return
        h, w = frame.shape[:2]
        image = QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_ARGB32).copy()
        pixmap = QPixmap.fromImage(image).scaled(self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation)
        self.picture.setPixmap(pixmap)
        self.frames_painted += 1

    def _set_note(self, note: str) -> None:
        self._note = note
        self.state_label.setText(f"{self._state} {note}".strip())

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.playing = False
        self.play_button.setText("&Play")

    def reject(self) -> None:
        """Closed with the app's dialogs when it locks: a locked app shows nothing."""
        self.close()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self._timer.stop()
        if getattr(self.engine, "player_listener", None) == self._relay.status.emit:
            self.engine.player_listener = None
        if self.opened:
            try:
                self.engine.player_close()
            except Exception:  # noqa: BLE001 - closing: the media process may be gone
                log.warning("the player did not close cleanly")
        super().closeEvent(event)


def clock_text(seconds: float) -> str:
    """A player's clock: whole seconds passed (5.5 s is 0:05, as a media player shows it)."""
    return duration_text(float(int(max(0.0, seconds))))


def _plain(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__
