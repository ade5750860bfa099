"""The muxer's output, cut into short age files as it is written.

:class:`SegmentWriter` is the non-seekable binary file object PyAV writes
the Matroska stream into. Every byte goes straight into ``vault.age``'s
streaming :class:`~evr_desktop.vault.age.Encryptor` over a segment file
(mode 0600, created exclusively): no plaintext ever reaches the disk. After
the last byte of each Cluster (found by following the EBML structure, even
in the middle of a write), the segment is finalised: the age final chunk is
written and the file handed to the writer's :class:`Syncer`, which fsyncs it,
closes it and fsyncs the folder. The next byte opens the next segment, so
each segment holds exactly one Cluster (the first also the Matroska header).
Decrypting the segments in order and concatenating them gives the muxer's
output byte for byte.

**Why the fsyncs have a thread of their own.** The writer runs on the tap's
worker, so a blocking fsync there held up the frames behind it; measured
with Chromium on the far side (bench/README.md, issue 10), the recorder's
fsyncs on that path were what made recording add ~6 ms to the officer's
video. Durability is unchanged in substance: a segment's fsync starts the
moment it is finalised (the syncer only waits for the fsyncs before it), a
killed process loses nothing the kernel holds (only the open segment is
unfinished, as before), and ``close()`` waits for every fsync before it
returns, so the manifest is written only over segments already on disk. An
fsync that fails (EIO, a disk that filled at writeback) fails the writer
the same way a failed write does, and the segment is marked incomplete.

A write error (a full disk, say) puts the writer in the failed state: the
open segment is abandoned *without* a final chunk (it reads as truncated,
never as complete), later writes are swallowed, and ``error`` says why.
Everything finalised before stays valid.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import PRIVATE_FILE_MODE, fsync_dir
from ..vault.age import Encryptor
from .ebml import ClusterTracker

log = logging.getLogger("evr_desktop.recording")

SEGMENT_PATTERN = "seg-{:06d}.age"
#: The syncer thread's nice value (Linux sets it per thread): its kernel work
#: (the journal commit an fsync starts) yields the CPU to the call's threads.
SYNCER_NICE = 10


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
class SyncStats:
    """What the fsyncs cost (the recorder logs it on close): counts and times, no content."""

    files: int = 0
    folders: int = 0
    seconds: float = 0.0
    longest: float = 0.0

    def note(self, seconds: float) -> None:
        self.seconds += seconds
        self.longest = max(self.longest, seconds)


class Syncer:
    """Makes finished segments durable on a thread of its own, in order.

    ``submit(info, file)`` hands over a finalised segment's open file; the
    thread fsyncs and closes it, then fsyncs ``folder`` once for everything
    it took in one go (a new directory entry is durable only then). ``drain()``
    waits until all that was submitted is done, and ends the thread. The first
    failure is kept in ``error``; its segment (and every later one) is marked
    incomplete, and every file is still closed.
    """

    def __init__(self, folder: Path, *, fsync: bool = True) -> None:
        self.folder = folder
        self.fsync = fsync
        self.error: BaseException | None = None
        self.stats = SyncStats()
        self._queue: queue.Queue[tuple[SegmentInfo, HashingFile] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, info: SegmentInfo, file: HashingFile) -> None:
        if not self.fsync:
            file.close()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="recording-fsync", daemon=True)
            self._thread.start()
        self._queue.put((info, file))

    def drain(self) -> None:
        """Every submitted segment synced (or failed) and closed; the thread ended."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SYNCER_NICE)
        except (AttributeError, OSError):  # pragma: no cover - not Linux, or not allowed
            pass
        ending = False
        while not ending:
            batch = [self._queue.get()]
            while True:  # everything already waiting goes in this round (one folder fsync)
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ending = None in batch
            done = [item for item in batch if item is not None]
            for info, file in done:
                self._sync(info, file)
            if done and self.error is None:
                t = time.perf_counter()
                try:
                    fsync_dir(self.folder)
                except OSError as exc:
                    self._failed(done[-1][0], exc)
                self.stats.folders += 1
                self.stats.note(time.perf_counter() - t)

    def _sync(self, info: SegmentInfo, file: HashingFile) -> None:
        try:
            if self.error is None:
                t = time.perf_counter()
                os.fsync(file.fd)
                self.stats.files += 1
                self.stats.note(time.perf_counter() - t)
        except OSError as exc:
            self._failed(info, exc)
        finally:
            try:
                file.close()
            except OSError as exc:
                self._failed(info, exc)
        if self.error is not None and info.complete:
            info.complete = False
            info.note = info.note or f"not made durable: {self.error}"

    def _failed(self, info: SegmentInfo, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.error("recording: segment %d could not be made durable: %s", info.index, exc)
        info.complete = False
        info.note = info.note or f"not made durable: {exc}"


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
        self.syncer = Syncer(self.folder, fsync=fsync)
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
        if self.error is None and self.syncer.error is not None:
            self.abandon(self.syncer.error)  # an fsync failed behind us: stop as for a failed write
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
        self._open = None
        info = seg.info
        self._note_start(info)
        info.ciphertext_sha256 = seg.file.sha.hexdigest()
        info.ciphertext_size = seg.file.size
        info.plaintext_sha256 = seg.plain.hexdigest()
        info.complete = True
        prev = self.segments[-2] if len(self.segments) > 1 else None
        if prev is not None and prev.end_ms is None:
            prev.end_ms = info.start_ms
        self.syncer.submit(info, seg.file)  # fsync, close, folder fsync: off this thread
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
        """Finalise the open segment (what the muxer wrote last), and wait until
        every finalised segment is on disk (or known not to be)."""
        if self._closed:
            return
        self._closed = True
        if self._open is not None and self.error is None:
            try:
                self._finish(self._open)
            except Exception as exc:
                self.abandon(exc)
        self.syncer.drain()
        if self.error is None and self.syncer.error is not None:
            self.error = self.syncer.error
        if self.segments and self.segments[-1].end_ms is None:
            self.segments[-1].end_ms = last_ms

    @property
    def closed(self) -> bool:
        return self._closed
