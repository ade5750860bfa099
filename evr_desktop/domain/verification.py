"""The verification code both sides show: six digits derived from both DTLS
certificate fingerprints, so officer and victim can read it to each other and
know the media is encrypted end to end with no one in the middle (a
man-in-the-middle terminates DTLS twice, so each side would see a different
pair of fingerprints and a different code).

Derivation (the victim page's JavaScript does exactly the same; see
docs/call-engine.md):

1. From each side's SDP (the local and the remote description) take the value
   of the first ``a=fingerprint:sha-256 <value>`` line (session or media
   level; the algorithm name compared case-insensitively). Normalise the value
   to upper case with surrounding white space removed:
   ``"AB:CD:...:EF"`` (95 characters).
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


def sha256_fingerprint(sdp: str) -> str:
    """The first SHA-256 DTLS fingerprint of ``sdp``, upper case."""
    for algorithm, value in _FINGERPRINT.findall(sdp.replace("\r\n", "\n")):
        if algorithm.lower() == "sha-256":
            return value.strip().upper()
    raise NoFingerprint("the SDP carries no sha-256 DTLS fingerprint")


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
