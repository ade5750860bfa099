"""Start-up benchmark for EVR Desktop: prints a comparison table, asserts nothing.

    .venv/bin/python bench/startup.py                 # both benchmarks, 7 runs each
    .venv/bin/python bench/startup.py --runs 15
    .venv/bin/python bench/startup.py --only paint    # A only
    .venv/bin/python bench/startup.py --only unlock   # B only

A. Cold start to first window painted. Every run is a fresh Python process
   with QT_QPA_PLATFORM=offscreen. The parent reads the clock just before
   ``subprocess.Popen`` and again when it reads the child's ``PAINTED`` line,
   so interpreter start-up and every import count. Compared: ``python -c pass``
   (the floor), a bare PySide6 QMainWindow, and the real app on an already
   set-up demo profile, whose first painted page is the unlock screen
   (``run(..., on_unlock_painted=...)``).

B. Unlock to queue painted, a dozen demo appointments. The child runs the app
   with the passphrase given to ``run(..., passphrase=...)``, so the unlock is
   submitted as soon as the profile has been read. The clock starts when the
   unlock is submitted (``MainWindow._unlock`` is wrapped in the child to note
   the time; it changes nothing) and stops at the queue table's first Paint
   after ``on_queue_ready``. The same child then times the Argon2id key
   derivation alone, with the vault's own parameters.

"Cold" means a fresh interpreter, not an empty disk cache: one untimed warm-up
run of each variant comes first, so every timed run finds the files in the
page cache and the bytecode compiled, as an installed app would (dropping
caches needs root and measures the disk, not the app).

The profile is made once, in a temporary folder, with the real KDF calibration
and invented demo data, and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _report import child_env as _child_env
from _report import stats, table  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parent.parent
# Invented; only ever used on the throw-away benchmark profile.
PASSPHRASE = "copper lantern orbit meadow quietly 47"
TIMEOUT_S = 90.0

# -- child scripts (run with ``python -c``) ----------------------------------
# Every child prints "IMPORTED <t>" after its imports and "PAINTED <t>" on the
# first paint, with t from time.monotonic() (CLOCK_MONOTONIC on Linux, shared
# by all processes, so the parent can place the child's moments on its own clock).

PYTHON_ONLY = "import sys, time; print('PAINTED', time.monotonic(), flush=True)"

BARE_QT = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
    print("IMPORTED", time.monotonic(), flush=True)

    class FirstPaint(QObject):
        done = False
        def eventFilter(self, watched, event):
            if not self.done and event.type() == QEvent.Type.Paint:
                self.done = True
                print("PAINTED", time.monotonic(), flush=True)
                QApplication.quit()
            return False

    app = QApplication(sys.argv)
    window = QMainWindow()
    window.resize(1280, 760)  # the size EVR's main window opens at
    central = QWidget(window)
    window.setCentralWidget(central)
    watcher = FirstPaint()
    window.installEventFilter(watcher)
    central.installEventFilter(watcher)
    window.show()
    sys.exit(app.exec())
    """
)

EVR_FIRST_PAINT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    from evr_desktop.config import Paths
    from evr_desktop.services import Workspace
    from evr_desktop.ui.application import run
    print("IMPORTED", time.monotonic(), flush=True)

    def painted():
        print("PAINTED", time.monotonic(), flush=True)
        QApplication.quit()

    sys.exit(run(Workspace(Paths(profile=Path(sys.argv[1]), demo=True)), on_unlock_painted=painted))
    """
)

EVR_UNLOCK = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QTableView
    from evr_desktop.config import Paths
    from evr_desktop.services import Workspace
    from evr_desktop.ui import main_window
    from evr_desktop.ui.application import run
    from evr_desktop.vault.kdf import KdfParams

    profile = Path(sys.argv[1])
    passphrase = sys.stdin.readline().rstrip("\\n")
    now = time.perf_counter
    marks = {}

    # Observe (only) the moment the unlock is submitted: with run(passphrase=...)
    # MainWindow.start() calls _unlock() as soon as the profile has been read.
    _original_unlock = main_window.MainWindow._unlock
    def _unlock(self, pw):
        marks.setdefault("unlock_start", now())
        return _original_unlock(self, pw)
    main_window.MainWindow._unlock = _unlock

    class QueuePainted(QObject):
        def __init__(self, table):
            super().__init__()
            self.table = table
        def eventFilter(self, watched, event):
            if event.type() == QEvent.Type.Paint and "queue_painted" not in marks:
                marks["queue_painted"] = now()
                marks["rows_shown"] = self.table.model().rowCount()
                QApplication.quit()
            return False

    def unlock_painted():
        marks.setdefault("unlock_painted", now())

    watchers = []
    def queue_ready(count):
        marks["queue_ready"] = now()
        marks["rows"] = count
        tables = [
            t
            for w in QApplication.topLevelWidgets()
            for t in w.findChildren(QTableView, "queueTable")
        ]
        if not tables:
            marks["error"] = "queue table not found"
            QApplication.quit()
            return
        table = tables[0]
        watcher = QueuePainted(table)
        watchers.append(watcher)
        table.viewport().installEventFilter(watcher)  # the cells are painted on the viewport

    run(
        Workspace(Paths(profile=profile, demo=True)),
        passphrase=passphrase,
        on_unlock_painted=unlock_painted,
        on_queue_ready=queue_ready,
    )

    # The pure key derivation, alone, with the vault's own parameters.
    params = KdfParams.from_dict(json.loads((profile / "vault.json").read_text("ascii"))["kdf"])
    start = now()
    params.derive(passphrase)
    marks["kdf"] = now() - start
    marks["kdf_params"] = [params.memory_kib, params.iterations, params.lanes]
    print("RESULT", json.dumps(marks), flush=True)
    """
)


# -- running children ------------------------------------------------------------
PYCACHE: Path | None = None  # set in main(): a bytecode cache inside the temporary folder


def child_env() -> dict[str, str]:
    return _child_env(ROOT, PYCACHE, QT_QPA_PLATFORM="offscreen")


class ChildFailed(RuntimeError):
    pass


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        _out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err


def time_first_paint(script: str, args: list[str]) -> dict[str, float]:
    """Seconds from just before Popen to reading the child's PAINTED line."""
    env = child_env()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=env, cwd=ROOT, text=True,
    )
    marks: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:  # blocks until a line or EOF
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("IMPORTED", "PAINTED"):
            if parts[0] == "PAINTED":
                marks["painted"] = time.monotonic() - t0
                break
            marks["imported"] = float(parts[1]) - t0
    err = _finish(proc)
    if "painted" not in marks:
        raise ChildFailed(f"child never painted (exit {proc.returncode}):\n{err[-2000:]}")
    return marks


def time_unlock(profile: Path) -> dict[str, object]:
    proc = subprocess.Popen(
        [sys.executable, "-c", EVR_UNLOCK, str(profile)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE,
        env=child_env(), cwd=ROOT, text=True,
    )
    try:
        out, err = proc.communicate(PASSPHRASE + "\n", timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for line in out.splitlines():
        if line.startswith("RESULT "):
            marks = json.loads(line[len("RESULT "):])
            if "error" in marks or "queue_painted" not in marks or "unlock_start" not in marks:
                raise ChildFailed(f"unlock run incomplete: {marks}\n{err[-2000:]}")
            return marks
    raise ChildFailed(f"unlock child gave no result (exit {proc.returncode}):\n{err[-2000:]}")


# -- set-up ------------------------------------------------------------------------
def make_profile(profile: Path) -> dict[str, object]:
    """A set-up demo profile with the real default KDF calibration, then locked."""
    from evr_desktop.config import Paths
    from evr_desktop.domain.officer import OfficerIdentity
    from evr_desktop.services import Workspace

    ws = Workspace(Paths(profile=profile, demo=True))
    ws.start()
    officer = OfficerIdentity(
        "PC Bench Marker", "BENCH 0001", "Benchmark Constabulary", "Bench Street"
    )
    start = time.perf_counter()
    session = ws.create(officer, PASSPHRASE, with_demo_data=True)
    created = time.perf_counter() - start
    count = len(session.store.list(None))
    session.lock()
    kdf = json.loads((profile / "vault.json").read_text("ascii"))["kdf"]
    return {"appointments": count, "kdf": kdf, "create_s": created}


# -- reporting -----------------------------------------------------------------------
def machine_info() -> str:
    import PySide6

    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"PySide6 {PySide6.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()} {platform.machine()}"
    )


def bench_first_paint(runs: int, profile: Path) -> None:
    variants = [
        ("python -c pass (floor)", PYTHON_ONLY, []),
        ("bare PySide6 QMainWindow", BARE_QT, []),
        ("EVR Desktop (unlock screen)", EVR_FIRST_PAINT, [str(profile)]),
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    for _name, script, args in variants:  # untimed warm-up: page cache, .pyc files
        time_first_paint(script, args)
    for _ in range(runs):  # interleaved, so drift on the machine hits every variant alike
        for name, script, args in variants:
            results[name].append(time_first_paint(script, args))

    bare = statistics.median(r["painted"] for r in results["bare PySide6 QMainWindow"])
    rows = []
    for name, _, _ in variants:
        med, lo, hi = stats([r["painted"] for r in results[name]])
        imported = [r["imported"] for r in results[name] if "imported" in r]
        imp = f"{statistics.median(imported):.3f}" if imported else "-"
        rows.append([name, f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}", f"{med / bare:.2f}x", imp])
    print(f"A. Cold start to first window painted  ({runs} runs each, fresh process, offscreen)")
    print("   clock: parent, from just before Popen to reading the child's PAINTED line")
    print()
    print(table(["variant", "median s", "min s", "max s", "vs bare Qt", "imports done s"], rows))
    evr = statistics.median(r["painted"] for r in results["EVR Desktop (unlock screen)"])
    ratio = evr / bare
    verdict = "met" if ratio <= 1.5 else "NOT met"
    print()
    print(
        f"  goal: EVR first paint <= 1.5 x bare Qt  ->  {verdict} "
        f"({ratio:.2f} x, {evr:.3f} s vs {bare:.3f} s)"
    )
    print()


def bench_unlock(runs: int, profile: Path) -> None:
    time_unlock(profile)  # untimed warm-up
    results = [time_unlock(profile) for _ in range(runs)]

    def series(key: str) -> list[float]:
        return [float(r[key]) for r in results]  # type: ignore[arg-type]

    start = series("unlock_start")
    total = [p - s for p, s in zip(series("queue_painted"), start, strict=True)]
    to_ready = [q - s for q, s in zip(series("queue_ready"), start, strict=True)]
    paint = [p - q for p, q in zip(series("queue_painted"), series("queue_ready"), strict=True)]
    kdf = series("kdf")
    unlock_page = []
    if all("unlock_painted" in r for r in results):
        unlock_page = [u - s for u, s in zip(series("unlock_painted"), start, strict=True)]
    shown = "/".join(sorted({str(r["rows_shown"]) for r in results}))
    loaded = "/".join(sorted({str(r["rows"]) for r in results}))
    memory_kib, iterations, lanes = results[0]["kdf_params"]  # type: ignore[misc]

    def row(name: str, values: list[float]) -> list[str]:
        med, lo, hi = stats(values)
        return [name, f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}"]

    rows = [
        row("unlock submitted -> queue painted", total),
        row("  of which: unlock + load, to on_queue_ready", to_ready),
        row("  of which: on_queue_ready -> table painted", paint),
        row("key derivation alone (same child)", kdf),
    ]
    if unlock_page:
        rows.append(row("(unlock screen painted, after submit)", unlock_page))
    share = statistics.median(kdf) / statistics.median(total)
    rest = statistics.median(total) - statistics.median(kdf)
    print(
        f"B. Unlock to queue painted  ({runs} runs, fresh process each; "
        f"{loaded} appointments loaded, {shown} rows shown for today)"
    )
    print(
        "   clock: child, from MainWindow._unlock(passphrase) to the queue table's "
        "first Paint after on_queue_ready"
    )
    print(
        f"   KDF: argon2id, {memory_kib // 1024} MiB, {iterations} passes, {lanes} lane(s), "
        "the vault's own parameters"
    )
    print()
    print(table(["measure", "median s", "min s", "max s"], rows))
    print()
    print(f"  KDF share of unlock-to-queue (median/median): {share:.0%}  (the rest: {rest:.3f} s)")
    verdict = "met" if share > 0.5 else "NOT met"
    print(
        f"  goal: unlock to queue dominated by the deliberate key derivation  ->  {verdict} "
        f"(KDF is {share:.0%} of it; 'dominated' = more than all the rest together)"
    )
    print()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7, help="timed runs per variant (default 7)")
    p.add_argument("--only", choices=("paint", "unlock"), help="run one benchmark only")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    sys.path.insert(0, str(ROOT))

    began = time.monotonic()
    print("EVR Desktop start-up benchmark")
    print(f"machine: {machine_info()}")
    global PYCACHE
    tmp = Path(tempfile.mkdtemp(prefix="evr-bench-"))
    PYCACHE = tmp / "pycache"
    try:
        profile = tmp / "profile"  # the demo evidence-office folder lands beside it, also in tmp
        info = make_profile(profile)
        kdf = info["kdf"]
        print(
            f"profile: demo, {info['appointments']} invented appointments, KDF argon2id "
            f"{kdf['memory_kib'] // 1024} MiB x {kdf['iterations']} passes "  # type: ignore[index]
            f"(real calibration), set up in {info['create_s']:.1f} s"
        )
        print()
        if args.only in (None, "paint"):
            bench_first_paint(args.runs, profile)
        if args.only in (None, "unlock"):
            bench_unlock(args.runs, profile)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"total benchmark time {time.monotonic() - began:.0f} s; temporary profile removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
