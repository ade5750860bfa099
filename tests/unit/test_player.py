"""The player (recording/player.py) in this process, from file keys only:
the plaintext view, the index pass, seeking, pictures and chat (issue 10
item 9). The media child's side is tests/e2e/test_playback_media.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from evr_desktop.recording.manifest import iter_recording, read_manifest
from evr_desktop.recording.player import PlaintextView, Player, PlayerError, SegmentKey, segment_keys
from evr_desktop.recording.recorder import Recorder
from evr_desktop.vault.age import X25519Identity, unwrap_file_key
from tests.recording_media import call_frames, open_under

SECONDS = 8.0
CHAT = [(1.0, "victim", "first line"), (5.5, "officer", "second line")]


def make_recording(folder: Path, seconds: float = SECONDS,
                   recipients: tuple[str, str] | None = None) -> X25519Identity:
    """A real recording (the Recorder fed a synthetic call) with two chat lines;
    to new keys (the officer's is returned) or to the given public recipients."""
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    officer_recipient, escrow_recipient = recipients or (officer.recipient, escrow.recipient)
    frames = call_frames(seconds)
    t0 = frames[0].monotonic
    now = [t0]
    rec = Recorder(folder, officer_recipient=officer_recipient, escrow_recipient=escrow_recipient,
                   session="appt-play", clock=lambda: now[0], fsync=False)
    chat = list(CHAT)
    for f in frames:
        now[0] = f.monotonic
        rec(f)
        while chat and f.monotonic - t0 >= chat[0][0]:
            _, who, text = chat.pop(0)
            rec.add_chat(who, text, at=f.monotonic)
    rec.close("call ended")
    return officer


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("play") / "rec"
    officer = make_recording(folder)
    manifest = read_manifest(folder, [officer])
    keys = []
    for seg in manifest.segments:
        with open(folder / seg["file"], "rb") as fh:
            keys.append(SegmentKey(seg["file"], unwrap_file_key(fh, [officer]), seg["plaintext_size"],
                                   seg["complete"]))
    return folder, officer, keys


def test_the_view_is_the_recording_byte_for_byte_with_random_access(recording):
    folder, officer, keys = recording
    whole = b"".join(iter_recording(folder, [officer]))
    view = PlaintextView(folder, keys)
    assert view.size == len(whole) and view.seekable()
    assert view.read() == whole
    for pos in (0, 70_000, len(whole) // 2, len(whole) - 3):
        view.seek(pos)
        assert view.read(100_000) == whole[pos:pos + 100_000]
    view.close()


def test_a_wrong_key_or_size_is_refused_naming_the_segment(recording):
    folder, _officer, keys = recording
    bad = [keys[0], SegmentKey(keys[1].file, keys[0].file_key, keys[1].plaintext_size, True), *keys[2:]]
    with pytest.raises(PlayerError, match=r"segment 2 \(seg-000002.age\) cannot be read: this file key"):
        PlaintextView(folder, bad)
    wrong_size = [SegmentKey(keys[0].file, keys[0].file_key, 5, True)]
    with pytest.raises(PlayerError, match="the manifest says 5"):
        PlaintextView(folder, wrong_size)
    with pytest.raises(PlayerError, match="not a segment file name"):
        PlaintextView(folder, [SegmentKey("../x", keys[0].file_key, None, True)])


def test_open_message_fields_are_checked():
    good = {"file": "seg-000001.age", "file_key": "A" * 22 + "==", "plaintext_size": 10, "complete": True}
    assert segment_keys([good])[0].file_key == bytes(16)
    for bad in ([], [{**good, "file": "../etc"}], [{**good, "file_key": "short"}], [{**good, "complete": 1}],
                [{**good, "identity": "AGE-SECRET-KEY-1"}], [{**good, "plaintext_size": -1}], "x"):
        with pytest.raises(ValueError, match="player_open"):
            segment_keys(bad)


def _wait_for(statuses: list, predicate, timeout: float = 30.0) -> bool:
    """Until a status matches (the bound only stops a broken run from hanging)."""
    deadline = time.monotonic() + timeout
    while not any(predicate(s) for s in list(statuses)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_plays_shows_both_sides_gives_the_chat_and_seeks_near_t(recording):
    folder, _officer, keys = recording
    pictures: list = []
    statuses: list = []
    got = threading.Event()

    def publish(frame):
        pictures.append(frame.shape)
        got.set()

    player = Player(folder, keys, publish=publish, on_status=lambda *s: statuses.append(s), audio=False)
    info = player.open()
    try:
        assert abs(info["duration"] - SECONDS) < 0.5
        assert info["tracks"] == ["video", "audio", "video", "audio", "subtitle"]
        lines = [(round(c["at"], 1), c["text"]) for c in info["chat"]]
        assert [t for _, t in lines] == ["Victim: first line", "Officer: second line"]
        # Each line at its time (frames come every 20-33 ms: the line lands on the next one).
        assert abs(info["chat"][0]["at"] - 1.0) < 0.1 and abs(info["chat"][1]["at"] - 5.5) < 0.1
        # Opened, it shows the first pictures, paused at the start.
        assert _wait_for(statuses, lambda s: s[0] == "paused") and got.wait(30)
        player.play()
        height, width, channels = pictures[0]
        assert height == 360 and channels == 4 and width == 2 * 480 + 8  # two 4:3 pictures side by side
        player.pause()
        for target in (5.0, 2.2, 7.5):
            statuses.clear()
            player.seek(target)
            assert _wait_for(statuses, lambda s: s[0] == "paused")
            (landed,) = [s[1] for s in statuses if s[0] == "paused"]
            # The keyframe before t is 2-3 s earlier (a 3 s GOP): the frames up to t are decoded, not shown.
            assert target - 0.001 <= landed < target + 0.1, (target, landed)
            assert player.frame_time == landed
        statuses.clear()
        player.play()  # from 7.5 to the end
        deadline = time.monotonic() + 30
        while not any(s[0] == "ended" for s in statuses) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [s for s in statuses if s[0] == "ended"]
        assert min(s[1] for s in statuses) >= 7.5 - 0.001  # nothing from before the seek was played
    finally:
        player.close()


def test_a_segment_damaged_after_the_keys_were_given_stops_with_its_name(recording, tmp_path):
    folder, _officer, keys = recording
    import shutil

    copy = tmp_path / "rec"
    shutil.copytree(folder, copy)
    seg = copy / keys[2].file
    blob = bytearray(seg.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    seg.write_bytes(bytes(blob))
    player = Player(copy, keys, publish=lambda f: None, audio=False)
    with pytest.raises(PlayerError, match=r"segment 3 \(seg-000003.age\) cannot be decrypted: chunk #\d+ is corrupted"):
        player.open()


def test_the_channel_checks_the_player_messages():
    from evr_desktop.media.channel import CHILD_SENDS, PARENT_SENDS, ProtocolError, decode, encode

    def body(message):
        return encode(message)[4:]

    ok = decode(body({"type": "player_seek", "id": 3, "seconds": 2.5}), PARENT_SENDS)
    assert ok["seconds"] == 2.5
    assert decode(body({"type": "player_seek", "id": 3, "seconds": 2}), PARENT_SENDS)["seconds"] == 2
    for bad in ({"type": "player_seek", "id": 3, "seconds": "2"}, {"type": "player_seek", "id": 3, "seconds": True},
                {"type": "player_open", "id": 4, "recording": "r", "folder": "/x"},
                {"type": "player_open", "id": 4, "recording": "r", "folder": "/x", "segments": [],
                 "identity": "AGE-SECRET-KEY-1"},
                {"type": "player_play", "id": 5, "extra": 1}):
        with pytest.raises(ProtocolError, match="bad-fields"):
            decode(body(bad), PARENT_SENDS)
    status = {"type": "player_status", "recording": "r", "state": "playing", "position": 1.25, "message": ""}
    assert decode(body(status), CHILD_SENDS)["position"] == 1.25
    with pytest.raises(ProtocolError, match="unknown-type"):
        decode(body(status), PARENT_SENDS)  # the app sends no status


def test_a_long_recording_is_read_with_a_few_files_open(tmp_path):
    """An hour is ~1,800 segments, more than a process may keep open: the view opens
    each once to check it, then keeps at most OPEN_SEGMENTS open while reading."""
    import os as _os

    from evr_desktop.recording.player import OPEN_SEGMENTS, PlaintextView
    from tests.recording_media import TapFrame

    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    now = [1000.0]
    rec = Recorder(tmp_path / "r", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                   session="appt-long", clock=lambda: now[0], fsync=False)
    block = _os.urandom(1 << 16)
    for i in range(30 * 80):  # 80 s of video at 30 fps, each way, random payloads
        now[0] = 1000.0 + i / 30
        for direction in ("received", "sent"):
            rec(TapFrame(direction, "video", "video/VP8", 90000, i * 3000, block[i % 500:i % 500 + 2000],
                         i % 60 == 0, now[0]))
    rec.close()
    manifest = read_manifest(tmp_path / "r", [officer])
    assert len(manifest.segments) > 3 * OPEN_SEGMENTS
    keys = []
    for seg in manifest.segments:
        with open(tmp_path / "r" / seg["file"], "rb") as fh:
            keys.append(SegmentKey(seg["file"], unwrap_file_key(fh, [officer]), seg["plaintext_size"],
                                   seg["complete"]))
    view = PlaintextView(tmp_path / "r", keys)
    most = 0
    data = bytearray()
    while chunk := view.read(1 << 15):
        data += chunk
        most = max(most, len(open_under(tmp_path / "r")))
    assert 0 < most <= OPEN_SEGMENTS and bytes(data) == b"".join(iter_recording(tmp_path / "r", [officer]))
    view.close()
    assert open_under(tmp_path / "r") == []
