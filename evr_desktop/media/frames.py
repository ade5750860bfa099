"""Display frames from the media process to the GUI through shared memory,
latest-wins: a slow painter gets the newest frame; older ones are overwritten,
never queued.

One ``FrameSlot`` per picture (the victim's video, the self view): a header,
then ``BUFFERS`` (3) frame buffers, each with its own little header.
Triple buffering: the writer (child) always has a buffer that is neither the
newest published one nor the one the reader (GUI) holds, so it never waits
and never writes under the reader's feet.

Header, 8 little-endian ``uint64`` words::

    0 magic   1 buffers   2 buffer bytes   3 latest = seq * 4 + index (0: none yet)
    4 held (reader: the buffer it paints from, 3 = none)
    5 writing (writer: the buffer it is filling, 3 = none)

Buffer header, 12 words: ``seq``, ``width``, ``height``, key length, then 64
bytes of key (``"remote:<appointment id>"``, ``"local"``). Pixels are BGRA,
rows packed.

The hand-over of a buffer is a two-flag handshake on aligned 8-byte words
(each side sets its flag, then reads the other's): the writer re-picks if the
reader just took the buffer it chose; the reader retries if the writer is
filling the one it took. ``latest`` is one word, so the newest index and its
sequence number are always read together.

The segment is created by the GUI process (owner-only, as POSIX shm is) and
unlinked as soon as the child has mapped it: nothing is left in ``/dev/shm``
when either process dies, and no other process can open it by name. It lives
in memory (tmpfs), never in a file.

Python 3.11's ``multiprocessing.shared_memory.SharedMemory`` registers every
segment it opens with a resource tracker (one more process, which unlinks it
when *that* process exits, bpo-39959); ``track=False`` came in 3.13. So the
segment is opened here with the same POSIX calls (``_posixshmem`` +
``mmap``) that SharedMemory makes, without the tracker.
"""

from __future__ import annotations

import mmap
import os
import secrets
import sys

import numpy as np

MAGIC = 0x45565246524D31  # "EVRFRM1"
BUFFERS = 3
NONE = 3
_HEADER_WORDS = 8
_META_WORDS = 12
_KEY_BYTES = 64
_H_MAGIC, _H_BUFFERS, _H_BYTES, _H_LATEST, _H_HELD, _H_WRITING = range(6)
_M_SEQ, _M_W, _M_H, _M_KEYLEN = range(4)

# The biggest frame each slot takes (bigger ones are dropped and counted).
REMOTE_MAX = (1920, 1080)
LOCAL_MAX = (640, 640)  # the self view's preview is at most 320 px wide


def _layout(buffer_bytes: int) -> tuple[int, int]:
    """(offset of the first pixel buffer, total size)."""
    head = 8 * (_HEADER_WORDS + BUFFERS * _META_WORDS)
    head = (head + 63) // 64 * 64
    return head, head + BUFFERS * buffer_bytes


def _open(name: str, size: int, create: bool) -> mmap.mmap:
    if sys.platform == "win32":  # pragma: no cover - the media process is POSIX-only for now
        return mmap.mmap(-1, size, tagname=name)
    import _posixshmem  # type: ignore[import-not-found]

    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = _posixshmem.shm_open("/" + name, flags, mode=0o600)
    try:
        if create:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def unlink(name: str) -> None:
    if sys.platform == "win32":  # pragma: no cover
        return
    import _posixshmem  # type: ignore[import-not-found]

    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        pass


class FrameSlot:
    """One shared picture. ``create()`` in the GUI process, ``attach()`` in
    the child; then ``publish`` (child) and ``acquire`` (GUI)."""

    def __init__(self, name: str, mm: mmap.mmap):
        self.name = name
        self._mm = mm
        words = np.frombuffer(mm, dtype="<u8", count=_HEADER_WORDS + BUFFERS * _META_WORDS)
        self._header = words[:_HEADER_WORDS]
        self._meta = words[_HEADER_WORDS:].reshape(BUFFERS, _META_WORDS)
        self.buffer_bytes = int(self._header[_H_BYTES])
        first, _size = _layout(self.buffer_bytes)
        self._pixels = [
            np.frombuffer(mm, dtype=np.uint8, count=self.buffer_bytes, offset=first + i * self.buffer_bytes)
            for i in range(BUFFERS)
        ]
        # reader side
        self._seq = 0
        self._view: np.ndarray | None = None
        self.copies = 0  # frames the reader had to copy (the hand-over lost a race)
        # writer side
        self.published = 0
        self.dropped = 0  # frames too big for the slot

    @classmethod
    def create(cls, max_size: tuple[int, int], prefix: str = "evr") -> FrameSlot:
        buffer_bytes = max_size[0] * max_size[1] * 4
        _first, size = _layout(buffer_bytes)
        name = f"{prefix}-{os.getpid()}-{secrets.token_hex(6)}"
        mm = _open(name, size, create=True)
        header = np.frombuffer(mm, dtype="<u8", count=_HEADER_WORDS)
        header[_H_BUFFERS] = BUFFERS
        header[_H_BYTES] = buffer_bytes
        header[_H_LATEST] = 0
        header[_H_HELD] = NONE
        header[_H_WRITING] = NONE
        header[_H_MAGIC] = MAGIC
        del header
        return cls(name, mm)

    @classmethod
    def attach(cls, name: str) -> FrameSlot:
        if sys.platform == "win32":  # pragma: no cover
            raise OSError("shared frames are POSIX-only for now")
        import _posixshmem  # type: ignore[import-not-found]

        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
        try:
            size = os.fstat(fd).st_size
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        slot = cls(name, mm)
        if int(slot._header[_H_MAGIC]) != MAGIC or int(slot._header[_H_BUFFERS]) != BUFFERS:
            raise OSError("not a frame slot")
        return slot

    def unlink(self) -> None:
        """Remove the name (the mappings stay valid until dropped)."""
        unlink(self.name)

    # -- the writer (media process) -------------------------------------------------

    def publish(self, key: str, frame: np.ndarray) -> bool:
        """Copy a BGRA frame (h, w, 4) in as the newest. False if it does not fit."""
        h, w = frame.shape[:2]
        n = h * w * 4
        key_bytes = key.encode("utf-8")[:_KEY_BYTES]
        if n > self.buffer_bytes or frame.ndim != 3 or frame.shape[2] != 4:
            self.dropped += 1
            return False
        header = self._header
        latest = int(header[_H_LATEST])
        seq = (latest >> 2) + 1
        newest = latest & 3 if latest else NONE
        while True:
            held = int(header[_H_HELD])
            index = next(i for i in range(BUFFERS) if i != newest and i != held)
            header[_H_WRITING] = index
            if int(header[_H_HELD]) != index:  # the reader did not just take it
                break
        meta = self._meta[index]
        meta[_M_SEQ] = 0  # being written
        self._pixels[index][:n].reshape(h, w, 4)[...] = frame
        meta[_M_W] = w
        meta[_M_H] = h
        meta[_M_KEYLEN] = len(key_bytes)
        meta[4:].view(np.uint8)[:len(key_bytes)] = np.frombuffer(key_bytes, dtype=np.uint8)
        meta[_M_SEQ] = seq
        header[_H_LATEST] = seq * 4 + index
        header[_H_WRITING] = NONE
        self.published += 1
        return True

    # -- the reader (GUI process) ------------------------------------------------------

    def acquire(self, key: str | None = None) -> np.ndarray | None:
        """The newest complete frame as a BGRA view (h, w, 4) into shared
        memory, or None. The same object again while nothing newer came.

        The view stays valid (the writer does not touch its buffer) until the
        next ``acquire`` of this slot returns a newer frame; a caller that
        keeps frames longer must copy. If the hand-over loses a race with the
        writer three times running, the frame is copied instead (``copies``)."""
        header = self._header
        for _attempt in range(3):
            latest = int(header[_H_LATEST])
            if latest == 0:
                return None
            seq, index = latest >> 2, latest & 3
            if seq == self._seq:
                return self._view if self._matches(index, key) else None
            header[_H_HELD] = index
            meta = self._meta[index]
            if int(header[_H_WRITING]) == index or int(meta[_M_SEQ]) != seq:
                continue  # the writer is filling it: a newer frame is on its way
            if not self._matches(index, key):
                return None
            w, h = int(meta[_M_W]), int(meta[_M_H])
            self._seq = seq
            self._view = self._pixels[index][:h * w * 4].reshape(h, w, 4)
            return self._view
        meta = self._meta[latest & 3]
        w, h = int(meta[_M_W]), int(meta[_M_H])
        if not self._matches(latest & 3, key):
            return None
        self.copies += 1
        self._seq = latest >> 2
        self._view = self._pixels[latest & 3][:h * w * 4].reshape(h, w, 4).copy()
        return self._view

    def _matches(self, index: int, key: str | None) -> bool:
        if key is None:
            return True
        meta = self._meta[index]
        n = int(meta[_M_KEYLEN])
        return bytes(meta[4:].view(np.uint8)[:n]) == key.encode("utf-8")[:_KEY_BYTES]

    @property
    def latest_seq(self) -> int:
        return int(self._header[_H_LATEST]) >> 2

    def close(self) -> None:
        """Drop this side's references; the memory goes when the last view does
        (closing the map under a view still being painted would fail)."""
        self._view = None
        self._pixels = []


class FrameWakeup:
    """"A new frame is in the slot": a pipe from the media process to the
    GUI thread. The child writes one byte per published frame from its
    display thread (``ring``); the GUI watches the read end with a
    ``QSocketNotifier`` and paints from the slot. No message is built, and no
    thread of either process stands between the frame and the paint: the
    channel's writer and reader threads, which a JSON "frame" message went
    through, cost each frame two thread hops and ~0.3 ms.

    One pipe for the app's life, handed to every media process it starts, so
    the window's watcher survives a restart. Both ends are non-blocking: a
    full pipe (a GUI that stopped reading) drops the byte, since the frame is
    in shared memory anyway and any one wake-up paints the newest."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self._closed = False

    def drain(self) -> int:
        """Read every pending byte (the GUI thread, when the notifier fires):
        how many wake-ups there were."""
        n = 0
        while not self._closed:
            try:
                got = os.read(self.read_fd, 4096)
            except (BlockingIOError, OSError):
                break
            if not got:
                break
            n += len(got)
        return n

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self.read_fd, self.write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass


def ring(fd: int) -> None:
    """One wake-up on ``FrameWakeup``'s write end; never blocks, never raises
    (a full pipe already has wake-ups waiting; a closed one has no reader)."""
    try:
        os.write(fd, b"\x01")
    except OSError:
        pass
