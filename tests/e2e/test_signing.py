"""Signing a statement, and checking it with our verifier and with poppler's pdfsig.

pdfsig (poppler-utils) and certutil (libnss3-tools) are independent of pyHanko:
they are what a prosecutor's or defence expert's tooling would see. The tests
fail, not skip, when they are missing (./dev test installs them).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from evr_desktop.__main__ import main
from evr_desktop.domain.officer import OfficerIdentity
from evr_desktop.statement.signing import SigningError, sign_statement, sign_with_vault
from evr_desktop.statement.verify import (
    ENTIRE_FILE,
    ENTIRE_REVISION,
    VerificationError,
    format_report,
    verify_statement,
)
from evr_desktop.vault import pki
from tests.conftest import fast_kdf
from tests.e2e.conftest import REPO, require

# Invented officers; the CA names say DEMO.
OFFICER = OfficerIdentity("PC Aoife Ní Bhriain", "AB 4721", "Examplecester Constabulary", "Northgate")
ROGUE = OfficerIdentity("PC Rowan Elsewhere", "ZZ 0001", "Nowhere Police", "Nowhere")
PAGES = 10
MARKER = b"Page 5 line 12: "


# -- fixtures ------------------------------------------------------------------


def statement_pdf() -> bytes:
    """A 10-page A4 statement-like PDF, content streams uncompressed so the
    tamper test can find a word of the statement in the bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, pageCompression=0)
    for p in range(1, PAGES + 1):
        c.setFont("Helvetica", 10)
        for i in range(1, 46):
            c.drawString(72, 780 - i * 15, f"Page {p} line {i}: I saw the man walk towards the car at about ten.")
        c.showPage()
    c.save()
    return buf.getvalue()


class Identity:
    def __init__(self, ca_key, ca_cert, officer: OfficerIdentity, key) -> None:
        self.ca_cert = ca_cert
        self.ca_pem = pki.cert_pem(ca_cert)
        self.cert = pki.issue_officer_certificate(ca_key, ca_cert, officer, key)
        self.key_pem = pki.key_pem(key)
        self.cert_pem = pki.cert_pem(self.cert)
        self.officer = officer

    def sign(self, pdf: bytes, **kwargs) -> bytes:
        return sign_statement(
            pdf,
            signing_key_pem=self.key_pem,
            certificate_pem=self.cert_pem,
            chain_pem=[self.ca_pem],
            signer_name=self.officer.display,
            location=self.officer.station,
            **kwargs,
        )


@pytest.fixture(scope="module")
def force_ca():
    return pki.make_demo_ca(OFFICER.force)


@pytest.fixture(scope="module")
def ec_officer(force_ca) -> Identity:
    return Identity(*force_ca, OFFICER, ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_officer(force_ca) -> Identity:
    return Identity(*force_ca, OFFICER, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def rogue_officer() -> Identity:
    """Same officer details, certificate from a CA that is not the force's."""
    return Identity(*pki.make_demo_ca(ROGUE.force), OFFICER, ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return statement_pdf()


@pytest.fixture(scope="module")
def signed(ec_officer, unsigned) -> bytes:
    return ec_officer.sign(unsigned)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("signing")


@pytest.fixture(scope="module")
def ca_file(work, ec_officer) -> Path:
    path = work / "force-ca.pem"
    path.write_text(ec_officer.ca_pem)
    return path


@pytest.fixture(scope="module")
def nssdb(work, ca_file) -> str:
    """An NSS database trusting the force CA, as a validator's machine would."""
    certutil = require("certutil")
    folder = work / "nss"
    folder.mkdir()
    run([certutil, "-N", "-d", f"sql:{folder}", "--empty-password"])
    run([certutil, "-A", "-d", f"sql:{folder}", "-n", "ca", "-t", "CT,C,C", "-i", str(ca_file)])
    return f"sql:{folder}"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    assert res.returncode == 0, f"{cmd[0]} failed: {res.stderr}"
    return res


def pdfsig(path: Path, nssdir: str | None = None) -> str:
    tool = require("pdfsig")
    cmd = [tool] + (["-nssdir", nssdir] if nssdir else []) + [str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return res.stdout + res.stderr


def lines(text: str) -> set[str]:
    return {ln.strip().lstrip("- ").strip() for ln in text.splitlines()}


def write(work: Path, name: str, data: bytes) -> Path:
    path = work / name
    path.write_bytes(data)
    return path


def cli(*args: str, capsys) -> tuple[int, str, str]:
    rc = main(["statement", "verify", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def byte_range(pdf: bytes) -> list[int]:
    m = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert len(m) == 1
    return [int(v) for v in m[0]]


# -- a signed statement --------------------------------------------------------


def test_signed_statement_is_valid_trusted_and_covers_the_whole_file(work, signed, ca_file, nssdb, capsys):
    path = write(work, "signed.pdf", signed)

    plain = lines(pdfsig(path))
    assert "Signature Validation: Signature is Valid." in plain
    assert "Total document signed" in plain
    assert "Signature Type: ETSI.CAdES.detached" in plain
    assert "Signing Hash Algorithm: SHA-256" in plain
    assert f"Signer Certificate Common Name: {OFFICER.name}" in plain
    trusted = lines(pdfsig(path, nssdb))
    assert "Certificate Validation: Certificate is Trusted." in trusted
    assert "Signature Validation: Signature is Valid." in trusted

    report = verify_statement(signed, ca_file.read_text())
    assert report.ok, format_report(report)
    (sig,) = report.signatures
    assert (sig.signer, sig.signer_serial) == (OFFICER.name, OFFICER.collar)
    assert sig.intact and sig.valid and sig.trusted and sig.coverage == ENTIRE_FILE
    assert sig.timestamp is None and sig.timestamp_trusted is None
    assert abs(sig.signing_time - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    text = format_report(report)
    assert f"{OFFICER.name} ({OFFICER.collar})" in text and "entire file" in text
    assert text.splitlines()[-1] == "Result: OK"

    rc, out, _ = cli(str(path), "--ca", str(ca_file), capsys=capsys)
    assert rc == 0 and "Result: OK" in out


def test_the_signature_is_visible_on_the_last_page_and_embeds_the_chain(signed, ec_officer):
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(signed))
    (sig,) = reader.embedded_signatures
    assert sig.field_name == "OfficerSignature"
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert "/M" in sig.sig_object  # the signing time
    assert str(sig.sig_object["/Reason"]).startswith("Witness statement")
    ca_der = pki.cert_pem(ec_officer.ca_cert)
    assert [c.subject.human_friendly for c in sig.other_embedded_certs] == [
        c.subject.human_friendly for c in [_asn1(ca_der)]
    ]  # the force CA travels with the signature
    # The widget sits on the last page, with a real box and an appearance.
    pages = list(_pages(reader))
    assert len(pages) == PAGES
    widgets = [a.get_object() for a in pages[-1].get("/Annots", [])]
    (widget,) = [w for w in widgets if w.get("/FT") == "/Sig" or "/Parent" in w or w.get("/T")]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert x2 - x1 > 150 and y2 - y1 > 30 and x1 > 595 / 2 and y2 < 100  # bottom right of A4
    assert "/N" in widget["/AP"]
    assert not any(p.get("/Annots") for p in pages[:-1])


def _asn1(pem: str):
    from pyhanko.keys import load_certs_from_pemder_data

    (cert,) = load_certs_from_pemder_data(pem.encode("ascii"))
    return cert


def _pages(reader):
    count = int(reader.root["/Pages"]["/Count"])
    for i in range(count):
        yield reader.find_page_for_modification(i)[0].get_object()


def test_page_and_box_can_be_chosen(ec_officer, unsigned):
    from pyhanko.pdf_utils.reader import PdfFileReader

    out = ec_officer.sign(unsigned, page=7, box=(72, 72, 300, 140))
    reader = PdfFileReader(io.BytesIO(out))
    pages = list(_pages(reader))
    assert [i for i, p in enumerate(pages) if p.get("/Annots")] == [7]
    (widget,) = [a.get_object() for a in pages[7]["/Annots"]]
    assert [float(v) for v in widget["/Rect"]] == [72, 72, 300, 140]


def test_rsa_officer_key_signs_as_well(work, rsa_officer, unsigned, ca_file, nssdb, capsys):
    signed = rsa_officer.sign(unsigned)
    path = write(work, "signed-rsa.pdf", signed)
    out = lines(pdfsig(path, nssdb))
    assert {"Signature Validation: Signature is Valid.", "Total document signed",
            "Certificate Validation: Certificate is Trusted."} <= out
    report = verify_statement(signed, rsa_officer.ca_pem)
    assert report.ok, format_report(report)
    assert cli(str(path), "--ca", str(ca_file), capsys=capsys)[0] == 0


# -- tampering -----------------------------------------------------------------


def test_one_byte_changed_in_the_statement_text_breaks_the_signature(work, signed, ca_file, nssdb, capsys):
    pos = signed.index(MARKER)
    start, len1, start2, _len2 = byte_range(signed)
    assert start <= pos < start + len1  # inside the signed range, before the signature's hex
    tampered = bytearray(signed)
    tampered[pos + len("Page 5 line 12: I saw the ")] ^= 0x20  # "man" -> "Man"
    assert b"I saw the Man walk" in tampered[pos:pos + 60]
    path = write(work, "tampered.pdf", bytes(tampered))

    out = pdfsig(path, nssdb)
    assert "Signature is Valid" not in out
    assert "Signature Validation: Digest Mismatch." in lines(out)

    report = verify_statement(bytes(tampered), ca_file.read_text())
    assert not report.ok
    (sig,) = report.signatures
    assert not sig.intact
    assert sig.trusted  # the certificate is still the force's: the content is what changed
    assert "BROKEN" in format_report(report)
    rc, text, _ = cli(str(path), "--ca", str(ca_file), capsys=capsys)
    assert rc == 1 and "Result: NOT OK" in text


def append_annotation(pdf: bytes) -> bytes:
    """An incremental update after signing: a sticky note on page 1."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = w.find_page_for_modification(0)[0]
    page = page_ref.get_object()
    note = w.add_object(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
                generic.pdf_name("/Subtype"): generic.pdf_name("/Text"),
                generic.pdf_name("/Rect"): generic.ArrayObject(map(generic.FloatObject, (500, 780, 520, 800))),
                generic.pdf_name("/Contents"): generic.TextStringObject("Added after signing"),
                generic.pdf_name("/P"): page_ref,
            }
        )
    )
    annots = page.get("/Annots", generic.ArrayObject())
    annots.append(note)
    page[generic.pdf_name("/Annots")] = annots
    w.update_container(page)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_an_update_appended_after_signing_is_reported(work, signed, ca_file, nssdb, capsys):
    updated = append_annotation(signed)
    assert updated.startswith(signed) and len(updated) > len(signed)
    path = write(work, "appended.pdf", updated)

    out = lines(pdfsig(path, nssdb))
    assert "Signature Validation: Signature is Valid." in out  # the signed revision itself is intact
    assert "Total document signed" not in out
    assert "Not total document signed" in out

    report = verify_statement(updated, ca_file.read_text())
    assert not report.ok
    (sig,) = report.signatures
    assert sig.intact and sig.trusted
    assert sig.coverage == ENTIRE_REVISION
    assert "after signing" in sig.modification
    assert "NOT the whole file" in format_report(report)
    rc, text, _ = cli(str(path), "--ca", str(ca_file), capsys=capsys)
    assert rc == 1 and "Result: NOT OK" in text


def test_a_certificate_from_another_ca_is_not_trusted(work, rogue_officer, unsigned, ca_file, nssdb, capsys):
    signed = rogue_officer.sign(unsigned)
    path = write(work, "rogue.pdf", signed)
    out = lines(pdfsig(path, nssdb))
    assert "Signature Validation: Signature is Valid." in out
    assert "Certificate Validation: Certificate is Trusted." not in out

    report = verify_statement(signed, ca_file.read_text())
    assert not report.ok
    (sig,) = report.signatures
    assert sig.intact and not sig.trusted
    assert "not issued by the trusted CA" in sig.trust_problem
    assert "Nowhere Police" in sig.issuer  # same CA common name, told apart by the full name
    assert "Trusted:       NO" in format_report(report)
    rc, text, _ = cli(str(path), "--ca", str(ca_file), capsys=capsys)
    assert rc == 1 and "not issued by the trusted CA" in text
    # Against its own CA it is fine: trust comes from the root given, nothing else.
    assert verify_statement(signed, rogue_officer.ca_pem).ok


def test_an_unsigned_pdf_is_not_ok(work, unsigned, ca_file, capsys):
    report = verify_statement(unsigned, ca_file.read_text())
    assert not report.ok and report.signatures == ()
    rc, text, _ = cli(str(write(work, "unsigned.pdf", unsigned)), "--ca", str(ca_file), capsys=capsys)
    assert rc == 1 and "not signed" in text


# -- timestamps ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tsa_url(force_ca):
    """A local RFC 3161 TSA (pyHanko's test timestamper, RSA only) with a
    certificate from the force CA, served over HTTP on 127.0.0.1."""
    from asn1crypto import tsp
    from pyhanko.keys import internal
    from pyhanko.sign.timestamps import DummyTimeStamper

    ca_key, ca_cert = force_ca
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EVR DEMO test TSA")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    stamper = DummyTimeStamper(
        tsa_cert=internal.translate_pyca_cryptography_cert_to_asn1(cert),
        tsa_key=internal.translate_pyca_cryptography_key_to_asn1(key),
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()
    server.server_close()


def test_a_tsa_timestamp_is_embedded_and_checked(work, ec_officer, unsigned, tsa_url, nssdb):
    signed = ec_officer.sign(unsigned, timestamp_url=tsa_url)
    out = lines(pdfsig(write(work, "timestamped.pdf", signed), nssdb))
    assert {"Signature Validation: Signature is Valid.", "Total document signed"} <= out
    report = verify_statement(signed, ec_officer.ca_pem)
    assert report.ok, format_report(report)
    (sig,) = report.signatures
    assert sig.timestamp is not None and sig.timestamp_trusted
    assert abs(sig.timestamp - sig.signing_time) < dt.timedelta(minutes=1)
    assert "(TSA, trusted)" in format_report(report)


def test_an_unreachable_tsa_means_no_signature(ec_officer, unsigned):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SigningError, match="timestamp server"):
        ec_officer.sign(unsigned, timestamp_url=f"http://127.0.0.1:{port}/tsa")


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda pdf: b"This is a text file, not a statement.\n", "not a PDF"),
        (lambda pdf: pdf[: len(pdf) // 2], "damaged or incomplete"),
        (lambda pdf: pdf[:-40], "damaged or incomplete"),
    ],
    ids=["not-a-pdf", "truncated-half", "truncated-end"],
)
def test_signing_bad_pdf_input_raises_a_plain_signing_error(ec_officer, unsigned, make, message):
    with pytest.raises(SigningError, match=message):
        ec_officer.sign(make(unsigned))


def test_signing_with_the_wrong_key_or_bad_pem_raises_signing_error(ec_officer, rsa_officer, unsigned):
    kw = dict(certificate_pem=ec_officer.cert_pem, chain_pem=[ec_officer.ca_pem], signer_name="PC X (1)")
    with pytest.raises(SigningError, match="does not belong to the officer's certificate"):
        sign_statement(unsigned, signing_key_pem=rsa_officer.key_pem, **kw)
    other = pki.key_pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SigningError, match="does not belong"):
        sign_statement(unsigned, signing_key_pem=other, **kw)
    with pytest.raises(SigningError, match="not a readable unencrypted PEM private key"):
        sign_statement(unsigned, signing_key_pem="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", **kw)
    with pytest.raises(SigningError, match="not a readable PEM certificate"):
        sign_statement(unsigned, signing_key_pem=ec_officer.key_pem, **{**kw, "certificate_pem": "garbage"})
    with pytest.raises(SigningError, match="no page 10"):
        sign_statement(unsigned, signing_key_pem=ec_officer.key_pem, page=10, **kw)


def test_cli_bad_input_exits_2_with_a_clear_message(work, signed, ca_file, capsys):
    cases = [
        (write(work, "notes.txt.pdf", b"just some notes\n"), ["--ca", str(ca_file)], "not a PDF"),
        (write(work, "truncated.pdf", signed[: len(signed) // 2]), ["--ca", str(ca_file)], "damaged or incomplete"),
        (work / "missing.pdf", ["--ca", str(ca_file)], "Cannot read"),
        (write(work, "ok.pdf", signed), ["--ca", str(work / "ok.pdf")], "not a certificate"),
        (write(work, "ok2.pdf", signed), ["--profile", str(work / "no-profile")], "no CA to check against"),
    ]
    for path, extra, message in cases:
        rc, out, err = cli(str(path), *extra, capsys=capsys)
        assert rc == 2, (path, out, err)
        assert message in err and "Traceback" not in err and out == ""
    with pytest.raises(VerificationError):
        verify_statement(b"%PDF-1.7\n", ca_file.read_text())


def test_cli_process_exit_codes_and_no_traceback(work, signed, ca_file):
    """The real entry point in a fresh process: output and exit codes only."""
    good = write(work, "cli-good.pdf", signed)
    bad = write(work, "cli-bad.pdf", signed[:1000])
    cmd = [sys.executable, "-m", "evr_desktop", "statement", "verify"]
    res = subprocess.run([*cmd, str(good), "--ca", str(ca_file)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0 and res.stdout.rstrip().endswith("Result: OK"), res.stderr
    assert res.stderr == ""
    res = subprocess.run([*cmd, str(bad), "--ca", str(ca_file)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 2 and "damaged or incomplete" in res.stderr and "Traceback" not in res.stderr


# -- with the vault ------------------------------------------------------------


def test_signing_with_the_demo_vault_and_verifying_against_its_profile(tmp_path, unsigned, capsys):
    from evr_desktop.vault import vault

    profile = tmp_path / "profile"
    officer = OfficerIdentity("PC Imogen Testwright", "TW 9001", "Testshire Police", "Testford")
    unlocked = vault.create(
        profile, officer, "correct horse battery staple 42",
        evidence_office=tmp_path / "evidence-office", kdf_params=fast_kdf(),
    )
    signed = sign_with_vault(unsigned, unlocked, location="Testford")
    report = verify_statement(signed, vault.read_header(profile).force_ca_pem)
    assert report.ok, format_report(report)
    assert report.signatures[0].signer_serial == "TW 9001"
    path = write(tmp_path, "statement.pdf", signed)
    # The profile's force CA is trusted only once its passphrase authenticates the vault:
    # without it (no --ca, no terminal to ask on) nothing is checked.
    rc, out, err = cli(str(path), "--profile", str(profile), capsys=capsys)
    assert rc == 2 and "--passphrase-fd" in err and out == ""
    for passphrase, expected in (("wrong horse battery staple 42", 2), ("correct horse battery staple 42", 0)):
        r, w = os.pipe()
        os.write(w, passphrase.encode() + b"\n")
        os.close(w)
        rc = main(["--passphrase-fd", str(r), "statement", "verify", str(path), "--profile", str(profile)])
        out, err = capsys.readouterr()
        assert rc == expected, err
    assert "DEMO Force CA" in out
