"""The layering rules of docs/design.md, enforced."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "evr_desktop"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):  # walk: imports inside functions count too
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module)
            else:
                names.add("." * node.level + (node.module or ""))
    return names


def modules_outside(folder: str) -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if folder not in p.relative_to(PACKAGE).parts]


def test_only_ui_imports_pyside6():
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(n for n in imports_of(p) if n.split(".")[0] in {"PySide6", "shiboken6"})
        for p in modules_outside("ui")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"Qt imported outside evr_desktop/ui/: {offenders}"
    assert len(modules_outside("ui")) > 10  # the rule looked at real code


def test_the_check_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from PySide6.QtCore import QObject\n")
    assert "PySide6.QtCore" in imports_of(bad)


def test_domain_imports_nothing_of_the_project_outside_domain():
    for p in (PACKAGE / "domain").rglob("*.py"):
        for name in imports_of(p):
            assert not name.startswith(("evr_desktop", "..")), f"{p.name} imports {name}"


def test_the_gui_side_of_the_media_process_imports_no_engine():
    """proxy, channel and frames run in the GUI's process: no codec, aiortc,
    capture or engine module, even inside a function (issue 9; the runtime
    check is tests/ui/test_media_imports.py)."""
    banned = ("aiortc", "aioice", "av", "cv2", "sounddevice", "aiohttp")
    for name in ("proxy.py", "channel.py", "frames.py"):
        names = imports_of(PACKAGE / "media" / name)
        bad = sorted(n for n in names if n.split(".")[0] in banned
                     or n.lstrip(".").startswith(("call.engine", "call.embedded", "capture", "child")))
        assert bad == [], f"media/{name} imports {bad}"
