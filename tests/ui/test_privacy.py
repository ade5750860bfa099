"""No victim data in plaintext on disk: after appointments are typed in and
the app is locked, not one byte of them is anywhere under the profile, the
demo evidence office, or the temp, cache, config and home folders the process
used."""

from __future__ import annotations

import tempfile

import pytest
from PySide6.QtCore import QDate, Qt

from tests.ui.conftest import set_up
from tests.ui.test_queue_ui import open_new_dialog

PEOPLE = [
    ("Zebedee Quillfeather-Amani", "07700 900861", "Xylophone-garden key under the blue urn"),
    ("Ottoline Brackenridge-Soyinka", "07700 900862", "Quokka tattoo on left wrist; works nights"),
]


def variants(text: str) -> set[bytes]:
    out = set()
    for t in {text, text.replace(" ", ""), text.lower(), text.upper()}:
        out |= {t.encode("utf-8"), t.encode("utf-16-le"), t.encode("utf-16-be")}
    return out


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    for name in ("TMPDIR", "HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        folder = tmp_path / f"env-{name.lower()}"
        folder.mkdir(mode=0o700)
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "env-tmpdir"))
    return tmp_path


def test_nothing_typed_in_is_on_disk_after_lock(qtbot, isolated_env, app_window):
    main = app_window
    set_up(qtbot, main)
    for name, mobile, notes in PEOPLE:
        d = open_new_dialog(qtbot, main)
        d.urn.clear()
        qtbot.keyClicks(d.urn, "99PV1234526")
        qtbot.keyClicks(d.name, name)
        qtbot.keyClicks(d.mobile, mobile)
        qtbot.keyClicks(d.notes, notes)
        d.slot.setDate(QDate.currentDate())
        qtbot.mouseClick(d.buttons.button(d.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda d=d: not d.isVisible(), timeout=5000)
    assert main.session.store.count() == 14
    # View one (consultation is audited), then lock.
    main.queue.search.setText("Quillfeather")
    main.queue.table.selectRow(0)
    assert main.queue.detail.title.text() == PEOPLE[0][0]
    main.lock()
    qtbot.waitUntil(lambda: main.worker.pending == 0, timeout=5000)

    files = [p for p in isolated_env.rglob("*") if p.is_file()]
    assert any(p.name == "store.sqlite3" for p in files) and any(p.name == "audit.log" for p in files)
    needles = set()
    for person in PEOPLE:
        for part in person:
            needles |= variants(part)
        needles |= variants(person[1].replace(" ", "")[1:])  # 7700900861, as digits only
        needles |= variants(person[0].split()[0])  # the first name alone
    # Positive control: the scan does see plaintext that is allowed on disk
    # (the officer's collar number in the vault's public header).
    assert any(b"DEMO 4127" in p.read_bytes() for p in files)
    found = {(str(p.relative_to(isolated_env)), n) for p in files for n in needles if n in p.read_bytes()}
    assert found == set()
