"""Creates the QApplication and the main window; the GUI's entry point."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from PySide6.QtWidgets import QApplication

from ..services import Workspace
from .main_window import MainWindow
from .operations import Worker
from .widgets import FirstPaint

log = logging.getLogger(__name__)


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
        main.watch_pages(FirstPaint(on_unlock_painted))
    main.on_queue_ready = on_queue_ready
    main.show()
    main.start(passphrase)
    try:
        return app.exec()
    finally:
        main.shutdown()
        worker.shutdown()
