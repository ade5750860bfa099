"""Small shared widgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

# Not ``Qt``: its first use builds every enum of the namespace (~25-40 ms),
# and this module loads before the unlock screen's first paint
# (tests/ui/test_startup_imports.py). Functions that need it import it.
from PySide6.QtCore import QByteArray, QCoreApplication, QEvent, QObject, QRect, QSettings, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QLayout,
    QLayoutItem,
    QLineEdit,
    QListWidget,
    QSizePolicy,
    QSplitter,
    QWidget,
)

if TYPE_CHECKING:
    from PySide6.QtCore import Qt


class FirstPaint(QObject):
    """An event filter that calls back once, the first time a watched widget
    is painted (the benchmarks' hooks, and work deferred until the officer
    can already see the screen)."""

    def __init__(self, callback: Callable[[], None], parent: QObject | None = None):
        super().__init__(parent)
        self._callback: Callable[[], None] | None = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint and self._callback is not None:
            cb, self._callback = self._callback, None
            cb()
        return False


class CloseGuard(QObject):
    """An event filter that lets a window close only when ``allow()`` says so
    (quitting with a call open asks first, like End call and Ctrl+L)."""

    def __init__(self, allow: Callable[[], bool], parent: QObject | None = None):
        super().__init__(parent)
        self._allow = allow

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Close and not self._allow():
            event.ignore()
            return True
        return False


class PasswordLineEdit(QLineEdit):
    """A passphrase field that overwrites its buffer before clearing it
    (Electrum's ``PasswordLineEdit.clear``): Python cannot wipe strings, but
    Qt's own copy can at least be overwritten."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setEchoMode(QLineEdit.EchoMode.Password)

    def clear(self) -> None:
        self.setText("*" * len(self.text()))
        super().clear()


# -- the screen: nothing wider or taller than the laptop's ------------------------
def available_geometry(widget: QWidget) -> QRect:
    """The usable part of the screen the widget is on (or will open on): the
    whole screen less task bars and docks, in logical pixels (a 1920x1080
    screen at 150% gives 1280x720)."""
    screen = widget.screen() if widget.isWindow() else widget.window().screen()
    if screen is None:
        screen = QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, 1366, 768)


# Room for the window manager's title bar and borders, which frameGeometry
# includes and geometry does not (none under a bare X server, ~30-40 px on a desktop).
_FRAME_ALLOWANCE = QSize(16, 40)


def fit_to_screen(window: QWidget, width: int | None = None, height: int | None = None) -> None:
    """Size a top-level window to ``width`` x ``height`` (its present size when
    not given), never larger than the screen's available area, and move it
    so that it lies wholly on that area. The maximum size is capped too, so a
    layout that later asks for more scrolls inside the window instead of
    growing it past the screen's edge. Call it after the window's widgets
    are made (and again on show: ``keep_on_screen``)."""
    area = available_geometry(window)
    limit = area.size() - _FRAME_ALLOWANCE
    window.setMaximumSize(limit)
    w = min(width if width is not None else window.width(), limit.width())
    h = min(height if height is not None else window.height(), limit.height())
    if width is not None or height is not None or (w, h) != (window.width(), window.height()):
        window.resize(w, h)  # only when asked or too big: a dialog otherwise keeps the size Qt gives it
    if not window.isVisible():
        return  # not placed yet: Qt places it when shown (a dialog over its parent), then this runs again
    frame = window.frameGeometry()
    if area.contains(frame):
        return
    x = min(max(frame.x(), area.left()), area.right() + 1 - frame.width())
    y = min(max(frame.y(), area.top()), area.bottom() + 1 - frame.height())
    window.move(max(x, area.left()), max(y, area.top()))


class _KeepOnScreen(QObject):
    """Re-fits a window each time it is shown: the screen it opens on (a
    docking station, a projector) may not be the one it was built for."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Show and isinstance(watched, QWidget) and watched.isWindow():
            fit_to_screen(watched)
        return False


def keep_on_screen(window: QWidget, width: int | None = None, height: int | None = None) -> None:
    """``fit_to_screen`` now and again whenever the window is shown."""
    fit_to_screen(window, width, height)
    window.installEventFilter(_KeepOnScreen(window))


# -- window geometry remembered between runs -------------------------------------
# Geometry and splitter positions only: QSettings never holds victim data
# (that lives in the encrypted store). Tests point QSettings at a temporary
# folder (tests/ui/conftest.py).
def ui_settings() -> QSettings:
    app = QCoreApplication.instance()
    org = (app.organizationName() if app else "") or "EVR"
    name = (app.applicationName() if app else "") or "EVR Desktop"
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, org, f"{name} window")


class _GeometryKeeper(QObject):
    def __init__(self, key: str, window: QWidget, splitters: dict[str, QSplitter]):
        super().__init__(window)
        self._key = key
        self._splitters = splitters

    def save(self, window: QWidget) -> None:
        s = ui_settings()
        s.setValue(f"geometry/{self._key}", window.saveGeometry())
        for name, splitter in self._splitters.items():
            s.setValue(f"splitter/{self._key}/{name}", splitter.saveState())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in (QEvent.Type.Close, QEvent.Type.Hide) and isinstance(watched, QWidget):
            self.save(watched)
        return False


def remember_geometry(window: QWidget, key: str, splitters: dict[str, QSplitter] | None = None) -> None:
    """Restore the window's last size and place (and its splitters'
    positions), clamped to today's screen; save them when it closes or hides."""
    s = ui_settings()
    geometry = s.value(f"geometry/{key}")
    if isinstance(geometry, (QByteArray, bytes)) and geometry:
        window.restoreGeometry(QByteArray(geometry))
    for name, splitter in (splitters or {}).items():
        restore_splitter(splitter, f"{key}/{name}")
    fit_to_screen(window)
    window.installEventFilter(_GeometryKeeper(key, window, splitters or {}))


def restore_splitter(splitter: QSplitter, key: str) -> bool:
    state = ui_settings().value(f"splitter/{key}")
    if isinstance(state, (QByteArray, bytes)) and state:
        return splitter.restoreState(QByteArray(state))
    return False


def save_splitter(splitter: QSplitter, key: str) -> None:
    ui_settings().setValue(f"splitter/{key}", splitter.saveState())


# -- forms that do not change by accident ------------------------------------------
_WHEEL_SENSITIVE = (QComboBox, QAbstractSpinBox)  # QAbstractSpinBox: spin boxes and date/time edits


class WheelGuard(QObject):
    """Scrolling past a combo box, spin box or date edit must not change it:
    the wheel reaches it only once the officer has focused it (by click or
    Tab). Otherwise the event goes to the parent, so the form scrolls."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # not accepted: Qt passes it on to the parent (the scroll area)
            return True
        return False


_GUARD: WheelGuard | None = None


def guard_wheel(widget: QWidget) -> None:
    """Make one widget wheel-safe (StrongFocus, and the guard)."""
    from PySide6.QtCore import Qt

    global _GUARD
    if _GUARD is None:
        _GUARD = WheelGuard()
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_GUARD)


def guard_wheels(root: QWidget) -> list[QWidget]:
    """Every combo box, spin box and date/time edit under ``root`` made wheel-safe."""
    found: list[QWidget] = [w for w in root.findChildren(QWidget) if isinstance(w, _WHEEL_SENSITIVE)]
    for w in found:
        guard_wheel(w)
    return found


class ScrollingLabelList(QListWidget):
    """A list that grows with its items up to ``max_rows`` and then scrolls
    inside itself, so a long list (thirty things missing before signing)
    never makes its window taller than the screen."""

    def __init__(self, max_rows: int = 6, parent: QWidget | None = None):
        from PySide6.QtCore import Qt

        super().__init__(parent)
        self._max_rows = max_rows
        self.setWordWrap(True)
        self.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_lines(self, lines: list[str]) -> None:
        self.clear()
        self.addItems(lines)
        self.setVisible(bool(lines))
        row = self.fontMetrics().height() + 4
        self.setFixedHeight(min(max(len(lines), 1), self._max_rows) * row + 2 * self.frameWidth() + 2)


class FlowLayout(QLayout):
    """Widgets left to right, wrapping onto a new line when the width runs out
    (the statement screen's buttons when it is docked beside the video on a
    1366 px screen: five buttons and the title do not fit one line of ~450 px,
    and a squeezed button cuts its own text). Each widget keeps its size hint.
    ``expand``: the widget that takes a line's spare width (the title), so a
    line that fits looks like a row with a stretch; lines without it are
    aligned right, where buttons usually sit."""

    def __init__(self, parent: QWidget | None = None, expand: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._expand = expand
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt's name
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        from PySide6.QtCore import Qt

        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._lay_out(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._lay_out(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        visible = [i for i in self._items if not i.isEmpty()]
        width = sum(i.sizeHint().width() for i in visible) + self.spacing() * max(0, len(visible) - 1)
        height = max((i.sizeHint().height() for i in visible), default=0)
        return QSize(width, height)

    def minimumSize(self) -> QSize:  # noqa: N802
        visible = [i for i in self._items if not i.isEmpty()]
        return QSize(max((i.sizeHint().width() for i in visible), default=0),
                     max((i.sizeHint().height() for i in visible), default=0))

    def _lay_out(self, rect: QRect, apply: bool) -> int:
        """Place the items (when ``apply``); the height they take at ``rect``'s width."""
        gap = self.spacing()
        lines: list[list[QLayoutItem]] = [[]]
        used = 0
        for item in (i for i in self._items if not i.isEmpty()):
            w = item.sizeHint().width()
            if lines[-1] and used + gap + w > rect.width():
                lines.append([])
                used = 0
            used += (gap if lines[-1] else 0) + w
            lines[-1].append(item)
        y = rect.y()
        for line in (ln for ln in lines if ln):
            height = max(i.sizeHint().height() for i in line)
            spare = max(0, rect.width() - sum(i.sizeHint().width() for i in line) - gap * (len(line) - 1))
            grow = next((i for i in line if i.widget() is not None and i.widget() is self._expand), None)
            x = rect.x() + (0 if grow is not None else spare)
            for item in line:
                w = item.sizeHint().width() + (spare if item is grow else 0)
                if apply:
                    item.setGeometry(QRect(x, y + (height - item.sizeHint().height()) // 2, w,
                                           item.sizeHint().height()))
                x += w + gap
            y += height + gap
        return max(0, y - gap - rect.y())
