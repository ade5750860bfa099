"""Check the signatures on a signed statement PDF against the force CA.

For each signature: who signed (certificate subject CN and serialNumber, i.e.
the officer's name and collar number), whether the signed bytes are unchanged
(integrity), whether the certificate chains to the force CA given as the only
trust root (trust), when it was signed (the signer's own clock, and a TSA
timestamp if there is one), and how much of the file it covers. A statement
is ``ok`` only when it has at least one signature and every signature is
intact, cryptographically valid, trusted and covers the entire file: anything
appended after signing (an incremental update, even an innocent-looking one)
makes it not ok, and the report says what kind of change it appears to be.

Nothing is fetched from the network (no CRL, OCSP or AIA look-ups): the check
is against the force CA alone. A demo profile's statements are therefore
trusted only when that demo CA is passed in, which is the point.

pyHanko does the work; no Qt here.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypedDict

MAX_PDF_BYTES = 200 * 1024 * 1024  # a statement is well under 1 MiB; refuse absurd inputs

ENTIRE_FILE = "entire file"
ENTIRE_REVISION = "entire revision"
PARTIAL = "partial"


class VerificationError(Exception):
    """The check could not be run at all: unreadable PDF or unusable CA."""


@dataclass(frozen=True)
class SignatureReport:
    field_name: str
    signer: str  # subject common name
    signer_serial: str  # subject serialNumber (the officer's collar number), "" if absent
    certificate_serial: str  # the certificate's own serial number, hex
    issuer: str  # the issuing CA's full name
    intact: bool  # the signed bytes hash to what was signed
    valid: bool  # the cryptographic signature over that hash checks out
    trusted: bool  # the certificate chains to the trust root given
    signing_time: dt.datetime | None  # as reported by the signer's clock
    coverage: str  # ENTIRE_FILE, ENTIRE_REVISION or PARTIAL
    timestamp: dt.datetime | None = None  # from a TSA, if any
    timestamp_trusted: bool | None = None  # None when there is no timestamp
    trust_problem: str = ""
    modification: str = ""  # what was changed after signing, when coverage is not the entire file
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return (
            self.intact
            and self.valid
            and self.trusted
            and self.coverage == ENTIRE_FILE
            and self.timestamp_trusted is not False
            and not self.problems
        )


@dataclass(frozen=True)
class VerificationReport:
    signatures: tuple[SignatureReport, ...]
    trust_root: str  # subject of the CA the signatures were checked against

    @property
    def ok(self) -> bool:
        return bool(self.signatures) and all(s.ok for s in self.signatures)


def verify_statement(
    pdf: bytes, force_ca_pem: str | bytes, *, tsa_ca_pem: Sequence[str | bytes] = ()
) -> VerificationReport:
    """Validate every signature in ``pdf`` with ``force_ca_pem`` as the only trust root.

    ``tsa_ca_pem``: extra roots trusted for timestamps only (a public TSA's CA);
    the force CA is trusted for timestamps as well. Raises ``VerificationError``
    when the PDF cannot be read or the CA is not a CA certificate.
    """
    ca = _load_ca(force_ca_pem, "The force CA")
    tsa_roots = [_load_ca(p, f"TSA CA {i}") for i, p in enumerate(tsa_ca_pem, start=1)]
    if not isinstance(pdf, (bytes, bytearray)) or b"%PDF-" not in pdf[:1024]:
        raise VerificationError("The file is not a PDF.")

    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(bytes(pdf)), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise VerificationError(f"The PDF is damaged or incomplete and cannot be read ({exc}).") from exc

    # The officer's certificate carries non-repudiation; a force-issued one
    # with only digitalSignature is accepted too (as Acrobat and EU DSS do).
    key_usage = KeyUsageConstraints(
        key_usage={"non_repudiation", "digital_signature"}, match_all_key_usages=False
    )
    reports = []
    for sig in embedded:
        signer_vc = ValidationContext(trust_roots=[ca], allow_fetching=False)
        ts_vc = ValidationContext(trust_roots=[ca, *tsa_roots], allow_fetching=False)
        reports.append(_check_one(sig, signer_vc, ts_vc, key_usage))
    return VerificationReport(signatures=tuple(reports), trust_root=ca.subject.human_friendly)


def _check_one(sig, signer_vc, ts_vc, key_usage) -> SignatureReport:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    name = str(sig.field_name or "(unnamed)")
    try:
        cert = sig.signer_cert
    except Exception as exc:  # noqa: BLE001 - a broken CMS blob: report it, do not crash
        return _broken(name, f"The signature data cannot be read ({exc}).")
    try:
        status = validate_pdf_signature(
            sig, signer_vc, ts_validation_context=ts_vc, key_usage_settings=key_usage
        )
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds on malformed input
        return _broken(name, f"The signature could not be checked ({exc}).", cert)

    levels: dict[SignatureCoverageLevel | None, str] = {
        SignatureCoverageLevel.ENTIRE_FILE: ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION: ENTIRE_REVISION,
    }
    coverage = levels.get(status.coverage, PARTIAL)
    modification = ""
    if coverage != ENTIRE_FILE:
        modification = _describe_modification(status)

    ts = status.timestamp_validity
    problems = []
    if status.seed_value_constraint_error is not None:
        problems.append(
            f"The signature breaks its field's constraints ({status.seed_value_constraint_error})."
        )
    return SignatureReport(
        field_name=name,
        **_identity(cert),
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=_chain_trusted(status),
        trust_problem=_trust_problem(status),
        signing_time=status.signer_reported_dt,
        coverage=coverage,
        modification=modification,
        timestamp=ts.timestamp if ts is not None else None,
        timestamp_trusted=(bool(ts.intact and ts.valid and ts.trusted) if ts is not None else None),
        problems=tuple(problems),
    )


def _broken(name: str, problem: str, cert=None) -> SignatureReport:
    ident: _Identity = _identity(cert) if cert is not None else {
        "signer": "(unknown)", "signer_serial": "", "certificate_serial": "", "issuer": "(unknown)",
    }
    return SignatureReport(
        field_name=name, intact=False, valid=False, trusted=False, signing_time=None,
        coverage=PARTIAL, problems=(problem,), **ident,
    )


class _Identity(TypedDict):
    signer: str
    signer_serial: str
    certificate_serial: str
    issuer: str


def _identity(cert) -> _Identity:
    subject = cert.subject.native
    return {
        "signer": str(subject.get("common_name", "")) or cert.subject.human_friendly,
        "signer_serial": str(subject.get("serial_number", "")),
        "certificate_serial": format(cert.serial_number, "x"),
        "issuer": cert.issuer.human_friendly,
    }


def _chain_trusted(status) -> bool:
    """The certificate chains to the trust root, judged apart from integrity
    (pyHanko's ``trusted`` is also False whenever the content was changed,
    which would misreport a tampered file as a certificate problem)."""
    return (
        bool(status.valid)
        and status.trust_problem_indic is None
        and status.validation_path is not None
        and not status.revoked
    )


def _trust_problem(status) -> str:
    if _chain_trusted(status):
        return ""
    if not status.valid:
        return "not checked: the signature itself does not verify"
    if status.revoked:
        return "the certificate has been revoked"
    indic = status.trust_problem_indic
    name = getattr(indic, "name", "")
    return {
        "NO_CERTIFICATE_CHAIN_FOUND": "the certificate was not issued by the trusted CA",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the certificate was not issued by the trusted CA",
        "EXPIRED": "the certificate (or a CA above it) has expired",
        "NOT_YET_VALID": "the certificate is not valid yet",
        "SIG_CONSTRAINTS_FAILURE": "the certificate is not meant for signing documents (key usage)",
        "CHAIN_CONSTRAINTS_FAILURE": "the certificate chain breaks its constraints",
        "CRYPTO_CONSTRAINTS_FAILURE": "the signature uses an algorithm that is no longer accepted",
    }.get(name, f"the certificate is not trusted ({name or 'no path to the trusted CA'})")


def _describe_modification(status) -> str:
    from pyhanko.sign.diff_analysis import ModificationLevel

    level = status.modification_level
    if level is None:
        return "the file was extended after signing (not analysed)"
    return {
        ModificationLevel.NONE: "the file was extended after signing, with no visible change",
        ModificationLevel.LTA_UPDATES: (
            "the file was extended after signing with validation data or timestamps"
        ),
        ModificationLevel.FORM_FILLING: (
            "the file was extended after signing with form fields or further signatures"
        ),
        ModificationLevel.ANNOTATIONS: "the file was extended after signing with annotations",
    }.get(level, "the file was changed after signing in ways not recognised as harmless "
              "(possibly the statement's content)")


def _load_ca(data: str | bytes, what: str):
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization

    from ..vault.pki import CertificateError, load_ca_certificate

    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    try:
        cert = load_ca_certificate(raw)
    except CertificateError as exc:
        raise VerificationError(str(exc).replace("The force CA file", f"{what} file")) from exc
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


# --- the report as text ---------------------------------------------------------


def _when(t: dt.datetime | None) -> str:
    if t is None:
        return "not recorded"
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


BROKEN = "BROKEN - the signed content has changed or the signature is damaged"


def format_report(report: VerificationReport) -> str:
    lines = [f"Trust root: {report.trust_root}"]
    if not report.signatures:
        lines.append("No signatures: the statement is not signed.")
    for i, s in enumerate(report.signatures, start=1):
        who = s.signer + (f" ({s.signer_serial})" if s.signer_serial else "")
        lines += [
            f"Signature {i} ({s.field_name}): {'OK' if s.ok else 'NOT OK'}",
            f"  Signer:        {who}",
            f"  Certificate:   serial {s.certificate_serial}, issued by {s.issuer}",
            f"  Trusted:       {_yes(s.trusted)}" + (f" - {s.trust_problem}" if s.trust_problem else ""),
            f"  Integrity:     {'intact' if s.intact and s.valid else BROKEN}",
            f"  Signed at:     {_when(s.signing_time)} (signer's clock)",
        ]
        if s.timestamp is not None:
            trust = "trusted" if s.timestamp_trusted else "NOT trusted"
            lines.append(f"  Timestamp:     {_when(s.timestamp)} (TSA, {trust})")
        else:
            lines.append("  Timestamp:     none")
        cov = {
            ENTIRE_FILE: "entire file",
            ENTIRE_REVISION: "entire revision only - NOT the whole file",
            PARTIAL: "PARTIAL - not the whole revision",
        }[s.coverage]
        lines.append(f"  Covers:        {cov}")
        if s.modification:
            lines.append(f"                 {s.modification}")
        lines += [f"  Problem:       {p}" for p in s.problems]
    lines.append(f"Result: {'OK' if report.ok else 'NOT OK'}")
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------


def run_verify(
    pdf_path: Path,
    *,
    ca_path: Path | None = None,
    ca_pem: bytes | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`evr-desktop statement verify`: 0 ok, 1 not ok, 2 unreadable input or no CA.
    The CA is ``ca_path`` (``--ca``) or ``ca_pem`` (from a vault the caller
    authenticated with its passphrase), never a profile's unauthenticated header."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    import logging

    # pyHanko logs its own view of problems we already report in words.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    try:
        ca = ca_pem if ca_pem is not None else _read_ca(ca_path)
        data = _read_pdf(Path(pdf_path))
        report = verify_statement(data, ca)
    except VerificationError as exc:
        print(f"evr-desktop: {exc}", file=err)
        return 2
    print(format_report(report), file=out)
    return 0 if report.ok else 1


def _read_pdf(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_PDF_BYTES:
            raise VerificationError(f"{path} is far larger than any statement; not checked.")
        return path.read_bytes()
    except OSError as exc:
        raise VerificationError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def _read_ca(ca_path: Path | None) -> bytes:
    if ca_path is None:
        raise VerificationError("No CA to check against: pass --ca CA.pem, or the profile's passphrase "
                                "(--passphrase-fd N) to trust its force CA.")
    try:
        return Path(ca_path).read_bytes()
    except OSError as exc:
        raise VerificationError(f"Cannot read the CA file {ca_path}: {exc.strerror or exc}.") from exc
