"""A strict implementation of the age v1 file format (https://c2sp.org/age).

Why our own implementation: media and exports must be readable by the force's
evidence team with the standard ``age`` tool and nothing of this project
(DESIGN.md, "Data at rest"), while the app itself must stream 64 KiB chunks
with bounded memory, recover crash-interrupted recordings as an authenticated
prefix, and depend only on the standard library and ``cryptography``. No
maintained Python package offers all of that, and the format is small enough to
implement exactly as specified and check against the C2SP CCTV test vectors.

What is implemented:

* X25519 recipients and identities (encrypt and decrypt). This is what the app
  uses: every file key is wrapped to the officer's key and the escrow key.
* scrypt (passphrase) stanzas, decrypt only, with a bounded work factor.
* MLKEM768-X25519 hybrid post-quantum stanzas, decrypt only, when the installed
  ``cryptography``/OpenSSL provides ML-KEM-768 (see :func:`hybrid_supported`).
* The strict ASCII armor, both directions.

Strictness: the header parser accepts exactly the ABNF of the spec (canonical
unpadded base64, 64-column stanza bodies ending with a short line, VCHAR
arguments, a 43-character MAC line) and nothing else, because any leniency in
a parser is malleability an attacker can use. Decryption never releases
plaintext that has not been authenticated; a STREAM chunk is released only
after its Poly1305 tag verified.

Error classes follow the categories of the CCTV test vectors so that callers
(and the conformance tests) can tell a damaged header from a wrong key from a
truncated payload:

* :class:`HeaderError`: the header does not parse or a stanza addressed to one
  of our identities is malformed.
* :class:`NoIdentityMatched`: the header is fine but none of our keys opens it.
* :class:`HeaderMACError`: a key opened the file but the header MAC is wrong.
* :class:`PayloadError`: the encrypted payload is damaged.
  :class:`TruncatedError` (a subclass) means it ends before its final chunk,
  which is what a crash mid-write looks like; :func:`decrypt_prefix` recovers
  the authenticated part of such files.
* :class:`ArmorError`: the ASCII armor is malformed.
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import hmac
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = [
    "CHUNK_SIZE",
    "AgeError",
    "ArmorError",
    "Decryptor",
    "Encryptor",
    "HeaderError",
    "HeaderMACError",
    "HybridIdentity",
    "Identity",
    "NoIdentityMatched",
    "PayloadError",
    "ScryptIdentity",
    "Stanza",
    "TruncatedError",
    "X25519Identity",
    "bech32_decode",
    "bech32_encode",
    "decrypt",
    "decrypt_prefix",
    "encrypt",
    "hybrid_supported",
    "parse_recipient",
]

# --------------------------------------------------------------------------- #
# Constants from the spec
# --------------------------------------------------------------------------- #

FILE_KEY_SIZE = 16
PAYLOAD_NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE

_INTRO = b"age-encryption.org/v1\n"
_VERSION_PREFIX = b"age-encryption.org/"
_STANZA_PREFIX = b"->"
_MAC_PREFIX = b"---"
_COLUMNS = 64
_BYTES_PER_LINE = _COLUMNS // 4 * 3  # 48

_X25519_LABEL = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_HYBRID_LABEL = b"age-encryption.org/mlkem768x25519"
_ZERO_NONCE = bytes(12)

#: The header is parsed in memory; this bounds what a hostile file can make us
#: buffer. Real headers are a few hundred bytes (a hybrid stanza is ~1.6 KB).
MAX_HEADER_SIZE = 1 << 20

#: Default upper bound for scrypt's log2(N), the same as the reference
#: implementation: higher values would let a file make us spend minutes and
#: gigabytes before we can even tell whether the passphrase is right.
DEFAULT_MAX_SCRYPT_WORK_FACTOR = 22

_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_ARMOR_MAX_WHITESPACE = 1024
_ASCII_WHITESPACE = b" \t\n\r\v\f"


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


class AgeError(Exception):
    """Base class: the data is not a valid age file we can decrypt."""


class HeaderError(AgeError):
    """The header is malformed, uses an unsupported version, or a stanza
    addressed to one of the given identities is invalid."""


class HeaderMACError(AgeError):
    """A file key was unwrapped but the header MAC does not match: the header
    was modified after encryption."""


class NoIdentityMatched(AgeError):
    """None of the given identities can unwrap any recipient stanza."""


class PayloadError(AgeError):
    """The encrypted payload is corrupted or malformed."""


class TruncatedError(PayloadError):
    """The payload ends before its final chunk (for example, a crash while
    writing). :func:`decrypt_prefix` recovers the authenticated prefix."""


class ArmorError(AgeError):
    """The ASCII armor is malformed."""


# --------------------------------------------------------------------------- #
# Bech32 (BIP-173, without the 90-character limit, as the age spec requires)
# --------------------------------------------------------------------------- #

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_REVERSE = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _BECH32_GENERATOR[i]
    return chk


def _bech32_hrp_expand(hrp: str) -> list[int]:
    lower = hrp.lower()
    return [ord(c) >> 5 for c in lower] + [0] + [ord(c) & 31 for c in lower]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        if value >> from_bits:
            raise ValueError("invalid bech32 data value")
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits:
        raise ValueError("invalid bech32 padding (too many bits)")
    elif (acc << (to_bits - bits)) & maxv:
        raise ValueError("invalid bech32 padding (non-zero bits)")
    return out


def _check_hrp(hrp: str) -> None:
    if not hrp:
        raise ValueError("bech32 human-readable part is empty")
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32 human-readable part has an invalid character")


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` as BIP-173 bech32 with human-readable part ``hrp``.

    The output is upper case when ``hrp`` is upper case, because age writes
    secret keys as ``AGE-SECRET-KEY-1...`` and public keys as ``age1...``; the
    checksum is always computed over the lower-case form, as BIP-173 says.
    There is no length limit: age's post-quantum keys are ~2000 characters.
    """
    _check_hrp(hrp)
    if hrp != hrp.lower() and hrp != hrp.upper():
        raise ValueError("bech32 human-readable part is mixed case")
    upper = hrp != hrp.lower()
    lower_hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _bech32_polymod(_bech32_hrp_expand(lower_hrp) + values + [0] * 6) ^ 1
    checksum = [(polymod >> (5 * (5 - i))) & 31 for i in range(6)]
    out = lower_hrp + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)
    return out.upper() if upper else out


def bech32_decode(s: str) -> tuple[str, bytes]:
    """Decode a BIP-173 bech32 string into (human-readable part, data).

    The human-readable part is returned in the case it was written in, so
    callers can insist on ``AGE-SECRET-KEY-`` versus ``age`` like the
    reference implementation. Mixed case, a bad checksum, characters outside
    the bech32 alphabet and non-zero padding bits raise ValueError. This is
    bech32, not bech32m (age uses the original constant 1).
    """
    if not isinstance(s, str):
        raise ValueError("bech32 string must be str")
    if s != s.lower() and s != s.upper():
        raise ValueError("bech32 string is mixed case")
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise ValueError("bech32 separator '1' missing or misplaced")
    hrp = s[:pos]
    _check_hrp(hrp)
    values = []
    for c in s[pos + 1 :].lower():
        v = _BECH32_REVERSE.get(c)
        if v is None:
            raise ValueError(f"invalid bech32 character {c!r}")
        values.append(v)
    if _bech32_polymod(_bech32_hrp_expand(hrp) + values) != 1:
        raise ValueError("bech32 checksum is wrong (typo in the key?)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))


# --------------------------------------------------------------------------- #
# Canonical base64 helpers
# --------------------------------------------------------------------------- #

_B64_UNPADDED_RE = re.compile(rb"[A-Za-z0-9+/]*")


def _b64encode_raw(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode_raw(s: bytes) -> bytes:
    """Strict, canonical, unpadded base64 as the spec demands.

    Raises ValueError for padding, whitespace, invalid characters, impossible
    lengths, or non-zero unused bits (a non-canonical encoding would let one
    file have several valid headers).
    """
    if not _B64_UNPADDED_RE.fullmatch(s) or len(s) % 4 == 1:
        raise ValueError("not valid unpadded base64")
    try:
        decoded = base64.b64decode(s + b"=" * (-len(s) % 4), validate=True)
    except binascii.Error as exc:  # pragma: no cover - the regex already guards
        raise ValueError("not valid base64") from exc
    if _b64encode_raw(decoded) != s:
        raise ValueError("non-canonical base64")
    return decoded


# --------------------------------------------------------------------------- #
# Small crypto helpers
# --------------------------------------------------------------------------- #


def _hkdf(ikm: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _aead_decrypt_file_key(key: bytes, body: bytes) -> bytes | None:
    """Open a wrapped file key; None if the tag does not verify (= not ours)."""
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


def _header_mac(file_key: bytes, header_without_mac: bytes) -> bytes:
    mac_key = _hkdf(file_key, None, b"header")
    return hmac.new(mac_key, header_without_mac, hashlib.sha256).digest()


def _payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return _hkdf(file_key, nonce, b"payload")


def _chunk_nonce(counter: int, last: bool) -> bytes:
    # 11-byte big-endian counter + final-chunk flag. 2**88 chunks is
    # unreachable, but never let the nonce wrap.
    if counter >= 1 << 88:
        raise PayloadError("STREAM chunk counter overflow")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# --------------------------------------------------------------------------- #
# Stanzas, identities and recipients
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of a header: ``-> type args...`` and its body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def encode(self) -> bytes:
        """Serialise exactly as the spec's ABNF: the body is wrapped at 64
        columns and always ends with a short (possibly empty) line."""
        out = [b"-> " + b" ".join(a.encode("ascii") for a in (self.type, *self.args)) + b"\n"]
        b64 = _b64encode_raw(self.body)
        for i in range(0, len(b64), _COLUMNS):
            out.append(b64[i : i + _COLUMNS] + b"\n")
        if len(b64) % _COLUMNS == 0:
            out.append(b"\n")
        return b"".join(out)


class Identity(abc.ABC):
    """Something that can unwrap a file key from recipient stanzas."""

    @abc.abstractmethod
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """Return the 16-byte file key, or None if no stanza is addressed to
        this identity. Raise :class:`HeaderError` for a stanza of this
        identity's type that is malformed: the spec makes that fatal, so a
        damaged header is reported as such rather than as a wrong key."""


def _check_body_len(stanza: Stanza, what: str) -> None:
    # The spec requires this check *before* decrypting, against partitioning
    # oracle attacks (a longer body could be crafted to open under many keys).
    if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise HeaderError(f"invalid {what} stanza: wrapped file key has the wrong length")


def _x25519_exchange(private: X25519PrivateKey, public: bytes, what: str) -> bytes:
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:
        # cryptography refuses all-zero results (low-order points); the spec
        # says the identity MUST abort in that case.
        raise HeaderError(f"invalid {what} stanza: low-order X25519 share") from exc
    if shared == bytes(32):  # pragma: no cover - cryptography already refuses
        raise HeaderError(f"invalid {what} stanza: low-order X25519 share")
    return shared


class X25519Identity(Identity):
    """An age X25519 secret key (``AGE-SECRET-KEY-1...``)."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519Identity:
        """A new random key, from the OS CSPRNG."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> X25519Identity:
        """From the raw 32-byte X25519 scalar (as stored sealed in the vault)."""
        if len(data) != 32:
            raise ValueError("an X25519 secret key is 32 bytes")
        return cls(X25519PrivateKey.from_private_bytes(bytes(data)))

    @classmethod
    def from_string(cls, s: str) -> X25519Identity:
        """Parse ``AGE-SECRET-KEY-1...`` (the format of ``age-keygen``)."""
        try:
            hrp, data = bech32_decode(s.strip())
        except ValueError as exc:
            raise ValueError(f"malformed age secret key: {exc}") from None
        if hrp != "AGE-SECRET-KEY-":
            raise ValueError("not an age X25519 secret key (expected AGE-SECRET-KEY-1...)")
        if len(data) != 32:
            raise ValueError("malformed age secret key: wrong length")
        return cls.from_private_bytes(data)

    def to_string(self) -> str:
        """The ``AGE-SECRET-KEY-1...`` encoding, readable by the age tool."""
        return bech32_encode("AGE-SECRET-KEY-", self.private_bytes())

    def private_bytes(self) -> bytes:
        """The raw 32-byte secret, for sealing in the vault."""
        return self._key.private_bytes_raw()

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._public

    @property
    def recipient(self) -> str:
        """The matching public key as ``age1...``."""
        return bech32_encode("age", self._public)

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"X25519Identity(recipient={self.recipient!r})"

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "X25519":
                continue
            if len(stanza.args) != 1:
                raise HeaderError("invalid X25519 stanza: wrong number of arguments")
            try:
                share = _b64decode_raw(stanza.args[0].encode("ascii"))
            except ValueError:
                raise HeaderError("invalid X25519 stanza: malformed share") from None
            if len(share) != 32:
                raise HeaderError("invalid X25519 stanza: share has the wrong length")
            _check_body_len(stanza, "X25519")
            shared = _x25519_exchange(self._key, share, "X25519")
            wrap_key = _hkdf(shared, share + self._public, _X25519_LABEL)
            file_key = _aead_decrypt_file_key(wrap_key, stanza.body)
            if file_key is not None:
                return file_key
        return None


def parse_recipient(s: str) -> bytes:
    """Parse an ``age1...`` X25519 recipient into its 32-byte public key.

    Raises ValueError with a message fit for the user on anything malformed,
    including a low-order point (encrypting to it would make the file key
    recoverable by anyone).
    """
    if not isinstance(s, str):
        raise ValueError("recipient must be a string like age1...")
    try:
        hrp, data = bech32_decode(s.strip())
    except ValueError as exc:
        raise ValueError(f"malformed age recipient: {exc}") from None
    if hrp != "age":
        if hrp == "age1pq":
            raise ValueError("post-quantum (age1pq1...) recipients are not supported here")
        raise ValueError("not an age X25519 recipient (expected age1...)")
    if len(data) != 32:
        raise ValueError("malformed age recipient: wrong length")
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(data))
    except ValueError:
        raise ValueError("invalid age recipient: not a usable X25519 public key") from None
    return data


def _wrap_x25519(file_key: bytes, recipient: bytes) -> Stanza:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    wrap_key = _hkdf(shared, share + recipient, _X25519_LABEL)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza("X25519", (_b64encode_raw(share).decode("ascii"),), body)


_WORK_FACTOR_RE = re.compile(r"[1-9][0-9]{0,2}")


class ScryptIdentity(Identity):
    """A passphrase, for files encrypted with ``age -p``. Decryption only: the
    app never encrypts to passphrases (keys are wrapped to officer + escrow)."""

    __slots__ = ("_passphrase", "max_work_factor")

    def __init__(
        self, passphrase: str | bytes, *, max_work_factor: int = DEFAULT_MAX_SCRYPT_WORK_FACTOR
    ) -> None:
        if isinstance(passphrase, str):
            passphrase = passphrase.encode("utf-8")
        if not passphrase:
            raise ValueError("passphrase can't be empty")
        if not 1 <= max_work_factor <= 30:
            raise ValueError("max_work_factor must be between 1 and 30")
        self._passphrase = bytes(passphrase)
        self.max_work_factor = max_work_factor

    def __repr__(self) -> str:
        return f"ScryptIdentity(max_work_factor={self.max_work_factor})"

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "scrypt":
                continue
            if len(stanza.args) != 2:
                raise HeaderError("invalid scrypt stanza: wrong number of arguments")
            try:
                salt = _b64decode_raw(stanza.args[0].encode("ascii"))
            except ValueError:
                raise HeaderError("invalid scrypt stanza: malformed salt") from None
            if len(salt) != 16:
                raise HeaderError("invalid scrypt stanza: salt has the wrong length")
            if not _WORK_FACTOR_RE.fullmatch(stanza.args[1]):
                raise HeaderError("invalid scrypt stanza: malformed work factor")
            log_n = int(stanza.args[1])
            if log_n > self.max_work_factor:
                raise HeaderError(
                    f"scrypt work factor 2^{log_n} is above the allowed 2^{self.max_work_factor}"
                )
            _check_body_len(stanza, "scrypt")
            kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
            file_key = _aead_decrypt_file_key(kdf.derive(self._passphrase), stanza.body)
            if file_key is not None:
                return file_key
        return None


# ---- MLKEM768-X25519 (X-Wing) hybrid identities, decryption only ---------- #

_XWING_LABEL = b"\\.//^\\"
# RFC 9180 suite: KEM 0x647a (MLKEM768-X25519), KDF 0x0001 (HKDF-SHA256),
# AEAD 0x0003 (ChaCha20-Poly1305).
_HPKE_SUITE_ID = b"HPKE" + bytes.fromhex("647a") + bytes.fromhex("0001") + bytes.fromhex("0003")
_MLKEM768_CT_SIZE = 1088
_HYBRID_ENC_SIZE = _MLKEM768_CT_SIZE + 32


def hybrid_supported() -> bool:
    """Whether the installed cryptography/OpenSSL offers ML-KEM-768, which
    :class:`HybridIdentity` needs (cryptography >= 47 on a recent OpenSSL)."""
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
        from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: F401
    except ImportError:
        return False
    check = getattr(backend, "mlkem_supported", None)
    return bool(check and check())


def _hpke_labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, b"HPKE-v1" + _HPKE_SUITE_ID + label + ikm, hashlib.sha256).digest()


def _hpke_labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled_info = length.to_bytes(2, "big") + b"HPKE-v1" + _HPKE_SUITE_ID + label + info
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=labeled_info).derive(prk)


class HybridIdentity(Identity):
    """An age post-quantum hybrid secret key (``AGE-SECRET-KEY-PQ-1...``).

    Decryption only (HPKE base mode with the MLKEM768-X25519 KEM, HKDF-SHA256
    and ChaCha20-Poly1305, per the age spec). Present so evidence encrypted by
    newer age versions to a post-quantum key can still be opened; the app
    itself encrypts to X25519 keys, which age 1.1 reads.
    """

    __slots__ = ("_mlkem", "_public", "_seed", "_x25519", "_x25519_public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("a hybrid secret key is 32 bytes")
        if not hybrid_supported():
            raise AgeError("ML-KEM-768 is not available in this cryptography/OpenSSL build")
        from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey

        expanded = hashlib.shake_256(seed).digest(96)
        self._seed = bytes(seed)
        self._mlkem = MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        self._x25519 = X25519PrivateKey.from_private_bytes(expanded[64:])
        self._x25519_public = self._x25519.public_key().public_bytes_raw()
        self._public = self._mlkem.public_key().public_bytes_raw() + self._x25519_public

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(os.urandom(32))

    @classmethod
    def from_string(cls, s: str) -> HybridIdentity:
        """Parse ``AGE-SECRET-KEY-PQ-1...``."""
        try:
            hrp, data = bech32_decode(s.strip())
        except ValueError as exc:
            raise ValueError(f"malformed age secret key: {exc}") from None
        if hrp != "AGE-SECRET-KEY-PQ-":
            raise ValueError("not an age hybrid secret key (expected AGE-SECRET-KEY-PQ-1...)")
        if len(data) != 32:
            raise ValueError("malformed age hybrid secret key: wrong length")
        return cls(data)

    def to_string(self) -> str:
        return bech32_encode("AGE-SECRET-KEY-PQ-", self._seed)

    def private_bytes(self) -> bytes:
        return self._seed

    @property
    def recipient(self) -> str:
        """The matching ``age1pq1...`` public key."""
        return bech32_encode("age1pq", self._public)

    def __repr__(self) -> str:
        return "HybridIdentity(...)"

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "mlkem768x25519":
                continue
            if len(stanza.args) != 1:
                raise HeaderError("invalid mlkem768x25519 stanza: wrong number of arguments")
            try:
                enc = _b64decode_raw(stanza.args[0].encode("ascii"))
            except ValueError:
                raise HeaderError("invalid mlkem768x25519 stanza: malformed share") from None
            if len(enc) != _HYBRID_ENC_SIZE:
                raise HeaderError("invalid mlkem768x25519 stanza: share has the wrong length")
            _check_body_len(stanza, "mlkem768x25519")
            ct_pq, ct_t = enc[:_MLKEM768_CT_SIZE], enc[_MLKEM768_CT_SIZE:]
            ss_pq = self._mlkem.decapsulate(ct_pq)  # implicit rejection: never raises here
            ss_t = _x25519_exchange(self._x25519, ct_t, "mlkem768x25519")
            shared = hashlib.sha3_256(
                ss_pq + ss_t + ct_t + self._x25519_public + _XWING_LABEL
            ).digest()
            # HPKE KeySchedule, mode_base, empty PSK.
            context = (
                b"\x00"
                + _hpke_labeled_extract(b"", b"psk_id_hash", b"")
                + _hpke_labeled_extract(b"", b"info_hash", _HYBRID_LABEL)
            )
            secret = _hpke_labeled_extract(shared, b"secret", b"")
            key = _hpke_labeled_expand(secret, b"key", context, 32)
            nonce = _hpke_labeled_expand(secret, b"base_nonce", context, 12)
            try:
                return ChaCha20Poly1305(key).decrypt(nonce, stanza.body, b"")
            except InvalidTag:
                continue
        return None


# --------------------------------------------------------------------------- #
# Buffered input
# --------------------------------------------------------------------------- #


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


class _Reader:
    """Minimal buffered reader over anything with ``read(n)``.

    Needed because the header is line-based while the payload is read in
    exact-size chunks, and we must look one byte ahead to know whether a full
    chunk is the last one, all without seeking (pipes, sockets).
    """

    def __init__(self, raw: _Readable) -> None:
        self._raw = raw
        self._buf = bytearray()
        self._eof = False

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._eof:
            data = self._raw.read(max(want - len(self._buf), 8192))
            if data is None:
                raise AgeError("non-blocking streams are not supported")
            if not data:
                self._eof = True
            else:
                self._buf += data

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at end of input."""
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def at_eof(self) -> bool:
        self._fill(1)
        return not self._buf

    def readline(self, limit: int) -> bytes:
        """One line including its LF, or what is left at end of input (without
        LF). Raises _LineTooLong if no LF within ``limit`` bytes."""
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if 0 <= i < limit:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if len(self._buf) >= limit:
                raise _LineTooLong
            start = len(self._buf)
            before = len(self._buf)
            self._fill(before + 1)
            if len(self._buf) == before:
                line = bytes(self._buf)
                self._buf.clear()
                return line


class _LineTooLong(Exception):
    pass


# --------------------------------------------------------------------------- #
# ASCII armor
# --------------------------------------------------------------------------- #


class _ArmorReader:
    """Strict streaming decoder for the armor (RFC 7468 strict PEM, label
    "AGE ENCRYPTED FILE", 64-column padded base64, LF or CRLF).

    Only whitespace before BEGIN and after END is tolerated (at most 1 KiB
    each), as the spec allows; everything else that would make the armor
    malleable (headers, blank lines, short inner lines, trailing spaces,
    non-canonical base64) is an :class:`ArmorError`. The BEGIN line fixes the
    line ending (LF or CRLF) for the whole block: mixing them is rejected too,
    which is stricter than the reference but costs no real file anything.
    """

    def __init__(self, source: _Reader) -> None:
        self._src = source
        self._started = False
        self._done = False
        self._pending = b""
        self._eol = b"\n"

    def _line(self) -> bytes:
        try:
            line = self._src.readline(_COLUMNS + 2 + len(_ARMOR_BEGIN))
        except _LineTooLong:
            raise ArmorError("invalid armor: line too long") from None
        if not line:
            raise ArmorError("invalid armor: file ends before the END line")
        if not line.endswith(b"\n"):
            return line  # the last line of the file, without a line ending
        if line.endswith(b"\r\n") != (self._eol == b"\r\n"):
            raise ArmorError("invalid armor: mixed LF and CRLF line endings")
        return line[: -len(self._eol)]

    def _start(self) -> None:
        skipped = 0
        while True:
            try:
                line = self._src.readline(_ARMOR_MAX_WHITESPACE + 2)
            except _LineTooLong:
                raise ArmorError("invalid armor: no BEGIN line") from None
            if not line:
                raise ArmorError("invalid armor: no BEGIN line")
            if line.strip(_ASCII_WHITESPACE) == b"":
                skipped += len(line)
                if skipped > _ARMOR_MAX_WHITESPACE:
                    raise ArmorError("invalid armor: too much leading whitespace")
                continue
            if line.endswith(b"\r\n"):
                self._eol = b"\r\n"
            line = line[: -len(self._eol)] if line.endswith(b"\n") else line
            if line != _ARMOR_BEGIN:
                raise ArmorError("invalid armor: first line is not " + _ARMOR_BEGIN.decode())
            self._started = True
            return

    def _finish(self) -> None:
        rest = self._src.read(_ARMOR_MAX_WHITESPACE + 1)
        if rest.strip(_ASCII_WHITESPACE):
            raise ArmorError("invalid armor: data after the END line")
        if len(rest) > _ARMOR_MAX_WHITESPACE:
            raise ArmorError("invalid armor: too much trailing whitespace")
        self._done = True

    def _next_line(self) -> bytes:
        line = self._line()
        if line == _ARMOR_END:
            self._finish()
            return b""
        if not line:
            raise ArmorError("invalid armor: empty line")
        if len(line) > _COLUMNS:
            raise ArmorError("invalid armor: line longer than 64 columns")
        if len(line) % 4 or not re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", line):
            raise ArmorError("invalid armor: malformed base64")
        try:
            data = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise ArmorError("invalid armor: malformed base64") from None
        if base64.b64encode(data) != line:
            raise ArmorError("invalid armor: non-canonical base64")
        if len(data) < _BYTES_PER_LINE:
            # Only the last line may be short, and it must be followed by END.
            if self._line() != _ARMOR_END:
                raise ArmorError("invalid armor: short line not followed by the END line")
            self._finish()
        return data

    def read(self, n: int = -1) -> bytes:
        if not self._started:
            self._start()
        while not self._pending and not self._done:
            self._pending = self._next_line()
        if n < 0:
            n = len(self._pending)
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


def _detect_armor(source: _Reader) -> bool:
    """Armored files start (after optional whitespace) with "-----", binary
    ones with "age-encryption.org/"; peeking decides which decoder to use."""
    source._fill(_ARMOR_MAX_WHITESPACE + 5)
    return bytes(source._buf).lstrip(_ASCII_WHITESPACE).startswith(b"-----")


def _write_all(sink: BinaryIO, data: bytes) -> None:
    """Write everything: an unbuffered (raw) file or pipe may accept only part
    of a write, and a silently dropped tail would corrupt the evidence."""
    view = memoryview(data)
    while view:
        n = sink.write(view)
        if n is None or n >= len(view):  # None: a duck-typed sink that returns nothing
            return
        view = view[n:]


class _ArmorWriter:
    """Encodes to the armor as it goes: 48 input bytes per 64-column line."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._pending = bytearray()
        _write_all(raw, _ARMOR_BEGIN + b"\n")

    def write(self, data: bytes) -> int:
        self._pending += data
        full = len(self._pending) // _BYTES_PER_LINE * _BYTES_PER_LINE
        if full:
            b64 = base64.b64encode(bytes(self._pending[:full]))
            del self._pending[:full]
            _write_all(
                self._raw,
                b"".join(b64[i : i + _COLUMNS] + b"\n" for i in range(0, len(b64), _COLUMNS)),
            )
        return len(data)

    def close(self) -> None:
        tail = base64.b64encode(bytes(self._pending)) + b"\n" if self._pending else b""
        self._pending.clear()
        _write_all(self._raw, tail + _ARMOR_END + b"\n")


# --------------------------------------------------------------------------- #
# Header
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes  # the header bytes up to and including "---"


def _is_vchar_arg(arg: bytes) -> bool:
    return bool(arg) and all(33 <= b <= 126 for b in arg)


def _parse_header(src: _Reader) -> _Header:
    raw = bytearray()

    def line() -> bytes:
        remaining = MAX_HEADER_SIZE - len(raw)
        if remaining <= 0:
            raise HeaderError("header too large")
        try:
            ln = src.readline(remaining)
        except _LineTooLong:
            raise HeaderError("header too large") from None
        if not ln.endswith(b"\n"):
            raise HeaderError("not an age file, or the file ends inside its header")
        raw.extend(ln)
        return ln

    intro = line()
    if intro != _INTRO:
        if intro == _INTRO[:-1] + b"\r\n":
            raise HeaderError(
                "the header has CRLF line endings (the file was damaged by a text-mode copy)"
            )
        if intro.startswith(_VERSION_PREFIX):
            raise HeaderError("unsupported age format version (only v1 is supported)")
        raise HeaderError("not an age file (bad first line)")

    stanzas: list[Stanza] = []
    while True:
        ln = line()
        if ln.startswith(_MAC_PREFIX):
            # end = "--- " 43base64char LF
            if not ln.startswith(b"--- ") or len(ln) != 4 + 43 + 1:
                raise HeaderError("malformed header MAC line")
            try:
                mac = _b64decode_raw(ln[4:-1])
            except ValueError:
                raise HeaderError("malformed header MAC") from None
            if not stanzas:
                raise HeaderError("header has no recipient stanzas")
            mac_input = bytes(raw[: len(raw) - len(ln) + len(_MAC_PREFIX)])
            return _Header(tuple(stanzas), mac, mac_input)
        if not ln.startswith(_STANZA_PREFIX):
            raise HeaderError("malformed header: unexpected line")
        # arg-line = "-> " argument *(SP argument) LF
        parts = ln[:-1].split(b" ")
        if parts[0] != _STANZA_PREFIX or len(parts) < 2:
            raise HeaderError("malformed stanza: missing arguments")
        if not all(_is_vchar_arg(p) for p in parts[1:]):
            raise HeaderError("malformed stanza: empty or invalid argument")
        args = [p.decode("ascii") for p in parts[1:]]
        body = bytearray()
        while True:
            body_line = line()[:-1]
            if body_line.startswith((_STANZA_PREFIX, _MAC_PREFIX)):
                raise HeaderError("malformed stanza: its body does not end with a short line")
            if len(body_line) > _COLUMNS:
                raise HeaderError("malformed stanza: body line longer than 64 columns")
            try:
                body += _b64decode_raw(body_line)
            except ValueError:
                raise HeaderError(
                    "malformed stanza: body is not canonical unpadded base64"
                ) from None
            if len(body_line) < _COLUMNS:
                break
        stanzas.append(Stanza(args[0], tuple(args[1:]), bytes(body)))


def _unwrap_file_key(header: _Header, identities: Sequence[Identity]) -> bytes:
    # The spec: an scrypt stanza must be alone, so that a passphrase-encrypted
    # file authenticates its sender. Checked for the whole header, whatever
    # identities we hold.
    if len(header.stanzas) != 1 and any(s.type == "scrypt" for s in header.stanzas):
        raise HeaderError("an scrypt stanza must be the only stanza in the header")
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            if len(file_key) != FILE_KEY_SIZE:  # pragma: no cover - body length checked
                raise HeaderError("unwrapped file key has the wrong length")
            return file_key
    raise NoIdentityMatched("none of the given keys can decrypt this file")


# --------------------------------------------------------------------------- #
# Encryption
# --------------------------------------------------------------------------- #


class Encryptor:
    """Streaming age encryption to a binary file object.

    The header and payload nonce are written at construction, then one
    64 KiB chunk at a time as data arrives, so memory stays at one chunk and
    the output may be a pipe or socket (nothing is ever seeked or rewritten).
    ``close()`` writes the final chunk; it does not close ``fileobj``.

    Used as a context manager, leaving the block with an exception does NOT
    write the final chunk: the output then reads as truncated, which is the
    truth (:func:`decrypt_prefix` labels it unfinalised), rather than passing
    off a partial file as complete.
    """

    def __init__(
        self, fileobj: BinaryIO, recipients: Sequence[str], *, armor: bool = False
    ) -> None:
        if isinstance(recipients, str):
            raise TypeError("recipients must be a list of age1... strings")
        if not recipients:
            raise ValueError("at least one recipient is required")
        public_keys = [parse_recipient(r) for r in recipients]
        file_key = os.urandom(FILE_KEY_SIZE)
        header = (
            b"age-encryption.org/v1\n"
            + b"".join(_wrap_x25519(file_key, pk).encode() for pk in public_keys)
            + _MAC_PREFIX
        )
        header += b" " + _b64encode_raw(_header_mac(file_key, header)) + b"\n"
        nonce = os.urandom(PAYLOAD_NONCE_SIZE)
        self._aead = ChaCha20Poly1305(_payload_key(file_key, nonce))
        self._fileobj = fileobj
        self._armor = _ArmorWriter(fileobj) if armor else None
        self._buf = bytearray()
        self._counter = 0
        self._closed = False
        self._emit(header + nonce)

    def _emit(self, data: bytes) -> None:
        if self._armor is not None:
            self._armor.write(data)
        else:
            _write_all(self._fileobj, data)

    def _seal(self, chunk: bytes | bytearray | memoryview, last: bool) -> None:
        nonce = _chunk_nonce(self._counter, last)
        self._emit(self._aead.encrypt(nonce, bytes(chunk), None))
        self._counter += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; write every chunk that is known not to be last.

        A full chunk is only sealed once more data follows it, because the
        final chunk may be full-sized and its nonce differs.
        """
        if self._closed:
            raise ValueError("write to a closed age Encryptor")
        view = memoryview(data).cast("B")
        n = len(view)
        if len(self._buf) + n <= CHUNK_SIZE:
            self._buf += view
            return n
        try:
            take = CHUNK_SIZE - len(self._buf)
            self._buf += view[:take]
            view = view[take:]
            self._seal(self._buf, last=False)
            self._buf.clear()
            while len(view) > CHUNK_SIZE:
                self._seal(view[:CHUNK_SIZE], last=False)
                view = view[CHUNK_SIZE:]
            self._buf += view
        except BaseException:
            # The output may now end mid-chunk. Refuse to go on: anything
            # written after the gap could never be decrypted, and the file
            # must read as truncated, not be finalised later.
            self.abort()
            raise
        return n

    def close(self) -> None:
        """Seal the final chunk (empty only if the whole payload is empty)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._seal(self._buf, last=True)
            if self._armor is not None:
                self._armor.close()
        finally:
            self._buf.clear()

    def abort(self) -> None:
        """Stop without writing a final chunk (the output stays truncated)."""
        self._closed = True
        self._buf.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Encryptor:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def encrypt(plaintext: bytes, recipients: Sequence[str], *, armor: bool = False) -> bytes:
    """Encrypt ``plaintext`` to every ``age1...`` recipient (any one of the
    matching secret keys decrypts it)."""
    out = io.BytesIO()
    with Encryptor(out, recipients, armor=armor) as enc:
        enc.write(plaintext)
    return out.getvalue()


# --------------------------------------------------------------------------- #
# Decryption
# --------------------------------------------------------------------------- #


def _as_readable(data_or_file: bytes | bytearray | memoryview | _Readable) -> _Readable:
    if isinstance(data_or_file, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data_or_file))
    return data_or_file


def _open_source(raw: _Readable, armor: bool | None) -> _Reader:
    source = _Reader(raw)
    if armor is None:
        armor = _detect_armor(source)
    if armor:
        return _Reader(_ArmorReader(source))
    return source


class Decryptor:
    """Streaming age decryption from a binary file object.

    The header is parsed, the file key unwrapped and the header MAC checked in
    the constructor. Plaintext is then produced one 64 KiB chunk at a time,
    each released only after its authentication tag verified. The end of the
    stream is only accepted after a valid final chunk with nothing after it;
    otherwise reading raises :class:`TruncatedError` or :class:`PayloadError`
    after the authenticated chunks before the damage (as STREAM allows).

    ``armor=None`` detects the ASCII armor; True/False insist on one format.
    """

    def __init__(
        self,
        fileobj: BinaryIO | _Readable | bytes | bytearray | memoryview,
        identities: Sequence[Identity],
        *,
        armor: bool | None = None,
    ) -> None:
        if isinstance(identities, Identity):
            raise TypeError("identities must be a list")
        if not identities:
            raise ValueError("at least one identity is required")
        self._src = _open_source(_as_readable(fileobj), armor)
        header = _parse_header(self._src)
        file_key = _unwrap_file_key(header, identities)
        if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
            raise HeaderMACError("the file header was modified (header MAC mismatch)")
        nonce = self._src.read(PAYLOAD_NONCE_SIZE)
        self._nonce_complete = len(nonce) == PAYLOAD_NONCE_SIZE
        if not self._nonce_complete:
            # Reported as a header problem, as the spec's test vectors expect;
            # decrypt_prefix() treats it as an empty unfinalised file.
            self._aead = None
            self._error: AgeError | None = HeaderError("the file ends before the payload nonce")
        else:
            self._aead = ChaCha20Poly1305(_payload_key(file_key, nonce))
            self._error = None
        self._counter = 0
        self._finished = False
        self._pending = b""

    @property
    def finished(self) -> bool:
        """True once the final chunk has been authenticated and returned."""
        return self._finished

    def _decrypt_chunk(self, chunk: bytes, last: bool) -> bytes | None:
        assert self._aead is not None
        try:
            return self._aead.decrypt(_chunk_nonce(self._counter, last), chunk, None)
        except InvalidTag:
            return None

    def _next_chunk(self) -> tuple[bytes, bool]:
        """Read, authenticate and return (plaintext, is_final)."""
        chunk = self._src.read(ENCRYPTED_CHUNK_SIZE)
        index = self._counter
        if not chunk:
            raise TruncatedError(
                f"the file is truncated: it ends after {index} complete chunk(s) "
                "without a final chunk"
            )
        if len(chunk) < ENCRYPTED_CHUNK_SIZE:
            # A short chunk can only be the final one.
            plaintext = self._decrypt_chunk(chunk, last=True) if len(chunk) >= TAG_SIZE else None
            if plaintext is None:
                raise TruncatedError(
                    f"the file is truncated or corrupted: its last chunk (#{index}) "
                    "does not authenticate"
                )
            if not plaintext and index != 0:
                raise PayloadError("the final chunk is empty (only allowed for an empty file)")
            return plaintext, True
        # A full chunk is normally not the last; a full final chunk is allowed.
        plaintext = self._decrypt_chunk(chunk, last=False)
        if plaintext is not None:
            return plaintext, False
        plaintext = self._decrypt_chunk(chunk, last=True)
        if plaintext is None:
            raise PayloadError(f"chunk #{index} is corrupted (authentication failed)")
        return plaintext, True

    def read_chunk(self) -> bytes:
        """The next chunk of authenticated plaintext (at most 64 KiB), or
        b"" once the final chunk has been returned."""
        if self._error is not None:
            raise self._error
        if self._finished:
            return b""
        try:
            plaintext, last = self._next_chunk()
            self._counter += 1
            if last:
                self._finished = True
                # Trailing data after the final chunk makes the file invalid;
                # the final chunk itself is authentic, so it is still released
                # and the error comes with the next read, as in the reference.
                if not self._src.at_eof():
                    self._error = PayloadError("data after the end of the encrypted payload")
                    self._finished = False
        except AgeError as exc:
            self._error = exc
            raise
        return plaintext

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read_chunk():
            yield chunk
        # An empty final chunk still has to be checked for trailing data.
        if self._error is not None:
            raise self._error

    def read(self, size: int = -1) -> bytes:
        """Like ``io.RawIOBase.read``: up to ``size`` bytes (all if negative),
        b"" at the verified end. An error is raised as soon as no authenticated
        bytes are left to return before it."""
        out = bytearray()
        while size < 0 or len(out) < size:
            if not self._pending:
                if self._finished and self._error is None:
                    break
                try:
                    self._pending = self.read_chunk()
                except AgeError:
                    if out:
                        break  # return what is authenticated; raise next call
                    raise
                if not self._pending:
                    continue
            take = len(self._pending) if size < 0 else size - len(out)
            out += self._pending[:take]
            self._pending = self._pending[take:]
        return bytes(out)

    def close(self) -> None:
        """Drop buffered plaintext. The underlying file is the caller's."""
        self._pending = b""

    def __enter__(self) -> Decryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decrypt(
    data: bytes | bytearray | memoryview,
    identities: Sequence[Identity],
    *,
    armor: bool | None = None,
) -> bytes:
    """Decrypt a whole age file held in memory.

    Returns the plaintext only if everything, up to a valid final chunk with
    nothing after it, authenticated; otherwise raises an :class:`AgeError`.
    """
    dec = Decryptor(io.BytesIO(bytes(data)), identities, armor=armor)
    return b"".join(dec)


def decrypt_prefix(
    data_or_file: bytes | bytearray | memoryview | BinaryIO,
    identities: Sequence[Identity],
    *,
    armor: bool | None = None,
) -> tuple[bytes, bool]:
    """Recover what can be trusted of a possibly crash-interrupted file.

    Returns ``(plaintext, finalised)``. ``finalised`` is True only if the file
    ended with a valid final chunk and nothing after it; then ``plaintext`` is
    the complete content. Otherwise the file was cut short (for example the
    app crashed while recording) and ``plaintext`` is the authenticated
    prefix: every complete chunk before the cut. The cut-off tail is dropped.

    Damage that truncation cannot explain still raises: a full-size chunk
    that fails authentication (tampering or corruption), data after the final
    chunk, an invalid header, a wrong key or a bad header MAC. (A corrupted
    *short* last chunk is indistinguishable from a cut one; it is dropped and
    the result is labelled unfinalised, never complete.)

    Meant for the binary files the app writes: an ASCII-armored file that was
    cut short lacks its END line and raises :class:`ArmorError`.
    """
    dec = Decryptor(data_or_file, identities, armor=armor)
    if not dec._nonce_complete:
        return b"", False  # the header is authentic; the cut came right after it
    parts: list[bytes] = []
    try:
        for chunk in dec:
            parts.append(chunk)
    except TruncatedError:
        return b"".join(parts), False
    return b"".join(parts), True


# --------------------------------------------------------------------------- #
# File keys: unwrap in one process, decrypt in another (playback)
# --------------------------------------------------------------------------- #


def unwrap_file_key(
    data_or_file: bytes | bytearray | memoryview | BinaryIO, identities: Sequence[Identity]
) -> bytes:
    """The 16-byte file key of one binary age file, unwrapped with one of
    ``identities`` and checked against the header MAC.

    This lets the process that holds the officer's identity (the app) hand a
    recording's file keys, and nothing else secret, to the process that
    decodes it (the media process), which then reads with
    :class:`FileKeyReader`. A file key opens that one file only.
    """
    if isinstance(identities, Identity):
        raise TypeError("identities must be a list")
    if not identities:
        raise ValueError("at least one identity is required")
    src = _open_source(_as_readable(data_or_file), armor=False)
    header = _parse_header(src)
    file_key = _unwrap_file_key(header, identities)
    if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
        raise HeaderMACError("the file header was modified (header MAC mismatch)")
    return file_key


class FileKeyReader:
    """Random access, by 64 KiB chunk, to the plaintext of one binary age file
    whose file key is known (no identity needed).

    The header is parsed and its MAC checked with the file key in the
    constructor: a wrong file key fails there (:class:`HeaderMACError`),
    before any chunk is touched. Each chunk is then read and authenticated
    on its own (STREAM: ChaCha20-Poly1305 under the payload key,
    ``HKDF(file key, header nonce, "payload")``, nonce = 11-byte counter and
    the last-chunk flag), so a player can seek without decrypting what comes
    before. ``chunk(i)`` returns only authenticated plaintext; a tampered
    chunk raises :class:`PayloadError` naming it.

    ``finalised=False`` is for a segment a crash left without its final
    chunk: only its whole chunks are readable, each as a non-final chunk
    (the authenticated prefix that recovery hashed); the cut tail is dropped.

    ``fileobj`` must be seekable (a file opened ``rb``); it stays the
    caller's. Nothing is written anywhere: the plaintext lives only in the
    returned ``bytes``.
    """

    def __init__(self, fileobj: BinaryIO, file_key: bytes, *, finalised: bool = True) -> None:
        if len(file_key) != FILE_KEY_SIZE:
            raise ValueError(f"a file key is {FILE_KEY_SIZE} bytes, not {len(file_key)}")
        self._fh = fileobj
        fileobj.seek(0)
        src = _Reader(fileobj)
        header = _parse_header(src)
        if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
            raise HeaderMACError("this file key does not open this file (wrong key, or a modified header)")
        header_size = len(header.mac_input) + 1 + 43 + 1  # "---" then " " MAC LF
        nonce = src.read(PAYLOAD_NONCE_SIZE)
        size = fileobj.seek(0, io.SEEK_END)
        self.finalised = finalised
        self._offset = header_size + PAYLOAD_NONCE_SIZE
        payload = size - self._offset
        if len(nonce) != PAYLOAD_NONCE_SIZE or payload < 0:
            if finalised:
                raise TruncatedError("the file ends before the payload nonce")
            self._aead: ChaCha20Poly1305 | None = None
            self.chunks = 0
            self._last_size = 0
            return
        self._aead = ChaCha20Poly1305(_payload_key(file_key, nonce))
        if finalised:
            if payload < TAG_SIZE:
                raise TruncatedError("the file is truncated: it has no final chunk")
            self.chunks = max(1, -(-payload // ENCRYPTED_CHUNK_SIZE))
            self._last_size = payload - (self.chunks - 1) * ENCRYPTED_CHUNK_SIZE - TAG_SIZE
            if self._last_size < 0:
                raise TruncatedError("the file is truncated or corrupted: its last chunk is too short")
        else:
            self.chunks = payload // ENCRYPTED_CHUNK_SIZE
            self._last_size = CHUNK_SIZE

    @property
    def plaintext_size(self) -> int:
        """The plaintext's length, from the file's size (every chunk but the
        last is exactly 64 KiB)."""
        if self.chunks == 0:
            return 0
        return (self.chunks - 1) * CHUNK_SIZE + self._last_size

    def chunk(self, index: int) -> bytes:
        """Chunk ``index``'s plaintext, authenticated."""
        if not 0 <= index < self.chunks:
            raise IndexError(f"chunk #{index} is not in this file ({self.chunks} chunk(s))")
        assert self._aead is not None
        last = self.finalised and index == self.chunks - 1
        self._fh.seek(self._offset + index * ENCRYPTED_CHUNK_SIZE)
        want = ENCRYPTED_CHUNK_SIZE if not last else self._last_size + TAG_SIZE
        data = self._fh.read(want)
        if len(data) != want:
            raise TruncatedError(f"chunk #{index} is cut short (the file changed while it was read)")
        try:
            plaintext = self._aead.decrypt(_chunk_nonce(index, last), data, None)
        except InvalidTag:
            if last:  # as Decryptor: a cut file and a damaged last chunk look the same
                raise TruncatedError(
                    f"the file is truncated or corrupted: its last chunk (#{index}) does not authenticate"
                ) from None
            raise PayloadError(f"chunk #{index} is corrupted (authentication failed)") from None
        if last and not plaintext and index != 0:
            raise PayloadError("the final chunk is empty (only allowed for an empty file)")
        return plaintext

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` plaintext bytes from ``offset`` (fewer at the end),
        decrypting only the chunks that hold them."""
        out = bytearray()
        end = min(offset + size, self.plaintext_size)
        while offset < end:
            index, within = divmod(offset, CHUNK_SIZE)
            piece = self.chunk(index)[within: within + end - offset]
            out += piece
            offset += len(piece)
        return bytes(out)
