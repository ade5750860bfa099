"""The officer's vault: identity, keys, and the passphrase that seals them.

One JSON file in the profile (``vault.json``):

- ``officer``, ``mode`` and ``public``: who the officer is, the age recipient
  recordings are wrapped to, the force escrow recipient, the signing
  certificate and the force CA. Not secret, but authenticated: they are the
  AEAD's associated data, so a swapped escrow recipient or certificate makes
  unlocking fail instead of silently wrapping evidence to someone else.
- ``kdf``: Argon2id parameters, bounded before use (see ``kdf.py``).
- ``sealed``: AES-256-GCM over the private keys and the store key.
- ``checksum``: SHA-256 over the rest, unkeyed. It tells a damaged file apart
  from a wrong passphrase (GCM alone cannot), and catches damage before any
  key derivation is spent on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domain.officer import OfficerIdentity
from ..fsutil import atomic_write, ensure_private_dir
from .kdf import KdfParameterError, KdfParams, calibrate

FORMAT = "evr-desktop-vault"
VERSION = 1
VAULT_FILE = "vault.json"
MAX_VAULT_BYTES = 256 * 1024


class VaultError(Exception):
    """Base for vault problems; the message is meant for the officer."""


class WrongPassphrase(VaultError):
    pass


class VaultDamaged(VaultError):
    pass


class VaultMissing(VaultError):
    pass


@dataclass(frozen=True)
class ForceProvisioning:
    """What a force's IT team supplies for real (non-demo) use."""

    ca_certificate: bytes
    escrow_recipient: str
    officer_pkcs12: bytes
    pkcs12_password: str


@dataclass(frozen=True)
class VaultHeader:
    """The readable, non-secret part: enough to show 'Unlock as PC 1234'."""

    officer: OfficerIdentity
    mode: str  # "demo" or "force"
    age_recipient: str
    escrow_recipient: str
    certificate_pem: str
    force_ca_pem: str

    @property
    def is_demo(self) -> bool:
        return self.mode == "demo"


@dataclass
class UnlockedVault:
    """Keys in memory while the app is unlocked. ``close()`` drops them."""

    header: VaultHeader
    age_identity: str  # AGE-SECRET-KEY-1...
    signing_key_pem: str
    store_key: bytes
    chain_pem: tuple[str, ...] = ()

    def close(self) -> None:
        # Python cannot reliably wipe memory; dropping the references is what
        # we can do, and the owner discards this object too.
        self.age_identity = ""
        self.signing_key_pem = ""
        self.store_key = b""


def vault_path(profile: Path) -> Path:
    return Path(profile) / VAULT_FILE


def exists(profile: Path) -> bool:
    return vault_path(profile).is_file()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(s), validate=True)
    except ValueError as exc:
        raise VaultDamaged(f"The vault file is damaged ({what} is not valid base64).") from exc


def create(
    profile: Path,
    officer: OfficerIdentity,
    passphrase: str,
    *,
    evidence_office: Path | None = None,
    provisioning: ForceProvisioning | None = None,
    kdf_params: KdfParams | None = None,
) -> UnlockedVault:
    """Make a new vault. Demo mode (no ``provisioning``) makes a demo force CA
    and a demo escrow key, and writes the escrow *private* key to
    ``evidence_office``, a folder outside the profile standing in for the
    force's evidence office."""
    # pki pulls in cryptography.x509 (~0.1 s): only creating a vault needs it,
    # so it is not imported on the unlock path.
    from . import pki
    from .age import X25519Identity

    profile = ensure_private_dir(Path(profile))
    if exists(profile):
        raise VaultError("A vault already exists in this profile; it was left as it is.")
    identity = X25519Identity.generate()
    chain: list[str] = []
    if provisioning is None:
        if evidence_office is None:
            raise VaultError("Demo mode needs an evidence-office folder for the demo escrow key.")
        from cryptography.hazmat.primitives.asymmetric import ec

        ca_key, ca_cert = pki.make_demo_ca(officer.force)
        signing_key: pki.SigningKey = ec.generate_private_key(ec.SECP256R1())
        cert = pki.issue_officer_certificate(ca_key, ca_cert, officer, signing_key)
        escrow = X25519Identity.generate()
        _write_demo_evidence_office(Path(evidence_office), escrow, ca_key, ca_cert, officer)
        escrow_recipient = escrow.recipient
        mode = "demo"
    else:
        from .age import parse_recipient

        ca_cert = pki.load_ca_certificate(provisioning.ca_certificate)
        try:
            parse_recipient(provisioning.escrow_recipient.strip())
        except ValueError as exc:
            raise VaultError(f"The force escrow recipient is not a valid age recipient ({exc}).") from exc
        signing_key, cert, extra = pki.load_officer_pkcs12(
            provisioning.officer_pkcs12, provisioning.pkcs12_password, ca_cert
        )
        chain = [pki.cert_pem(c) for c in extra]
        escrow_recipient = provisioning.escrow_recipient.strip()
        mode = "force"

    header = VaultHeader(
        officer=officer,
        mode=mode,
        age_recipient=identity.recipient,
        escrow_recipient=escrow_recipient,
        certificate_pem=pki.cert_pem(cert),
        force_ca_pem=pki.cert_pem(ca_cert),
    )
    unlocked = UnlockedVault(
        header=header,
        age_identity=identity.to_string(),
        signing_key_pem=pki.key_pem(signing_key),
        store_key=os.urandom(32),
        chain_pem=tuple(chain),
    )
    params = kdf_params or calibrate()
    atomic_write(vault_path(profile), seal(unlocked, passphrase, params))
    return unlocked


def _header_dict(h: VaultHeader) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "mode": h.mode,
        "officer": {
            "name": h.officer.name,
            "collar": h.officer.collar,
            "force": h.officer.force,
            "station": h.officer.station,
        },
        "public": {
            "age_recipient": h.age_recipient,
            "escrow_recipient": h.escrow_recipient,
            "certificate_pem": h.certificate_pem,
            "force_ca_pem": h.force_ca_pem,
        },
    }


def seal(unlocked: UnlockedVault, passphrase: str, params: KdfParams) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    doc = _header_dict(unlocked.header)
    doc["kdf"] = params.to_dict()
    secret = _canonical(
        {
            "age_identity": unlocked.age_identity,
            "signing_key_pem": unlocked.signing_key_pem,
            "store_key": _b64(unlocked.store_key),
            "chain_pem": list(unlocked.chain_pem),
        }
    )
    nonce = os.urandom(12)
    key = params.derive(passphrase)
    ct = AESGCM(key).encrypt(nonce, secret, _canonical(doc))
    doc["sealed"] = {"algorithm": "aes-256-gcm", "nonce": _b64(nonce), "ciphertext": _b64(ct)}
    doc["checksum"] = hashlib.sha256(_canonical(doc)).hexdigest()
    return json.dumps(doc, indent=1, sort_keys=True).encode("ascii") + b"\n"


def _load_document(profile: Path) -> dict[str, Any]:
    path = vault_path(profile)
    if not path.is_file():
        raise VaultMissing("No officer vault in this profile yet.")
    size = path.stat().st_size
    if size > MAX_VAULT_BYTES:
        raise VaultDamaged("The vault file is far larger than any vault: it is damaged or not a vault.")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VaultDamaged(f"The vault file is damaged (it is not readable JSON: {exc}).") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise VaultDamaged("This file is not an EVR Desktop vault.")
    if doc.get("version") != VERSION:
        raise VaultDamaged(f"The vault is version {doc.get('version')!r}; this app reads version {VERSION}.")
    checksum = doc.pop("checksum", None)
    if checksum != hashlib.sha256(_canonical(doc)).hexdigest():
        raise VaultDamaged(
            "The vault file is damaged (its checksum does not match). Nothing was changed; "
            "restore the profile from backup or ask IT to re-provision."
        )
    return doc


def read_header(profile: Path) -> VaultHeader:
    """The public part, after checking the file is intact. No key derivation."""
    return _header_from(_load_document(profile))


def _header_from(doc: dict[str, Any]) -> VaultHeader:
    try:
        o, p = doc["officer"], doc["public"]
        return VaultHeader(
            officer=OfficerIdentity(
                name=str(o["name"]), collar=str(o["collar"]), force=str(o["force"]), station=str(o["station"])
            ),
            mode=str(doc["mode"]),
            age_recipient=str(p["age_recipient"]),
            escrow_recipient=str(p["escrow_recipient"]),
            certificate_pem=str(p["certificate_pem"]),
            force_ca_pem=str(p["force_ca_pem"]),
        )
    except (KeyError, TypeError) as exc:
        raise VaultDamaged(f"The vault file is missing a field ({exc}).") from exc


def unlock(profile: Path, passphrase: str) -> UnlockedVault:
    """Open the vault. Reads only; a wrong passphrase changes nothing on disk."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    doc = _load_document(profile)
    header = _header_from(doc)
    try:
        params = KdfParams.from_dict(doc.get("kdf"))
    except KdfParameterError as exc:
        raise VaultDamaged(str(exc)) from exc
    sealed = doc.get("sealed")
    if not isinstance(sealed, dict) or sealed.get("algorithm") != "aes-256-gcm":
        raise VaultDamaged("The vault's sealed keys are missing or use an unknown cipher.")
    nonce = _unb64(sealed.get("nonce"), "the nonce")
    ct = _unb64(sealed.get("ciphertext"), "the sealed keys")
    aad = {k: v for k, v in doc.items() if k != "sealed"}
    key = params.derive(passphrase)
    try:
        secret = json.loads(AESGCM(key).decrypt(nonce, ct, _canonical(aad)))
    except InvalidTag as exc:
        raise WrongPassphrase("That passphrase is not right.") from exc
    except ValueError as exc:
        raise VaultDamaged(f"The vault's sealed keys are malformed ({exc}).") from exc
    return UnlockedVault(
        header=header,
        age_identity=secret["age_identity"],
        signing_key_pem=secret["signing_key_pem"],
        store_key=base64.b64decode(secret["store_key"]),
        chain_pem=tuple(secret.get("chain_pem", ())),
    )


DEMO_README = """DEMO EVIDENCE OFFICE - NOT FOR REAL EVIDENCE

This folder stands in for a police force's evidence office in the EVR Desktop
demo profile. It holds the demo escrow PRIVATE key: every recording and export
made by the demo officer is also encrypted to it, so the evidence team can
decrypt with the standard age tool even if the officer forgets their
passphrase:

    age -d -i escrow-identity-DEMO.txt recording.age > recording.mkv

A real force keeps its escrow private key offline, in the evidence office,
and gives EVR Desktop only the public recipient (age1...). Never use these
demo keys for real victims.
"""


def _write_demo_evidence_office(folder: Path, escrow: Any, ca_key: Any, ca_cert: Any, officer: OfficerIdentity) -> None:
    from . import pki

    folder = ensure_private_dir(folder)
    atomic_write(folder / "README-DEMO.txt", DEMO_README.encode("ascii"))
    text = (
        "# DEMO escrow identity for EVR Desktop - NOT FOR REAL EVIDENCE\n"
        f"# officer: {officer.collar}\n"
        f"# public key: {escrow.recipient}\n"
        f"{escrow.to_string()}\n"
    )
    atomic_write(folder / "escrow-identity-DEMO.txt", text.encode("ascii"))
    atomic_write(folder / "demo-force-ca.pem", pki.cert_pem(ca_cert).encode("ascii"))
    atomic_write(folder / "demo-force-ca-key-DEMO.pem", pki.key_pem(ca_key).encode("ascii"))
