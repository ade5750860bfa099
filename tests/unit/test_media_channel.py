"""The media channel's framing and checks (evr_desktop/media/channel.py), the
GUI side's handling of bad messages from the child (proxy.py), and the
shared-memory frame slots (frames.py). The child's side against a real media
process is in tests/e2e/test_media_process.py."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import struct
import threading
import time

import numpy as np
import pytest

from evr_desktop.call import events as ev
from evr_desktop.media.channel import (
    CHILD_SENDS,
    MAX_MESSAGE,
    MAX_SKIP,
    PARENT_SENDS,
    Channel,
    ChannelClosed,
    ProtocolError,
    encode,
)
from evr_desktop.media.frames import FrameSlot


def raw(obj) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


BAD = [
    (b"\xff\xfe not utf-8", "malformed"),
    (b"{not json", "malformed"),
    (b"[1, 2, 3]", "malformed"),
    ({"type": "ping", "id": 1}, "version"),  # no "v"
    ({"v": 2, "type": "ping", "id": 1}, "version"),
    ({"v": 1, "type": "format_disk", "id": 1}, "unknown-type"),
    ({"v": 1, "id": 1}, "unknown-type"),
    ({"v": 1, "type": "start_call", "id": 1}, "bad-fields"),  # no appointment
    ({"v": 1, "type": "start_call", "id": 1, "appointment": 7}, "bad-fields"),
    ({"v": 1, "type": "start_call", "id": True, "appointment": "a"}, "bad-fields"),  # a bool is no id
    ({"v": 1, "type": "start_call", "id": 1, "appointment": "a", "extra": 1}, "bad-fields"),
    # record_start: every field, each a string (the recipients are public age recipients, never keys)
    ({"v": 1, "type": "record_start", "id": 1, "appointment": "a", "folder": "/f", "officer_recipient": "age1x"},
     "bad-fields"),  # no escrow recipient
    ({"v": 1, "type": "record_start", "id": 1, "appointment": "a", "folder": 3, "officer_recipient": "age1x",
      "escrow_recipient": "age1y"}, "bad-fields"),
    ({"v": 1, "type": "record_start", "id": 1, "appointment": "a", "folder": "/f", "officer_recipient": "age1x",
      "escrow_recipient": None}, "bad-fields"),
    ({"v": 1, "type": "record_start", "id": 1, "appointment": "a", "folder": "/f", "officer_recipient": "age1x",
      "escrow_recipient": "age1y", "identity": "AGE-SECRET-KEY-1"}, "bad-fields"),  # no room for a key
    ({"v": 1, "type": "recording_status", "appointment": "a", "state": "failed", "message": "x"},
     "unknown-type"),  # the child's, not the parent's
]


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    parent = Channel(a, CHILD_SENDS, name="test-parent")  # reads what the child sends
    child = Channel(b, PARENT_SENDS, name="test-child")  # reads what the parent sends
    yield parent, child
    parent.close()
    child.close()


@pytest.mark.parametrize(("data", "code"), BAD)
def test_the_child_side_refuses_a_bad_message_and_reads_on(pair, data, code):
    parent, child = pair
    parent.send_raw(raw(data))
    parent.send({"type": "ping", "id": 2})
    with pytest.raises(ProtocolError) as refused:
        child.recv()
    assert refused.value.code == code
    assert child.recv() == {"v": 1, "type": "ping", "id": 2}  # still in step
    assert child.refused == 1


@pytest.mark.parametrize(("data", "code"), [
    (b"\x00\x01", "malformed"),
    ({"v": 0, "type": "pong", "id": 1}, "version"),
    ({"v": 1, "type": "start_call", "id": 1, "appointment": "a"}, "unknown-type"),  # the parent's, not the child's
    ({"v": 1, "type": "reply", "id": 1}, "bad-fields"),
    ({"v": 1, "type": "event", "event": "Stats", "fields": []}, "bad-fields"),
    ({"v": 1, "type": "recording_status", "appointment": "a", "state": "failed"}, "bad-fields"),  # no message
    ({"v": 1, "type": "recording_status", "appointment": "a", "state": 1, "message": ""}, "bad-fields"),
    ({"v": 1, "type": "recording_ended", "appointment": "a", "result": "done"}, "bad-fields"),
    ({"v": 1, "type": "recording_ended", "appointment": 5, "result": {}}, "bad-fields"),
    ({"v": 1, "type": "record_start", "id": 1, "appointment": "a", "folder": "/f", "officer_recipient": "x",
      "escrow_recipient": "y"}, "unknown-type"),  # the parent's
])
def test_the_parent_side_refuses_a_bad_message_and_reads_on(pair, data, code):
    parent, child = pair
    child.send_raw(raw(data))
    child.send({"type": "pong", "id": 5})
    with pytest.raises(ProtocolError) as refused:
        parent.recv()
    assert refused.value.code == code
    assert parent.recv()["id"] == 5


def test_an_oversized_message_is_skipped_both_ways(pair):
    parent, child = pair
    big = {"v": 1, "type": "send_chat", "id": 3, "appointment": "a", "text": "x" * (MAX_MESSAGE + 10)}
    parent.send_raw(raw(big))
    parent.send({"type": "ping", "id": 4})
    with pytest.raises(ProtocolError) as refused:
        child.recv()
    assert refused.value.code == "oversized"
    assert child.recv()["id"] == 4
    child.send_raw(raw({"v": 1, "type": "event", "event": "ChatReceived",
                        "fields": {"appointment": "a", "text": "y" * (MAX_MESSAGE + 10)}}))
    child.send({"type": "pong", "id": 6})
    with pytest.raises(ProtocolError) as refused:
        parent.recv()
    assert refused.value.code == "oversized"
    assert parent.recv()["id"] == 6


def test_encode_refuses_what_the_other_side_would_refuse():
    with pytest.raises(ProtocolError) as refused:
        encode({"type": "send_chat", "id": 1, "appointment": "a", "text": "x" * (MAX_MESSAGE + 1)})
    assert refused.value.code == "oversized"


def test_a_length_past_the_skip_limit_closes_the_channel(pair):
    parent, child = pair
    parent.send_raw(struct.pack(">I", MAX_SKIP + 1))
    with pytest.raises(ChannelClosed):
        child.recv()


def test_the_refusal_carries_the_commands_id(pair):
    parent, child = pair
    parent.send_raw(raw({"v": 1, "type": "send_chat", "id": 9, "appointment": "a"}))  # no text
    with pytest.raises(ProtocolError) as refused:
        child.recv()
    assert refused.value.id == 9 and refused.value.code == "bad-fields"


def test_end_of_stream(pair):
    parent, child = pair
    parent.close()
    with pytest.raises(ChannelClosed):
        child.recv()


# -- the GUI's reader (proxy.py) against a child that sends garbage ----------------------


class FakeProc:
    pid = 0

    def poll(self):
        return None


@pytest.fixture
def proxy_and_child():
    """The app's side (``MediaCalls``) reading from a stand-in child: the test
    speaks as the child on ``other``; ``seen`` collects the events made."""
    from evr_desktop.media.proxy import MediaCalls, _Child

    calls = MediaCalls()
    mine, theirs = socket.socketpair()
    slot = FrameSlot.create((8, 8))
    slot.unlink()
    child = _Child(FakeProc(), Channel(mine, CHILD_SENDS), slot, slot)
    child.ready.set()
    calls._child = child
    seen: list[ev.Event] = []
    calls.engine.add_listener(seen.append)
    reader = threading.Thread(target=calls._read, args=(child,), daemon=True)
    reader.start()
    other = Channel(theirs, PARENT_SENDS)
    yield calls, other, seen
    other.close()
    reader.join(5)
    child.channel.close()
    assert not reader.is_alive()  # the reader ends when the child's side closes


def test_the_proxy_refuses_bad_messages_from_the_child_and_goes_on(proxy_and_child):
    calls, other, seen = proxy_and_child
    future = calls.engine.send_chat("appt-1", "hello")
    sent = other.recv()
    assert sent["type"] == "send_chat" and sent["text"] == "hello"
    for data in (b"\xff", {"v": 1, "type": "no-such"}, {"v": 3, "type": "pong", "id": 99},
                 {"v": 1, "type": "event", "event": "NoSuchEvent", "fields": {}},
                 {"v": 1, "type": "event", "event": "MediaProcessLost", "fields": {"message": "x", "why": "y"}},
                 {"v": 1, "type": "event", "event": "ChatReceived", "fields": {"appointment": "a", "bogus": 1}},
                 {"v": 1, "type": "event", "event": "ChatReceived", "fields": {}}):
        other.send_raw(raw(data))
    # The reader is still there: a good event and the reply arrive.
    other.send({"type": "event", "event": "Stats", "fields": {
        "appointment": "appt-1", "rtt_ms": 3.0, "loss_in": 0.0, "loss_out": None, "bitrate_in_kbps": 1.0,
        "bitrate_out_kbps": 2.0, "remote_resolution": [640, 480], "local_resolution": None,
        "frames_in": 1, "frames_out": 2}})
    other.send({"type": "reply", "id": sent["id"], "ok": False,
                "error": {"type": "CommitTimeout", "message": "No commitment arrived."}})
    with pytest.raises(Exception) as failed:
        future.result(5)
    assert type(failed.value).__name__ == "CommandFailed" and failed.value.kind == "CommitTimeout"
    assert str(failed.value) == "No commitment arrived."
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [ev.Stats("appt-1", 3.0, 0.0, None, 1.0, 2.0, (640, 480), None, 1, 2)]
    assert calls.protocol_errors == 7
    # Each refusal was told to the child, typed.
    told = [other.recv() for _ in range(3)]
    assert [m["type"] for m in told] == ["protocol-error"] * 3
    assert [m["code"] for m in told] == ["malformed", "unknown-type", "version"]
    # A reply that fails a command keeps the future contract: ValueError stays ValueError.
    f2 = calls.engine.send_chat("appt-1", "again")
    sent2 = other.recv()
    while sent2["type"] != "send_chat":
        sent2 = other.recv()
    other.send({"type": "reply", "id": sent2["id"], "ok": False,
                "error": {"type": "ValueError", "message": "too long"}})
    with pytest.raises(ValueError, match="too long"):
        f2.result(5)
    f3 = calls.engine.send_chat("appt-1", "ok")
    sent3 = other.recv()
    other.send({"type": "reply", "id": sent3["id"], "ok": True, "result": "datachannel"})
    assert f3.result(5) == "datachannel"


RESULT = {"recording_id": "r1", "manifest_sha256": "ab" * 32, "started_at": "2026-01-01T10:00:00.000+00:00",
          "ended_at": "2026-01-01T10:00:05.000+00:00", "duration_s": 5.0, "segments": 4, "finalised": True,
          "error": None}


def test_the_proxy_makes_recording_events_and_refuses_bad_ones(proxy_and_child):
    calls, other, seen = proxy_and_child
    future = calls.engine.record_start("appt-1", "/tmp/rec", "age1officer", "age1escrow")
    sent = other.recv()
    assert sent == {"v": 1, "type": "record_start", "id": sent["id"], "appointment": "appt-1",
                    "folder": "/tmp/rec", "officer_recipient": "age1officer", "escrow_recipient": "age1escrow"}
    other.send({"type": "reply", "id": sent["id"], "ok": False,
                "error": {"type": "RecordingRefused", "message": "no force escrow recipient"}})
    with pytest.raises(Exception) as failed:
        future.result(5)
    assert failed.value.kind == "RecordingRefused" and "escrow" in str(failed.value)
    for bad in ({"type": "recording_status", "appointment": "appt-1", "state": "exploded", "message": ""},
                {"type": "recording_ended", "appointment": "appt-1", "result": {**RESULT, "extra": 1}},
                {"type": "recording_ended", "appointment": "appt-1", "result": {**RESULT, "segments": True}},
                {"type": "recording_ended", "appointment": "appt-1", "result": {**RESULT, "finalised": 1}},
                {"type": "recording_ended", "appointment": "appt-1",
                 "result": {k: v for k, v in RESULT.items() if k != "manifest_sha256"}}):
        other.send(bad)
    other.send({"type": "recording_status", "appointment": "appt-1", "state": "failed",
                "message": "No space left on device"})
    other.send({"type": "recording_ended", "appointment": "appt-1", "result": RESULT})
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [ev.RecordingStatus("appt-1", "failed", "No space left on device"),
                    ev.RecordingEnded(appointment="appt-1", **RESULT)]
    assert calls.protocol_errors == 5


SIGNED = {"appointment": "appt-1", "review_id": "ab" * 16, "sha256": "cd" * 32,
          "strokes": [[[10.5, 20, 0], [11, 21, 16], [12, 22, 33], [13, 23, 50], [14, 24, 66]],
                      [[30, 40, 400], [31, 41, 416], [32, 42, 433], [33, 43, 450], [34, 44, 466]]],
          "width": 320, "height": 160, "recording_at_s": 12.5}


def test_the_statement_review_goes_to_the_child_and_its_answers_come_back_checked(proxy_and_child):
    calls, other, seen = proxy_and_child
    future = calls.engine.send_statement_review("appt-1", "ab" * 16, "WITNESS STATEMENT\n\nText", 1,
                                                "This statement (consisting of 1 page(s)...", "witness")
    sent = other.recv()
    assert sent == {"v": 1, "type": "send_statement_review", "id": sent["id"], "appointment": "appt-1",
                    "review_id": "ab" * 16, "text": "WITNESS STATEMENT\n\nText", "pages": 1,
                    "declaration": "This statement (consisting of 1 page(s)...", "statement_type": "witness"}
    other.send({"type": "reply", "id": sent["id"], "ok": False,
                "error": {"type": "ConnectionError", "message": "the data channel is not open yet"}})
    with pytest.raises(ConnectionError):
        future.result(5)
    calls.engine.withdraw_statement_review("appt-1", "ab" * 16)
    assert other.recv()["type"] == "withdraw_statement_review"
    bad_strokes = [
        {**SIGNED, "strokes": [[[10, 20, 0]] * 4]},  # too few points
        {**SIGNED, "strokes": [[[400, 20, 0]] * 12]},  # outside the canvas
        {**SIGNED, "strokes": [[["10", 20, 0]] * 12]},
        {**SIGNED, "width": True},
        {**SIGNED, "sha256": "CD" * 32},
        {**SIGNED, "review_id": "x"},
        {**SIGNED, "recording_at_s": -1},
        {**SIGNED, "recording_at_s": "12"},
        {**SIGNED, "extra": 1},
        {k: v for k, v in SIGNED.items() if k != "recording_at_s"},
    ]
    for fields in bad_strokes:
        other.send({"type": "event", "event": "StatementSigned", "fields": fields})
    other.send({"type": "event", "event": "StatementDeclined", "fields": {"appointment": "appt-1"}})
    other.send({"type": "event", "event": "StatementSigned", "fields": SIGNED})
    other.send({"type": "event", "event": "StatementDeclined",
                "fields": {"appointment": "appt-1", "review_id": "ab" * 16}})
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.protocol_errors == len(bad_strokes) + 1
    signed, declined = seen
    assert isinstance(signed, ev.StatementSigned) and signed.recording_at_s == 12.5
    assert signed.strokes[0][0] == (10.5, 20.0, 0) and isinstance(signed.strokes[1], tuple)
    assert (signed.width, signed.height, signed.sha256) == (320.0, 160.0, "cd" * 32)
    assert declined == ev.StatementDeclined("appt-1", "ab" * 16)


def test_the_child_refuses_a_statement_review_of_the_wrong_shape(pair):
    app, child = pair
    for bad in ({"pages": "2"}, {"pages": True}, {"text": None}, {"statement_type": 1}, {"extra": 1}):
        message = {"type": "send_statement_review", "id": 7, "appointment": "a", "review_id": "ab" * 16,
                   "text": "T", "pages": 2, "declaration": "D", "statement_type": "witness", **bad}
        app.send_raw(raw({"v": 1, **message}))
        with pytest.raises(ProtocolError) as info:
            child.recv()
        assert info.value.code == "bad-fields" and info.value.id == 7


def test_a_command_without_a_child_fails_at_once():
    from evr_desktop.media.proxy import MediaCalls, MediaUnavailable

    future = MediaCalls().engine.send_chat("a", "hello")
    assert isinstance(future, concurrent.futures.Future)
    with pytest.raises(MediaUnavailable):
        future.result(0)


# -- shared-memory frames -------------------------------------------------------------------


def test_frames_latest_wins_as_a_view_and_the_held_buffer_is_never_written():
    writer = FrameSlot.create((64, 48))
    try:
        reader = FrameSlot.attach(writer.name)
    finally:
        writer.unlink()  # both mapped: the name can go
    assert reader.acquire("remote:a") is None
    frames = [np.full((48, 64, 4), i, np.uint8) for i in range(1, 6)]
    writer.publish("remote:a", frames[0])
    first = reader.acquire("remote:a")
    assert first is not None and first.shape == (48, 64, 4) and int(first[0, 0, 0]) == 1
    assert first.base is not None  # a view into shared memory, not a copy
    assert reader.acquire("remote:a") is first  # nothing newer: the same object
    assert reader.acquire("remote:b") is None  # another call's key
    for f in frames[1:]:
        writer.publish("remote:a", f)  # a slow painter: four frames came meanwhile
        assert int(first[0, 0, 0]) == 1  # the one being painted is left alone
    newest = reader.acquire("remote:a")
    assert int(newest[0, 0, 0]) == 5 and newest.shape == (48, 64, 4)
    assert reader.copies == 0
    assert not writer.publish("remote:a", np.zeros((100, 100, 4), np.uint8)) and writer.dropped == 1
    small = np.full((10, 20, 4), 9, np.uint8)
    writer.publish("remote:a", small)
    assert reader.acquire().shape == (10, 20, 4)


def test_the_frame_wakeup_pipe_never_blocks_the_media_process():
    """The child rings once per frame from its display thread: a GUI that does
    not read (a long paint, a modal dialog) must never make it wait, and a
    GUI that is gone must never make it fail. Any one wake-up paints the newest
    frame, so dropped bytes lose nothing."""
    from evr_desktop.media.frames import FrameWakeup, ring

    w = FrameWakeup()
    try:
        assert w.drain() == 0
        ring(w.write_fd)
        ring(w.write_fd)
        assert w.drain() == 2 and w.drain() == 0
        for _ in range(200_000):  # far more than a pipe holds (64 KiB on Linux): a blocking write hangs here
            ring(w.write_fd)
        assert 0 < w.drain() < 200_000
        ring(w.write_fd)
        assert w.drain() == 1  # after a full pipe, the next frame still wakes
    finally:
        w.close()
    assert w.drain() == 0  # closed: nothing to read, nothing raised
    r, wfd = os.pipe()
    os.close(r)
    try:
        ring(wfd)  # the reader gone (the app died): nothing raised
    finally:
        os.close(wfd)
