"""A force laptop's screen: every window fits, the call's controls stay in
view and the victim's video is the largest thing in the call window.

The app runs in a child process on its own Xvfb (the real xcb platform, not
offscreen: window frames and the screen's geometry are the X server's), once
at 1366x768 and once at 1920x1080 with 150% scaling (1280x720 logical).
``tests/ui/screens.py`` walks the windows, saves screenshots in tmp_path and
reports geometry. To look at the screens yourself, run that module by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.xvfb import start_xvfb

SCREENS = ("1-setup", "2-queue", "3-booking-dialog", "4-statement-missing", "5-history", "6-call-docked",
           "7-devices", "8-outbox")


@pytest.fixture(params=[("1366x768", "1"), ("1920x1080", "1.5")], ids=["1366x768", "1920x1080@150%"])
def screen_run(request, tmp_path) -> Iterator[dict]:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (./dev test installs it)")
    size, scale = request.param
    xvfb, display = start_xvfb(size)
    out = tmp_path / "shots"
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO),
        "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "QT_SCALE_FACTOR": scale,
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.ui.screens", str(out)], cwd=REPO, env=env,
            capture_output=True, text=True, timeout=240, check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        report = json.loads((out / "report.json").read_text())
        report["out"] = out
        report["logical"] = {"1": (1366, 768), "1.5": (1280, 720)}[scale]
        yield report
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def test_every_window_fits_the_screen_and_the_call_keeps_its_controls(screen_run):
    report = screen_run
    assert set(report["screens"]) == set(SCREENS)
    for name, entry in report["screens"].items():
        assert tuple(entry["screen"][2:]) == report["logical"], name  # the screen Qt saw (scaled)
        assert (report["out"] / f"{name}.png").stat().st_size > 10_000, name
        assert entry["windows"], name
        for w in entry["windows"]:
            assert w["inside"], f"{name}: {w['name']} {w['frame']} is not inside the screen {entry['screen']}"
        assert entry["squeezed"] == [], f"{name}: buttons too narrow for their text: {entry['squeezed']}"
    statement = report["screens"]["4-statement-missing"]
    assert statement["missing"] >= 30  # the list scrolls inside its own area: the window still fits
    diff = report["screens"]["5-history"]["diff"]
    assert "Date of birth: (not set)  →  01/01/1980" in diff and "date_of_birth" not in diff
    names = {w["name"] for s in report["screens"].values() for w in s["windows"]}
    assert {"appointmentDialog", "historyDialog", "devicesDialog", "outboxDialog"} <= names

    call = report["screens"]["6-call-docked"]
    end = call["end_button"]
    assert end["visible"] and end["in_window"] and end["on_screen"], end
    # The victim's video is the largest thing in the call window, the docked statement included.
    assert call["remote_area"] > call["statement_area"], call
    assert call["remote_area"] > call["largest_other"][1], call
