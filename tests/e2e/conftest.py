"""A real X server (Xvfb) for tests that start the real app in a window."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.xvfb import start_xvfb

REPO = Path(__file__).resolve().parents[2]


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./dev test, which installs it")
    return path


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """Start Xvfb on a free display number (it picks one and tells us)."""
    require("Xvfb")
    proc, display = start_xvfb("1366x800")
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def app_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A minimal environment, as a fresh login would have, all folders in tmp_path."""
    home = tmp_path / "home"
    run = tmp_path / "run"
    for d in (home, run):
        d.mkdir(mode=0o700, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(run),
        "TMPDIR": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env
