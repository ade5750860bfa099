"""The day's video appointments: filters, the table, and a detail pane."""

from __future__ import annotations

from datetime import date
from html import escape

from PySide6.QtCore import QDate, QItemSelection, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..domain import eligibility
from ..domain.appointment import MANUAL_MOVES, Appointment, Status
from .queue_model import APPOINTMENT_ROLE, COL_TIME, AppointmentFilterProxy, AppointmentTableModel
from .widgets import guard_wheels


def _status_or_none(value: str | None) -> Status | None:
    return Status(value) if value else None


class DetailPane(QFrame):
    edit_requested = Signal(object)
    status_requested = Signal(object, object)  # appointment, Status
    statement_requested = Signal(object)
    vps_requested = Signal(object)
    link_requested = Signal(object)
    call_requested = Signal(object)
    recordings_requested = Signal(object)
    export_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(300)
        self._appointment: Appointment | None = None
        self._outbox_notes: dict[str, str] = {}  # appointment id -> the text last queued for it
        self.title = QLabel("Select an appointment", self)
        self.title.setObjectName("detailTitle")
        self.title.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.title.setWordWrap(True)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, label in (
            ("slot", "Slot"), ("urn", "URN"), ("offence", "Offence"), ("status", "Status"),
            ("dob", "Date of birth"), ("mobile", "Mobile"), ("guardian", "Guardian"),
            ("interpreter", "Interpreter"), ("notes", "Notes"), ("eligibility", "Eligibility"),
        ):
            value = QLabel(self)
            value.setObjectName(f"detail_{key}")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = value
            form.addRow(label, value)
        self.edit_button = QPushButton("&Edit…", self)
        self.edit_button.setObjectName("editButton")
        self.edit_button.clicked.connect(lambda: self._appointment and self.edit_requested.emit(self._appointment))
        self.statement_button = QPushButton("&Statement…", self)
        self.statement_button.setObjectName("statementButton")
        self.statement_button.setToolTip("Draft or review the witness statement (works offline)")
        self.statement_button.clicked.connect(
            lambda: self._appointment and self.statement_requested.emit(self._appointment)
        )
        self.link_button = QPushButton("Send &link…", self)
        self.link_button.setObjectName("linkButton")
        self.link_button.setToolTip("Make a one-time video link and put the text message in the outbox")
        self.link_button.clicked.connect(lambda: self._appointment and self.link_requested.emit(self._appointment))
        self.call_button = QPushButton("Start &call", self)
        self.call_button.setObjectName("callButton")
        self.call_button.clicked.connect(lambda: self._appointment and self.call_requested.emit(self._appointment))
        self.link_label = QLabel(self)
        self.link_label.setObjectName("linkLabel")
        self.link_label.setWordWrap(True)
        self.link_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.vps_button = QPushButton("&Victim Personal Statement…", self)
        self.vps_button.setObjectName("vpsButton")
        self.vps_button.setToolTip("The impact of the crime, in the victim's words: a separate MG11")
        self.vps_button.clicked.connect(lambda: self._appointment and self.vps_requested.emit(self._appointment))
        self.recordings_button = QPushButton("&Recordings…", self)
        self.recordings_button.setObjectName("recordingsButton")
        self.recordings_button.setToolTip("The recordings of this appointment's calls, and playing them back")
        self.recordings_button.clicked.connect(
            lambda: self._appointment and self.recordings_requested.emit(self._appointment))
        self.export_button = QPushButton("E&xport evidence…", self)
        self.export_button.setObjectName("exportButton")
        self.export_button.setToolTip("The case file's evidence bundle: signed statements, recordings, stills, "
                                      "audit extract, signed and checkable by anyone")
        self.export_button.clicked.connect(lambda: self._appointment and self.export_requested.emit(self._appointment))
        self.next_status = QComboBox(self)
        self.next_status.setObjectName("nextStatus")
        self.apply_status = QPushButton("Set status", self)
        self.apply_status.setObjectName("applyStatus")
        self.apply_status.clicked.connect(self._apply_status)
        status_row = QHBoxLayout()
        status_row.addWidget(self.next_status, 1)
        status_row.addWidget(self.apply_status)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.edit_button)
        calls = QHBoxLayout()
        calls.addWidget(self.link_button)
        calls.addWidget(self.call_button)
        layout.addLayout(calls)
        layout.addWidget(self.link_label)
        layout.addWidget(self.statement_button)
        layout.addWidget(self.vps_button)
        layout.addWidget(self.recordings_button)
        layout.addWidget(self.export_button)
        layout.addLayout(status_row)
        layout.addStretch(1)
        self.show_appointment(None)

    def show_appointment(self, a: Appointment | None) -> None:
        self._appointment = a
        for w in (self.edit_button, self.statement_button, self.vps_button, self.next_status, self.apply_status,
                  self.link_button, self.call_button, self.recordings_button, self.export_button):
            w.setEnabled(a is not None)
        self.link_label.setText(self._outbox_notes.get(a.id, "") if a is not None else "")
        self.next_status.clear()
        if a is None:
            self.title.setText("Select an appointment")
            for v in self.fields.values():
                v.clear()
            return
        v = a.victim
        e = eligibility.check(a)
        self.title.setText(v.full_name)
        self.fields["slot"].setText(f"{a.slot:%A %d/%m/%Y, %H:%M} ({a.duration_minutes} min)")
        self.fields["urn"].setText(a.urn)
        self.fields["offence"].setText(a.offence.label)
        self.fields["status"].setText(a.status.label)
        self.fields["dob"].setText(f"{v.date_of_birth:%d/%m/%Y}" if v.date_of_birth else "Not recorded")
        self.fields["mobile"].setText(v.mobile)
        self.fields["guardian"].setText(f"{v.guardian.name} ({v.guardian.relationship})" if v.guardian else "None")
        self.fields["interpreter"].setText(v.interpreter_language or "Not needed")
        self.fields["notes"].setText(v.notes)
        self.fields["eligibility"].setText(e.summary())
        # Only the moves an officer makes by hand; the rest follow what happens.
        for s in sorted(MANUAL_MOVES[a.status], key=list(Status).index):
            self.next_status.addItem(s.label, s.value)
        self.next_status.setEnabled(self.next_status.count() > 0)
        self.apply_status.setEnabled(self.next_status.count() > 0)

    def show_outbox_note(self, appointment_id: str, text: str) -> None:
        """The text just queued for an appointment, shown with that appointment
        only (never beside another one, or with nothing selected)."""
        self._outbox_notes[appointment_id] = text
        if self._appointment is not None and self._appointment.id == appointment_id:
            self.link_label.setText(text)

    def forget_outbox_notes(self) -> None:
        self._outbox_notes.clear()
        self.link_label.clear()

    def _apply_status(self) -> None:
        if self._appointment is not None and self.next_status.currentData() is not None:
            self.status_requested.emit(self._appointment, Status(self.next_status.currentData()))


class QueueScreen(QWidget):
    new_requested = Signal()
    edit_requested = Signal(object)
    status_requested = Signal(object, object)
    statement_requested = Signal(object)
    vps_requested = Signal(object)
    link_requested = Signal(object)
    call_requested = Signal(object)
    recordings_requested = Signal(object)
    export_requested = Signal(object)
    viewed = Signal(str)  # appointment id, for the audit log

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("queueScreen")
        self.model = AppointmentTableModel(self)
        self.proxy = AppointmentFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.search = QLineEdit(self)
        self.search.setObjectName("search")
        self.search.setPlaceholderText("Search URN or name  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        self.status_filter = QComboBox(self)
        self.status_filter.setObjectName("statusFilter")
        self.status_filter.addItem("All statuses", None)
        for s in Status:
            self.status_filter.addItem(s.label, s.value)  # Qt turns StrEnum data into str
        self.status_filter.currentIndexChanged.connect(
            lambda: self.proxy.set_status(_status_or_none(self.status_filter.currentData()))
        )
        self.day_enabled = QCheckBox("Day", self)
        self.day_enabled.setObjectName("dayEnabled")
        self.day_enabled.setChecked(True)
        self.day = QDateEdit(QDate.currentDate(), self)
        self.day.setObjectName("dayFilter")
        self.day.setCalendarPopup(True)
        self.day.setDisplayFormat("ddd dd/MM/yyyy")
        self.day.dateChanged.connect(self._day_changed)
        self.day_enabled.toggled.connect(self._day_changed)
        self.new_button = QPushButton("&New appointment…", self)
        self.new_button.setObjectName("newButton")
        self.new_button.clicked.connect(self.new_requested)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("countLabel")

        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(QLabel("Status", self))
        bar.addWidget(self.status_filter)
        bar.addWidget(self.day_enabled)
        bar.addWidget(self.day)
        bar.addStretch(1)
        bar.addWidget(self.count_label)
        bar.addWidget(self.new_button)

        self.table = QTableView(self)
        self.table.setObjectName("queueTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_TIME, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.activated.connect(self._activated)

        self.detail = DetailPane(self)
        self.detail.edit_requested.connect(self.edit_requested)
        self.detail.status_requested.connect(self.status_requested)
        self.detail.statement_requested.connect(self.statement_requested)
        self.detail.vps_requested.connect(self.vps_requested)
        self.detail.link_requested.connect(self.link_requested)
        self.detail.call_requested.connect(self.call_requested)
        self.detail.recordings_requested.connect(self.recordings_requested)
        self.detail.export_requested.connect(self.export_requested)

        splitter = QSplitter(self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        # Victims cannot reach this officer now (the rendezvous is unreachable, the
        # credentials were refused, the video part is restarting): said on the queue,
        # where "Victim waiting" would otherwise just not appear.
        self.calls_state = QLabel(self)
        self.calls_state.setObjectName("callsUnavailable")
        self.calls_state.setWordWrap(True)
        self.calls_state.setStyleSheet("#callsUnavailable { background: #fff4ce; color: #3b2f00; "
                                       "border: 1px solid #b38600; padding: 4px 8px; }")
        self.calls_state.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.calls_state)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.layoutChanged):
            sig.connect(self._update_count)
        self._day_changed()
        guard_wheels(self)  # scrolling the queue never changes a filter or the next status

    def _day_changed(self) -> None:
        self.day.setEnabled(self.day_enabled.isChecked())
        self.proxy.set_day(self.day.date().toPython() if self.day_enabled.isChecked() else None)
        self._update_count()

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} appointments")

    def set_calls_unavailable(self, why: str | None) -> None:
        """Show why video calls are unavailable (None: hide the notice)."""
        if why is None:
            self.calls_state.hide()
            self.calls_state.clear()
            return
        self.calls_state.setText(f"<b>Video calls unavailable.</b> {escape(why, quote=False)} Victims cannot join "
                                 "and links cannot be sent until this clears.")
        self.calls_state.setAccessibleName(f"Video calls unavailable. {why}")
        self.calls_state.show()

    def set_appointments(self, items: list[Appointment]) -> None:
        self.model.set_appointments(items)
        self.detail.show_appointment(None)
        self._update_count()

    def set_safety(self, markers: dict[str, str]) -> None:
        self.model.set_safety(markers)

    def find(self, appointment_id: str) -> Appointment | None:
        for row in range(self.model.rowCount()):
            if self.model.appointment(row).id == appointment_id:
                return self.model.appointment(row)
        return None

    def select_appointment(self, appointment_id: str) -> bool:
        """Show and select the appointment's row (filters cleared if they hide it)."""
        for row in range(self.model.rowCount()):
            if self.model.appointment(row).id == appointment_id:
                index = self.proxy.mapFromSource(self.model.index(row, 0))
                if not index.isValid():  # the filters hide it: show everything (the widgets say so)
                    self.search.clear()
                    self.status_filter.setCurrentIndex(0)
                    self.day_enabled.setChecked(False)
                    index = self.proxy.mapFromSource(self.model.index(row, 0))
                self.table.selectRow(index.row())
                self.table.scrollTo(index)
                return True
        return False

    def upsert(self, a: Appointment) -> None:
        self.model.upsert(a)
        if self.detail._appointment is not None and self.detail._appointment.id == a.id:
            self.detail.show_appointment(a)
        self._update_count()

    def clear(self) -> None:
        self.detail.forget_outbox_notes()  # they hold links: gone at lock like the rows
        self.search.clear()
        self.model.clear()
        self.detail.show_appointment(None)

    def selected(self) -> Appointment | None:
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.data(rows[0], APPOINTMENT_ROLE) if rows else None

    def show_day(self, day: date) -> None:
        self.day.setDate(QDate(day.year, day.month, day.day))

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        a = self.selected()
        self.detail.show_appointment(a)
        if a is not None:
            self.viewed.emit(a.id)

    def _activated(self, index: QModelIndex) -> None:
        a = self.proxy.data(index, APPOINTMENT_ROLE)
        if a is not None:
            self.edit_requested.emit(a)
