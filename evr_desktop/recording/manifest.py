"""The recording's manifest, and reading a recording back.

Layout of a recording folder::

    recording.json      start record (public: ids, start time, recipients, format)
    seg-000001.age ...  the Matroska stream, cut into age files
    manifest.json.age   written when the recording ends (or by recovery)

The manifest is JSON, encrypted to the same recipients as the segments (it
reveals timing only, but nothing of a call leaves the laptop readable by
others). Its integrity anchor is the SHA-256 of ``manifest.json.age`` as
written, which the caller puts into the hash-chained audit log with the
start, end and duration. ``sha256sum manifest.json.age`` checks it against the
audit entry without any key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..fsutil import atomic_write, sha256_file
from ..vault.age import Decryptor, Identity, decrypt, decrypt_prefix, encrypt

MANIFEST_FILE = "manifest.json.age"
START_FILE = "recording.json"
MANIFEST_FORMAT = "evr-recording-manifest/1"
START_FORMAT = "evr-recording/1"


_EMPTY = hashlib.sha256(b"").hexdigest()


class ManifestError(Exception):
    """The segments do not match the manifest (the message names the segment)."""


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]
    sha256: str  # of manifest.json.age as stored

    @property
    def segments(self) -> list[dict[str, Any]]:
        return list(self.data["segments"])

    @property
    def finalised(self) -> bool:
        return bool(self.data.get("finalised"))


def write_manifest(folder: Path, data: dict[str, Any], recipients: Sequence[str]) -> str:
    """Encrypt and store the manifest atomically; return its SHA-256 (hex)."""
    blob = encrypt(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"), recipients)
    atomic_write(Path(folder) / MANIFEST_FILE, blob)
    return hashlib.sha256(blob).hexdigest()


def read_manifest(folder: Path, identities: Sequence[Identity]) -> Manifest:
    blob = (Path(folder) / MANIFEST_FILE).read_bytes()
    data = json.loads(decrypt(blob, identities))
    if data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"not a recording manifest ({data.get('format')!r})")
    return Manifest(data, hashlib.sha256(blob).hexdigest())


def read_start(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(folder) / START_FILE).read_text("utf-8"))
    if data.get("format") != START_FORMAT:
        raise ManifestError(f"not a recording start record ({data.get('format')!r})")
    return data


def check_segments(folder: Path, manifest: Manifest) -> None:
    """Raise :class:`ManifestError` naming the first segment that is missing,
    out of place, replaced, or not listed."""
    folder = Path(folder)
    listed = manifest.segments
    by_hash = {s["ciphertext_sha256"]: s for s in listed}
    names = {s["file"] for s in listed}
    for i, seg in enumerate(listed, start=1):
        if seg["index"] != i:
            raise ManifestError(f"the manifest lists segment {seg['index']} in position {i}")
        path = folder / seg["file"]
        if not path.exists():
            raise ManifestError(f"segment {i} ({seg['file']}) is missing")
        digest = sha256_file(path)
        if digest != seg["ciphertext_sha256"]:
            other = by_hash.get(digest)
            if other is not None:
                raise ManifestError(
                    f"segment {i} ({seg['file']}) holds segment {other['index']}'s content: "
                    "segments swapped or out of order")
            raise ManifestError(f"segment {i} ({seg['file']}) does not match the manifest (replaced or damaged)")
    extra = sorted(p.name for p in folder.glob("seg-*.age") if p.name not in names)
    if extra:
        raise ManifestError(f"{extra[0]} is in the folder but not in the manifest")


def iter_recording(folder: Path, identities: Sequence[Identity]) -> Iterator[bytes]:
    """The plaintext of a recording, segment after segment in manifest order,
    each checked against the manifest (ciphertext first, then plaintext).
    Raises :class:`ManifestError` or an ``AgeError``; nothing of a segment
    is released before the whole segment authenticated and matched."""
    folder = Path(folder)
    manifest = read_manifest(folder, identities)
    check_segments(folder, manifest)
    for seg in manifest.segments:
        with open(folder / seg["file"], "rb") as fh:
            plain = _decrypt_segment(fh, identities, seg)
        yield plain


def _decrypt_segment(fh: BinaryIO, identities: Sequence[Identity], seg: dict[str, Any]) -> bytes:
    if not seg.get("complete") and seg.get("plaintext_size") == 0 and seg.get("plaintext_sha256") == _EMPTY:
        return b""  # cut inside its header by a crash (the ciphertext hash was checked)
    if seg.get("complete"):
        plain = b"".join(Decryptor(fh, identities))
    else:
        # Left unfinished (a crash or a write error): only its authenticated
        # prefix is part of the recording, as recovery hashed it.
        plain, finalised = decrypt_prefix(fh, identities)
        if finalised:
            raise ManifestError(f"segment {seg['index']} ({seg['file']}) is listed as unfinished but is complete")
    if seg.get("plaintext_sha256") is None:
        # An unfinished segment the recorder abandoned after a write error: it
        # had no key to hash the authenticated prefix; the ciphertext hash,
        # checked already, pins the file and age authenticates the prefix.
        return plain
    if hashlib.sha256(plain).hexdigest() != seg["plaintext_sha256"]:
        raise ManifestError(f"segment {seg['index']} ({seg['file']}) decrypts to other content than the manifest says")
    return plain
