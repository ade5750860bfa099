"""The certificate the DTLS handshake actually used, as aiortc holds it.

aiortc checks the peer's certificate against the fingerprints of the first
bundled m-section only, and the SDP is text an attacker in the signalling
can shape (domain/verification.py, ``fingerprint_set``). The verification
code and the commitment must rest on the certificate DTLS accepted, which
aiortc does not expose: ``RTCDtlsTransport._ssl`` (its pyOpenSSL
connection) has it (``get_peer_certificate``). Pinned ``aiortc==1.16.0``;
tests/unit/test_keyframe_request.py-style checks in
tests/e2e/test_call_engine.py fail if the attribute goes.
"""

from __future__ import annotations

from typing import Any


class PeerUnknown(RuntimeError):
    """This aiortc does not show the DTLS peer certificate (or none yet)."""


def dtls_peer_fingerprints(pc: Any) -> set[str]:
    """The SHA-256 fingerprints (``"AB:CD:..."``) of the peer certificates of
    every DTLS transport of ``pc`` (one when bundled, as both ends do)."""
    from aiortc.rtcdtlstransport import certificate_digest

    transports = {id(t): t for t in (tr.receiver.transport for tr in pc.getTransceivers()) if t is not None}
    sctp = getattr(pc, "sctp", None)
    if sctp is not None and sctp.transport is not None:
        transports[id(sctp.transport)] = sctp.transport
    found: set[str] = set()
    for transport in transports.values():
        ssl = getattr(transport, "_ssl", None)
        if ssl is None or not hasattr(ssl, "get_peer_certificate"):
            raise PeerUnknown("the DTLS transport does not show its peer certificate")
        certificate = ssl.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            raise PeerUnknown("no DTLS peer certificate yet")
        found.add(certificate_digest(certificate, "sha-256"))
    if not found:
        raise PeerUnknown("no DTLS transport")
    return found
