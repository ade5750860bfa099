from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from evr_desktop.services import Workspace
from evr_desktop.ui.application import build
from tests.conftest import PASSPHRASE, fast_kdf


@pytest.fixture
def app_window(qtbot, paths):
    """The real main window on a fresh demo profile, not yet set up."""
    workspace = Workspace(paths, make_kdf=fast_kdf)
    _app, worker, main = build(workspace)
    qtbot.addWidget(main.window)
    main.show()
    main.start()
    qtbot.waitUntil(lambda: main.stack.currentWidget() is main.setup_page, timeout=5000)
    yield main
    main.lock()
    qtbot.waitUntil(lambda: worker.pending == 0, timeout=10000)
    main.shutdown()
    worker.shutdown()


def set_up(qtbot, main, passphrase: str = PASSPHRASE) -> None:
    """Type a passphrase twice on the first-run page and create the keys."""
    page = main.setup_page
    qtbot.keyClicks(page.passphrase, passphrase)
    qtbot.keyClicks(page.confirm, passphrase)
    qtbot.mouseClick(page.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.stack.currentWidget() is main.queue or page.button.isEnabled(), timeout=10000)
    assert main.stack.currentWidget() is main.queue, page.message.text()
    qtbot.waitUntil(lambda: main.queue.model.rowCount() == 12, timeout=10000)


@pytest.fixture
def unlocked(qtbot, app_window):
    set_up(qtbot, app_window)
    return app_window


@pytest.fixture(autouse=True)
def private_window_settings(tmp_path):
    """Window geometry goes to QSettings: keep every test's in a temporary
    folder, never the user's own settings."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "qsettings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture(autouse=True)
def no_unexpected_modal_question(monkeypatch):
    """A modal question (End call? Quit?) that a test did not answer would wait
    for a click for ever and hang the whole run: fail at once instead. A test
    that expects one patches ``QMessageBox.exec`` itself, after this."""
    from PySide6.QtWidgets import QMessageBox

    def unexpected(box: QMessageBox) -> int:
        raise AssertionError(f"a modal question was asked that the test did not answer: {box.text()!r}")

    monkeypatch.setattr(QMessageBox, "exec", unexpected)
