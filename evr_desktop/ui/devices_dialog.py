"""Choose the camera and microphone for the next call.

Devices are listed on the worker (OpenCV and PortAudio probe hardware, which
can take a moment); "Test pattern" and "Test tone" stand for no device, which
is what a laptop without a camera or microphone uses anyway.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from .widgets import guard_wheels, keep_on_screen


class DevicesDialog(QDialog):
    def __init__(self, cameras: list, microphones: list, camera: int | None, microphone: int | None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Camera and microphone")
        self.setObjectName("devicesDialog")
        self.camera = QComboBox(self)
        self.camera.setObjectName("cameraChoice")
        self.camera.addItem("Automatic (first camera, else a test pattern)", None)
        for c in cameras:
            self.camera.addItem(c.name, c.index)
        self.microphone = QComboBox(self)
        self.microphone.setObjectName("microphoneChoice")
        self.microphone.addItem("Automatic (default microphone, else a test tone)", None)
        for m in microphones:
            self.microphone.addItem(m.name, m.index)
        for combo, value in ((self.camera, camera), (self.microphone, microphone)):
            index = combo.findData(value) if value is not None else 0
            combo.setCurrentIndex(max(index, 0))
        note = QLabel(
            ("No camera was found. " if not cameras else "")
            + ("No microphone was found. " if not microphones else "")
            + "The choice applies from the next call.",
            self,
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Camera", self.camera)
        form.addRow("Microphone", self.microphone)
        form.addRow(note)
        form.addRow(buttons)
        guard_wheels(self)
        keep_on_screen(self)

    def choice(self) -> tuple[int | None, int | None]:
        return self.camera.currentData(), self.microphone.currentData()
