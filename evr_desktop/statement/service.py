"""Statement work for an unlocked session: open, autosave, history, sign, verify.

Runs on the app's worker thread (never the GUI thread): it touches the store,
the audit log, the PDF renderer and the officer's signing key. Every signing
and every view of a signed statement is audited (DPA Part 3), by ID only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..domain.appointment import ALLOWED_TRANSITIONS, Appointment, Status
from ..domain.audit import Category
from ..domain.eligibility import age_on
from ..domain.statement import TemplateSet, completeness
from ..domain.statement_doc import StatementContent, StatementType, StatementVersion, WitnessSignature

if TYPE_CHECKING:
    from ..services import Session
    from ..store.statements import SqliteStatementRepository
    from .verify import VerificationReport


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


def _title(content: StatementContent) -> str:
    """Screen title: the statement type and URN (never the witness's name)."""
    label = "Victim Personal Statement" if content.statement_type is StatementType.VPS else "Statement"
    urn = content.fields.get("urn")
    return f"{label} — {urn}" if isinstance(urn, str) and urn else label


class StatementService:
    def __init__(self, session: Session):
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

    def _advance(self, appointment_id: str | None, status: Status) -> None:
        """Move the appointment along when the lifecycle allows it; offline
        drafting of a booked appointment leaves its status alone."""
        if appointment_id is None:
            return
        current = self.session.store.get(appointment_id)
        if status in ALLOWED_TRANSITIONS[current.status]:
            self.session.change_status(appointment_id, status)

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
        return OpenedStatement(statement_id, f"{label} — {a.urn}", content, None, None, appointment_id)

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
        summary = next(s for s in self.repo.list_all() if s.id == statement_id)
        signed = None
        if summary.signed:
            signed = self.verify(statement_id)
        self._audit(Category.CONSULTATION, statement_id, "statement.view")
        content = latest.content if latest else StatementContent()
        return OpenedStatement(
            statement_id, _title(content), content, latest.number if latest else None, signed, summary.appointment_id
        )

    # -- drafting ----------------------------------------------------------------
    def save(self, statement_id: str, content: StatementContent, reason: str = "") -> StatementVersion | None:
        version = self.repo.save_version(statement_id, content, reason)
        if version is not None:
            self._audit(Category.ALTERATION, statement_id, "statement.save")
        return version

    def versions(self, statement_id: str) -> list[StatementVersion]:
        items = self.repo.versions(statement_id)
        self._audit(Category.CONSULTATION, statement_id, "statement.history")
        return items

    # -- signing -------------------------------------------------------------------
    def sign(self, statement_id: str, content: StatementContent, signature: WitnessSignature, reason: str = "") -> OpenedStatement:
        """Save, render, sign with the officer's key, verify, then lock."""
        from ..services import Refused
        from .pdf import render_statement_pages
        from .signing import sign_with_vault
        from .verify import verify_statement

        templates = self.templates()
        missing = completeness(
            content.fields, content.narrative, content.ticked_prompts, templates,
            offence=content.offence if content.statement_type is StatementType.WITNESS else None,
            suspect_identified=content.suspect_identified,
        )
        missing += signature.problems()
        missing += _undrawable(content)
        if missing:
            raise Refused(missing)
        self.save(statement_id, content, reason)
        version = self.repo.latest(statement_id)
        assert version is not None
        rendered = render_statement_pages(content, templates, self.session.officer, signature)
        signed_pdf = sign_with_vault(
            rendered.pdf, self.session.vault, page=rendered.last_statement_page,
            location=self.session.officer.station,
            timestamp_url=self.session.settings.timestamp_url or None,
        )
        report = verify_statement(signed_pdf, self.session.vault.header.force_ca_pem)
        if not report.ok:
            raise Refused(["The signed PDF did not verify; it was not kept. " + summarise(report).verification])
        self.repo.mark_signed(statement_id, version.number, signed_pdf)
        self._audit(Category.ALTERATION, statement_id, "statement.sign")
        summary = next(s for s in self.repo.list_all() if s.id == statement_id)
        self._advance(summary.appointment_id, Status.SIGNED)
        info = replace(summarise(report), version=version.number)
        return OpenedStatement(statement_id, _title(content), content, version.number, info, summary.appointment_id)

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


