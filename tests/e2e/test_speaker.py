"""The victim's voice reaches the officer's speakers: a real PulseAudio server
with a null sink (as on a laptop, minus the loudspeaker), the app's Speaker
playing decoded frames into it, and what arrives at the sink's monitor
analysed: a 440 Hz tone, not silence."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: ./dev test installs it")
    return path


@pytest.fixture
def pulse(tmp_path: Path):
    need("pulseaudio")
    need("parec")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    sock = run / "pulse.sock"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(run), "PULSE_SERVER": f"unix:{sock}"}
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
         "-L", f"module-native-protocol-unix auth-anonymous=1 socket={sock}",
         "-L", "module-null-sink sink_name=nullsink rate=48000"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("PulseAudio did not start")
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "nullsink"], env=env, check=True)
    yield env
    proc.terminate()
    proc.wait(timeout=10)


PLAYER = textwrap.dedent("""
    import math, time, numpy as np, av
    from evr_desktop.capture.speaker import Speaker
    s = Speaker(device="pulse")
    s.start()
    for n in range(100):  # 2 s of a 440 Hz tone in 20 ms stereo frames, as a decoder gives them
        t = (np.arange(960) + n * 960) / 48000
        wave = (np.sin(2 * math.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(wave, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48000
        s.put(frame)
        time.sleep(0.02)
    time.sleep(0.3)
    s.close()
    print("played", s.frames_played, "dropped", s.dropped_bytes)
""")


def test_victims_voice_plays_on_the_output_device(pulse, tmp_path):
    capture = tmp_path / "monitor.raw"
    with capture.open("wb") as out:
        rec = subprocess.Popen(
            ["parec", "--device=nullsink.monitor", "--raw", "--format=s16le", "--rate=48000", "--channels=1"],
            env=pulse, stdout=out,
        )
        time.sleep(0.3)
        played = subprocess.run([sys.executable, "-c", PLAYER], env=pulse, capture_output=True, text=True, timeout=30)
        rec.terminate()
        rec.wait(timeout=5)
    assert played.returncode == 0, played.stderr
    assert "played 100" in played.stdout
    pcm = np.frombuffer(capture.read_bytes(), dtype=np.int16).astype(np.float64)
    assert pcm.size > 48000, "nothing recorded from the sink"
    loud = pcm[np.abs(pcm) > 1000]
    assert loud.size > 48000 * 0.5, "the sink heard (almost) silence"
    spectrum = np.abs(np.fft.rfft(pcm))
    peak_hz = np.argmax(spectrum[1:]) * 48000 / pcm.size
    assert abs(peak_hz - 440) < 10, peak_hz


def test_no_such_device_is_a_plain_message():
    from evr_desktop.capture.base import DeviceError
    from evr_desktop.capture.speaker import Speaker

    with pytest.raises(DeviceError, match="No speaker or headset"):
        Speaker(device="no-such-device-anywhere").start()
