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
"""

from __future__ import annotations

import hashlib
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
