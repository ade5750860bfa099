"""The statement panel: MG11 fields, the narrative, the officer's prompts and
the completeness check. One widget, embeddable: it sits in the main window for
offline drafting and, later, docked beside the video in the call window.

The form is generated from the templates (``resources/templates``), so a new
field or offence is a data change. Rules (what is missing before signing)
come from ``domain.statement.missing_before_signing``; the panel only shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import QDate, QDateTime, QEvent, QObject, Qt, QTime, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..domain.exhibit import recording_time
from ..domain.statement import (
    ANSWER_LABELS,
    Field,
    FieldType,
    PromptSet,
    TemplateSet,
    missing_before_signing,
    prompt_sets,
)
from ..domain.statement_doc import FieldValue, StatementContent, StatementType
from .widgets import ScrollingLabelList, guard_wheels

PROMPT_KEY_ROLE = Qt.ItemDataRole.UserRole + 1
PROMPT_TEXT_ROLE = Qt.ItemDataRole.UserRole + 2

# A date field that is not filled in yet shows blank: its minimum stands for
# "not set" (QDateEdit has no empty state of its own). The template keeps
# dates as ISO text ("1990-01-31", "2026-11-28T10:00"); the officer reads and
# types dd/mm/yyyy.
_UNSET = QDateTime(QDate(1800, 1, 1), QTime(0, 0))


def _blankable(w: QDateTimeEdit, display: str) -> None:
    w.setDisplayFormat(display)
    w.setCalendarPopup(True)
    w.setMinimumDateTime(_UNSET)
    w.setSpecialValueText(" ")  # shown for the minimum: not set
    w.setDateTime(_UNSET)


def _show_iso(w: QDateTimeEdit, text: str) -> None:
    parsed = _parse_iso(text, date_only=isinstance(w, QDateEdit))
    w.setDateTime(parsed if parsed is not None else _UNSET)


def _parse_iso(text: str, date_only: bool) -> QDateTime | None:
    text = text.strip()
    if not text:
        return None
    try:
        if date_only:
            d = date.fromisoformat(text)
            return QDateTime(QDate(d.year, d.month, d.day), QTime(0, 0))
        dt = datetime.fromisoformat(text)
        return QDateTime(QDate(dt.year, dt.month, dt.day), QTime(dt.hour, dt.minute))
    except ValueError:
        return None


def _iso(w: QDateTimeEdit, stored: str) -> str:
    """The widget's value as ISO text; the stored text itself while it still
    means the same day and time (opening a statement must not change it)."""
    value = w.dateTime()
    if value == _UNSET:
        return ""
    date_only = isinstance(w, QDateEdit)
    if _parse_iso(stored, date_only) == value:
        return stored
    d = value.date()
    if date_only:
        return f"{d.year():04d}-{d.month():02d}-{d.day():02d}"
    t = value.time()
    return f"{d.year():04d}-{d.month():02d}-{d.day():02d}T{t.hour():02d}:{t.minute():02d}"


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{max(1, round(n / 1000))} KB"


def still_line(still: Any) -> str:
    """How the panel lists a still: ``RJ/1 · 02:13 in the recording · 1280×720 · 412 KB``."""
    at = getattr(still, "at_s", None)
    when = "before the recording's first frame" if at is None else f"{recording_time(at)} in the recording"
    state = getattr(still, "recording_state", "")
    note = "  (the recording had stopped)" if state == "failed" else ""
    return (f"{getattr(still, 'exhibit', '?')} · {when} · {getattr(still, 'width', 0)}×{getattr(still, 'height', 0)}"
            f" · {_size(int(getattr(still, 'ciphertext_size', 0) or 0))}{note}")


class _FieldEditor:
    """One template field and the widget that edits it."""

    def __init__(self, field: Field, parent: QWidget):
        self.field = field
        self._stored = ""  # a date as the template stores it (ISO), kept while the widget shows the same day
        t = field.type
        if t is FieldType.MULTILINE:
            w: QWidget = QPlainTextEdit(parent)
            w.setTabChangesFocus(True)
            w.setMaximumHeight(70)
        elif t is FieldType.BOOLEAN:
            w = QCheckBox(parent)
        elif t.is_answer:  # choice, yes/no, yes/no/N/A (boolean handled above)
            w = QComboBox(parent)
            w.addItem("", None)  # not answered yet
            for answer in field.answers:
                w.addItem(ANSWER_LABELS.get(answer, answer), answer)
        elif t is FieldType.DATE:
            w = QDateEdit(parent)
            _blankable(w, "dd/MM/yyyy")
        elif t is FieldType.DATETIME:
            w = QDateTimeEdit(parent)
            _blankable(w, "dd/MM/yyyy HH:mm")
        else:
            w = QLineEdit(parent)
            if field.max_length:
                w.setMaxLength(field.max_length)
        w.setObjectName(f"field_{field.id}")
        w.setToolTip(field.help)
        w.setAccessibleName(field.label)
        self.widget = w

    def value(self) -> FieldValue:
        w = self.widget
        if isinstance(w, QPlainTextEdit):
            return w.toPlainText()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QDateTimeEdit):  # QDateEdit too: the template's ISO text, "" when not set
            return _iso(w, self._stored)
        return w.text()

    def set_value(self, value: FieldValue) -> None:
        w = self.widget
        if isinstance(w, QPlainTextEdit):
            w.setPlainText(value if isinstance(value, str) else "")
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            index = w.findData(value) if value is not None else 0
            w.setCurrentIndex(max(index, 0))
        elif isinstance(w, QDateTimeEdit):
            self._stored = value if isinstance(value, str) else ""
            _show_iso(w, self._stored)
        else:
            w.setText(value if isinstance(value, str) else "")

    def connect(self, slot) -> None:  # noqa: ANN001
        w = self.widget
        if isinstance(w, QPlainTextEdit):
            w.textChanged.connect(slot)
        elif isinstance(w, QCheckBox):
            w.toggled.connect(slot)
        elif isinstance(w, QComboBox):
            w.currentIndexChanged.connect(slot)
        elif isinstance(w, QDateTimeEdit):
            w.dateTimeChanged.connect(slot)
        else:
            w.textChanged.connect(slot)

    def set_read_only(self, read_only: bool) -> None:
        w = self.widget
        if isinstance(w, (QPlainTextEdit, QLineEdit, QDateTimeEdit)):
            w.setReadOnly(read_only)
        else:
            w.setEnabled(not read_only)


class StatementPanel(QWidget):
    """Edits a ``StatementContent``. Emits ``changed`` on every edit and
    ``focus_left`` when focus leaves the panel (autosave triggers)."""

    changed = Signal()
    focus_left = Signal()

    def __init__(self, templates: TemplateSet, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("statementPanel")
        self.templates = templates
        self._offence: str | None = None
        self._type = StatementType.WITNESS
        self._loading = False
        self._read_only = False

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("statementTabs")
        self.editors: dict[str, _FieldEditor] = {}

        # -- page 1 header and narrative ------------------------------------
        statement_tab = QWidget(self)
        header = QGroupBox("Page 1", None)
        header_form = QFormLayout(header)
        # Docked beside the video the panel is narrow: a long label goes above its field.
        header_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.narrative = QPlainTextEdit(statement_tab)
        self.narrative.setObjectName("narrative")
        self.narrative.setAccessibleName("Statement narrative")
        self.narrative.setPlaceholderText(
            "The witness's account, in their own words: summary; who was there; "
            "setting the scene; what happened, in order; closure."
        )
        self.narrative.setTabChangesFocus(True)
        self.word_count = QLabel(statement_tab)
        self.word_count.setObjectName("wordCount")
        # Page 1's fields scroll in their own area above the narrative, so the
        # tab fits a 1366x768 screen (or 1280x720 at 150%) with the statement
        # docked beside the video; the divider gives the narrative more room.
        header_scroll = QScrollArea(statement_tab)
        header_scroll.setObjectName("page1Scroll")
        header_scroll.setWidgetResizable(True)
        header_scroll.setWidget(header)
        header_scroll.setMinimumHeight(90)
        narrative_box = QWidget(statement_tab)
        nb = QVBoxLayout(narrative_box)
        nb.setContentsMargins(0, 0, 0, 0)
        nb.addWidget(QLabel("Narrative", narrative_box))
        nb.addWidget(self.narrative, 1)
        nb.addWidget(self.word_count)
        self.narrative.setMinimumHeight(80)
        self.page1_split = QSplitter(Qt.Orientation.Vertical, statement_tab)
        self.page1_split.setObjectName("page1Split")
        self.page1_split.setChildrenCollapsible(False)
        self.page1_split.addWidget(header_scroll)
        self.page1_split.addWidget(narrative_box)
        self.page1_split.setStretchFactor(0, 2)
        self.page1_split.setStretchFactor(1, 3)
        self.page1_split.setSizes([220, 330])  # scaled to the room there is
        st = QVBoxLayout(statement_tab)
        st.setContentsMargins(4, 4, 4, 4)
        st.addWidget(self.page1_split, 1)
        self.tabs.addTab(statement_tab, "Statement")

        # -- restricted rear page ------------------------------------------------
        rear_inner = QWidget(self)
        rear_layout = QVBoxLayout(rear_inner)
        warning = QLabel("Restricted: for police and prosecution only. Never disclosed.", rear_inner)
        warning.setStyleSheet("color: #a4161a; font-weight: 600;")
        rear_layout.addWidget(warning)
        for section in templates.mg11.sections:
            if section.rear_page:
                box = QGroupBox(section.label, rear_inner)
                form = QFormLayout(box)
                form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
                for f in section.fields:
                    self._add_field(f, form, box)
                rear_layout.addWidget(box)
            else:
                for f in section.fields:
                    self._add_field(f, header_form, header)
        rear_layout.addStretch(1)
        rear_scroll = QScrollArea(self)
        rear_scroll.setWidgetResizable(True)
        rear_scroll.setWidget(rear_inner)
        self.tabs.addTab(rear_scroll, "Rear page (restricted)")

        # -- prompts --------------------------------------------------------------
        prompts_tab = QWidget(self)
        self.prompt_model = QStandardItemModel(self)
        self.prompt_view = QListView(prompts_tab)
        self.prompt_view.setObjectName("prompts")
        self.prompt_view.setModel(self.prompt_model)
        self.prompt_view.setWordWrap(True)
        self.prompt_text = QLabel(prompts_tab)
        self.prompt_text.setObjectName("promptText")
        self.prompt_text.setWordWrap(True)
        self.prompt_text.setStyleSheet("padding: 6px; background: #f4f1e8;")
        self.suspect_identified = QCheckBox("A suspect was identified (ADVOKATE applies)", prompts_tab)
        self.suspect_identified.setObjectName("suspectIdentified")
        split = QSplitter(Qt.Orientation.Vertical, prompts_tab)
        split.addWidget(self.prompt_view)
        split.addWidget(self.prompt_text)
        split.setStretchFactor(0, 3)
        pt = QVBoxLayout(prompts_tab)
        pt.addWidget(QLabel(
            "Tick each point once it is covered. The prompts are for you; they are not part of the statement.",
            prompts_tab,
        ))
        pt.addWidget(self.suspect_identified)
        pt.addWidget(split, 1)
        self.tabs.addTab(prompts_tab, "Prompts")
        self.prompt_view.selectionModel().currentChanged.connect(
            lambda cur, _prev: self.prompt_text.setText(cur.data(PROMPT_TEXT_ROLE) or "")
        )

        # -- completeness ---------------------------------------------------------
        # What is missing: a heading, then every item in a list that scrolls
        # inside itself (thirty items must not make the window taller than the screen).
        self.missing = QLabel(self)
        self.missing.setObjectName("missing")
        self.missing.setWordWrap(True)
        self.missing.setTextFormat(Qt.TextFormat.PlainText)
        self.missing_list = ScrollingLabelList(5, self)
        self.missing_list.setObjectName("missingList")
        self.missing_list.setStyleSheet("color: #8a5a00;")

        # -- stills taken in the call (exhibits) ---------------------------------------
        # Under the tabs, so they stay in view beside the video whichever tab is open;
        # hidden while there are none. Read from the store, so they survive reopening.
        self.stills_heading = QLabel("Stills (exhibits)", self)
        self.stills_heading.setObjectName("stillsHeading")
        self.stills_heading.setStyleSheet("font-weight: 600;")
        self.stills_list = QListWidget(self)
        self.stills_list.setObjectName("stillsList")
        self.stills_list.setMaximumHeight(76)
        self.stills_list.setToolTip("Stills of the victim's video taken during the call, encrypted as evidence.")
        self.stills_heading.hide()
        self.stills_list.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.stills_heading)
        layout.addWidget(self.stills_list)
        layout.addWidget(self.missing)
        layout.addWidget(self.missing_list)

        self.narrative.textChanged.connect(self._edited)
        self.prompt_model.itemChanged.connect(lambda _item: self._edited())
        self.suspect_identified.toggled.connect(lambda _on: self._rebuild_prompts(keep=True))
        for editor in self.editors.values():
            editor.connect(self._edited)
        guard_wheels(self)  # scrolling past a choice or date never changes it
        self._watch_focus()
        self.set_content(StatementContent())

    def _add_field(self, f: Field, form: QFormLayout, parent: QWidget) -> None:
        editor = _FieldEditor(f, parent)
        self.editors[f.id] = editor
        label = f.label + (" *" if f.required else "")
        form.addRow(label, editor.widget)

    def date_fields(self) -> dict[str, bool]:
        """Field id -> True for a date and time, False for a date: for showing them dd/mm/yyyy."""
        return {
            fid: e.field.type is FieldType.DATETIME
            for fid, e in self.editors.items() if e.field.type in (FieldType.DATE, FieldType.DATETIME)
        }

    # -- focus: autosave when focus leaves the panel ----------------------------
    def _watch_focus(self) -> None:
        for w in [self.narrative, *(e.widget for e in self.editors.values())]:
            w.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.FocusOut:
            self.focus_left.emit()
        return False

    # -- content in and out --------------------------------------------------------
    def set_content(self, content: StatementContent) -> None:
        self._loading = True
        try:
            self._offence = content.offence
            self._type = content.statement_type
            for field_id, editor in self.editors.items():
                value = content.fields.get(field_id, editor.field.default)
                editor.set_value(value)
            self.narrative.setPlainText(content.narrative)
            self.suspect_identified.setChecked(content.suspect_identified)
            self._rebuild_prompts(ticked=set(content.ticked_prompts))
        finally:
            self._loading = False
        self._refresh()

    def content(self) -> StatementContent:
        fields: dict[str, FieldValue] = {}
        for field_id, editor in self.editors.items():
            value = editor.value()
            if value is None or value == "" or (value is False and editor.field.default is None):
                continue
            fields[field_id] = value
        return StatementContent(
            statement_type=self._type,
            fields=fields,
            narrative=self.narrative.toPlainText(),
            ticked_prompts=frozenset(self._ticked()),
            offence=self._offence,
            suspect_identified=self.suspect_identified.isChecked(),
        )

    def _prompt_sets(self) -> list[PromptSet]:
        return prompt_sets(
            self.templates, vps=self._type is StatementType.VPS, offence=self._offence,
            suspect_identified=self.suspect_identified.isChecked(),
        )

    def _ticked(self) -> set[str]:
        out = set()
        for row in range(self.prompt_model.rowCount()):
            item = self.prompt_model.item(row)
            key = item.data(PROMPT_KEY_ROLE)
            if key and item.checkState() == Qt.CheckState.Checked:
                out.add(key)
        return out

    def _rebuild_prompts(self, ticked: set[str] | None = None, keep: bool = False) -> None:
        if keep:
            ticked = self._ticked()
        ticked = ticked or set()
        self.prompt_model.clear()
        for s in self._prompt_sets():
            heading = QStandardItem(s.label)
            heading.setEditable(False)
            heading.setSelectable(False)
            font = heading.font()
            font.setBold(True)
            heading.setFont(font)
            self.prompt_model.appendRow(heading)
            for p in s.prompts:
                item = QStandardItem(p.label + (" *" if p.required_for_signing else ""))
                item.setEditable(False)
                item.setCheckable(not self._read_only)
                item.setCheckState(Qt.CheckState.Checked if p.key in ticked else Qt.CheckState.Unchecked)
                item.setData(p.key, PROMPT_KEY_ROLE)
                item.setData(p.text + (f"\n\n{p.help}" if p.help else ""), PROMPT_TEXT_ROLE)
                item.setToolTip(p.text)
                self.prompt_model.appendRow(item)
        if not self._loading:
            self._edited()

    # -- stills ----------------------------------------------------------------------
    def set_stills(self, stills: Iterable[Any]) -> None:
        """The appointment's stills (``store.stills.StillRecord``s), in the order taken."""
        self.stills_list.clear()
        for still in stills:
            self.add_still(still)
        self._show_stills()

    def add_still(self, still: Any) -> None:
        """One still more (taken just now in the call)."""
        item = QListWidgetItem(still_line(still))
        item.setData(Qt.ItemDataRole.UserRole, getattr(still, "exhibit", ""))
        item.setToolTip(f"SHA-256 of the encrypted file: {getattr(still, 'ciphertext_sha256', '')}")
        self.stills_list.addItem(item)
        self.stills_list.scrollToBottom()
        self._show_stills()

    def still_lines(self) -> list[str]:
        return [self.stills_list.item(i).text() for i in range(self.stills_list.count())]

    def _show_stills(self) -> None:
        n = self.stills_list.count()
        self.stills_heading.setText(f"Stills (exhibits): {n}")
        self.stills_heading.setVisible(bool(n))
        self.stills_list.setVisible(bool(n))

    # -- state ---------------------------------------------------------------------
    def set_read_only(self, read_only: bool) -> None:
        """A signed statement is locked: a change needs a new version with a reason."""
        self._read_only = read_only
        self.narrative.setReadOnly(read_only)
        for editor in self.editors.values():
            editor.set_read_only(read_only)
        self.suspect_identified.setEnabled(not read_only)
        for row in range(self.prompt_model.rowCount()):
            item = self.prompt_model.item(row)
            if item.data(PROMPT_KEY_ROLE):
                item.setCheckable(not read_only)
                item.setEnabled(not read_only)

    def missing_items(self) -> list[str]:
        return missing_before_signing(self.content(), self.templates)

    def _edited(self) -> None:
        if self._loading:
            return
        self._refresh()
        self.changed.emit()

    def _refresh(self) -> None:
        words = len(self.narrative.toPlainText().split())
        self.word_count.setText(f"{words} word{'s' if words != 1 else ''}")
        missing = self.missing_items()
        if missing:
            n = len(missing)
            self.missing.setText(f"Before signing: {n} item{'s' if n != 1 else ''} missing")
            self.missing.setStyleSheet("color: #8a5a00; font-weight: 600;")
        else:
            self.missing.setText("Complete: ready for the witness to review and sign.")
            self.missing.setStyleSheet("color: #1b5e20;")
        self.missing_list.set_lines(missing)
