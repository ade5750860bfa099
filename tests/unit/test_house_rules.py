"""The house rules, run as part of the test suite (so `./dev test`, and CI
through it, enforce them): ruff, mypy and the import-linter contracts, all
configured in pyproject.toml.

Each tool runs from the test environment as a subprocess and a failure shows
its own output. Each rule is also shown to bite: a scratch copy of the package
with one violation planted must fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's scripts (lint-imports has no `python -m`)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(cwd), NO_COLOR="1")
    try:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    except FileNotFoundError as exc:  # pragma: no cover - an incomplete environment
        pytest.fail(f"{args[0]} is not installed ({exc}); install the test extra: pip install -e '.[test]'")


def ruff(cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd)


def mypy(cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    # A cache of this run's own: nothing is left in the repository. (mypy checks
    # each cached module against its source, so the scratch copy may share it.)
    return run([sys.executable, "-m", "mypy", "--cache-dir", str(cache)], cwd)


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(BIN)) or "lint-imports"
    return run([exe, "--no-cache"], cwd)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


# -- the rules hold for the code as it is ------------------------------------------------


def test_ruff_passes():
    proc = ruff(REPO)
    assert proc.returncode == 0, output(proc)


def test_mypy_passes(mypy_cache):
    proc = mypy(REPO, mypy_cache)
    assert proc.returncode == 0, output(proc)
    # It looked at the core, not at nothing.
    checked = int(proc.stdout.rsplit(" in ", 1)[1].split()[0])
    assert checked >= 30, output(proc)


def test_import_contracts_are_kept():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, output(proc)
    assert "0 broken" in proc.stdout and "5 kept" in proc.stdout, output(proc)


# -- and each one bites ---------------------------------------------------------------------


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A copy of the package and its configuration, to plant violations in."""
    root = tmp_path / "scratch"
    shutil.copytree(REPO / "evr_desktop", root / "evr_desktop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def plant(path: Path, code: str) -> None:
    path.write_text(path.read_text("utf-8") + "\n\n" + code, "utf-8")


def test_ruff_catches_an_unused_import(scratch):
    plant(scratch / "evr_desktop" / "domain" / "officer.py", "def f() -> None:\n    import json\n")
    proc = ruff(scratch)
    assert proc.returncode == 1 and "F401" in proc.stdout, output(proc)


def test_mypy_catches_a_type_error_and_a_missing_annotation(scratch, mypy_cache):
    plant(scratch / "evr_desktop" / "domain" / "officer.py", 'def f() -> int:\n    return "one"\n')
    plant(scratch / "evr_desktop" / "store" / "base.py", "def g(x):\n    return x\n")
    proc = mypy(scratch, mypy_cache)
    assert proc.returncode == 1, output(proc)
    assert "officer.py" in proc.stdout and "Incompatible return value type" in proc.stdout, output(proc)
    assert "base.py" in proc.stdout and "no-untyped-def" in proc.stdout, output(proc)


def test_lint_imports_catches_qt_outside_ui_and_a_reversed_layer(scratch):
    plant(scratch / "evr_desktop" / "domain" / "officer.py", "def f() -> None:\n    from PySide6 import QtCore\n")
    plant(scratch / "evr_desktop" / "rendezvous" / "turn.py", "def g() -> None:\n    from ..call import ice\n")
    proc = lint_imports(scratch)
    assert proc.returncode == 1, output(proc)
    for broken in (
        "evr_desktop.domain.officer -> PySide6",  # Qt only in ui/
        "evr_desktop.rendezvous.turn -> evr_desktop.call.ice",  # the rendezvous and the call package
    ):
        assert broken in proc.stdout, output(proc)
    # Qt only in ui/, the rendezvous apart from the call package, the layers, no cycles.
    assert "1 kept, 4 broken" in proc.stdout, output(proc)


# -- the repository stands alone ------------------------------------------------------------


def test_code_tests_and_docs_cite_nothing_outside_the_repository():
    # The design and domain briefs are docs/design.md and docs/domain.md; test
    # data is in tests/data. (Spelt in two pieces so this file does not match.)
    outside = ("../" + "shared", "/work/" + "shared")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for folder in ("evr_desktop", "tests", "docs", "bench")
        for path in sorted((REPO / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".md", ".js", ".html", ".toml", ".txt"}
        for n, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), start=1)
        if any(o in line for o in outside)
    ]
    assert offenders == []
