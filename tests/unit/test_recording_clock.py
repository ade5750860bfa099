"""The recorder's clock when a stream's first frame is late: the anchor moves to
the least-delayed frame (a slow first keyframe must not skew a whole call)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import av

from evr_desktop.recording.manifest import iter_recording
from evr_desktop.recording.recorder import Recorder
from evr_desktop.vault.age import X25519Identity
from tests.recording_media import call_frames


def _video_pts(plain: bytes, index: int) -> list[float]:
    with av.open(io.BytesIO(plain)) as container:
        stream = container.streams[index]
        return [float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None]


def test_a_late_first_video_frame_does_not_skew_the_call(tmp_path: Path) -> None:
    """The officer's first keyframe reaches the tap 300 ms after its RTP time
    says (a slow first encode; the frames behind it come out with it), every
    later frame on time: from the second
    second on, the recorded video is within 50 ms (EARLIER_SECONDS) of where the
    frames really belong, so flash and beep stay together. (With the first
    frame as the anchor for good, the whole track would sit 300 ms late.)"""
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    frames = call_frames(4.0)
    first = next(f for f in frames if f.direction == "sent" and f.kind == "video").monotonic
    # the frames queued behind the slow one come out with it, in order, then all on time
    fed = sorted((replace(f, monotonic=max(f.monotonic, first + 0.3))
                  if f.direction == "sent" and f.kind == "video" else f for f in frames),
                 key=lambda f: f.monotonic)
    now = [fed[0].monotonic]
    rec = Recorder(tmp_path / "r", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                   clock=lambda: now[0], fsync=False)
    for f in fed:
        now[0] = f.monotonic
        rec(f)
    assert rec.close().finalised
    plain = b"".join(iter_recording(tmp_path / "r", [officer]))
    t0 = fed[0].monotonic
    sent_video = [f for f in frames if f.direction == "sent" and f.kind == "video"]
    recorded = _video_pts(plain, 2)
    assert len(recorded) == len(sent_video)
    errors = [r - (f.monotonic - t0) for r, f in zip(recorded, sent_video, strict=True)]
    later = [e for r, e in zip(recorded, errors, strict=True) if r >= 1.0]
    print(f"\nofficer video, recorded minus true time: first {errors[0] * 1000:.0f} ms, "
          f"after 1 s at most {max(map(abs, later)) * 1000:.0f} ms")
    assert later and max(map(abs, later)) <= 0.05  # EARLIER_SECONDS: what the anchor may keep
