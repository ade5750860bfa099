"""X.509 for the officer's signing identity: a demo force CA, and checks on
certificates a force provisions.

The officer signs statements (PAdES) with the key whose certificate is issued
by the force CA; a prosecutor's validator checks that chain. In demo mode the
app makes its own CA, clearly named as a demo so no one mistakes it for a real
force's.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..domain.officer import OfficerIdentity

#: The officer's statement-signing key: what PAdES signing accepts here.
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

DEMO_CA_NAME = "EVR Desktop DEMO Force CA - not for evidence"


class CertificateError(ValueError):
    """A certificate or key that cannot serve as the officer's signing identity."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    flags = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )
    return x509.KeyUsage(**{f: f in allowed for f in flags})


def make_demo_ca(force: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, DEMO_CA_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{force} (DEMO)"[:64]),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage("digital_signature", "key_cert_sign", "crl_sign"),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_officer_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    officer: OfficerIdentity,
    officer_key: SigningKey,
    days: int = 730,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, officer.name[:64]),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, officer.collar[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, officer.force[:64]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, officer.station[:64]),
        ]
    )
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(officer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # content_commitment (non-repudiation): the officer signs statements.
            _key_usage("digital_signature", "content_commitment"),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(officer_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def load_ca_certificate(data: bytes) -> x509.Certificate:
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        raise CertificateError(f"The force CA file is not a certificate ({exc}).") from exc
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise CertificateError("The force CA file is a certificate, but not a CA certificate.")
    return cert


def load_officer_pkcs12(
    data: bytes, password: str, ca_cert: x509.Certificate
) -> tuple[SigningKey, x509.Certificate, list[x509.Certificate]]:
    """Open the officer's PKCS#12 and check it chains to the force CA."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except ValueError as exc:
        raise CertificateError(
            "The officer's PKCS#12 file could not be opened: wrong password or not a PKCS#12 file."
        ) from exc
    if key is None or cert is None:
        raise CertificateError("The PKCS#12 file has no private key and certificate.")
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CertificateError("The officer's key must be RSA or ECDSA to sign PDF statements.")
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise CertificateError("The certificate in the PKCS#12 file does not match its key.")
    check_issued_by(cert, ca_cert)
    return key, cert, list(extra or [])


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    """The key as its DER SubjectPublicKeyInfo: comparable whatever its type."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError("The officer's certificate was not issued by the force CA.") from exc
    now = _now()
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise CertificateError("The officer's certificate is not valid today (expired or not yet valid).")


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
