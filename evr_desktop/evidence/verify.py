"""`evr-desktop evidence verify BUNDLE` (issue 12, item 4): checks an
evidence bundle the way a third party would, and names every problem.

Checks, each independent so that one change is named for what it is:

1. The files: none added, none removed, none a link; each one's size and
   SHA-256 as ``manifest.json`` lists them; ``SHA256SUMS`` agrees.
2. ``manifest.json.p7s``: a CMS signature over exactly ``manifest.json``
   (message digest and signature), by a certificate the force CA issued and
   valid when it was signed. The CA is the one given (``--ca``); without
   one, the bundle's own copy is used and the report says the result is
   NOT anchored to a CA you trust.
3. Every signed PDF (statements, VPS, the restricted rear page): pyHanko's
   validation against the same CA (``statement.verify``), whole file covered.
4. The recordings: each segment the manifest's recording section lists is a
   bundle file with the same hash (and the recording's own encrypted
   manifest is there).
5. The audit extract: the signed checkpoint's signature (officer's key, the
   CA), each entry's hash recomputed from its fields, and each entry's
   Merkle inclusion proof against the signed root.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ..fsutil import sha256_of
from .bundle import MANIFEST, SIGNATURE, SUMS

MAX_MANIFEST = 16 << 20
MAX_PDF = 256 << 20  # a statement with its signatures is well under a megabyte


@dataclass
class BundleReport:
    folder: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    anchored: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"bundle": self.folder, "ok": self.ok, "anchored_to_given_ca": self.anchored,
                "problems": self.problems, "notes": self.notes, "checked": self.checked}


def _sha256_file(src: BundleFiles, rel: str) -> tuple[str, int]:
    with src.open(rel) as f:
        return sha256_of(f)


def _walk(folder: Path, report: BundleReport) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                report.problems.append(f"{rel} is a symbolic link (a bundle holds none)")
            elif stat.S_ISREG(st.st_mode):
                found[rel] = path
    return found


class BundleFiles:
    """A bundle's files, by relative POSIX path: here a folder's (links
    refused, named in ``report``); ``_Zip`` reads a zip's members the same way.
    ``files`` maps each path to where it is read from."""

    def __init__(self, root: Path, report: BundleReport) -> None:
        self.files: dict[str, Any] = _walk(root, report)

    def open(self, rel: str) -> BinaryIO:
        if rel not in self.files:
            raise FileNotFoundError(rel)
        return open(self.files[rel], "rb")

    def read(self, rel: str, limit: int = MAX_MANIFEST) -> bytes:
        with self.open(rel) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{rel} is too large")
        return data

    def close(self) -> None:
        pass


class _Zip(BundleFiles):
    """A zipped bundle, read in place (nothing is extracted: a bundle holds
    signed statements, and a verifier must not leave copies of them around).
    Every member must sit inside one top folder, with a plain relative name
    (no ``..``, no absolute path, no backslash, no drive, no duplicate) and be
    an ordinary file; anything else is named as a problem and left unread."""

    def __init__(self, path: Path, report: BundleReport) -> None:
        import zipfile

        self.zf = zipfile.ZipFile(path)
        self.files = {}  # path in the bundle -> its ZipInfo
        tops: set[str] = set()
        for info in self.zf.infolist():
            name = info.filename
            parts = name.split("/")
            mode = info.external_attr >> 16
            if (not name or name.startswith("/") or "\\" in name or ":" in parts[0] or ".." in parts
                    or "" in parts[:-1] or "." in parts):
                report.problems.append(f"zip member {name!r}: not a plain relative name (never extracted)")
                continue
            if info.is_dir():
                continue
            if stat.S_ISLNK(mode):
                report.problems.append(f"zip member {name}: a symbolic link (a bundle holds none)")
                continue
            if len(parts) < 2:
                report.problems.append(f"zip member {name}: outside the bundle's folder")
                continue
            tops.add(parts[0])
            rel = "/".join(parts[1:])
            if rel in self.files:
                report.problems.append(f"zip member {name}: in the zip twice")
                continue
            self.files[rel] = info
        if len(tops) > 1:
            report.problems.append("the zip holds more than one folder: " + ", ".join(sorted(tops)[:5]))

    def open(self, rel: str) -> BinaryIO:
        if rel not in self.files:
            raise FileNotFoundError(rel)
        return _Member(self.zf.open(self.files[rel]))  # type: ignore[return-value]

    def close(self) -> None:
        self.zf.close()


class _Member:
    """A zip member being read: a damaged one (its CRC, a cut archive) is an
    ``OSError`` like a damaged file, not zipfile's own exception."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def _guard(self, fn: Any, *args: Any) -> bytes:
        import zipfile

        try:
            return fn(*args)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise OSError(f"damaged in the zip ({exc})") from None

    def read(self, n: int = -1) -> bytes:
        return self._guard(self._f.read, n)

    def readline(self, limit: int = -1) -> bytes:
        return self._guard(self._f.readline, limit)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _Member:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def open_bundle(path: str | os.PathLike[str], report: BundleReport) -> BundleFiles | None:
    """The bundle at ``path``, a folder or a ``.zip`` of one; None (and the
    problem in ``report``) if it is neither."""
    import zipfile

    root = Path(path)
    if root.is_symlink():
        report.problems.append(f"{root} is a link, not a bundle")
        return None
    if root.is_dir():
        return BundleFiles(root, report)
    if root.is_file():
        try:
            return _Zip(root, report)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            report.problems.append(f"{root} is not a readable zip of a bundle ({exc})")
            return None
    report.problems.append(f"{root} is not a bundle folder or zip")
    return None


def verify_cms(manifest: bytes, der: bytes, ca: Any) -> tuple[Any, str]:
    """(the signer's certificate, "") when ``der`` is a CMS signature over
    ``manifest`` by a certificate ``ca`` issued, valid at signing; else (None, why)."""
    from asn1crypto import cms
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        info = cms.ContentInfo.load(der)
        signed = info["content"]
        signer = signed["signer_infos"][0]
        sid = signer["sid"].chosen
        certs = [c.chosen for c in signed["certificates"]]
        match = [c for c in certs if c.serial_number == sid["serial_number"].native and c.issuer == sid["issuer"]]
        if not match:
            return None, "the signature does not carry its signer's certificate"
        cert = x509.load_der_x509_certificate(match[0].dump())
        attrs = signer["signed_attrs"]
        digest = next(a["values"][0].native for a in attrs if a["type"].native == "message_digest")
        when = next((a["values"][0].native for a in attrs if a["type"].native == "signing_time"), None)
        if signer["digest_algorithm"]["algorithm"].native != "sha256":
            return None, "the signature uses a digest other than SHA-256"
        if digest != hashlib.sha256(manifest).digest():
            return None, "manifest.json does not match its signature (the manifest was edited after signing)"
        to_verify = b"\x31" + attrs.dump()[1:]  # the signed attributes as a DER SET, as signed
        signature = signer["signature"].native
        public = cert.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, to_verify, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, to_verify, padding.PKCS1v15(), hashes.SHA256())
        else:
            return None, "the signer's key is of an unknown kind"
    except InvalidSignature:
        return None, "the manifest's signature does not verify (it was altered or made with another key)"
    except (ValueError, TypeError, KeyError, IndexError, StopIteration):
        return None, "manifest.json.p7s is not a readable CMS signature"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return None, "the manifest was signed with a certificate the force CA did not issue"
    if when is not None and not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        return None, "the manifest was signed outside its certificate's validity"
    return cert, ""


def _decrypts_to(src: BundleFiles, rel: str, identities: Sequence[Any], plaintext_sha256: str | None) -> str:
    """"" when the bundle's file ``rel`` decrypts (authenticated, to its end) and, given a hash, to
    exactly that plaintext; else why not."""
    from ..vault.age import AgeError, Decryptor

    digest = hashlib.sha256()
    try:
        with src.open(rel) as fh:
            for chunk in Decryptor(fh, identities):
                digest.update(chunk)
    except (AgeError, OSError, ValueError) as exc:
        return f"does not decrypt with the identity given ({type(exc).__name__})"
    if plaintext_sha256 and digest.hexdigest() != plaintext_sha256:
        return "decrypts to something other than what was recorded (plaintext SHA-256 differs)"
    return ""


def verify_bundle(folder: str | os.PathLike[str], ca_pem: bytes | None = None,
                  identities: Sequence[Any] = ()) -> BundleReport:
    """Check the bundle at ``folder`` (its folder, or its zip read in place).
    ``identities``: age identities (the escrow's) to also decrypt every
    recording segment and still, authenticated, against their plaintext hashes."""
    report = BundleReport(str(folder))
    src = open_bundle(folder, report)
    if src is None:
        return report
    try:
        _verify(src, report, ca_pem, identities)
    finally:
        src.close()
    return report


def _verify(src: BundleFiles, report: BundleReport, ca_pem: bytes | None, identities: Sequence[Any]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    found = src.files
    try:
        manifest_bytes = src.read(MANIFEST)
        manifest = json.loads(manifest_bytes)
        files = {e["path"]: e for e in manifest["files"]}
    except FileNotFoundError:
        report.problems.append("manifest.json is missing: nothing else can be checked")
        return
    except (ValueError, KeyError, TypeError, OSError):
        report.problems.append("manifest.json is not a readable manifest (it was damaged or edited)")
        return

    # 1. the files
    expected = set(files) | {MANIFEST, SIGNATURE, SUMS}
    for rel in sorted(set(found) - expected):
        report.problems.append(f"{rel}: a file that is not in the manifest was added")
    for rel in sorted(expected - set(found)):
        report.problems.append(f"{rel}: listed in the manifest but missing (removed)")
    digests: dict[str, str] = {}
    for rel, entry in sorted(files.items()):
        if rel not in found:
            continue
        try:
            digest, size = _sha256_file(src, rel)
        except (OSError, ValueError) as exc:  # a zip member that does not read back (its CRC, say)
            report.problems.append(f"{rel}: unreadable ({exc})")
            continue
        digests[rel] = digest
        if digest != entry.get("sha256") or size != entry.get("size"):
            report.problems.append(f"{rel}: changed (its SHA-256 or size does not match the manifest)")
    report.checked["files"] = len(digests)
    for rel in (MANIFEST, SIGNATURE):
        if rel in found:
            try:
                digests[rel] = _sha256_file(src, rel)[0]
            except OSError as exc:
                report.problems.append(f"{rel}: unreadable ({exc})")
    try:
        sums = {}
        for line in src.read(SUMS).decode("ascii").splitlines():
            digest, _, rel = line.partition("  ")
            sums[rel] = digest
        if set(sums) != expected - {SUMS}:
            report.problems.append("SHA256SUMS does not list exactly the bundle's files")
        for rel, digest in sums.items():
            if rel in digests and digests[rel] != digest:
                report.problems.append(f"SHA256SUMS: the line for {rel} does not match the file")
    except (OSError, UnicodeError, ValueError):
        report.problems.append("SHA256SUMS is missing or unreadable")

    # 2. the manifest's signature, and the CA everything else is checked against
    if ca_pem is None:
        try:
            ca_pem = src.read("certs/force-ca.pem")
        except (OSError, ValueError):
            ca_pem = None
        report.notes.append("No CA was given: checked against the bundle's own copy of the force CA, so this "
                            "result is NOT anchored to a CA you trust (give --ca).")
    else:
        report.anchored = True
    try:
        ca = x509.load_pem_x509_certificate(ca_pem) if ca_pem else None
    except ValueError:
        ca = None
    if ca is None or ca_pem is None:
        report.problems.append("no usable force CA certificate to check signatures against")
        return
    report.notes.append(f"force CA: {ca.subject.rfc4514_string()}, SHA-256 fingerprint "
                        f"{ca.fingerprint(hashes.SHA256()).hex()}")
    try:
        cert, why = verify_cms(manifest_bytes, src.read(SIGNATURE), ca)
    except (OSError, ValueError):
        cert, why = None, "manifest.json.p7s is missing"
    if cert is None:
        report.problems.append(why)
    else:
        report.notes.append("manifest signed by " + cert.subject.rfc4514_string())

    # 3. signed PDFs
    from ..statement.verify import VerificationError, format_report, verify_statement

    pdfs = [rel for rel, e in files.items() if e.get("role") in ("statement", "vps", "rear-page") and rel in found]
    for rel in sorted(pdfs):
        try:
            pdf_report = verify_statement(src.read(rel, MAX_PDF), ca_pem.decode("ascii"))
        except (VerificationError, OSError, UnicodeError, ValueError) as exc:
            report.problems.append(f"{rel}: not a readable signed PDF ({exc})")
            continue
        if not pdf_report.ok:
            first = next((ln.strip() for ln in format_report(pdf_report).splitlines()
                          if "not" in ln.lower() or "fail" in ln.lower()), "its signature does not verify")
            report.problems.append(f"{rel}: its signature does not verify against the force CA ({first})")
    report.checked["signed PDFs"] = len(pdfs)

    # 4. recordings
    segments = 0
    for rec in manifest.get("recordings", []):
        for seg in rec.get("segments", []):
            segments += 1
            listed = files.get(seg.get("path", ""))
            if listed is None or listed.get("sha256") != seg.get("sha256"):
                report.problems.append(f"recording {rec.get('id')}: segment {seg.get('path')} is not the file the "
                                       "recording's manifest lists")
    report.checked["recording segments"] = segments
    if identities:
        decrypted = 0
        items = [(seg.get("path", ""), seg.get("plaintext_sha256"), seg.get("complete", True))
                 for rec in manifest.get("recordings", []) for seg in rec.get("segments", [])]
        items += [(ex.get("path", ""), ex.get("plaintext_sha256"), True) for ex in manifest.get("exhibits", [])]
        for rel, plain_hash, complete in items:
            if rel not in found:
                continue  # already named as missing
            if not complete:
                report.notes.append(f"{rel}: left unfinished by a crash (its recording says so); not decrypted")
                continue
            why = _decrypts_to(src, rel, identities, plain_hash)
            if why:
                report.problems.append(f"{rel}: {why}")
            decrypted += 1
        report.checked["files decrypted"] = decrypted

    # 5. the audit extract
    _verify_audit(src, manifest, ca, report)


def _verify_audit(src: BundleFiles, manifest: dict[str, Any], ca: Any, report: BundleReport) -> None:
    from ..audit.log import entry_hash
    from ..audit.merkle import verify_inclusion
    from ..audit.signed import check_signature

    section = manifest.get("audit")
    if not section:
        report.problems.append("the bundle has no audit extract")
        return
    try:
        checkpoint = json.loads(src.read(section["checkpoint"]))
        extract = json.loads(src.read(section["entries"], MAX_MANIFEST * 4))
    except (OSError, ValueError, KeyError, TypeError):
        report.problems.append("the audit extract is missing or unreadable")
        return
    cert, why = check_signature(checkpoint, ca) if isinstance(checkpoint, dict) else (None, "unreadable")
    if cert is None:
        report.problems.append(f"the audit checkpoint: {why} (it was recomputed or edited)")
        return
    size, root_hash = checkpoint["size"], bytes.fromhex(checkpoint["root"])
    count = 0
    for item in extract.get("entries", []):
        entry, proof = item.get("entry", {}), item.get("proof", [])
        seq = entry.get("seq")
        count += 1
        if not isinstance(entry, dict) or entry_hash(entry) != entry.get("hash"):
            report.problems.append(f"audit entry {seq}: edited (its hash does not match its contents)")
            continue
        try:
            ok = verify_inclusion(bytes.fromhex(entry["hash"]), int(seq) - 1, size,
                                  [base64.b64decode(p, validate=True) for p in proof], root_hash)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            report.problems.append(f"audit entry {seq}: not part of the signed audit log (its proof fails)")
    if count != extract.get("count", count):
        report.problems.append("the audit extract's entries were removed or added")
    report.checked["audit entries"] = count


def format_bundle_report(report: BundleReport) -> str:
    lines = [f"Evidence bundle: {report.folder}"]
    lines += [f"  {name}: {n} checked" for name, n in report.checked.items()]
    lines += [f"  note: {n}" for n in report.notes]
    if report.problems:
        lines.append(f"FAILED: {len(report.problems)} problem(s):")
        lines += [f"  - {p}" for p in report.problems]
    else:
        lines.append("Result: OK" + ("" if report.anchored else " (NOT anchored to a CA you gave)"))
    return "\n".join(lines)


def run_verify(folder: str, ca_path: str | None, as_json: bool, out: TextIO | None = None,
               identity_files: Sequence[str] = ()) -> int:
    """0: every check passed; 1: a problem found (each named); 2: the CA file could not be read."""
    out = out if out is not None else sys.stdout
    import logging

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    ca_pem = None
    if ca_path:
        try:
            ca_pem = Path(ca_path).read_bytes()
        except OSError as exc:
            print(f"evr-desktop: cannot read the CA file {ca_path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    identities: list[Any] = []
    if identity_files:
        from ..recording.cli import load_identities

        try:
            identities = list(load_identities(list(identity_files)))
        except (OSError, ValueError) as exc:
            print(f"evr-desktop: cannot read the identity file: {exc}", file=sys.stderr)
            return 2
    report = verify_bundle(folder, ca_pem, identities)
    print(json.dumps(report.as_json(), indent=1) if as_json else format_bundle_report(report), file=out)
    return 0 if report.ok else 1
