"""Create or edit an appointment. The rules live in ``domain``: the dialog
shows what ``appointment.validate`` and ``eligibility.check`` say, live, and
will not accept a booking they refuse."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from PySide6.QtCore import QDate, QDateTime, Qt, QTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..domain import appointment as appt
from ..domain import eligibility
from .widgets import guard_wheels, keep_on_screen

_SAFE_CHOICES = (("Not yet asked", None), ("Yes, in a safe place", True), ("No", False))


class AppointmentDialog(QDialog):
    """Emits ``submitted`` with a valid, eligible appointment; the owner saves it
    in the background and calls ``saved()`` (closes) or ``show_refusal()``."""

    submitted = Signal(object)

    def __init__(self, parent: QWidget | None = None, existing: appt.Appointment | None = None):
        super().__init__(parent)
        self.setWindowTitle("Edit appointment" if existing else "New video appointment")
        self.setObjectName("appointmentDialog")
        self._existing = existing
        self.result_appointment: appt.Appointment | None = None

        self.slot = QDateTimeEdit(self)
        self.slot.setObjectName("slot")
        self.slot.setCalendarPopup(True)
        self.slot.setDisplayFormat("dd/MM/yyyy HH:mm")
        self.duration = QSpinBox(self)
        self.duration.setRange(10, 240)
        self.duration.setSingleStep(15)
        self.duration.setSuffix(" min")
        self.urn = QLineEdit(self)
        self.urn.setObjectName("urn")
        self.urn.setPlaceholderText("e.g. 01AB1234526")
        self.offence = QComboBox(self)
        self.offence.setObjectName("offence")
        for o in appt.OffenceType:
            self.offence.addItem(o.label, o.value)  # Qt turns StrEnum data into str

        self.name = QLineEdit(self)
        self.name.setObjectName("victimName")
        self.dob_known = QCheckBox("Date of birth known", self)
        self.dob_known.setObjectName("dobKnown")
        self.dob = QDateEdit(self)
        self.dob.setObjectName("dob")
        self.dob.setCalendarPopup(True)
        self.dob.setDisplayFormat("dd/MM/yyyy")
        self.dob.setMaximumDate(QDate.currentDate().addYears(1))
        self.mobile = QLineEdit(self)
        self.mobile.setObjectName("mobile")
        self.mobile.setPlaceholderText("07700 900123")
        self.interpreter = QLineEdit(self)
        self.interpreter.setObjectName("interpreter")
        self.interpreter.setPlaceholderText("Language, if an interpreter is needed")
        self.notes = QPlainTextEdit(self)
        self.notes.setObjectName("notes")
        self.notes.setMaximumHeight(80)

        self.guardian_box = QGroupBox("Parent / guardian present (needed under 18)", self)
        self.guardian_box.setObjectName("guardianBox")
        self.guardian_box.setCheckable(True)
        self.guardian_box.setChecked(False)
        self.guardian_name = QLineEdit(self.guardian_box)
        self.guardian_name.setObjectName("guardianName")
        self.guardian_relationship = QLineEdit(self.guardian_box)
        self.guardian_relationship.setObjectName("guardianRelationship")
        g = QFormLayout(self.guardian_box)
        g.addRow("Name", self.guardian_name)
        g.addRow("Relationship", self.guardian_relationship)

        self.smartphone = QCheckBox("Has a smartphone with video", self)
        self.smartphone.setObjectName("smartphone")
        self.data = QCheckBox("Has mobile data or Wi-Fi", self)
        self.data.setObjectName("data")
        self.offender_present = QCheckBox("Offender is present where the victim will be", self)
        self.offender_present.setObjectName("offenderPresent")
        self.safe_place = QComboBox(self)
        self.safe_place.setObjectName("safePlace")
        for label, value in _SAFE_CHOICES:
            self.safe_place.addItem(label, value)
        self.safe_place_label = QLabel("Will be in a safe place", self)

        self.problems = QLabel(self)
        self.problems.setObjectName("problems")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #a4161a;")
        self.eligibility_label = QLabel(self)
        self.eligibility_label.setObjectName("eligibility")
        self.eligibility_label.setWordWrap(True)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        # The way out for a victim who cannot be seen over video (shown only then).
        self.in_person_button = self.buttons.addButton("Save as in-person visit",
                                                       QDialogButtonBox.ButtonRole.ActionRole)
        self.in_person_button.setObjectName("saveInPerson")
        self.in_person_button.clicked.connect(self.accept_in_person)
        self.in_person_button.hide()
        self.in_person = False  # what the owner should save: video, or an in-person visit

        form = QFormLayout()
        form.addRow("Slot", self._row(self.slot, self.duration))
        form.addRow("URN", self.urn)
        form.addRow("Offence", self.offence)
        form.addRow("Victim's full name", self.name)
        form.addRow(self.dob_known, self.dob)
        form.addRow("Mobile", self.mobile)
        form.addRow("Interpreter", self.interpreter)
        form.addRow("Notes", self.notes)
        checks = QGroupBox("Eligibility for video", self)
        c = QFormLayout(checks)
        c.addRow(self.smartphone)
        c.addRow(self.data)
        c.addRow(self.offender_present)
        c.addRow(self.safe_place_label, self.safe_place)
        # The form scrolls inside the dialog, so on a small screen (1280x720
        # at 150%) the dialog is clamped to the screen and Save stays in reach.
        body = QWidget()
        inner = QVBoxLayout(body)
        inner.addLayout(form)
        inner.addWidget(self.guardian_box)
        inner.addWidget(checks)
        inner.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setObjectName("bookingScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.eligibility_label)
        layout.addWidget(self.problems)
        layout.addWidget(self.buttons)
        guard_wheels(self)  # scrolling the form never changes the slot, offence or date of birth
        body.adjustSize()
        hint = body.sizeHint()
        keep_on_screen(self, hint.width() + 40, hint.height() + 100)

        self._checked = False
        self._fill(existing)
        for w in (self.urn, self.name, self.mobile, self.guardian_name):
            w.textChanged.connect(self._refresh)
        for cb in (self.smartphone, self.data, self.offender_present, self.dob_known):
            cb.toggled.connect(self._refresh)
        self.guardian_box.toggled.connect(self._refresh)
        self.offence.currentIndexChanged.connect(self._refresh)
        self.safe_place.currentIndexChanged.connect(self._refresh)
        self.dob.dateChanged.connect(self._refresh)
        self.slot.dateTimeChanged.connect(self._refresh)
        self._refresh()

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            h.addWidget(x)
        return w

    def _fill(self, a: appt.Appointment | None) -> None:
        if a is None:
            now = QDateTime.currentDateTime()
            # Next quarter hour, so a new booking starts on a sensible slot.
            minutes = (now.time().minute() // 15 + 1) * 15
            self.slot.setDateTime(QDateTime(now.date(), QTime(now.time().hour(), 0)).addSecs(minutes * 60))
            self.duration.setValue(45)
            self.smartphone.setChecked(True)
            self.data.setChecked(True)
            self.dob.setDate(QDate(1990, 1, 1))
            return
        self.slot.setDateTime(QDateTime(a.slot.replace(tzinfo=None)))
        self.duration.setValue(a.duration_minutes)
        self.urn.setText(a.urn)
        self.offence.setCurrentIndex(list(appt.OffenceType).index(a.offence))
        v = a.victim
        self.name.setText(v.full_name)
        self.dob_known.setChecked(v.date_of_birth is not None)
        if v.date_of_birth:
            self.dob.setDate(QDate(v.date_of_birth.year, v.date_of_birth.month, v.date_of_birth.day))
        self.mobile.setText(v.mobile)
        self.interpreter.setText(v.interpreter_language)
        self.notes.setPlainText(v.notes)
        if v.guardian:
            self.guardian_box.setChecked(True)
            self.guardian_name.setText(v.guardian.name)
            self.guardian_relationship.setText(v.guardian.relationship)
        self.smartphone.setChecked(v.has_smartphone_with_video)
        self.data.setChecked(v.has_data_or_wifi)
        self.offender_present.setChecked(v.offender_present)
        self.safe_place.setCurrentIndex([c[1] for c in _SAFE_CHOICES].index(v.in_safe_place))

    def build(self) -> appt.Appointment:
        """The appointment as the form stands (not yet validated)."""
        guardian = None
        if self.guardian_box.isChecked():
            guardian = appt.Guardian(self.guardian_name.text().strip(), self.guardian_relationship.text().strip())
        offence = self._offence()
        victim = appt.VictimDetails(
            full_name=self.name.text().strip(),
            date_of_birth=self.dob.date().toPython() if self.dob_known.isChecked() else None,
            mobile=self.mobile.text().strip(),
            guardian=guardian,
            interpreter_language=self.interpreter.text().strip(),
            notes=self.notes.toPlainText(),
            has_smartphone_with_video=self.smartphone.isChecked(),
            has_data_or_wifi=self.data.isChecked(),
            offender_present=self.offender_present.isChecked(),
            in_safe_place=self.safe_place.currentData() if offence is appt.OffenceType.DOMESTIC_ABUSE else None,
        )
        slot: datetime = self.slot.dateTime().toPython().astimezone()
        fields = dict(
            slot=slot,
            urn=appt.normalise_urn(self.urn.text()),
            offence=offence,
            victim=victim,
            duration_minutes=self.duration.value(),
        )
        if self._existing is not None:
            return replace(self._existing, **fields)
        return appt.Appointment(**fields)

    def _offence(self) -> appt.OffenceType:
        return appt.OffenceType(self.offence.currentData())

    def _refresh(self) -> None:
        domestic = self._offence() is appt.OffenceType.DOMESTIC_ABUSE
        self.safe_place.setVisible(domestic)
        self.safe_place_label.setVisible(domestic)
        self.dob.setEnabled(self.dob_known.isChecked())
        candidate = self.build()
        result = eligibility.check(candidate)
        if not result.reasons:
            self.eligibility_label.setText("Eligible for video.")
            self.eligibility_label.setStyleSheet("color: #1b5e20;")
        else:
            prefix = "Not eligible for video: " if not result.eligible else "Check before the call: "
            self.eligibility_label.setText(prefix + " ".join(r.text for r in result.reasons))
            self.eligibility_label.setStyleSheet("color: #a4161a;" if not result.eligible else "color: #8a5a00;")
        if self._checked and self.buttons.isEnabled():
            # Only what is true of the form as it stands now: a problem the
            # officer has fixed goes, so "Eligible" and "cannot go ahead" are
            # never on screen together.
            problems = self._problems(candidate)
            self.problems.setText("\n".join(problems))
            self.in_person_button.setVisible(bool(problems) and not appt.validate(candidate))

    @staticmethod
    def _problems(candidate: appt.Appointment) -> list[str]:
        return eligibility.booking_problems(candidate)  # the rule the session applies too

    def accept(self) -> None:
        candidate = self.build()
        problems = self._problems(candidate)
        self._checked = True
        if problems:
            self.problems.setText("\n".join(problems))
            # Only the criteria stand in the way: offer the in-person visit.
            self.in_person_button.setVisible(not appt.validate(candidate))
            return
        self._submit(candidate, in_person=False)

    def accept_in_person(self) -> None:
        candidate = self.build()
        problems = appt.validate(candidate)
        if problems:
            self.problems.setText("\n".join(problems))
            return
        self._submit(candidate, in_person=True)

    def _submit(self, candidate: appt.Appointment, *, in_person: bool) -> None:
        self.in_person = in_person
        self.result_appointment = candidate
        self.problems.setText("Saving…")
        self.buttons.setEnabled(False)
        self.submitted.emit(candidate)

    def saved(self) -> None:
        super().accept()

    def show_refusal(self, reasons: list[str]) -> None:
        self.buttons.setEnabled(True)
        self.problems.setText("\n".join(reasons))
