"""Creates the QApplication and the main window; the GUI's entry point."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

from ..services import Workspace
from .main_window import MainWindow
from .operations import Worker

log = logging.getLogger(__name__)


class _FirstPaint(QObject):
    """Calls back once, the first time the watched widget is painted."""

    def __init__(self, callback: Callable[[], None]):
        super().__init__()
        self._callback: Callable[[], None] | None = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint and self._callback is not None:
            cb, self._callback = self._callback, None
            cb()
        return False


def build(
    workspace: Workspace, app: QApplication | None = None
) -> tuple[QApplication, Worker, MainWindow]:
    app = app or QApplication.instance() or QApplication(sys.argv)  # type: ignore[assignment]
    app.setApplicationName("EVR Desktop")
    app.setOrganizationName("EVR")
    app.setDesktopFileName("evr-desktop")
    worker = Worker()
    main = MainWindow(workspace, worker)
    return app, worker, main  # type: ignore[return-value]


def run(
    workspace: Workspace,
    passphrase: str | None = None,
    on_unlock_painted: Callable[[], None] | None = None,
    on_queue_ready: Callable[[int], None] | None = None,
) -> int:
    """Run the GUI until the window closes. The hooks serve benchmarks and
    scripted demos: they observe, they change nothing."""
    app, worker, main = build(workspace)
    if on_unlock_painted is not None:
        main.watch_pages(_FirstPaint(on_unlock_painted))
    main.on_queue_ready = on_queue_ready
    main.show()
    main.start(passphrase)
    try:
        return app.exec()
    finally:
        main.shutdown()
        worker.shutdown()
