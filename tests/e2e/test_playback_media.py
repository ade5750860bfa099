"""Playback through the real media child (issue 10 item 9): a recording made
by the real Recorder, opened by the session (file keys only, audited as a
view), played in the media process: pictures arrive in the shared slot, both
voices reach a PulseAudio null sink, a seek lands near its time, the chat
comes with its times, no plaintext file appears anywhere, and a segment
damaged after the keys were given fails with its name."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from evr_desktop.media.proxy import CommandFailed, MediaCalls
from tests.e2e.test_speaker import pulse  # noqa: F401 - the PulseAudio fixture
from tests.unit.test_domain import make
from tests.unit.test_player import SECONDS, make_recording

pytestmark = pytest.mark.slow

MKV_MAGIC = bytes.fromhex("1a45dfa3")


def _wait(predicate, timeout: float = 30.0) -> bool:
    """Poll until true; the bound only keeps a broken run from hanging (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _plaintext_files(folder: Path) -> list[str]:
    found = []
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            try:
                if MKV_MAGIC in p.read_bytes():
                    found.append(str(p))
            except OSError:
                pass
    return found


def _open_files(pid: int) -> list[str]:
    """The files a process holds open, but its standard streams (under pytest
    they are pytest's capture files, deleted temp files in /tmp)."""
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if fd.name in ("0", "1", "2"):
            continue
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            out.append(target)
    return out


@pytest.fixture
def child(pulse, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    private_tmp = tmp_path / "child-tmp"
    private_tmp.mkdir()
    for name, value in pulse.items():
        if name in ("HOME", "XDG_RUNTIME_DIR", "PULSE_SERVER"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    calls = MediaCalls(hang_timeout=5.0)
    statuses: list[dict] = []
    calls.engine.player_listener = statuses.append
    calls.start()
    calls.statuses = statuses
    calls.private_tmp = private_tmp
    yield calls
    calls.stop()


def test_a_recording_plays_in_the_media_process_from_file_keys(child, session, pulse, tmp_path):  # noqa: F811
    a = session.save_appointment(make(), new=True)
    folder = session.recordings / a.id / "cafe0001"
    header = session.vault.header
    # The recording is made with the session's keys (the Recorder only ever sees the public recipients).
    make_recording_with(folder, header)
    plan = session.open_recording(a.id, "cafe0001")
    actions = [e.action for e in session.audit.entries() if e.object_id == a.id]
    assert actions[-2:] == ["recording.viewed", "recording.viewed.cafe0001"]

    segments = [s.message() for s in plan.segments]
    message = json.dumps(segments)
    identity = session.vault.age_identity
    assert identity not in message and "AGE-SECRET-KEY" not in message.upper()
    assert all(set(s) == {"file", "file_key", "plaintext_size", "complete"} for s in segments)

    capture = tmp_path / "monitor.raw"
    with capture.open("wb") as out:
        parec = subprocess.Popen(["parec", "--device=nullsink.monitor", "--raw", "--format=s16le", "--rate=48000",
                                  "--channels=1"], env=pulse, stdout=out)
        try:
            info = child.engine.player_open("cafe0001", str(folder), segments).result(60)
            assert abs(info["duration"] - SECONDS) < 0.5
            assert [c["text"] for c in info["chat"]] == ["Victim: first line", "Officer: second line"]
            assert abs(info["chat"][1]["at"] - 5.5) < 0.1
            assert info["note"] == ""  # the speaker opened

            child.engine.player_play().result(10)
            seen: list[np.ndarray] = []
            assert _wait(lambda: (f := child.engine.latest_player_bgra("cafe0001")) is not None
                         and seen.append(f.copy()) is None)
            assert seen[0].shape[0] == 360 and seen[0].shape[1] > 900  # both pictures, side by side
            assert child.engine.latest_remote_bgra("other") is None  # the call's key is not the player's
            assert _wait(lambda: any(s["state"] == "playing" and s["position"] > 1.5 for s in child.statuses))

            # While playing: nothing in plaintext on disk, no file open but the segments.
            pid = child.pid
            assert pid is not None
            opened = _open_files(pid)
            assert all(p.startswith(str(folder)) and Path(p).name.startswith("seg-") for p in opened
                       if not p.endswith((".so", ".py", ".pyc"))), opened
            assert _plaintext_files(child.private_tmp) == []
            assert _plaintext_files(session.recordings.parent) == []
            assert _plaintext_files(Path("/dev/shm")) == []  # the frame slots are unlinked; nothing else there

            child.engine.player_pause().result(10)
            child.statuses.clear()
            child.engine.player_seek(6.0).result(10)
            assert _wait(lambda: any(s["state"] == "paused" for s in child.statuses))
            landed = [s["position"] for s in child.statuses if s["state"] == "paused"][-1]
            assert 6.0 - 0.001 <= landed < 6.1
            child.statuses.clear()
            child.engine.player_play().result(10)
            assert _wait(lambda: any(s["state"] == "ended" for s in child.statuses))
            assert min(s["position"] for s in child.statuses) >= 6.0 - 0.001
        finally:
            time.sleep(0.3)
            parec.terminate()
            parec.wait(10)
    pcm = np.frombuffer(capture.read_bytes(), np.int16).astype(np.float32)
    assert len(pcm) > 48_000  # over a second of audio reached the sink
    blocks = pcm[: len(pcm) // 480 * 480].reshape(-1, 480)  # 10 ms each
    loud = np.sqrt(np.mean(blocks**2, axis=1))
    assert (loud > 300).sum() > 50  # heard: more than half a second of the two tones, not silence
    # Both sides, mixed: the victim's 440 Hz and the officer's 880 Hz tones (tests/recording_media.py).
    heard = blocks[loud > 300].reshape(-1)
    spectrum = np.abs(np.fft.rfft(heard))
    freqs = np.fft.rfftfreq(len(heard), 1 / 48_000)
    floor = np.median(spectrum)
    for tone in (440.0, 880.0):
        band = spectrum[(freqs > tone - 5) & (freqs < tone + 5)]
        assert band.max() > 50 * floor, tone
    child.engine.player_close().result(10)
    assert child.engine.player_play().exception(10) is not None  # closed: nothing to play


def test_a_damaged_segment_fails_with_its_name_and_the_child_goes_on(child, session):
    a = session.save_appointment(make(), new=True)
    folder = session.recordings / a.id / "cafe0002"
    make_recording_with(folder, session.vault.header)
    plan = session.open_recording(a.id, "cafe0002")
    seg = folder / plan.segments[1].file
    blob = bytearray(seg.read_bytes())
    blob[len(blob) // 2] ^= 0x01  # damaged after the keys were given
    seg.write_bytes(bytes(blob))
    future = child.engine.player_open("cafe0002", str(folder), [s.message() for s in plan.segments])
    with pytest.raises(CommandFailed, match=r"segment 2 \(seg-000002.age\) cannot be decrypted"):
        future.result(60)
    bad = child.engine.player_open("cafe0002", str(folder), [{"file": "seg-000001.age", "identity": "x"}])
    with pytest.raises(ValueError, match="player_open: segment 1"):
        bad.result(30)
    assert child.running


def make_recording_with(folder: Path, header) -> None:
    """tests.unit.test_player's recording, to the session's own public recipients."""
    make_recording(folder, recipients=(header.age_recipient, header.escrow_recipient))
