"""The witness's signature: drawn with mouse, pen or touch, or (when the
witness cannot draw one) a typed name with the reason recorded.

Before signing, the witness reads the declaration they are signing (the MG11
wording, with the statement's real page count) and confirms it: Sign stays
disabled until they tick that they have read it (DOMAIN.md: "the witness
reviews the final text ..., confirms the declaration and signs").

The law needs the statement to "purport to be signed"; a drawn or typed
signature is accepted, and disputes are settled on evidence, so a typed
signature always carries the reason it was typed.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QMouseEvent, QPainter, QPainterPath, QPen, QTabletEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..domain.statement_doc import SignatureKind, WitnessSignature

TYPED_REASONS = (
    "The witness is on video and cannot sign on the officer's screen",
    "The witness's phone could not show the signature pad",
    "The witness has a disability that prevents drawing a signature",
    "Other (say below)",
)
MIN_POINTS = 10  # fewer is a tap or a slip, not a signature


def _png(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


class SignatureCanvas(QWidget):
    """Collects strokes; pen and touch arrive as mouse events when not handled
    natively, tablet events are taken directly for pressure-free smooth lines."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("signatureCanvas")
        self.setMinimumSize(480, 160)
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents, True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAccessibleName("Signature pad: draw your signature here")
        self.strokes: list[list[QPointF]] = []

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.strokes)

    def clear(self) -> None:
        self.strokes.clear()
        self.update()
        self.changed.emit()

    def _start(self, p: QPointF) -> None:
        self.strokes.append([p])
        self.update()

    def _extend(self, p: QPointF) -> None:
        if self.strokes:
            self.strokes[-1].append(p)
            self.update()

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self._start(e.position())

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.buttons() & Qt.MouseButton.LeftButton:
            self._extend(e.position())

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.changed.emit()

    def tabletEvent(self, e: QTabletEvent) -> None:  # noqa: N802
        t = e.type()
        if t == QEvent.Type.TabletPress:
            self._start(e.position())
        elif t == QEvent.Type.TabletMove and e.pressure() > 0:
            self._extend(e.position())
        elif t == QEvent.Type.TabletRelease:
            self.changed.emit()
        e.accept()

    def event(self, e: QEvent) -> bool:
        if e.type() in (QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.TouchEnd):
            points = e.points()  # type: ignore[attr-defined]
            if points:
                p = points[0].position()
                if e.type() == QEvent.Type.TouchBegin:
                    self._start(p)
                elif e.type() == QEvent.Type.TouchUpdate:
                    self._extend(p)
                else:
                    self.changed.emit()
            e.accept()
            return True
        return super().event(e)

    def _paint(self, painter: QPainter, scale: float = 1.0) -> None:
        pen = QPen(
            QColor("#0b1f4b"), 2.4 * scale, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
        )
        painter.setPen(pen)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for stroke in self.strokes:
            path = QPainterPath(stroke[0] * scale)
            for p in stroke[1:]:
                path.lineTo(p * scale)
            if len(stroke) == 1:
                painter.drawPoint(stroke[0] * scale)
            else:
                painter.drawPath(path)

    def paintEvent(self, _e: QEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        painter.setPen(QPen(QColor("#9aa5b1"), 1, Qt.PenStyle.DashLine))
        baseline = self.height() * 0.75
        painter.drawLine(QPointF(16, baseline), QPointF(self.width() - 16, baseline))
        self._paint(painter)
        painter.end()

    def to_png(self) -> bytes:
        """The strokes on a transparent background, twice the widget's resolution."""
        scale = 2.0
        image = QImage(int(self.width() * scale), int(self.height() * scale), QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        self._paint(painter, scale)
        painter.end()
        return _png(image)


def typed_signature_png(name: str) -> bytes:
    """The typed name as an image, in an italic face, so it sits in the same
    signature box as a drawn one."""
    image = QImage(960, 240, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont("DejaVu Serif", 56)
    font.setItalic(True)
    # Shrink long names to fit the image rather than cutting them off.
    while font.pointSize() > 12 and QFontMetrics(font).horizontalAdvance(name) > 900:
        font.setPointSize(font.pointSize() - 2)
    painter.setFont(font)
    painter.setPen(QColor("#0b1f4b"))
    painter.drawText(QRectF(20, 0, 920, 240), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
    painter.end()
    return _png(image)


class SignaturePadDialog(QDialog):
    """Shows the witness the declaration and asks them to confirm it and sign.
    ``declaration`` is the template's text with the statement's page count
    (``Mg11Template.declaration_text``). ``signature`` is set when accepted."""

    def __init__(self, witness_name: str, declaration: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Witness signature")
        self.setObjectName("signaturePad")
        self.signature: WitnessSignature | None = None
        heading = QLabel("The declaration you are signing", self)
        heading.setStyleSheet("font-weight: 600;")
        self.declaration = QLabel(declaration, self)
        self.declaration.setObjectName("declarationText")
        self.declaration.setWordWrap(True)
        self.declaration.setTextFormat(Qt.TextFormat.PlainText)
        self.declaration.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.declaration.setFrameShape(QFrame.Shape.StyledPanel)
        self.declaration.setMargin(10)
        self.declaration.setStyleSheet("font-size: 12pt; background: #f7f7f2; color: #111;")
        self.declaration.setAccessibleName("Declaration")
        self.confirmed = QCheckBox("I have read the declaration above and I make it", self)
        self.confirmed.setObjectName("declarationRead")
        intro = QLabel(
            f"{witness_name or 'The witness'}: sign in the box below with the mouse, a pen or your finger. "
            "Your signature will be placed on every page of the statement and on its restricted rear page.",
            self,
        )
        intro.setWordWrap(True)
        self.canvas = SignatureCanvas(self)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setObjectName("clearSignature")
        self.clear_button.clicked.connect(self.canvas.clear)
        self.typed = QCheckBox("The witness cannot draw a signature: use a typed name", self)
        self.typed.setObjectName("useTyped")
        self.typed_name = QLineEdit(witness_name, self)
        self.typed_name.setObjectName("typedName")
        self.reason = QComboBox(self)
        self.reason.setObjectName("typedReason")
        self.reason.addItems(TYPED_REASONS)
        self.other_reason = QLineEdit(self)
        self.other_reason.setObjectName("otherReason")
        self.other_reason.setPlaceholderText("The reason, in a few words")
        typed_form = QFormLayout()
        typed_form.addRow("Typed name", self.typed_name)
        typed_form.addRow("Reason", self.reason)
        typed_form.addRow("", self.other_reason)
        self.typed_box = QWidget(self)
        self.typed_box.setLayout(typed_form)
        self.message = QLabel(self)
        self.message.setObjectName("signatureMessage")
        self.message.setStyleSheet("color: #a4161a;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.sign_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.sign_button.setText("Sign")
        self.sign_button.setObjectName("signSignature")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.declaration)
        layout.addWidget(self.confirmed)
        layout.addSpacing(6)
        layout.addWidget(intro)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(row)
        layout.addWidget(self.typed)
        layout.addWidget(self.typed_box)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.typed.toggled.connect(self._mode_changed)
        self._mode_changed(False)
        self.confirmed.toggled.connect(self.sign_button.setEnabled)
        self.sign_button.setEnabled(False)

    def _mode_changed(self, typed: bool) -> None:
        self.typed_box.setVisible(typed)
        self.canvas.setEnabled(not typed)
        self.clear_button.setEnabled(not typed)

    def accept(self) -> None:
        if not self.confirmed.isChecked():  # Sign is disabled; Enter or a direct call must not get round it
            self.message.setText("Please read the declaration and tick that you have read it before signing.")
            return
        now = datetime.now().astimezone()
        if self.typed.isChecked():
            reason = self.reason.currentText()
            if reason.startswith("Other"):
                reason = self.other_reason.text().strip()
            candidate = WitnessSignature(
                SignatureKind.TYPED, typed_signature_png(self.typed_name.text().strip()), now,
                typed_name=self.typed_name.text().strip(), reason=reason,
            )
        else:
            if self.canvas.points < MIN_POINTS:
                self.message.setText("Please draw a signature in the box (or use a typed name).")
                return
            candidate = WitnessSignature(SignatureKind.DRAWN, self.canvas.to_png(), now)
        problems = candidate.problems()
        if problems:
            self.message.setText(" ".join(problems))
            return
        self.signature = candidate
        super().accept()
