"""The officer's services, below the UI: a workspace (one profile) and, once
unlocked, a session holding the keys, the store and the audit log.

Every change and every view of victim data goes through here, so the rules
(validation, eligibility, status transitions) and the audit trail cannot be
skipped by a screen that forgets them. Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Paths, Settings, load_settings
from .domain.audit import Category
from .domain.errors import NotEligible, Refused
from .vault.kdf import KdfParams, calibrate

# The rest is imported where first used: the app constructs a Workspace before
# its first paint (the unlock screen), and that paint should not wait for the
# appointment domain, the vault's internals or the store. They load on the
# worker thread during the profile check or the unlock.
if TYPE_CHECKING:
    from .audit.log import AuditLog
    from .domain import appointment as appt
    from .domain.exhibit import ExhibitReference
    from .domain.officer import OfficerIdentity
    from .domain.recording import RecordingChoice, RecordingOutcome
    from .domain.safety import SafetyAlert, Signal
    from .evidence.verify import BundleFiles
    from .notify.base import Notifier, SendResult
    from .notify.outbox import OutboxNotifier
    from .recording.library import PlaybackSegment, RecordingSummary
    from .recording.recover import RecoveryResult
    from .statement.service import StatementService
    from .store.base import AppointmentRepository
    from .store.outbox import OutboxMessage
    from .store.safety import SqliteSafety
    from .store.stills import SqliteStillRepository, StillRecord
    from .vault.vault import ForceProvisioning, UnlockedVault, VaultHeader

__all__ = ["LinkSent", "NotEligible", "Refused", "RecordingPlan", "Session", "Workspace"]

log = logging.getLogger(__name__)

# How often, in use, the audit checkpoint is signed (as well as at every lock and export).
SIGN_CHECKPOINT_EVERY = 15 * 60.0


def _refuse(a: appt.Appointment, reasons: list[str]) -> None:
    """Raise the refusal: ``NotEligible`` when the EVR criteria are why and
    the in-person way out is still open (the screen offers it)."""
    from .domain import eligibility

    if reasons:
        way_out = not eligibility.check(a).eligible and eligibility.in_person_possible(a)
        raise (NotEligible if way_out else Refused)(reasons)


def _open_audit(paths: Paths) -> AuditLog:
    # Imported here: opening (and verifying) the log runs on the worker after
    # the first paint, so the module need not load before it.
    from .audit.log import AuditLog

    return AuditLog.open(paths.audit)


@dataclass(frozen=True)
class LinkSent:
    """What **Send link** produced: the appointment as it now is, the link and the text."""

    appointment: appt.Appointment
    link: str
    text: str
    sent_by_sms: bool = False  # force mode: the force's SMS service took it
    sms_problem: str | None = None  # force mode, and it could not: why (the text is in the outbox)


@dataclass(frozen=True)
class RecordingPlan:
    """Where and to whom a call's recording goes: a new folder under the
    profile and the two *public* age recipients (never a key)."""

    appointment_id: str
    folder: Path
    officer_recipient: str
    escrow_recipient: str


@dataclass(frozen=True)
class PlaybackPlan:
    """A recording to play: its folder and each segment's file key (``recording.library.PlaybackSegment``)."""

    appointment_id: str
    recording_id: str
    folder: Path
    finalised: bool
    reason: str
    segments: tuple[PlaybackSegment, ...]


@dataclass
class Workspace:
    """One profile on disk. Constructing it touches nothing; ``start()`` reads."""

    paths: Paths
    settings: Settings = field(default_factory=Settings)
    audit: AuditLog | None = None
    # Chooses Argon2id parameters for a new vault. Tests pass cheap ones; the
    # app calibrates to about half a second on this laptop.
    make_kdf: Callable[[], KdfParams] = calibrate
    # The first unlock in this process runs before any call machinery: see
    # Session.reconcile_presence. Later unlocks may find a victim really waiting.
    reconciled: bool = field(default=False, init=False)

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
        try:
            session.recover_recordings()
        except Exception:  # noqa: BLE001 - a damaged recording must not keep the officer out; retried next unlock
            log.exception("recovering unfinished recordings failed")
        if not self.reconciled:
            session.reconcile_presence()
            self.reconciled = True
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
        return Session(unlocked, store, self.audit, self.settings, recordings=self.paths.recordings)


class Session:
    """An unlocked officer session. ``lock()`` drops keys and closes the store."""

    def __init__(
        self, unlocked: UnlockedVault, store: AppointmentRepository, audit: AuditLog, settings: Settings | None = None,
        recordings: Path | None = None,
    ):
        self.settings = settings or Settings()
        self.recordings = recordings  # the profile's recordings folder (None: recording off)
        self.vault = unlocked
        self.store = store
        self.audit = audit
        self.officer = unlocked.header.officer
        self._statements: StatementService | None = None
        self._stills: SqliteStillRepository | None = None
        self._outbox: OutboxNotifier | None = None
        self._safety: SqliteSafety | None = None
        self._sms: Notifier | None = None  # force mode's SMS sender, made on first use
        self._signing = threading.Lock()
        self._last_signed = time.monotonic()  # the first interval checkpoint comes after SIGN_CHECKPOINT_EVERY

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
        if time.monotonic() - self._last_signed >= SIGN_CHECKPOINT_EVERY:
            self._sign_quietly("interval")

    def sign_audit_checkpoint(self, reason: str) -> dict[str, Any]:
        """Sign the audit log's checkpoint with the officer's key (audit/signed.py):
        at every lock, every ``SIGN_CHECKPOINT_EVERY`` seconds of use, and every
        export. Raises ``ValueError`` when the signatures file is damaged, ``OSError``
        when it cannot be written."""
        from .audit.signed import sign_checkpoint, signer_from_pem

        with self._signing:
            signer = signer_from_pem(self.vault.header.certificate_pem, self.vault.signing_key_pem)
            signed = sign_checkpoint(self.audit, signer, self.officer.collar, reason)
            self._last_signed = time.monotonic()
            return signed

    def _sign_quietly(self, reason: str) -> None:
        """A signed checkpoint that must never stop the officer's work: a failure
        is logged (no data in it) and ``audit verify`` reports the damage."""
        try:
            self.sign_audit_checkpoint(reason)
        except (ValueError, OSError, TypeError) as exc:
            self._last_signed = time.monotonic()  # not again at every entry
            log.warning("audit: no signed checkpoint (%s): %s", reason, type(exc).__name__)

    # -- appointments -----------------------------------------------------
    def list_appointments(self, day: date | None = None) -> list[appt.Appointment]:
        items = self.store.list(day)
        self.audit_event(Category.CONSULTATION, "queue", "queue.list")
        return items

    def view_appointment(self, appointment_id: str) -> appt.Appointment:
        a = self.store.get(appointment_id)
        self.audit_event(Category.CONSULTATION, a.id, "appointment.view")
        return a

    def save_appointment(
        self, a: appt.Appointment, *, new: bool, in_person: bool = False
    ) -> appt.Appointment:
        """Validate, check eligibility, store and audit. A booking that fails
        the EVR criteria is refused with its reasons while video is still
        ahead (``eligibility.booking_problems``, the rule the dialog shows);
        ``in_person`` saves it as an in-person visit instead, recorded as such.
        Returns the appointment as stored."""
        from .domain import appointment as appt
        from .domain import eligibility

        if not new:
            # The status is the lifecycle's, not the form's: an edit never moves it.
            a = replace(a, status=self.store.get(a.id).status)
        if in_person:
            problems = appt.validate(a)
            if not new and appt.Status.IN_PERSON not in appt.MANUAL_MOVES[a.status]:
                problems.append(f"An appointment that is '{a.status.label}' cannot become an in-person visit.")
            a = replace(a, status=appt.Status.IN_PERSON)
        else:
            problems = eligibility.booking_problems(a)
        if problems:
            raise Refused(problems)
        if new:
            self.store.add(a)
            self.audit_event(Category.COLLECTION, a.id, "appointment.create")
        else:
            self.store.update(a)
            self.audit_event(Category.ALTERATION, a.id, "appointment.update")
        if in_person:
            self.audit_event(Category.ALTERATION, a.id, "appointment.converted_in_person")
        return a

    def change_status(self, appointment_id: str, status: appt.Status) -> appt.Appointment:
        """A move the officer makes by hand ("Set status"): only those in
        ``MANUAL_MOVES``; the rest follow what happens (``record``)."""
        from .domain.appointment import MANUAL_MOVES, Status

        current = self.store.get(appointment_id)
        if status not in MANUAL_MOVES[current.status]:
            raise Refused([f"An appointment that is '{current.status.label}' cannot be set to '{status.label}' "
                           "by hand."])
        changed = current.with_status(status)
        self.store.update(changed)
        action = (
            "appointment.converted_in_person" if status is Status.IN_PERSON else f"appointment.status.{status.value}"
        )
        self.audit_event(Category.ALTERATION, changed.id, action)
        return changed

    def convert_to_in_person(self, appointment_id: str) -> appt.Appointment:
        """The way out for a victim who cannot be seen over video: recorded as
        an in-person visit, after which no link or call is possible."""
        from .domain.appointment import Status

        return self.change_status(appointment_id, Status.IN_PERSON)

    def record(self, appointment_id: str, happening: appt.Happening) -> appt.Appointment | None:
        """Move the appointment's status with what happened (a link sent, the
        victim arriving or leaving, a call connecting or ending, a statement
        saved or signed). Returns the changed appointment, or None when the
        status stays as it is."""
        from .domain.appointment import status_after

        current = self.store.get(appointment_id)
        new = status_after(current.status, happening)
        if new is None:
            return None
        changed = current.with_status(new)
        self.store.update(changed)
        self.audit_event(Category.ALTERATION, changed.id, f"appointment.status.{new.value}")
        return changed

    def reconcile_presence(self) -> list[appt.Appointment]:
        """When no call machinery is running yet, nobody can be waiting or in a
        call: a status left 'Victim waiting' or 'In call' by a crash or a
        killed app would claim a connection that does not exist."""
        from .domain.appointment import Happening, Status

        moved = []
        for a in self.store.list(None):
            happening = {Status.VICTIM_WAITING: Happening.VICTIM_LEFT, Status.IN_CALL: Happening.CALL_ENDED}.get(
                a.status)
            if happening is not None and (changed := self.record(a.id, happening)) is not None:
                moved.append(changed)
        return moved

    # -- video links and calls ----------------------------------------------
    def send_link(self, appointment_id: str, issue_link: Callable[[appt.Appointment], str]) -> LinkSent:
        """The whole use case behind **Send link**: check the rules, issue the
        link (``issue_link``: the rendezvous; it revokes earlier links), compose
        the text, queue it, audit the disclosure and move the status."""
        from .domain import eligibility
        from .domain.appointment import Happening
        from .domain.sms import compose_for_appointment, to_e164

        current = self.store.get(appointment_id)
        _refuse(current, eligibility.link_refusals(current))
        link = issue_link(current)
        text = compose_for_appointment(current, self.officer.force, link).text
        number = to_e164(current.victim.mobile)
        sms_problem = None
        sms = self.sms_notifier()
        if sms is not None:  # force mode: the text goes by itself; the outbox if it cannot
            sent = sms.send(current.id, number, text)
            if sent.ok:
                self.audit_event(Category.DISCLOSURE, current.id, "appointment.link_sent")
                self.audit_event(Category.DISCLOSURE, current.id, "appointment.link_sent.sms")
                current = self.record(current.id, Happening.LINK_SENT) or current
                return LinkSent(current, link, text, sent_by_sms=True)
            sms_problem = sent.message
            self.audit_event(Category.DISCLOSURE, current.id, "appointment.link_sms_failed")
        result = self.outbox.send(current.id, number, text)
        if not result.ok:
            raise Refused([m for m in (sms_problem, result.message) if m])
        self.audit_event(Category.DISCLOSURE, current.id, "appointment.link_sent")
        current = self.record(current.id, Happening.LINK_SENT) or current
        return LinkSent(current, link, text, sms_problem=sms_problem)

    def officer_token(self, audience: str) -> str:
        """Force mode: a short-lived token that names this officer to the force's
        rendezvous (``audience``: its address), signed here with the officer's key
        from the vault; the media process that connects gets only the token.
        Raises ``Refused`` when the vault's key or certificate cannot be used."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from .rendezvous.officer_token import make_officer_token

        try:
            cert = x509.load_pem_x509_certificate(self.vault.header.certificate_pem.encode("ascii"))
            key = serialization.load_pem_private_key(self.vault.signing_key_pem.encode("ascii"), password=None)
            return make_officer_token(cert, key, audience)
        except (ValueError, TypeError, UnicodeError) as exc:
            raise Refused(["This officer's certificate or key cannot sign in to the force's video service "
                           f"({type(exc).__name__}). Contact IT."]) from None

    def sms_notifier(self) -> Notifier | None:
        """Force mode's GOV.UK Notify sender (``settings.json``), or None: the
        outbox only. Settings that cannot be used are said, as a failed send
        would be, and the outbox takes the text."""
        if not self.settings.notify_configured:
            return None
        if self._sms is None:
            from .notify.base import failed
            from .notify.govuk import GovukNotifier, NotifyConfigError

            try:
                self._sms = GovukNotifier.from_key_file(
                    Path(self.settings.notify_key_file), self.settings.notify_template_id, self.settings.notify_url)
            except NotifyConfigError as exc:
                problem = f"The force's SMS service is not set up properly ({exc}): tell IT. The text is in the outbox."

                class _Refusing:
                    def send(self, appointment_id: str, to_e164: str, text: str) -> SendResult:
                        return failed(problem)

                self._sms = _Refusing()
        return self._sms

    def check_call(self, appointment_id: str) -> appt.Appointment:
        """The appointment, if a call may start for it now (else ``Refused``)."""
        from .domain import eligibility

        current = self.store.get(appointment_id)
        _refuse(current, eligibility.call_refusals(current))
        return current

    # -- the call's recording ---------------------------------------------------
    def recording_plan(self, appointment_id: str) -> RecordingPlan:
        """A new recording folder for the call and the unlocked vault's public
        recipients (the officer's and the force escrow's). Nothing is audited
        yet: ``record_recording_started`` does, once the media process records."""
        from .fsutil import ensure_private_dir

        if self.recordings is None:
            raise Refused(["This profile has no folder for recordings."])
        current = self.store.get(appointment_id)
        ensure_private_dir(self.recordings / current.id)  # owner-only, as the recording's own folder
        header = self.vault.header
        return RecordingPlan(current.id, self.recordings / current.id / uuid.uuid4().hex,
                             header.age_recipient, header.escrow_recipient)

    def record_recording_started(self, appointment_id: str) -> None:
        from .domain.recording import START_ACTION

        self.audit_event(Category.COLLECTION, appointment_id, START_ACTION)

    def record_recording_failed(self, appointment_id: str) -> None:
        """Recording could not start or stopped (the reason is told to the officer, not logged: it may name paths)."""
        from .domain.recording import FAILED_ACTION

        self.audit_event(Category.COLLECTION, appointment_id, FAILED_ACTION)

    def record_recording_choice(self, appointment_id: str, choice: RecordingChoice) -> None:
        """What the officer chose when recording could not run (``domain.recording``)."""
        self.audit_event(Category.COLLECTION, appointment_id, choice.audit_action)

    def record_recording_ended(self, appointment_id: str, result: RecordingOutcome) -> None:
        """The end of a recording: the manifest's hash, start, end and duration (``domain.recording.ended_actions``)."""
        from .domain.recording import ended_actions

        for action in ended_actions(result):
            self.audit_event(Category.COLLECTION, appointment_id, action)

    # -- stills (exhibits taken during the call) -------------------------------------
    @property
    def stills(self) -> SqliteStillRepository:
        if self._stills is None:
            from .store.stills import SqliteStillRepository

            self._stills = SqliteStillRepository(self.store)  # type: ignore[arg-type]
        return self._stills

    def begin_still(self, appointment_id: str) -> ExhibitReference:
        """The exhibit reference for a still about to be taken (``domain.exhibit``):
        refused unless a call with the appointment is in progress, or when the
        officer's name gives no initials; the number is spent as it is given."""
        from .domain.exhibit import ExhibitReference, NoInitials, initials, still_refusals

        current = self.store.get(appointment_id)
        refusals = still_refusals(current.status)
        if refusals:
            raise Refused(refusals)
        try:
            letters = initials(self.officer.name)
        except NoInitials as exc:
            raise Refused([str(exc)]) from None
        return ExhibitReference(letters, self.stills.next_exhibit_number(self.officer.collar))

    def record_still(self, appointment_id: str, exhibit: ExhibitReference, result: Mapping[str, Any]) -> StillRecord:
        """A still the media process took (``capture_still``'s checked result): recorded
        against the appointment and audited (``domain.exhibit.captured_actions``)."""
        from .domain.exhibit import captured_actions
        from .store.stills import StillRecord, new_still_id

        record = StillRecord(
            id=new_still_id(), appointment_id=appointment_id, officer=self.officer.collar,
            exhibit_number=exhibit.number, exhibit=str(exhibit), taken_at=str(result["taken_at"]),
            file=str(result["file"]), ciphertext_sha256=str(result["ciphertext_sha256"]),
            ciphertext_size=int(result["ciphertext_size"]), plaintext_sha256=str(result["plaintext_sha256"]),
            plaintext_size=int(result["plaintext_size"]), width=int(result["width"]), height=int(result["height"]),
            at_s=None if result["at_s"] is None else float(result["at_s"]),
            recording_state=str(result["recording_state"]))
        self.stills.add(record)
        for action in captured_actions(exhibit.number, record.ciphertext_sha256, record.at_s, record.recording_state):
            self.audit_event(Category.COLLECTION, appointment_id, action)
        return record

    def record_still_failed(self, appointment_id: str, exhibit: ExhibitReference | None, code: str) -> None:
        """A still that was not taken: its number (spent) and why, as codes (``domain.exhibit.failed_actions``)."""
        from .domain.exhibit import failed_actions

        for action in failed_actions(exhibit.number if exhibit is not None else None, code):
            self.audit_event(Category.COLLECTION, appointment_id, action)

    def list_stills(self, appointment_id: str) -> list[StillRecord]:
        """The appointment's stills, in the order taken."""
        return self.stills.list_for_appointment(appointment_id)

    def recover_recordings(self) -> list[RecoveryResult]:
        """At unlock: every recording the app did not close (killed, crashed)
        gets its unfinalised manifest, with the authenticated prefix of the
        open segment, and is audited. Needs the officer's identity, which only
        this process holds."""
        if self.recordings is None:
            return []
        from .domain.recording import recovered_actions
        from .recording.manifest import read_start
        from .recording.recover import find_unfinished, recover
        from .vault.age import X25519Identity

        folders = find_unfinished(self.recordings)
        if not folders:
            return []
        identity = X25519Identity.from_string(self.vault.age_identity)
        header = self.vault.header
        results = []
        for folder in folders:
            try:
                # recordings/<appointment id>/<recording id>/: audited against the appointment
                appointment_id = str(read_start(folder).get("session") or folder.parent.name)
                result = recover(folder, [identity], recipients=[header.age_recipient, header.escrow_recipient])
                for action in recovered_actions(result.manifest_sha256):
                    self.audit_event(Category.COLLECTION, appointment_id, action)
            except Exception:  # noqa: BLE001 - one damaged folder must not stop the others
                log.exception("a recording could not be recovered")
                continue
            results.append(result)
        return results

    def working_copy_jobs(self, appointment_id: str) -> list[tuple[PlaybackPlan, list[str]]]:
        """The appointment's finalised recordings that have no working copy yet
        (``recording/working_copy.py``), each with its segments' file keys and the
        two public recipients the copy is encrypted to (never an identity: it is
        made in the media process). Audited as a combination of the recording."""
        from .evidence.case import WORKING_COPY
        from .recording.library import playback_keys
        from .recording.manifest import ManifestError
        from .vault.age import AgeError, X25519Identity

        current = self.store.get(appointment_id)
        if self.recordings is None or not (self.recordings / current.id).is_dir():
            return []
        identity = X25519Identity.from_string(self.vault.age_identity)
        recipients = [self.vault.header.age_recipient, self.vault.header.escrow_recipient]
        jobs = []
        for folder in sorted((self.recordings / current.id).iterdir()):
            if not folder.is_dir() or folder.is_symlink() or (folder / WORKING_COPY).is_file():
                continue
            try:
                manifest, segments = playback_keys(folder, [identity])
            except (ManifestError, AgeError, OSError, ValueError):
                continue  # damaged: exported as it is, without a working copy
            if not manifest.get("finalised") or not segments:
                continue
            jobs.append((PlaybackPlan(current.id, folder.name, folder, True, "", tuple(segments)), recipients))
            self.audit_event(Category.COMBINATION, current.id, "recording.working_copy")
        return jobs

    def export_case(
        self, appointment_id: str, destination: str | os.PathLike[str], *,
        progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None,
        decrypted_reason: str | None = None, as_zip: bool = False,
    ) -> Path:
        """The case's evidence bundle in ``destination`` (evidence/bundle.py), a
        folder or, with ``as_zip``, one ``.zip`` file holding it:
        the signed statements and VPS, the restricted rear pages apart, the
        recordings and stills still encrypted, the exhibit list, the case's
        audit entries with inclusion proofs against a checkpoint signed now, a
        manifest signed (CMS) with the officer's key, SHA256SUMS. Audited as a
        disclosure. ``decrypted_reason``: also a decrypted copy of each original
        recording, with the officer's reason in the manifest, only where the
        settings allow it (``allow_decrypted_export``; audited). Raises ``Refused``
        when there is nothing signed to export, or a decrypted copy is not allowed
        or has no reason, ``evidence.bundle.ExportError`` (nothing left behind)
        when it cannot be written."""
        from .evidence.bundle import BundleFile, cms_signer, readme, write_bundle
        from .evidence.case import SignedStatement, Still, gather
        from .vault.age import X25519Identity

        current = self.store.get(appointment_id)
        if decrypted_reason is not None:
            if not self.settings.allow_decrypted_export:
                raise Refused(["This force's settings do not allow a decrypted copy of a recording in an export. "
                               "The recordings go in encrypted for the evidence office to open."])
            decrypted_reason = " ".join(decrypted_reason.split())[:500]
            if len(decrypted_reason) < 5:
                raise Refused(["Give the reason for a decrypted copy (it goes in the bundle's manifest)."])
        statements = []
        for summary in self.statements.repo.list_for_appointment(current.id):
            signed = self.statements.repo.signed(summary.id)
            if signed is None:
                continue
            rear = self.statements.repo.signed_rear_page(summary.id)
            statements.append(SignedStatement(summary.id, str(summary.statement_type), signed[0], signed[1],
                                              rear[1] if rear is not None else None))
        folders = []
        if self.recordings is not None and (self.recordings / current.id).is_dir():
            folders = sorted(p for p in (self.recordings / current.id).iterdir()
                             if p.is_dir() and not p.is_symlink() and (p / "manifest.json.age").is_file())
        stills = [Still(r.id, r.exhibit, r.taken_at, r.at_s, Path(r.file), r.ciphertext_sha256, r.plaintext_sha256,
                        r.width, r.height) for r in self.list_stills(current.id)]
        if not statements and not folders and not stills:
            raise Refused(["There is nothing to export for this appointment yet: no signed statement, "
                           "recording or still."])
        # The checkpoint the extract's proofs point to, signed now (and so every export is also a signed checkpoint).
        checkpoint = self.sign_audit_checkpoint("export")
        from .audit.signed import log_leaves

        entries = self.audit.entries()
        related = {current.id, *(s.id for s in statements), *(p.name for p in folders), *(s.id for s in stills)}
        material = gather(
            appointment_id=current.id, urn=current.urn, officer=self.officer.collar, force=self.officer.force,
            statements=statements, recordings=folders, identities=[X25519Identity.from_string(self.vault.age_identity)],
            stills=stills, audit_entries=entries, audit_leaves=log_leaves(self.audit.folder, checkpoint["size"]),
            signed_checkpoint=checkpoint, certificate_pem=self.vault.header.certificate_pem,
            ca_pem=self.vault.header.force_ca_pem,
            sign=cms_signer(self.vault.header.certificate_pem, self.vault.signing_key_pem, self.vault.chain_pem),
            related_ids=related,
        )
        if decrypted_reason is not None:
            from .recording.manifest import iter_recording

            identities = [X25519Identity.from_string(self.vault.age_identity)]
            def plaintext(folder: Path) -> Callable[[], Iterable[bytes]]:
                return lambda: iter_recording(folder, identities)

            for folder in folders:
                material.files.append(BundleFile(
                    f"recordings/{folder.name}/decrypted-original.mkv", "decrypted-copy", chunks=plaintext(folder),
                    size_hint=sum(p.stat().st_size for p in folder.glob("seg-*.age"))))
            material.sections["decrypted_copy"] = {"reason": decrypted_reason, "by": self.officer.collar}
            self.audit_event(Category.DISCLOSURE, current.id, "evidence.export_decrypted_copy")
        when = datetime.now(timezone.utc)
        material.files.insert(0, BundleFile("README.txt", "readme", data=readme(material, when)))
        folder = write_bundle(material, destination, progress=progress, cancelled=cancelled, now=when, as_zip=as_zip)
        self.audit_event(Category.DISCLOSURE, current.id, "evidence.export")
        from .domain.appointment import Happening

        self.record(current.id, Happening.EXPORTED)  # a signed appointment now says "Exported"
        return folder

    def remove_exported_recordings(self, appointment_id: str, bundle: str | os.PathLike[str]) -> int:
        """After an export that verifies: remove the laptop's copy of the
        appointment's recordings (segments, manifest, stills, working copy), only
        where the settings allow it (``allow_remove_after_export``) and only for a
        recording whose every segment the bundle holds with the same hash (checked
        again here, file by file). Audited as an erasure, per recording. Returns
        how many were removed. ``bundle``: the folder, or the zip, the export made."""
        if not self.settings.allow_remove_after_export:
            raise Refused(["This force's settings keep the laptop's copy of recordings after an export."])
        from .evidence.verify import BundleReport, open_bundle

        current = self.store.get(appointment_id)
        opened = open_bundle(bundle, BundleReport(str(bundle)))  # a folder, or a zip read in place
        if opened is None:
            raise Refused(["The bundle cannot be read, so nothing was removed."])
        try:
            return self._remove_exported(current, opened)
        finally:
            opened.close()

    def _remove_exported(self, current: appt.Appointment, src: BundleFiles) -> int:
        import json
        import shutil

        from .evidence.names import safe_id
        from .fsutil import sha256_file, sha256_of
        from .recording.manifest import MANIFEST_FILE, START_FILE

        def bundle_sha(rel: str) -> str:  # the bundle's bytes as they are, "" if missing or damaged
            try:
                with src.open(rel) as f:
                    return sha256_of(f)[0]
            except (OSError, ValueError):
                return ""

        try:
            manifest = json.loads(src.read("manifest.json"))
        except (OSError, ValueError):
            raise Refused(["The bundle cannot be read, so nothing was removed."]) from None
        if manifest.get("case", {}).get("appointment") != current.id:
            raise Refused(["That bundle is not this appointment's, so nothing was removed."])
        removed = 0
        for rec in manifest.get("recordings", []):
            folder = (self.recordings / current.id / str(rec.get("id", ""))) if self.recordings else None
            if folder is None or not folder.is_dir() or folder.is_symlink():
                continue
            # The master as the laptop holds it (every segment, its encrypted manifest, its start
            # file) must be in the bundle byte for byte: compared with the laptop's own files, not
            # with what the bundle says of itself.
            rid = safe_id(folder.name)
            masters = sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink()
                             and (p.name.startswith("seg-") or p.name in (MANIFEST_FILE, START_FILE)))
            wanted = [(f"recordings/{rid}/{p.name}", sha256_file(p)) for p in masters]
            stills = {s.id: s for s in self.list_stills(current.id) if Path(s.file).parent.parent == folder}
            exhibits = {ex.get("id"): ex for ex in manifest.get("exhibits", [])}
            if any(still_id not in exhibits for still_id in stills):
                raise Refused(["The bundle does not hold every still of that recording; nothing was removed."])
            wanted += [(exhibits[still_id]["path"], still.ciphertext_sha256) for still_id, still in stills.items()]
            for rel, expected in wanted:
                if bundle_sha(rel) != expected:
                    raise Refused([f"The bundle's copy of recording {rec.get('id')} does not match; "
                                   "nothing was removed."])
            shutil.rmtree(folder)
            self.audit_event(Category.ERASURE, current.id, f"recording.removed_after_export.{folder.name.lower()[:30]}")
            removed += 1
        return removed

    def list_recordings(self, appointment_id: str) -> list[RecordingSummary]:
        """The appointment's recordings (start, duration, size, state, stills),
        each manifest decrypted and checked against its segments: a folder that
        does not check is listed as damaged, with the reason. Audited as a view
        of the appointment's recordings (it reads their manifests)."""
        from .recording.library import list_recordings
        from .vault.age import X25519Identity

        current = self.store.get(appointment_id)
        if self.recordings is None:
            return []
        identity = X25519Identity.from_string(self.vault.age_identity)
        items = list_recordings(self.recordings / current.id, [identity])
        self.audit_event(Category.CONSULTATION, current.id, "recording.list")
        return items

    def open_recording(self, appointment_id: str, recording_id: str) -> PlaybackPlan:
        """Everything the media process needs to play one recording: the
        segment files and their file keys (each opens that one file, nothing
        else), never the officer's identity. Audited as a view
        (``recording.viewed``, then ``recording.viewed.<recording id>``) before
        any key leaves this method."""
        from .domain.recording import VIEWED_ACTION
        from .recording.library import playback_keys
        from .vault.age import X25519Identity

        current = self.store.get(appointment_id)
        if self.recordings is None or not recording_id.isalnum() or not recording_id.isascii():
            raise Refused(["There is no such recording."])
        folder = self.recordings / current.id / recording_id
        if not folder.is_dir():
            raise Refused(["There is no such recording."])
        identity = X25519Identity.from_string(self.vault.age_identity)
        manifest, segments = playback_keys(folder, [identity])
        self.audit_event(Category.CONSULTATION, current.id, VIEWED_ACTION)
        self.audit_event(Category.CONSULTATION, current.id, f"{VIEWED_ACTION}.{recording_id.lower()[:40]}")
        return PlaybackPlan(current.id, recording_id, folder, bool(manifest.get("finalised")),
                            str(manifest.get("reason") or ""), tuple(segments))

    # -- the victim's safety signals -------------------------------------------
    @property
    def safety(self) -> SqliteSafety:
        if self._safety is None:
            from .store.safety import SqliteSafety

            self._safety = SqliteSafety(self.store)  # type: ignore[arg-type]
        return self._safety

    def record_safety_signal(
        self, appointment_id: str, signal: Signal, *, held: bool = False, at: datetime | None = None
    ) -> SafetyAlert:
        """A safety signal from the victim's page ("can't talk freely", quick exit),
        at whatever stage: stored against the appointment until acknowledged, and
        audited. The stage comes from the appointment's status as it is now;
        ``at``: when the app heard it (now, unless it waited for an unlock)."""
        from .domain.safety import Signal, stage_for

        a = self.store.get(appointment_id)  # NotFound for an appointment this officer does not have
        alert = self.safety.add(a.id, Signal(signal), stage_for(a.status), at or datetime.now(timezone.utc), held)
        self.audit_event(Category.COLLECTION, a.id, alert.audit_action)
        return alert

    def safety_alerts(self, *, open_only: bool = True) -> list[SafetyAlert]:
        return self.safety.alerts(open_only=open_only)

    def acknowledge_safety(self, appointment_id: str) -> list[SafetyAlert]:
        """The officer has seen the appointment's open safety signals: each is
        marked acknowledged (by whom, when) and audited. Raises ``NotFound``
        when there is none open (acknowledged already, on another screen)."""
        done = self.safety.acknowledge(appointment_id, self.officer.collar, datetime.now(timezone.utc))
        for alert in done:
            self.audit_event(Category.ALTERATION, appointment_id, alert.acknowledged_action)
        return done

    @property
    def outbox(self) -> OutboxNotifier:
        """The texts waiting to be sent (the embedded notifier)."""
        if self._outbox is None:
            from .notify.outbox import OutboxNotifier

            self._outbox = OutboxNotifier(self.store)  # type: ignore[arg-type]
        return self._outbox

    def list_outbox(self) -> list[OutboxMessage]:
        """Every outbox message, newest first (an audited view: they hold numbers)."""
        items = self.outbox.list(open_only=False)
        self.audit_event(Category.CONSULTATION, "outbox", "outbox.view")
        return items

    def lock(self) -> None:
        self.audit_event(Category.CONSULTATION, "vault", "session.lock")
        self._sign_quietly("lock")  # before the key is dropped
        self.store.close()
        self.vault.close()
