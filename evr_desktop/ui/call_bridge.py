"""The one bridge from the call engine's threads to the GUI thread.

Kept apart from ``call_screen`` (which needs numpy for its video views) so the
call controller can make it without loading the call window."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal


class CallBridge(QObject):
    """Engine listeners call the bridge (any thread); ``event`` is emitted on
    the GUI thread."""

    event = Signal(object)
    _incoming = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._incoming.connect(self.event, Qt.ConnectionType.QueuedConnection)

    def __call__(self, event: Any) -> None:
        self._incoming.emit(event)
