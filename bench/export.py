"""Evidence export (issue 12): export plus verify of a long synthetic
recording, against the standard tools doing the same checks on the same
files in the same run; and the working copy's encode against ffmpeg.

    .venv/bin/python bench/export.py                    # one hour, 3 runs, working copy on 60 s (~6-10 min)
    .venv/bin/python bench/export.py --minutes 5 --runs 2 --wc-seconds 20    # a quick look

A. Export + verify. A demo profile with one appointment: a signed MG11 (and its
   rear page), a still, and a recording of --minutes made by the real Recorder
   from synthetic encoded frames (random payloads at a call's rates: 30 fps
   video of 3,000 bytes each way, about 720 kb/s, and 50 Opus frames of 80
   bytes a second each way; the recorder muxes and encrypts them like any
   other). No working copy is made (random payloads do not decode; B measures
   its encode), so A measures the export and the checks. Each run, in
   alternating order:
   - ours: ``Session.export_case`` (copy, hash, sign, write the bundle) then
     ``evidence.verify.verify_bundle`` with the CA and the escrow identity
     (every file's hash, the CMS signature, both PDFs' signatures, the audit
     proofs, and every segment and still decrypted and checked against its
     plaintext hash);
   - the tools: on the same bundle, ``sha256sum -c SHA256SUMS`` and
     ``age -d -i ESCROW`` on every ``.age`` file (output to /dev/null), the
     same integrity and decryption checks (the tools cannot check the
     plaintext hashes, the signatures or the proofs).
   Wall seconds; CPU seconds (ours: this process; the tools: getrusage of the
   children). Goal: ours faster than the tools together (ratio < 1).
B. The working copy's encode: the first --wc-seconds of a real recording (VP8
   640x480 and Opus both ways, tests/recording_media.py's bitstreams) through
   ``recording.working_copy.make_working_copy`` in this process, and through
   ffmpeg with the same picture (each side letterboxed into 480x360, side by
   side, 15 fps, libx264 veryfast crf 28) and sound (the two sides as the two
   stereo channels, AAC) into fragmented MP4 on stdout. CPU seconds per second
   of media, medians over --runs.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import stats, table  # noqa: E402


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def synthetic_frames(minutes: float):  # noqa: ANN201 - a generator of the tap's frames
    """A call's encoded frames, in arrival order, with random payloads."""
    from tests.recording_media import TapFrame

    pool = os.urandom(1 << 20)
    seconds = minutes * 60
    fps, aps = 30, 50
    t0 = 1000.0
    n_video, n_audio = int(seconds * fps), int(seconds * aps)
    i = j = 0
    offset = 0

    def payload(size: int) -> bytes:
        nonlocal offset
        offset = (offset + 7919) % (len(pool) - size)
        return pool[offset:offset + size]

    while i < n_video or j < n_audio:
        tv = i / fps if i < n_video else float("inf")
        ta = j / aps if j < n_audio else float("inf")
        if tv <= ta:
            for direction, seed in (("received", 1), ("sent", 2)):
                yield TapFrame(direction, "video", "video/VP8", 90000, (12345 * seed + i * 3000) & 0xFFFFFFFF,
                               payload(3000), i % 90 == 0, t0 + tv + 0.003 * seed)
            i += 1
        else:
            for direction, seed in (("received", 1), ("sent", 2)):
                yield TapFrame(direction, "audio", "audio/opus", 48000, (777 * seed + j * 960) & 0xFFFFFFFF,
                               payload(80), True, t0 + ta + 0.001 * seed)
            j += 1


def make_case(tmp: Path, minutes: float) -> dict[str, Any]:
    import numpy as np

    from evr_desktop.config import Paths
    from evr_desktop.domain.appointment import Happening
    from evr_desktop.media.channel import STILL_RESULT_FIELDS
    from evr_desktop.recording.recorder import Recorder
    from evr_desktop.recording.stills import capture_still
    from evr_desktop.services import Workspace
    from tests.conftest import OFFICER, PASSPHRASE, fast_kdf
    from tests.e2e.test_statement_scripts import _complete, _signature
    from tests.unit.test_domain import make

    paths = Paths(profile=tmp / "profile", demo=True)
    workspace = Workspace(paths, make_kdf=fast_kdf)
    workspace.start()
    session = workspace.create(OFFICER, PASSPHRASE, with_demo_data=False)
    a = session.save_appointment(make(), new=True)
    for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED):
        session.record(a.id, happening)
    folder = session.recordings / a.id / "rec0001"
    folder.parent.mkdir(parents=True)
    now = [1000.0]
    rec = Recorder(folder, officer_recipient=session.vault.header.age_recipient,
                   escrow_recipient=session.vault.header.escrow_recipient, session=a.id, clock=lambda: now[0],
                   fsync=False)
    t = time.perf_counter()
    still_at = 1000.0 + 5.0
    for f in synthetic_frames(minutes):
        now[0] = f.monotonic
        rec(f)
        if still_at and f.monotonic >= still_at:
            still_at = 0.0
            ref = session.begin_still(a.id)
            frame = np.zeros((480, 640, 4), np.uint8)
            frame[:, :, 3] = 255
            result = capture_still(rec, frame, exhibit=str(ref), appointment=a.id)
            session.record_still(a.id, ref, {k: getattr(result, k) for k in STILL_RESULT_FIELDS})
    result = rec.close("call ended")
    made = time.perf_counter() - t
    statements = session.statements
    opened = statements.open_for_appointment(a.id)
    statements.sign(opened.id, _complete("He pushed me against the door and ran off.", "Ann EXAMPLE"), _signature())
    # No working copy here: random payloads do not decode (B measures a real one's encode).
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"  recording: {result.duration_s / 60:.1f} min, {result.segments} segments, {size / 2**20:.0f} MiB, "
          f"made in {made:.0f} s")
    office = paths.evidence_office
    return {"session": session, "appointment": a.id, "ca": office / "demo-force-ca.pem",
            "escrow": office / "escrow-identity-DEMO.txt", "size": size, "segments": result.segments}


def ours(case: dict[str, Any], dest: Path) -> tuple[float, float, Path]:
    from evr_desktop.evidence.verify import verify_bundle
    from evr_desktop.recording.cli import load_identities

    identities = load_identities([str(case["escrow"])])
    ca = case["ca"].read_bytes()
    wall, cpu = time.perf_counter(), time.process_time()
    bundle = case["session"].export_case(case["appointment"], dest)
    report = verify_bundle(bundle, ca, identities)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert report.ok, report.problems
    assert report.checked["files decrypted"] == case["segments"] + 1
    return wall, cpu, bundle


def tools(bundle: Path, escrow: Path) -> tuple[float, float]:
    files = sorted(str(p) for p in bundle.rglob("*.age"))
    wall, cpu = time.perf_counter(), children_cpu()
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, check=True)
    with open(os.devnull, "wb") as null:
        for path in files:
            subprocess.run(["age", "-d", "-i", str(escrow), path], stdout=null, check=True)
    return time.perf_counter() - wall, children_cpu() - cpu


def part_a(args: argparse.Namespace) -> None:
    print(f"A. Export + verify of a {args.minutes:g}-minute recording, {args.runs} runs")
    tmp = Path(tempfile.mkdtemp(prefix="evr-bench-export-"))
    try:
        case = make_case(tmp, args.minutes)
        rows, ratios = [], []
        for run in range(args.runs):
            dest = tmp / f"dest{run}"
            dest.mkdir()
            order = ("ours", "tools") if run % 2 == 0 else ("tools", "ours")
            result: dict[str, tuple[float, float]] = {}
            bundle = None
            for who in order:
                if who == "ours":
                    w, c, bundle = ours(case, dest)
                    result["ours"] = (w, c)
                else:
                    if bundle is None:  # the tools need a bundle: make one first, untimed
                        (tmp / f"pre{run}").mkdir()
                        _, _, bundle = ours(case, tmp / f"pre{run}")
                    result["tools"] = tools(bundle, case["escrow"])
            ratios.append(result["ours"][0] / result["tools"][0])
            rows.append(result)
            print(f"  run {run + 1}: ours {result['ours'][0]:.2f} s wall / {result['ours'][1]:.2f} s CPU; "
                  f"tools {result['tools'][0]:.2f} s wall / {result['tools'][1]:.2f} s CPU; "
                  f"ratio {ratios[-1]:.2f}")
            for extra in (dest, tmp / f"pre{run}"):
                shutil.rmtree(extra, ignore_errors=True)
        ow = stats([r["ours"][0] for r in rows])
        oc = stats([r["ours"][1] for r in rows])
        tw = stats([r["tools"][0] for r in rows])
        tc = stats([r["tools"][1] for r in rows])
        rs = stats(ratios)
        print(table(["", "wall s (median, min-max)", "CPU s (median, min-max)"], [
            ["ours: export + verify -i", f"{ow[0]:.2f} ({ow[1]:.2f}-{ow[2]:.2f})",
             f"{oc[0]:.2f} ({oc[1]:.2f}-{oc[2]:.2f})"],
            ["sha256sum -c + age -d each", f"{tw[0]:.2f} ({tw[1]:.2f}-{tw[2]:.2f})",
             f"{tc[0]:.2f} ({tc[1]:.2f}-{tc[2]:.2f})"],
            ["ratio ours / tools (wall)", f"{rs[0]:.2f} ({rs[1]:.2f}-{rs[2]:.2f})", ""],
        ]))
        print(f"  goal: ours faster than the tools together (ratio < 1): {'MET' if rs[2] < 1 else 'NOT MET'} "
              f"(worst run {rs[2]:.2f})")
        case["session"].lock()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def real_recording(seconds: float) -> bytes:
    from evr_desktop.recording.manifest import iter_recording
    from evr_desktop.recording.recorder import Recorder
    from evr_desktop.vault.age import X25519Identity
    from tests.recording_media import call_frames

    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    tmp = Path(tempfile.mkdtemp(prefix="evr-bench-wc-"))
    try:
        frames = call_frames(seconds, size=(640, 480))
        now = [frames[0].monotonic]
        rec = Recorder(tmp / "r", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                       clock=lambda: now[0], fsync=False)
        for f in frames:
            now[0] = f.monotonic
            rec(f)
        rec.close()
        return b"".join(iter_recording(tmp / "r", [officer]))
    finally:
        shutil.rmtree(tmp)


FFMPEG_GRAPH = (
    "[0:v:0]scale=480:360:force_original_aspect_ratio=decrease,pad=480:360:(ow-iw)/2:(oh-ih)/2[l];"
    "[0:v:1]scale=480:360:force_original_aspect_ratio=decrease,pad=480:360:(ow-iw)/2:(oh-ih)/2[r];"
    "[l][r]hstack,fps=15,format=yuv420p[v];[0:a:0][0:a:1]amerge=inputs=2,pan=stereo|c0=c0|c1=c1[a]"
)


def part_b(args: argparse.Namespace) -> None:
    from evr_desktop.recording.working_copy import make_working_copy

    print(f"B. The working copy's encode: {args.wc_seconds:g} s of VP8 640x480 + Opus both ways, {args.runs} runs")
    plain = real_recording(args.wc_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="evr-bench-wcin-"))
    src = tmp / "in.mkv"  # the plaintext for ffmpeg, in a private temporary folder, removed below
    src.write_bytes(plain)
    ours_cpu, ff_cpu = [], []
    try:
        for run in range(args.runs):
            for who in (("ours", "ffmpeg") if run % 2 == 0 else ("ffmpeg", "ours")):
                if who == "ours":
                    sink = io.BytesIO()
                    c = time.process_time()
                    info = make_working_copy(io.BytesIO(plain), sink)
                    ours_cpu.append((time.process_time() - c) / info["duration_s"])
                else:
                    c = children_cpu()
                    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-filter_complex", FFMPEG_GRAPH,
                                    "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "veryfast",
                                    "-crf", "28", "-tune", "zerolatency", "-c:a", "aac", "-f", "mp4", "-movflags",
                                    "frag_keyframe+empty_moov+default_base_moof", "-"],
                                   stdout=subprocess.DEVNULL, check=True)
                    ff_cpu.append((children_cpu() - c) / args.wc_seconds)
    finally:
        shutil.rmtree(tmp)
    o, f = stats(ours_cpu), stats(ff_cpu)
    print(table(["", "CPU s per s of media (median, min-max)"], [
        ["ours (PyAV libx264 + aac, in process)", f"{o[0]:.3f} ({o[1]:.3f}-{o[2]:.3f})"],
        ["ffmpeg (same picture and sound)", f"{f[0]:.3f} ({f[1]:.3f}-{f[2]:.3f})"],
        ["ratio ours / ffmpeg", f"{o[0] / f[0]:.2f}"],
    ]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--wc-seconds", type=float, default=60.0)
    p.add_argument("--only", default="A,B")
    args = p.parse_args()
    parts = {x.strip().upper() for x in args.only.split(",")}
    if "A" in parts:
        part_a(args)
    if "B" in parts:
        part_b(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
