"""Shared by the benchmark scripts: medians and a plain-text table."""

from __future__ import annotations

import statistics
from pathlib import Path


def stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def bootstrap_median(values: list[float], draws: int = 4000, seed: int = 10) -> tuple[float, float, float]:
    """The median of ``values`` and a 90% bootstrap interval of it (values
    drawn with replacement, a fixed seed so that a report can be re-printed
    from the same figures). For paired comparisons (each measurement against
    its partner taken minutes apart), where the pairing removes the machine's
    drift that a difference of two medians keeps."""
    import random

    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return statistics.median(values), meds[int(0.05 * draws)], meds[int(0.95 * draws) - 1]


def table(headers: list[str], rows: list[list[str]]) -> str:
    """First column left-aligned, the rest (numbers) right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join("  " + line for line in lines)


def child_env(root: Path, pycache: Path | None, **extra: str) -> dict[str, str]:
    """The environment for a timed child process.

    An installed app runs from bytecode. This machine's environment may set
    PYTHONDONTWRITEBYTECODE, which would make every child recompile whatever
    has no up-to-date .pyc; so the children read and write bytecode in a cache
    of their own (filled by the warm-up run, removed at the end), and nothing
    is written into the source tree."""
    import os

    env = dict(os.environ)
    env.update(extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env
