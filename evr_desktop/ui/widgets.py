"""Small shared widgets."""

from __future__ import annotations

from PySide6.QtWidgets import QLineEdit, QWidget


class PasswordLineEdit(QLineEdit):
    """A passphrase field that overwrites its buffer before clearing it
    (Electrum's ``PasswordLineEdit.clear``): Python cannot wipe strings, but
    Qt's own copy can at least be overwritten."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setEchoMode(QLineEdit.EchoMode.Password)

    def clear(self) -> None:
        self.setText("*" * len(self.text()))
        super().clear()
