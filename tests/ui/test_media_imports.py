"""The GUI's process holds no codec (issue 9): after a real call through the
app (the victim in Chromium, tests/ui/media_imports_probe.py, run in a pytest
of its own so that no other test's imports count), none of aiortc, its ICE
and codec libraries, PyAV, OpenCV, PortAudio or the engine's own modules has
been imported; numpy (the frame views) is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

CODEC_MODULES = (
    "aiortc", "aioice", "av", "cv2", "sounddevice", "vpx", "pylibsrtp", "aiohttp",
    "evr_desktop.call.engine", "evr_desktop.call.embedded", "evr_desktop.call.tap", "evr_desktop.capture",
    "evr_desktop.rendezvous.server",
)


def test_the_gui_process_imports_no_codec_during_a_call(tmp_path):
    out = tmp_path / "modules.json"
    env = dict(os.environ, EVR_MODULES_OUT=str(out), QT_QPA_PLATFORM="offscreen")
    env.pop("EVR_MEDIA_IN_PROCESS", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"),
         str(REPO / "tests" / "ui" / "media_imports_probe.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    seen = json.loads(out.read_text())
    assert seen["media_pid"] is not None and seen["painted"] >= 10  # the call ran, in a child
    loaded = [m for m in seen["modules"] if any(m == c or m.startswith(c + ".") for c in CODEC_MODULES)]
    assert loaded == [], f"the GUI's process imported: {loaded}"
    assert "evr_desktop.media.proxy" in seen["modules"]  # a positive control
