"""Export evidence from the window, as an officer does it (issue 12, item 3):
the appointment's Export evidence button, a folder picked, a progress bar,
the bundle checked and the result said; and Cancel mid-way leaves nothing."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QProgressDialog

from evr_desktop.evidence import bundle as bundle_module
from evr_desktop.evidence.verify import verify_bundle
from tests.e2e.test_evidence_export import _case
from tests.ui.test_call_flow import select

pytestmark = pytest.mark.slow


def _prepare(qtbot, main, tmp_path: Path, monkeypatch, form: str = "folder") -> tuple[object, Path]:
    a = _case(main.session, tmp_path)
    main.queue.upsert(main.session.store.get(a.id))
    main.queue.day_enabled.setChecked(False)
    select(main, a.id)
    dest = tmp_path / "case-file"
    dest.mkdir()
    monkeypatch.setattr("evr_desktop.ui.export_flow.choose_folder", lambda _parent: str(dest))
    monkeypatch.setattr("evr_desktop.ui.export_flow.choose_format", lambda _parent: form)
    return a, dest


def test_the_officer_exports_and_sees_it_verified(qtbot, unlocked, tmp_path, monkeypatch):
    main = unlocked
    _a, dest = _prepare(qtbot, main, tmp_path, monkeypatch)
    # the media process makes the recording's working copy before the export
    qtbot.waitUntil(lambda: main.calls.embedded is not None and main.calls.embedded.engine.running, timeout=20000)
    assert main.queue.detail.export_button.isEnabled()
    qtbot.mouseClick(main.queue.detail.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.window.findChild(QMessageBox, "exportDone") is not None, timeout=30000)
    box = main.window.findChild(QMessageBox, "exportDone")
    assert "exported and checked" in box.text(), box.text()
    bundles = list(dest.iterdir())
    assert len(bundles) == 1 and verify_bundle(bundles[0], main.session.vault.header.force_ca_pem.encode()).ok
    assert any(e.action == "evidence.export" for e in main.session.audit.entries())
    copy = next(bundles[0].glob("recordings/*/working-copy.mp4"))
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                            str(copy)], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.split() == ["h264", "aac"], probe.stdout + probe.stderr
    keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
    if keep:  # for a person to look at: the queue with the button, and the result
        main.window.resize(1366, 768)
        qtbot.wait(300)
        main.window.grab().save(os.path.join(keep, "export-done.png"))
        box.grab().save(os.path.join(keep, "export-done-box.png"))
    box.close()


def test_cancel_mid_way_leaves_nothing_behind(qtbot, unlocked, tmp_path, monkeypatch):
    main = unlocked
    _a, dest = _prepare(qtbot, main, tmp_path, monkeypatch)
    real = bundle_module._read_chunks

    def slow(source):  # noqa: ANN001 - a slow disk, so that there is time to press Cancel
        for chunk in real(source):
            time.sleep(0.3)
            yield chunk

    monkeypatch.setattr(bundle_module, "_read_chunks", slow)
    qtbot.mouseClick(main.queue.detail.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.window.findChild(QProgressDialog, "exportProgress") is not None
                    and main.window.findChild(QProgressDialog, "exportProgress").isVisible(), timeout=10000)
    progress = main.window.findChild(QProgressDialog, "exportProgress")
    cancel = next(b for b in progress.findChildren(type(main.queue.detail.export_button)) if b.text() == "Cancel")
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in main.window.statusBar().currentMessage(), timeout=20000)
    assert list(dest.iterdir()) == []
    assert not any(e.action == "evidence.export" for e in main.session.audit.entries())


def test_where_the_force_allows_a_decrypted_copy_and_removing_the_laptops_copy(qtbot, unlocked, tmp_path,
                                                                               monkeypatch):
    from dataclasses import replace

    main = unlocked
    a, dest = _prepare(qtbot, main, tmp_path, monkeypatch)
    main.session.settings = replace(main.session.settings, allow_decrypted_export=True,
                                    allow_remove_after_export=True)
    monkeypatch.setattr("evr_desktop.ui.export_flow.ask_decrypted_reason", lambda _p: "Requested by the CPS")
    monkeypatch.setattr("evr_desktop.ui.export_flow.confirm_remove", lambda _p: True)
    qtbot.waitUntil(lambda: main.calls.embedded is not None and main.calls.embedded.engine.running, timeout=20000)
    qtbot.mouseClick(main.queue.detail.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.window.findChild(QMessageBox, "exportDone") is not None, timeout=30000)
    bundle = next(dest.iterdir())
    assert next(bundle.glob("recordings/*/decrypted-original.mkv")).stat().st_size > 0
    box = main.window.findChild(QMessageBox, "exportDone")
    remove = next(b for b in box.buttons() if b.objectName() == "removeAfterExport")
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "was removed" in main.window.statusBar().currentMessage(), timeout=10000)
    assert not any((main.workspace.paths.recordings / a.id).iterdir())


def test_the_format_question_and_a_zip_export_verified_and_removed_from(qtbot, unlocked, tmp_path, monkeypatch):
    """The real question box (folder or zip, Cancel), then the officer's whole
    zip export: one .zip in the folder picked, checked, and the laptop's copy
    removed against it."""
    from dataclasses import replace

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QDialog, QPushButton

    from evr_desktop.ui.export_flow import choose_format

    main = unlocked
    monkeypatch.setattr(QMessageBox, "exec", lambda box: QDialog.exec(box))  # this box is answered below

    def answer(name: str) -> None:
        def click() -> None:
            box = next((b for b in main.window.findChildren(QMessageBox, "exportFormat") if b.isVisible()), None)
            if box is None:
                QTimer.singleShot(20, click)
                return
            keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
            if keep:
                box.grab().save(os.path.join(keep, "export-format.png"))
            if name == "cancel":
                box.button(QMessageBox.StandardButton.Cancel).click()
            else:
                box.findChild(QPushButton, name).click()

        QTimer.singleShot(0, click)

    for name, expected in (("exportAsZip", "zip"), ("exportAsFolder", "folder"), ("cancel", None)):
        answer(name)
        assert choose_format(main.window) == expected

    a, dest = _prepare(qtbot, main, tmp_path, monkeypatch, form="zip")
    main.session.settings = replace(main.session.settings, allow_remove_after_export=True)
    monkeypatch.setattr("evr_desktop.ui.export_flow.confirm_remove", lambda _p: True)
    qtbot.waitUntil(lambda: main.calls.embedded is not None and main.calls.embedded.engine.running, timeout=20000)
    qtbot.mouseClick(main.queue.detail.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.window.findChild(QMessageBox, "exportDone") is not None, timeout=30000)
    box = main.window.findChild(QMessageBox, "exportDone")
    assert "exported and checked" in box.text(), box.text()
    made = list(dest.iterdir())
    assert len(made) == 1 and made[0].suffix == ".zip" and made[0].name in box.text()
    remove = next(b for b in box.buttons() if b.objectName() == "removeAfterExport")
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "was removed" in main.window.statusBar().currentMessage(), timeout=10000)
    assert not any((main.workspace.paths.recordings / a.id).iterdir())
