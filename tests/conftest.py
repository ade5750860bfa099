"""Shared fixtures. Every test runs on its own temporary profile; Qt runs
offscreen (Picard's conftest does the same)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")

from evr_desktop.config import Paths  # noqa: E402
from evr_desktop.domain.officer import OfficerIdentity  # noqa: E402
from evr_desktop.services import Workspace  # noqa: E402
from evr_desktop.vault.kdf import MIN_MEMORY_KIB, KdfParams  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "correct horse battery staple 42"
OFFICER = OfficerIdentity("PC Imogen Testwright", "TW 9001", "Testshire Police", "Testford")


def fast_kdf() -> KdfParams:
    """The cheapest parameters the vault accepts: tests do not need 0.5 s unlocks."""
    return KdfParams(salt=os.urandom(16), memory_kib=MIN_MEMORY_KIB, iterations=1)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(profile=tmp_path / "profile", demo=True)


@pytest.fixture
def workspace(paths: Paths) -> Workspace:
    ws = Workspace(paths, make_kdf=fast_kdf)
    ws.start()
    return ws


@pytest.fixture
def session(workspace: Workspace):
    s = workspace.create(OFFICER, PASSPHRASE, with_demo_data=False)
    yield s
    try:
        s.lock()
    except Exception:
        pass


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """Put the process's logging back as it was: ``evr_desktop.logs.configure``
    (which the command line's ``main()`` calls) replaces the root handler, and a
    handler left on a closed capture stream would break every later test's logs."""
    from evr_desktop.logs import NOISY

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in NOISY})
    try:
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    with logging_kept():
        yield
