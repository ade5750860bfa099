"""The muxer's output, cut into short age files as it is written.

:class:`SegmentWriter` is the non-seekable binary file object PyAV writes
the Matroska stream into. Every byte goes straight into ``vault.age``'s
streaming :class:`~evr_desktop.vault.age.Encryptor` over a segment file
(mode 0600, created exclusively): no plaintext ever reaches the disk. After
the last byte of each Cluster (found by following the EBML structure, even
in the middle of a write), the segment is finalised: the age final chunk is
written, the file fsynced and closed, and the folder fsynced. The next byte
opens the next segment, so each segment holds exactly one Cluster (the first
also the Matroska header). Decrypting the segments in order and
concatenating them gives the muxer's output byte for byte.

A write error (a full disk, say) puts the writer in the failed state: the
open segment is abandoned *without* a final chunk (it reads as truncated,
never as complete), later writes are swallowed, and ``error`` says why.
Everything finalised before stays valid.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import PRIVATE_FILE_MODE, fsync_dir
from ..vault.age import Encryptor
from .ebml import ClusterTracker

SEGMENT_PATTERN = "seg-{:06d}.age"


def segment_name(index: int) -> str:
    return SEGMENT_PATTERN.format(index)


@dataclass
class SegmentInfo:
    """One segment as the manifest lists it."""

    index: int
    file: str
    ciphertext_sha256: str = ""
    ciphertext_size: int = 0
    plaintext_sha256: str | None = ""
    plaintext_size: int | None = 0
    start_ms: int | None = None  # Timestamp of its first Cluster (recording clock)
    end_ms: int | None = None  # the next segment's start, or the last packet
    complete: bool = False  # finalised: ends with a valid final age chunk
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index, "file": self.file, "complete": self.complete,
            "ciphertext_sha256": self.ciphertext_sha256, "ciphertext_size": self.ciphertext_size,
            "plaintext_sha256": self.plaintext_sha256, "plaintext_size": self.plaintext_size,
            "start_s": None if self.start_ms is None else self.start_ms / 1000,
            "end_s": None if self.end_ms is None else self.end_ms / 1000,
            **({"note": self.note} if self.note else {}),
        }


class HashingFile:
    """A file written through a raw descriptor, hashing every byte on its way to
    disk (the ciphertext of a segment, or of a still): what ``Encryptor`` writes
    into, so the hash that goes into the manifest is of what is stored."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sha = hashlib.sha256()
        self.size = 0

    @classmethod
    def create(cls, path: Path) -> HashingFile:
        """``path`` created exclusively, owner-only."""
        return cls(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           PRIVATE_FILE_MODE))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            self.sha.update(view[:n])
            self.size += n
            view = view[n:]
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class _Open:
    info: SegmentInfo
    file: HashingFile
    enc: Encryptor
    plain: hashlib._Hash = field(default_factory=hashlib.sha256)


class SegmentWriter:
    """A write-only, non-seekable file object that encrypts into segments."""

    def __init__(self, folder: Path, recipients: Sequence[str], *,
                 on_segment: Callable[[SegmentInfo], None] | None = None,
                 fsync: bool = True) -> None:
        self.folder = Path(folder)
        self.recipients = list(recipients)
        self.segments: list[SegmentInfo] = []
        self.error: BaseException | None = None
        self._tracker = ClusterTracker()
        self._open: _Open | None = None
        self._on_segment = on_segment
        self._fsync = fsync
        self._closed = False

    # -- the file-object side PyAV uses ------------------------------------------------

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return sum(s.plaintext_size or 0 for s in self.segments)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if self.error is not None or self._closed or not n:
            return n  # failed: swallowed, so the muxer never sees an error
        try:
            data = bytes(data)
            # Cut exactly where each Cluster ends, even inside one write.
            ends = self._tracker.feed(data)
            start = 0
            for end in [*ends, n]:
                if end > start:
                    seg = self._open or self._start()
                    piece = data[start:end]
                    seg.enc.write(piece)
                    seg.plain.update(piece)
                    seg.info.plaintext_size = (seg.info.plaintext_size or 0) + len(piece)
                    if end in ends:
                        self._finish(seg)
                start = end
        except Exception as exc:  # OSError (disk full, I/O error), or a muxer stream we cannot follow
            self.abandon(exc)
        return n

    # -- segments ----------------------------------------------------------------------

    def _start(self) -> _Open:
        index = len(self.segments) + 1
        info = SegmentInfo(index=index, file=segment_name(index))
        self.segments.append(info)
        file = HashingFile.create(self.folder / info.file)
        try:
            enc = Encryptor(file, self.recipients)  # type: ignore[arg-type]  # a write()-only sink
        except BaseException:
            file.close()
            raise
        seg = _Open(info, file, enc)
        self._open = seg
        return seg

    def _finish(self, seg: _Open) -> None:
        seg.enc.close()
        if self._fsync:
            os.fsync(seg.file.fd)
        seg.file.close()
        self._open = None
        if self._fsync:
            fsync_dir(self.folder)
        info = seg.info
        self._note_start(info)
        info.ciphertext_sha256 = seg.file.sha.hexdigest()
        info.ciphertext_size = seg.file.size
        info.plaintext_sha256 = seg.plain.hexdigest()
        info.complete = True
        prev = self.segments[-2] if len(self.segments) > 1 else None
        if prev is not None and prev.end_ms is None:
            prev.end_ms = info.start_ms
        if self._on_segment is not None:
            self._on_segment(info)

    def _note_start(self, info: SegmentInfo) -> None:
        # Every segment ends where a Cluster ends, so segment k (from 1) holds
        # the header (k == 1) and Cluster k-1, from its first byte.
        stamps = self._tracker.cluster_timestamps
        if info.start_ms is None and info.index - 1 < len(stamps):
            info.start_ms = stamps[info.index - 1]

    def abandon(self, exc: BaseException) -> None:
        """Stop for good after an error; the open segment stays without its final chunk."""
        self.error = exc
        seg, self._open = self._open, None
        if seg is not None:
            seg.enc.abort()  # no final chunk: the file reads as truncated, which is the truth
            seg.info.ciphertext_sha256 = seg.file.sha.hexdigest()
            seg.info.ciphertext_size = seg.file.size
            seg.info.plaintext_sha256 = None  # its authenticated prefix is known only to a key holder
            seg.info.plaintext_size = None
            seg.info.note = f"abandoned after a write error: {exc}"
            self._note_start(seg.info)
            try:
                seg.file.close()
            except OSError:
                pass

    def close(self, last_ms: int | None = None) -> None:
        """Finalise the open segment (what the muxer wrote last)."""
        if self._closed:
            return
        self._closed = True
        if self._open is not None and self.error is None:
            try:
                self._finish(self._open)
            except Exception as exc:
                self.abandon(exc)
        if self.segments and self.segments[-1].end_ms is None:
            self.segments[-1].end_ms = last_ms

    @property
    def closed(self) -> bool:
        return self._closed
