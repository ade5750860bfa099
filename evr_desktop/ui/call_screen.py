"""The call window: the victim's video large, self view small, controls,
chat, verification code, connection quality and the statement panel docked
at the side.

Engine events arrive through ``CallBridge`` (``call_bridge.py``, queued onto the GUI thread);
video is pulled latest-wins from the engine at the display rate, so a slow
paint drops frames instead of queueing them.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSocketNotifier, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..call import events as ev
from .widgets import restore_splitter, save_splitter

# The victim's frames are pushed: the engine's display thread signals each
# converted frame and it is painted at once (a 16 ms poll alone made each
# frame wait 8 ms on average). The poll stays for the self view and as a
# safety net; an unchanged frame is not copied or painted again.
FRAME_INTERVAL_MS = 16
SPLITTER_KEY = "call/statement"
# Engine errors about the camera, microphone or speaker: shown in the call's warning strip.
DEVICE_CODES = ("device", "device-substituted")
# Nothing else in the app uses it (the statement's buttons have Alt mnemonics; no Save As).
STILL_SHORTCUT = "Ctrl+Shift+S"
# No new frame from the victim for this long (their camera off, the video stalled): no still,
# which would be of an old picture. The window shows 15-30 frames a second while video flows.
STILL_STALE_S = 3.0


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
    still_requested = Signal(str)  # appointment id: "Capture still" (the call controller takes it)
    _remote_frame = Signal()  # emitted on the engine's display thread; queued here
    _chat_results = Signal(int, object)  # (line number, exception or None): from the engine's thread, queued

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
        self._pending_chat: dict[int, QListWidgetItem] = {}

        self.remote = VideoView("Waiting for the victim's video…", self)
        self.remote.setObjectName("remoteVideo")
        self.local = VideoView("Your camera", self)
        self.local.setObjectName("localVideo")
        self.local.setFixedSize(160, 120)
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
        # The call's recording: a red dot and its elapsed time while it records.
        self.recording = QLabel("", self)
        self.recording.setObjectName("recordingIndicator")
        self.recording.setStyleSheet("color: #c1121f; font-weight: 700;")
        self.recording.setToolTip("This call is being recorded (encrypted as it is written).")
        # A fixed width: the text changes every second, and a label that changes
        # size makes the whole bar lay itself out again, mid-call, on the GUI thread.
        bold = QFont(self.recording.font())
        bold.setBold(True)
        self.recording.setFixedWidth(QFontMetrics(bold).horizontalAdvance("● Recording 000:00") + 12)
        self.recording.hide()
        self._recording_since: float | None = None
        self._recording_note = ""
        self.flag.setStyleSheet("background: #a4161a; color: white; padding: 6px; font-weight: 600;")
        self.flag.hide()
        self.mute_button = QPushButton("&Mute", self)
        self.mute_button.setObjectName("muteButton")
        self.camera_button = QPushButton("Camera &off", self)
        self.camera_button.setObjectName("cameraButton")
        self.reconnect_button = QPushButton("&Reconnect", self)
        self.reconnect_button.setObjectName("reconnectButton")
        self.reconnect_button.setToolTip("After a network change: restart the connection (ICE restart)")
        # "Capture still": the victim's current frame, at full size, as an exhibit (no
        # mnemonic: Alt+S is the docked statement's Sign…). Enabled only with victim video.
        self.still_button = QPushButton("Capture still", self)
        self.still_button.setObjectName("stillButton")
        self.still_button.setToolTip(f"Take the victim's current picture as an exhibit ({STILL_SHORTCUT})")
        self.still_button.setEnabled(False)
        self.still_note = QLabel("", self)
        self.still_note.setObjectName("stillNote")
        self.still_note.setWordWrap(True)
        self.still_note.hide()
        self._still_busy = False
        self._last_remote_at = 0.0
        self.end_button = QPushButton("&End call", self)
        self.end_button.setObjectName("endCallButton")
        self.end_button.setStyleSheet("background: #a4161a; color: white; font-weight: 600;")
        self.chat = QListWidget(self)
        self.chat.setObjectName("chatLog")
        self.chat.setWordWrap(True)  # a long message wraps instead of running off the side
        self.chat.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chat.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.chat.setMinimumHeight(60)
        self.chat.setMaximumHeight(95)  # the video, not the chat, takes the height the window has
        self.chat_input = QLineEdit(self)
        self.chat_input.setObjectName("chatInput")
        self.chat_input.setPlaceholderText("Type a message to the victim and press Enter")
        # No microphone, no speaker, a test tone or pattern sent instead: said
        # here, in the call, not only in the status bar that nobody watches mid-call.
        self.warnings = QLabel("", self)
        self.warnings.setObjectName("callWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("background: #fff3bf; color: #5c3c00; padding: 4px; border: 1px solid #e0b000;")
        self.warnings.hide()
        self._speaker_note = ""
        self._device_notes: list[str] = []

        # The victim's video takes all the room the controls leave: the self
        # view and chat sit under it, not beside it, so that with the
        # statement docked on a 1366x768 (or 1280x720 at 150%) screen the
        # video is still the largest thing in the window.
        top = QHBoxLayout()
        top.addWidget(self.code)
        top.addStretch(1)
        top.addWidget(self.recording)
        top.addWidget(self.state)
        top.addWidget(self.quality)
        top.addWidget(self.timer_label)
        chat_column = QVBoxLayout()
        chat_column.setContentsMargins(0, 0, 0, 0)
        chat_column.addWidget(self.chat, 1)
        chat_column.addWidget(self.chat_input)
        bottom = QHBoxLayout()
        bottom.addWidget(self.local, 0, Qt.AlignmentFlag.AlignTop)
        bottom.addLayout(chat_column, 1)
        controls = QHBoxLayout()
        for w in (self.mute_button, self.camera_button, self.reconnect_button, self.still_button):
            controls.addWidget(w)
        controls.addWidget(self.still_note, 10)  # most of the free room: a message fits on one line
        controls.addStretch(1)
        controls.addWidget(self.end_button)
        call_area = QWidget(self)
        call_area.setObjectName("callArea")
        call_area.setMinimumWidth(480)
        left = QVBoxLayout(call_area)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.flag)
        left.addWidget(self.warnings)
        left.addLayout(top)
        left.addWidget(self.remote, 1)
        left.addLayout(bottom, 0)
        left.addLayout(controls)
        self.splitter = QSplitter(self)
        self.splitter.setObjectName("callSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(call_area)
        self.splitter.splitterMoved.connect(lambda _pos, _index: save_splitter(self.splitter, SPLITTER_KEY))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        self.mute_button.clicked.connect(self.toggle_mute)
        self.camera_button.clicked.connect(self.toggle_camera)
        self.end_button.clicked.connect(self.ask_to_end)
        self.reconnect_button.clicked.connect(self.reconnect)
        self.still_button.clicked.connect(self.request_still)
        self.chat_input.returnPressed.connect(self.send_chat)
        for keys, slot in (("Ctrl+Shift+M", self.toggle_mute), ("Ctrl+Shift+V", self.toggle_camera),
                           ("Ctrl+Shift+E", self.ask_to_end), (STILL_SHORTCUT, self.request_still)):
            QShortcut(QKeySequence(keys), self, activated=slot)
        self._wakeup: Any = None  # the media process's FrameWakeup, once watched
        self._wakeup_notifier: QSocketNotifier | None = None
        self._frames = QTimer(self)
        self._frames.setInterval(FRAME_INTERVAL_MS)
        self._frames.timeout.connect(self._pull_frames)
        self._remote_frame.connect(self._pull_frames)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._chat_results.connect(self._chat_result, Qt.ConnectionType.QueuedConnection)
        self._chat_serial = 0

    def dock(self, widget: QWidget) -> None:
        """Put the statement (screen) beside the call. The video keeps the
        larger share (about 2:1) and neither side can be squeezed to nothing; where
        the officer last put the divider is remembered (QSettings: positions
        only)."""
        self.splitter.addWidget(widget)
        widget.show()
        widget.setMinimumWidth(320)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 1)
        if not restore_splitter(self.splitter, SPLITTER_KEY):
            total = max(self.splitter.width(), 800)
            self.splitter.setSizes([total * 13 // 20, total * 7 // 20])

    # -- the call --------------------------------------------------------------
    def start(self, appointment_id: str) -> None:
        self.appointment = appointment_id
        self.chat.clear()
        self._pending_chat.clear()
        self._device_notes = []
        self._recording_since = None
        self._recording_note = ""
        self.recording.hide()
        self._still_busy = False
        self._last_remote = None  # a frame of an earlier call does not make a still possible
        self._last_remote_at = 0.0
        self.still_note.hide()
        self.still_button.setEnabled(False)
        self._show_warnings()
        self.flag.hide()
        self.code.setText("Verification code: …")
        self.state.setText("Calling…")
        self._last_error = ""
        self.remote.clear()
        self._started = time.monotonic()
        self._watch_frames(f"remote:{appointment_id}")
        self._frames.start()
        self._clock.start()
        self.engine.start_call(appointment_id)

    def end_call(self) -> None:
        """End the call now, without asking (the app is locking itself, or
        the officer has already said yes)."""
        if self.appointment is None:
            return
        self.engine.end_call(self.appointment)
        self._finish(self.appointment, "You ended the call.")

    def confirm_leave(self, action: str = "End the call") -> bool:
        """Ask before ending a call on purpose (End call, Ctrl+L). True when
        there is no call, or the officer says yes."""
        if self.appointment is None:
            return True
        box = QMessageBox(
            QMessageBox.Icon.Question, "End the call?",
            f"{action}? The call with the victim will end.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self,
        )
        box.setObjectName("confirmEndCall")
        box.setDefaultButton(QMessageBox.StandardButton.No)  # Enter alone never ends a call
        return box.exec() == QMessageBox.StandardButton.Yes

    def ask_to_end(self) -> None:
        if self.confirm_leave("End the call"):
            self.end_call()

    def _watch_frames(self, key: str) -> None:
        """Paint each new frame of the victim as soon as it is there. The media
        process rings a pipe (``frame_wakeup``) that this thread watches; the
        engine in this process calls ``frame_listener`` on its display thread,
        which queues a signal here. The 16 ms timer is the fallback either way."""
        wakeup = getattr(self.engine, "frame_wakeup", None)
        if wakeup is None:
            self.engine.frame_listener = lambda k: k == key and self._remote_frame.emit()
        elif self._wakeup is not wakeup:  # one pipe for the app's life: watched once
            self._wakeup = wakeup
            self._wakeup_notifier = QSocketNotifier(wakeup.read_fd, QSocketNotifier.Type.Read, self)
            self._wakeup_notifier.activated.connect(self._woken)

    def _woken(self, *_args: Any) -> None:
        if self._wakeup is not None:
            self._wakeup.drain()
        self._pull_frames()

    def _finish(self, appointment: str, text: str) -> None:
        if getattr(self.engine, "frame_wakeup", None) is None:
            self.engine.frame_listener = None
        self._recording_since = None
        self.recording.hide()
        self.still_button.setEnabled(False)
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
        item = self._add_chat_line("You", text)
        self._chat_serial += 1
        serial = self._chat_serial
        self._pending_chat[serial] = item
        self.chat_input.clear()
        try:
            future = self.engine.send_chat(self.appointment, text)
        except Exception as exc:  # noqa: BLE001  refused before it left: the same as a failed send
            self._chat_result(serial, exc)
            return
        # The engine's future completes on its own thread: the result comes
        # back here through a queued signal, never by touching the list there.
        future.add_done_callback(lambda f: self._relay_chat_result(serial, f))

    def _relay_chat_result(self, serial: int, future: Any) -> None:
        """On the engine's thread: hand the outcome to the GUI thread (queued)."""
        try:
            self._chat_results.emit(serial, _failure(future))
        except RuntimeError:  # the window was closed meanwhile: nobody left to tell
            pass

    def _chat_result(self, serial: int, error: BaseException | None) -> None:
        item = self._pending_chat.pop(serial, None)
        if item is None or error is None:
            return
        item.setText(item.text() + "  (not sent)")
        item.setForeground(QColor("#a4161a"))
        item.setToolTip(f"This message was not sent ({_plain(error)}). Type it again, or say it.")

    def _add_chat_line(self, who: str, text: str) -> QListWidgetItem:
        item = QListWidgetItem(f"{datetime.now():%H:%M}  {who}: {text}")
        self.chat.addItem(item)
        self.chat.scrollToBottom()
        return item

    # -- warnings shown in the call -------------------------------------------------
    def set_speaker_note(self, note: str) -> None:
        """No speaker on this laptop (the victim cannot be heard): shown in the call."""
        self._speaker_note = note
        self._show_warnings()

    def _show_warnings(self) -> None:
        notes = [n for n in (self._recording_note, self._speaker_note, *self._device_notes) if n]
        self.warnings.setText("⚠ " + "  ".join(notes) if notes else "")
        self.warnings.setVisible(bool(notes))
        # A recording that stopped is loud: white on red, not the usual amber.
        self.warnings.setStyleSheet(
            "background: #a4161a; color: white; font-weight: 700; padding: 6px; border: 2px solid #660708;"
            if self._recording_note else
            "background: #fff3bf; color: #5c3c00; padding: 4px; border: 1px solid #e0b000;")

    def recording_failed(self, reason: str) -> None:
        """Recording could not start or stopped: the loud warning (domain.recording's sentence)."""
        from ..domain.recording import when_recording_cannot_run

        self._recording_since = None
        self.recording.hide()
        self._recording_note = when_recording_cannot_run(reason).warning
        self._show_warnings()

    def _show_recording(self) -> None:
        if self._recording_since is None:
            return
        s = int(time.monotonic() - self._recording_since)
        self.recording.setText(f"● Recording {s // 60:02d}:{s % 60:02d}")
        if self.recording.isHidden():
            self.recording.show()

    # -- stills -----------------------------------------------------------------------
    def request_still(self) -> None:
        """The button or its shortcut: ask for a still of the victim's current frame
        (only with victim video, one at a time; the controller takes it)."""
        if self.appointment is None or not self.still_button.isEnabled() or self._still_busy:
            return
        self.still_busy(True)
        self.still_requested.emit(self.appointment)

    def still_busy(self, busy: bool) -> None:
        self._still_busy = busy
        self.still_button.setEnabled(not busy and self.appointment is not None and self._video_flowing())
        if busy:
            self._still_message("Taking a still…", ok=True)

    def _video_flowing(self) -> bool:
        return self._last_remote is not None and time.monotonic() - self._last_remote_at <= STILL_STALE_S

    def still_taken(self, exhibit: str, at_text: str | None, recording_state: str = "recording") -> None:
        """Feedback in the window: ``Still RJ/1 captured at 02:13`` (and whether the recording had stopped)."""
        self.still_busy(False)
        when = f" at {at_text}" if at_text else " (before the recording's first frame)"
        note = " (the recording had stopped; the still is kept)" if recording_state == "failed" else ""
        self._still_message(f"Still {exhibit} captured{when}{note}", ok=True)

    def still_failed(self, message: str) -> None:
        """A still that was not taken: said clearly, in red; the call and its recording go on."""
        self.still_busy(False)
        self._still_message(message, ok=False)

    def _still_message(self, text: str, ok: bool) -> None:
        self.still_note.setText(text)
        self.still_note.setStyleSheet("color: #1b5e20; font-weight: 600;" if ok else
                                      "color: white; background: #a4161a; font-weight: 700; padding: 2px 6px;")
        self.still_note.show()

    def _pull_frames(self) -> None:
        if self.appointment is None:
            return
        remote = self.engine.latest_remote_bgra(self.appointment)
        if remote is not None and remote is not self._last_remote:
            self._last_remote = remote
            self.remote.show_frame(remote)
            self._last_remote_at = time.monotonic()
            if not self.still_button.isEnabled() and not self._still_busy:
                self.still_button.setEnabled(True)  # the victim's video is here: a still can be taken
        local = self.engine.latest_local_preview()
        if local is not None and local is not self._last_local:
            self._last_local = local
            self.local.show_frame(local)

    def _tick(self) -> None:
        if self._last_remote is not None and not self._video_flowing():
            self.still_button.setEnabled(False)  # the victim's video stopped: no still of an old picture
        s = int(time.monotonic() - self._started)
        self.timer_label.setText(f"{s // 60:02d}:{s % 60:02d}")
        self._show_recording()

    # -- engine events (GUI thread, via the bridge) ---------------------------
    def on_event(self, e: ev.Event) -> None:
        if (isinstance(e, ev.Error) and e.code in DEVICE_CODES and e.appointment is None
                and self.appointment is not None):
            # The devices belong to no one call: a note about them is about this one.
            if e.message not in self._device_notes:
                self._device_notes.append(e.message)
                self._show_warnings()
            return
        if getattr(e, "appointment", None) != self.appointment or self.appointment is None:
            return
        if isinstance(e, ev.RecordingStatus):
            if e.state == "recording":
                self._recording_since = time.monotonic()
                self._show_recording()
            else:
                self.recording_failed(e.message)
        elif isinstance(e, ev.CallStateChanged):
            self.state.setText({
                "connected": "Connected",
                "waiting": "Waiting for the victim's phone to get ready…",
                "restarting": "Reconnecting…",
            }.get(e.state, e.state.capitalize()))
        elif isinstance(e, ev.VerificationCode):
            self.code.setText(f"Verification code: {e.code[:3]} {e.code[3:]}")
        elif isinstance(e, ev.ChatReceived):
            self._add_chat_line("Victim", e.text)
        elif isinstance(e, ev.VictimFlag):
            self.flag.setText("The victim indicated they cannot talk freely. Keep questions closed (yes/no).")
            self.flag.show()
        elif isinstance(e, ev.QuickExit):
            self.flag.setText("The victim pressed Quick exit: they may not be safe. Their link is locked "
                              "until you send a new one; do not call them back without checking it is safe.")
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
            if e.code in DEVICE_CODES:
                if e.message not in self._device_notes:
                    self._device_notes.append(e.message)
                    self._show_warnings()
                return
            self.state.setText(e.message)
            self._last_error = e.message


def _failure(future: Any) -> BaseException | None:
    """The exception a finished engine future holds, or None (runs on the engine's thread)."""
    if future.cancelled():
        return ConnectionError("the message was cancelled")
    return future.exception()


def _plain(error: BaseException) -> str:
    text = str(error).strip()
    return text if text else type(error).__name__
