"""The tap's stream generation, with real aiortc receivers and senders.

Receivers get real RTP packets (VP8 and Opus made by aiortc's own encoders and
packetisers) through ``_handle_rtp_packet``, as the DTLS transport hands them
over; senders encode real frames through ``_next_encoded_frame``. Nothing of
aiortc is replaced: the tap's hooks are the only change, as in a call.
"""

from __future__ import annotations

import asyncio
import fractions
import io
import threading
import time
from pathlib import Path

import av
import numpy as np
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket, wrap_rtx

from evr_desktop.call.jitter import use_marker_jitter_buffer
from evr_desktop.call.tap import RECEIVED, SENT, EncodedFrame, EncodedFrameTap, tap_receiver, tap_sender
from evr_desktop.recording.manifest import iter_recording
from evr_desktop.recording.recorder import Recorder
from evr_desktop.vault.age import X25519Identity

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


RTX_SENT: list[int] = []


def _transport() -> RTCDtlsTransport:
    return RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])


def _receiver(kind: str) -> RTCRtpReceiver:
    """A receiver as RTCPeerConnection makes one for a remote track."""
    receiver = RTCRtpReceiver(kind, _transport())
    receiver._track = RemoteStreamTrack(kind=kind)
    return receiver


class _Frames:
    """The tap's sink: every frame, and an event per count reached."""

    def __init__(self) -> None:
        self.frames: list[EncodedFrame] = []
        self._lock = threading.Lock()

    def __call__(self, frame: EncodedFrame) -> None:
        with self._lock:
            self.frames.append(frame)

    def of(self, direction: str, kind: str) -> list[EncodedFrame]:
        with self._lock:
            return [f for f in self.frames if f.direction == direction and f.kind == kind]


def _vp8_payloads(n: int, pts0: int = 0) -> list[tuple[list[bytes], int, bytes]]:
    """n frames of real VP8 as aiortc packetises them: (RTP payloads, RTP timestamp, a tag)."""
    enc = Vp8Encoder()
    out = []
    for i in range(n):
        arr = np.random.default_rng(pts0 + i).integers(0, 255, (240, 320, 3), dtype=np.uint8)  # no two alike
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
        frame.pts, frame.time_base = pts0 + i * 3000, fractions.Fraction(1, 90000)
        payloads, ts = enc.encode(frame, force_keyframe=(i == 0))
        out.append((payloads, ts, b""))
    return out


def _opus_payloads(n: int) -> list[tuple[bytes, int]]:
    enc = OpusEncoder()
    out = []
    for i in range(n):
        s = (np.sin(np.arange(960) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.stack([s, s]).T.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        payloads, ts = enc.encode(frame)
        if payloads:
            out.append((payloads[0], ts))
    return out


async def _feed_video(receiver, frames, *, ssrc: int, seq: int, ts0: int, rtx_ssrc: int | None = None,
                      resend_first_via_rtx: bool = False, paced: bool = False) -> tuple[int, list[bytes]]:
    """Hand ``frames`` to ``receiver`` as RTP packets of ``ssrc``; returns the next
    sequence number and the depayloaded frames in order (to tell frames apart)."""
    from aiortc.codecs import depayload

    sent = []
    for payloads, ts, _ in frames:
        packets = []
        for j, payload in enumerate(payloads):
            packets.append(RtpPacket(payload_type=96, marker=int(j == len(payloads) - 1), sequence_number=seq,
                                     timestamp=(ts0 + ts) & 0xFFFFFFFF, ssrc=ssrc, payload=payload))
            seq = (seq + 1) & 0xFFFF
        if resend_first_via_rtx and rtx_ssrc is not None and len(sent) == 5 and len(packets) > 1:
            # the fifth frame's first packet "lost", then retransmitted on the RTX stream
            lost, packets = packets[0], packets[1:]
            packets.append(wrap_rtx(lost, payload_type=97, sequence_number=seq, ssrc=rtx_ssrc))
            RTX_SENT.append(lost.sequence_number)
        for packet in packets:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=int(time.monotonic() * 1000))
        sent.append(b"".join(depayload(VP8, p) for p in payloads))
        if paced:  # about a sender's pace (a sleep only ever overshoots: arrivals fall behind RTP time)
            await asyncio.sleep(1 / 30)
    return seq, sent


def test_a_new_ssrc_on_the_receive_side_starts_a_new_generation() -> None:
    """One real video receiver (with the marker jitter buffer, as in a call) and
    one real audio receiver: the sender's SSRC changes mid-stream, with a new
    sequence number and timestamp origin. Every frame before the change has one
    generation, every frame after it another; a retransmission on the RTX
    stream does not count as a new source."""
    sink = _Frames()
    tap = EncodedFrameTap(sink)
    tap.start()

    async def main() -> tuple[list[bytes], list[bytes]]:
        video = _receiver("video")
        audio = _receiver("audio")
        tap_receiver(video, tap, "appt", "video")
        tap_receiver(audio, tap, "appt", "audio")
        assert use_marker_jitter_buffer(video) is not None
        await video.receive(RTCRtpReceiveParameters(
            codecs=[VP8, RTX], encodings=[RTCRtpDecodingParameters(ssrc=1111, payloadType=96,
                                                                   rtx=RTCRtpRtxParameters(ssrc=1112))]))
        await audio.receive(RTCRtpReceiveParameters(codecs=[OPUS], encodings=[]))
        frames = _vp8_payloads(40)
        seq, first = await _feed_video(video, frames[:20], ssrc=1111, seq=100, ts0=5_000_000, rtx_ssrc=1112,
                                       resend_first_via_rtx=True)
        _, second = await _feed_video(video, frames[20:], ssrc=2222, seq=(seq + 3000) & 0xFFFF, ts0=77)
        opus = _opus_payloads(40)
        for i, (payload, ts) in enumerate(opus):
            ssrc, seq0, ts0 = (3333, 10, 1000) if i < 20 else (4444, 40000, 9_000_000)
            await audio._handle_rtp_packet(
                RtpPacket(payload_type=111, sequence_number=seq0 + i, timestamp=ts0 + ts, ssrc=ssrc,
                          payload=payload), arrival_time_ms=0)
        await video.stop()
        await audio.stop()
        return first, second

    first, second = asyncio.run(main())
    tap.close()
    got = sink.of(RECEIVED, "video")
    by_data = {f.data: f.generation for f in got}
    assert len(got) >= 36, len(got)  # the marker buffer releases every complete frame at once
    before = {by_data[d] for d in first if d in by_data}
    after = {by_data[d] for d in second if d in by_data}
    assert len(before) == 1 and len(after) == 1 and before != after, (before, after)
    assert len(RTX_SENT) == 1 and sum(d in by_data for d in first) == 20  # one completed by an RTX packet
    gens = [f.generation for f in sink.of(RECEIVED, "audio")]
    assert gens and gens == sorted(gens) and len(set(gens)) == 2, gens
    assert {f.generation for f in got}.isdisjoint(gens)  # never reused, whatever the stream


def test_each_sender_and_each_new_encoder_starts_a_new_generation() -> None:
    """Real senders encoding real frames: one generation per sender (an ICE
    restart makes new ones), a new one if the sender's encoder is replaced.
    aiortc's Opus encoder starts its timestamps at 0: the new origin this is for."""
    sink = _Frames()
    tap = EncodedFrameTap(sink)
    tap.start()

    async def main() -> None:
        transport = _transport()
        for _ in range(2):  # the call's first senders, then a restart's
            video = RTCRtpSender(VideoStreamTrack(), transport)
            audio = RTCRtpSender(AudioStreamTrack(), transport)
            tap_sender(video, tap, "appt")
            tap_sender(audio, tap, "appt")
            for _ in range(3):
                await video._next_encoded_frame(VP8)
            for _ in range(4):
                await audio._next_encoded_frame(OPUS)
        audio._RTCRtpSender__encoder = None  # aiortc makes a new one at the next frame
        for _ in range(3):
            await audio._next_encoded_frame(OPUS)

    asyncio.run(main())
    tap.close()
    video = [f.generation for f in sink.of(SENT, "video")]
    audio = sink.of(SENT, "audio")
    assert video[:3] == [video[0]] * 3 and video[3:] == [video[3]] * 3 and video[0] != video[3]
    runs = []
    for f in audio:
        if not runs or runs[-1][0] != f.generation:
            runs.append((f.generation, []))
        runs[-1][1].append(f.timestamp)
    assert len(runs) == 3 and len({g for g, _ in runs}) == 3, runs
    assert all(ts[0] == 0 for _, ts in runs)  # each encoder's own origin: the reason for the field


def test_the_recorder_follows_a_generation_that_timestamps_alone_cannot_show(tmp_path: Path) -> None:
    """The real tap and a real receiver feed a Recorder, at a sender's pace. The
    victim's sender restarts its stream (new SSRC) after 0.6 s of video and a
    0.9 s pause, with a new timestamp origin that happens to put its first
    frame 0.9 s before its arrival on the old stream's timeline: inside the
    recorder's 1 s re-anchor threshold, so from the timestamps alone the new
    frames would be squeezed in right after the old ones. With the generation
    the recorder re-anchors the new stream on its arrival, and the pause shows
    as a pause. (Fails if the tap gives every frame the same generation.)"""
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    recorder = Recorder(tmp_path / "rec", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient)
    tap = EncodedFrameTap(recorder)
    tap.start()
    frames = _vp8_payloads(36)

    async def main() -> None:
        video = _receiver("video")
        tap_receiver(video, tap, "appt", "video")
        use_marker_jitter_buffer(video)
        await video.receive(RTCRtpReceiveParameters(codecs=[VP8], encodings=[]))
        ts_a = 1_000_000
        started = time.monotonic()
        seq, _ = await _feed_video(video, frames[:18], ssrc=1111, seq=100, ts0=ts_a, paced=True)  # 0.6 s
        await asyncio.sleep(0.9)  # the sender's restart: nothing arrives (sleep never ends early)
        # B's first frame (a keyframe: a new encoder) lands 0.9 s before its arrival on A's timeline
        elapsed = time.monotonic() - started
        restart = _vp8_payloads(18)
        await _feed_video(video, restart, ssrc=2222, seq=(seq + 3000) & 0xFFFF,
                          ts0=ts_a + int((elapsed - 0.9) * 90000), paced=True)
        await video.stop()

    asyncio.run(main())
    tap.close()
    result = recorder.close()
    assert result.segments >= 1
    plain = b"".join(iter_recording(tmp_path / "rec", [officer]))
    with av.open(io.BytesIO(plain)) as container:
        stream = container.streams.video[0]
        pts = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None]
    gaps = [b - a for a, b in zip(pts, pts[1:], strict=False)]
    print(f"\nvictim video: {len(pts)} frames, widest gap {max(gaps):.3f} s")
    # The old frames span 0.57 s of RTP time; the new ones arrived at least 1.47 s
    # after the first old one: re-anchored on arrival, a gap of at least 0.9 s
    # (without the generation: about 0.03 s).
    assert max(gaps) >= 0.6, gaps


def test_a_received_frame_is_timed_by_its_first_packet_not_its_release() -> None:
    """aiortc's audio jitter buffer hands a packet to the decoder only once more
    are queued behind it; the tap times each received frame by when its first
    packet reached the receiver, so the recorder's clock does not carry the
    buffer's hold (which differs between audio and video)."""
    sink = _Frames()
    tap = EncodedFrameTap(sink)
    tap.start()
    fed: dict[int, float] = {}  # the frame's RTP timestamp as the tap reports it -> when its packet was fed

    async def main() -> None:
        audio = _receiver("audio")
        tap_receiver(audio, tap, "appt", "audio")
        await audio.receive(RTCRtpReceiveParameters(codecs=[OPUS], encodings=[]))
        for i, (payload, ts) in enumerate(_opus_payloads(30)):
            fed[ts] = time.monotonic()
            await audio._handle_rtp_packet(
                RtpPacket(payload_type=111, sequence_number=500 + i, timestamp=123_456 + ts, ssrc=5555,
                          payload=payload), arrival_time_ms=0)
            await asyncio.sleep(0.02)  # a sender's 20 ms pace
        await audio.stop()

    asyncio.run(main())
    tap.close()
    got = sink.of(RECEIVED, "audio")
    assert len(got) >= 20
    late = [f.monotonic - fed[f.timestamp] for f in got]
    print(f"\naudio frames: timed {max(late) * 1000:.1f} ms at most after their packet was fed")
    # each within the wrapper's own call (well under the 20 ms to the next packet), not a release later
    assert all(0 <= d < 0.01 for d in late), late


def test_a_sent_frame_is_timed_when_the_sender_takes_it_not_after_encoding() -> None:
    """The recorder anchors the officer's RTP time on the tap's time; timing a
    sent frame after the encoder would carry the encoder's latency (tens of ms
    on a busy machine, more on a key frame) into the recording's A/V sync."""
    sink = _Frames()
    tap = EncodedFrameTap(sink)
    tap.start()
    times: list[tuple[float, float]] = []  # (the track handed the frame over, the encoded frame came back)

    class _Camera(VideoStreamTrack):
        async def recv(self):
            frame = await super().recv()
            times.append((time.monotonic(), 0.0))
            return frame

    async def main() -> None:
        sender = RTCRtpSender(_Camera(), _transport())
        tap_sender(sender, tap, "appt")
        for _ in range(5):
            await sender._next_encoded_frame(VP8)
            times[-1] = (times[-1][0], time.monotonic())

    asyncio.run(main())
    tap.close()
    got = sink.of(SENT, "video")
    assert len(got) == 5
    for frame, (taken, done) in zip(got, times, strict=True):
        assert taken <= frame.monotonic <= taken + (done - taken) / 2, (frame.monotonic, taken, done)
