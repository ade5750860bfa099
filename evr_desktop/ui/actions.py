"""Every main-window action, declared in one place (Picard's actions.py)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass
class Actions:
    new_appointment: QAction
    edit_appointment: QAction
    find: QAction
    new_statement: QAction
    devices: QAction
    outbox: QAction
    lock: QAction
    quit: QAction

    @classmethod
    def create(cls, parent: QWidget) -> Actions:
        def make(text: str, shortcut: QKeySequence.StandardKey | str, name: str) -> QAction:
            a = QAction(text, parent)
            a.setObjectName(name)
            # setShortcuts, not setShortcut: resolving setShortcut's overloads
            # builds every enum of PySide6's ``Qt`` namespace (~25-40 ms) before
            # the first paint. A standard key also gets all its platform bindings.
            if isinstance(shortcut, str):
                a.setShortcuts([QKeySequence(shortcut)])
            else:
                a.setShortcuts(shortcut)
            parent.addAction(a)
            return a

        lock = make("&Lock", "Ctrl+L", "actionLock")
        return cls(
            new_appointment=make("&New appointment…", QKeySequence.StandardKey.New, "actionNew"),
            edit_appointment=make("&Edit appointment…", "Ctrl+E", "actionEdit"),
            find=make("&Find", QKeySequence.StandardKey.Find, "actionFind"),
            outbox=make("&Outbox…", "Ctrl+Shift+O", "actionOutbox"),
            devices=make("Camera and &microphone…", "Ctrl+Shift+D", "actionDevices"),
            new_statement=make("New statement &without appointment…", "Ctrl+Shift+N", "actionNewStatement"),
            lock=lock,
            quit=make("&Quit", QKeySequence.StandardKey.Quit, "actionQuit"),
        )

    def set_unlocked(self, unlocked: bool) -> None:
        for a in (self.new_appointment, self.edit_appointment, self.find, self.new_statement, self.devices,
                  self.outbox, self.lock):
            a.setEnabled(unlocked)
