"""The officer's flows, driven as a person would: typing and clicking."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, QPoint, Qt
from PySide6.QtWidgets import QApplication

from evr_desktop.domain.appointment import Status
from evr_desktop.ui.appointment_dialog import AppointmentDialog
from evr_desktop.ui.queue_model import COL_STATUS, COL_TIME, COL_URN, COL_VICTIM
from tests.conftest import PASSPHRASE
from tests.ui.conftest import set_up


def open_new_dialog(qtbot, main) -> AppointmentDialog:
    qtbot.mouseClick(main.queue.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(main._dialogs), timeout=2000)
    return main._dialogs[-1]


def fill(qtbot, d: AppointmentDialog, name: str, mobile: str, urn: str = "99TT7654326") -> None:
    d.urn.clear()
    qtbot.keyClicks(d.urn, urn)
    qtbot.keyClicks(d.name, name)
    qtbot.keyClicks(d.mobile, mobile)
    d.dob_known.setChecked(True)
    d.dob.setDate(QDate(1975, 4, 1))
    d.slot.setDate(QDate.currentDate())


def test_first_run_shows_strength_and_refuses_weak_passphrase(qtbot, app_window):
    page = app_window.setup_page
    assert page.name.text() == "PC Demo Officer"  # demo officer prefilled
    qtbot.keyClicks(page.passphrase, "police")
    assert "Too weak" in page.strength.text()
    qtbot.keyClicks(page.confirm, "police")
    qtbot.mouseClick(page.button, Qt.MouseButton.LeftButton)
    assert "12 characters" in page.message.text()
    assert not app_window.workspace.paths.vault.exists()


def test_create_an_appointment_by_typing(qtbot, unlocked):
    d = open_new_dialog(qtbot, unlocked)
    fill(qtbot, d, "Blodwen Invented-Jones", "07700 900777")
    assert "Eligible for video" in d.eligibility_label.text()
    qtbot.mouseClick(d.buttons.button(d.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: unlocked.queue.model.rowCount() == 13, timeout=5000)
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=5000)
    names = [unlocked.queue.model.appointment(r).victim.full_name for r in range(13)]
    assert "Blodwen Invented-Jones" in names
    assert unlocked.session.store.count() == 13


def test_ineligible_appointment_is_refused_with_its_reason(qtbot, unlocked):
    d = open_new_dialog(qtbot, unlocked)
    fill(qtbot, d, "Cadfael Invented", "07700 900778")
    qtbot.mouseClick(d.offender_present, Qt.MouseButton.LeftButton)
    assert d.offender_present.isChecked()
    assert "offender is present" in d.eligibility_label.text()
    qtbot.mouseClick(d.buttons.button(d.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    assert d.isVisible()
    assert "Video cannot go ahead: The offender is present" in d.problems.text()
    assert unlocked.session.store.count() == 12


def test_under_18_without_guardian_refused_then_accepted_with_one(qtbot, unlocked):
    d = open_new_dialog(qtbot, unlocked)
    fill(qtbot, d, "Dilys Invented", "07700 900779")
    d.dob.setDate(QDate.currentDate().addYears(-15))
    qtbot.mouseClick(d.buttons.button(d.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    assert "parent or guardian must be present" in d.problems.text()
    d.guardian_box.setChecked(True)
    qtbot.keyClicks(d.guardian_name, "Emrys Invented")
    qtbot.keyClicks(d.guardian_relationship, "Father")
    qtbot.mouseClick(d.buttons.button(d.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: unlocked.session.store.count() == 13, timeout=5000)


def test_sort_filter_and_search(qtbot, unlocked):
    q = unlocked.queue
    proxy = q.proxy
    times = [proxy.data(proxy.index(r, COL_TIME), q.proxy.sortRole()) for r in range(proxy.rowCount())]
    assert times == sorted(times)
    header = q.table.horizontalHeader()
    click_at = QPoint(header.sectionViewportPosition(COL_VICTIM) + 5, header.height() // 2)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=click_at)
    assert header.sortIndicatorSection() == COL_VICTIM
    names = [proxy.index(r, COL_VICTIM).data() for r in range(proxy.rowCount())]
    descending = header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert names == sorted(names, key=str.casefold, reverse=descending)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=click_at)  # and back
    assert [proxy.index(r, COL_VICTIM).data() for r in range(proxy.rowCount())] == names[::-1]
    # Filter by status.
    q.status_filter.setCurrentIndex(q.status_filter.findData(Status.SCHEDULED.value))
    assert proxy.rowCount() == 4
    assert {proxy.index(r, COL_STATUS).data() for r in range(4)} == {"Scheduled"}
    q.status_filter.setCurrentIndex(0)
    # Search by name and by URN (typed with spaces).
    qtbot.keyClicks(q.search, "NIEWSKA")  # QTest can only type Latin-1: case-insensitive ASCII
    assert proxy.rowCount() == 1 and "Wiśniewska" in proxy.index(0, COL_VICTIM).data()
    q.search.clear()
    q.search.insert("wiśniewska")  # as an input method would deliver it
    assert proxy.rowCount() == 1
    q.search.clear()
    urn = proxy.index(3, COL_URN).data()
    qtbot.keyClicks(q.search, urn[:4] + " " + urn[4:])
    assert proxy.rowCount() == 1 and proxy.index(0, COL_URN).data() == urn
    q.search.clear()
    # Date filter: nothing tomorrow; everything when the day filter is off.
    q.show_day(date.today().replace(year=date.today().year + 1))
    assert proxy.rowCount() == 0 and "0 of 12" in q.count_label.text()
    q.day_enabled.setChecked(False)
    assert proxy.rowCount() == 12


def test_status_is_text_and_colour(unlocked):
    q = unlocked.queue
    idx = q.proxy.index(0, COL_STATUS)
    assert idx.data() in {s.label for s in Status}
    assert idx.data(Qt.ItemDataRole.BackgroundRole) is not None


def test_keyboard_navigation_selects_and_shows_details(qtbot, unlocked):
    q = unlocked.queue
    q.table.setFocus()
    q.table.selectRow(0)
    qtbot.keyClick(q.table, Qt.Key.Key_Down)
    selected = q.selected()
    assert selected is not None and q.detail.title.text() == selected.victim.full_name
    # Each selection is audited as a view; wait for this one's entry (the
    # first row's may land first under load).
    qtbot.waitUntil(
        lambda: (e := unlocked.session.audit.entries()[-1]).action == "appointment.view" and e.object_id == selected.id,
        timeout=5000,
    )


def test_set_status_offers_only_the_moves_the_lifecycle_allows_by_hand(qtbot, unlocked):
    from evr_desktop.domain.appointment import MANUAL_MOVES

    q = unlocked.queue
    for row in range(q.proxy.rowCount()):
        q.table.selectRow(row)
        a = q.selected()
        offered = {Status(q.detail.next_status.itemData(i)) for i in range(q.detail.next_status.count())}
        assert offered == MANUAL_MOVES[a.status], a.status
        assert not offered & {Status.VICTIM_WAITING, Status.IN_CALL, Status.SIGNED}
        assert q.detail.apply_status.isEnabled() is bool(offered)
    q.status_filter.setCurrentIndex(q.status_filter.findData(Status.SCHEDULED.value))
    q.table.selectRow(0)
    a = q.selected()
    q.detail.next_status.setCurrentIndex(q.detail.next_status.findData(Status.CANCELLED.value))
    qtbot.mouseClick(q.detail.apply_status, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: unlocked.session.store.get(a.id).status is Status.CANCELLED, timeout=3000)
    qtbot.waitUntil(lambda: q.proxy.rowCount() == 3, timeout=3000)


def test_lock_hides_everything_and_unlock_restores(qtbot, unlocked):
    main = unlocked
    main.queue.table.selectRow(0)
    d = open_new_dialog(qtbot, main)
    qtbot.keyClicks(d.name, "Half Typed Invented")
    d.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is d, timeout=2000)
    qtbot.keyClick(d.name, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # from inside the dialog
    qtbot.waitUntil(lambda: main.stack.currentWidget() is main.unlock_page, timeout=3000)
    assert main.window.windowTitle() == "EVR Desktop — locked"
    assert main.queue.model.rowCount() == 0 and main.queue.detail.title.text() == "Select an appointment"
    assert not d.isVisible() and main.session is None
    shown = " ".join(w.windowTitle() for w in QApplication.topLevelWidgets() if w.isVisible())
    assert "Invented" not in shown and "Morwenna" not in shown
    # Wrong passphrase: a clear message and a growing wait.
    page = main.unlock_page
    qtbot.keyClicks(page.passphrase, "not my passphrase at all")
    qtbot.keyClick(page.passphrase, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "not right" in page.message.text(), timeout=5000)
    assert not page.button.isEnabled() and page.button.text().startswith("Wait")
    qtbot.waitUntil(lambda: page.button.isEnabled(), timeout=3000)
    qtbot.keyClicks(page.passphrase, PASSPHRASE)
    qtbot.mouseClick(page.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.queue.model.rowCount() == 12, timeout=5000)
    assert "DEMO" in main.window.windowTitle() and "locked" not in main.window.windowTitle()


def test_inactivity_locks_the_app(qtbot, unlocked):
    unlocked.idle.set_timeout_ms(200)
    unlocked.idle.start()
    qtbot.waitUntil(lambda: unlocked.stack.currentWidget() is unlocked.unlock_page, timeout=3000)
    assert unlocked.queue.model.rowCount() == 0


def test_activity_postpones_the_lock(qtbot, unlocked):
    unlocked.idle.set_timeout_ms(400)
    unlocked.idle.start()
    for _ in range(6):
        qtbot.wait(150)
        qtbot.keyClick(unlocked.queue.search, Qt.Key.Key_A)
    assert unlocked.stack.currentWidget() is unlocked.queue


def test_set_up_with_typed_passphrase_then_restart_needs_unlock(qtbot, app_window):
    set_up(qtbot, app_window, "a quite different passphrase 77")
    assert app_window.workspace.paths.vault.exists()
