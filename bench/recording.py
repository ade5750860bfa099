"""Recording: our age encryption against the `age` tool, and the recorder's cost.

    .venv/bin/python bench/recording.py                 # 1 GiB, 3 runs each (~30 s)
    .venv/bin/python bench/recording.py --runs 5 --mib 256

A. Encryption throughput. The same bytes (a 16 MiB random block repeated up to
   --mib) go through `vault.age.Encryptor` in this process, and through
   `age -r RECIPIENT -o /dev/null` fed by a pipe, each to two recipients (the
   officer and the escrow key, as recordings are). Wall time per run; medians.
B. The recorder itself: a synthetic call (VP8 + Opus both ways, real
   bitstreams, 800 kb/s video each way) fed as fast as it goes into a Recorder
   writing real, fsynced segments; CPU seconds spent per second of call.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import stats, table  # noqa: E402
from evr_desktop.vault.age import Encryptor, X25519Identity  # noqa: E402

BLOCK = 16 << 20


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


def ours(total: int, block: bytes, recipients: list[str]) -> float:
    t = time.perf_counter()
    enc = Encryptor(_Null(), recipients)  # type: ignore[arg-type]
    left = total
    while left:
        n = min(left, len(block))
        enc.write(block[:n])
        left -= n
    enc.close()
    return time.perf_counter() - t


def age_tool(total: int, block: bytes, recipients: list[str]) -> float:
    args = ["age"] + [a for r in recipients for a in ("-r", r)] + ["-o", os.devnull]
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    left = total
    while left:
        n = min(left, len(block))
        proc.stdin.write(block[:n])
        left -= n
    proc.stdin.close()
    proc.wait()
    return time.perf_counter() - t


def recorder_cost(seconds: float) -> tuple[float, float, int]:
    from evr_desktop.recording.recorder import Recorder
    from tests.recording_media import call_frames

    frames = call_frames(seconds)
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    folder = Path(tempfile.mkdtemp(prefix="evr-bench-rec-"))
    try:
        now = [frames[0].monotonic]
        rec = Recorder(folder / "r", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                       clock=lambda: now[0])
        cpu = time.process_time()
        for f in frames:
            now[0] = f.monotonic
            rec(f)
        result = rec.close()
        cpu = time.process_time() - cpu
        size = sum(p.stat().st_size for p in (folder / "r").iterdir())
        return cpu / result.duration_s, result.duration_s, size
    finally:
        shutil.rmtree(folder)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args()
    if shutil.which("age") is None:
        sys.exit("the age tool is needed: apt-get install age")
    total = args.mib << 20
    block = os.urandom(BLOCK)
    recipients = [X25519Identity.generate().recipient, X25519Identity.generate().recipient]
    ours(BLOCK, block, recipients)  # warm-up
    age_tool(BLOCK, block, recipients)
    mine, theirs = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine
        mine.append(ours(total, block, recipients))
        theirs.append(age_tool(total, block, recipients))
    rows = []
    for name, runs in (("vault.age Encryptor (in process)", mine), ("age 1.x (-r x2, stdin pipe)", theirs)):
        med, lo, hi = stats(runs)
        rows.append([name, f"{med:.2f}", f"{lo:.2f}", f"{hi:.2f}", f"{args.mib / med:.0f}"])
    print(f"\nA. Encrypting {args.mib} MiB to two recipients, {args.runs} runs\n")
    print(table(["", "median s", "min s", "max s", "MiB/s"], rows))
    print(f"\n  ours / age (median time): {stats(mine)[0] / stats(theirs)[0]:.2f}  (below 1: ours is faster)")
    costs = [recorder_cost(6.0) for _ in range(args.runs)]
    med, lo, hi = stats([c[0] for c in costs])
    print(f"\nB. Recorder, synthetic 6 s call (VP8 800 kb/s + Opus, both ways), {args.runs} runs\n")
    print(table(["", "median", "min", "max"], [["CPU s per s of call", f"{med:.4f}", f"{lo:.4f}", f"{hi:.4f}"]]))
    print(f"\n  {costs[0][2] / costs[0][1] / 1024:.0f} KiB/s of ciphertext written (fsynced segments)")


if __name__ == "__main__":
    main()
