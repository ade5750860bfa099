"""The statement screen: the panel, autosave, history, signing and copies.

Autosave runs a few seconds after the last edit and whenever focus leaves a
field; the store keeps a new version only when the content differs. Signing
checks completeness first (the panel shows why it is blocked), counts the
statement's pages on the worker so the pad can show the witness the
declaration they sign, takes the witness's signature, then renders, signs and
verifies in the background. A signed statement is shown read-only with its
verification status; a change after signing is a new version with a reason,
never an edit of the signed one.

In a video call the witness is not at the laptop: "Sign on the phone…" sends
the final text to the victim's phone (``StatementService.phone_review``, then
the call's ``PhoneLink``); the statement is locked until the phone answers.
A signature from the phone is signed with ``sign_remote`` (which refuses if
the text is not the one the victim signed); a decline, a withdrawal or the
call ending unlocks it again (docs/victim-page.md, "Signing on the phone").

A signed statement, and separately its restricted rear page, can be saved as
a PDF where the officer chooses: the file dialog runs here, the checks, the
atomic write and the disclosure audit in ``StatementService.save_pdf_copy`` on
the worker; then the app offers to open the copy in the system's PDF viewer.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QStandardPaths, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..domain.statement_doc import StatementContent, StatementVersion
from .signature_pad import SignaturePadDialog
from .statement_panel import StatementPanel
from .widgets import FlowLayout, guard_wheels, keep_on_screen

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..statement.service import OpenedStatement, PhoneReview, SigningPreview

AUTOSAVE_MS = 3000


def open_in_viewer(path: Path) -> bool:
    """The system's PDF viewer (the default opener; tests pass their own)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def _file_name(urn: object, rear_page: bool) -> str:
    """A suggested file name: the form and the URN (a case reference, never the witness's name)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", urn if isinstance(urn, str) else "").strip("-")
    name = f"MG11 {safe}" if safe else "MG11"
    return f"{name} restricted rear page.pdf" if rear_page else f"{name}.pdf"


class PhoneLink(Protocol):
    """The call's way to the victim's phone (given by the call controller while a
    call with this statement's appointment is on; futures complete on another thread)."""

    def send(self, review: PhoneReview) -> Future: ...

    def withdraw(self, review_id: str) -> object: ...


class StatementScreen(QWidget):
    """Shows one statement. The owner supplies ``run(fn, on_success, on_failure)``
    that executes ``fn`` on the worker thread (see ``operations.Operation``)."""

    back_requested = Signal()
    saved = Signal(object)  # StatementVersion
    _phone_sent = Signal(str, object)  # (review id, exception or None): from the engine's thread, queued

    def __init__(
        self, panel: StatementPanel, run: Callable[..., None], service: Callable[[], Any],
        parent: QWidget | None = None, *, open_file: Callable[[Path], object] = open_in_viewer,
    ):
        super().__init__(parent)
        self.open_file = open_file  # shows a saved copy; tests must not launch a real viewer
        self.setObjectName("statementScreen")
        self.panel = panel
        self._run = run
        self._service = service  # returns the session's StatementService (or None when locked)
        self.opened: OpenedStatement | None = None
        self._dirty = False
        self._saving = False
        self.last_saved: StatementContent | None = None

        self.title = QLabel(self)
        self.title.setObjectName("statementTitle")
        self.title.setStyleSheet("font-size: 14pt; font-weight: 600;")
        self.status = QLabel(self)
        self.status.setObjectName("statementStatus")
        self.status.setWordWrap(True)
        self.back_button = QPushButton("← Queue", self)
        self.back_button.setObjectName("backToQueue")
        self.history_button = QPushButton("&History…", self)
        self.history_button.setObjectName("historyButton")
        self.sign_button = QPushButton("&Sign…", self)
        self.sign_button.setObjectName("signButton")
        # Only in a call: the witness reads and signs on their own phone.
        self.phone_button = QPushButton("Sign on the p&hone…", self)
        self.phone_button.setObjectName("phoneSignButton")
        self.phone_button.setToolTip("Send the final statement to the victim's phone: they read it, confirm the "
                                     "declaration and sign with a finger.")
        self.phone_button.hide()
        self.phone: PhoneLink | None = None
        self._phone_review: PhoneReview | None = None  # sent, waiting for the phone's answer
        self.amend_button = QPushButton("&New version…", self)
        self.amend_button.setObjectName("amendButton")
        self.amend_button.setToolTip("A signed statement is never edited: make a new version with a reason.")
        self.save_pdf_button = QPushButton("Save &PDF…", self)
        self.save_pdf_button.setObjectName("savePdfButton")
        self.save_pdf_button.setToolTip("Save the signed statement as a PDF file (recorded as a disclosure).")
        self.save_rear_button = QPushButton("Save &rear page…", self)
        self.save_rear_button.setObjectName("saveRearPageButton")
        self.save_rear_button.setToolTip(
            "Save the signed restricted rear page (the witness's contact details) as its own PDF: "
            "for police and prosecution only. Recorded as a disclosure."
        )
        self.message_box: QMessageBox | None = None  # the open question or notice, if any
        # A flow, not a row: docked beside the video (~450 px on a 1366 px screen) the
        # buttons wrap onto a second line instead of being squeezed until their text is cut.
        bar = FlowLayout(expand=self.title)
        bar.addWidget(self.back_button)
        bar.addWidget(self.title)
        bar.addWidget(self.history_button)
        bar.addWidget(self.save_pdf_button)
        bar.addWidget(self.save_rear_button)
        bar.addWidget(self.amend_button)
        bar.addWidget(self.phone_button)
        bar.addWidget(self.sign_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(panel, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_MS)
        self._timer.timeout.connect(self.save_now)
        panel.changed.connect(self._changed)
        panel.focus_left.connect(self.save_now)
        self.back_button.clicked.connect(self._back)
        self.history_button.clicked.connect(self.show_history)
        self.sign_button.clicked.connect(self.start_signing)
        self.phone_button.clicked.connect(self.phone_button_clicked)
        self._phone_sent.connect(self._phone_send_result, Qt.ConnectionType.QueuedConnection)
        self.amend_button.clicked.connect(self.start_amendment)
        self.save_pdf_button.clicked.connect(lambda: self.save_pdf(rear_page=False))
        self.save_rear_button.clicked.connect(lambda: self.save_pdf(rear_page=True))
        self._amend_reason = ""

    # -- opening ----------------------------------------------------------------
    def show_statement(self, opened: OpenedStatement) -> None:
        if self.opened is None or self.opened.id != opened.id:
            self._phone_review = None  # another statement: the one on the phone is not this one
        self.opened = opened
        self._dirty = False
        self._amend_reason = ""
        self.panel.set_content(opened.content)
        self.panel.set_stills(opened.stills)
        self.last_saved = opened.content if opened.version_number else None
        self.title.setText(opened.title)
        self._show_state()

    @property
    def is_signed(self) -> bool:
        return self.opened is not None and self.opened.signed is not None and not self._amend_reason

    def _show_state(self) -> None:
        o = self.opened
        if o is None:
            return
        signed = self.is_signed
        waiting = self._phone_review is not None
        self.panel.set_read_only(signed or waiting)
        self.sign_button.setEnabled(not signed and not waiting)
        self.phone_button.setVisible(self.phone is not None and not signed)
        self.phone_button.setText("Withdraw from the p&hone" if waiting else "Sign on the p&hone…")
        self.amend_button.setVisible(signed)
        self.save_pdf_button.setVisible(signed)
        self.save_rear_button.setVisible(signed and o.rear_page is not None)
        if signed:
            assert o.signed is not None
            text = f"Signed (version {o.signed.version}). {o.signed.verification}"
            valid = o.signed.valid
            if o.rear_page is not None:
                rear = "signature valid" if o.rear_page.valid else o.rear_page.verification
                text += f"\nRestricted rear page (a separate signed PDF): {rear}"
                valid = valid and o.rear_page.valid
            self.status.setText(text)
            self.status.setStyleSheet("color: #1b5e20;" if valid else "color: #a4161a;")
        elif self._amend_reason:
            self.status.setText(f"New version after signing. Reason: {self._amend_reason}")
            self.status.setStyleSheet("color: #8a5a00;")
        else:
            v = o.version_number
            self.status.setText(f"Draft, version {v}." if v else "New draft: not saved yet.")
            self.status.setStyleSheet("")

    def clear(self) -> None:
        """Forget the statement on screen (on lock): no victim data stays shown."""
        self._timer.stop()
        self._phone_review = None
        self._close_message()
        self.opened = None
        self._dirty = False
        self._amend_reason = ""
        self.last_saved = None
        self.panel.set_content(StatementContent())
        self.panel.set_stills(())
        self.title.clear()
        self.status.clear()

    # -- autosave ----------------------------------------------------------------
    def _changed(self) -> None:
        if self.is_signed:
            return
        self._dirty = True
        self._timer.start()

    def save_now(self) -> None:
        """Save if anything changed since the last save. Safe to call often."""
        if self.opened is None or self.is_signed or not self._dirty or self._saving:
            return
        service = self._service()
        if service is None:
            return
        content = self.panel.content()
        statement_id, reason = self.opened.id, self._amend_reason
        self._dirty = False
        self._saving = True
        self._timer.stop()

        def done(version: StatementVersion | None) -> None:
            self._saving = False
            if version is not None and self.opened is not None and self.opened.id == version.statement_id:
                self.opened = self.opened.with_version(version.number)
                self.last_saved = version.content
                self.saved.emit(version)
                self._show_state()
                self.status.setText(self.status.text() + f" Saved {version.saved_at:%H:%M:%S}.")
            if self._dirty:
                self._timer.start()

        def failed(exc: BaseException) -> None:
            self._saving = False
            self._dirty = True  # nothing lost: the text is still in the panel; try again
            self.status.setText(f"Not saved: {exc}. Your text is still here; it will be saved again.")
            self.status.setStyleSheet("color: #a4161a;")
            self._timer.start()

        self._run(lambda: service.save(statement_id, content, reason), done, failed)

    def _back(self) -> None:
        self.save_now()
        self.back_requested.emit()

    # -- history -----------------------------------------------------------------
    def show_history(self) -> None:
        if self.opened is None or self._service() is None:
            return
        self.save_now()
        service, statement_id = self._service(), self.opened.id
        self._run(
            lambda: service.versions(statement_id),
            lambda versions: HistoryDialog(
                versions, service.field_labels(), self._run, self,
                prompt_labels=prompt_labels(self.panel.templates), date_fields=self.panel.date_fields(),
            ).open(),
            self._fail,
        )

    def _fail(self, exc: BaseException) -> None:
        self.status.setText(str(exc))
        self.status.setStyleSheet("color: #a4161a;")

    # -- signing -----------------------------------------------------------------
    def start_signing(self) -> None:
        if self.opened is None:
            return
        missing = self.panel.missing_items()
        if missing:
            # One line here; the full list scrolls in the panel's own list below.
            more = f" (and {len(missing) - 1} more, listed below)" if len(missing) > 1 else ""
            self.status.setText(f"Cannot sign yet: {missing[0]}{more}")
            self.status.setStyleSheet("color: #a4161a;")
            self.panel.missing_list.scrollToTop()
            return
        service = self._service()
        if service is None:
            return
        content, statement_id = self.panel.content(), self.opened.id
        self.sign_button.setEnabled(False)
        self.status.setText("Preparing the declaration: counting the statement's pages…")
        self.status.setStyleSheet("")

        def ready(preview: SigningPreview) -> None:
            self.sign_button.setEnabled(not self.is_signed)
            if self.opened is None or self.opened.id != statement_id:
                return
            self._show_state()
            dialog = SignaturePadDialog(content.witness_name(), preview.declaration, self)
            dialog.accepted.connect(lambda: self._sign(dialog.signature, preview.pages))
            dialog.open()
            self.signature_dialog = dialog

        def failed(exc: BaseException) -> None:
            self.sign_button.setEnabled(not self.is_signed)
            self._fail(exc)

        self._run(lambda: service.signing_preview(content), ready, failed)

    def _sign(self, signature: Any, declared_pages: int | None = None) -> None:
        service = self._service()
        if service is None or self.opened is None or signature is None:
            return
        content, statement_id, reason = self.panel.content(), self.opened.id, self._amend_reason
        self.sign_button.setEnabled(False)
        self.status.setText("Signing: rendering the PDF and applying your digital signature…")
        self.status.setStyleSheet("")

        def done(opened: OpenedStatement) -> None:
            self._amend_reason = ""
            self._dirty = False
            self.show_statement(opened)

        def failed(exc: BaseException) -> None:
            self.sign_button.setEnabled(True)
            self._fail(exc)

        self._run(lambda: service.sign(statement_id, content, signature, reason, declared_pages), done, failed)

    # -- signing on the victim's phone --------------------------------------------------
    def set_phone_link(self, link: PhoneLink | None) -> None:
        """The call controller: a link while a call with this statement's appointment
        is on, None when it ends (a statement still out on the phone is unlocked)."""
        self.phone = link
        if link is None and self._phone_review is not None:
            self._phone_review = None
            self._show_state()
            self._fail(ValueError("The call ended before the victim signed on their phone. The statement is "
                                  "unlocked; it was not signed."))
            return
        self._show_state()

    def phone_button_clicked(self) -> None:
        if self._phone_review is not None:
            self.withdraw_from_phone()
        else:
            self.start_phone_signing()

    def start_phone_signing(self) -> None:
        """Check the statement and count its pages on the worker (``phone_review``),
        then send it to the phone and lock it until the phone answers."""
        link = self.phone
        if self.opened is None or link is None or self.is_signed:
            return
        missing = self.panel.missing_items()
        if missing:
            more = f" (and {len(missing) - 1} more, listed below)" if len(missing) > 1 else ""
            self._fail(ValueError(f"Cannot sign yet: {missing[0]}{more}"))
            self.panel.missing_list.scrollToTop()
            return
        service = self._service()
        if service is None:
            return
        self.save_now()
        content, statement_id = self.panel.content(), self.opened.id
        self.phone_button.setEnabled(False)
        self.status.setText("Preparing the statement for the victim's phone: counting its pages…")
        self.status.setStyleSheet("")

        def ready(review: PhoneReview) -> None:
            self.phone_button.setEnabled(True)
            if self.opened is None or self.opened.id != statement_id or self.phone is not link:
                return
            if self.panel.content() != content:  # typed into while the pages were counted: not what was checked
                self._fail(ValueError("The statement changed while it was being prepared: send it again."))
                return
            self._phone_review = review
            self._show_state()
            self.status.setText("Sending the statement to the victim's phone…")
            try:
                future = link.send(review)
            except Exception as exc:  # noqa: BLE001 - refused before it left: as a failed send
                self._phone_send_result(review.id, exc)
                return
            future.add_done_callback(lambda f: self._relay_phone_sent(review.id, f))

        def failed(exc: BaseException) -> None:
            self.phone_button.setEnabled(True)
            self._fail(exc)

        self._run(lambda: service.phone_review(statement_id, content), ready, failed)

    def _relay_phone_sent(self, review_id: str, future: Any) -> None:
        """On the engine's (or channel's) thread: hand the outcome to the GUI thread."""
        error = ConnectionError("cancelled") if future.cancelled() else future.exception()
        try:
            self._phone_sent.emit(review_id, error)
        except RuntimeError:  # the screen is gone
            pass

    def _phone_send_result(self, review_id: str, error: BaseException | None) -> None:
        review = self._phone_review
        if review is None or review.id != review_id:
            return
        if error is not None:
            self._phone_review = None
            self._show_state()
            self._fail(ValueError(f"The statement was not sent to the victim's phone ({error}). It is unlocked; "
                                  "try again in a moment."))
            return
        self.status.setText(
            f"On the victim's phone ({review.pages} page(s)): they are reading it. The statement is locked until "
            "they sign or decline; to change it, withdraw it from the phone.")
        self.status.setStyleSheet("color: #1d4f91;")

    def withdraw_from_phone(self) -> None:
        review, link = self._phone_review, self.phone
        if review is None:
            return
        self._phone_review = None
        if link is not None:
            try:
                link.withdraw(review.id)
            except Exception:  # noqa: BLE001 - the phone may be gone; its answer is refused anyway
                pass
        self._show_state()
        self.status.setText("Withdrawn from the victim's phone: the statement is unlocked.")

    def phone_event(self, e: Any) -> None:
        """``StatementSigned``, ``StatementDeclined`` or the engine's ``Error`` about the
        phone's answer (GUI thread, from the call controller)."""
        review = self._phone_review
        if review is None:
            return
        kind = type(e).__name__
        if kind == "Error":
            self._fail(ValueError(getattr(e, "message", "")))
            return
        if getattr(e, "review_id", None) != review.id:
            return  # an answer to a review already withdrawn
        if kind == "StatementDeclined":
            self._phone_review = None
            self._show_state()
            self.status.setText("The victim chose not to sign on their phone. The statement is unlocked; "
                                "nothing was signed.")
            self.status.setStyleSheet("color: #8a5a00;")
            return
        if kind == "StatementSigned":
            self._sign_from_phone(e, review)

    def _sign_from_phone(self, e: Any, review: PhoneReview) -> None:
        from ..domain.phone_signing import PhoneSignature

        service = self._service()
        if service is None or self.opened is None:
            return
        signature = PhoneSignature(e.review_id, e.sha256, e.strokes, e.width, e.height)
        content, statement_id, reason = self.panel.content(), self.opened.id, self._amend_reason
        at = e.recording_at_s
        self.status.setText("The victim signed on their phone: checking the text and applying your digital "
                            "signature…")
        self.status.setStyleSheet("")

        def done(opened: OpenedStatement) -> None:
            self._phone_review = None
            self._amend_reason = ""
            self._dirty = False
            self.show_statement(opened)

        def failed(exc: BaseException) -> None:
            self._phone_review = None
            self._show_state()
            self._fail(exc)

        self._run(lambda: service.sign_remote(statement_id, content, signature, review, reason, recording_at_s=at),
                  done, failed)

    # -- a copy of the signed PDF ---------------------------------------------------
    def save_pdf(self, rear_page: bool = False) -> None:
        """Ask where, then save the signed statement (or its rear page) on the worker."""
        if self.opened is None or self.opened.signed is None or self._service() is None:
            return
        what = "the restricted rear page" if rear_page else "the signed statement"
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
        suggested = str(Path(folder) / _file_name(self.opened.content.fields.get("urn"), rear_page))
        # The service asks about an existing file (PdfCopyExists): one question, checked at write time.
        chosen, _filter = QFileDialog.getSaveFileName(
            self, f"Save {what} as PDF", suggested, "PDF files (*.pdf)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not chosen:
            return
        path = Path(chosen)
        if not path.suffix:
            path = path.with_name(path.name + ".pdf")  # the dialog's filter does not add it everywhere
        self._save_copy(path, rear_page, overwrite=False)

    def _save_copy(self, path: Path, rear_page: bool, *, overwrite: bool, rear_inside_ok: bool = False) -> None:
        from ..statement.service import PdfCopyExists, RearPageInside

        service = self._service()
        if service is None or self.opened is None:
            return
        statement_id = self.opened.id
        what = "restricted rear page" if rear_page else "signed statement"

        def saved(target: Path) -> None:
            self.status.setText(f"Saved a copy of the {what} to {target}.")
            self.status.setStyleSheet("color: #1b5e20;")
            box = self._message(
                QMessageBox.Icon.Information, "PDF saved",
                f"The {what} was saved to\n{target}\n\nOpen it in the PDF viewer?",
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Close,
            )
            box.button(QMessageBox.StandardButton.Open).clicked.connect(lambda: self.open_file(target))

        def failed(exc: BaseException) -> None:
            if isinstance(exc, PdfCopyExists):
                box = self._message(
                    QMessageBox.Icon.Question, "Replace the file?",
                    f"{path} already exists. Replace it with the {what}?",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                )
                box.button(QMessageBox.StandardButton.Yes).clicked.connect(
                    lambda: self._save_copy(path, rear_page, overwrite=True, rear_inside_ok=rear_inside_ok)
                )
                return
            if isinstance(exc, RearPageInside):
                box = self._message(
                    QMessageBox.Icon.Warning, "The rear page is inside this PDF",
                    f"{exc}\n\nSave it anyway, for police and prosecution use only?",
                    QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
                )
                box.button(QMessageBox.StandardButton.Save).clicked.connect(
                    lambda: self._save_copy(path, rear_page, overwrite=overwrite, rear_inside_ok=True)
                )
                return
            self.status.setText(f"Not saved: {exc}")
            self.status.setStyleSheet("color: #a4161a;")

        self._run(
            lambda: service.save_pdf_copy(
                statement_id, path, rear_page=rear_page, overwrite=overwrite, rear_page_inside_confirmed=rear_inside_ok
            ),
            saved, failed,
        )

    def _message(
        self, icon: QMessageBox.Icon, title: str, text: str, buttons: QMessageBox.StandardButton
    ) -> QMessageBox:
        """A window-modal question or notice that does not block the event loop."""
        self._close_message()
        box = QMessageBox(icon, title, text, buttons, self)
        box.setObjectName("statementMessage")
        box.open()
        self.message_box = box
        return box

    def _close_message(self) -> None:
        if self.message_box is not None:
            self.message_box.close()
            self.message_box.deleteLater()
            self.message_box = None

    def start_amendment(self) -> None:
        reason, ok = QInputDialog.getText(
            self, "New version after signing",
            "The signed statement stays as it is. Why is a new version needed?",
        )
        if ok and reason.strip():
            self._amend_reason = reason.strip()
            self._show_state()


class HistoryDialog(QDialog):
    """Every saved version, and a readable diff between any two."""

    def __init__(
        self, versions: list[StatementVersion], labels: dict[str, str], run: Callable[..., None],
        parent: QWidget | None = None, *, prompt_labels: dict[str, str] | None = None,
        date_fields: dict[str, bool] | None = None,
    ):
        super().__init__(parent)
        self.prompt_labels = prompt_labels or {}
        self.date_fields = date_fields or {}  # field id -> True when it holds a time too
        self._run = run  # diffs of long statements are computed on the worker, not the GUI thread
        self.setWindowTitle("Statement history")
        self.setObjectName("historyDialog")
        self.resize(760, 560)  # clamped below: 1280x720 at 150% is the smallest screen
        self.versions = versions
        self.labels = labels
        self.old = QComboBox(self)
        self.old.setObjectName("oldVersion")
        self.new = QComboBox(self)
        self.new.setObjectName("newVersion")
        for v in versions:
            text = f"Version {v.number} — {v.saved_at:%d/%m/%Y %H:%M:%S}" + (f" — {v.reason}" if v.reason else "")
            self.old.addItem(text, v.number)
            self.new.addItem(text, v.number)
        if versions:
            self.old.setCurrentIndex(max(len(versions) - 2, 0))
            self.new.setCurrentIndex(len(versions) - 1)
        self.view = QTextBrowser(self)
        self.view.setObjectName("diffView")
        self.view.setOpenLinks(False)
        self.summary = QLabel(self)
        self.summary.setObjectName("diffSummary")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(QLabel("From", self))
        row.addWidget(self.old, 1)
        row.addWidget(QLabel("to", self))
        row.addWidget(self.new, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(versions)} saved version(s). Versions are never overwritten.", self))
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.old.currentIndexChanged.connect(self.refresh)
        self.new.currentIndexChanged.connect(self.refresh)
        guard_wheels(self)
        keep_on_screen(self)
        self.refresh()

    def _version(self, number: int) -> StatementVersion:
        return next(v for v in self.versions if v.number == number)

    def refresh(self) -> None:
        if not self.versions:
            self.view.setPlainText("No saved versions yet.")
            return
        a, b = self._version(self.old.currentData()), self._version(self.new.currentData())
        self.summary.setText("Comparing…")
        labels, prompts, dates = self.labels, self.prompt_labels, self.date_fields
        self._run(lambda: _diff_html(a, b, labels, prompts, dates), self._show,
                  lambda e: self.summary.setText(str(e)))

    def _show(self, result: tuple[str, str]) -> None:
        summary_text, html_text = result
        self.summary.setText(summary_text)
        self.view.setHtml(html_text)


def prompt_labels(templates: Any) -> dict[str, str]:
    """Every prompt's qualified key -> "Set: prompt" (History shows words, not ids)."""
    return {p.key: f"{s.label}: {p.label}" for s in templates.prompt_sets for p in s.prompts}


def _shown_date(value: str, with_time: bool) -> str:
    """An ISO date (or date and time) as the officer reads it: dd/mm/yyyy [HH:MM]."""
    from datetime import date, datetime

    try:
        if with_time:
            return f"{datetime.fromisoformat(value.strip()):%d/%m/%Y %H:%M}"
        return f"{date.fromisoformat(value.strip()):%d/%m/%Y}"
    except ValueError:
        return value  # "(not set)", "(blank)" or text that is not a date: as it is


def _diff_html(
    a: StatementVersion, b: StatementVersion, labels: dict[str, str],
    prompt_labels: dict[str, str] | None = None, date_fields: dict[str, bool] | None = None,
) -> tuple[str, str]:
    """The diff as (summary, HTML); pure, runs on the worker. Fields and
    prompts are named by their labels, never by their ids."""
    from ..domain.statement_diff import diff_versions, summary

    diff = diff_versions(a.content, b.content, labels, prompt_labels or {})
    dates = date_fields or {}
    colours = {"added": "#d8f3dc", "removed": "#ffd6d6", "changed": "#fff3bf", "same": "transparent"}
    marks = {"added": "+", "removed": "−", "changed": "~", "same": " "}
    rows = []
    for line in diff:
        if line.section == "fields":
            old, new = line.old, line.new
            if line.key in dates:
                old, new = _shown_date(old, dates[line.key]), _shown_date(new, dates[line.key])
            text = f"{line.label or line.key}: {old}  →  {new}"
        elif line.kind == "changed":
            text = f"{line.old}  →  {line.new}"
        else:
            text = line.text
        rows.append(
            f'<div style="background:{colours.get(line.kind, "transparent")};white-space:pre-wrap;'
            f'font-family:monospace">{marks.get(line.kind, " ")} {html.escape(text)}</div>'
        )
    return summary(diff) or "No differences.", "".join(rows) or "<i>No differences.</i>"
