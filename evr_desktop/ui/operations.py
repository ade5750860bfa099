"""One way to run work off the GUI thread.

Modelled on Anki's ``CollectionOp``: ``Operation(parent, fn).success(cb)
.failure(cb).run()``. ``fn`` runs on the app's single worker thread (so store
writes, signing and the audit log never race, as with Picard's save pool), and
the callbacks run back on the GUI thread through one queued signal. A callback
whose parent widget has been deleted meanwhile is dropped, not called.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal, Slot

log = logging.getLogger(__name__)


class _GuiRelay(QObject):
    """Lives on the GUI thread; ``call`` is emitted from other threads only.

    The default (auto) connection queues a cross-thread emit onto the GUI
    thread's event loop. ``Qt.ConnectionType.QueuedConnection`` would say the
    same thing explicitly, but the first use of PySide6's ``Qt`` namespace
    builds all its enums (~25-40 ms here) before the first paint; ``Worker.on_gui``
    keeps GUI-thread calls asynchronous itself.
    """

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run)

    @Slot(object)
    def _run(self, fn: Callable[[], None]) -> None:
        fn()


class Worker:
    """The single background worker. Create it on the GUI thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evr-worker")
        self._relay = _GuiRelay()
        self._gui_thread = threading.get_ident()
        self.pending = 0

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        return self._pool.submit(fn)

    def on_gui(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the GUI thread, always later, never inside the caller.

        From the GUI thread itself (a future that was already done when its
        callback was added) a zero timer defers it; from any other thread the
        relay's signal is queued."""
        if threading.get_ident() == self._gui_thread:
            QTimer.singleShot(0, fn)
        else:
            self._relay.call.emit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class Operation:
    def __init__(self, worker: Worker, parent: QObject | None, fn: Callable[[], Any]):
        self._worker = worker
        self._parent = parent
        self._fn = fn
        self._success: Callable[[Any], None] | None = None
        self._failure: Callable[[BaseException], None] | None = None

    def success(self, cb: Callable[[Any], None]) -> Operation:
        self._success = cb
        return self

    def failure(self, cb: Callable[[BaseException], None]) -> Operation:
        self._failure = cb
        return self

    def run(self) -> Future[Any]:
        self._worker.pending += 1
        future = self._worker.submit(self._fn)
        future.add_done_callback(lambda f: self._worker.on_gui(lambda: self._deliver(f)))
        return future

    def _deliver(self, future: Future[Any]) -> None:
        self._worker.pending -= 1
        if self._parent is not None and not shiboken6.isValid(self._parent):
            return
        exc = future.exception()
        if exc is None:
            if self._success:
                self._success(future.result())
        elif self._failure:
            self._failure(exc)
        else:
            log.error("background operation failed: %s", type(exc).__name__)
