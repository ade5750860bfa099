"""The recorder under a kill and on a full disk."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evr_desktop.recording.manifest import iter_recording, read_manifest
from evr_desktop.recording.recorder import FAILED, RECORDING, Recorder
from evr_desktop.recording.recover import find_unfinished, recover
from evr_desktop.vault.age import X25519Identity, decrypt, decrypt_prefix
from tests.recording_media import call_frames

REPO = Path(__file__).resolve().parents[2]
MKV_MAGIC = b"\x1a\x45\xdf\xa3"


def _last_pts(mkv: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
                          str(mkv)], capture_output=True, text=True, timeout=60).stdout
    return max((float(t) for t in out.split() if t and t != "N/A"), default=0.0)


def test_killed_mid_call_loses_at_most_two_seconds(tmp_path: Path) -> None:
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    rng = random.Random()
    for run in range(3):
        folder = tmp_path / f"rec{run}"
        tmp = tmp_path / f"tmp{run}"
        tmp.mkdir()
        env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}
        child = subprocess.Popen(
            [sys.executable, "-c", "from tests.recording_media import record_paced_main; record_paced_main()",
             str(folder), officer.recipient, escrow.recipient, "8"],
            stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.startswith("START"), line
            fed = [0.0]

            def read_progress(stream=child.stdout, fed=fed) -> None:
                for progress in stream:
                    if progress.startswith("FED"):
                        fed[0] = float(progress.split()[1])

            reader = threading.Thread(target=read_progress, daemon=True)
            reader.start()
            time.sleep(rng.uniform(1.5, 5.0))
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            reader.join(5)
            killed_at = fed[0]  # media time handed to the recorder before the kill
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        assert find_unfinished(tmp_path) == [folder]
        result = recover(folder, [officer])
        manifest = read_manifest(folder, [escrow])
        assert manifest.finalised is False and "recovered" in manifest.data["reason"]
        assert all(s["complete"] for s in manifest.segments[:-1])
        mkv = tmp_path / f"rec{run}.mkv"
        mkv.write_bytes(b"".join(iter_recording(folder, [escrow])))
        last = _last_pts(mkv)
        print(f"killed after {killed_at:.2f} s of media fed: recovered media to {last:.2f} s "
              f"({result.complete} complete segments, {result.recovered_bytes} bytes from the open one)")
        assert killed_at - 2.0 <= last <= killed_at + 0.2
        # nothing in the clear: not in the recording folder, not in the child's temp folder
        assert not list(tmp.iterdir())
        for path in folder.iterdir():
            assert MKV_MAGIC not in path.read_bytes(), path
        mkv.unlink()


def test_full_disk_is_reported_and_what_was_written_stays_valid(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        officer, escrow = X25519Identity.generate(), X25519Identity.generate()
        frames = call_frames(8.0)
        statuses: list = []
        now = [frames[0].monotonic]
        rec = Recorder(mnt / "rec", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                       clock=lambda: now[0], on_status=statuses.append)
        for f in frames:
            now[0] = f.monotonic
            rec(f)  # never raises, full disk or not
        result = rec.close()
        assert [s.state for s in statuses] == [RECORDING, FAILED]
        assert "No space left" in statuses[-1].message
        assert not result.finalised and "No space left" in (result.error or "")
        complete = [s for s in rec.segments if s.complete]
        assert complete and not rec.segments[-1].complete
        plain = b"".join(decrypt((mnt / "rec" / s.file).read_bytes(), [escrow]) for s in complete)
        _, finalised = decrypt_prefix((mnt / "rec" / rec.segments[-1].file).read_bytes(), [escrow])
        assert finalised is False  # the abandoned segment never reads as complete
        mkv = tmp_path / "partial.mkv"
        mkv.write_bytes(plain)
        subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(mkv), "-map", "0:v", "-map", "0:a",
                        "-f", "null", "-"], check=True, capture_output=True, timeout=60)
        assert _last_pts(mkv) > 0.5
        # Room again (the officer freed some): whatever state close() left, the
        # recording reads back as the finalised segments plus, at most, the
        # authenticated prefix of the abandoned one, labelled unfinalised.
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True)
        if result.manifest_sha256 is None:  # there was no room for the manifest either
            assert find_unfinished(mnt) == [mnt / "rec"]
            recover(mnt / "rec", [officer])
        manifest = read_manifest(mnt / "rec", [officer])
        assert manifest.finalised is False and "No space left" in manifest.data["reason"] \
            or "recovered" in manifest.data["reason"]
        assert [s["complete"] for s in manifest.segments][:len(complete)] == [True] * len(complete)
        assert manifest.segments[-1]["complete"] is False
        again = b"".join(iter_recording(mnt / "rec", [escrow]))
        assert again.startswith(plain)
        print(f"full disk: {len(complete)} segments kept, manifest written at close: "
              f"{result.manifest_sha256 is not None}, {len(again) - len(plain)} bytes from the abandoned one")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
