"""The appointment queue as a table model over domain objects (Vorta's
pattern: a QAbstractTableModel with a sort role, behind a proxy)."""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont

from ..domain import eligibility
from ..domain.appointment import Appointment, Status

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
APPOINTMENT_ROLE = Qt.ItemDataRole.UserRole + 2

COLUMNS = ("Time", "URN", "Offence", "Victim", "Status", "Eligibility")
COL_TIME, COL_URN, COL_OFFENCE, COL_VICTIM, COL_STATUS, COL_ELIGIBILITY = range(len(COLUMNS))

# Status colours are always shown with the status text, never alone.
STATUS_COLOURS: dict[Status, str] = {
    Status.SCHEDULED: "#d9e2ec",
    Status.LINK_SENT: "#c6dbf7",
    Status.VICTIM_WAITING: "#ffd166",
    Status.IN_CALL: "#8fd694",
    Status.CALL_ENDED: "#d4ecd5",
    Status.STATEMENT_DRAFTED: "#e0c3fc",
    Status.SIGNED: "#b8e0d2",
    Status.EXPORTED: "#cfd8dc",
    Status.CANCELLED: "#eeeeee",
    Status.NO_SHOW: "#f4b6b6",
    Status.IN_PERSON: "#e8dcc8",
}

# An open safety signal: white bold on this red (contrast 6.4:1), with its words.
SAFETY_COLOUR = "#b3261e"

_Index = QModelIndex | QPersistentModelIndex


class AppointmentTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._rows: list[Appointment] = []
        self._eligibility: list[eligibility.Eligibility] = []
        self._safety: dict[str, str] = {}  # appointment id -> its open safety signal's marker

    # -- data in --------------------------------------------------------------
    def set_appointments(self, items: list[Appointment]) -> None:
        self.beginResetModel()
        self._rows = list(items)
        self._eligibility = [eligibility.check(a) for a in self._rows]
        self.endResetModel()

    def upsert(self, a: Appointment) -> None:
        for row, existing in enumerate(self._rows):
            if existing.id == a.id:
                self._rows[row] = a
                self._eligibility[row] = eligibility.check(a)
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(a)
        self._eligibility.append(eligibility.check(a))
        self.endInsertRows()

    def set_safety(self, markers: dict[str, str]) -> None:
        """The open safety signals (``domain.safety.queue_marker`` per appointment):
        the row's status says so, in red, until the officer acknowledges it."""
        if markers == self._safety:
            return
        self._safety = dict(markers)
        if self._rows:
            self.dataChanged.emit(self.index(0, COL_STATUS), self.index(len(self._rows) - 1, COL_STATUS))

    def clear(self) -> None:
        """Forget every appointment (used on lock: no victim data stays in memory)."""
        self.set_safety({})
        self.set_appointments([])

    def appointment(self, row: int) -> Appointment:
        return self._rows[row]

    # -- Qt model API ---------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        a = self._rows[index.row()]
        col = index.column()
        if role == APPOINTMENT_ROLE:
            return a
        marker = self._safety.get(a.id) if col == COL_STATUS else None
        if marker is not None:
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{a.status.label} · {marker}"
            if role == Qt.ItemDataRole.BackgroundRole:
                return QColor(SAFETY_COLOUR)
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor("#ffffff")
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(a, col, self._eligibility[index.row()])
        if role == SORT_ROLE:
            return self._sort_key(a, col, self._eligibility[index.row()])
        if col == COL_STATUS and role == Qt.ItemDataRole.BackgroundRole:
            return QColor(STATUS_COLOURS[a.status])
        if col == COL_STATUS and role == Qt.ItemDataRole.ForegroundRole:
            return QColor("#1b1b1b")
        if col == COL_ELIGIBILITY and role == Qt.ItemDataRole.ToolTipRole:
            return self._eligibility[index.row()].summary()
        if col == COL_ELIGIBILITY and role == Qt.ItemDataRole.ForegroundRole:
            e = self._eligibility[index.row()]
            return QColor("#a4161a") if not e.eligible else (QColor("#8a5a00") if e.warnings else None)
        return None

    @staticmethod
    def _display(a: Appointment, col: int, e: eligibility.Eligibility) -> str:
        if col == COL_TIME:
            return a.slot.strftime("%a %d/%m/%Y %H:%M")
        if col == COL_URN:
            return a.urn
        if col == COL_OFFENCE:
            return a.offence.label
        if col == COL_VICTIM:
            return a.victim.full_name
        if col == COL_STATUS:
            return a.status.label
        if not e.reasons:
            return "OK"
        if not e.eligible:
            return "Not eligible: " + e.blocking[0].text
        return "Check: " + e.warnings[0].text

    @staticmethod
    def _sort_key(a: Appointment, col: int, e: eligibility.Eligibility) -> Any:
        if col == COL_TIME:
            return a.slot.timestamp()
        if col == COL_STATUS:
            return list(Status).index(a.status)
        if col == COL_ELIGIBILITY:
            return (e.eligible, not e.warnings)
        return AppointmentTableModel._display(a, col, e).casefold()


class AppointmentFilterProxy(QSortFilterProxyModel):
    """Filters by status and day, and searches URN or victim name."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._status: Status | None = None
        self._day: date | None = None
        self._text = ""

    def set_status(self, status: Status | None) -> None:
        self.beginFilterChange()
        self._status = status
        self.endFilterChange()

    def set_day(self, day: date | None) -> None:
        self.beginFilterChange()
        self._day = day
        self.endFilterChange()

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.strip().casefold()
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:  # noqa: N802
        model = self.sourceModel()
        a: Appointment = model.data(model.index(source_row, 0, source_parent), APPOINTMENT_ROLE)
        if self._status is not None and a.status is not self._status:
            return False
        if self._day is not None and a.slot.date() != self._day:
            return False
        if self._text:
            compact = self._text.replace(" ", "")
            if compact not in a.urn.casefold() and self._text not in a.victim.full_name.casefold():
                return False
        return True
