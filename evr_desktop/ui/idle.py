"""Locks the app after a period with no keyboard, mouse or touch input."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal

_ACTIVITY = {
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
    QEvent.Type.TabletPress,
}


class InactivityWatcher(QObject):
    idle = Signal()

    def __init__(self, minutes: float, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.idle)
        self.set_timeout_ms(int(minutes * 60_000))

    def set_timeout_ms(self, ms: int) -> None:
        self._timer.setInterval(ms)

    def start(self) -> None:
        """Watch for input while unlocked. The application-wide event filter is
        installed only now: a Python filter on every Qt event makes PySide6
        wrap each receiver, a one-off ~60 ms stall that would otherwise delay
        the first paint of the unlock screen (measured by bench/startup.py)."""
        app = QCoreApplication.instance()
        if app is not None and not self._timer.isActive():
            app.installEventFilter(self)
        self._timer.start()

    def stop(self) -> None:
        app = QCoreApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self._timer.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() in _ACTIVITY and self._timer.isActive():
            self._timer.start()
        return False
