"""The officer token the app's process signs for the force's rendezvous
(services ``Session.officer_token``, rendezvous ``officer_token``): accepted
by the rendezvous's check for the address it names, refused for any other,
and not made at all once the vault is locked."""

from __future__ import annotations

import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from evr_desktop.domain.errors import Refused
from evr_desktop.rendezvous.officer_token import MAX_TOKEN_SECONDS, audience_of
from evr_desktop.rendezvous.officers import CertificateAuth


def _auth(session, audience: str) -> CertificateAuth:
    ca = x509.load_pem_x509_certificate(session.vault.header.force_ca_pem.encode())
    return CertificateAuth(ca, None, audience=audience)


def test_the_sessions_token_names_this_officer_to_that_rendezvous_only(session):
    token = session.officer_token("https://meet.example.police.uk/")
    cert = _auth(session, "https://meet.example.police.uk")._token_certificate(token)
    assert cert is not None
    assert cert.public_bytes(Encoding.PEM).decode() == session.vault.header.certificate_pem
    assert _auth(session, "https://elsewhere.example.police.uk")._token_certificate(token) is None
    # the key never travels: the token holds the certificate and a signature only
    assert "PRIVATE" not in token and session.vault.signing_key_pem.split("\n")[1][:20] not in token


def test_a_token_lives_minutes_and_a_tampered_one_is_refused(session):
    token = session.officer_token("https://meet.example.police.uk")
    auth = _auth(session, "https://meet.example.police.uk")
    auth.clock = lambda: time.time() + MAX_TOKEN_SECONDS + 1
    assert auth._token_certificate(token) is None
    auth.clock = time.time
    head, payload, signature = token.split(".")
    assert auth._token_certificate(f"{head}.{payload}x.{signature}") is None
    assert auth._token_certificate(f"{head}.{payload}.{signature[:-4]}AAAA") is None


def test_no_token_once_locked(session):
    session.lock()
    with pytest.raises(Refused, match="cannot sign in to the force's video service"):
        session.officer_token("https://meet.example.police.uk")


def test_the_audience_is_the_address_without_a_trailing_slash():
    assert audience_of(" https://meet.example.police.uk/ ") == "https://meet.example.police.uk"
