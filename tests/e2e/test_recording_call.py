"""A recorded call: the engine's encoded-frame tap, with an aiortc victim on
loopback (the fixtures of test_call_engine.py), feeding a Recorder for about
six seconds with an ICE restart in the middle; then decrypt, ffprobe."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import tests.e2e.test_call_engine as engine_tests
from evr_desktop.call import events as ev
from evr_desktop.capture.devices import SourceChoice
from evr_desktop.capture.synthetic import SyntheticAudioSource, SyntheticVideoSource
from evr_desktop.recording.manifest import iter_recording, read_manifest
from evr_desktop.recording.recorder import Recorder
from evr_desktop.vault.age import X25519Identity
from tests.e2e.test_call_engine import World, connected_call, run, until


class _ToRecorder(list):
    """Stands in for World.tapped: every tapped frame goes to the recorder."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self.generations: dict[tuple[str, str], list[int]] = {}  # per stream, each new one in order

    def append(self, frame) -> None:  # the tap's sink, on the tap's thread
        seen = self.generations.setdefault((frame.direction, frame.kind), [])
        if not seen or seen[-1] != frame.generation:
            seen.append(frame.generation)
        self.recorder(frame)


def test_a_recorded_call_with_an_ice_restart(tmp_path: Path) -> None:
    started_wall = time.time()
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    folder = tmp_path / "recording"
    wanted: list[str] = []
    recorder = Recorder(folder, officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                        session="appt-rec", on_keyframe_wanted=wanted.append)
    first_frame: list[float] = []

    sink = _ToRecorder(recorder)

    async def main() -> float:
        async with World() as w:
            w.tapped = sink
            appt = "appt-rec"
            victim, _ = await connected_call(w, appt)
            w.engine.add_listener(lambda e: recorder.add_chat("victim", e.text)
                                  if isinstance(e, ev.ChatReceived) else None)
            session = w.engine.session(appt)
            await until(lambda: recorder.state == "recording", what="recording started")
            first_frame.append(recorder._t0 or 0.0)
            await asyncio.sleep(2.5)
            await until(lambda: victim.channel is not None and victim.channel.readyState == "open",
                        what="data channel")
            victim.chat("I am recorded")
            await asyncio.wrap_future(w.engine.restart_ice(appt))
            await until(lambda: len(w.events.of(ev.VerificationCode)) >= 2, what="second code")
            await until(lambda: session.state == "connected", what="connected again")
            remaining = 6.0 - (time.monotonic() - first_frame[0])
            await asyncio.sleep(max(0.5, remaining))
            await asyncio.wrap_future(w.engine.end_call(appt, "finished"))
            await w.events.wait(ev.CallEnded)
            return time.monotonic() - first_frame[0]

    recorded = run(main(), timeout=60)
    result = recorder.close("call ended")
    # The restart rebuilt the peer connection: every stream, both ways, has a new
    # generation after it (a new RTP timestamp origin), and never an old one again.
    print(f"\nstream generations: {sink.generations}")
    assert len(sink.generations) == 4
    assert all(len(g) >= 2 and g == sorted(g) for g in sink.generations.values()), sink.generations
    assert result.finalised and result.error is None
    manifest = read_manifest(folder, [escrow])
    assert all(s["complete"] and s["end_s"] - s["start_s"] <= 2.0 for s in manifest.segments)
    tracks = {t["title"]: t for t in manifest.data["tracks"]}
    assert all(tracks[t]["frames"] > 0 for t in ("victim video", "victim audio", "officer video", "officer audio"))
    # The plaintext goes to ffprobe/ffmpeg through a pipe: the test itself puts none on disk.
    plain = b"".join(iter_recording(folder, [officer]))

    def tool(*args: str) -> str:
        p = subprocess.run([*args], input=plain, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        return p.stdout.decode()

    probe = json.loads(tool("ffprobe", "-v", "error", "-show_streams", "-of", "json", "-i", "pipe:0"))
    kinds = [(s["codec_type"], s["codec_name"]) for s in probe["streams"]]
    assert kinds[:4] == [("video", "vp8"), ("audio", "opus"), ("video", "vp8"), ("audio", "opus")]
    times = [float(t) for t in tool("ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
                                    "-i", "pipe:0").split() if t and t != "N/A"]
    span = max(times) - min(times)
    counts = [(t["title"], t["frames"], t["dropped"]) for t in tracks.values() if "frames" in t]
    print(f"\nrecorded {recorded:.2f} s; the file spans {span:.2f} s in {len(manifest.segments)} segments; "
          f"keyframe requests {wanted}; tracks {counts}")
    assert abs(span - recorded) < 0.5
    tool("ffmpeg", "-v", "error", "-i", "pipe:0", "-map", "0:v", "-map", "0:a", "-f", "null", "-")
    srt = tool("ffmpeg", "-v", "error", "-i", "pipe:0", "-map", "0:s", "-f", "srt", "-")
    assert "Victim: I am recorded" in srt

    # No plaintext anywhere it could have leaked: not in the recording folder or
    # this test's temp folder (no Matroska signature, no frame bytes, no chat),
    # and no file in the system temp folder written during the call holds the chat.
    samples = [plain[i:i + 32] for i in range(4096, len(plain) - 32, len(plain) // 16)]
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        blob = path.read_bytes()
        assert b"\x1a\x45\xdf\xa3" not in blob and b"I am recorded" not in blob, path
        assert not any(s in blob for s in samples), path
    # os.walk, not rglob: other programs' temp folders come and go while it walks
    for path in (Path(d) / f for d, _, files in os.walk(tempfile.gettempdir()) for f in files):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= started_wall \
                    and path.stat().st_size < 64 << 20:
                assert b"I am recorded" not in path.read_bytes(), path
        except (PermissionError, FileNotFoundError):
            continue


# --- audio/video sync: both sides flash and beep at the same instant -----------------------

FLASH_MS = 150  # flash and beep for the first 150 ms of every second (wall clock)


class _FlashVideo(SyntheticVideoSource):
    def render(self, n: int, ms: int) -> np.ndarray:
        value = 255 if ms % 1000 < FLASH_MS else 0
        return np.full((self.height, self.width, 3), value, np.uint8)


class _BeepAudio(SyntheticAudioSource):
    def read(self) -> np.ndarray:
        self._pacer.wait(self._stop)
        n = self.count
        self.count += 1
        # a tone while the flash is on, judged on the sample clock (like a microphone's:
        # a frame read late by a busy thread still stands for its own 20 ms)
        on = int(self.sample_time(n) * 1000) % 1000 < FLASH_MS
        return self.samples(n) if on else np.zeros(self.samples_per_frame, np.int16)


def _onsets(plain: bytes) -> dict[int, list[float]]:
    """Per stream, the times (s) where a flash (video) or a beep (audio) begins."""
    import io

    import av

    out: dict[int, list[float]] = {i: [] for i in range(4)}
    was_on = dict.fromkeys(range(4), False)
    with av.open(io.BytesIO(plain)) as container:
        streams = list(container.streams)[:4]
        for packet in container.demux(streams):
            stream = packet.stream
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if stream.type == "video":
                    on = float(frame.to_ndarray(format="gray").mean()) > 128
                else:
                    samples = frame.to_ndarray()
                    on = float(np.abs(samples).max()) > (1600 if samples.dtype == np.int16 else 0.05)
                if on and not was_on[stream.index]:
                    out[stream.index].append(t)
                was_on[stream.index] = on
    return out


def test_audio_and_video_stay_in_sync_on_each_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_tests, "SyntheticVideoSource", _FlashVideo)
    monkeypatch.setattr(engine_tests, "SyntheticAudioSource", _BeepAudio)
    monkeypatch.setattr(engine_tests, "small_sources",
                        lambda: SourceChoice(_FlashVideo(320, 240, 30), _BeepAudio(), []))
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    folder = tmp_path / "recording"
    recorder = Recorder(folder, officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                        session="appt-sync")

    async def main() -> None:
        async with World() as w:
            w.tapped = _ToRecorder(recorder)
            await connected_call(w, "appt-sync")
            await until(lambda: recorder.state == "recording", what="recording started")
            await asyncio.sleep(5.5)
            await asyncio.wrap_future(w.engine.end_call("appt-sync", "finished"))
            await w.events.wait(ev.CallEnded)

    run(main(), timeout=60)
    assert recorder.close().finalised
    onsets = _onsets(b"".join(iter_recording(folder, [officer])))
    for side, (video, audio) in (("victim", (0, 1)), ("officer", (2, 3))):
        flashes, beeps = onsets[video], onsets[audio]
        assert len(flashes) >= 3 and len(beeps) >= 3, (side, onsets)
        skews = [min(beeps, key=lambda b, f=f: abs(b - f)) - f for f in flashes]
        skews = [s for s in skews if abs(s) < 0.5]  # pairs of the same second
        median = sorted(skews)[len(skews) // 2]
        print(f"\n{side}: {len(flashes)} flashes, beep - flash = {[round(s * 1000) for s in skews]} ms")
        assert len(skews) >= 3 and abs(median) < 0.1, (side, skews)
