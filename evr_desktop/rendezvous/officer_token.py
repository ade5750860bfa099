"""Short-lived officer tokens (issue 11, item 1): made in the app's own
process, where the officer's key is, and checked by the rendezvous
(``officers.CertificateAuth``).

Kept apart from ``officers`` so that the app's GUI process can make one
without importing the rendezvous server's web framework.

``evr1.<payload>.<signature>``: the payload is compact JSON with the officer's
certificate (DER, base64url), the audience (the rendezvous's public address,
as the apps are configured with it), issued-at and expiry (Unix seconds, at
most ``MAX_TOKEN_SECONDS`` apart); the signature is the officer's key's
(ECDSA or RSA PKCS#1 v1.5, SHA-256) over the payload's bytes.
"""

from __future__ import annotations

import base64
import json
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes

TOKEN_PREFIX = "evr1."
MAX_TOKEN_SECONDS = 600  # a token lives 10 minutes at most; the app makes a fresh one well before
REFRESH_SECONDS = 240  # how often the app makes a fresh one (a media process restarted late still has 6 min)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audience_of(url: str) -> str:
    """The audience a token names for a rendezvous address: the address with
    no trailing slash (the app's setting and the server's ``--public-url``)."""
    return url.strip().rstrip("/")


def make_officer_token(cert: x509.Certificate, key: object, audience: str, now: float | None = None,
                       lifetime: int = MAX_TOKEN_SECONDS) -> str:
    """The officer's certificate, the audience, issued-at and expiry, signed
    with the officer's key (ECDSA or RSA, SHA-256)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    issued = int(now if now is not None else time.time())
    payload = json.dumps({"cert": b64(cert.public_bytes(serialization.Encoding.DER)), "aud": audience_of(audience),
                          "iat": issued, "exp": issued + min(lifetime, MAX_TOKEN_SECONDS)},
                         separators=(",", ":")).encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise TypeError("an officer key is ECDSA or RSA")
    return f"{TOKEN_PREFIX}{b64(payload)}.{b64(signature)}"
