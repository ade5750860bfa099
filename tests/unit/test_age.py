"""Tests for evr_desktop.vault.age, our age v1 implementation.

Three kinds of evidence that it is right:

1. Conformance: every C2SP CCTV age test vector (the same suite the reference
   Go implementation runs), including which kind of failure each broken file
   must produce and exactly which plaintext may be released before it.
2. Interoperability with the reference ``age`` tool in both directions: the
   force's evidence team decrypts our files with it (DESIGN.md, "Data at rest").
3. Crash recovery: a file cut mid-write yields exactly its authenticated
   full-chunk prefix, labelled unfinalised; tampering is an error.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evr_desktop.vault import age
from evr_desktop.vault.age import (
    CHUNK_SIZE,
    AgeError,
    ArmorError,
    Decryptor,
    Encryptor,
    HeaderError,
    HeaderMACError,
    HybridIdentity,
    NoIdentityMatched,
    PayloadError,
    ScryptIdentity,
    TruncatedError,
    X25519Identity,
    bech32_decode,
    bech32_encode,
    decrypt,
    decrypt_prefix,
    encrypt,
    parse_recipient,
)

ENC_CHUNK = CHUNK_SIZE + 16


# --------------------------------------------------------------------------- #
# 1. CCTV conformance vectors
# --------------------------------------------------------------------------- #


# The vectors are in the repository (tests/data/README.md says where from and
# under which terms), so the suite depends on nothing outside it.
VECTOR_DIR = Path(__file__).resolve().parents[1] / "data" / "cctv-age"
_NOT_VECTORS = {"README.md", "SOURCE-COMMIT"}
_MISSING = "<cctv-age vectors missing>"


def _vector_names() -> list[str]:
    if not VECTOR_DIR.is_dir():
        # Still produce one test so that the run FAILS (below) instead of
        # silently collecting nothing.
        return [_MISSING]
    return sorted(
        p.name for p in VECTOR_DIR.iterdir() if p.is_file() and p.name not in _NOT_VECTORS
    )


#: The vectors' "expect" categories and the exception each must raise. These
#: classes are siblings under AgeError, so a header error can never pass for a
#: payload error (the README warns that a lower-level error must not be masked
#: by a higher-level one). TruncatedError is a PayloadError.
EXPECT = {
    "header failure": HeaderError,
    "HMAC failure": HeaderMACError,
    "no match": NoIdentityMatched,
    "payload failure": PayloadError,
    "armor failure": ArmorError,
}


@dataclass
class Vector:
    name: str
    expect: str
    data: bytes
    armored: bool
    payload_sha256: str | None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)


def load_vector(name: str) -> Vector:
    """Parse the testkit format: "key: value" lines, a blank line, the file."""
    raw = (VECTOR_DIR / name).read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    assert sep, f"{name}: no blank line after the vector header"
    meta: dict[str, str] = {}
    identities: list[str] = []
    passphrases: list[str] = []
    for line in head.decode("utf-8").split("\n"):
        key, _, value = line.partition(": ")
        if key == "identity":
            identities.append(value)
        elif key == "passphrase":
            passphrases.append(value)
        else:
            meta[key] = value
    if meta.get("compressed") == "zlib":
        body = zlib.decompress(body)
    else:
        assert "compressed" not in meta, f"{name}: unknown compression {meta['compressed']}"
    return Vector(
        name=name,
        expect=meta["expect"],
        data=body,
        armored=meta.get("armored") == "yes",
        payload_sha256=meta.get("payload"),
        identities=identities,
        passphrases=passphrases,
    )


def vector_identities(v: Vector) -> list[age.Identity]:
    ids: list[age.Identity] = []
    for s in v.identities:
        if s.startswith("AGE-SECRET-KEY-PQ-"):
            if not age.hybrid_supported():
                pytest.skip("this cryptography/OpenSSL build has no ML-KEM-768 (hybrid keys)")
            ids.append(HybridIdentity.from_string(s))
        else:
            ids.append(X25519Identity.from_string(s))
    ids += [ScryptIdentity(p) for p in v.passphrases]
    # Two vectors ("empty", "armor_empty") list no key at all: they must fail
    # before any key is consulted. Our API refuses an empty identity list (a
    # programming error), so give them an unrelated key.
    return ids or [X25519Identity.generate()]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", _vector_names())
def test_cctv_vector(name: str) -> None:
    if name == _MISSING:
        pytest.fail(
            f"age test vectors not found at {VECTOR_DIR} (they are part of the repository)"
        )
    v = load_vector(name)
    ids = vector_identities(v)

    # Streaming decryption: collect every byte released before any error. The
    # README requires that all released plaintext match the payload hash, even
    # for files that fail later (STREAM releases authenticated chunks).
    released = bytearray()
    error: AgeError | None = None
    try:
        for chunk in Decryptor(io.BytesIO(v.data), ids, armor=v.armored):
            released += chunk
    except AgeError as exc:
        error = exc

    if v.expect == "success":
        assert error is None, f"{name}: unexpected {error!r}"
        assert _sha256(bytes(released)) == v.payload_sha256
        assert decrypt(v.data, ids, armor=v.armored) == released
        assert decrypt_prefix(v.data, ids, armor=v.armored) == (bytes(released), True)
        return

    expected = EXPECT[v.expect]
    assert isinstance(error, expected), f"{name}: expected {expected.__name__}, got {error!r}"
    if v.payload_sha256 is not None:
        assert _sha256(bytes(released)) == v.payload_sha256
    elif expected is not PayloadError:
        assert not released
    # The one-shot API never returns anything for a broken file.
    with pytest.raises(expected):
        decrypt(v.data, ids, armor=v.armored)


def test_vectors_are_all_there() -> None:
    """Guard against a partial checkout silently shrinking the suite."""
    names = _vector_names()
    assert names != [_MISSING], f"age test vectors not found at {VECTOR_DIR}"
    assert len(names) >= 140
    assert {"x25519", "scrypt", "armor_x25519", "stream_two_chunks"} <= set(names)


def test_armor_is_detected_automatically() -> None:
    for name in ("armor_x25519", "x25519"):
        v = load_vector(name)
        assert _sha256(decrypt(v.data, vector_identities(v))) == v.payload_sha256


def test_scrypt_work_factor_bound_is_configurable() -> None:
    v = load_vector("scrypt")  # log2(N) = 10
    with pytest.raises(HeaderError, match="work factor"):
        decrypt(v.data, [ScryptIdentity("password", max_work_factor=9)])
    assert _sha256(decrypt(v.data, [ScryptIdentity("password")])) == v.payload_sha256


# --------------------------------------------------------------------------- #
# 2. Interoperability with the reference age tool
# --------------------------------------------------------------------------- #

SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536]


@pytest.fixture(scope="module")
def age_bin() -> str:
    path = shutil.which("age")
    if path is None or shutil.which("age-keygen") is None:
        pytest.fail("the reference age tool is required: apt-get install -y age")
    return path


def _run(args: list[str], stdin: bytes = b"") -> bytes:
    proc = subprocess.run(args, input=stdin, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _key_file(tmp_path: Path, identity: X25519Identity, name: str = "key.txt") -> Path:
    path = tmp_path / name
    path.write_text(f"# test key\n{identity.to_string()}\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def payloads() -> dict[int, bytes]:
    return {n: os.urandom(n) for n in SIZES}


@pytest.mark.parametrize("size", SIZES)
def test_age_tool_decrypts_ours(age_bin: str, tmp_path: Path, payloads, size: int) -> None:
    ident = X25519Identity.generate()
    ciphertext = encrypt(payloads[size], [ident.recipient])
    assert (
        _run([age_bin, "-d", "-i", str(_key_file(tmp_path, ident))], ciphertext) == payloads[size]
    )


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_age_tool_output(age_bin: str, tmp_path: Path, payloads, size: int) -> None:
    ident = X25519Identity.generate()
    by_flag = _run([age_bin, "-r", ident.recipient], payloads[size])
    assert decrypt(by_flag, [ident]) == payloads[size]
    assert decrypt_prefix(by_flag, [ident]) == (payloads[size], True)
    recipients_file = tmp_path / "recipients.txt"
    recipients_file.write_text(f"# officer\n{ident.recipient}\n")
    by_file = _run([age_bin, "-R", str(recipients_file)], payloads[size])
    assert decrypt(by_file, [ident]) == payloads[size]


def test_multiple_recipients_both_ways(age_bin: str, tmp_path: Path) -> None:
    """The file key is wrapped to the officer and the escrow key: either
    secret key alone must open the file, with our code and with age."""
    officer, escrow, stranger = (X25519Identity.generate() for _ in range(3))
    plaintext = os.urandom(100_000)
    ours = encrypt(plaintext, [officer.recipient, escrow.recipient])
    for ident in (officer, escrow):
        assert decrypt(ours, [ident]) == plaintext
        key = _key_file(tmp_path, ident, f"{ident.recipient[-8:]}.txt")
        assert _run([age_bin, "-d", "-i", str(key)], ours) == plaintext
    with pytest.raises(NoIdentityMatched):
        decrypt(ours, [stranger])

    theirs = _run([age_bin, "-r", officer.recipient, "-r", escrow.recipient], plaintext)
    for ident in (officer, escrow):
        assert decrypt(theirs, [ident]) == plaintext
    assert decrypt(theirs, [stranger, escrow]) == plaintext


def test_armor_both_ways(age_bin: str, tmp_path: Path) -> None:
    ident = X25519Identity.generate()
    plaintext = os.urandom(5000)
    ours = encrypt(plaintext, [ident.recipient], armor=True)
    assert ours.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert all(len(line) <= 64 for line in ours.splitlines())
    assert _run([age_bin, "-d", "-i", str(_key_file(tmp_path, ident))], ours) == plaintext
    theirs = _run([age_bin, "-a", "-r", ident.recipient], plaintext)
    assert decrypt(theirs, [ident]) == plaintext
    assert decrypt(theirs, [ident], armor=True) == plaintext
    with pytest.raises(HeaderError):
        decrypt(theirs, [ident], armor=False)


def test_armor_line_endings_must_not_be_mixed() -> None:
    ident = X25519Identity.generate()
    plaintext = os.urandom(500)
    lf = encrypt(plaintext, [ident.recipient], armor=True)
    crlf = lf.replace(b"\n", b"\r\n")
    assert decrypt(crlf, [ident]) == plaintext
    second_eol = lf.index(b"\n", lf.index(b"\n") + 1)
    for mixed in (lf[:second_eol] + b"\r" + lf[second_eol:], crlf.replace(b"\r\n", b"\n", 1)):
        with pytest.raises(ArmorError, match="mixed"):
            decrypt(mixed, [ident])


def test_keys_match_age_keygen(age_bin: str, tmp_path: Path) -> None:
    keyfile = tmp_path / "generated.txt"
    _run(["age-keygen", "-o", str(keyfile)])
    secret = next(
        line for line in keyfile.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1")
    )
    public = _run(["age-keygen", "-y", str(keyfile)]).decode().strip()
    ident = X25519Identity.from_string(secret)
    assert ident.recipient == public
    assert ident.to_string() == secret
    assert parse_recipient(public) == ident.public_bytes
    assert X25519Identity.from_private_bytes(ident.private_bytes()).recipient == public
    # And our own generated key works with the tool.
    ours = X25519Identity.generate()
    assert _run(["age-keygen", "-y", str(_key_file(tmp_path, ours))]).decode().strip() == (
        ours.recipient
    )


def test_spec_example_key() -> None:
    ident = X25519Identity.from_string(
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    )
    assert ident.recipient == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
    assert "SECRET" not in repr(ident)


# --------------------------------------------------------------------------- #
# 3. Streaming, truncation and prefix recovery
# --------------------------------------------------------------------------- #


class WriteOnly:
    """A non-seekable sink (a pipe, say) that records what reached it."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)


class ReadOnly:
    """A non-seekable source that hands out small, uneven reads."""

    def __init__(self, data: bytes, step: int = 4093) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def read(self, n: int = -1) -> bytes:
        n = self._step if n < 0 else min(n, self._step)
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(out)
        return out


def _payload_start(ciphertext: bytes) -> int:
    """Offset of the first STREAM chunk: after the MAC line and the nonce."""
    mac_line = ciphertext.index(b"\n--- ") + 1
    return ciphertext.index(b"\n", mac_line) + 1 + 16


def test_encryptor_streams_with_bounded_memory() -> None:
    ident = X25519Identity.generate()
    plaintext = os.urandom(5 * CHUNK_SIZE + 123)
    sink = WriteOnly()
    written = 0
    with Encryptor(sink, [ident.recipient]) as enc:
        header_len = len(sink.data)  # header + 16-byte nonce, written up front
        for piece in (1, 65535, 70000, 3 * CHUNK_SIZE, 10, 2 * CHUNK_SIZE):
            chunk = plaintext[written : written + piece]
            enc.write(chunk)
            written += len(chunk)
            # At most one chunk (the possibly-last one) is held back.
            assert len(sink.data) >= header_len + (written - 1) // CHUNK_SIZE * ENC_CHUNK
    assert written == len(plaintext)
    assert decrypt(bytes(sink.data), [ident]) == plaintext

    dec = Decryptor(ReadOnly(bytes(sink.data)), [ident])
    out = bytearray()
    while piece := dec.read(10_007):
        out += piece
    assert out == plaintext and dec.finished


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE])
def test_chunking_matches_the_spec(size: int) -> None:
    """Full chunks are not final unless they are the last; the final chunk is
    empty only for an empty payload."""
    ident = X25519Identity.generate()
    ct = encrypt(b"\x00" * size, [ident.recipient])
    full, rest = divmod(size, CHUNK_SIZE)
    expected_payload = full * ENC_CHUNK + rest + 16 if rest or size == 0 else full * ENC_CHUNK
    assert len(ct) - _payload_start(ct) == expected_payload
    assert decrypt(ct, [ident]) == b"\x00" * size


def test_exception_inside_encryptor_leaves_an_unfinalised_file() -> None:
    ident = X25519Identity.generate()
    data = os.urandom(2 * CHUNK_SIZE + 10)
    out = io.BytesIO()
    with pytest.raises(RuntimeError), Encryptor(out, [ident.recipient]) as enc:
        enc.write(data)
        raise RuntimeError("camera unplugged")
    with pytest.raises(TruncatedError):
        decrypt(out.getvalue(), [ident])
    assert decrypt_prefix(out.getvalue(), [ident]) == (data[: 2 * CHUNK_SIZE], False)


def test_failed_write_stops_the_encryptor() -> None:
    class FailingSink(WriteOnly):
        def write(self, b: bytes) -> int:
            if len(self.data) > 100:
                raise OSError("disk full")
            return super().write(b)

    ident = X25519Identity.generate()
    sink = FailingSink()
    enc = Encryptor(sink, [ident.recipient])
    enc.write(b"a" * CHUNK_SIZE)  # buffered: it might be the final chunk
    with pytest.raises(OSError):
        enc.write(b"b")
    with pytest.raises(ValueError):
        enc.write(b"c")
    enc.close()  # a no-op: no final chunk after a failure
    assert decrypt_prefix(bytes(sink.data), [ident]) == (b"", False)


@pytest.fixture(scope="module")
def recording() -> tuple[X25519Identity, bytes, bytes]:
    ident = X25519Identity.generate()
    plaintext = os.urandom(200 * 1024)  # 3 full chunks + 8 KiB
    return ident, plaintext, encrypt(plaintext, [ident.recipient])


def test_truncated_file_gives_authenticated_prefix(recording) -> None:
    ident, plaintext, ct = recording
    start = _payload_start(ct)
    assert len(ct) == start + 3 * ENC_CHUNK + 8192 + 16
    cuts = {
        start - 16: 0,  # right after the header, no nonce
        start - 5: 0,  # inside the nonce
        start: 0,  # nonce, no chunk
        start + 100: 0,  # inside chunk 0
        start + ENC_CHUNK - 1: 0,  # chunk 0 minus one byte
        start + ENC_CHUNK: 1,  # exactly one full chunk
        start + ENC_CHUNK + 16: 1,  # a tag's worth into chunk 1
        start + 2 * ENC_CHUNK + 5000: 2,
        start + 3 * ENC_CHUNK: 3,
        len(ct) - 1: 3,  # the final chunk minus its last byte
    }
    for cut, full_chunks in cuts.items():
        prefix, finalised = decrypt_prefix(ct[:cut], [ident])
        assert finalised is False, cut
        assert prefix == plaintext[: full_chunks * CHUNK_SIZE], cut
        # From a file object too, as recovery reads segments from disk.
        assert decrypt_prefix(io.BytesIO(ct[:cut]), [ident]) == (prefix, False)
        with pytest.raises(HeaderError if cut < start else TruncatedError):
            decrypt(ct[:cut], [ident])
    assert decrypt_prefix(ct, [ident]) == (plaintext, True)
    assert decrypt(ct, [ident]) == plaintext


def test_cut_inside_the_header_is_an_error(recording) -> None:
    ident, _, ct = recording
    for cut in (0, 10, 40, _payload_start(ct) - 17):
        with pytest.raises(HeaderError):
            decrypt_prefix(ct[:cut], [ident])


def test_streaming_reader_releases_only_authenticated_chunks(recording) -> None:
    ident, plaintext, ct = recording
    cut = ct[: _payload_start(ct) + 2 * ENC_CHUNK + 777]
    dec = Decryptor(io.BytesIO(cut), [ident])
    assert dec.read_chunk() == plaintext[:CHUNK_SIZE]
    assert dec.read_chunk() == plaintext[CHUNK_SIZE : 2 * CHUNK_SIZE]
    with pytest.raises(TruncatedError):
        dec.read_chunk()
    with pytest.raises(TruncatedError):  # errors are sticky
        dec.read()
    assert not dec.finished


def test_tampered_middle_chunk_is_an_error_not_a_prefix(recording) -> None:
    ident, plaintext, ct = recording
    tampered = bytearray(ct)
    tampered[_payload_start(ct) + ENC_CHUNK + 1000] ^= 0x01  # inside chunk 1 of 4
    tampered = bytes(tampered)
    with pytest.raises(PayloadError) as info:
        decrypt(tampered, [ident])
    assert not isinstance(info.value, TruncatedError)
    with pytest.raises(PayloadError) as info:
        decrypt_prefix(tampered, [ident])
    assert not isinstance(info.value, TruncatedError)
    # Streaming gets chunk 0 (authentic) and then the error, never chunk 1.
    dec = Decryptor(io.BytesIO(tampered), [ident])
    assert dec.read_chunk() == plaintext[:CHUNK_SIZE]
    with pytest.raises(PayloadError):
        dec.read_chunk()
    # Even truncated after the damaged chunk, the damage is still reported.
    with pytest.raises(PayloadError) as info:
        decrypt_prefix(tampered[: _payload_start(ct) + 3 * ENC_CHUNK], [ident])
    assert not isinstance(info.value, TruncatedError)


def test_tampered_header_and_trailing_data(recording) -> None:
    ident, _, ct = recording
    body_line = ct.index(b"\n", ct.index(b"-> X25519")) + 1
    tampered = bytearray(ct)
    tampered[body_line + 3] ^= 0x04  # flips a base64 letter in the wrapped key
    with pytest.raises((HeaderError, NoIdentityMatched)):
        decrypt_prefix(bytes(tampered), [ident])
    mac_at = ct.index(b"\n--- ") + 6
    tampered = bytearray(ct)
    tampered[mac_at] = ord("A") if ct[mac_at] != ord("A") else ord("B")
    with pytest.raises((HeaderMACError, HeaderError)):
        decrypt_prefix(bytes(tampered), [ident])


def test_trailing_data_after_the_final_chunk() -> None:
    ident = X25519Identity.generate()
    plaintext = os.urandom(2 * CHUNK_SIZE)  # the final chunk is full-size
    ct = encrypt(plaintext, [ident.recipient])
    for extra in (b"\x00", os.urandom(ENC_CHUNK)):
        for call in (decrypt, decrypt_prefix):
            with pytest.raises(PayloadError) as info:
                call(ct + extra, [ident])
            assert not isinstance(info.value, TruncatedError)
    # A streaming reader has released the authentic final chunk by then (as
    # the reference does), but never reports the end as verified.
    dec = Decryptor(io.BytesIO(ct + b"\x00"), [ident])
    assert dec.read_chunk() == plaintext[:CHUNK_SIZE]
    assert dec.read_chunk() == plaintext[CHUNK_SIZE:]
    with pytest.raises(PayloadError):
        dec.read_chunk()


def test_bytes_appended_to_a_short_final_chunk(recording) -> None:
    """Known limit, inherent to STREAM: a short final chunk with bytes
    appended cannot be told apart from a full chunk cut mid-write (neither
    authenticates). decrypt() refuses it; decrypt_prefix() returns the chunks
    before it and, crucially, does not call the file complete."""
    ident, plaintext, ct = recording
    with pytest.raises(PayloadError):
        decrypt(ct + b"\x00", [ident])
    assert decrypt_prefix(ct + b"\x00", [ident]) == (plaintext[: 3 * CHUNK_SIZE], False)


def test_wrong_key_and_bad_arguments(recording) -> None:
    ident, _, ct = recording
    with pytest.raises(NoIdentityMatched):
        decrypt(ct, [X25519Identity.generate()])
    with pytest.raises(ValueError):
        decrypt(ct, [])
    with pytest.raises(ValueError):
        encrypt(b"x", [])
    with pytest.raises(HeaderError):
        decrypt(b"not an age file\n", [ident])


# --------------------------------------------------------------------------- #
# 4. Bech32 and key parsing
# --------------------------------------------------------------------------- #


def test_bech32_round_trip() -> None:
    for hrp in ("age", "AGE-SECRET-KEY-", "age1pq", "x"):
        for n in (0, 1, 20, 32, 1216):  # age1pq keys are 1216 bytes, ~1950 chars
            data = os.urandom(n)
            s = bech32_encode(hrp, data)
            assert bech32_decode(s) == (hrp, data)
            assert s == (s.upper() if hrp.isupper() else s.lower())


@pytest.mark.parametrize(
    "s",
    [
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio"
        "1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "11" + "q" * 82 + "c8247j",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    ],
)
def test_bech32_bip173_valid(s: str) -> None:
    hrp, data = bech32_decode(s)
    assert bech32_encode(hrp, data) == s


@pytest.mark.parametrize(
    "s",
    [
        "\x201nwldj5",  # HRP character out of range
        "\x7f1axkwrx",
        "pzry9x0s0muk",  # no separator
        "1pzry9x0s0muk",  # empty HRP
        "x1b4n0q5v",  # invalid data character
        "li1dgmt3",  # checksum too short
        "de1lg7wt\xff",  # invalid character in checksum
        "A1G7SGD8",  # checksum computed over the upper-case form
        "10a06t8",  # empty HRP
        "1qzzfhee",  # empty HRP
        "A12uEL5L",  # mixed case
        "a12UEL5L",
        "a12uel5m",  # bad checksum
        "a1lqfn3a",  # valid bech32m (BIP-350), which age does not use
        "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    ],
)
def test_bech32_rejects(s: str) -> None:
    with pytest.raises(ValueError):
        bech32_decode(s)


def test_key_parsing_rejects_malformed() -> None:
    ident = X25519Identity.generate()
    secret, public = ident.to_string(), ident.recipient
    bad_checksum = public[:-1] + ("q" if public[-1] != "q" else "p")
    for bad in (
        "",
        "age1",
        bad_checksum,
        public.upper(),  # age only accepts lower-case recipients
        public[:10] + public[10:].upper(),  # mixed case
        bech32_encode("age", os.urandom(31)),
        bech32_encode("age", os.urandom(33)),
        bech32_encode("agx", ident.public_bytes),
        bech32_encode("age", bytes(32)),  # low-order point
        secret,
    ):
        with pytest.raises(ValueError):
            parse_recipient(bad)
    assert parse_recipient(public) == ident.public_bytes
    flipped = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
    for bad in (secret.lower(), flipped, public, ""):
        with pytest.raises(ValueError):
            X25519Identity.from_string(bad)
    with pytest.raises(ValueError):
        X25519Identity.from_private_bytes(b"\x01" * 31)
    with pytest.raises(ValueError):
        encrypt(b"x", [bad_checksum])


def test_the_chunk_counter_stops_at_its_limit_and_never_wraps() -> None:
    """STREAM's 11-byte counter: the last usable chunk is 2**88 - 1; the next
    one is refused (a wrapped nonce would reuse a key stream), and the file
    is left without a final chunk rather than finalised."""
    ident = X25519Identity.generate()
    sink = io.BytesIO()
    enc = Encryptor(sink, [ident.recipient])
    enc._counter = (1 << 88) - 2
    enc.write(os.urandom(2 * CHUNK_SIZE))  # seals chunk 2**88 - 2, holds the next
    with pytest.raises(PayloadError, match="overflow"):
        enc.write(os.urandom(2 * CHUNK_SIZE))  # chunk 2**88 - 1 seals; 2**88 is refused
    assert enc.closed
    assert age._chunk_nonce((1 << 88) - 1, True) == b"\xff" * 11 + b"\x01"
    with pytest.raises(PayloadError):
        age._chunk_nonce(1 << 88, False)
