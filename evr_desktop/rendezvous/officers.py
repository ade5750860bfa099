"""Who an officer is, to the rendezvous (issue 11, item 1).

Two ways, one interface (:class:`OfficerAuth`: a request -> an officer id,
or None):

- :class:`SecretAuth`: a bearer secret, for the embedded loopback demo where
  the app runs its own rendezvous and is its only officer (id ``officer``).
- :class:`CertificateAuth`: **mutual TLS** with the officer's own
  certificate, issued by the force CA (the one the app's vault already holds
  for signing statements; it carries the TLS client-auth usage). No secret is
  shared by a whole force. The TLS layer (an officer listener made with
  :func:`officer_tls_context`: ``CERT_REQUIRED`` against the force CA)
  refuses a foreign certificate or none at all; this class then checks the
  certificate once more against the CA, its validity and the force's **CRL**
  (re-read whenever its file changes, its signature checked against the CA;
  an unreadable or unverifiable CRL refuses everyone rather than letting a
  revoked officer in), and names the officer by the certificate's
  ``serialNumber`` (the collar number) and the certificate's SHA-256.
  ``still_valid`` lets the server drop a connected officer whose certificate
  has since been revoked.

  Or, where the TLS client key cannot be used (the officer's app connects
  from its media process, which never holds a key from the vault), a
  **short-lived officer token**: the certificate and an expiry, signed with
  the officer's key by the app's own process (:func:`make_officer_token`),
  presented as the bearer and checked the same way (CA, dates, CRL) plus its
  signature, audience and expiry (at most ``MAX_TOKEN_SECONDS``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import ssl
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from .officer_token import MAX_TOKEN_SECONDS, TOKEN_PREFIX, audience_of, make_officer_token, unb64

__all__ = ["MAX_TOKEN_SECONDS", "TOKEN_PREFIX", "CertificateAuth", "SecretAuth", "make_officer_token",
           "officer_id_of", "officer_tls_context"]

log = logging.getLogger("evr_desktop.rendezvous")

DEFAULT_OFFICER = "officer"  # the one officer of secret mode (the embedded demo)


class OfficerAuth(Protocol):
    def identify(self, request: web.Request) -> str | None:
        """The officer's id, or None (refused)."""
        ...

    def still_valid(self, officer_id: str) -> bool:
        """Whether a connected officer's credentials still hold (a CRL update)."""
        ...


class SecretAuth:
    def __init__(self, secret: str):
        if len(secret) < 16:
            raise ValueError("the officer secret must be at least 16 characters")
        self._digest = hashlib.sha256(secret.encode()).digest()

    def identify(self, request: web.Request) -> str | None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        digest = hashlib.sha256(given.strip().encode()).digest()
        ok = hmac.compare_digest(digest, self._digest) and scheme.lower() == "bearer"
        return DEFAULT_OFFICER if ok else None

    def still_valid(self, officer_id: str) -> bool:
        return True


class CertificateAuth:
    def __init__(self, ca: x509.Certificate, crl_path: Path | None, clock=time.time,  # noqa: ANN001
                 audience: str | None = None):
        """``audience``: what an officer token must name (this rendezvous's
        address, as the apps are configured with it); None: tokens refused."""
        self.audience = audience_of(audience) if audience else None
        self.ca = ca
        self.crl_path = crl_path
        self.clock = clock
        self._crl_stamp: tuple[int, int] | None = None
        self._revoked: frozenset[int] | None = frozenset() if crl_path is None else None
        self._certificates: dict[str, x509.Certificate] = {}  # connected officers' certificates

    # -- the CRL --------------------------------------------------------------------
    def _load_crl(self) -> frozenset[int] | None:
        """The revoked serial numbers, re-read when the file changed; None when
        the CRL cannot be trusted (then nobody is let in)."""
        if self.crl_path is None:
            return frozenset()
        try:
            st = self.crl_path.stat()
        except OSError:
            log.error("the CRL cannot be read: officers are refused until it can")
            self._revoked, self._crl_stamp = None, None
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._crl_stamp:
            return self._revoked
        self._crl_stamp = stamp
        try:
            data = self.crl_path.read_bytes()
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_crl(data))
            if crl.issuer != self.ca.subject or not crl.is_signature_valid(self.ca.public_key()):  # type: ignore[arg-type]
                raise ValueError("the CRL is not signed by the force CA")
            next_update = crl.next_update_utc
            if next_update is not None and next_update < datetime.now(timezone.utc):
                raise ValueError("the CRL is out of date")
        except (OSError, ValueError) as exc:
            log.error("the CRL is not usable (%s): officers are refused until it is", exc)
            self._revoked = None
            return None
        self._revoked = frozenset(r.serial_number for r in crl)
        log.info("CRL loaded: %d revoked certificates", len(self._revoked))
        return self._revoked

    # -- identifying --------------------------------------------------------------------
    def identify(self, request: web.Request) -> str | None:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:  # not over the officer listener, or no certificate: a token, perhaps
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            cert = self._token_certificate(token.strip()) if scheme.lower() == "bearer" else None
            if cert is None:
                return None
        else:
            cert = x509.load_der_x509_certificate(der)
        if not self._acceptable(cert):
            return None
        officer_id = officer_id_of(cert)
        self._certificates[officer_id] = cert
        return officer_id

    def _token_certificate(self, token: str) -> x509.Certificate | None:
        """The certificate of a valid officer token (see ``make_officer_token``), or None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

        if self.audience is None or not token.startswith(TOKEN_PREFIX) or len(token) > 16384:
            return None
        try:
            payload_b64, signature_b64 = token[len(TOKEN_PREFIX):].split(".")
            payload = unb64(payload_b64)
            claims = json.loads(payload)
            cert = x509.load_der_x509_certificate(unb64(claims["cert"]))
            public = cert.public_key()
            signature = unb64(signature_b64)
            if isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
            elif isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                return None
            now = self.clock()
            iat, exp = int(claims["iat"]), int(claims["exp"])
            if claims["aud"] != self.audience or not iat - 60 <= now <= exp or exp - iat > MAX_TOKEN_SECONDS:
                log.warning("officer token refused: wrong audience, expired or too long-lived")
                return None
        except (InvalidSignature, ValueError, KeyError, TypeError):
            log.warning("officer token refused: malformed or not signed by its certificate's key")
            return None
        return cert

    def _acceptable(self, cert: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(self.ca)
        except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and friends
            log.warning("officer refused: certificate not issued by the force CA")
            return False
        now = datetime.now(timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            log.warning("officer refused: certificate outside its validity")
            return False
        revoked = self._load_crl()
        if revoked is None or cert.serial_number in revoked:
            log.warning("officer refused: certificate revoked (or no usable CRL)")
            return False
        return True

    def still_valid(self, officer_id: str) -> bool:
        cert = self._certificates.get(officer_id)
        return cert is not None and self._acceptable(cert)


def officer_id_of(cert: x509.Certificate) -> str:
    """``collar:<collar number>`` from the subject's serialNumber (stable across
    certificate renewals), or ``cert:<sha-256>`` without one."""
    collars = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if collars and str(collars[0].value).strip():
        return f"collar:{str(collars[0].value).strip()}"
    return "cert:" + cert.fingerprint(hashes.SHA256()).hex()


def officer_tls_context(cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """The officer listener's TLS: this server's certificate, and a client
    certificate required, issued by the force CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(ca_file))
    return ctx
