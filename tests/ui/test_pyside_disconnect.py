"""Regression guard: PySide6 6.12.0 on Python 3.11 aborts the process
(``Fatal Python error: bool_dealloc``) after a few hundred
``Signal.disconnect()`` calls. pyproject.toml keeps that combination out; this
test would kill the test run (exit 134) if it ever came back."""

import sys

import PySide6
from PySide6.QtCore import QObject, Signal


class Emitter(QObject):
    fired = Signal()


def test_installed_combination_is_not_the_broken_one():
    major_minor = tuple(int(x) for x in PySide6.__version__.split(".")[:2])
    assert not (sys.version_info[:2] == (3, 11) and major_minor >= (6, 12)), (
        f"PySide6 {PySide6.__version__} on Python 3.11 has the disconnect refcount bug"
    )


def test_many_thousand_disconnects_do_not_crash(qtbot):
    e = Emitter()
    calls = []

    def slot() -> None:
        calls.append(1)

    for _ in range(5000):
        e.fired.connect(slot)
        assert e.fired.disconnect(slot) in (True, None)
    e.fired.connect(slot)
    e.fired.emit()
    assert calls == [1]
    for _ in range(300):  # the path pytest-qt's waitSignal takes
        with qtbot.waitSignal(e.fired, timeout=1000):
            e.fired.emit()
