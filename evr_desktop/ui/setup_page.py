"""First run: the officer's details, a passphrase, and (for a force) the files
IT provisions. Demo mode fills in an invented officer and makes demo keys."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..domain.officer import OfficerIdentity, validate_officer
from ..domain.passphrase import assess, officer_words
from ..vault.vault import ForceProvisioning
from .widgets import PasswordLineEdit

DEMO_OFFICER = OfficerIdentity("PC Demo Officer", "DEMO 4127", "Demo Constabulary", "Demo Central")


class SetupPage(QWidget):
    create_requested = Signal(object, str, object)  # OfficerIdentity, passphrase, ForceProvisioning|None

    def __init__(self, demo: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("setupPage")
        self.demo = demo
        heading = QLabel("Set up EVR Desktop" + (" (demo profile)" if demo else ""), self)
        heading.setStyleSheet("font-size: 18pt; font-weight: 600;")
        intro = QLabel(
            "Your keys are created on this laptop and sealed with your passphrase. "
            + (
                "This demo profile uses an invented officer, a demo force CA and invented appointments; "
                "it must never hold real victims' details."
                if demo
                else "IT gives you the force CA certificate, the force escrow recipient and your PKCS#12 file."
            ),
            self,
        )
        intro.setWordWrap(True)
        self.name = QLineEdit(self)
        self.name.setObjectName("officerName")
        self.collar = QLineEdit(self)
        self.collar.setObjectName("collar")
        self.force = QLineEdit(self)
        self.force.setObjectName("force")
        self.station = QLineEdit(self)
        self.station.setObjectName("station")
        self.passphrase = PasswordLineEdit(self)
        self.passphrase.setObjectName("newPassphrase")
        self.confirm = PasswordLineEdit(self)
        self.confirm.setObjectName("confirmPassphrase")
        self.strength = QLabel(self)
        self.strength.setObjectName("strength")
        self.strength.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Your name", self.name)
        form.addRow("Collar / warrant number", self.collar)
        form.addRow("Force", self.force)
        form.addRow("Station", self.station)
        form.addRow("Passphrase", self.passphrase)
        form.addRow("Repeat passphrase", self.confirm)
        form.addRow("", self.strength)

        self.provisioning = QGroupBox("Force provisioning (from IT)", self)
        self.ca_path = QLineEdit(self.provisioning)
        self.ca_path.setObjectName("caPath")
        self.escrow = QLineEdit(self.provisioning)
        self.escrow.setObjectName("escrow")
        self.escrow.setPlaceholderText("age1…")
        self.p12_path = QLineEdit(self.provisioning)
        self.p12_path.setObjectName("p12Path")
        self.p12_password = PasswordLineEdit(self.provisioning)
        self.p12_password.setObjectName("p12Password")
        p = QFormLayout(self.provisioning)
        p.addRow("Force CA certificate", self._with_browse(self.ca_path, "Certificates (*.pem *.crt *.cer *.der)"))
        p.addRow("Escrow recipient", self.escrow)
        p.addRow("Your PKCS#12 file", self._with_browse(self.p12_path, "PKCS#12 (*.p12 *.pfx)"))
        p.addRow("PKCS#12 password", self.p12_password)
        self.provisioning.setVisible(not demo)

        self.message = QLabel(self)
        self.message.setObjectName("setupMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #a4161a;")
        self.button = QPushButton("Create my keys", self)
        self.button.setObjectName("createButton")
        self.button.clicked.connect(self._submit)

        # A readable column, centred, rather than fields stretched across the screen.
        column = QWidget(self)
        column.setMaximumWidth(720)
        outer = QHBoxLayout(self)
        outer.addWidget(column)
        layout = QVBoxLayout(column)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.provisioning)
        layout.addWidget(self.message)
        layout.addWidget(self.button)
        layout.addStretch(1)
        self._checked = False  # "Create" pressed once: from then on the message says only what still applies
        self._file_problem = ""
        for w in (self.passphrase, self.confirm, self.name, self.collar, self.force):
            w.textChanged.connect(self._update_strength)
        for w in (self.passphrase, self.confirm, self.name, self.collar, self.force, self.station, self.escrow):
            w.textChanged.connect(self._recheck)
        for w in (self.ca_path, self.p12_path, self.p12_password):
            w.textChanged.connect(self._file_changed)
        if demo:
            self.name.setText(DEMO_OFFICER.name)
            self.collar.setText(DEMO_OFFICER.collar)
            self.force.setText(DEMO_OFFICER.force)
            self.station.setText(DEMO_OFFICER.station)
        self._update_strength()

    def _with_browse(self, edit: QLineEdit, filter_: str) -> QWidget:
        w = QWidget(self)
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        b = QPushButton("Browse…", w)
        b.clicked.connect(
            lambda: edit.setText(QFileDialog.getOpenFileName(self, "Choose file", "", filter_)[0] or edit.text())
        )
        h.addWidget(b)
        return w

    def officer(self) -> OfficerIdentity:
        return OfficerIdentity(
            self.name.text().strip(), self.collar.text().strip(), self.force.text().strip(), self.station.text().strip()
        )

    def _update_strength(self) -> None:
        o = self.officer()
        s = assess(self.passphrase.text(), officer_words(o))
        if not self.passphrase.text():
            self.strength.setText("Choose a passphrase of a few unrelated words.")
        elif s.acceptable:
            self.strength.setText(f"Strong enough (about {s.bits:.0f} bits).")
        else:
            self.strength.setText("Too weak: " + " ".join(s.problems))

    def _problems(self) -> list[str]:
        """What is wrong with the form as it stands (the files are read only on Create)."""
        o = self.officer()
        problems = validate_officer(o)
        problems += list(assess(self.passphrase.text(), officer_words(o)).problems)
        if self.passphrase.text() != self.confirm.text():
            problems.append("The two passphrases differ.")
        return problems

    def _recheck(self) -> None:
        """After a refused Create: a problem the officer has fixed disappears."""
        if self._checked and self.button.isEnabled():
            self.message.setStyleSheet("color: #a4161a;")
            self.message.setText("\n".join([*self._problems(), *([self._file_problem] if self._file_problem else [])]))

    def _file_changed(self) -> None:
        self._file_problem = ""
        self._recheck()

    def _submit(self) -> None:
        o = self.officer()
        problems = self._problems()
        self._checked = True
        self._file_problem = ""
        provisioning = None
        if not self.demo:
            try:
                provisioning = ForceProvisioning(
                    ca_certificate=Path(self.ca_path.text()).read_bytes(),
                    escrow_recipient=self.escrow.text().strip(),
                    officer_pkcs12=Path(self.p12_path.text()).read_bytes(),
                    pkcs12_password=self.p12_password.text(),
                )
            except OSError as exc:
                self._file_problem = f"A provisioning file could not be read ({exc.strerror}: {exc.filename})."
                problems.append(self._file_problem)
        if problems:
            self.message.setText("\n".join(problems))
            return
        passphrase = self.passphrase.text()
        self.passphrase.clear()
        self.confirm.clear()
        self.p12_password.clear()
        self.busy()
        self.create_requested.emit(o, passphrase, provisioning)

    def busy(self) -> None:
        self.button.setEnabled(False)
        self.message.setStyleSheet("")
        self.message.setText("Creating your keys and tuning the passphrase protection to this laptop…")

    def failed(self, message: str) -> None:
        self.button.setEnabled(True)
        self.message.setStyleSheet("color: #a4161a;")
        self.message.setText(message)
