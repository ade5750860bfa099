"""The recordings of one appointment, as the app lists them (issue 10 item 9).

``list_recordings(root, identities)`` reads every recording folder under
``root`` (``paths.recordings / <appointment id>``): the start record, the
manifest (decrypted: it needs the officer's identity, so this runs in the app
process) and its check against the segments on disk. A folder that cannot be
read is listed as **damaged**, with the reason, never skipped and never
mistaken for a good one. ``playback_keys`` unwraps the file keys the media
process needs to play a recording: the only secret that crosses to it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..vault.age import AgeError, Identity, unwrap_file_key
from .manifest import MANIFEST_FILE, START_FILE, ManifestError, check_segments, read_manifest, read_start

FINALISED = "finalised"
UNFINALISED = "unfinalised"  # closed by recovery, or after a write error: the reason says which
IN_PROGRESS = "in progress"  # no manifest yet: being recorded now, or recovery still to run
DAMAGED = "damaged"  # the manifest or the segments cannot be read or do not check


@dataclass(frozen=True)
class RecordingSummary:
    """One recording as the appointment's view shows it (no victim data: times, sizes, counts)."""

    recording_id: str
    folder: Path
    state: str
    reason: str = ""
    started_at: datetime | None = None
    duration_s: float | None = None
    size_bytes: int = 0
    segments: int = 0
    stills: int = 0

    @property
    def playable(self) -> bool:
        return self.state in (FINALISED, UNFINALISED) and self.segments > 0


@dataclass(frozen=True)
class PlaybackSegment:
    """What the media process needs to read one segment: its file, its file key, its plaintext size."""

    file: str
    file_key: bytes
    plaintext_size: int
    complete: bool

    def message(self) -> dict[str, Any]:
        return {"file": self.file, "file_key": base64.b64encode(self.file_key).decode("ascii"),
                "plaintext_size": self.plaintext_size, "complete": self.complete}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def summarise(folder: Path, identities: Sequence[Identity]) -> RecordingSummary:
    """One recording folder, read and checked; never raises for a bad folder."""
    folder = Path(folder)
    size = _folder_size(folder)
    segments = len(list(folder.glob("seg-*.age")))
    stills = len(list((folder / "stills").glob("still-*.png.age"))) if (folder / "stills").is_dir() else 0
    try:
        start = read_start(folder)
    except (OSError, ValueError, ManifestError) as exc:
        return RecordingSummary(folder.name, folder, DAMAGED, f"its start record cannot be read ({exc})",
                                size_bytes=size, segments=segments, stills=stills)
    rid = str(start.get("recording_id") or folder.name)
    started = _parse_time(start.get("created_at"))
    if not (folder / MANIFEST_FILE).exists():
        return RecordingSummary(rid, folder, IN_PROGRESS, "no manifest yet (being recorded, or to be recovered "
                                "at the next unlock)", started, None, size, segments, stills)
    try:
        manifest = read_manifest(folder, identities)
        check_segments(folder, manifest)
    except (AgeError, ManifestError, OSError, ValueError, KeyError, TypeError) as exc:
        return RecordingSummary(rid, folder, DAMAGED, f"it cannot be read: {exc}", started, None, size,
                                segments, stills)
    data = manifest.data
    listed_stills = data.get("stills")
    if isinstance(listed_stills, list):
        # The manifest lists the stills taken while it recorded; one taken as it
        # closed (or after it failed) is a file in stills/ only: count both ways.
        stills = max(stills, len(listed_stills))
    duration = data.get("duration_s")
    return RecordingSummary(
        rid, folder, FINALISED if manifest.finalised else UNFINALISED,
        "" if manifest.finalised else str(data.get("reason") or "not finalised"),
        _parse_time(data.get("started_at")) or started,
        float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
        size, len(manifest.segments), stills)


def list_recordings(root: Path, identities: Sequence[Identity]) -> list[RecordingSummary]:
    """Every recording folder under ``root`` (one appointment's), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and ((p / START_FILE).exists() or any(p.glob("seg-*.age")))]
    items = [summarise(p, identities) for p in folders]
    return sorted(items, key=lambda r: (r.started_at is None, r.started_at.isoformat() if r.started_at else "",
                                        r.recording_id))


def playback_keys(folder: Path, identities: Sequence[Identity]) -> tuple[dict[str, Any], list[PlaybackSegment]]:
    """The checked manifest and each segment's file key, in order. Raises
    ``ManifestError`` / ``AgeError`` for a recording that does not check."""
    folder = Path(folder)
    manifest = read_manifest(folder, identities)
    check_segments(folder, manifest)
    out = []
    for seg in manifest.segments:
        path = folder / seg["file"]
        size = int(seg.get("plaintext_size") or 0)
        if path.stat().st_size == 0 or (not seg.get("complete") and size == 0):
            continue  # cut inside its header by a crash: nothing to play
        with open(path, "rb") as fh:
            key = unwrap_file_key(fh, identities)
        out.append(PlaybackSegment(seg["file"], key, size, bool(seg.get("complete"))))
    return json.loads(json.dumps(manifest.data)), out
