"""Stills: the victim's current frame as an exhibit (issue 10, "Stills").

Runs in the media process, where the frame is: ``capture_still`` takes the
newest decoded frame of the victim at the size it was received (the engine's
display array, BGRA; it is never scaled for the window), encodes it
losslessly as PNG, encrypts it as it is written to the call's two recipients
(the officer's and the force escrow's: the recorder's, so a still is refused
where the recording had none), and returns what the app records and audits:
the file, the SHA-256 of the ciphertext as stored and of the PNG, sizes, the
frame's size and its time on the recording's clock.

Files go in the recording's own folder, beside the segments but out of their
``seg-*.age`` pattern (``manifest.iter_recording`` refuses unlisted segments)::

    <recording>/stills/still-0001.png.age
    <recording>/stills/still-0002.png.age ...

Each is created exclusively (``O_EXCL``, mode 0600), written through the
streaming ``Encryptor`` (no plaintext file, not even a temporary one),
fsynced, and its folder fsynced. A write that fails (a full disk) removes
the partial ciphertext and raises: the still is not taken, the call and the
recording go on, and the officer may try again. The PNG carries its exhibit
reference, the appointment and its times as ``iTXt`` chunks (inside the
encryption), so a still found after a crash (``list_stills``, used by
recovery) still says what it is.

The PNG's pixels are the frame's B, G, R bytes exactly (the alpha byte of
BGRA is always opaque and is dropped); the encoding runs on a thread of the
caller's (never the engine's loop: ~20-60 ms for 1280x720 here).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..fsutil import PRIVATE_FILE_MODE, ensure_private_dir, fsync_dir
from ..vault.age import Encryptor, Identity, decrypt, parse_recipient
from .segments import HashingFile

STILLS_DIR = "stills"
STILL_GLOB = "still-*.png.age"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_PREFIX = "EVR-"


class StillRefused(ValueError):
    """A still cannot be taken (no frame yet, no call, no recipients)."""


class NoFrame(StillRefused):
    """No video from the victim has arrived yet."""


@dataclass(frozen=True)
class StillResult:
    """What the app records and audits (all public: no pixel, no key)."""

    file: str  # absolute path of the encrypted PNG
    name: str  # its path inside the recording folder, e.g. "stills/still-0001.png.age"
    exhibit: str
    ciphertext_sha256: str
    ciphertext_size: int
    plaintext_sha256: str  # of the PNG
    plaintext_size: int
    width: int
    height: int
    at_s: float | None  # on the recording's clock; None: the recording had no frame yet
    taken_at: str  # ISO 8601 UTC
    recording_state: str  # the recorder's state: "recording", "starting" or "failed"

    def manifest_entry(self) -> dict[str, Any]:
        entry = asdict(self)
        entry["file"] = self.name  # relative in the manifest: the folder may move
        entry.pop("name")
        return entry


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds")


# -- PNG ----------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(bgra: Any, text: dict[str, str] | None = None) -> bytes:
    """The frame as PNG (lossless; OpenCV), with ``text`` as ``iTXt`` chunks after the header.

    ``bgra``: (h, w, 4) uint8 as the engine keeps the victim's frames, or (h, w, 3) BGR."""
    import cv2
    import numpy as np

    frame = np.asarray(bgra)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8 or frame.size == 0:
        raise ValueError(f"not a BGR(A) frame: shape {frame.shape}, {frame.dtype}")
    bgr = np.ascontiguousarray(frame[:, :, :3])
    ok, encoded = cv2.imencode(".png", bgr)
    if not ok:
        raise ValueError("the frame could not be encoded as PNG")
    png = encoded.tobytes()
    if not text:
        return png
    # After IHDR (signature 8 bytes + IHDR chunk 25 bytes). iTXt, not tEXt: the values are
    # UTF-8 (an exhibit reference may be in any script): keyword NUL, not compressed (0, 0),
    # no language tag NUL, no translated keyword NUL, the text.
    head = 8 + 25
    if png[:8] != _PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("unexpected PNG layout from the encoder")
    extra = b"".join(_chunk(b"iTXt", f"{_TEXT_PREFIX}{k}".encode("latin-1") + b"\0\0\0\0\0" + v.encode("utf-8"))
                     for k, v in text.items())
    return png[:head] + extra + png[head:]


def png_text(png: bytes) -> dict[str, str]:
    """The ``EVR-`` text chunks of a PNG (``encode_png``'s ``text``)."""
    out: dict[str, str] = {}
    if png[:8] != _PNG_SIGNATURE:
        return out
    pos = 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        data = png[pos + 8:pos + 8 + length]
        if kind in (b"tEXt", b"iTXt") and b"\0" in data:
            key, value = data.split(b"\0", 1)
            name = key.decode("latin-1")
            if kind == b"iTXt":  # compression flag and method, language tag, translated keyword
                flags, rest = value[:2], value[2:]
                if flags != b"\0\0" or rest.count(b"\0") < 2:
                    pos += 12 + length
                    continue
                value = rest.split(b"\0", 2)[2]
            if name.startswith(_TEXT_PREFIX):
                out[name[len(_TEXT_PREFIX):]] = value.decode("utf-8" if kind == b"iTXt" else "latin-1", "replace")
        if kind == b"IDAT":
            break  # the text comes before the image data
        pos += 12 + length
    return out


# -- writing ------------------------------------------------------------------------


def _open_next(folder: Path) -> tuple[Path, int]:
    """The next free ``still-NNNN.png.age``, created exclusively (0600)."""
    taken = [int(p.name[6:10]) for p in folder.glob(STILL_GLOB) if p.name[6:10].isdigit()]
    number = max(taken, default=0) + 1
    while True:
        path = folder / f"still-{number:04d}.png.age"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_FILE_MODE)
        except FileExistsError:
            number += 1
            continue
        return path, fd


def write_encrypted(folder: Path, png: bytes, recipients: Sequence[str], *,
                    fsync: bool = True) -> tuple[Path, str, int]:
    """Encrypt ``png`` into a new file under ``folder/stills``; return (path, ciphertext SHA-256, size).

    On any error the partial file is removed and the error raised."""
    if len(recipients) < 2 or not all(r and r.strip() for r in recipients):
        raise StillRefused(
            "no force escrow recipient: a still cannot be taken (the evidence office could not read it)")
    for r in recipients:
        try:
            parse_recipient(r)
        except ValueError as exc:
            raise StillRefused(f"a still cannot be taken: {exc}") from None
    stills = ensure_private_dir(Path(folder) / STILLS_DIR)
    path, fd = _open_next(stills)
    sink = HashingFile(fd)
    try:
        enc = Encryptor(sink, list(recipients))  # type: ignore[arg-type]  # a write()-only sink
        view = memoryview(png)
        for start in range(0, len(view), 1 << 16):
            enc.write(view[start:start + (1 << 16)])
        enc.close()
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)  # a partial ciphertext is no exhibit; nothing of the frame is lost that was kept
        except OSError:
            pass
        raise
    os.close(fd)
    if fsync:
        fsync_dir(stills)
    return path, sink.sha.hexdigest(), sink.size


def capture_still(recorder: Any, frame: Any, *, exhibit: str, appointment: str, wall: float | None = None,
                  fsync: bool = True) -> StillResult:
    """Take ``frame`` (the victim's, BGRA) as exhibit ``exhibit`` into ``recorder``'s folder,
    timestamped on its clock, and list it for its manifest. Raises ``StillRefused``
    (no frame, no recipients) or ``OSError`` (the disk refused it)."""
    if frame is None:
        raise NoFrame("no frame from the victim yet: a still needs the victim's video")
    if recorder is None:
        raise StillRefused("this call is not being recorded, so there are no recipients to encrypt a still to")
    import time

    at_s = recorder.elapsed()
    taken = time.time() if wall is None else wall
    h, w = int(frame.shape[0]), int(frame.shape[1])
    taken_at = _iso(taken)
    png = encode_png(frame, {"Exhibit": exhibit, "Appointment": appointment, "Taken-At": taken_at,
                             "At-Seconds": "none" if at_s is None else f"{at_s:.3f}",
                             "Recording": str(recorder.recording_id)})
    path, ct_sha, ct_size = write_encrypted(recorder.folder, png, recorder.recipients, fsync=fsync)
    result = StillResult(
        file=str(path), name=f"{STILLS_DIR}/{path.name}", exhibit=exhibit, ciphertext_sha256=ct_sha,
        ciphertext_size=ct_size, plaintext_sha256=hashlib.sha256(png).hexdigest(), plaintext_size=len(png),
        width=w, height=h, at_s=None if at_s is None else round(at_s, 3), taken_at=taken_at,
        recording_state=str(recorder.state))
    recorder.add_still(result.manifest_entry())
    return result


# -- reading back (recovery, the evidence team) -----------------------------------------


def list_stills(folder: Path, identities: Sequence[Identity] = ()) -> list[dict[str, Any]]:
    """The stills in a recording folder: file, ciphertext hash and size; with
    ``identities`` also the PNG's hash and size and what its text says
    (exhibit, times). A file that does not decrypt is listed with the reason."""
    out: list[dict[str, Any]] = []
    for path in sorted((Path(folder) / STILLS_DIR).glob(STILL_GLOB)):
        blob = path.read_bytes()
        entry: dict[str, Any] = {"file": f"{STILLS_DIR}/{path.name}",
                                 "ciphertext_sha256": hashlib.sha256(blob).hexdigest(), "ciphertext_size": len(blob)}
        if identities:
            try:
                png = decrypt(blob, identities)
            except Exception as exc:  # noqa: BLE001 - listed with the reason, never fatal to recovery
                entry["note"] = f"not decryptable: {type(exc).__name__}: {exc}"
            else:
                text = png_text(png)
                at = text.get("At-Seconds", "none")
                entry.update(plaintext_sha256=hashlib.sha256(png).hexdigest(), plaintext_size=len(png),
                             exhibit=text.get("Exhibit"), taken_at=text.get("Taken-At"),
                             at_s=None if at in ("none", "") else float(at))
        out.append(entry)
    return out


def manifest_stills(manifest_data: dict[str, Any]) -> list[dict[str, Any]]:
    """The stills a manifest lists (none in one written before stills existed)."""
    return [dict(s) for s in manifest_data.get("stills") or []]
