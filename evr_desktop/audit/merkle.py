"""RFC 6962 / RFC 9162 Merkle inclusion proofs over the audit log's entries.

The log's checkpoint root (``log.merkle_root``) is the Merkle Tree Hash of
the entries' raw 32-byte hashes. An evidence export carries, for each of the
case's entries, its index, the tree size and the audit path to a signed
checkpoint's root, so a third party can check that the extract is part of
the log the officer signed without seeing any other entry (RFC 9162 section
2.1.3; the same leaf and node prefixes, 0x00 and 0x01).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


class MerkleTree:
    """The tree over ``leaves`` (raw entry hashes), with every subtree hash kept
    so that any number of proofs costs O(log n) each after one O(n) build."""

    def __init__(self, leaves: Sequence[bytes]):
        self.size = len(leaves)
        self._leaves = [leaf_hash(x) for x in leaves]
        self._memo: dict[tuple[int, int], bytes] = {}

    def _mth(self, start: int, end: int) -> bytes:
        """The hash of leaves[start:end] (end > start)."""
        if end - start == 1:
            return self._leaves[start]
        key = (start, end)
        found = self._memo.get(key)
        if found is None:
            k = _split(end - start)
            found = node_hash(self._mth(start, start + k), self._mth(start + k, end))
            self._memo[key] = found
        return found

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == 0:
            return hashlib.sha256(b"").digest()
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError("the entry is not in a tree of that size")
        path: list[bytes] = []
        start, end, m = 0, size, index
        # Walk down from the root, collecting the sibling at each split; the
        # path is listed leaf to root, so it is reversed at the end.
        while end - start > 1:
            k = _split(end - start)
            if m < k:
                path.append(self._mth(start + k, end))
                end = start + k
            else:
                path.append(self._mth(start, start + k))
                start, m = start + k, m - k
        return path[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: is ``leaf`` (a raw entry hash) entry ``index``
    of the tree of ``size`` entries whose root is ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
