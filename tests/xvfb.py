"""A virtual screen for tests that need a real X server (window frames, the
screen's geometry, screenshots): Xvfb on a free display number, which it picks
itself and reports on a pipe, so parallel runs never collide."""

from __future__ import annotations

import os
import subprocess

import pytest


def start_xvfb(size: str) -> tuple[subprocess.Popen, str]:
    """Start Xvfb with one screen of ``size`` (``"1366x768"``); returns the
    process and its ``DISPLAY`` value. The caller terminates the process."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    return proc, f":{number}"
