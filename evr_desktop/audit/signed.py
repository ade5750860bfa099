"""Signed audit checkpoints (issue 12, item 2).

The unsigned checkpoint (``audit.checkpoint``) catches entries cut off the
end of the log, but not someone who cuts them *and* recomputes the
checkpoint: nothing in it needs a key. So the app also signs the checkpoint
with the officer's key from the vault (its certificate is issued by the
force CA) at every lock, at intervals while in use, and at every evidence
export, appending each to ``<folder>/audit.signatures`` (JSON lines):

    {"n": 1, "size": 42, "head": "<hex>", "root": "<hex>", "time": "...Z",
     "reason": "lock", "officer": "TW 9001", "prev": "<hex>",
     "cert": "<base64 DER>", "alg": "ecdsa-sha256", "sig": "<base64>"}

``prev`` is the SHA-256 of the previous line (without its newline; 64 zeros
for the first), so a signed checkpoint removed from the middle breaks the
chain. ``sig`` is over the canonical JSON of every other field.

``verify_signed`` checks the log as ``log.verify`` does, then every signed
checkpoint: its chain, its signature by the certificate it carries, that
certificate against the force CA (when one is given: ``--ca``, or the
vault's authenticated header), and that the log still holds exactly what it
signed (the first ``size`` entries give ``head`` and ``root``). A tail
deleted with the checkpoint recomputed now fails ("a signed checkpoint
covers 42 entries; the log has 40"), as does any entry edited before a
signed checkpoint, even with every hash recomputed.

What stays out of reach locally: someone who deletes the signatures file's
tail together with the log's tail back to an earlier signed state. The
evidence export carries its own signed checkpoint, which is the defence
there (and the lock-time signatures bound how much can vanish unnoticed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..fsutil import append_durably
from .log import ZERO_HASH, AuditLog, VerifyResult, canonical_json, verify
from .merkle import MerkleTree

SIGNATURES_NAME = "audit.signatures"
REASONS = ("lock", "interval", "export", "unlock")
SIGNED_KEYS = frozenset({"n", "size", "head", "root", "time", "reason", "officer", "prev", "cert", "alg", "sig"})
MAX_LINE = 16384


@dataclass(frozen=True)
class Signer:
    """The officer's certificate and a function that signs bytes with its key."""

    certificate: x509.Certificate
    sign: Callable[[bytes], bytes]
    alg: str  # "ecdsa-sha256" | "rsa-pkcs1-sha256"


def signer_from_pem(certificate_pem: str, key_pem: str) -> Signer:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_key = key
        return Signer(cert, lambda data: ec_key.sign(data, ec.ECDSA(hashes.SHA256())), "ecdsa-sha256")
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key = key
        return Signer(cert, lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
                      "rsa-pkcs1-sha256")
    raise TypeError("an officer key is ECDSA or RSA")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _time(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def read_signatures(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The signed checkpoints in ``folder`` (none when there is no file yet), and
    the problems with the file's form or chain (each in words)."""
    path = Path(folder) / SIGNATURES_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"the signed checkpoints could not be read ({exc.strerror or exc})"]
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    prev = ZERO_HASH
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        try:
            if len(raw) > MAX_LINE:
                raise ValueError
            obj = json.loads(raw)
        except ValueError:
            problems.append(f"signed checkpoint {number} is not readable (the file was damaged or edited)")
            break
        if not isinstance(obj, dict) or set(obj) != SIGNED_KEYS:
            problems.append(f"signed checkpoint {number} does not have the expected fields (it was edited)")
            break
        if obj["n"] != number or obj["prev"] != prev:
            problems.append(f"signed checkpoint {number} does not follow the one before it "
                            "(a signed checkpoint was removed, reordered or edited)")
            break
        if raw != canonical_json(obj):
            problems.append(f"signed checkpoint {number} was edited (it is not in the form the app writes)")
            break
        prev = _line_hash(raw)
        out.append(obj)
    return out, problems


def sign_checkpoint(log: AuditLog, signer: Signer, officer: str, reason: str,
                    now: datetime | None = None) -> dict[str, Any]:
    """Sign the log's checkpoint as it is now and append it (durably) to the
    signatures file. Returns what was written."""
    from cryptography.hazmat.primitives import serialization

    if reason not in REASONS:
        raise ValueError("unknown reason for a signed checkpoint")
    existing, problems = read_signatures(log.folder)
    if problems:
        # Never append to a chain that no longer verifies: the verifier would
        # blame the new line. The log verification reports the damage.
        raise ValueError("The signed audit checkpoints are damaged: " + problems[0] + ".")
    size, head, root = log.checkpoint()
    prev = ZERO_HASH
    if existing:
        prev = _line_hash(canonical_json(existing[-1]))
    body: dict[str, Any] = {
        "n": len(existing) + 1, "size": size, "head": head, "root": root,
        "time": _time(now or datetime.now(timezone.utc)), "reason": reason, "officer": officer, "prev": prev,
        "cert": _b64(signer.certificate.public_bytes(serialization.Encoding.DER)), "alg": signer.alg,
    }
    body["sig"] = _b64(signer.sign(canonical_json(body)))
    append_durably(log.folder / SIGNATURES_NAME, canonical_json(body) + b"\n")
    return body


def check_signature(obj: dict[str, Any], ca: x509.Certificate | None) -> tuple[x509.Certificate | None, str]:
    """The signed checkpoint's certificate if its signature holds (and, given
    ``ca``, the certificate was issued by it and valid at the time signed),
    else None and why."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(obj["cert"], validate=True))
        signature = base64.b64decode(obj["sig"], validate=True)
        body = canonical_json({k: v for k, v in obj.items() if k != "sig"})
        public = cert.public_key()
        if obj["alg"] == "ecdsa-sha256" and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, body, ec.ECDSA(hashes.SHA256()))
        elif obj["alg"] == "rsa-pkcs1-sha256" and isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        else:
            return None, "its signature algorithm does not match its certificate"
    except (ValueError, TypeError, InvalidSignature):
        return None, "its signature does not verify (it was edited or signed by another key)"
    if ca is not None:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return None, "it was signed with a certificate the force CA did not issue"
        try:
            when = datetime.strptime(obj["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        except (ValueError, TypeError):
            return None, "its time is not in the app's format"
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            return None, "it was signed outside its certificate's validity"
    return cert, ""


@dataclass(frozen=True)
class SignedVerifyResult:
    log: VerifyResult
    signed: int = 0  # signed checkpoints that hold
    last_signed_size: int = 0
    ca_checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.log.ok and not self.problems


def log_leaves(folder: Path, count: int) -> list[bytes]:
    """The raw hashes of the log's first ``count`` entries (the log already verified)."""
    from .log import LOG_NAME

    out: list[bytes] = []
    with open(Path(folder) / LOG_NAME, "rb") as f:
        for raw in f:
            if len(out) == count:
                break
            out.append(bytes.fromhex(json.loads(raw)["hash"]))
    return out


def verify_signed(folder: Path, ca: x509.Certificate | None = None) -> SignedVerifyResult:
    """``log.verify`` plus every signed checkpoint (see the module's doc)."""
    folder = Path(folder)
    result = verify(folder)
    signed, problems = read_signatures(folder)
    if not result.ok and result.unreadable:
        return SignedVerifyResult(result, problems=problems)
    count = result.count if result.ok else (result.first_bad_seq or 1) - 1
    leaves = log_leaves(folder, count)
    tree = MerkleTree(leaves)
    good = 0
    last = 0
    for obj in signed:
        n = obj["n"]
        cert, why = check_signature(obj, ca)
        if cert is None:
            problems.append(f"signed checkpoint {n}: {why}")
            break
        size = obj["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append(f"signed checkpoint {n} has a size that is not a count")
            break
        if size > count:
            problems.append(f"signed checkpoint {n} covers {size} entries, but the log has only {count} that verify: "
                            "entries were deleted or changed after it was signed")
            break
        head = leaves[size - 1].hex() if size else ZERO_HASH
        if head != obj["head"] or tree.root(size).hex() != obj["root"]:
            problems.append(f"signed checkpoint {n} does not match the log's first {size} entries: "
                            "entries it covers were changed, removed or replaced")
            break
        good += 1
        last = size
    return SignedVerifyResult(result, good, last, ca is not None, problems)


def format_signed(result: SignedVerifyResult) -> str:
    from .log import format_result

    if result.problems:
        return "\n".join([
            "AUDIT LOG FAILED VERIFICATION: " + "; ".join(result.problems) + ".",
            "The hash chain and checkpoint alone: " + format_result(result.log),
            "Keep the folder exactly as it is (do not edit, copy over or delete files) "
            "and report it to the force's IT security team.",
        ])
    lines = [format_result(result.log)]
    if not result.log.ok:
        return lines[0]
    if result.signed:
        trust = ("checked against the force CA" if result.ca_checked else
                 "signatures valid, but NOT checked against a force CA (give --ca)")
        lines.append(f"{result.signed} signed checkpoint(s) hold, the latest covering "
                     f"{result.last_signed_size} entries; {trust}.")
    else:
        lines.append("No signed checkpoint yet (one is made at every lock and export).")
    return "\n".join(lines)


def run_verify_signed(folder: Path, ca: x509.Certificate | None, out: Any = None) -> int:
    """`evr-desktop audit verify [--ca CA.pem]`: 0 intact, 1 tampered, 2 missing or unreadable."""
    import sys

    out = out if out is not None else sys.stdout
    result = verify_signed(Path(folder), ca)
    print(format_signed(result), file=out)
    if result.log.unreadable:
        return 2
    return 0 if result.ok else 1
