"""One appointment's recordings: when each started, how long, how big, its
state (finalised, unfinalised with the reason, in progress, damaged with the
reason), its segments and stills, and **Play** for one that can be played.

The list comes from ``Session.list_recordings`` (run on the worker: it
decrypts and checks each manifest); playing goes through
``Session.open_recording`` (audited as a view) and the player window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..recording.library import DAMAGED, FINALISED, IN_PROGRESS, UNFINALISED, RecordingSummary

COLUMNS = ("Started", "Duration", "Size", "State", "Segments", "Stills")
_Index = QModelIndex | QPersistentModelIndex


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def size_text(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def state_text(r: RecordingSummary) -> str:
    if r.state == FINALISED:
        return "Finalised"
    if r.state == UNFINALISED:
        return f"Unfinalised: {r.reason}"
    if r.state == IN_PROGRESS:
        return "In progress (no manifest yet)"
    return f"Damaged: {r.reason}"


class RecordingsModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.items: list[RecordingSummary] = []

    def set_items(self, items: list[RecordingSummary]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's signature
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            started = r.started_at.astimezone().strftime("%d/%m/%Y %H:%M:%S") if r.started_at else "Unknown"
            return (started, duration_text(r.duration_s), size_text(r.size_bytes), state_text(r), str(r.segments),
                    str(r.stills))[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 3:
            return state_text(r)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 3 and r.state in (UNFINALISED, DAMAGED):
            return QBrush(QColor("#b00020") if r.state == DAMAGED else QColor("#8a5a00"))
        return None


class RecordingsDialog(QDialog):
    """``load`` fetches the list (on the worker); ``play_requested`` carries the chosen recording."""

    play_requested = Signal(object)  # RecordingSummary

    def __init__(self, title: str, load: Callable[[], None], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("recordingsDialog")
        self.setWindowTitle(f"Recordings: {title}")
        self.resize(820, 360)
        self._load = load
        self.model = RecordingsModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("recordingsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _i: self._play())
        self.note = QLabel("Reading the recordings…", self)
        self.note.setObjectName("recordingsNote")
        self.note.setWordWrap(True)
        self.play_button = QPushButton("&Play", self)
        self.play_button.setObjectName("playRecording")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self._play)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.note, 1)
        row.addWidget(self.play_button)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Recordings of this appointment's calls. Opening one is recorded in the audit log.",
                                self))
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())

    def refresh(self) -> None:
        self.note.setText("Reading the recordings…")
        self._load()

    def show_items(self, items: list[RecordingSummary]) -> None:
        self.model.set_items(items)
        if not items:
            self.note.setText("No recordings for this appointment.")
        else:
            damaged = sum(1 for r in items if r.state == DAMAGED)
            self.note.setText(f"{len(items)} recording(s)" + (f", {damaged} damaged" if damaged else "") + ".")
            self.table.selectRow(len(items) - 1)
        self._selection_changed()

    def show_error(self, message: str) -> None:
        self.note.setText(message)

    def selected(self) -> RecordingSummary | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.items[rows[0].row()] if rows else None

    def _selection_changed(self) -> None:
        r = self.selected()
        self.play_button.setEnabled(r is not None and r.playable)

    def _play(self) -> None:
        r = self.selected()
        if r is not None and r.playable:
            self.play_requested.emit(r)
