"""File keys: unwrapped with an identity in the app, used alone in the media
process to read a recording chunk by chunk (issue 10 item 9, playback).

Real files only: written by Debian's ``age`` and by our ``Encryptor``."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest

from evr_desktop.vault.age import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    FileKeyReader,
    HeaderMACError,
    NoIdentityMatched,
    PayloadError,
    TruncatedError,
    X25519Identity,
    encrypt,
    unwrap_file_key,
)

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]


def _age_encrypt(recipient: str, plaintext: bytes) -> bytes:
    if shutil.which("age") is None:
        pytest.fail("the reference age tool is required: apt-get install -y age")
    proc = subprocess.run(["age", "-r", recipient], input=plaintext, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _payload_start(ciphertext: bytes) -> int:
    mac_line = ciphertext.index(b"\n--- ") + 1
    return ciphertext.index(b"\n", mac_line) + 1 + 16


def _read_all(reader: FileKeyReader) -> bytes:
    return b"".join(reader.chunk(i) for i in range(reader.chunks))


@pytest.mark.parametrize("writer", ["age", "ours"])
@pytest.mark.parametrize("size", SIZES)
def test_file_key_reads_what_age_and_we_wrote(writer: str, size: int) -> None:
    officer, escrow = X25519Identity.generate(), X25519Identity.generate()
    plaintext = os.urandom(size)
    if writer == "age":
        blob = _age_encrypt(officer.recipient, plaintext)
    else:
        blob = encrypt(plaintext, [officer.recipient, escrow.recipient])
    key = unwrap_file_key(blob, [officer])
    assert len(key) == 16
    if writer == "ours":
        assert unwrap_file_key(io.BytesIO(blob), [escrow]) == key  # one file key, wrapped twice
    reader = FileKeyReader(io.BytesIO(blob), key)
    assert reader.plaintext_size == size
    assert _read_all(reader) == plaintext
    # Random access: any slice, decrypting only the chunks that hold it.
    for start, length in [(0, 10), (size // 2, 70_000), (max(size - 5, 0), 100)]:
        assert reader.read_at(start, length) == plaintext[start:start + length]


def test_a_wrong_file_key_fails_at_the_header() -> None:
    ident = X25519Identity.generate()
    blob = encrypt(os.urandom(100_000), [ident.recipient])
    other = unwrap_file_key(encrypt(b"other", [ident.recipient]), [ident])
    with pytest.raises(HeaderMACError, match="file key does not open this file"):
        FileKeyReader(io.BytesIO(blob), other)
    with pytest.raises(ValueError, match="16 bytes"):
        FileKeyReader(io.BytesIO(blob), b"short")
    with pytest.raises(NoIdentityMatched):
        unwrap_file_key(blob, [X25519Identity.generate()])


def test_a_tampered_chunk_fails_at_that_chunk_and_only_there() -> None:
    ident = X25519Identity.generate()
    plaintext = os.urandom(4 * CHUNK_SIZE + 100)
    blob = bytearray(encrypt(plaintext, [ident.recipient]))
    key = unwrap_file_key(bytes(blob), [ident])
    blob[_payload_start(bytes(blob)) + 2 * ENCRYPTED_CHUNK_SIZE + 7] ^= 1
    reader = FileKeyReader(io.BytesIO(bytes(blob)), key)
    assert reader.chunk(1) == plaintext[CHUNK_SIZE:2 * CHUNK_SIZE]
    with pytest.raises(PayloadError, match="chunk #2 is corrupted"):
        reader.chunk(2)
    assert reader.chunk(3) == plaintext[3 * CHUNK_SIZE:4 * CHUNK_SIZE]  # STREAM: each chunk stands alone
    with pytest.raises(PayloadError, match="chunk #2"):
        reader.read_at(0, len(plaintext))


def test_a_flipped_header_bit_fails() -> None:
    ident = X25519Identity.generate()
    blob = bytearray(encrypt(b"x" * 1000, [ident.recipient]))
    key = unwrap_file_key(bytes(blob), [ident])
    blob[blob.index(b"\n--- ") - 3] ^= 1  # inside the stanza body
    with pytest.raises(Exception) as err:
        FileKeyReader(io.BytesIO(bytes(blob)), key)
    assert type(err.value).__name__ in {"HeaderMACError", "HeaderError"}


@pytest.mark.parametrize("cut", [0, 1, CHUNK_SIZE // 2, ENCRYPTED_CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE + 5])
def test_a_truncated_file_is_never_read_as_complete(cut: int) -> None:
    ident = X25519Identity.generate()
    plaintext = os.urandom(3 * CHUNK_SIZE)
    blob = encrypt(plaintext, [ident.recipient])
    key = unwrap_file_key(blob, [ident])
    cut_blob = blob[:_payload_start(blob) + cut]
    with pytest.raises(TruncatedError):
        reader = FileKeyReader(io.BytesIO(cut_blob), key)
        _read_all(reader)
    # As an unfinished segment: its whole chunks are the authenticated prefix.
    prefix = FileKeyReader(io.BytesIO(cut_blob), key, finalised=False)
    whole = cut // ENCRYPTED_CHUNK_SIZE
    assert prefix.chunks == whole
    assert _read_all(prefix) == plaintext[:whole * CHUNK_SIZE]
