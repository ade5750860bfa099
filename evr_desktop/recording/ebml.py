"""Just enough EBML to know where the muxer's Matroska output may be cut.

The recorder cuts its output into segments only between top-level elements
(in practice: right after a whole Cluster), so that every segment after the
first starts with a Cluster. :class:`ClusterTracker` follows the byte stream
as it is written and tells, after each write, whether the stream stands at
such a boundary and the Timestamp of each Cluster that began.
"""

from __future__ import annotations

EBML_ID = 0x1A45DFA3
SEGMENT_ID = 0x18538067
CLUSTER_ID = 0x1F43B675
TIMESTAMP_ID = 0xE7
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"


def _vint_len(first: int) -> int:
    for n in range(8):
        if first & (0x80 >> n):
            return n + 1
    raise ValueError("invalid EBML variable-length integer")


def read_id(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(element id with its marker bits, length) at ``pos``, or None if incomplete."""
    if pos >= len(buf):
        return None
    n = _vint_len(buf[pos])
    if pos + n > len(buf):
        return None
    return int.from_bytes(buf[pos : pos + n], "big"), n


def read_size(buf: bytes | bytearray, pos: int) -> tuple[int | None, int] | None:
    """(data size or None when 'unknown', length) at ``pos``, or None if incomplete."""
    if pos >= len(buf):
        return None
    n = _vint_len(buf[pos])
    if pos + n > len(buf):
        return None
    value = int.from_bytes(buf[pos : pos + n], "big") & ((1 << (7 * n)) - 1)
    if value == (1 << (7 * n)) - 1:
        return None, n
    return value, n


class ClusterTracker:
    """Follows the top-level elements of one Matroska stream.

    Children of the (unknown-size) Segment are treated as top level; a
    Cluster's body is skipped except for its leading Timestamp.
    """

    def __init__(self) -> None:
        self._header = bytearray()  # an element header being read
        self._skip = 0  # body bytes of the current element still to pass
        self._ts: bytearray | None = None  # a Cluster body's first bytes, until its Timestamp is read
        self._in_cluster = False
        self.cluster_timestamps: list[int] = []  # ms, of each Cluster that began
        self.clusters_done = 0

    @property
    def at_boundary(self) -> bool:
        """True between two top-level elements (nothing half-written)."""
        return self._skip == 0 and not self._header

    def feed(self, data: bytes | bytearray | memoryview) -> list[int]:
        """Follow ``data``; return the offsets in it where a Cluster ended."""
        data = bytes(data)
        ends: list[int] = []
        pos, n = 0, len(data)
        while pos < n:
            if self._skip:
                take = min(self._skip, n - pos)
                if self._ts is not None:
                    self._ts += data[pos : pos + min(take, 16 - len(self._ts))]
                    self._read_timestamp(final=take == self._skip)
                self._skip -= take
                pos += take
                if self._skip == 0 and self._in_cluster:
                    self._in_cluster = False
                    self.clusters_done += 1
                    ends.append(pos)
                continue
            self._header.append(data[pos])
            pos += 1
            got = read_id(self._header, 0)
            if got is None:
                continue
            element, id_len = got
            got_size = read_size(self._header, id_len)
            if got_size is None:
                continue
            size = got_size[0]
            self._header.clear()
            if size is None:
                if element != SEGMENT_ID:
                    raise ValueError("an unknown-size element other than the Segment")
                continue  # descend: the Segment's children are our top level
            self._skip = size
            if element == CLUSTER_ID:
                self._in_cluster = True
                self._ts = bytearray()
                if size == 0:
                    self._ts = None
                    self._in_cluster = False
                    self.clusters_done += 1
                    ends.append(pos)
        return ends

    def _read_timestamp(self, final: bool) -> None:
        whole = self._ts
        assert whole is not None
        # The muxer writes a CRC-32 element (BF 84 + 4 bytes) first by default.
        buf = whole[6:] if whole[:2] == b"\xbf\x84" else whole
        if whole[:1] == b"\xbf" and len(whole) < 6:
            buf = bytearray()
        if buf and buf[0] != TIMESTAMP_ID:
            self._ts = None  # no leading Timestamp: nothing to note
            return
        got = read_size(buf, 1) if len(buf) >= 2 else None
        if got is not None and got[0] is not None and len(buf) >= 1 + got[1] + got[0]:
            start = 1 + got[1]
            self.cluster_timestamps.append(int.from_bytes(buf[start : start + got[0]], "big"))
            self._ts = None
        elif final or len(whole) >= 16:
            self._ts = None
