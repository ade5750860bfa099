"""The officer's services, below the UI: a workspace (one profile) and, once
unlocked, a session holding the keys, the store and the audit log.

Every change and every view of victim data goes through here, so the rules
(validation, eligibility, status transitions) and the audit trail cannot be
skipped by a screen that forgets them. Nothing here imports Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from .config import Paths, Settings, load_settings
from .domain.audit import Category
from .vault.kdf import KdfParams, calibrate

# The rest is imported where first used: the app constructs a Workspace before
# its first paint (the unlock screen), and that paint should not wait for the
# appointment domain, the vault's internals or the store. They load on the
# worker thread during the profile check or the unlock.
if TYPE_CHECKING:
    from .audit.log import AuditLog
    from .domain import appointment as appt
    from .domain import eligibility
    from .domain.officer import OfficerIdentity
    from .statement.service import StatementService
    from .store.base import AppointmentRepository
    from .vault.vault import ForceProvisioning, UnlockedVault, VaultHeader


class Refused(ValueError):
    """An action the rules refuse; ``reasons`` says why in words."""

    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


def _open_audit(paths: Paths) -> AuditLog:
    # Imported here: opening (and verifying) the log runs on the worker after
    # the first paint, so the module need not load before it.
    from .audit.log import AuditLog

    return AuditLog.open(paths.audit)


@dataclass
class Workspace:
    """One profile on disk. Constructing it touches nothing; ``start()`` reads."""

    paths: Paths
    settings: Settings = field(default_factory=Settings)
    audit: AuditLog | None = None
    # Chooses Argon2id parameters for a new vault. Tests pass cheap ones; the
    # app calibrates to about half a second on this laptop.
    make_kdf: Callable[[], KdfParams] = calibrate

    def start(self) -> None:
        """Read settings and open the audit log (refuses a tampered one)."""
        self.settings = load_settings(self.paths)
        if self.paths.profile.exists():
            self.audit = _open_audit(self.paths)

    @property
    def needs_setup(self) -> bool:
        from .vault import vault

        return not vault.exists(self.paths.profile)

    def header(self) -> VaultHeader:
        from .vault import vault

        return vault.read_header(self.paths.profile)

    def create(
        self,
        officer: OfficerIdentity,
        passphrase: str,
        provisioning: ForceProvisioning | None = None,
        with_demo_data: bool | None = None,
    ) -> Session:
        from .domain.officer import validate_officer
        from .domain.passphrase import assess, officer_words
        from .vault import vault

        problems = validate_officer(officer)
        strength = assess(passphrase, officer_words(officer))
        problems += list(strength.problems)
        if problems:
            raise Refused(problems)
        unlocked = vault.create(
            self.paths.profile,
            officer,
            passphrase,
            evidence_office=self.paths.evidence_office if provisioning is None else None,
            provisioning=provisioning,
            kdf_params=self.make_kdf(),
        )
        self.audit = _open_audit(self.paths)
        self.audit.append(officer.collar, Category.COLLECTION, "vault", "vault.create")
        session = self._open_session(unlocked)
        if with_demo_data if with_demo_data is not None else self.paths.demo:
            from . import demo

            for a in demo.demo_appointments(date.today()):
                session.store.add(a)
                session.audit_event(Category.COLLECTION, a.id, "appointment.create_demo")
        return session

    def unlock(self, passphrase: str) -> Session:
        from .vault import vault

        unlocked = vault.unlock(self.paths.profile, passphrase)
        if self.audit is None:
            self.audit = _open_audit(self.paths)
        session = self._open_session(unlocked)
        session.audit_event(Category.CONSULTATION, "vault", "session.unlock")
        return session

    def _open_session(self, unlocked: UnlockedVault) -> Session:
        assert self.audit is not None
        from .store.base import StoreError
        from .store.sqlite import SqliteStore  # not needed before the first unlock

        try:
            store = SqliteStore(self.paths.store, unlocked.store_key)
        except StoreError:
            unlocked.close()
            raise
        return Session(unlocked, store, self.audit, self.settings)


class Session:
    """An unlocked officer session. ``lock()`` drops keys and closes the store."""

    def __init__(
        self, unlocked: UnlockedVault, store: AppointmentRepository, audit: AuditLog, settings: Settings | None = None
    ):
        self.settings = settings or Settings()
        self.vault = unlocked
        self.store = store
        self.audit = audit
        self.officer = unlocked.header.officer
        self._statements: StatementService | None = None

    @property
    def statements(self) -> StatementService:
        """Statement drafting and signing (built on first use: templates, PDF and
        signing code load only when a statement is opened)."""
        if self._statements is None:
            from .statement.service import StatementService

            self._statements = StatementService(self)
        return self._statements

    def audit_event(self, category: Category, object_id: str, action: str) -> None:
        self.audit.append(self.officer.collar, category, object_id, action)

    # -- appointments -----------------------------------------------------
    def list_appointments(self, day: date | None = None) -> list[appt.Appointment]:
        items = self.store.list(day)
        self.audit_event(Category.CONSULTATION, "queue", "queue.list")
        return items

    def view_appointment(self, appointment_id: str) -> appt.Appointment:
        a = self.store.get(appointment_id)
        self.audit_event(Category.CONSULTATION, a.id, "appointment.view")
        return a

    def save_appointment(self, a: appt.Appointment, *, new: bool) -> eligibility.Eligibility:
        """Validate, check eligibility, store and audit. Ineligible bookings are
        refused with their reasons: video must not be offered to them."""
        from .domain import appointment as appt
        from .domain import eligibility

        problems = appt.validate(a)
        if problems:
            raise Refused(problems)
        result = eligibility.check(a)
        if not result.eligible and a.status in (appt.Status.SCHEDULED, appt.Status.LINK_SENT):
            raise Refused([r.text for r in result.blocking])
        if new:
            self.store.add(a)
            self.audit_event(Category.COLLECTION, a.id, "appointment.create")
        else:
            self.store.update(a)
            self.audit_event(Category.ALTERATION, a.id, "appointment.update")
        return result

    def change_status(self, appointment_id: str, status: appt.Status) -> appt.Appointment:
        current = self.store.get(appointment_id)
        changed = current.with_status(status)
        self.store.update(changed)
        self.audit_event(Category.ALTERATION, changed.id, f"appointment.status.{status.value}")
        return changed

    def lock(self) -> None:
        self.audit_event(Category.CONSULTATION, "vault", "session.lock")
        self.store.close()
        self.vault.close()
