"""Composition root: builds the services and hands them to the UI."""

from __future__ import annotations

from .config import Paths
from .services import Workspace


def run_gui(paths: Paths, passphrase: str | None = None) -> int:
    workspace = Workspace(paths)  # cheap: start() does the reading, off the GUI thread
    from .ui.application import run

    return run(workspace, passphrase)
