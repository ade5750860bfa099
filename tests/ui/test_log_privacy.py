"""A full call's logs hold no address of the victim (issue 11, item 6): the
real app, its media process and rendezvous, the victim's page in Chromium,
every logger at DEBUG (aiortc's, aioice's and aiohttp's included). The app's
records and the media process's standard error are collected and grepped."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from evr_desktop.domain.appointment import OffenceType, Status
from evr_desktop.logs import configure
from tests.conftest import logging_kept
from tests.e2e.browser import chromium, phone, playwright
from tests.ui.conftest import set_up
from tests.ui.test_call_flow import book_and_send_link, chromium_victim_called

pytestmark = pytest.mark.slow
WAIT_MS = 20000
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
IPV6 = re.compile(r"\b[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}\b", re.I)


def _own_addresses() -> set[str]:
    """This machine's addresses: where a victim's browser on it is seen from."""
    out = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    found = {m.split("/")[0] for m in re.findall(r"inet6? (\S+)", out)}
    return found | {"127.0.0.1", socket.gethostbyname("localhost")}


@pytest.fixture
def debug_logs(monkeypatch):
    """Every logger at DEBUG, in this process (to a buffer) and in the media
    process (its standard error, read with capfd); put back afterwards."""
    monkeypatch.setenv("EVR_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("EVR_LOG_LIBRARIES", "DEBUG")
    buf = io.StringIO()
    with logging_kept():
        configure("app", "DEBUG", stream=buf)
        yield buf


@contextlib.contextmanager
def media_stderr(folder: Path) -> Iterator[Path]:
    """The process's standard error (fd 2, which the media process inherits and
    logs to) sent to a file of the test's own, from inside the test's body:
    pytest swaps its own capture onto fd 2 between phases, so a media process
    started during a fixture's set-up would log where the test cannot read."""
    path = folder / "stderr.log"
    saved = os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield path
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def test_a_full_call_at_debug_logs_no_address(debug_logs, qtbot, app_window, monkeypatch, tmp_path):
    with media_stderr(tmp_path) as stderr_file:
        set_up(qtbot, app_window)  # unlock: the media process starts now, logging into stderr_file
        _call(qtbot, app_window, monkeypatch)
    child = [line for line in stderr_file.read_text(errors="replace").splitlines() if line.startswith("{")]
    _check(child + debug_logs.getvalue().splitlines())


def _call(qtbot, main, monkeypatch) -> None:
    a = book_and_send_link(qtbot, main, "Heulwen Invented-Logged", "07700 900666", "99LG1234526",
                           OffenceType.BURGLARY_THEFT)
    with playwright() as p, chromium(p) as browser:
        page = browser.new_context(**phone(p)).new_page()
        screen = chromium_victim_called(qtbot, main, a, page, WAIT_MS)
        qtbot.waitUntil(lambda: screen.remote.frames_painted >= 10, timeout=WAIT_MS)
        # A reconnect too: new candidates, new SDP, all through the loggers again.
        qtbot.mouseClick(screen.reconnect_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=WAIT_MS)
        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.CALL_ENDED, timeout=10000)
    qtbot.wait(500)


def _check(lines: list[str]) -> None:
    records = [json.loads(line) for line in lines]
    # The test could fail: the libraries did log at DEBUG, and there were addresses to scrub.
    loggers = {r["logger"].split(".")[0] for r in records}
    assert {"aioice", "aiortc"} <= loggers, loggers
    assert any(r["level"] == "DEBUG" and r["logger"].startswith("aioice") for r in records)
    assert any("[address]" in r["msg"] for r in records)
    text = "\n".join(r["msg"] + "\n" + r.get("exc", "") for r in records)
    assert not IPV4.search(text), IPV4.search(text)
    assert not IPV6.search(text), IPV6.search(text)
    for address in _own_addresses():
        assert address not in text, address
    assert "a=candidate" not in text and "v=0" not in text and ".local" not in text
