"""Forms that do not change by accident, dates as the officer reads them,
history in words, the call window's chat, warnings and confirmations, and
window geometry remembered (geometry only, in a temporary QSettings)."""

from __future__ import annotations

import concurrent.futures
import re
import threading
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDateTimeEdit,
    QMessageBox,
    QWidget,
)

from evr_desktop.call import events as ev
from evr_desktop.domain.statement_doc import StatementContent, StatementVersion
from evr_desktop.statement.templates import load_templates
from evr_desktop.ui.appointment_dialog import AppointmentDialog
from evr_desktop.ui.call_screen import CallScreen
from evr_desktop.ui.setup_page import SetupPage
from evr_desktop.ui.statement_panel import StatementPanel
from evr_desktop.ui.statement_screen import _diff_html, prompt_labels
from evr_desktop.ui.widgets import remember_geometry, ui_settings


@pytest.fixture(scope="module")
def templates():
    return load_templates()


# -- the wheel ----------------------------------------------------------------------
def value_of(w: QWidget) -> object:
    if isinstance(w, QComboBox):
        return w.currentIndex()
    if isinstance(w, QDateTimeEdit):  # QDateEdit too
        return w.dateTime()
    return w.value()  # QSpinBox, QDoubleSpinBox


def wheel(w: QWidget, up: bool) -> None:
    centre = QPointF(w.width() / 2, w.height() / 2)
    event = QWheelEvent(
        centre, QPointF(w.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 if up else -120),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(w, event)


def wheel_sensitive(root: QWidget) -> list[QWidget]:
    return [w for w in root.findChildren(QWidget) if isinstance(w, (QComboBox, QAbstractSpinBox))]


def check_wheel_changes_nothing(qtbot, root: QWidget) -> int:
    found = wheel_sensitive(root)
    assert found
    for w in found:
        w.clearFocus()
        assert not w.hasFocus()
        assert w.focusPolicy() == Qt.FocusPolicy.StrongFocus, w.objectName()
        before = value_of(w)
        for up in (True, True, False, False, False):
            wheel(w, up)
        assert value_of(w) == before, f"{type(w).__name__} {w.objectName()} changed on the wheel"
    return len(found)


def test_the_wheel_changes_no_choice_number_or_date_in_the_statement_panel(qtbot, templates):
    panel = StatementPanel(templates)
    qtbot.addWidget(panel)
    panel.set_content(StatementContent(offence="assault", fields={"date_of_birth": "1990-01-31",
                                                                  "classification": None}))
    panel.show()
    n = check_wheel_changes_nothing(qtbot, panel)
    assert n >= 10  # every yes/no and choice on both pages, and the two dates
    assert panel.content().fields["date_of_birth"] == "1990-01-31"


def test_the_wheel_changes_nothing_in_the_booking_dialog(qtbot):
    d = AppointmentDialog()
    qtbot.addWidget(d)
    d.dob_known.setChecked(True)
    d.show()
    names = {w.objectName() for w in wheel_sensitive(d)}
    assert {"slot", "offence", "dob", "safePlace"} <= names
    check_wheel_changes_nothing(qtbot, d)


def test_a_focused_field_still_takes_the_wheel(qtbot):
    """The guard stops accidents, not deliberate use."""
    d = AppointmentDialog()
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    d.activateWindow()
    d.offence.setFocus()
    qtbot.waitUntil(d.offence.hasFocus, timeout=2000)
    before = d.offence.currentIndex()
    wheel(d.offence, up=False)
    assert d.offence.currentIndex() != before


# -- dates ---------------------------------------------------------------------------
def test_dates_read_dd_mm_yyyy_in_the_panel_and_keep_their_stored_form(qtbot, templates):
    panel = StatementPanel(templates)
    qtbot.addWidget(panel)
    panel.set_content(StatementContent(fields={"date_of_birth": "1990-01-31", "time_taken": "2026-11-28T10:00"}))
    dob = panel.editors["date_of_birth"].widget
    taken = panel.editors["time_taken"].widget
    assert dob.displayFormat() == "dd/MM/yyyy" and dob.text() == "31/01/1990"
    assert taken.displayFormat() == "dd/MM/yyyy HH:mm" and taken.text() == "28/11/2026 10:00"
    c = panel.content()  # opening a statement must not change what was stored
    assert c.fields["date_of_birth"] == "1990-01-31" and c.fields["time_taken"] == "2026-11-28T10:00"
    dob.setDate(dob.date().addDays(1))
    assert panel.content().fields["date_of_birth"] == "1990-02-01"
    # Not filled in: shown blank, and not in the content (so completeness still asks for it).
    panel.set_content(StatementContent())
    assert dob.text().strip() == "" and "date_of_birth" not in panel.content().fields
    assert any("date of birth" in m for m in panel.missing_items())
    # The rear page (restricted) is where these dates live: every date editor reads dd/mm/yyyy.
    for w in panel.findChildren(QDateTimeEdit):
        assert w.displayFormat().startswith("dd/MM/yyyy")


def test_dates_read_dd_mm_yyyy_in_the_booking_dialog(qtbot):
    d = AppointmentDialog()
    qtbot.addWidget(d)
    assert d.slot.displayFormat() == "dd/MM/yyyy HH:mm"
    assert d.dob.displayFormat() == "dd/MM/yyyy" and d.dob.text() == "01/01/1990"
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", d.slot.text())


# -- messages that no longer apply ----------------------------------------------------
def test_booking_dialog_never_says_eligible_and_cannot_go_ahead_together(qtbot):
    d = AppointmentDialog()
    qtbot.addWidget(d)
    d.urn.setText("99TT7654326")
    d.name.setText("Branwen Invented")
    d.mobile.setText("07700 900123")
    d.dob_known.setChecked(True)
    d.offender_present.setChecked(True)
    d.accept()
    assert "cannot go ahead" in d.problems.text() and "Not eligible" in d.eligibility_label.text()
    d.offender_present.setChecked(False)  # fixed
    assert d.eligibility_label.text() == "Eligible for video."
    assert "cannot go ahead" not in d.problems.text()
    d.name.clear()  # a data problem appears live too, once Save has been pressed
    assert "name" in d.problems.text().lower()


def test_set_up_page_messages_go_once_fixed(qtbot):
    page = SetupPage(demo=True)
    qtbot.addWidget(page)
    page.passphrase.setText("short")
    page.button.click()
    assert "12 characters" in page.message.text() and "differ" in page.message.text()
    page.passphrase.setText("correct horse battery staple 42")
    assert "12 characters" not in page.message.text() and "differ" in page.message.text()
    page.confirm.setText("correct horse battery staple 42")
    assert page.message.text() == ""


# -- history in words -------------------------------------------------------------------
def test_history_names_fields_and_prompts_by_label_with_dates_dd_mm_yyyy(templates):
    assault = next(s for s in templates.offences if s.id == "assault")
    prompt = assault.prompts[0]
    old = StatementContent(offence="assault", fields={"date_of_birth": "1990-01-31", "postcode": "CF10 1AA"})
    new = StatementContent(offence="assault", fields={"date_of_birth": "1990-02-01", "postcode": "CF10 1AB",
                                                      "time_taken": "2026-11-28T10:00"},
                           ticked_prompts=frozenset({prompt.key}))
    at = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    a, b = StatementVersion("s", 1, old, at), StatementVersion("s", 2, new, at)
    labels = {f.id: f.label for s in templates.mg11.sections for f in s.fields}
    panel_dates = {"date_of_birth": False, "time_taken": True}
    _summary, html_text = _diff_html(a, b, labels, prompt_labels(templates), panel_dates)
    assert "Date of birth: 31/01/1990" in html_text and "01/02/1990" in html_text
    assert "28/11/2026 10:00" in html_text
    assert "Postcode" in html_text and "Time and date taken" in html_text  # rear-page fields
    assert prompt.label in html_text
    for raw in ("date_of_birth", "postcode", "time_taken", prompt.key, "1990-01-31"):
        assert raw not in html_text, raw


# -- the call window --------------------------------------------------------------------
class FakeEngine:
    """Just enough of CallEngine for the window: sends fail when told to."""

    def __init__(self) -> None:
        self.frame_listener = None
        self.fail_sends = False
        self.sent: list[str] = []
        self.ended: list[str] = []

    def start_call(self, appointment: str) -> None:
        pass

    def end_call(self, appointment: str, reason: str = "") -> None:
        self.ended.append(appointment)

    def send_chat(self, appointment: str, text: str, mid: str | None = None) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.sent.append(text)

        def finish() -> None:  # on another thread, as the engine's loop does
            if self.fail_sends:
                future.set_exception(ConnectionError("neither the data channel nor the rendezvous is connected"))
            else:
                future.set_result("datachannel")

        threading.Timer(0.05, finish).start()
        return future

    def latest_remote_bgra(self, appointment: str):
        return None

    def latest_local_preview(self):
        return None


@pytest.fixture
def call(qtbot):
    engine = FakeEngine()
    screen = CallScreen(engine)
    qtbot.addWidget(screen)
    screen.resize(900, 600)
    screen.show()
    screen.start("appt-1")
    return screen, engine


def chat_texts(screen: CallScreen) -> list[str]:
    return [screen.chat.item(i).text() for i in range(screen.chat.count())]


def test_chat_lines_carry_times_wrap_and_a_failed_send_says_not_sent(qtbot, call):
    screen, engine = call
    screen.chat_input.setText("Hello, can you hear me?")
    screen.send_chat()
    screen.on_event(ev.ChatReceived("appt-1", "Yes"))
    texts = chat_texts(screen)
    assert re.fullmatch(r"\d\d:\d\d  You: Hello, can you hear me\?", texts[0])
    assert re.fullmatch(r"\d\d:\d\d  Victim: Yes", texts[1])
    qtbot.wait(200)
    assert "not sent" not in chat_texts(screen)[0]  # it went

    engine.fail_sends = True
    screen.chat_input.setText("Are you somewhere safe?")
    screen.send_chat()
    qtbot.waitUntil(lambda: "not sent" in chat_texts(screen)[2], timeout=3000)
    assert chat_texts(screen)[2].startswith(texts[0][:2]) and "Are you somewhere safe?" in chat_texts(screen)[2]
    assert "not sent" in screen.chat.item(2).toolTip()

    long = "I was walking home along the high street when " * 6
    screen.chat_input.setText(long)
    screen.send_chat()
    item = screen.chat.item(3)
    rect = screen.chat.visualItemRect(item)
    assert screen.chat.wordWrap()
    assert rect.height() > 2 * screen.chat.fontMetrics().height()  # wrapped onto several lines
    assert rect.width() <= screen.chat.viewport().width()  # no sideways scrolling


def test_device_and_speaker_notes_show_in_the_call_window(qtbot, call):
    screen, _engine = call
    assert not screen.warnings.isVisible()
    screen.set_speaker_note("No speaker or headset was found: you will not hear the victim.")
    screen.on_event(ev.Error("No microphone was found: the call sends a test tone instead.", code="device-substituted"))
    assert screen.warnings.isVisible()
    assert "test tone" in screen.warnings.text() and "No speaker" in screen.warnings.text()
    assert "test tone" not in screen.state.text()  # a note, not the call's state


def test_end_call_asks_first(qtbot, call, monkeypatch):
    screen, engine = call
    answers = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: answers.append(self.text()) or QMessageBox.StandardButton.No)
    qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
    assert answers and screen.appointment == "appt-1" and engine.ended == []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
    assert screen.appointment is None and engine.ended == ["appt-1"]


def test_manual_lock_with_a_call_open_asks_first_and_the_idle_lock_does_not(qtbot, unlocked, monkeypatch):
    main = unlocked
    engine = FakeEngine()
    screen = CallScreen(engine, main.window)
    main.calls.screen = screen
    screen.start("appt-lock")
    asked = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: asked.append(self.text()) or QMessageBox.StandardButton.No)
    main.actions.lock.trigger()  # Ctrl+L
    assert asked and "Lock" in asked[0]
    assert main.session is not None and screen.appointment == "appt-lock"  # the officer said no
    monkeypatch.setattr(QMessageBox, "exec", lambda self: QMessageBox.StandardButton.Yes)
    main.actions.lock.trigger()
    assert main.session is None and main.stack.currentWidget() is main.unlock_page
    assert engine.ended == ["appt-lock"]
    # The idle lock never asks (it must lock): lock() ends any call cleanly by itself.
    main.unlock_page.passphrase.setText("correct horse battery staple 42")
    main.unlock_page.button.click()
    qtbot.waitUntil(lambda: main.session is not None, timeout=10000)
    screen.start("appt-idle")
    monkeypatch.setattr(QMessageBox, "exec", lambda self: pytest.fail("the idle lock asked"))
    main.lock()
    assert main.session is None and engine.ended == ["appt-lock", "appt-idle"]


def test_quitting_with_a_call_open_asks_first(qtbot, unlocked, monkeypatch):
    main = unlocked
    engine = FakeEngine()
    screen = CallScreen(engine, main.window)
    main.calls.screen = screen
    screen.start("appt-quit")
    asked = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: asked.append(self.text()) or QMessageBox.StandardButton.No)
    assert not main.window.close()  # the officer said no: the window stays, the call goes on
    assert asked and "Quit" in asked[0] and main.window.isVisible() and screen.appointment == "appt-quit"
    screen.end_call()
    monkeypatch.setattr(QMessageBox, "exec", lambda self: pytest.fail("asked with no call open"))
    closing = QCloseEvent()  # no call: closing does not ask (sent, not close(), so the fixture's teardown runs)
    QApplication.sendEvent(main.window, closing)
    assert closing.isAccepted() and len(asked) == 1


def test_no_call_no_question(qtbot, call, monkeypatch):
    screen, _engine = call
    screen.end_call()
    monkeypatch.setattr(QMessageBox, "exec", lambda self: pytest.fail("asked with no call open"))
    assert screen.confirm_leave("Lock the app")


# -- geometry remembered ----------------------------------------------------------------
def test_window_geometry_and_splitter_are_remembered_in_a_temporary_settings_file(qtbot, private_window_settings):
    from PySide6.QtWidgets import QLabel, QSplitter

    def make() -> tuple[QWidget, QSplitter]:
        w = QWidget()
        w.setObjectName("rememberMe")
        s = QSplitter(w)
        s.addWidget(QLabel("a"))
        s.addWidget(QLabel("b"))
        s.resize(600, 300)
        w.resize(640, 480)
        remember_geometry(w, "test", {"split": s})
        qtbot.addWidget(w)
        return w, s

    w, s = make()
    w.show()
    w.resize(700, 500)
    s.setSizes([400, 200])
    w.close()
    w2, _s2 = make()
    assert (w2.width(), w2.height()) == (700, 500)
    settings = ui_settings()
    assert settings.fileName().startswith(str(private_window_settings))  # never the user's own settings
    assert set(settings.allKeys()) == {"geometry/test", "splitter/test/split"}  # geometry only

    # A size remembered from a bigger screen is clamped to this one.
    big = QWidget()
    qtbot.addWidget(big)
    big.resize(5000, 4000)
    big.show()
    big.close()
    settings.setValue("geometry/huge", big.saveGeometry())
    small = QWidget()
    qtbot.addWidget(small)
    remember_geometry(small, "huge")
    area = QApplication.primaryScreen().availableGeometry()
    assert small.width() <= area.width() and small.height() <= area.height()
    assert isinstance(QSettings.defaultFormat(), QSettings.Format)


def test_one_name_for_the_six_digits_in_the_app_and_on_the_victims_page(call):
    """"Verification code" on both sides (English), "Cod dilysu" in Welsh."""
    from tests.conftest import REPO

    screen, _engine = call
    assert screen.code.text().startswith("Verification code")
    strings = (REPO / "resources/web/strings.js").read_text(encoding="utf-8")
    assert 'code_label: "Verification code"' in strings and 'code_label: "Cod dilysu"' in strings
    for path in [*(REPO / "resources/web").iterdir(), REPO / "README.md", REPO / "docs/victim-page.md"]:
        text = path.read_text(encoding="utf-8").lower()
        for other in ("security code", "safety code", "cod diogelwch", "confirmation code"):
            assert other not in text, f"{path.name}: {other}"
