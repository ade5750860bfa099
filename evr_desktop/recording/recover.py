"""Recovery of a recording the app did not close (killed, crashed, power cut).

Runs in the app process at unlock, which holds the officer's identity (the
media process never does). For each unfinished recording folder (a start
record and no manifest) it decrypts every segment: a finalised one is
listed as complete; one that ends without its final chunk is listed as
*unfinished*, with the SHA-256 of its authenticated prefix (what
``decrypt_prefix`` releases) and the original ciphertext kept untouched.
The manifest it writes says ``finalised: false`` with the reason. A
truncated segment is never listed as complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..vault.age import AgeError, HeaderError, Identity, decrypt_prefix
from .ebml import ClusterTracker
from .manifest import MANIFEST_FILE, MANIFEST_FORMAT, START_FILE, read_start, write_manifest
from .segments import SegmentInfo, segment_name
from .stills import list_stills

_HEADER_CUT_LIMIT = 1024  # our headers (two X25519 stanzas) are ~250 bytes
DEFAULT_REASON = "the app stopped before the recording was closed (recovered at the next unlock)"


@dataclass(frozen=True)
class RecoveryResult:
    folder: Path
    manifest_sha256: str
    segments: int  # listed
    complete: int  # of which finalised
    recovered_bytes: int  # plaintext of the unfinished segment's authenticated prefix
    duration_s: float
    reason: str
    problems: tuple[str, ...]


def find_unfinished(root: Path) -> list[Path]:
    """Recording folders under ``root`` with a start record and no manifest."""
    root = Path(root)
    if not root.exists():
        return []
    return sorted(p.parent for p in root.rglob(START_FILE) if not (p.parent / MANIFEST_FILE).exists())


def recover(folder: Path, identities: Sequence[Identity], *, recipients: Sequence[str] | None = None,
            reason: str = DEFAULT_REASON) -> RecoveryResult:
    """Write the unfinalised manifest of an unfinished recording.

    ``recipients``: whom the manifest is encrypted to (the app passes the
    unlocked vault's officer and escrow recipients); by default those of the
    start record."""
    folder = Path(folder)
    start = read_start(folder)
    if (folder / MANIFEST_FILE).exists():
        raise FileExistsError(f"{folder} already has a manifest")
    files = sorted(folder.glob("seg-*.age"))
    problems: list[str] = []
    infos: list[SegmentInfo] = []
    tracker = ClusterTracker()
    recovered = 0
    for expected, path in enumerate(files, start=1):
        if path.name != segment_name(expected):
            problems.append(f"segment {expected} ({segment_name(expected)}) is missing; found {path.name}")
            break
        blob = path.read_bytes()
        info = SegmentInfo(index=expected, file=path.name, ciphertext_sha256=hashlib.sha256(blob).hexdigest(),
                           ciphertext_size=len(blob))
        try:
            plain, finalised = decrypt_prefix(blob, identities)
        except AgeError as exc:
            if isinstance(exc, HeaderError) and expected == len(files) and len(blob) < _HEADER_CUT_LIMIT:
                # The crash came while the header itself was being written:
                # nothing of this segment's media had reached the disk.
                info.plaintext_sha256 = hashlib.sha256(b"").hexdigest()
                info.note = "unfinished: cut inside its age header, nothing recoverable"
                infos.append(info)
                break
            problems.append(f"{path.name} is damaged: {exc}")
            info.note = f"damaged, not decryptable: {exc}"
            info.plaintext_sha256 = None
            info.plaintext_size = None
            infos.append(info)
            break
        info.plaintext_sha256 = hashlib.sha256(plain).hexdigest()
        info.plaintext_size = len(plain)
        info.complete = finalised
        before = len(tracker.cluster_timestamps)
        try:
            tracker.feed(plain)
        except ValueError:
            pass
        if len(tracker.cluster_timestamps) > before:
            info.start_ms = tracker.cluster_timestamps[before]
        if not finalised:
            recovered += len(plain)
            info.note = "unfinished: only its authenticated prefix is part of the recording; the tail was lost"
        infos.append(info)
        if not finalised and expected != len(files):
            problems.append(f"{path.name} is unfinished but later segments exist")
    for a, b in zip(infos, infos[1:], strict=False):
        a.end_ms = b.start_ms
    if infos and tracker.cluster_timestamps:
        infos[-1].end_ms = tracker.cluster_timestamps[-1]
    duration = (infos[-1].end_ms or 0) / 1000 if infos else 0.0
    data: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "recording_id": start.get("recording_id"),
        "session": start.get("session", ""),
        "finalised": False,
        "reason": reason,
        "recovered_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
        "started_at": start.get("created_at"),
        "ended_at": None,
        "duration_s": duration,
        "recipients": list(recipients or start["recipients"]),
        "container": "matroska",
        "problems": problems,
        "segments": [i.to_json() for i in infos],
        # Stills taken before the crash (recording/stills.py): each file's hashes, and what its PNG says it is.
        "stills": list_stills(folder, identities),
    }
    digest = write_manifest(folder, data, list(recipients or start["recipients"]))
    return RecoveryResult(folder, digest, len(infos), sum(1 for i in infos if i.complete), recovered,
                          duration, reason, tuple(problems))
