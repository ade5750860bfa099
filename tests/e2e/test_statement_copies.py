"""The signed statement in hand: the restricted rear page never travels inside
the statement PDF, it is signed and verifies on its own, and either can be
saved where the officer chooses (atomically, audited as a disclosure).

Through the real session (demo vault and CA, store, audit log, renderer,
pyHanko), read back with poppler's pdftotext and pdfsig.
"""

from __future__ import annotations

import stat
import subprocess
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from evr_desktop.__main__ import main
from evr_desktop.domain.audit import Category
from evr_desktop.domain.statement import FieldType
from evr_desktop.domain.statement_doc import SignatureKind, StatementContent, WitnessSignature
from evr_desktop.services import Refused
from evr_desktop.statement.service import PdfCopyExists, RearPageInside
from evr_desktop.statement.verify import format_report, verify_statement
from tests.e2e.conftest import require
from tests.e2e.test_statement_pdf import signature_png, squash

WITNESS = "Perpetua QUILLFEATHER"


def distinctive(field_id: str) -> str:
    """An invented value no statement would otherwise contain."""
    if field_id == "postcode":
        return "ZQ9 9XV"  # a postcode has at most 10 characters
    return f"Zq{field_id.replace('_', '')}Xv"


def rear_values(templates) -> tuple[dict[str, object], list[str]]:
    """Every rear-page field filled; and the texts the rear page must show."""
    fields: dict[str, object] = {}
    shown: list[str] = []
    for f in templates.mg11.restricted_fields:
        if f.type in (FieldType.TEXT, FieldType.MULTILINE):
            fields[f.id] = distinctive(f.id)
            shown.append(distinctive(f.id))
        elif f.type is FieldType.DATE:
            fields[f.id] = "1911-02-03"
            shown.append("3 February 1911")
        elif f.type is FieldType.DATETIME:
            fields[f.id] = "1912-03-04T05:06"
            shown.append("05:06 on 4 March 1912")
        elif f.type is FieldType.CHOICE:
            fields[f.id] = f.choices[-1]
        elif f.type is FieldType.BOOLEAN:
            fields[f.id] = True
        else:
            fields[f.id] = "yes"
    return fields, shown


def complete(session, statement_id: str) -> StatementContent:
    service = session.statements
    templates = service.templates()
    rear, _ = rear_values(templates)
    fields = {
        "classification": "OFFICIAL-SENSITIVE", "urn": "01TS7654321", "statement_of": WITNESS, "age": "Over 18",
        "occupation": "Glassblower",
        "visually_recorded": "yes", **rear,
    }
    ticked = {p.key for p in templates.victims_code.prompts if p.required_for_signing}
    return StatementContent(fields=fields, narrative="I was walking home when it happened.",
                            ticked_prompts=frozenset(ticked))


def witness_signature() -> WitnessSignature:
    return WitnessSignature(SignatureKind.DRAWN, signature_png(), datetime.now().astimezone())


@pytest.fixture
def signed(session):
    service = session.statements
    opened = service.open_standalone()
    content = complete(session, opened.id)
    preview = service.signing_preview(content)
    result = service.sign(opened.id, content, witness_signature(), declared_pages=preview.pages)
    return service, result


@pytest.fixture
def out(tmp_path) -> Path:
    """Where the officer saves copies (the profile is elsewhere in tmp_path)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def pdftotext(path: Path) -> str:
    return subprocess.run([require("pdftotext"), "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def nssdb(folder: Path, ca_pem: str) -> str:
    """An NSS database trusting the force CA, as a validator's machine would."""
    certutil = require("certutil")
    (folder / "ca.pem").write_text(ca_pem)
    db = folder / "nss"
    db.mkdir()
    subprocess.run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{db}", "-n", "ca", "-t", "CT,C,C", "-i", str(folder / "ca.pem")],
                   check=True, capture_output=True)
    return f"sql:{db}"


def pdfsig(path: Path, db: str) -> set[str]:
    res = subprocess.run([require("pdfsig"), "-nssdir", db, str(path)], check=False,
                         capture_output=True, text=True, timeout=60)
    return {ln.strip().lstrip("- ").strip() for ln in (res.stdout + res.stderr).splitlines()}


def disclosures(session, statement_id: str) -> list[str]:
    return [e.action for e in session.audit.entries()
            if e.object_id == statement_id and e.category is Category.DISCLOSURE]


# -- the rear page is not in the statement ----------------------------------------------------


def test_the_statement_pdf_holds_no_rear_page_text_and_the_rear_page_verifies_alone(
    signed, session, tmp_path, capsys
):
    service, opened = signed
    templates = service.templates()
    _, shown = rear_values(templates)
    statement = service.save_pdf_copy(opened.id, tmp_path / "statement.pdf")
    rear = service.save_pdf_copy(opened.id, tmp_path / "rear.pdf", rear_page=True)

    in_statement = squash(pdftotext(statement))
    in_rear = squash(pdftotext(rear))
    assert squash("I was walking home") in in_statement and "RESTRICTED" not in in_statement
    for value in shown:
        assert squash(value) in in_rear, value  # the values are really drawn ...
        assert squash(value) not in in_statement, value  # ... but only on the rear page
    for f in templates.mg11.restricted_fields:
        assert squash(f.label) in in_rear, f.label
        if len(f.label) > 8:  # "Number", "Station", "Mobile" are words the statement may use
            assert squash(f.label) not in in_statement, f.label
    assert squash(WITNESS) in in_rear and "01TS7654321" in in_rear  # matched to its statement
    assert "consisting of 1 page(s)" in pdftotext(statement)  # statement pages only

    # Each verifies on its own, with the project's verifier ...
    ca = session.vault.header.force_ca_pem
    for path in (statement, rear):
        report = verify_statement(path.read_bytes(), ca)
        assert report.ok, format_report(report)
        assert report.signatures[0].signer_serial == session.officer.collar
    assert opened.signed.valid and opened.rear_page.valid
    (tmp_path / "ca.pem").write_text(ca)
    rc = main(["statement", "verify", str(rear), "--ca", str(tmp_path / "ca.pem")])
    out = capsys.readouterr().out
    assert rc == 0 and out.rstrip().endswith("Result: OK"), out
    # ... and with poppler's pdfsig against the force CA in an NSS database.
    db = nssdb(tmp_path, ca)
    for path in (statement, rear):
        lines = pdfsig(path, db)
        assert {"Signature Validation: Signature is Valid.", "Total document signed",
                "Certificate Validation: Certificate is Trusted."} <= lines, (path.name, lines)


def test_reopening_a_signed_statement_verifies_both(signed, session):
    service, opened = signed
    again = service.open(opened.id)
    assert again.signed.valid and again.rear_page is not None and again.rear_page.valid
    assert again.rear_page.version == again.signed.version


# -- saving a copy --------------------------------------------------------------------------


def test_a_saved_copy_is_the_signed_pdf_written_owner_only_and_audited_as_a_disclosure(signed, session, out):
    service, opened = signed
    before = len(session.audit.entries())
    path = service.save_pdf_copy(opened.id, out / "MG11 copy.PDF")
    assert path == out / "MG11 copy.PDF"
    assert path.read_bytes() == service.repo.signed(opened.id)[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["MG11 copy.PDF"]  # no temp file left
    rear = service.save_pdf_copy(opened.id, out / "rear.pdf", rear_page=True)
    assert rear.read_bytes() == service.repo.signed_rear_page(opened.id)[1]
    assert disclosures(session, opened.id) == ["statement.save_pdf", "statement.save_rear_page_pdf"]
    new = session.audit.entries()[before:]
    assert [e.action for e in new] == ["statement.save_pdf", "statement.save_rear_page_pdf"]
    for entry in new:  # by statement id; never the witness, never the file name
        assert entry.object_id == opened.id
        assert "QUILLFEATHER" not in repr(entry) and "copy" not in repr(entry)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "statement.txt", "must end in .pdf"),
    (lambda d: d / "statement", "must end in .pdf"),
    (lambda d: d / "a-folder.pdf", "is a folder"),
    (lambda d: d / "missing" / "statement.pdf", "does not exist"),
    (lambda d: d / "link.pdf", "not an ordinary file"),
], ids=["txt", "no-suffix", "folder", "missing-folder", "symlink"])
def test_bad_places_are_refused_in_words_and_nothing_is_written(signed, session, out, make, message):
    service, opened = signed
    (out / "a-folder.pdf").mkdir()
    (out / "link.pdf").symlink_to(out / "elsewhere.pdf")
    listing = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(Refused, match=message):
        service.save_pdf_copy(opened.id, make(out))
    assert sorted(p.name for p in out.rglob("*")) == listing
    assert disclosures(session, opened.id) == []


def test_an_existing_file_is_kept_unless_overwrite_is_confirmed(signed, session, out):
    service, opened = signed
    existing = out / "statement.pdf"
    existing.write_bytes(b"the officer's other file")
    with pytest.raises(PdfCopyExists, match="already exists"):
        service.save_pdf_copy(opened.id, existing)
    assert existing.read_bytes() == b"the officer's other file"
    assert disclosures(session, opened.id) == []
    service.save_pdf_copy(opened.id, existing, overwrite=True)
    assert existing.read_bytes() == service.repo.signed(opened.id)[1]
    assert disclosures(session, opened.id) == ["statement.save_pdf"]


def test_a_failed_write_loses_nothing_and_is_not_audited(signed, session, out, monkeypatch):
    service, opened = signed
    existing = out / "statement.pdf"
    existing.write_bytes(b"the officer's other file")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("evr_desktop.fsutil.os.fsync", full)
    with pytest.raises(Refused, match="No space left on device.*Nothing was written"):
        service.save_pdf_copy(opened.id, existing, overwrite=True)
    monkeypatch.undo()
    assert existing.read_bytes() == b"the officer's other file"
    assert [p.name for p in out.iterdir()] == ["statement.pdf"]  # the temp file is gone
    assert disclosures(session, opened.id) == []


def test_an_unsigned_statement_has_nothing_to_save(session, out):
    service = session.statements
    opened = service.open_standalone()
    with pytest.raises(ValueError, match="not been signed"):
        service.save_pdf_copy(opened.id, out / "s.pdf")
    with pytest.raises(ValueError, match="not been signed"):
        service.save_pdf_copy(opened.id, out / "r.pdf", rear_page=True)
    assert list(out.iterdir()) == []


# -- the declaration the witness is shown ------------------------------------------------------


def test_the_preview_counts_the_statement_pages_and_a_changed_count_is_not_signed(session):
    service = session.statements
    opened = service.open_standalone()
    content = complete(session, opened.id)
    long = replace(content, narrative="\n".join(f"Line {i}." for i in range(40)))  # two pages
    preview = service.signing_preview(long)
    assert preview.pages == 2
    assert preview.declaration == service.templates().mg11.declaration_text(2)
    assert "consisting of 2 page(s)" in preview.declaration
    with pytest.raises(Refused, match="has 2 page\\(s\\), but the witness was shown a declaration for 1"):
        service.sign(opened.id, long, witness_signature(), declared_pages=1)
    assert service.repo.signed(opened.id) is None
    with pytest.raises(Refused):
        service.signing_preview(StatementContent())  # incomplete: the pad never opens


def test_a_statement_signed_with_its_rear_page_inside_is_saved_only_when_the_officer_confirms(session, out):
    """Statements signed before migration 4 have one PDF holding the rear page too."""
    service = session.statements
    opened = service.open_standalone()
    service.save(opened.id, complete(session, opened.id))
    old_pdf = b"%PDF-1.7\n% invented: a statement signed with its rear page inside\n%%EOF\n"
    service.repo.mark_signed(opened.id, 1, old_pdf)
    target = out / "old.pdf"
    with pytest.raises(RearPageInside, match="also holds the rear page"):
        service.save_pdf_copy(opened.id, target)
    assert not target.exists() and disclosures(session, opened.id) == []
    with pytest.raises(ValueError, match="before the rear page was kept as a document of its own"):
        service.save_pdf_copy(opened.id, out / "rear.pdf", rear_page=True)
    service.save_pdf_copy(opened.id, target, rear_page_inside_confirmed=True)
    assert target.read_bytes() == old_pdf
    assert disclosures(session, opened.id) == ["statement.save_pdf_with_rear_page"]
    assert service.verify_rear_page(opened.id) is None  # nothing separate to verify or save
