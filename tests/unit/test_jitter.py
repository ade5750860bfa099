"""The marker-bit jitter buffer against aiortc's own, packet by packet."""

from __future__ import annotations

import random

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from evr_desktop.call.jitter import MarkerJitterBuffer


def packet(seq: int, ts: int, data: bytes, marker: bool) -> RtpPacket:
    p = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq % 65536, timestamp=ts)
    p._data = data  # what aiortc's depayloader leaves on each packet
    return p


def stream(frames: int, *, markers: bool = True, seed: int = 7, start_seq: int = 65500):
    """Packets of ``frames`` video frames (1-5 packets each), in order."""
    rnd = random.Random(seed)
    seq, out = start_seq, []
    for f in range(frames):
        n = rnd.randint(1, 5)
        for i in range(n):
            out.append(packet(seq, 3000 * f, f"f{f}p{i};".encode(), markers and i == n - 1))
            seq += 1
    return out


def feed(buffer, packets):
    """(index of the packet that released it, timestamp, data) per frame."""
    out = []
    for i, p in enumerate(packets):
        _pli, frame = buffer.add(p)
        if frame is not None:
            out.append((i, frame.timestamp, frame.data))
    return out


def test_a_frame_is_released_on_its_last_packet_not_on_the_next_frame():
    packets = stream(40)
    ours = feed(MarkerJitterBuffer(), packets)
    theirs = feed(JitterBuffer(capacity=512, is_video=True), packets)
    # the same frames, whole and in order (sequence numbers wrap at 65535 on the way) ...
    assert [(t, d) for _i, t, d in ours][: len(theirs)] == [(t, d) for _i, t, d in theirs]
    assert len(ours) == 40 and len(theirs) == 39  # aiortc still holds the last one
    # ... each one released by its own marker packet, earlier than aiortc's buffer does it
    last_packet = [i for i, p in enumerate(packets) if p.marker]
    assert [i for i, _t, _d in ours] == last_packet
    assert all(o < t for (o, _, _), (t, _, _) in zip(ours, theirs, strict=False))  # theirs is one short


def test_a_hole_holds_the_frame_until_the_missing_packet_arrives():
    b = MarkerJitterBuffer()
    a1, a2, a3 = packet(10, 90, b"a1", False), packet(11, 90, b"a2", False), packet(12, 90, b"a3", True)
    assert b.add(a1)[1] is None
    assert b.add(a3)[1] is None  # marker seen, but packet 11 is missing
    frame = b.add(a2)[1]  # a late (NACKed) packet completes it
    assert frame is not None and frame.data == b"a1a2a3" and frame.timestamp == 90
    nxt = b.add(packet(13, 180, b"b1", True))[1]
    assert nxt is not None and nxt.data == b"b1"


def test_a_sender_without_markers_is_served_as_aiortc_serves_it():
    packets = stream(30, markers=False, seed=3)
    ours = feed(MarkerJitterBuffer(), packets)
    theirs = feed(JitterBuffer(capacity=512, is_video=True), packets)
    assert ours == theirs and len(ours) == 29


def test_reordered_packets_give_the_same_frames_as_aiortc():
    packets = stream(60, seed=5)
    for i in range(3, len(packets) - 1, 7):  # swap neighbours now and then
        packets[i], packets[i + 1] = packets[i + 1], packets[i]
    ours = [(t, d) for _i, t, d in feed(MarkerJitterBuffer(), packets)]
    theirs = [(t, d) for _i, t, d in feed(JitterBuffer(capacity=512, is_video=True), packets)]
    in_order = [(t, d) for _i, t, d in feed(MarkerJitterBuffer(), stream(60, seed=5))]
    assert ours == in_order and theirs == in_order[: len(theirs)] and len(theirs) >= 58


def test_a_lost_packet_stops_delivery_where_aiortc_stops_it():
    """A packet lost for good (no NACK answer) holds everything behind it, in
    both buffers, until the buffer overflows and a keyframe is asked for."""
    packets = stream(60, seed=5)
    del packets[48]
    ours = [(t, d) for _i, t, d in feed(MarkerJitterBuffer(), packets)]
    theirs = [(t, d) for _i, t, d in feed(JitterBuffer(capacity=512, is_video=True), packets)]
    assert ours[: len(theirs)] == theirs and len(ours) - len(theirs) <= 1
    assert 0 < len(ours) < 30
