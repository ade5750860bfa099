"""The call's recording through the real window and the real media process
(issue 10): an aiortc victim is called for ~5 s; the call window shows the red
"Recording" indicator; the appointment's recording folder holds age segments
and a manifest that Debian's ``age`` decrypts with the (demo) force escrow
identity, and ffprobe finds four streams; the audit log holds recording.start
and the end with the manifest's hash. And the failure path: a recordings
folder that cannot be written gives the loud warning, the officer's choice,
and the audit entries."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from evr_desktop.domain.appointment import OffenceType, Status
from evr_desktop.domain.recording import manifest_sha256_from
from evr_desktop.recording.manifest import MANIFEST_FILE, START_FILE
from tests.e2e.test_call_engine import Victim
from tests.ui.test_call_flow import _session, book_and_send_link, on_loop, select
from tests.ui.test_call_flow import victim_loop as victim_loop  # the fixture

pytestmark = pytest.mark.slow


def _escrow_key(main) -> Path:
    return main.workspace.paths.evidence_office / "escrow-identity-DEMO.txt"


def _call(qtbot, main, victim_loop, urn: str):
    a = book_and_send_link(qtbot, main, "Rhiannon Invented-Recorded", "07700 900555", urn, OffenceType.ASSAULT)
    base, token = main.calls.links[a.id].split("/j/")
    http = on_loop(victim_loop, _session())
    victim = Victim(base, http)
    on_loop(victim_loop, victim.join(token))
    qtbot.waitUntil(lambda: main.session.store.get(a.id).status is Status.VICTIM_WAITING, timeout=10000)
    qtbot.waitUntil(lambda: any(main.queue.model.appointment(r).id == a.id
                                and main.queue.model.appointment(r).status is Status.VICTIM_WAITING
                                for r in range(main.queue.model.rowCount())), timeout=5000)
    select(main, a.id)
    qtbot.mouseClick(main.queue.detail.call_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.calls.screen is not None and main.calls.screen.appointment == a.id, timeout=10000)
    return a, victim, http


def _actions(main, appointment_id: str) -> list[str]:
    return [e.action for e in main.session.audit.entries() if e.object_id == appointment_id]


def test_a_call_is_recorded_encrypted_and_audited(qtbot, unlocked, victim_loop, monkeypatch, tmp_path):
    main = unlocked
    monkeypatch.setattr("evr_desktop.ui.call_controller.WORKING_COPY_DELAY_MS", 100)
    a, victim, http = _call(qtbot, main, victim_loop, "99VC1234527")
    screen = main.calls.screen
    try:
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=20000)
        qtbot.waitUntil(lambda: screen.recording.isVisible() and "Recording" in screen.recording.text(),
                        timeout=10000)
        assert screen.recording.text().startswith("● Recording 00:")
        qtbot.waitUntil(lambda: victim.recording[-1:] == ["on"], timeout=5000)  # the page shows it too
        qtbot.waitUntil(lambda: "recording.start" in _actions(main, a.id), timeout=5000)
        screen.chat_input.setText("Recorded line from the officer")
        screen.send_chat()
        started = time.monotonic()
        qtbot.waitUntil(lambda: screen.recording.text() >= "● Recording 00:03", timeout=10000)
        qtbot.wait(max(0, int((5.0 - (time.monotonic() - started)) * 1000)))
        assert not screen.warnings.isVisible() or "Recording stopped" not in screen.warnings.text()
        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any(x.startswith("recording.end.") for x in _actions(main, a.id)), timeout=15000)
        qtbot.waitUntil(lambda: any(x.startswith("recording.end.duration_ms") for x in _actions(main, a.id)),
                        timeout=5000)
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())
    assert not screen.recording.isVisible()
    actions = _actions(main, a.id)
    assert "recording.end.finalised" in actions
    folders = [p for p in (main.workspace.paths.recordings / a.id).iterdir() if p.is_dir()]
    assert len(folders) == 1
    folder = folders[0]
    segments = sorted(folder.glob("seg-*.age"))
    assert len(segments) >= 3 and (folder / MANIFEST_FILE).exists() and (folder / START_FILE).exists()
    # The audit log holds the manifest's hash as stored.
    assert manifest_sha256_from(actions) == hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
    duration = int(next(x for x in actions if x.startswith("recording.end.duration_ms.")).rsplit(".", 1)[1])
    assert 3000 <= duration <= 12000
    # Debian's age, with the force escrow identity: the manifest, then each segment in order.
    key = _escrow_key(main)
    manifest = subprocess.run(["age", "-d", "-i", str(key), str(folder / MANIFEST_FILE)], capture_output=True,
                              timeout=30, check=True).stdout
    assert b"evr-recording-manifest/1" in manifest
    mkv = tmp_path / "call.mkv"
    with open(mkv, "wb") as out:
        for seg in segments:
            out.write(subprocess.run(["age", "-d", "-i", str(key), str(seg)], capture_output=True, timeout=30,
                                     check=True).stdout)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of",
                            "csv=p=0", str(mkv)], capture_output=True, text=True, timeout=60, check=True).stdout
    streams = [line for line in probe.splitlines() if line.strip()]
    kinds = [s.split(",")[-1] for s in streams]
    assert kinds.count("video") == 2 and kinds.count("audio") == 2, probe
    # The officer's chat line is in the recording's subtitle track; nothing of it in plaintext on disk.
    subs = subprocess.run(["ffmpeg", "-v", "error", "-i", str(mkv), "-map", "0:s", "-f", "srt", "-"],
                          capture_output=True, text=True, timeout=60).stdout
    assert "Officer: Recorded line from the officer" in subs
    # After the call the media process makes the working copy and the chat, encrypted as written.
    qtbot.waitUntil(lambda: (folder / "working-copy.mp4.age").is_file() and (folder / "chat.json.age").is_file(),
                    timeout=30000)
    copy = subprocess.run(["age", "-d", "-i", str(key), str(folder / "working-copy.mp4.age")], capture_output=True,
                          timeout=30, check=True).stdout
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                            "-i", "pipe:0"], input=copy, capture_output=True, timeout=60, check=True).stdout
    assert probe.split() == [b"h264", b"aac"], probe
    chat = subprocess.run(["age", "-d", "-i", str(key), str(folder / "chat.json.age")], capture_output=True,
                          timeout=30, check=True).stdout
    assert b"Officer: Recorded line from the officer" in chat
    for p in folder.rglob("*"):
        if p.is_file():
            assert b"Recorded line" not in p.read_bytes() and b"ftyp" not in p.read_bytes()[:64], p


def test_a_recording_that_cannot_start_warns_and_the_officer_chooses(qtbot, unlocked, victim_loop):
    main = unlocked
    # The appointment's recordings folder cannot be made: a file stands where it would go.
    calls = main.calls
    original = calls._start_recording

    def blocked(appointment_id, plan):
        root = main.workspace.paths.recordings
        (root / appointment_id).rmdir()  # made (empty) by the plan; a file in its place now
        (root / appointment_id).write_bytes(b"not a folder")
        original(appointment_id, plan)

    calls._start_recording = blocked
    a, victim, http = _call(qtbot, main, victim_loop, "99VC1234528")
    screen = main.calls.screen
    try:
        qtbot.waitUntil(lambda: screen.warnings.isVisible() and "Recording stopped" in screen.warnings.text(),
                        timeout=10000)
        assert screen.warnings.text().startswith("⚠ Recording stopped: the recordings folder could not be written. "
                                          "The call can go on; what was recorded so far is kept.")
        assert "#a4161a" in screen.warnings.styleSheet()  # loud
        assert not screen.recording.isVisible()
        qtbot.waitUntil(lambda: main.calls.recording_box is not None and main.calls.recording_box.isVisible(),
                        timeout=5000)
        box = main.calls.recording_box
        go_on = box.findChild(object, "recordingContinue")
        end = box.findChild(object, "recordingEndCall")
        assert go_on is not None and end is not None
        qtbot.waitUntil(lambda: "recording.failed" in _actions(main, a.id), timeout=5000)
        # The officer decides to end the call: audited, and the call ends without a second question.
        qtbot.mouseClick(end, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "recording.end_call" in _actions(main, a.id), timeout=5000)
        qtbot.waitUntil(lambda: screen.appointment is None, timeout=5000)
        qtbot.waitUntil(lambda: any(m["type"] == "bye" for m in victim.messages), timeout=10000)
        assert "recording.start" not in _actions(main, a.id)
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())


def test_locking_mid_call_still_audits_the_recordings_end(qtbot, unlocked, victim_loop, monkeypatch):
    """Locking ends the call; the recording's end arrives after the lock and is still audited."""
    main = unlocked
    a, victim, http = _call(qtbot, main, victim_loop, "99VC1234529")
    screen = main.calls.screen
    audit = main.workspace.audit
    try:
        qtbot.waitUntil(lambda: screen.recording.isVisible(), timeout=20000)
        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        main.lock()
        qtbot.waitUntil(lambda: main.session is None, timeout=5000)
        qtbot.waitUntil(lambda: any(e.object_id == a.id and e.action.startswith("recording.end.duration_ms")
                                    for e in audit.entries()), timeout=15000)
        actions = [e.action for e in audit.entries() if e.object_id == a.id]
        assert "recording.start" in actions and manifest_sha256_from(actions) is not None
    finally:
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())


def test_the_officer_may_go_on_without_recording(qtbot, unlocked, victim_loop):
    main = unlocked
    calls = main.calls
    original = calls._start_recording

    def blocked(appointment_id, plan):
        original(appointment_id, RuntimeError("no recipients in this test"))

    calls._start_recording = blocked
    a, victim, http = _call(qtbot, main, victim_loop, "99VC1234530")
    screen = main.calls.screen
    try:
        qtbot.waitUntil(lambda: calls.recording_box is not None and calls.recording_box.isVisible(), timeout=10000)
        assert "no recipients in this test" in screen.warnings.text()
        qtbot.mouseClick(calls.recording_box.findChild(object, "recordingContinue"), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "recording.continue_without" in _actions(main, a.id), timeout=5000)
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=20000)
        assert screen.appointment == a.id  # the call goes on
        assert not screen.recording.isVisible()
        assert "on" not in victim.recording  # the phone never claims a recording that isn't made
    finally:
        if screen.appointment is not None:
            screen.end_call()
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())


def test_a_full_disk_mid_call_warns_loudly_and_the_call_goes_on(qtbot, unlocked, victim_loop):
    """The appointment's recordings folder is a 1 MiB tmpfs: the recording fills it
    mid-call; the window says so, the officer goes on, the end is audited unfinalised."""
    main = unlocked
    calls = main.calls
    original = calls._start_recording
    mounted: list[Path] = []

    def small_disk(appointment_id, plan):
        target = main.workspace.paths.recordings / appointment_id
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            mounted.append(target)
        original(appointment_id, plan)

    calls._start_recording = small_disk
    a, victim, http = _call(qtbot, main, victim_loop, "99VC1234531")
    screen = main.calls.screen
    try:
        if not mounted:
            pytest.skip("cannot mount a size-limited tmpfs here (needs root)")
        qtbot.waitUntil(lambda: calls.recording_box is not None and calls.recording_box.isVisible(), timeout=40000)
        assert "Recording stopped: No space left on device" in screen.warnings.text()
        assert not screen.recording.isVisible()
        qtbot.waitUntil(lambda: victim.recording[-2:] == ["on", "off"], timeout=5000)  # the phone's goes too
        qtbot.mouseClick(calls.recording_box.findChild(object, "recordingContinue"), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "recording.continue_without" in _actions(main, a.id), timeout=5000)
        assert screen.appointment == a.id  # the call goes on
        actions = _actions(main, a.id)
        assert actions.index("recording.start") < actions.index("recording.failed")
        screen.end_call()
        qtbot.waitUntil(lambda: "recording.end.unfinalised" in _actions(main, a.id), timeout=15000)
    finally:
        if screen.appointment is not None:
            screen.end_call()
        on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())
        qtbot.wait(500)
        for target in mounted:
            subprocess.run(["umount", "-l", str(target)], check=False)
