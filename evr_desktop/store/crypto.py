"""Field encryption for the store: AES-256-GCM bound to where the value lives.

The associated data names the table, row and column, so an encrypted value
copied into another row (or another column) fails to decrypt instead of
quietly showing one victim's details on another's appointment.
"""

from __future__ import annotations

import os

from .base import StoreError

_VERSION = b"\x01"


class FieldCipher:
    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise ValueError("store key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, where: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, where.encode("utf-8"))

    def open(self, blob: bytes, where: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise StoreError(f"An encrypted value ({where}) is malformed.")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], where.encode("utf-8"))
        except InvalidTag as exc:
            raise StoreError(f"An encrypted value ({where}) failed its integrity check.") from exc
