"""The banner of the victims' open safety signals, above every page of the
main window (the queue, a statement, the call), so that a signal is seen
wherever the officer is. It stays until the officer acknowledges it.

One line per appointment with open signals: its time and URN (never the
victim's name: the screen may be seen by others), what came and when, and
what to do, with **Show appointment** and **Acknowledge**. At most
``MAX_LINES`` lines; the rest are counted ("and 2 more"), acknowledged in
turn. The rules (texts, markers) are ``domain.safety``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:  # built before the first paint, which should not wait for the domain
    from ..domain.safety import SafetyAlert

MAX_LINES = 2  # a 768-pixel-high screen keeps room for the queue


class SafetyBanner(QFrame):
    show_requested = Signal(str)  # appointment id
    acknowledge_requested = Signal(str)  # appointment id

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("safetyBanner")
        self.setAccessibleName("Safety signals from victims")
        self.setStyleSheet(
            "#safetyBanner { background: #b3261e; }"
            "#safetyBanner QLabel { color: white; font-weight: bold; }"
            "#safetyBanner QPushButton { padding: 4px 10px; }"
        )
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self._layout.setSpacing(4)
        self.lines: list[QWidget] = []
        self.more = QLabel(self)
        self.more.setObjectName("safetyMore")
        self._layout.addWidget(self.more)
        self.hide()

    def set_alerts(self, alerts: list[SafetyAlert], describe: Callable[[str], str]) -> None:
        """``alerts``: the open ones, oldest first; ``describe(appointment_id)``:
        how the appointment is named here (its time and URN)."""
        for line in self.lines:
            line.deleteLater()
        self.lines = []
        by_appointment: dict[str, list[SafetyAlert]] = {}
        for alert in alerts:
            by_appointment.setdefault(alert.appointment_id, []).append(alert)
        shown = list(by_appointment.items())[:MAX_LINES]
        for appointment_id, items in shown:
            self.lines.append(self._line(appointment_id, items, describe(appointment_id)))
            self._layout.insertWidget(len(self.lines) - 1, self.lines[-1])
        rest = len(by_appointment) - len(shown)
        self.more.setText(f"… and {rest} more appointment{'s' if rest != 1 else ''} with a safety signal"
                          if rest > 0 else "")
        self.more.setVisible(rest > 0)
        self.setVisible(bool(by_appointment))

    def _line(self, appointment_id: str, items: list[SafetyAlert], name: str) -> QWidget:
        line = QWidget(self)
        line.setObjectName(f"safetyLine-{appointment_id}")
        row = QHBoxLayout(line)
        row.setContentsMargins(0, 0, 0, 0)
        sentences = " ".join(a.text(_local_time(a.at)) for a in items)
        text = QLabel(f"⚠ {name}: {sentences}", line)
        text.setObjectName("safetyText")
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        show = QPushButton("Show appointment", line)
        show.setObjectName("safetyShow")
        show.clicked.connect(lambda: self.show_requested.emit(appointment_id))
        ack = QPushButton("Acknowledge", line)
        ack.setObjectName("safetyAcknowledge")
        ack.setAccessibleName(f"Acknowledge the safety signal for {name}")
        ack.clicked.connect(lambda: self.acknowledge_requested.emit(appointment_id))
        row.addWidget(text, 1)
        row.addWidget(show)
        row.addWidget(ack)
        return line


def _local_time(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M")
