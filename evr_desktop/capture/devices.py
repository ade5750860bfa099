"""Which cameras and microphones this machine has, as plain data, and the
choice of sources for a call (real devices if asked for and present, else the
synthetic test pattern and tone, saying so)."""

from __future__ import annotations

import glob
import logging
import sys
from dataclasses import dataclass

from .base import AudioSource, DeviceError, VideoSource

log = logging.getLogger("evr_desktop.capture")


@dataclass(frozen=True)
class Camera:
    index: int  # OpenCV's device index
    name: str


@dataclass(frozen=True)
class Microphone:
    index: int  # sounddevice's device index
    name: str
    channels: int
    default_samplerate: float


# ALSA devices that open but deliver no real, paced audio.
_FAKE_MICROPHONES = ("null",)


def _camera_candidates(max_index: int) -> list[int]:
    if sys.platform.startswith("linux"):
        found = []
        for path in glob.glob("/dev/video*"):
            tail = path.removeprefix("/dev/video")
            if tail.isdigit():
                found.append(int(tail))
        return sorted(i for i in found if i < max_index)
    return list(range(max_index))


def list_cameras(max_index: int = 8) -> list[Camera]:
    """Cameras OpenCV can open. On Linux only ``/dev/video*`` nodes are tried
    (so a machine without any costs nothing and logs nothing)."""
    candidates = _camera_candidates(max_index)
    if not candidates:
        return []
    try:
        import cv2
    except ImportError:  # pragma: no cover - a project dependency
        log.warning("OpenCV is not installed: no cameras")
        return []
    cameras = []
    for index in candidates:
        cap = cv2.VideoCapture(index)
        try:
            if cap.isOpened():
                cameras.append(Camera(index, f"Camera {index}"))
        finally:
            cap.release()
    return cameras


def list_microphones() -> list[Microphone]:
    """Input devices PortAudio knows (empty when PortAudio itself is missing)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: libportaudio2 missing
        log.warning("sounddevice unavailable (%s): no microphones", type(exc).__name__)
        return []
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudio errors on broken audio set-ups
        log.warning("listing microphones failed: %s", exc)
        return []
    mics = []
    for index, dev in enumerate(devices):
        name = str(dev.get("name", ""))
        if int(dev.get("max_input_channels", 0)) > 0 and name not in _FAKE_MICROPHONES:
            mics.append(
                Microphone(index, name, int(dev["max_input_channels"]),
                           float(dev.get("default_samplerate", 0.0)))
            )
    return mics


@dataclass
class SourceChoice:
    video: VideoSource
    audio: AudioSource
    notes: list[str]  # plain sentences for the officer ("No camera found: ...")

    @property
    def synthetic(self) -> bool:
        return self.video.synthetic or self.audio.synthetic


def choose_sources(
    prefer_real: bool = True,
    *,
    camera: int | None = None,
    microphone: int | None = None,
    width: int = 640,
    height: int = 480,
    fps: float = 30.0,
) -> SourceChoice:
    """The sources for a call. With ``prefer_real``, the chosen (or first)
    camera and microphone if they exist, else the synthetic ones; ``notes``
    says what was substituted. Sources are not opened here."""
    from .synthetic import SyntheticAudioSource, SyntheticVideoSource

    notes: list[str] = []
    video: VideoSource | None = None
    audio: AudioSource | None = None
    if prefer_real:
        cams = list_cameras()
        if camera is not None:
            cams = [c for c in cams if c.index == camera] or cams
        if cams:
            from .camera import CameraSource

            video = CameraSource(cams[0].index, width, height, fps, name=cams[0].name)
        else:
            notes.append("No camera was found: the call sends a test pattern instead.")
        mics = list_microphones()
        if microphone is not None:
            mics = [m for m in mics if m.index == microphone] or mics
        if mics:
            from .microphone import MicrophoneSource

            audio = MicrophoneSource(mics[0].index, name=mics[0].name)
        else:
            notes.append("No microphone was found: the call sends a test tone instead.")
    if video is None:
        video = SyntheticVideoSource(width, height, fps)
    if audio is None:
        audio = SyntheticAudioSource()
    for note in notes:
        log.info(note)
    return SourceChoice(video, audio, notes)


__all__ = [
    "Camera", "Microphone", "SourceChoice", "DeviceError",
    "list_cameras", "list_microphones", "choose_sources",
]
