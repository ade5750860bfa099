"""The appointment's recordings and the player window, in the real app: the
Recordings… button lists them (finalised, damaged), Play opens the player,
which the media process feeds (pictures, chat with times, seeking); a damaged
recording is refused in plain words, and nothing crashes (issue 10 item 9)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from evr_desktop.recording.library import DAMAGED, FINALISED
from evr_desktop.ui.player_window import PlayerWindow
from evr_desktop.ui.recordings_dialog import RecordingsDialog
from tests.unit.test_player import make_recording

pytestmark = pytest.mark.slow


def _recordings_dialog(main) -> RecordingsDialog:
    return next(d for d in main._dialogs if isinstance(d, RecordingsDialog))


def _player(main) -> PlayerWindow:
    return next(d for d in main._dialogs if isinstance(d, PlayerWindow))


def test_recordings_list_and_the_player(qtbot, unlocked):
    main = unlocked
    session = main.session
    qtbot.waitUntil(lambda: main.calls.ready, timeout=60000)
    queue = main.queue
    queue.table.selectRow(0)
    a = queue.selected()
    assert a is not None
    header = session.vault.header
    root = session.recordings / a.id
    make_recording(root / "beef0001", recipients=(header.age_recipient, header.escrow_recipient))
    damaged = root / "beef0002"
    make_recording(damaged, recipients=(header.age_recipient, header.escrow_recipient))
    seg = sorted(damaged.glob("seg-*.age"))[1]
    blob = bytearray(seg.read_bytes())
    blob[-40] ^= 1
    seg.write_bytes(bytes(blob))

    qtbot.mouseClick(queue.detail.recordings_button, Qt.MouseButton.LeftButton)
    dialog = _recordings_dialog(main)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 2, timeout=20000)
    states = {r.folder.name: r for r in dialog.model.items}
    assert states["beef0001"].state == FINALISED and states["beef0002"].state == DAMAGED
    texts = [dialog.model.index(row, 3).data() for row in range(2)]
    assert "Finalised" in texts and any(t.startswith("Damaged: it cannot be read: segment 2") for t in texts)
    # The damaged one cannot be played; the good one can.
    row = [r.folder.name for r in dialog.model.items].index("beef0002")
    dialog.table.selectRow(row)
    assert not dialog.play_button.isEnabled()
    dialog.table.selectRow(1 - row)
    assert dialog.play_button.isEnabled()
    qtbot.mouseClick(dialog.play_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: any(isinstance(d, PlayerWindow) for d in main._dialogs), timeout=20000)
    player = _player(main)
    qtbot.waitUntil(lambda: player.opened or player.error_label.isVisible(), timeout=30000)
    assert player.opened, player.error_label.text()
    assert player.state_label.text().startswith("Finalised")
    assert player.chat.count() == 2 and "Victim: first line" in player.chat.item(0).text()
    qtbot.waitUntil(lambda: player.frames_painted > 5 and player.position > 1.5, timeout=30000)
    assert player.picture.pixmap() is not None and not player.picture.pixmap().isNull()
    assert player.chat.item(0).font().bold() and not player.chat.item(1).font().bold()  # 1.0 s passed, 5.5 s not
    actions = [e.action for e in session.audit.entries() if e.object_id == a.id]
    assert "recording.viewed" in actions and "recording.viewed.beef0001" in actions

    qtbot.mouseClick(player.play_button, Qt.MouseButton.LeftButton)  # pause
    qtbot.waitUntil(lambda: not player.playing, timeout=10000)
    player.last_status = None
    player.seek(6.0)
    # Where the media process says the seek landed (the window's own guess is not enough).
    qtbot.waitUntil(lambda: (player.last_status or {}).get("state") == "paused", timeout=10000)
    assert 6.0 - 0.001 <= player.last_status["position"] < 6.1
    assert player.chat.item(1).font().bold()
    assert player.time_label.text() == "0:06 / 0:08"
    # Locking closes the player with the other dialogs: a locked app shows nothing.
    main.lock()
    qtbot.waitUntil(lambda: not player.isVisible(), timeout=10000)


def test_a_recording_damaged_after_listing_is_refused_in_the_window_not_a_crash(qtbot, unlocked):
    main = unlocked
    session = main.session
    qtbot.waitUntil(lambda: main.calls.ready, timeout=60000)
    main.queue.table.selectRow(0)
    a = main.queue.selected()
    header = session.vault.header
    folder = session.recordings / a.id / "beef0003"
    make_recording(folder, recipients=(header.age_recipient, header.escrow_recipient))
    plan = session.open_recording(a.id, "beef0003")
    seg = folder / plan.segments[1].file  # damaged between the check and the playback
    blob = bytearray(seg.read_bytes())
    blob[len(blob) // 2] ^= 1
    seg.write_bytes(bytes(blob))
    player = PlayerWindow(main.calls.embedded.engine, plan, a.urn)
    qtbot.addWidget(player)
    player.show()
    player.start()
    qtbot.waitUntil(lambda: player.error_label.isVisible(), timeout=30000)
    assert player.error_label.text().startswith("This recording cannot be played: segment 2 (seg-000002.age) "
                                                "cannot be decrypted")
    assert not player.opened and not player.play_button.isEnabled()
    assert main.calls.ready  # the media process goes on
    player.close()
