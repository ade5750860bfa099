"""Small shared widgets."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLineEdit, QWidget


class FirstPaint(QObject):
    """An event filter that calls back once, the first time a watched widget
    is painted (the benchmarks' hooks, and work deferred until the officer
    can already see the screen)."""

    def __init__(self, callback: Callable[[], None], parent: QObject | None = None):
        super().__init__(parent)
        self._callback: Callable[[], None] | None = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint and self._callback is not None:
            cb, self._callback = self._callback, None
            cb()
        return False


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
