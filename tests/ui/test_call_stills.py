"""Stills through the real window and the real media process (issue 10,
item 8): an aiortc victim sends 1280x720; "Capture still" and its shortcut
each take the victim's frame at that size as an exhibit (DO/1, DO/2: the
demo profile's officer); the window says so, the docked
statement panel lists them, the encrypted PNGs are in the recording's
``stills/`` folder and Debian's ``age`` opens them with the force escrow
identity; the manifest lists them when the call ends and the audit log
holds them. A still that cannot be written is said in red, audited, and the
call goes on. When the victim's video stops, the button goes off.
Reopening the statement lists the stills again (from the store).

``EVR_STILL_SCREENSHOT=/some/file.png`` saves the screen with the stills
listed, and ``/some/file-error.png`` with the failed one (run under Xvfb at
1366x768 with ``QT_QPA_PLATFORM=xcb`` to look at them)."""

from __future__ import annotations

import os
import subprocess

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

import tests.e2e.test_call_engine as call_engine_tests
from evr_desktop.capture.synthetic import SyntheticVideoSource
from evr_desktop.domain.exhibit import initials
from evr_desktop.recording.manifest import MANIFEST_FILE
from tests.ui.test_call_flow import on_loop
from tests.ui.test_call_flow import victim_loop as victim_loop  # the fixture
from tests.ui.test_call_recording import _actions, _call, _escrow_key

pytestmark = pytest.mark.slow


@pytest.fixture
def victim_at_720p(monkeypatch):
    """The test victim's camera at 1280x720 (the stock one sends 320x240)."""
    monkeypatch.setattr(call_engine_tests, "SyntheticVideoSource",
                        lambda _w, _h, fps: SyntheticVideoSource(1280, 720, fps))


def _decrypted_png(main, path) -> np.ndarray:
    png = subprocess.run(["age", "-d", "-i", str(_escrow_key(main)), str(path)], capture_output=True, timeout=30,
                         check=True).stdout
    assert png.startswith(b"\x89PNG")
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


def test_capture_still_by_button_and_shortcut_lists_and_stores_the_exhibit(qtbot, unlocked, victim_loop,
                                                                          victim_at_720p, monkeypatch):
    main = unlocked
    main.window.resize(1366, 768)
    me = initials(main.session.officer.name)
    a, victim, http = _call(qtbot, main, victim_loop, "99VC1234540")
    screen = main.calls.screen
    try:
        assert not screen.still_button.isEnabled()  # no victim video yet
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=20000)
        qtbot.waitUntil(lambda: screen.recording.isVisible(), timeout=10000)
        qtbot.waitUntil(lambda: screen.still_button.isEnabled(), timeout=10000)
        qtbot.waitUntil(lambda: main.calls.host.statement_screen() is not None
                        and main.calls.host.statement_screen().opened is not None, timeout=10000)
        statement = main.calls.host.statement_screen()
        assert not statement.panel.stills_list.isVisible()  # none yet
        # The victim's video is at 1280x720 by now (the encoder may start smaller).
        qtbot.waitUntil(lambda: (f := screen.engine.latest_remote_bgra(a.id)) is not None
                        and f.shape[:2] == (720, 1280), timeout=15000)

        qtbot.mouseClick(screen.still_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: screen.still_note.text().startswith(f"Still {me}/1 captured at "), timeout=15000)
        assert "#1b5e20" in screen.still_note.styleSheet()
        qtbot.waitUntil(lambda: statement.panel.stills_list.count() == 1, timeout=5000)

        screen.activateWindow()
        screen.setFocus()
        qtbot.wait(300)  # the button re-enables once the first still is recorded
        qtbot.waitUntil(lambda: screen.still_button.isEnabled(), timeout=5000)
        qtbot.keyClick(screen, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        qtbot.waitUntil(lambda: screen.still_note.text().startswith(f"Still {me}/2 captured at "), timeout=15000)
        qtbot.waitUntil(lambda: statement.panel.stills_list.count() == 2, timeout=5000)
        lines = statement.panel.still_lines()
        assert lines[0].startswith(f"{me}/1 · 00:") and " in the recording · 1280×720 · " in lines[0], lines
        assert lines[1].startswith(f"{me}/2 · ")
        assert statement.panel.stills_list.isVisible()

        shot = os.environ.get("EVR_STILL_SCREENSHOT")
        if shot:
            QApplication.processEvents()
            qtbot.wait(500)
            main.window.screen().grabWindow(0).save(shot)

        # A still that cannot be written: said in red, audited, the call goes on.
        stills_dir = next((main.workspace.paths.recordings / a.id).iterdir()) / "stills"
        blocked = stills_dir.with_name("stills-kept")
        stills_dir.rename(blocked)
        stills_dir.write_bytes(b"not a folder")
        qtbot.mouseClick(screen.still_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: screen.still_note.text().startswith(f"No still {me}/3: "), timeout=15000)
        assert "could not be written" in screen.still_note.text() and "#a4161a" in screen.still_note.styleSheet()
        if shot:
            qtbot.wait(300)
            main.window.screen().grabWindow(0).save(shot.replace(".png", "-error.png"))
        qtbot.waitUntil(lambda: "still.failed.write_error" in _actions(main, a.id), timeout=5000)
        assert screen.appointment == a.id and statement.panel.stills_list.count() == 2
        stills_dir.unlink()
        blocked.rename(stills_dir)

        # The victim's video stops (their camera off): no still of an old picture.
        victim_loop.call_soon_threadsafe(victim.tracks[0].stop)
        qtbot.waitUntil(lambda: not screen.still_button.isEnabled(), timeout=15000)
        screen.request_still()  # the shortcut's slot: nothing happens
        assert not screen.still_note.text().startswith("Taking")

        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any(x.startswith("recording.end.duration_ms") for x in _actions(main, a.id)),
                        timeout=15000)
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())

    folder = next((main.workspace.paths.recordings / a.id).iterdir())
    files = sorted((folder / "stills").iterdir())
    assert [p.name for p in files] == ["still-0001.png.age", "still-0002.png.age"]
    for path in files:
        assert (path.stat().st_mode & 0o777) == 0o600 and b"\x89PNG" not in path.read_bytes()
        image = _decrypted_png(main, path)
        assert image.shape == (720, 1280, 3)  # the frame as received, full size
    # The stills in the session's store, the manifest and the audit log agree.
    records = main.session.list_stills(a.id)
    assert [r.exhibit for r in records] == [f"{me}/1", f"{me}/2"]
    manifest = subprocess.run(["age", "-d", "-i", str(_escrow_key(main)), str(folder / MANIFEST_FILE)],
                              capture_output=True, timeout=30, check=True).stdout.decode()
    for r in records:
        assert r.ciphertext_sha256 in manifest and f'"exhibit": "{r.exhibit}"' in manifest
    actions = _actions(main, a.id)
    assert "still.captured.exhibit_no.1" in actions and "still.captured.exhibit_no.2" in actions
    assert f"still.captured.sha256_1.{records[0].ciphertext_sha256[:32]}" in actions
    assert "still.failed.exhibit_no.3" in actions  # the number stays spent

    # Reopened later, the statement lists the call's stills again (from the store).
    statement = main.calls.host.statement_screen()
    statement.clear()
    assert statement.panel.stills_list.count() == 0
    main.open_statement(a.id)
    qtbot.waitUntil(lambda: statement.opened is not None and statement.panel.stills_list.count() == 2, timeout=10000)
    assert statement.panel.still_lines()[0].startswith(f"{me}/1 · ")
