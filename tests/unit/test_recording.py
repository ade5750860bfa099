"""The recorder: encoded frames -> encrypted Matroska segments -> manifest,
read back, checked, recovered. Real VP8/Opus bitstreams from PyAV
(tests/recording_media.py); ffprobe and the reference `age` tool check the
result from outside the project. (The age format's own failure modes, the
CCTV vectors and single-file interop live in test_age.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evr_desktop.recording.manifest import (
    MANIFEST_FILE,
    ManifestError,
    check_segments,
    iter_recording,
    read_manifest,
)
from evr_desktop.recording.recorder import RECORDING, Recorder, RecordingRefused
from evr_desktop.recording.recover import find_unfinished, recover
from evr_desktop.vault.age import (
    CHUNK_SIZE,
    Decryptor,
    HeaderError,
    PayloadError,
    TruncatedError,
    X25519Identity,
    decrypt,
    decrypt_prefix,
    encrypt,
)
from tests.recording_media import TapFrame, call_frames, h264_stream, open_under

ENC_CHUNK = CHUNK_SIZE + 16
SECONDS = 6.0
MKV_MAGIC = b"\x1a\x45\xdf\xa3"
CHAT = "the-chat-marker-7f3a9c"


@pytest.fixture(scope="module")
def keys() -> tuple[X25519Identity, X25519Identity]:
    return X25519Identity.generate(), X25519Identity.generate()  # officer, escrow


@pytest.fixture(scope="module")
def frames():
    return call_frames(SECONDS)


def _record(folder: Path, keys, frames, **kw):
    officer, escrow = keys
    now = [frames[0].monotonic]
    statuses: list = []
    wanted: list = []
    rec = Recorder(folder, officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                   session="appt-1", clock=lambda: now[0], on_status=statuses.append,
                   on_keyframe_wanted=wanted.append, fsync=False, **kw)
    for i, f in enumerate(frames):
        now[0] = f.monotonic
        rec(f)
        if i == 200:
            rec.add_chat("victim", CHAT, at=f.monotonic)
            rec.add_flag("cant-talk", True, at=f.monotonic)
    return rec, rec.close("call ended"), statuses, wanted


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, keys, frames):
    folder = tmp_path_factory.mktemp("rec") / "recording"
    rec, result, statuses, wanted = _record(folder, keys, frames)
    plain = b"".join(iter_recording(folder, [keys[0]]))
    mkv = folder.parent / "check.mkv"  # plaintext for ffprobe, outside the recording folder
    mkv.write_bytes(plain)
    yield folder, rec, result, statuses, plain, mkv
    mkv.unlink()


def _ffprobe(path: Path, *args: str) -> str:
    return subprocess.run(["ffprobe", "-v", "error", *args, str(path)], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def _media_span(path: Path) -> float:
    times = [float(t) for t in _ffprobe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                                        "-of", "csv=p=0").split() if t and t != "N/A"]
    return max(times) - min(times)


def test_four_tracks_chat_and_duration(recorded) -> None:
    folder, rec, result, statuses, plain, mkv = recorded
    assert plain[:4] == MKV_MAGIC
    streams = json.loads(_ffprobe(mkv, "-show_streams", "-of", "json"))["streams"]
    got = [(s["codec_type"], s["codec_name"], s.get("tags", {}).get("title")) for s in streams]
    assert got == [("video", "vp8", "victim video"), ("audio", "opus", "victim audio"),
                   ("video", "vp8", "officer video"), ("audio", "opus", "officer audio"),
                   ("subtitle", "subrip", "chat and victim signals")]
    assert abs(_media_span(mkv) - SECONDS) < 0.5
    assert abs(result.duration_s - SECONDS) < 0.5
    # Every packet decodes (the stream runs across the segment cuts).
    subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(mkv), "-map", "0:v", "-map", "0:a",
                    "-f", "null", "-"], check=True, capture_output=True, timeout=60)
    srt = subprocess.run(["ffmpeg", "-v", "error", "-i", str(mkv), "-map", "0:s", "-f", "srt", "-"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert f"Victim: {CHAT}" in srt and "can't talk freely" in srt
    assert [s.state for s in statuses] == [RECORDING]


def test_segments_are_short_complete_and_listed(recorded, keys) -> None:
    folder, rec, result, _, plain, _ = recorded
    manifest = read_manifest(folder, [keys[1]])
    assert manifest.sha256 == result.manifest_sha256
    assert manifest.sha256 == hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
    assert manifest.finalised and result.finalised and result.error is None
    segs = manifest.segments
    assert len(segs) >= 4 and result.segments == len(segs)
    assert sorted(p.name for p in folder.glob("seg-*.age")) == [s["file"] for s in segs]
    for s in segs:
        assert s["complete"]
        assert s["end_s"] - s["start_s"] <= 2.0, s
        blob = (folder / s["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == s["ciphertext_sha256"] and len(blob) == s["ciphertext_size"]
        assert (folder / s["file"]).stat().st_mode & 0o077 == 0
    for a, b in zip(segs, segs[1:], strict=False):
        assert a["end_s"] == b["start_s"]
        # every segment after the first starts on a Matroska Cluster
    pos = 0
    for s in segs:
        if s["index"] > 1:
            assert plain[pos:pos + 4] == b"\x1f\x43\xb6\x75"
        pos += s["plaintext_size"]
    assert pos == len(plain)


def test_age_tool_decrypts_every_segment_with_either_key(recorded, keys, tmp_path) -> None:
    folder, _, _, _, plain, _ = recorded
    if shutil.which("age") is None:
        pytest.fail("the reference age tool is required: apt-get install -y age")
    out = []
    for name, ident in (("officer", keys[0]), ("escrow", keys[1])):
        key = tmp_path / f"{name}.txt"
        key.write_text(ident.to_string() + "\n")
        parts = [subprocess.run(["age", "-d", "-i", str(key), str(seg)], capture_output=True, check=True,
                                timeout=60).stdout for seg in sorted(folder.glob("seg-*.age"))]
        out.append(b"".join(parts))
        manifest = subprocess.run(["age", "-d", "-i", str(key), str(folder / MANIFEST_FILE)],
                                  capture_output=True, check=True, timeout=60).stdout
        assert json.loads(manifest)["finalised"] is True
    assert out == [plain, plain]
    # and age's own files open with the project's reader
    ct = subprocess.run(["age", "-r", keys[1].recipient], input=plain[:100_000], capture_output=True,
                        check=True, timeout=60).stdout
    assert decrypt(ct, [keys[1]]) == plain[:100_000]


def test_refused_without_escrow_or_with_a_bad_recipient(tmp_path, keys) -> None:
    officer, escrow = keys
    for bad in ("", "  ", "age1notakey"):
        with pytest.raises(RecordingRefused):
            Recorder(tmp_path / "r", officer_recipient=officer.recipient, escrow_recipient=bad)
    with pytest.raises(RecordingRefused):
        Recorder(tmp_path / "r", officer_recipient="nope", escrow_recipient=escrow.recipient)
    assert not (tmp_path / "r").exists()


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def test_manifest_names_a_missing_swapped_or_foreign_segment(recorded, keys, tmp_path, frames) -> None:
    folder = recorded[0]
    ident = [keys[0]]
    check_segments(folder, read_manifest(folder, ident))
    dropped = _copy(folder, tmp_path / "dropped")
    (dropped / "seg-000003.age").unlink()
    with pytest.raises(ManifestError, match=r"segment 3 \(seg-000003.age\) is missing"):
        list(iter_recording(dropped, ident))
    swapped = _copy(folder, tmp_path / "swapped")
    a, b = swapped / "seg-000002.age", swapped / "seg-000003.age"
    a.rename(swapped / "x")
    b.rename(a)
    (swapped / "x").rename(b)
    with pytest.raises(ManifestError, match=r"segment 2 \(seg-000002.age\) holds segment 3's content"):
        list(iter_recording(swapped, ident))
    # a segment of another recording (same keys: it decrypts fine) spliced in
    other = tmp_path / "other"
    _record(other, keys, frames[:300])
    spliced = _copy(folder, tmp_path / "spliced")
    shutil.copy(other / "seg-000002.age", spliced / "seg-000002.age")
    assert decrypt((spliced / "seg-000002.age").read_bytes(), ident)  # authentic on its own...
    with pytest.raises(ManifestError, match=r"segment 2 \(seg-000002.age\) does not match the manifest"):
        list(iter_recording(spliced, ident))  # ...but not this recording's
    extra = _copy(folder, tmp_path / "extra")
    n = len(list(folder.glob("seg-*.age")))
    shutil.copy(other / "seg-000001.age", extra / f"seg-{n + 1:06d}.age")
    with pytest.raises(ManifestError, match="not in the manifest"):
        list(iter_recording(extra, ident))
    flipped = _copy(folder, tmp_path / "flipped")
    seg = flipped / "seg-000002.age"
    data = bytearray(seg.read_bytes())
    data[-5] ^= 1
    seg.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"segment 2 \(seg-000002.age\) does not match"):
        list(iter_recording(flipped, ident))


def _largest_segment(folder: Path) -> Path:
    return max(folder.glob("seg-*.age"), key=lambda p: p.stat().st_size)


def _payload_start(ct: bytes) -> int:
    return ct.index(b"\n", ct.index(b"\n--- ") + 1) + 1 + 16


def test_chunks_swapped_duplicated_or_spliced_fail_at_that_chunk(recorded, keys, tmp_path) -> None:
    folder = recorded[0]
    ident = [keys[0]]
    ct = _largest_segment(folder).read_bytes()
    start = _payload_start(ct)
    n_full = (len(ct) - start) // ENC_CHUNK
    assert n_full >= 2, "a segment with at least two full chunks"
    plain = decrypt(ct, ident)
    c = [ct[start + i * ENC_CHUNK: start + (i + 1) * ENC_CHUNK] for i in range(n_full)]
    tail = ct[start + n_full * ENC_CHUNK:]
    head = ct[:start]
    other = encrypt(os.urandom(3 * CHUNK_SIZE), [keys[0].recipient, keys[1].recipient])
    o_start = _payload_start(other)
    foreign = other[o_start: o_start + ENC_CHUNK]  # same recipients, another file key
    cases = {
        "swapped": (head + c[1] + c[0] + b"".join(c[2:]) + tail, 0),
        "duplicated": (head + c[0] + c[0] + b"".join(c[1:]) + tail, 1),
        "spliced": (head + c[0] + foreign + b"".join(c[2:]) + tail, 1),
        "tag flipped": (head + c[0] + c[1][:-1] + bytes([c[1][-1] ^ 1]) + b"".join(c[2:]) + tail, 1),
    }
    for what, (bad, at) in cases.items():
        dec = Decryptor(bad, ident)
        for i in range(at):
            assert dec.read_chunk() == plain[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE], what
        with pytest.raises(PayloadError) as info:
            dec.read_chunk()
        assert f"#{at}" in str(info.value), what
        with pytest.raises(PayloadError):
            dec.read_chunk()  # nothing after it is ever released
        with pytest.raises(PayloadError):
            decrypt_prefix(bad, ident)  # damage is not passed off as a crash


def test_recovery_at_every_chunk_boundary_and_mid_chunk(recorded, keys, tmp_path) -> None:
    folder = recorded[0]
    officer, escrow = keys
    manifest = read_manifest(folder, [officer])
    segs = manifest.segments
    victim = _largest_segment(folder)
    idx = int(victim.name[4:10])
    full_plain = b"".join(iter_recording(folder, [officer]))
    offset = sum(s["plaintext_size"] for s in segs[: idx - 1])
    ct = victim.read_bytes()
    start = _payload_start(ct)
    n_full = (len(ct) - start) // ENC_CHUNK
    cuts = {start - 30: 0, start - 5: 0, start: 0}  # inside the header, inside the nonce, no chunk yet
    for k in range(n_full + 1):
        b = start + k * ENC_CHUNK
        if b < len(ct):
            cuts[b] = k  # at the boundary
            cuts[min(b + ENC_CHUNK // 2, len(ct) - 1)] = k  # mid-chunk
    cuts[len(ct) - 1] = n_full if (len(ct) - start) % ENC_CHUNK else n_full - 1
    for cut, chunks in sorted(cuts.items()):
        crashed = tmp_path / f"cut{cut}"
        shutil.copytree(folder, crashed)
        (crashed / MANIFEST_FILE).unlink()
        for later in crashed.glob("seg-*.age"):
            if int(later.name[4:10]) > idx:
                later.unlink()
        (crashed / victim.name).write_bytes(ct[:cut])
        assert find_unfinished(tmp_path) == [crashed]
        result = recover(crashed, [officer])
        assert not find_unfinished(tmp_path)
        assert result.segments == idx and result.complete == idx - 1, cut
        m = read_manifest(crashed, [escrow])
        assert not m.finalised and "recovered" in m.data["reason"]
        last = m.segments[-1]
        assert last["complete"] is False and "unfinished" in last["note"], cut
        assert (crashed / victim.name).read_bytes() == ct[:cut]  # the original ciphertext is kept
        got = b"".join(iter_recording(crashed, [escrow]))
        assert got == full_plain[: offset + chunks * CHUNK_SIZE], cut
        assert result.recovered_bytes == chunks * CHUNK_SIZE
        with pytest.raises(TruncatedError if cut >= start else HeaderError):
            decrypt(ct[:cut], [officer])  # never complete on its own either
        shutil.rmtree(crashed)


def test_generation_change_and_new_rtp_origin_continue_one_recording(tmp_path, keys) -> None:
    first = call_frames(3.0, t0=1000.0)
    second = call_frames(3.0, t0=1003.2, rtp0={"receivedv": 5, "receiveda": 9, "sentv": 4_000_000_000,
                                             "senta": 3})
    from dataclasses import replace
    frames = first + [replace(f, generation=1) for f in second]
    rec, result, statuses, wanted = _record(tmp_path / "r", keys, frames)
    assert result.finalised
    mkv = tmp_path / "r.mkv"
    mkv.write_bytes(b"".join(iter_recording(tmp_path / "r", [keys[0]])))
    assert abs(_media_span(mkv) - 6.2) < 0.5
    times = [float(t) for t in _ffprobe(mkv, "-select_streams", "a:0", "-show_entries", "packet=pts_time",
                                        "-of", "csv=p=0").split()]
    assert times == sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 0.3  # the restart's 0.2 s pause, not a jump to the new origin
    subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(mkv), "-map", "0:v", "-map", "0:a",
                    "-f", "null", "-"], check=True, capture_output=True, timeout=60)


def test_video_waits_for_a_keyframe_and_asks_for_one(tmp_path, keys, frames) -> None:
    # drop the first keyframe of the victim's video: the track must start at the next one
    first_key = next(i for i, f in enumerate(frames) if f.direction == "received" and f.kind == "video")
    cut = [f for i, f in enumerate(frames) if i != first_key]
    rec, result, statuses, wanted = _record(tmp_path / "r", keys, cut)
    assert "received" in wanted
    assert rec.counts.keyframe_requests == len(wanted)  # the close log's count is what was asked
    victim_video = rec._tracks[0]
    assert victim_video.dropped > 0 and victim_video.frames > 0
    mkv = tmp_path / "r.mkv"
    mkv.write_bytes(b"".join(iter_recording(tmp_path / "r", [keys[0]])))
    subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(mkv), "-map", "0:v", "-f", "null", "-"],
                   check=True, capture_output=True, timeout=60)


def test_sink_never_raises(tmp_path, keys, frames) -> None:
    officer, escrow = keys
    rec = Recorder(tmp_path / "r", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                   fsync=False)
    rec(object())  # type: ignore[arg-type]  # not a frame at all
    from dataclasses import replace
    rec(replace(frames[0], codec="video/AV1"))
    rec(replace(frames[0], direction="sideways"))
    result = rec.close()
    assert result.finalised


def test_cli_decrypt_and_recover(recorded, keys, tmp_path) -> None:
    folder, _, result, _, plain, _ = recorded
    key = tmp_path / "escrow.txt"
    key.write_text(f"# escrow\n{keys[1].to_string()}\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evr_desktop", "evidence", *args], capture_output=True,
                              text=True, env=env, timeout=120)

    out = tmp_path / "out.mkv"
    p = cli("decrypt", "-i", str(key), str(folder), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == plain and result.manifest_sha256 in p.stderr
    seg_out = tmp_path / "seg1.bin"
    assert cli("decrypt", "-i", str(key), str(folder / "seg-000001.age"), "-o", str(seg_out)).returncode == 0
    assert plain.startswith(seg_out.read_bytes())
    broken = _copy(folder, tmp_path / "broken")
    (broken / "seg-000002.age").unlink()
    out2 = tmp_path / "out2.mkv"
    p = cli("decrypt", "-i", str(key), str(broken), "-o", str(out2))
    assert p.returncode == 1 and "seg-000002.age" in p.stderr and not out2.exists()
    assert not list(tmp_path.glob(".out2.mkv.*"))  # no partial plaintext left behind
    # a crash: the last segment cut mid-chunk, no manifest
    crashed = _copy(folder, tmp_path / "crashed")
    (crashed / MANIFEST_FILE).unlink()
    last = sorted(crashed.glob("seg-*.age"))[-1]
    last.write_bytes(last.read_bytes()[:-7])
    p = cli("decrypt", "-i", str(key), str(crashed), "-o", str(out2))
    assert p.returncode == 1 and "recover" in p.stderr
    p = cli("recover", "-i", str(key), str(last))
    assert p.returncode == 3 and "UNFINALISED" in p.stderr
    p = cli("recover", "-i", str(key), str(crashed), "-o", str(out2))
    assert p.returncode == 3 and "UNFINALISED" in p.stderr, p.stderr
    assert plain.startswith(out2.read_bytes()) and len(out2.read_bytes()) < len(plain)
    bad_key = tmp_path / "bad.txt"
    bad_key.write_text(X25519Identity.generate().to_string())
    assert cli("decrypt", "-i", str(bad_key), str(folder), "-o", str(out2)).returncode == 1


def test_no_plaintext_in_the_recording_folder(recorded, frames) -> None:
    folder = recorded[0]
    samples = [f.data[:24] for f in frames[::40] if len(f.data) >= 24]
    for path in folder.iterdir():
        blob = path.read_bytes()
        assert MKV_MAGIC not in blob, path
        assert CHAT.encode() not in blob, path
        assert not any(s in blob for s in samples), path


def test_h264_from_the_victim(tmp_path, keys) -> None:
    """A phone that sends H.264 (Annex B, as the tap delivers it) records too."""
    frames = [f for f in call_frames(3.0) if not (f.direction == "received" and f.kind == "video")]
    frames += [TapFrame("received", "video", "video/H264", 90000, 5000 + i * 3000, data, key, 1000.0 + i / 30)
               for i, (data, key) in enumerate(h264_stream(90))]
    frames.sort(key=lambda f: f.monotonic)
    rec, result, statuses, wanted = _record(tmp_path / "r", keys, frames)
    assert result.finalised
    mkv = tmp_path / "r.mkv"
    mkv.write_bytes(b"".join(iter_recording(tmp_path / "r", [keys[0]])))
    streams = json.loads(_ffprobe(mkv, "-show_streams", "-of", "json"))["streams"]
    assert [s["codec_name"] for s in streams[:4]] == ["h264", "opus", "vp8", "opus"]
    assert (streams[0]["width"], streams[0]["height"]) == (320, 240)
    subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(mkv), "-map", "0:v", "-f", "null", "-"],
                   check=True, capture_output=True, timeout=60)


def test_one_clock_rtp_spacing_anchored_to_arrival_keeps_sync_despite_jitter(tmp_path, keys, frames) -> None:
    """Arrivals jitter by up to +-40 ms; the recording keeps each stream's own
    cadence (from RTP) and audio and video captured at the same instant stay
    within 100 ms of each other, on both sides."""
    import random
    from dataclasses import replace

    rng = random.Random(7)
    t0 = frames[0].monotonic
    last: dict[tuple[str, str], float] = {}
    jittered = []
    for f in frames:  # each stream stays in order (a jitter buffer's output), late by 0-40 ms
        at = max(last.get((f.direction, f.kind), 0.0), f.monotonic + rng.uniform(0, 0.04))
        last[(f.direction, f.kind)] = at
        jittered.append(replace(f, monotonic=at))
    jittered.sort(key=lambda f: f.monotonic)
    rec, result, _, _ = _record(tmp_path / "r", keys, jittered)
    mkv = tmp_path / "r.mkv"
    mkv.write_bytes(b"".join(iter_recording(tmp_path / "r", [keys[0]])))

    def pts(stream: int) -> list[float]:
        out = _ffprobe(mkv, "-select_streams", str(stream), "-show_entries", "packet=pts_time", "-of", "csv=p=0")
        return [float(t) for t in out.split()]

    for video, audio, direction in ((0, 1, "received"), (2, 3, "sent")):
        v, a = pts(video), pts(audio)
        steps = [y - x for x, y in zip(v, v[1:], strict=False)]
        assert max(steps) - min(steps) < 0.004  # the sender's 30 fps cadence, not the network's jitter
        # the capture instant of video frame 60 (2.0 s) against audio packet 100 (2.0 s)
        src_v = [f for f in frames if f.direction == direction and f.kind == "video"]
        src_a = [f for f in frames if f.direction == direction and f.kind == "audio"]
        skew = (v[60] - a[100]) - (src_v[60].monotonic - src_a[100].monotonic)
        assert abs(skew) < 0.1, skew
    assert t0 == frames[0].monotonic


def test_router_sends_each_call_its_frames_chat_and_signals(tmp_path, keys, frames) -> None:
    from dataclasses import replace

    from evr_desktop.call import events as ev
    from evr_desktop.recording.router import RecordingRouter

    officer, escrow = keys
    router = RecordingRouter()
    recs = {s: Recorder(tmp_path / s, officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                        session=s, fsync=False) for s in ("appt-a", "appt-b")}
    for s, r in recs.items():
        router.attach(s, r)
    with pytest.raises(ValueError):
        router.attach("appt-a", recs["appt-a"])
    for f in frames[:400]:
        router(replace(f, session="appt-a"))
        router(replace(f, session="appt-b"))
        router(replace(f, session="appt-nobody"))  # no recorder: dropped
    router.on_event(ev.ChatReceived("appt-a", "only in a"))
    router.on_event(ev.VictimFlag("appt-b", "cant-talk", True))
    router.on_event(ev.Stats("appt-a", None, 0, 0, 0, 0, None, None, 0, 0))  # ignored
    router.officer_chat("appt-b", "only in b")
    results = {s: router.detach(s).close() for s in recs}  # type: ignore[union-attr]
    assert router.detach("appt-a") is None
    assert all(r.finalised for r in results.values())
    texts = {}
    for s in recs:
        plain = b"".join(iter_recording(tmp_path / s, [escrow]))
        texts[s] = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-map", "0:s", "-f", "srt", "-"],
                                  input=plain, capture_output=True, check=True, timeout=60).stdout.decode()
    assert "Victim: only in a" in texts["appt-a"] and "only in b" not in texts["appt-a"]
    assert "Officer: only in b" in texts["appt-b"] and "can't talk freely — ON" in texts["appt-b"]


def test_a_resolution_change_continues_the_same_recording(tmp_path, keys) -> None:
    """The phone rotates: the victim's video goes from 320x240 to 240x320 and
    then 640x480 (each new size starts on a keyframe, as encoders do)."""
    from dataclasses import replace

    from tests.recording_media import vp8_stream

    frames = call_frames(6.0)
    victim = [f for f in frames if f.direction == "received" and f.kind == "video"]
    others = [f for f in frames if not (f.direction == "received" and f.kind == "video")]
    rotated = vp8_stream(60, w=240, h=320, seed=3) + vp8_stream(60, w=640, h=480, seed=4)
    changed = victim[:60] + [replace(f, data=data, keyframe=key)
                             for f, (data, key) in zip(victim[60:], rotated, strict=False)]
    rec, result, _, _ = _record(tmp_path / "r", keys, sorted(others + changed, key=lambda f: f.monotonic))
    assert result.finalised and rec._tracks[0].dropped == 0
    plain = b"".join(iter_recording(tmp_path / "r", [keys[0]]))
    sizes = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "frame=width,height", "-of", "csv=p=0", "-i", "pipe:0"], input=plain,
                           capture_output=True, check=True, timeout=60).stdout.decode().split()
    assert {"320,240", "240,320", "640,480"} <= set(sizes)
    assert len(sizes) >= 170
    subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", "pipe:0", "-map", "0:v", "-f", "null", "-"],
                   input=plain, check=True, capture_output=True, timeout=60)


def test_segments_cut_exactly_at_cluster_ends_however_the_muxer_writes(recorded, keys, tmp_path) -> None:
    """The muxer usually writes a Cluster in one call; if it wrote two at once,
    or one in pieces, every segment must still hold exactly one Cluster."""
    import random

    from evr_desktop.recording.ebml import ClusterTracker
    from evr_desktop.recording.segments import SegmentWriter

    plain = recorded[4]
    reference = ClusterTracker()
    reference.feed(plain)
    clusters = reference.clusters_done
    rng = random.Random(3)
    for how in ("all at once", "bytes", "random"):
        folder = tmp_path / how.replace(" ", "-")
        folder.mkdir()
        writer = SegmentWriter(folder, [k.recipient for k in keys], fsync=False)
        if how == "all at once":
            writer.write(plain)
        else:
            pos = 0
            while pos < len(plain):
                step = rng.randint(1, 7) if how == "bytes" and pos < 20_000 else rng.randint(1, 150_000)
                writer.write(memoryview(plain)[pos:pos + step])
                pos += step
        writer.close()
        segs = writer.segments
        assert len(segs) == clusters and all(s.complete for s in segs), how
        parts = [decrypt((folder / s.file).read_bytes(), [keys[0]]) for s in segs]
        assert b"".join(parts) == plain, how
        assert all(p.startswith(b"\x1f\x43\xb6\x75") for p in parts[1:]), how
        assert [s.start_ms for s in segs] == reference.cluster_timestamps, how


def test_fsyncs_run_off_the_writers_thread_and_close_waits_for_them(recorded, keys, tmp_path, monkeypatch) -> None:
    """The writer runs on the tap's worker: a segment's fsync must not hold it
    (a slow disk would hold every frame behind it), yet every finalised segment
    is fsynced, closed and its folder fsynced before ``close()`` returns."""
    import threading

    from evr_desktop.recording import segments as seg_mod
    from evr_desktop.recording.segments import SegmentWriter

    plain = recorded[4]
    writer_thread = threading.get_ident()
    release = threading.Event()
    synced: list[tuple[int, int, bool]] = []  # (fd, thread, is a folder)
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        release.wait(10)  # a disk that takes its time, until the test lets it go
        synced.append((fd, threading.get_ident(), os.path.isdir(f"/proc/self/fd/{fd}")
                       and os.path.isdir(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    monkeypatch.setattr(seg_mod.os, "fsync", slow_fsync)
    monkeypatch.setattr("evr_desktop.fsutil.os.fsync", slow_fsync)
    writer = SegmentWriter(tmp_path, [k.recipient for k in keys], fsync=True)
    writer.write(plain)  # every Cluster finalised while the first fsync is still blocked
    assert len(writer.segments) > 3 and all(s.complete for s in writer.segments[:-1])
    assert synced == []  # none done yet, and the writer was not held
    assert open_under(tmp_path)  # the syncer still holds the finished segments open (the check below can see them)
    done = threading.Event()
    closer = threading.Thread(target=lambda: (writer.close(), done.set()))
    closer.start()
    assert not done.wait(0.3)  # close() waits for the fsyncs still to come
    release.set()
    closer.join(10)
    assert done.is_set() and writer.error is None
    files = [s for s in synced if not s[2]]
    assert len(files) == len(writer.segments)  # each segment's file, once
    assert any(s[2] for s in synced)  # and the folder
    assert all(t != writer_thread for _, t, _ in synced)
    assert open_under(tmp_path) == []  # every segment file and the folder closed
    assert writer.syncer.stats.files == len(writer.segments)
    parts = [decrypt((tmp_path / s.file).read_bytes(), [keys[0]]) for s in writer.segments]
    assert b"".join(parts) == plain


def test_a_failed_fsync_fails_the_recording_and_marks_the_segment(tmp_path, keys, frames, monkeypatch) -> None:
    """An fsync that fails (EIO at writeback, a disk that filled) is a failed
    write: the officer is told, the segment it hit is never listed as
    complete, and what was made durable before stays valid."""
    import errno

    from evr_desktop.recording import segments as seg_mod

    real_fsync = os.fsync

    def failing(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("seg-000002.age"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(seg_mod.os, "fsync", failing)
    officer, escrow = keys
    now = [frames[0].monotonic]
    statuses: list = []
    rec = Recorder(tmp_path / "r", officer_recipient=officer.recipient, escrow_recipient=escrow.recipient,
                   session="appt-1", clock=lambda: now[0], on_status=statuses.append)
    for f in frames:
        now[0] = f.monotonic
        rec(f)
    result = rec.close("call ended")
    assert rec.state != RECORDING and not result.finalised
    assert any(s.state == "failed" and "Input/output error" in s.message for s in statuses)
    segs = rec.segments
    assert segs[0].complete and not segs[1].complete and "durable" in segs[1].note
    assert not any(s.complete for s in segs[1:])
    assert decrypt((tmp_path / "r" / segs[0].file).read_bytes(), [officer]).startswith(MKV_MAGIC)
