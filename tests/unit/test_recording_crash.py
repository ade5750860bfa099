"""The recorder under a kill and on a full disk."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from evr_desktop.recording.manifest import iter_recording, read_manifest
from evr_desktop.recording.recorder import FAILED, RECORDING, Recorder
from evr_desktop.recording.recover import find_unfinished, recover
from evr_desktop.vault.age import X25519Identity, decrypt, decrypt_prefix
from tests.recording_media import call_frames, small_filesystem

REPO = Path(__file__).resolve().parents[2]
MKV_MAGIC = b"\x1a\x45\xdf\xa3"


def _last_pts(mkv: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
                          str(mkv)], capture_output=True, text=True, timeout=60).stdout
    return max((float(t) for t in out.split() if t and t != "N/A"), default=0.0)


KILLS = 20
PARALLEL = 5  # children recording at once: 20 kills in about four rounds of wall time
CALL_SECONDS = 8.0


def _killed_child(run: int, root: Path, officer: X25519Identity, escrow: X25519Identity, frames_file: Path,
                  moment: float) -> tuple[float, float]:
    """Start a child recording in real time; SIGKILL it ``moment`` s of media
    time into the call. Returns (START, the kill) on the one clock both
    processes read (CLOCK_MONOTONIC)."""
    tmp = root / "tmp"
    tmp.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}
    child = subprocess.Popen(
        [sys.executable, "-c", "from tests.recording_media import record_paced_main; record_paced_main()",
         str(root / "rec"), officer.recipient, escrow.recipient, str(CALL_SECONDS), str(frames_file)],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("START"), line
        started = float(line.split()[1])
        time.sleep(max(0.0, started + moment - time.monotonic()))
        killed = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        rest = child.stdout.read()
        assert "DONE" not in rest, f"run {run}: the child finished before the kill"
        return started, killed
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_killed_mid_call_loses_at_most_two_seconds(tmp_path: Path) -> None:
    """Issue 10: killed with SIGKILL at 20 random moments of recorded calls,
    every recovery gives the media up to no more than two seconds before the
    kill, labelled unfinalised. Each child records a synthetic call at 640x480
    (VP8 at ~800 kbit/s both ways, Opus both ways) fed at its real pace; five
    run at once. The bound is measured on one clock: the parent reads
    CLOCK_MONOTONIC just before the kill; the child printed the monotonic time
    its media time 0 was due, and the recording's timestamps count from its
    first frame, so the last recovered packet's time on the same clock is
    START + first frame's media time + its pts. A child that lags behind real
    time makes the loss look larger, never smaller."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    frames = call_frames(CALL_SECONDS, t0=0.0, size=(640, 480))
    first_media = frames[0].monotonic  # the recording's time 0, in media time
    frames_file = tmp_path / "frames.pickle"  # synthetic media, invented; outside every recording folder
    frames_file.write_bytes(pickle.dumps(frames))
    rng = random.Random()
    moments = [rng.uniform(0.3, CALL_SECONDS - 0.5) for _ in range(KILLS)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs = list(pool.map(
            lambda i: _killed_child(i, tmp_path / f"run{i:02d}", officer, escrow, frames_file, moments[i]),
            range(KILLS)))
    losses = []
    for i, (started, killed) in enumerate(runs):
        root = tmp_path / f"run{i:02d}"
        folder = root / "rec"
        assert find_unfinished(root) == [folder]
        result = recover(folder, [officer])
        manifest = read_manifest(folder, [escrow])
        assert manifest.finalised is False and "recovered" in manifest.data["reason"]
        assert all(s["complete"] for s in manifest.segments[:-1])
        plain = b"".join(iter_recording(folder, [escrow]))
        if plain:
            mkv = root / "rec.mkv"
            mkv.write_bytes(plain)
            last = started + first_media + _last_pts(mkv)
            mkv.unlink()
        else:  # killed before the first cluster was written: nothing to recover
            last = started + first_media
        loss = killed - last
        losses.append(loss)
        print(f"run {i:2d}: killed {killed - started:.2f} s into the call; recovered media ends {loss:.2f} s "
              f"before the kill ({result.complete} complete segments, {result.recovered_bytes} bytes from the "
              f"open one)")
        assert -0.05 <= loss <= 2.0, (i, loss)
        # nothing in the clear: not in the recording folder, not in the child's temp folder
        assert not list((root / "tmp").iterdir())
        for path in folder.iterdir():
            assert MKV_MAGIC not in path.read_bytes(), path
    print(f"{KILLS} kills: recovered media ends {min(losses):.2f}-{max(losses):.2f} s before the kill "
          f"(median {sorted(losses)[len(losses) // 2]:.2f} s)")


def test_full_disk_is_reported_and_what_was_written_stays_valid(tmp_path: Path) -> None:
    with small_filesystem(tmp_path, "1m") as mnt:
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
