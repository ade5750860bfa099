"""README command one, for real: the installed `evr-desktop --demo` starts in a
real X window (Xvfb), sets up the demo officer, and shows the queue. A
screenshot is taken and checked for content (and can be kept for a person to
look at with EVR_KEEP_SCREENSHOTS=DIR)."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import app_env, require

PASSPHRASE = "correct horse battery staple 42"
pytestmark = pytest.mark.slow


def entry_point() -> str:
    exe = Path(sys.executable).with_name("evr-desktop")
    if not exe.exists():
        pytest.fail("the evr-desktop entry point is not installed: run ./dev test")
    return str(exe)


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    """Read the app's stderr (its log) until ``needle`` appears."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if needle in line:
            return seen
    pytest.fail(f"did not see {needle!r}; the app said:\n" + "\n".join(seen))


def screenshot(display: str, out: Path) -> None:
    require("import")
    subprocess.run(["import", "-display", display, "-window", "root", str(out)], check=True, timeout=30)


def image_stddev(path: Path) -> float:
    out = subprocess.run(
        ["identify", "-format", "%[fx:standard_deviation]", str(path)], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def test_demo_app_shows_the_queue_in_a_real_window(tmp_path, xvfb_display):
    profile = tmp_path / "profile"
    env = app_env(tmp_path, DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb")
    proc = subprocess.Popen(
        [entry_point(), "--demo", "--profile", str(profile), "--passphrase-fd", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        proc.stdin.write(PASSPHRASE + "\n")
        proc.stdin.close()
        lines = wait_for_line(proc, "queue ready: 12 appointments", timeout=90)
        time.sleep(1.0)  # let the window finish painting
        shot = tmp_path / "queue.png"
        screenshot(xvfb_display, shot)
        assert image_stddev(shot) > 0.05, "the screen is blank"
        keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / "queue.png")
        assert proc.poll() is None, "the app exited"
        assert not any("Traceback" in ln for ln in lines)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (profile / "vault.json").exists() and (profile / "store.sqlite3").exists()
    assert (tmp_path / "profile-evidence-office-DEMO" / "escrow-identity-DEMO.txt").exists()


def test_second_start_unlocks_the_same_profile_and_audit_verifies(tmp_path, xvfb_display):
    profile = tmp_path / "profile"
    env = app_env(tmp_path, DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb")
    for _ in range(2):  # first run creates, second run unlocks
        proc = subprocess.Popen(
            [entry_point(), "--demo", "--profile", str(profile), "--passphrase-fd", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )
        proc.stdin.write(PASSPHRASE + "\n")
        proc.stdin.close()
        wait_for_line(proc, "queue ready: 12 appointments", timeout=90)
        proc.terminate()
        proc.wait(timeout=20)
    result = subprocess.run(
        [entry_point(), "audit", "verify", "--profile", str(profile)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout.lower() or "ok" in result.stdout.lower()
