"""Capture: the synthetic sources (stamped, paced), device listing and the
fallback to synthetic sources, real devices failing plainly, and the aiortc
tracks fed from a source thread."""

from __future__ import annotations

import asyncio
import time

import av
import cv2
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from evr_desktop.capture import devices
from evr_desktop.capture.base import SAMPLES_PER_FRAME, DeviceError
from evr_desktop.capture.camera import CameraSource
from evr_desktop.capture.devices import Camera, Microphone, choose_sources
from evr_desktop.capture.microphone import MicrophoneSource
from evr_desktop.capture.synthetic import (
    SyntheticAudioSource,
    SyntheticVideoSource,
    draw_timestamp,
    read_timestamp,
)
from evr_desktop.capture.tracks import AudioSourceTrack, VideoSourceTrack

NOW_MS = 1_741_096_800_123  # 2025-03-04 14:00:00.123 UTC


@pytest.mark.parametrize("size", [(64, 48), (320, 240), (640, 480), (1280, 720)])
def test_timestamp_round_trips(size):
    src = SyntheticVideoSource(*size)
    frame = src.render(7, NOW_MS)
    assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
    assert read_timestamp(frame) == NOW_MS


def test_timestamp_survives_scaling_and_lossy_coding():
    frame = SyntheticVideoSource(1280, 720).render(3, NOW_MS)
    small = cv2.resize(frame, (480, 270), interpolation=cv2.INTER_AREA)  # the far side scaled it down
    assert read_timestamp(small) == NOW_MS
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 20])
    assert ok
    decoded = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert read_timestamp(decoded) == NOW_MS
    # and through a real VP8 encode/decode at a low bit rate
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt, enc.bit_rate = 320, 240, "yuv420p", 150_000
    enc.time_base = __import__("fractions").Fraction(1, 30)
    dec = av.CodecContext.create("libvpx", "r")
    src = SyntheticVideoSource(320, 240)
    got = []
    for n in range(5):
        vf = av.VideoFrame.from_ndarray(src.render(n, NOW_MS + n), format="rgb24").reformat(format="yuv420p")
        vf.pts = n
        for packet in enc.encode(vf):
            for out in dec.decode(packet):
                got.append(read_timestamp(out.to_ndarray(format="rgb24")))
    assert got and got == [NOW_MS + i for i in range(len(got))]


def test_frames_without_a_stamp_read_as_none():
    rng = np.random.default_rng(1)
    assert read_timestamp(np.zeros((240, 320, 3), np.uint8)) is None
    assert read_timestamp(np.full((240, 320, 3), 255, np.uint8)) is None
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert read_timestamp(noise) is None
    frame = SyntheticVideoSource(320, 240).render(0, NOW_MS)
    frame[0:10, 100:140] = 255 - frame[0:10, 100:140]  # flip a few bits: the check catches it
    assert read_timestamp(frame) is None
    assert read_timestamp(np.zeros((10, 10, 3), np.uint8)) is None
    with pytest.raises(ValueError):
        draw_timestamp(np.zeros((48, 64, 3), np.uint8), -1)


def test_video_frames_are_paced_stamped_and_moving():
    src = SyntheticVideoSource(320, 240, fps=50)
    src.open()
    t0 = time.monotonic()
    frames = [src.read() for _ in range(11)]
    elapsed = time.monotonic() - t0
    assert 0.17 <= elapsed < 0.6  # 10 periods of 20 ms after the first frame
    stamps = [read_timestamp(f) for f in frames]
    assert all(s is not None for s in stamps) and stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time() * 1000) < 1000
    assert not np.array_equal(frames[0][100:], frames[1][100:])  # the pattern moves
    assert src.count == 11


def test_audio_frames_are_paced_and_continuous():
    src = SyntheticAudioSource(440)
    src.open()
    t0 = time.monotonic()
    frames = [src.read() for _ in range(11)]
    elapsed = time.monotonic() - t0
    assert 0.18 <= elapsed < 0.6  # 10 x 20 ms
    assert all(f.shape == (SAMPLES_PER_FRAME,) and f.dtype == np.int16 for f in frames)
    joined = np.concatenate(frames).astype(np.float64)
    assert np.abs(np.diff(joined)).max() < 32767 * 0.2 * 2 * np.pi * 440 / 48000 * 1.01  # no phase jumps
    assert 0.19 * 32767 < np.abs(joined).max() <= 0.2 * 32767 + 1


def test_video_pacing_skips_ahead_instead_of_bursting():
    src = SyntheticVideoSource(64, 48, fps=50)
    src.open()
    src.read()
    time.sleep(0.2)  # the consumer stalled for 10 frames
    t0 = time.monotonic()
    for _ in range(4):
        src.read()
    assert time.monotonic() - t0 >= 0.05  # not 4 frames at once: a camera drops what it missed


def test_audio_catches_up_over_a_sound_cards_buffer_and_keeps_its_sample_clock():
    src = SyntheticAudioSource()
    src.open()
    src.read()
    time.sleep(0.1)  # a short stall: the samples are delivered late, not lost
    t0 = time.monotonic()
    for _ in range(4):
        src.read()
    assert time.monotonic() - t0 < 0.05
    # the sample clock still reads the wall clock (within a frame or two)
    assert abs(src.sample_time(src.count) - time.time()) < 0.05


def test_audio_skips_a_stall_longer_than_the_buffer_and_its_sample_clock_says_so():
    src = SyntheticAudioSource()
    src.open()
    src.read()
    time.sleep(0.6)  # longer than a sound card holds: that time is lost
    t0 = time.monotonic()
    for _ in range(4):
        src.read()
    assert time.monotonic() - t0 >= 0.05  # not 30 frames at once
    assert abs(src.sample_time(src.count) - time.time()) < 0.05


def test_close_unblocks_a_paced_read():
    src = SyntheticVideoSource(64, 48, fps=0.5)
    src.open()
    src.read()
    src.close()
    t0 = time.monotonic()
    src.read()
    assert time.monotonic() - t0 < 0.5


def test_device_listing_without_devices(monkeypatch):
    # whatever this machine has, the lists are plain data
    assert all(isinstance(c, Camera) for c in devices.list_cameras())
    assert all(isinstance(m, Microphone) for m in devices.list_microphones())
    # with no camera nodes and no input devices, they are empty and nothing breaks
    monkeypatch.setattr(devices, "_camera_candidates", lambda max_index: [])
    import sounddevice

    monkeypatch.setattr(sounddevice, "query_devices", lambda: [
        {"name": "null", "max_input_channels": 2, "default_samplerate": 48000.0},
        {"name": "speakers", "max_input_channels": 0, "default_samplerate": 48000.0},
    ])
    assert devices.list_cameras() == []
    assert devices.list_microphones() == []  # ALSA "null" opens but is unpaced garbage


def test_this_machine_has_no_devices_and_listing_says_so():
    """These machines have no camera and no microphone: empty lists, no crash."""
    import glob

    if glob.glob("/dev/video*"):
        pytest.skip("this machine has a camera")
    assert devices.list_cameras() == []
    assert isinstance(devices.list_microphones(), list)


def test_a_broken_portaudio_means_no_microphones(monkeypatch):
    import sounddevice

    def boom():
        raise sounddevice.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sounddevice, "query_devices", boom)
    assert devices.list_microphones() == []


def test_choose_sources_falls_back_to_synthetic_and_says_so(monkeypatch):
    monkeypatch.setattr(devices, "list_cameras", lambda: [])
    monkeypatch.setattr(devices, "list_microphones", lambda: [])
    choice = choose_sources(prefer_real=True, width=320, height=240, fps=15)
    assert isinstance(choice.video, SyntheticVideoSource) and isinstance(choice.audio, SyntheticAudioSource)
    assert choice.synthetic
    assert (choice.video.width, choice.video.height, choice.video.fps) == (320, 240, 15)
    assert len(choice.notes) == 2
    assert "No camera" in choice.notes[0] and "test pattern" in choice.notes[0]
    assert "No microphone" in choice.notes[1] and "test tone" in choice.notes[1]
    # asked for synthetic: no notes
    assert choose_sources(prefer_real=False).notes == []


def test_choose_sources_prefers_real_devices_when_present(monkeypatch):
    monkeypatch.setattr(devices, "list_cameras", lambda: [Camera(2, "USB cam")])
    monkeypatch.setattr(devices, "list_microphones", lambda: [Microphone(5, "Headset", 1, 48000.0)])
    choice = choose_sources(prefer_real=True)
    assert isinstance(choice.video, CameraSource) and choice.video.index == 2
    assert isinstance(choice.audio, MicrophoneSource) and choice.audio.device == 5
    assert choice.notes == [] and not choice.synthetic


def test_missing_devices_fail_with_a_plain_message():
    with pytest.raises(DeviceError) as cam:
        CameraSource(57).open()
    assert "camera" in str(cam.value) and "Traceback" not in str(cam.value)
    with pytest.raises(DeviceError) as mic:
        MicrophoneSource(device=4321).open()
    assert "microphone" in str(mic.value).lower()
    with pytest.raises(DeviceError):
        CameraSource(57).read()


def test_tracks_deliver_frames_from_their_source_thread():
    async def main():
        video = VideoSourceTrack(SyntheticVideoSource(320, 240, 30))
        audio = AudioSourceTrack(SyntheticAudioSource())
        vframes = [await asyncio.wait_for(video.recv(), 2) for _ in range(3)]
        aframes = [await asyncio.wait_for(audio.recv(), 2) for _ in range(5)]
        assert all(isinstance(f, av.VideoFrame) and (f.width, f.height) == (320, 240) for f in vframes)
        assert vframes[0].pts < vframes[1].pts < vframes[2].pts
        assert read_timestamp(vframes[-1].to_ndarray(format="rgb24")) is not None
        assert video.latest_rgb().shape == (240, 320, 3)
        assert [f.pts for f in aframes] == [i * 960 for i in range(5)]
        assert all(f.sample_rate == 48000 and f.samples == 960 for f in aframes)
        audio.enabled = False  # muted: silence, still paced
        for _ in range(12):  # drain what was queued before muting
            f = await asyncio.wait_for(audio.recv(), 2)
        assert not f.to_ndarray().any()
        for t in (video, audio):
            t.stop()
            t.join()
        with pytest.raises(MediaStreamError):
            await video.recv()

    asyncio.run(main())


class _Unplugged:
    synthetic = False
    name, width, height, fps = "Broken cam", 64, 48, 30.0

    def __init__(self):
        self.reads = 0

    def open(self):
        pass

    def read(self):
        self.reads += 1
        if self.reads > 2:
            raise DeviceError("The camera (Broken cam) stopped sending pictures.")
        return np.zeros((48, 64, 3), np.uint8)

    def close(self):
        pass


def test_a_device_error_ends_the_track_with_the_plain_message():
    async def main():
        track = VideoSourceTrack(_Unplugged())
        errors = []
        track.on_error = errors.append
        with pytest.raises(MediaStreamError):
            for _ in range(10):
                await asyncio.wait_for(track.recv(), 2)
        await asyncio.sleep(0.05)
        assert errors == ["The camera (Broken cam) stopped sending pictures."]
        assert track.readyState == "ended" and track.error == errors[0]

    asyncio.run(main())


def test_the_self_view_preview_is_made_small_on_the_capture_thread():
    async def main():
        video = VideoSourceTrack(SyntheticVideoSource(1280, 720, 30))
        try:
            for _ in range(3):
                await asyncio.wait_for(video.recv(), 2)
            full, small = video.latest_rgb(), video.latest_preview()
            assert full.shape == (720, 1280, 3) and small.shape == (180, 320, 4)  # BGRA, as Qt paints it
            # the same picture: the colour bars line up once scaled down
            import cv2

            ref = cv2.cvtColor(cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGRA)
            assert np.abs(ref.astype(int) - small.astype(int)).mean() < 2
            assert (small[:, :, 3] == 255).all()
            video.enabled = False  # camera off: no preview either
            await asyncio.wait_for(video.recv(), 2)
            await asyncio.wait_for(video.recv(), 2)
            assert video.latest_preview() is None and video.latest_rgb() is None
        finally:
            video.stop()

    asyncio.run(main())
