"""Signing on the victim's phone, the app's half, through the real session
(demo vault and CA, store, audit log, renderer, pyHanko): the review sent to
the phone, then ``sign_remote`` with what the phone returned. The phone
itself (Chromium) is tests/e2e/test_phone_signing_chromium.py."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest

from evr_desktop.domain.audit import Category
from evr_desktop.domain.phone_signing import PhoneSignature, check_strokes, recording_note, review_sha256
from evr_desktop.domain.statement_doc import StatementType
from evr_desktop.services import Refused
from tests.e2e.conftest import require
from tests.e2e.test_statement_copies import complete, nssdb, pdfsig, pdftotext, squash


def phone_signature(review_id: str, sha256: str) -> PhoneSignature:
    """What a phone returns: a zigzag drawn on a 320x160 canvas."""
    points = [[20 + 4 * i, 60 + (25 if i % 6 < 3 else -15) + i % 4, 16 * i] for i in range(60)]
    strokes, w, h = check_strokes([points, [[30, 120, 1200], [200, 118, 1300], [260, 121, 1350]]], 320, 160)
    return PhoneSignature(review_id, sha256, strokes, w, h)


def actions(session, statement_id: str) -> list[str]:
    return [e.action for e in session.audit.entries() if e.object_id == statement_id]


def test_signed_on_the_phone_the_pdf_verifies_and_notes_the_moment_in_the_recording(session, tmp_path):
    service = session.statements
    opened = service.open_standalone()
    content = replace(complete(session, opened.id),
                      narrative="\n".join(f"Line {i}: he came to the door again." for i in range(45)))
    review = service.phone_review(opened.id, content)
    assert review.pages == 2 and "consisting of 2 page(s)" in review.declaration
    assert review.text.endswith("Line 44: he came to the door again.")
    assert review.sha256 == review_sha256(review.text) and re.fullmatch(r"[0-9a-f]{32}", review.id)
    assert len(review.message()) < 10_000

    result = service.sign_remote(opened.id, content, phone_signature(review.id, review.sha256), review,
                                 recording_at_s=754.4)
    assert result.signed is not None and result.signed.valid, result.signed
    assert result.rear_page is not None and result.rear_page.valid
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(service.repo.signed(opened.id)[1])
    lines = pdfsig(pdf, nssdb(tmp_path, session.vault.header.force_ca_pem))
    assert {"Signature Validation: Signature is Valid.", "Certificate Validation: Certificate is Trusted.",
            "Total document signed"} <= lines, lines
    text = squash(pdftotext(pdf))
    assert squash(recording_note(754.4)) in text and "00:12:34" in recording_note(754.4)
    assert squash("consisting of 2 page(s)") in text
    # The witness's signature is on both pages (and the officer's digital one on the last).
    require("pdfimages")
    images = subprocess.run(["pdfimages", "-list", str(pdf)], check=True, capture_output=True, text=True).stdout
    pages_with_images = {int(ln.split()[0]) for ln in images.splitlines()[2:] if ln.split()}
    assert pages_with_images == {1, 2}, images
    assert actions(session, opened.id)[-4:] == [
        "statement.phone_review", "statement.phone_signature", "statement.save", "statement.sign"]
    assert [e.category for e in session.audit.entries() if e.action == "statement.phone_review"] == [
        Category.DISCLOSURE]


def test_the_text_the_victim_signed_differs_by_one_character_refused(session):
    service = session.statements
    opened = service.open_standalone()
    content = complete(session, opened.id)
    review = service.phone_review(opened.id, content)
    signature = phone_signature(review.id, review.sha256)  # the victim signed exactly what was sent
    changed = replace(content, narrative=content.narrative.replace("home", "hone"))  # then one letter changed
    assert len(changed.narrative) == len(content.narrative)
    with pytest.raises(Refused, match="not the text the victim signed on their phone"):
        service.sign_remote(opened.id, changed, signature, review)
    assert service.repo.signed(opened.id) is None and service.repo.latest(opened.id) is None
    assert actions(session, opened.id)[-1] == "statement.phone_signature_refused"
    # A phone that hashed something else than it was sent: refused the same way.
    with pytest.raises(Refused, match="not the text the victim signed"):
        service.sign_remote(opened.id, content, phone_signature(review.id, "0" * 64), review)
    # An answer to another review (an earlier one) is refused.
    with pytest.raises(Refused, match="different review"):
        service.sign_remote(opened.id, content, phone_signature("f" * 32, review.sha256), review)
    assert service.repo.signed(opened.id) is None


def test_a_victim_personal_statement_signs_the_same_way_and_a_blank_one_is_refused(session):
    service = session.statements
    opened = service.open_standalone(StatementType.VPS)
    with pytest.raises(Refused):
        service.phone_review(opened.id, opened.content)  # the same checks as the laptop's pad
    content = replace(complete(session, opened.id), statement_type=StatementType.VPS,
                      narrative="Since the burglary I do not sleep well.")
    review = service.phone_review(opened.id, content)
    assert review.kind == "vps" and review.text.startswith("VICTIM PERSONAL STATEMENT\n")
    result = service.sign_remote(opened.id, content, phone_signature(review.id, review.sha256), review)
    assert result.signed is not None and result.signed.valid


def test_a_statement_too_long_for_the_phone_is_refused_in_words(session):
    service = session.statements
    opened = service.open_standalone()
    content = replace(complete(session, opened.id), narrative="He said it again. " * 12_000)  # ~216 KB
    with pytest.raises(Refused, match="too long to send to the phone"):
        service.phone_review(opened.id, content)
