"""Where the app's shipped resources (``resources/``) are, from source or frozen."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_dir(*parts: str) -> Path:
    """``resources/<parts>`` of the source tree, or of the PyInstaller bundle
    when frozen (build.spec puts ``resources/`` at the bundle's root)."""
    if getattr(sys, "frozen", False):
        root = Path(getattr(sys, "_MEIPASS")) / "resources"
    else:
        root = Path(__file__).resolve().parents[1] / "resources"
    return root.joinpath(*parts)
