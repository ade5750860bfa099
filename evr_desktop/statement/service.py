"""Statement work for an unlocked session: open, autosave, history, sign,
verify, and save a signed copy where the officer chooses.

Runs on the app's worker thread (never the GUI thread): it touches the store,
the audit log, the PDF renderer and the officer's signing key. Every signing,
every view of a signed statement and every copy saved out of the app (a
disclosure) is audited (DPA Part 3), by ID only.

Signing makes two PDFs, each signed by the officer: the statement (what is
disclosed) and the restricted rear page (the witness's contact details, for
police and prosecution only), so the statement file can never carry them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..domain.appointment import Appointment, Happening
from ..domain.audit import Category
from ..domain.eligibility import age_on
from ..domain.errors import Refused
from ..domain.phone_signing import PhoneSignature, review_message
from ..domain.statement import TemplateSet, missing_before_signing
from ..domain.statement_doc import (
    SignatureKind,
    StatementContent,
    StatementType,
    StatementVersion,
    WitnessSignature,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..domain.officer import OfficerIdentity
    from ..store.base import AppointmentRepository
    from ..store.statements import SqliteStatementRepository
    from ..vault.vault import UnlockedVault
    from .verify import VerificationReport


class StatementHost(Protocol):
    """What statement work needs of the unlocked session (``services.Session``
    provides it). A protocol rather than an import: the session builds this
    service, so importing the session here would make a cycle."""

    store: AppointmentRepository
    vault: UnlockedVault
    officer: OfficerIdentity
    settings: Settings

    def audit_event(self, category: Category, object_id: str, action: str) -> None: ...

    def record(self, appointment_id: str, happening: Happening) -> Any: ...


@dataclass(frozen=True)
class SignedInfo:
    version: int
    valid: bool
    verification: str  # one line for the officer: "Signature valid; certificate trusted ..."


@dataclass(frozen=True)
class OpenedStatement:
    id: str
    title: str
    content: StatementContent
    version_number: int | None
    signed: SignedInfo | None = None
    appointment_id: str | None = None
    rear_page: SignedInfo | None = None  # the separately signed restricted rear page, if there is one
    stills: tuple[Any, ...] = ()  # the appointment's stills (store.stills.StillRecord), listed in the panel

    def with_version(self, number: int) -> OpenedStatement:
        return replace(self, version_number=number)


def prefill(appointment: Appointment, officer_name: str, officer_number: str, station: str) -> StatementContent:
    """A new statement's fields from its appointment: nothing typed twice."""
    v = appointment.victim
    on = appointment.slot.date()
    age = "Over 18"
    if v.date_of_birth is not None and age_on(v.date_of_birth, on) < 18:
        age = str(age_on(v.date_of_birth, on))
    fields = {
        "urn": appointment.urn,
        "statement_of": v.full_name,
        "age": age,
        "mobile_phone": v.mobile,
        "taken_by_name": officer_name,
        "taken_by_number": officer_number,
        "station": station,
    }
    if v.date_of_birth is not None:
        fields["date_of_birth"] = v.date_of_birth.isoformat()
    return StatementContent(offence=appointment.offence.value, fields=fields)


def summarise(report: VerificationReport) -> SignedInfo:
    from .verify import ENTIRE_FILE

    if not report.signatures:
        return SignedInfo(0, False, "No signature found.")
    s = report.signatures[-1]
    if report.ok:
        text = f"Signature valid; certificate trusted ({s.issuer}); covers the whole document; signed by {s.signer}."
    else:
        problems = [p for p, bad in (
            ("the document was changed after signing", not s.intact or s.coverage != ENTIRE_FILE),
            ("the signature does not check out", not s.valid),
            ("the certificate is not trusted by the force CA", not s.trusted),
        ) if bad] + list(s.problems)
        text = "SIGNATURE NOT VALID: " + "; ".join(problems) + "."
    return SignedInfo(0, report.ok, text)


def _undrawable(content: StatementContent) -> list[str]:
    """Why signing is refused when the PDF would show a typed character as U+FFFD
    (drafts keep it). The witness's signature is an image, so only the text is checked."""
    from .fonts import undrawable

    texts = [content.narrative, *(v for v in content.fields.values() if isinstance(v, str))]
    odd = undrawable("\n".join(texts))
    if not odd:
        return []
    return ["The statement PDF cannot show these characters, so it cannot be signed as typed: "
            + "; ".join(odd) + ". Remove them or write them another way (for example in Latin letters)."]


@dataclass(frozen=True)
class SigningPreview:
    """What the witness is shown before signing: the declaration, with the
    number of pages the statement will have."""

    pages: int
    declaration: str


@dataclass(frozen=True)
class PhoneReview:
    """A statement sent to the victim's phone for signing: ``text`` is exactly
    what the phone shows (``review.review_text``), ``sha256`` its hash, ``pages``
    and ``declaration`` what the declaration there says. Kept by the app until
    the phone answers (``id`` ties the answer to it)."""

    id: str
    text: str
    sha256: str
    pages: int
    declaration: str
    kind: str  # "witness" | "vps"

    def message(self) -> str:
        """The ``statement_review`` message (JSON); raises ``ReviewTooLarge``."""
        return review_message(self.id, self.text, self.pages, self.declaration, self.kind)


class PdfCopyExists(ValueError):
    """The chosen file exists; saving over it needs the officer's confirmation."""


class RearPageInside(ValueError):
    """The statement was signed before the rear page was a document of its
    own: its signed PDF holds the restricted rear page too. Saving it needs
    the officer's confirmation that the copy is for police and prosecution only."""


def _check_copy_path(path: Path, *, overwrite: bool) -> None:
    """Refuse, in words, a place a PDF copy must not go. Nothing is written."""
    if path.suffix.lower() != ".pdf":
        raise Refused([f"The file name must end in .pdf ({path.name or path} does not)."])
    if path.is_dir():
        raise Refused([f"{path} is a folder: choose a file name inside it."])
    if not path.parent.is_dir():
        raise Refused([f"The folder {path.parent} does not exist: choose another place."])
    if os.path.lexists(path):
        if path.is_symlink() or not path.is_file():
            raise Refused([f"{path} is not an ordinary file: choose another name."])
        if not overwrite:
            raise PdfCopyExists(f"{path} already exists.")


def _title(content: StatementContent) -> str:
    """Screen title: the statement type and URN (never the witness's name)."""
    label = "Victim Personal Statement" if content.statement_type is StatementType.VPS else "Statement"
    urn = content.fields.get("urn")
    return f"{label} — {urn}" if isinstance(urn, str) and urn else label


REAR_PAGE_REASON = "Witness statement, restricted rear page: signed by the officer"


class StatementService:
    def __init__(self, session: StatementHost):
        self.session = session
        self._templates: TemplateSet | None = None
        self._repo: SqliteStatementRepository | None = None

    # -- plumbing ------------------------------------------------------------
    def templates(self) -> TemplateSet:
        if self._templates is None:
            from .templates import load_templates

            self._templates = load_templates()
        return self._templates

    @property
    def repo(self) -> SqliteStatementRepository:
        if self._repo is None:
            from ..store.statements import SqliteStatementRepository

            self._repo = SqliteStatementRepository(self.session.store)  # type: ignore[arg-type]
        return self._repo

    def field_labels(self) -> dict[str, str]:
        return {f.id: f.label for s in self.templates().mg11.sections for f in s.fields}

    def _audit(self, category: Category, statement_id: str, action: str) -> None:
        self.session.audit_event(category, statement_id, action)

    def _advance(self, appointment_id: str | None, happening: Happening) -> None:
        """Move the appointment with what happened to its statement (the
        lifecycle decides; drafting before any call leaves it alone)."""
        if appointment_id is not None:
            self.session.record(appointment_id, happening)

    # -- opening ---------------------------------------------------------------
    def open_for_appointment(
        self, appointment_id: str, statement_type: StatementType = StatementType.WITNESS
    ) -> OpenedStatement:
        """The appointment's statement of that type, created (prefilled) on first use.
        A Victim Personal Statement is a separate MG11 beside the witness statement."""
        a = self.session.store.get(appointment_id)
        existing = [s for s in self.repo.list_for_appointment(appointment_id) if s.statement_type == statement_type]
        if existing:
            return self.open(existing[-1].id)
        o = self.session.officer
        content = replace(prefill(a, o.name, o.collar, o.station), statement_type=statement_type)
        statement_id = self.repo.create(statement_type, appointment_id)
        self._audit(Category.COLLECTION, statement_id, "statement.create")
        label = "Victim Personal Statement" if statement_type is StatementType.VPS else "Statement"
        return OpenedStatement(statement_id, f"{label} — {a.urn}", content, None, None, appointment_id,
                               stills=self._stills(appointment_id))

    def open_standalone(self, statement_type: StatementType = StatementType.WITNESS) -> OpenedStatement:
        """Offline drafting with no appointment (the officer fills everything)."""
        o = self.session.officer
        content = StatementContent(
            statement_type=statement_type,
            fields={"taken_by_name": o.name, "taken_by_number": o.collar, "station": o.station},
        )
        statement_id = self.repo.create(statement_type, None)
        self._audit(Category.COLLECTION, statement_id, "statement.create")
        label = "Victim Personal Statement" if statement_type is StatementType.VPS else "Statement"
        return OpenedStatement(statement_id, f"{label} (no appointment)", content, None)

    def open(self, statement_id: str) -> OpenedStatement:
        latest = self.repo.latest(statement_id)
        summary = self.repo.summary(statement_id)
        signed = rear = None
        if summary.signed:
            signed = self.verify(statement_id)
            rear = self.verify_rear_page(statement_id)
        self._audit(Category.CONSULTATION, statement_id, "statement.view")
        content = latest.content if latest else StatementContent()
        return OpenedStatement(
            statement_id, _title(content), content, latest.number if latest else None, signed, summary.appointment_id,
            rear, stills=self._stills(summary.appointment_id),
        )

    def _stills(self, appointment_id: str | None) -> tuple[Any, ...]:
        """The stills taken in the appointment's calls, for the panel (none without an appointment)."""
        if appointment_id is None:
            return ()
        from ..store.stills import SqliteStillRepository

        return tuple(SqliteStillRepository(self.session.store).list_for_appointment(appointment_id))  # type: ignore[arg-type]

    # -- drafting ----------------------------------------------------------------
    def save(self, statement_id: str, content: StatementContent, reason: str = "") -> StatementVersion | None:
        version = self.repo.save_version(statement_id, content, reason)
        if version is not None:
            self._audit(Category.ALTERATION, statement_id, "statement.save")
            summary = self.repo.summary(statement_id)
            self._advance(summary.appointment_id, Happening.STATEMENT_SAVED)
        return version

    def versions(self, statement_id: str) -> list[StatementVersion]:
        items = self.repo.versions(statement_id)
        self._audit(Category.CONSULTATION, statement_id, "statement.history")
        return items

    # -- signing -------------------------------------------------------------------
    def signing_preview(self, content: StatementContent) -> SigningPreview:
        """The declaration the witness reads before signing, with the real page
        count: the statement is rendered once (without a signature, which does
        not change the layout) to count its pages."""
        from .pdf import render_statement_pages

        # Before the witness signs, not after: a character the PDF cannot show
        # would otherwise only be refused once the pad had been used.
        missing = missing_before_signing(content, self.templates()) + _undrawable(content)
        if missing:
            raise Refused(missing)
        pages = render_statement_pages(content, self.templates(), self.session.officer).statement_pages
        return SigningPreview(pages, self.templates().mg11.declaration_text(pages))

    def sign(
        self, statement_id: str, content: StatementContent, signature: WitnessSignature, reason: str = "",
        declared_pages: int | None = None, *, recording_note: str = "",
    ) -> OpenedStatement:
        """Save, render the statement and its rear page, sign both with the
        officer's key, verify both, then lock. ``declared_pages``: the page
        count in the declaration the witness was shown; signing is refused if
        the statement came out differently. ``recording_note``: the small line
        under "also visually recorded" (``sign_remote`` gives the declaration's
        moment in the recording)."""
        from .pdf import render_rear_page, render_statement_pages
        from .signing import sign_with_vault
        from .verify import verify_statement

        templates = self.templates()
        missing = missing_before_signing(content, templates) + signature.problems() + _undrawable(content)
        if missing:
            raise Refused(missing)
        rendered = render_statement_pages(content, templates, self.session.officer, signature,
                                          recording_note=recording_note)
        if declared_pages is not None and rendered.statement_pages != declared_pages:
            raise Refused([(
                f"The statement has {rendered.statement_pages} page(s), but the witness was shown a declaration "
                f"for {declared_pages}. Nothing was signed: show the witness the declaration again."
            )])
        rear = render_rear_page(content, templates, self.session.officer, signature)
        self.save(statement_id, content, reason)
        version = self.repo.latest(statement_id)
        assert version is not None
        ca = self.session.vault.header.force_ca_pem
        common = {"location": self.session.officer.station,
                  "timestamp_url": self.session.settings.timestamp_url or None}
        signed_pdf = sign_with_vault(rendered.pdf, self.session.vault, page=rendered.last_statement_page, **common)
        report = verify_statement(signed_pdf, ca)
        if not report.ok:
            raise Refused(["The signed PDF did not verify; it was not kept. " + summarise(report).verification])
        signed_rear = sign_with_vault(rear.pdf, self.session.vault, page=rear.pages - 1, reason=REAR_PAGE_REASON,
                                      **common)
        rear_report = verify_statement(signed_rear, ca)
        if not rear_report.ok:
            raise Refused(["The signed rear page did not verify; nothing was kept. "
                           + summarise(rear_report).verification])
        self.repo.mark_signed(statement_id, version.number, signed_pdf, rear_page_pdf=signed_rear)
        self._audit(Category.ALTERATION, statement_id, "statement.sign")
        summary = self.repo.summary(statement_id)
        self._advance(summary.appointment_id, Happening.STATEMENT_SIGNED)
        info = replace(summarise(report), version=version.number)
        rear_info = replace(summarise(rear_report), version=version.number)
        return OpenedStatement(
            statement_id, _title(content), content, version.number, info, summary.appointment_id, rear_info
        )

    # -- signing on the victim's phone (issue 12 item 1; docs/victim-page.md) ----------
    def phone_review(self, statement_id: str, content: StatementContent) -> PhoneReview:
        """What is sent to the victim's phone to review and sign: the review text
        (``review.review_text``), its SHA-256, the page count and the declaration.
        The same checks as ``signing_preview``; the pages are counted with a
        recording note of the shape the signed PDF will carry. Refused (in
        words) when the statement is too long for one data-channel message.
        Audited as a disclosure (to the witness), by ID only."""
        from ..domain.phone_signing import RECORDING_NOTE_PLACEHOLDER, ReviewTooLarge, review_sha256
        from .pdf import render_statement_pages
        from .review import review_text

        templates = self.templates()
        missing = missing_before_signing(content, templates) + _undrawable(content)
        if missing:
            raise Refused(missing)
        pages = render_statement_pages(content, templates, self.session.officer,
                                       recording_note=RECORDING_NOTE_PLACEHOLDER).statement_pages
        text = review_text(content, templates)
        review = PhoneReview(secrets.token_hex(16), text, review_sha256(text), pages,
                             templates.mg11.declaration_text(pages), content.statement_type.value)
        try:
            review.message()
        except ReviewTooLarge as exc:
            raise Refused([str(exc)]) from None
        self._audit(Category.DISCLOSURE, statement_id, "statement.phone_review")
        return review

    def sign_remote(
        self, statement_id: str, content: StatementContent, remote: PhoneSignature, review: PhoneReview,
        reason: str = "", *, recording_at_s: float | None = None, signed_at: datetime | None = None,
    ) -> OpenedStatement:
        """Sign with the signature the victim drew on their phone. The review text
        is rebuilt from ``content``, the content about to be signed, and its
        SHA-256 must be the one the page computed over the text it displayed:
        if the text changed after the victim signed (one character is enough),
        the officer's signing is refused and nothing is signed. Then as ``sign``:
        the strokes drawn as the witness's signature on every page, the page
        count checked against the declaration the phone showed, the officer's
        digital signature; the recording note says when, in the recording, the
        declaration was made (``recording_at_s``)."""
        import hmac

        from ..domain.phone_signing import recording_note, review_sha256
        from .phone_signature import strokes_png
        from .review import review_text

        if remote.review_id != review.id:
            self._audit(Category.ALTERATION, statement_id, "statement.phone_signature_refused")
            raise Refused(["The victim's phone signed a different review of this statement. Nothing was "
                           "signed: send the statement to the phone again."])
        current = review_sha256(review_text(content, self.templates()))
        if not hmac.compare_digest(current, remote.sha256):
            self._audit(Category.ALTERATION, statement_id, "statement.phone_signature_refused")
            raise Refused(["The statement's text is not the text the victim signed on their phone (it changed "
                           "after it was sent, or the phone showed something else). Nothing was signed: send "
                           "the statement to the phone again so the victim reads and signs the final text."])
        signature = WitnessSignature(SignatureKind.DRAWN, strokes_png(remote),
                                     signed_at or datetime.now().astimezone())
        self._audit(Category.COLLECTION, statement_id, "statement.phone_signature")
        return self.sign(statement_id, content, signature, reason, declared_pages=review.pages,
                         recording_note=recording_note(recording_at_s))

    def signed_pdf(self, statement_id: str) -> bytes:
        signed = self.repo.signed(statement_id)
        if signed is None:
            raise ValueError("This statement has not been signed.")
        self._audit(Category.CONSULTATION, statement_id, "statement.view_signed")
        return signed[1]

    def verify(self, statement_id: str) -> SignedInfo:
        from .verify import verify_statement

        signed = self.repo.signed(statement_id)
        if signed is None:
            raise ValueError("This statement has not been signed.")
        self._audit(Category.CONSULTATION, statement_id, "statement.view_signed")
        report = verify_statement(signed[1], self.session.vault.header.force_ca_pem)
        return replace(summarise(report), version=signed[0])

    def signed_rear_page(self, statement_id: str) -> bytes:
        rear = self._rear(statement_id)
        self._audit(Category.CONSULTATION, statement_id, "statement.view_rear_page")
        return rear[1]

    def verify_rear_page(self, statement_id: str) -> SignedInfo | None:
        """The signed rear page checked on its own; None for a statement signed
        before the rear page was a document of its own."""
        from .verify import verify_statement

        rear = self.repo.signed_rear_page(statement_id)
        if rear is None:
            return None
        self._audit(Category.CONSULTATION, statement_id, "statement.view_rear_page")
        report = verify_statement(rear[1], self.session.vault.header.force_ca_pem)
        return replace(summarise(report), version=rear[0])

    def _rear(self, statement_id: str) -> tuple[int, bytes]:
        rear = self.repo.signed_rear_page(statement_id)
        if rear is None:
            if self.repo.signed(statement_id) is None:
                raise ValueError("This statement has not been signed.")
            raise ValueError("This statement was signed before the rear page was kept as a document of its own.")
        return rear

    # -- a copy out of the app (a disclosure) ---------------------------------------
    def save_pdf_copy(
        self, statement_id: str, path: str | os.PathLike[str], *, rear_page: bool = False, overwrite: bool = False,
        rear_page_inside_confirmed: bool = False,
    ) -> Path:
        """Write the signed statement (or, with ``rear_page``, its signed
        restricted rear page) to ``path``, byte for byte as signed, and audit
        it as a disclosure by statement id (never the file name, which may
        name the witness).

        Refuses (``Refused``, in words) a name not ending in .pdf, a folder, a
        missing folder or anything that is not an ordinary file; an existing
        file raises ``PdfCopyExists`` unless ``overwrite``. A statement signed
        before the rear page was separate raises ``RearPageInside`` unless
        ``rear_page_inside_confirmed`` (its PDF cannot be re-signed without the
        rear page, so the officer decides, and the audit says which). The write is atomic
        (fsutil.atomic_write, owner-only): on any failure the old file, if
        any, is untouched and nothing is left behind."""
        from ..fsutil import atomic_write

        target = Path(path).expanduser()
        _check_copy_path(target, overwrite=overwrite)
        action = "statement.save_rear_page_pdf" if rear_page else "statement.save_pdf"
        if rear_page:
            data = self._rear(statement_id)[1]
        else:
            signed = self.repo.signed(statement_id)
            if signed is None:
                raise ValueError("This statement has not been signed.")
            data = signed[1]
            if self.repo.signed_rear_page(statement_id) is None:
                if not rear_page_inside_confirmed:
                    raise RearPageInside(
                        "This statement was signed before the restricted rear page became a separate document, "
                        "so its signed PDF also holds the rear page (the witness's contact details). "
                        "A copy of it is for police and prosecution only, never for disclosure."
                    )
                action = "statement.save_pdf_with_rear_page"
        try:
            atomic_write(target, data)
        except OSError as exc:
            raise Refused(
                [f"The PDF could not be saved to {target} ({exc.strerror or exc}). Nothing was written."]
            ) from exc
        self._audit(Category.DISCLOSURE, statement_id, action)
        return target


