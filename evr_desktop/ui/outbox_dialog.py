"""The outbox: text messages waiting to be sent, for the officer to copy.

The embedded default reaches no SMS gateway, so the link's text waits here
(encrypted in the store). Copy puts it on the clipboard and marks it copied;
Mark sent records that it went out. Opening the outbox is audited as a view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1


class OutboxDialog(QDialog):
    def __init__(self, messages: list[Any], run: Callable[..., None], notifier: Callable[[], Any],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Outbox: text messages to send")
        self.setObjectName("outboxDialog")
        self.resize(640, 420)
        self._run = run
        self._notifier = notifier
        self.list = QListWidget(self)
        self.list.setObjectName("outboxList")
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("outboxText")
        self.text.setReadOnly(True)
        self.to = QLabel(self)
        self.to.setObjectName("outboxTo")
        self.to.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QPushButton("&Copy text", self)
        self.copy_button.setObjectName("copyText")
        self.sent_button = QPushButton("Mark &sent", self)
        self.sent_button.setObjectName("markSent")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.to, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.sent_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("No SMS gateway is set up: copy each text and send it from a force phone.", self))
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.list.currentItemChanged.connect(lambda item, _prev: self._show(item))
        self.copy_button.clicked.connect(self.copy)
        self.sent_button.clicked.connect(self.mark_sent)
        self.set_messages(messages)

    def set_messages(self, messages: list[Any]) -> None:
        self.list.clear()
        for m in messages:
            item = QListWidgetItem(f"{m.created:%d %b %H:%M} · {m.status.label} · {m.to_e164}")
            item.setData(MESSAGE_ROLE, m)
            self.list.addItem(item)
        if messages:
            self.list.setCurrentRow(0)
        else:
            self._show(None)

    def _current(self) -> Any:
        item = self.list.currentItem()
        return item.data(MESSAGE_ROLE) if item is not None else None

    def _show(self, item: QListWidgetItem | None) -> None:
        m = item.data(MESSAGE_ROLE) if item is not None else None
        self.text.setPlainText(m.body if m else "")
        self.to.setText(f"To {m.to_e164}" if m else "The outbox is empty.")
        for b in (self.copy_button, self.sent_button):
            b.setEnabled(m is not None)

    def copy(self) -> None:
        m = self._current()
        if m is None:
            return
        QGuiApplication.clipboard().setText(m.body)
        self._update(lambda n: n.mark_copied(m.id))

    def mark_sent(self) -> None:
        m = self._current()
        if m is not None:
            self._update(lambda n: n.mark_sent(m.id))

    def _update(self, change: Callable[[Any], Any]) -> None:
        notifier = self._notifier()
        if notifier is None:
            return
        row = self.list.currentRow()

        def done(messages: list[Any]) -> None:
            self.set_messages(messages)
            self.list.setCurrentRow(min(row, self.list.count() - 1))

        self._run(lambda: (change(notifier), notifier.list())[1], done, lambda e: self.to.setText(str(e)))
