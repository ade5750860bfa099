import json
import time
from pathlib import Path

import pytest

from evr_desktop.vault import vault
from evr_desktop.vault.age import X25519Identity, decrypt, encrypt
from evr_desktop.vault.kdf import KdfParameterError, KdfParams, backoff_seconds
from tests.conftest import OFFICER, PASSPHRASE, fast_kdf, snapshot


@pytest.fixture
def made(tmp_path: Path):
    profile = tmp_path / "profile"
    office = tmp_path / "office"
    unlocked = vault.create(profile, OFFICER, PASSPHRASE, evidence_office=office, kdf_params=fast_kdf())
    return profile, office, unlocked


def test_create_then_unlock_gives_the_same_keys(made):
    profile, office, created = made
    opened = vault.unlock(profile, PASSPHRASE)
    assert opened.age_identity == created.age_identity
    assert opened.store_key == created.store_key and len(opened.store_key) == 32
    assert opened.header.officer == OFFICER and opened.header.is_demo
    assert oct(vault.vault_path(profile).stat().st_mode & 0o777) == "0o600"


def test_demo_escrow_key_lives_outside_the_profile_and_decrypts_with_age(made, tmp_path):
    profile, office, unlocked = made
    assert not office.is_relative_to(profile)
    text = (office / "escrow-identity-DEMO.txt").read_text()
    assert "DEMO" in text and "NOT FOR REAL EVIDENCE" in text
    secret_line = [ln for ln in text.splitlines() if ln.startswith("AGE-SECRET-KEY-1")][0]
    escrow = X25519Identity.from_string(secret_line)
    assert escrow.recipient == unlocked.header.escrow_recipient
    officer = X25519Identity.from_string(unlocked.age_identity)
    assert officer.recipient == unlocked.header.age_recipient
    blob = encrypt(b"evidence", [unlocked.header.age_recipient, unlocked.header.escrow_recipient])
    assert decrypt(blob, [escrow]) == b"evidence" == decrypt(blob, [officer])


def test_officer_certificate_chains_to_the_demo_ca(made):
    from cryptography import x509

    _, _, unlocked = made
    cert = x509.load_pem_x509_certificate(unlocked.header.certificate_pem.encode())
    ca = x509.load_pem_x509_certificate(unlocked.header.force_ca_pem.encode())
    cert.verify_directly_issued_by(ca)
    assert "DEMO" in ca.subject.rfc4514_string()
    assert OFFICER.collar in cert.subject.rfc4514_string()


def test_wrong_passphrase_is_refused_and_changes_nothing(made):
    profile, _, _ = made
    before = snapshot(profile.parent)
    with pytest.raises(vault.WrongPassphrase, match="not right"):
        vault.unlock(profile, "wrong horse battery staple 42")
    assert snapshot(profile.parent) == before


def test_every_flipped_byte_is_detected_without_changing_anything(made):
    profile, _, _ = made
    path = vault.vault_path(profile)
    original = path.read_bytes()
    before = snapshot(profile.parent)
    # Every 7th byte plus the last few: the whole file is covered by the checksum.
    positions = sorted(set(range(0, len(original), 7)) | {len(original) - 2})
    for pos in positions:
        damaged = bytearray(original)
        damaged[pos] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(vault.VaultError) as info:
            vault.unlock(profile, PASSPHRASE)
        assert not isinstance(info.value, vault.WrongPassphrase), pos
    path.write_bytes(original)
    assert snapshot(profile.parent) == before
    vault.unlock(profile, PASSPHRASE)


def _rewrite(profile: Path, mutate) -> None:
    """Change the document and fix up its checksum, as an attacker would."""
    import hashlib

    path = vault.vault_path(profile)
    doc = json.loads(path.read_text())
    doc.pop("checksum")
    mutate(doc)
    doc["checksum"] = hashlib.sha256(vault._canonical(doc)).hexdigest()
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "field, value",
    [("memory_kib", 2**40), ("iterations", 10**9), ("lanes", 4096), ("memory_kib", 8), ("iterations", 0)],
)
def test_absurd_kdf_parameters_are_refused_before_any_work(made, field, value, monkeypatch):
    profile, _, _ = made
    _rewrite(profile, lambda d: d["kdf"].__setitem__(field, value))
    before = snapshot(profile.parent)
    derived = []
    monkeypatch.setattr(KdfParams, "derive", lambda self, p: derived.append(1) or b"\0" * 32)
    start = time.perf_counter()
    with pytest.raises(vault.VaultDamaged, match="outside the accepted range"):
        vault.unlock(profile, PASSPHRASE)
    assert derived == [] and time.perf_counter() - start < 1
    assert snapshot(profile.parent) == before


def test_swapped_escrow_recipient_fails_authentication(made):
    profile, _, _ = made
    other = X25519Identity.generate().recipient
    _rewrite(profile, lambda d: d["public"].__setitem__("escrow_recipient", other))
    with pytest.raises(vault.VaultError):
        vault.unlock(profile, PASSPHRASE)


def test_kdf_params_bounds_and_backoff():
    with pytest.raises(KdfParameterError):
        KdfParams(salt=b"short", memory_kib=65536, iterations=2)
    with pytest.raises(KdfParameterError):
        KdfParams.from_dict({"algorithm": "argon2id", "salt": "AAAA", "memory_kib": 1.5, "iterations": 1, "lanes": 1})
    assert [backoff_seconds(n) for n in range(0, 5)] == [0, 1, 2, 4, 8]
    assert backoff_seconds(100) == 60


def test_existing_vault_is_never_overwritten(made):
    profile, office, _ = made
    before = snapshot(profile)
    with pytest.raises(vault.VaultError, match="already exists"):
        vault.create(profile, OFFICER, PASSPHRASE, evidence_office=office, kdf_params=fast_kdf())
    assert snapshot(profile) == before


def _pkcs12(tmp_path, ca_key, ca_cert, password=b"p12-pass"):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from evr_desktop.vault import pki

    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue_officer_certificate(ca_key, ca_cert, OFFICER, key)
    return pkcs12.serialize_key_and_certificates(b"officer", key, cert, [ca_cert], BestAvailableEncryption(password))


def test_force_mode_imports_ca_escrow_and_pkcs12(tmp_path):
    from evr_desktop.vault import pki

    ca_key, ca_cert = pki.make_demo_ca("Testshire Police")
    escrow = X25519Identity.generate()
    prov = vault.ForceProvisioning(
        ca_certificate=pki.cert_pem(ca_cert).encode(), escrow_recipient=escrow.recipient,
        officer_pkcs12=_pkcs12(tmp_path, ca_key, ca_cert), pkcs12_password="p12-pass",
    )
    unlocked = vault.create(tmp_path / "p", OFFICER, PASSPHRASE, provisioning=prov, kdf_params=fast_kdf())
    assert unlocked.header.mode == "force" and unlocked.header.escrow_recipient == escrow.recipient
    assert vault.unlock(tmp_path / "p", PASSPHRASE).signing_key_pem == unlocked.signing_key_pem


def test_force_mode_refuses_a_certificate_from_another_ca(tmp_path):
    from evr_desktop.vault import pki

    ca_key, ca_cert = pki.make_demo_ca("Testshire Police")
    other_key, other_cert = pki.make_demo_ca("Elsewhere")
    prov = vault.ForceProvisioning(
        ca_certificate=pki.cert_pem(ca_cert).encode(), escrow_recipient=X25519Identity.generate().recipient,
        officer_pkcs12=_pkcs12(tmp_path, other_key, other_cert), pkcs12_password="p12-pass",
    )
    with pytest.raises(pki.CertificateError, match="not issued by the force CA"):
        vault.create(tmp_path / "p", OFFICER, PASSPHRASE, provisioning=prov, kdf_params=fast_kdf())
    assert not (tmp_path / "p" / "vault.json").exists()
    bad = vault.ForceProvisioning(prov.ca_certificate, "age1notvalid", prov.officer_pkcs12, "p12-pass")
    with pytest.raises(vault.VaultError, match="escrow recipient"):
        vault.create(tmp_path / "q", OFFICER, PASSPHRASE, provisioning=bad, kdf_params=fast_kdf())


def test_calibration_targets_about_half_a_second():
    from evr_desktop.vault.kdf import calibrate

    params = calibrate(target_seconds=0.2)
    assert params.memory_kib >= 64 * 1024 and 1 <= params.iterations <= 20
