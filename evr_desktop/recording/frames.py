"""What the recorder consumes: one encoded frame as it crossed the wire.

The recorder sits below ``call`` (import layers), so it does not import the
tap's ``EncodedFrame``; it reads frames through this protocol, which that
dataclass satisfies as it is. ``generation`` is read if present (the tap's
frames have it: a new value whenever a stream's RTP timestamp origin may have
changed); a source without it leaves the recorder to detect a jump from the
timestamps alone, which misses a new origin within 1 s of the prediction.
"""

from __future__ import annotations

from typing import Protocol

SENT = "sent"  # the officer's media, as encoded for sending
RECEIVED = "received"  # the victim's media, as received
AUDIO = "audio"
VIDEO = "video"


class Frame(Protocol):
    """The fields of ``call.tap.EncodedFrame`` the recorder reads."""

    @property
    def direction(self) -> str: ...  # "sent" | "received"

    @property
    def kind(self) -> str: ...  # "audio" | "video"

    @property
    def codec(self) -> str: ...  # MIME type: "video/VP8", "video/H264", "audio/opus"

    @property
    def clock_rate(self) -> int: ...  # RTP clock rate (90000 video, 48000 Opus)

    @property
    def timestamp(self) -> int: ...  # RTP timestamp, per-stream origin

    @property
    def data(self) -> bytes: ...  # the codec bitstream of the whole frame

    @property
    def keyframe(self) -> bool: ...  # video: decodable on its own

    @property
    def monotonic(self) -> float: ...  # time.monotonic() when it crossed the tap


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 key frame (RFC 6386 9.1), else None."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height
