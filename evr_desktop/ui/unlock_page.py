"""The unlock screen: the only thing a locked app shows."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..vault.kdf import backoff_seconds
from .widgets import PasswordLineEdit


class UnlockPage(QWidget):
    unlock_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("unlockPage")
        self.failures = 0
        self._blocked_until = 0.0
        self.heading = QLabel("EVR Desktop is locked", self)
        self.heading.setStyleSheet("font-size: 20pt; font-weight: 600;")
        self.who = QLabel(self)
        self.who.setObjectName("unlockWho")
        self.passphrase = PasswordLineEdit(self)
        self.passphrase.setObjectName("passphrase")
        self.passphrase.setMinimumWidth(320)
        self.passphrase.returnPressed.connect(self._submit)
        self.button = QPushButton("&Unlock", self)
        self.button.setObjectName("unlockButton")
        self.button.setDefault(True)
        self.button.clicked.connect(self._submit)
        self.message = QLabel(self)
        self.message.setObjectName("unlockMessage")
        self.message.setWordWrap(True)
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._update_backoff)

        box = QWidget(self)
        form = QFormLayout(box)
        form.addRow(self.heading)
        form.addRow(self.who)
        form.addRow("Passphrase", self.passphrase)
        form.addRow("", self.button)
        form.addRow(self.message)
        # Centred with stretches rather than Qt.AlignmentFlag: the first use of
        # PySide6's ``Qt`` namespace builds all its enums (~25-40 ms here), and
        # this page is the first paint.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(box)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def set_officer(self, text: str) -> None:
        self.who.setText(text)

    def reset(self) -> None:
        self.passphrase.clear()
        self.passphrase.setEnabled(True)
        self.passphrase.setFocus()
        if time.monotonic() >= self._blocked_until:
            self.button.setEnabled(True)

    def busy(self) -> None:
        self.button.setEnabled(False)
        self.passphrase.setEnabled(False)
        self.message.setText("Unlocking…")

    def _submit(self) -> None:
        if not self.button.isEnabled() or not self.passphrase.text():
            return
        text = self.passphrase.text()
        self.passphrase.clear()
        self.busy()
        self.unlock_requested.emit(text)

    def failed(self, message: str, wrong_passphrase: bool) -> None:
        if wrong_passphrase:
            self.failures += 1
            wait = backoff_seconds(self.failures)
            self._blocked_until = time.monotonic() + wait
            self.message.setText(f"{message.rstrip('.')} (attempt {self.failures}).")
            if wait > 0:
                self.button.setEnabled(False)
                self._tick.start()
                self._update_backoff()
        else:
            self.message.setText(message)
        self.passphrase.setEnabled(True)
        self.passphrase.setFocus()
        if not self._tick.isActive():
            self.button.setEnabled(True)

    def succeeded(self) -> None:
        self.failures = 0
        self.message.clear()
        self.reset()

    def _update_backoff(self) -> None:
        remaining = self._blocked_until - time.monotonic()
        if remaining <= 0:
            self._tick.stop()
            self.button.setEnabled(True)
            self.button.setText("&Unlock")
        else:
            self.button.setText(f"Wait {int(remaining) + 1} s")
