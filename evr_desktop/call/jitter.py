"""A video jitter buffer that hands a frame over as soon as it is complete.

aiortc's ``JitterBuffer`` (pinned ``aiortc==1.16.0``) decides that a video
frame is complete when the first packet of the *next* frame arrives (a new
RTP timestamp). Every received frame therefore waits one frame interval
before it is decoded: ~33 ms at 30 fps, ~100 ms while a phone's sender is
still at 10 fps, which alone put the victim-to-officer glass-to-glass latency
over its 100 ms goal (``bench/call.py``).

The RTP marker bit says the same thing one frame earlier: VP8 (RFC 7741 4.1)
and H.264 (RFC 6184 5.1) senders set it on the last packet of a frame, and
Chromium and Safari do. :class:`MarkerJitterBuffer` releases a frame when it
holds every packet from the oldest one up to a packet carrying the marker,
all with one timestamp, in sequence order with no hole. A missing packet
holds the frame back exactly as before (NACK may still bring it), and the
old rule (a new timestamp ends the frame) still applies, so a sender that
never sets the marker is served as well as by aiortc's own buffer.

It is installed on a video receiver by :func:`use_marker_jitter_buffer`
before the receiver starts, next to the recording tap (``tap.py``), which
sees the same complete frames a little sooner.
"""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer, JitterFrame

_RECEIVER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_THREAD = "_RTCRtpReceiver__decoder_thread"
VIDEO_CAPACITY = 512  # aiortc's own choice for video


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's buffer with frame completion on the RTP marker bit (video)."""

    def __init__(self, capacity: int = VIDEO_CAPACITY) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=True)
        self.by_marker = 0  # frames released on the marker bit (for tests and stats)
        self.by_timestamp = 0  # frames released by the old rule

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None:
                return None  # a hole: wait for the packet (or a later frame)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # A new frame began while the marker was never seen: the old rule.
                self.by_timestamp += 1
                return self._release(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                self.by_marker += 1
                return self._release(packets, timestamp, count + 1)
        return None

    def _release(self, packets: list, timestamp: int, count: int) -> JitterFrame:
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
        self.remove(count)
        return frame


def use_marker_jitter_buffer(receiver) -> MarkerJitterBuffer | None:
    """Give a video ``RTCRtpReceiver`` a :class:`MarkerJitterBuffer`.

    Must run before the receiver starts (before the remote description that
    activates it is set). Returns None, changing nothing, when this aiortc
    does not keep its buffer where expected or the receiver has started: the
    call then works as before, one frame interval slower.
    """
    old = getattr(receiver, _RECEIVER_BUFFER, None)
    if isinstance(old, MarkerJitterBuffer):
        return old
    if type(old) is not JitterBuffer or getattr(receiver, _RECEIVER_THREAD, "missing") is not None:
        return None
    if getattr(old, "_origin", None) is not None or not getattr(old, "_is_video", False):
        return None  # packets already arrived, or not a video buffer
    buffer = MarkerJitterBuffer(capacity=old.capacity)
    setattr(receiver, _RECEIVER_BUFFER, buffer)
    return buffer
