"""The verification code both sides show: six digits derived from both DTLS
certificate fingerprints, so officer and victim can read it to each other and
know the media is encrypted end to end with no one in the middle (a
man-in-the-middle terminates DTLS twice, so each side would see a different
pair of fingerprints and a different code).

Derivation (the victim page's JavaScript does exactly the same; see
docs/call-engine.md):

1. Each side's SHA-256 certificate fingerprint: our own from our SDP; the
   peer's from the certificate the DTLS handshake actually used (the
   officer's app: aiortc's transport; the page: ``getRemoteCertificates()``),
   which must equal the one its SDP announced. An SDP whose m-sections do
   not all carry the same single fingerprint set is refused
   (``fingerprint_set``). Upper case, ``"AB:CD:...:EF"`` (95 characters).
2. Sort the two values as strings (code-point order) and join them with one
   ``"\\n"``.
3. SHA-256 over the UTF-8 bytes of that text.
4. Take the first 20 bits of the digest, big-endian:
   ``(d[0] << 12) | (d[1] << 4) | (d[2] >> 4)``: an integer 0-1048575,
   then modulo 1000000 so the code is always six digits.
5. Write it in decimal, zero-padded to 6 digits: ``"004217"``.

The code alone does not stop an attacker who controls the signalling (a
compromised rendezvous): it sees the officer's fingerprint in the offer and the
victim's in the answer before it has to show the officer its own certificate,
so it can grind a certificate until both sides' codes agree (about 10^6 tries).
Hence the commitment below (``commitment``, ``check_commitment``), as in ZRTP:
the victim's page sends the SHA-256 of its own fingerprint before the officer's
offer is sent, and the officer's app refuses an answer whose fingerprint does
not open that commitment. Each of the attacker's two certificates is then fixed
before the honest fingerprint it is paired with is revealed, and grinding buys
nothing. See docs/victim-page.md ("Commitment").

A pure rule shared by the call engine (``call/``) and the rendezvous, so it
lives in ``domain/``: the rendezvous must not import the officer's call package.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+)[ \t]+([0-9A-Fa-f:]+)[ \t]*$", re.MULTILINE)


class NoFingerprint(ValueError):
    pass


class FingerprintMismatch(NoFingerprint):
    """The SDP's m-sections do not all carry the same single set of fingerprints."""


def fingerprint_set(sdp: str) -> frozenset[tuple[str, str]]:
    """The one set of DTLS fingerprints ``(algorithm, VALUE)`` every m-section of
    ``sdp`` carries (its own lines, or the session's when it has none).

    Refused (``FingerprintMismatch``) when the m-sections differ, or a
    section's own set differs from the session's, or the set holds other
    than exactly one SHA-256: a browser's SDP never does any of that, and the
    difference is what an attacker in the signalling needs. aiortc checks the
    DTLS certificate against the *first* bundled m-section's fingerprints and
    Chromium against the *strongest* hash it is given, while the code used to
    read the first ``sha-256`` line anywhere: a rendezvous that put its own
    certificate's SHA-384 first and the honest SHA-256 later got the same six
    digits on both screens while sitting in the middle."""
    text = sdp.replace("\r\n", "\n")
    parts = re.split(r"^(?=m=)", text, flags=re.MULTILINE)
    session = _fingerprints(parts[0])
    media = [_fingerprints(m) for m in parts[1:]]
    sets = [own or session for own in media] or [session]
    if not sets[0]:
        raise NoFingerprint("the SDP carries no DTLS fingerprint")
    if any(s != sets[0] for s in sets) or (session and sets[0] != session):
        raise FingerprintMismatch("the SDP's media sections carry different DTLS fingerprints")
    if sum(1 for algorithm, _ in sets[0] if algorithm == "sha-256") != 1:
        raise FingerprintMismatch("the SDP must carry exactly one sha-256 DTLS fingerprint")
    return sets[0]


def _fingerprints(section: str) -> frozenset[tuple[str, str]]:
    return frozenset((a.lower(), v.strip().upper()) for a, v in _FINGERPRINT.findall(section))


def sha256_fingerprint(sdp: str) -> str:
    """The SHA-256 DTLS fingerprint of ``sdp``, upper case: the one of its single
    fingerprint set (``fingerprint_set``, which refuses anything else)."""
    return next(v for a, v in fingerprint_set(sdp) if a == "sha-256")


def code_from_fingerprints(a: str, b: str) -> str:
    text = "\n".join(sorted([a.strip().upper(), b.strip().upper()]))
    d = hashlib.sha256(text.encode("utf-8")).digest()
    value = ((d[0] << 12) | (d[1] << 4) | (d[2] >> 4)) % 1_000_000
    return f"{value:06d}"


def verification_code(local_sdp: str, remote_sdp: str) -> str:
    """The six-digit code for a call; the same whichever side computes it."""
    return code_from_fingerprints(sha256_fingerprint(local_sdp), sha256_fingerprint(remote_sdp))


# --- the commitment to the victim's fingerprint ---------------------------------------

_COMMITMENT = re.compile(r"[0-9a-f]{64}")
_SHA256_FINGERPRINT = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){31}")


def normalise_fingerprint(fingerprint: str) -> str:
    """``"ab:cd:..."`` with or without surrounding space -> ``"AB:CD:..."``, the
    form both the code and the commitment hash (95 characters). Anything that
    is not a SHA-256 fingerprint raises ``ValueError``."""
    if not isinstance(fingerprint, str):
        raise ValueError("a fingerprint is text")
    value = fingerprint.strip().upper()
    if not _SHA256_FINGERPRINT.fullmatch(value):
        raise ValueError("not a SHA-256 fingerprint (32 hexadecimal pairs joined by ':')")
    return value


def is_commitment(value: object) -> bool:
    """Exactly 64 lowercase hexadecimal characters (a SHA-256, as the rendezvous checks)."""
    return isinstance(value, str) and _COMMITMENT.fullmatch(value) is not None


def commitment(fingerprint: str) -> str:
    """What the victim's page sends as ``{"type": "commit", "hash": ...}`` before
    any offer: the lowercase hex SHA-256 of the UTF-8 bytes of its normalised
    SHA-256 DTLS fingerprint. The page's fingerprint is of a fresh random key,
    so the hash reveals nothing an attacker could use; what matters is that it
    fixes the fingerprint before the officer's is shown to anyone."""
    return hashlib.sha256(normalise_fingerprint(fingerprint).encode("utf-8")).hexdigest()


def commitment_matches(committed: str, fingerprint: str) -> bool:
    """Whether ``fingerprint`` opens ``committed``. Compared in constant time;
    anything malformed (either side) is simply a mismatch, never an exception:
    the caller stops the call either way."""
    if not is_commitment(committed):
        return False
    try:
        actual = commitment(fingerprint)
    except ValueError:
        return False
    return hmac.compare_digest(actual.encode("ascii"), committed.encode("ascii"))


def check_commitment(committed: str, answer_sdp: str) -> bool:
    """Whether the answer's first SHA-256 fingerprint (``sha256_fingerprint``)
    opens the victim's commitment. An answer without one does not."""
    try:
        fingerprint = sha256_fingerprint(answer_sdp)
    except NoFingerprint:
        return False
    return commitment_matches(committed, fingerprint)
