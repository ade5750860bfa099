"""Desktop notifications ("a victim is waiting") that reach the officer even
where there is no system tray.

- Linux and the BSDs: the freedesktop notification spec over D-Bus
  (``org.freedesktop.Notifications.Notify`` on the session bus), which GNOME,
  KDE Plasma, Xfce, Cinnamon, MATE, dunst and mako all serve, tray or not.
- Windows and macOS, or when there is no session bus or no notification
  service on it: ``QSystemTrayIcon.showMessage`` where a tray exists.
- Otherwise nothing more: the caller already flashes the task bar and writes
  to the status bar.

Why jeepney and not PySide6.QtDBus: ``Notify`` takes ``replaces_id`` as a
``uint32`` (signature ``susssasa{sv}i``), and PySide6 cannot put a ``uint32`` in
a D-Bus message: a Python int goes out as ``int32``, and
``QDBusArgument << int`` always picks the ``uint16`` overload. Daemons check
the signature (GNOME Shell answers ``InvalidArgs``: "Type of message
(sisssasa{sv}i) does not match expected type (susssasa{sv}i)"), so QtDBus from
Python cannot show a notification at all. jeepney (pure Python, no
dependencies) writes the types we name. See docs/decisions.md; a test pins the
PySide6 limitation so that a fix there is noticed.

This module is imported on the first notification, never at start-up, and
jeepney only inside the background call.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

log = logging.getLogger(__name__)

NotifyPath = Literal["dbus", "tray", "none"]

APP_NAME = "EVR Desktop"
BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"
URGENCY_NORMAL, URGENCY_CRITICAL = 1, 2


def uses_dbus(platform: str = sys.platform) -> bool:
    """Linux and the BSDs have freedesktop notifications; Windows and macOS do not."""
    return platform.startswith(("linux", "freebsd", "openbsd", "netbsd", "dragonfly"))


def session_bus_address(environ: Mapping[str, str] = os.environ) -> str | None:
    """The session bus, as libdbus finds it: ``DBUS_SESSION_BUS_ADDRESS``, else
    the per-user bus at ``$XDG_RUNTIME_DIR/bus`` (systemd) when that socket exists."""
    address = environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        socket = Path(runtime) / "bus"
        try:
            if stat.S_ISSOCK(socket.stat().st_mode):
                return "unix:path=" + _escape_address_value(str(socket))
        except OSError:
            pass
    return None


def _escape_address_value(value: str) -> str:
    # D-Bus address values: bytes outside [-0-9A-Za-z_/.\*] are %-escaped.
    safe = b"-_/.\\*"
    return "".join(
        chr(b) if chr(b).isascii() and (chr(b).isalnum() or b in safe) else f"%{b:02x}"
        for b in value.encode()
    )


class _Sending:
    """The Notify call in flight (there is never more than one)."""

    def __init__(self, title: str, text: str) -> None:
        self.title = title
        self.text = text
        self.overdue = False


class DesktopNotifier(QObject):
    """Shows a desktop notification with a title and a text.

    Privacy: the title and text must never name the victim or carry their
    number (a notification is shown on screen, may sit in the desktop's
    notification history, and travels over the session bus). The caller passes
    fixed texts only ("A victim is waiting" / "Open EVR Desktop to start the
    call."); keep it that way.

    ``notify()`` never waits: the D-Bus call runs on a short-lived background
    thread, and a daemon that does not answer within ``timeout_s`` is given up
    on (the tray is tried instead). Calls are made one at a time, so each
    "victim waiting" names the previous notification's id as ``replaces_id``
    and the desktop replaces it rather than piling them up.

    ``done`` is emitted once per ``notify()`` with the path used: ``"dbus"``,
    ``"tray"`` or ``"none"`` (also readable afterwards as ``path``).
    ``bus_address`` picks a bus (tests); by default the session bus is looked up
    at each call.
    """

    done = Signal(str)
    # (notification id or None, error text), emitted from the call's thread
    _answered = Signal(object, object)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        icon: QIcon | None = None,
        bus_address: str | None = None,
        platform: str = sys.platform,
        urgency: int = URGENCY_CRITICAL,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(parent)
        self._icon = icon
        self._bus_address = bus_address
        self._dbus = uses_dbus(platform)
        # Critical: the victim is on the line now. Desktops keep critical
        # notifications until dismissed and show them through Do Not Disturb.
        self._urgency = urgency
        self._timeout_s = timeout_s
        self._tray: QSystemTrayIcon | None = None
        self._sending: _Sending | None = None
        self._queued: tuple[str, str] | None = None
        self.notification_id = 0  # the daemon's id of the last notification, 0 before the first
        self.path: NotifyPath | None = None  # the path the last notify() took
        self._answered.connect(self._on_answered)
        # A backstop for a hang the call's own timeouts do not cover.
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.setInterval(int(timeout_s * 1000) + 500)
        self._watchdog.timeout.connect(self._overdue)

    def notify(self, title: str, text: str) -> None:
        address = self._address()
        if address is None:
            self._fallback(title, text)
        elif self._sending is None:
            self._send(address, title, text)
        elif self._sending.overdue:  # the daemon is stuck: do not queue behind it
            self._fallback(title, text)
        else:  # wait for the id the call in flight gets, then replace it; latest wins
            self._queued = (title, text)

    def _address(self) -> str | None:
        if not self._dbus:
            return None
        return self._bus_address or session_bus_address()

    def _send(self, address: str, title: str, text: str) -> None:
        self._sending = _Sending(title, text)
        args = (address, self.notification_id, title, text, self._urgency, self._timeout_s)
        threading.Thread(target=self._call, args=args, name="evr-notify", daemon=True).start()
        self._watchdog.start()

    def _call(
        self, address: str, replaces_id: int, title: str, text: str, urgency: int, timeout_s: float
    ) -> None:
        """On the background thread: one connection, one Notify, closed again
        (as notify-send does; ids stay valid across connections)."""
        nid: int | None = None
        error = ""
        try:
            from jeepney import DBusAddress, new_method_call
            from jeepney.io.blocking import open_dbus_connection
            from jeepney.wrappers import unwrap_msg

            message = new_method_call(
                DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface=BUS_NAME),
                "Notify",
                NOTIFY_SIGNATURE,
                (APP_NAME, replaces_id, "", title, text, [], {"urgency": ("y", urgency)}, -1),
            )
            with open_dbus_connection(bus=address, auth_timeout=timeout_s) as conn:
                (nid,) = unwrap_msg(conn.send_and_get_reply(message, timeout=timeout_s))
        except Exception as e:  # noqa: BLE001 - no bus, no daemon, a timeout, no jeepney: try the tray
            nid, error = None, f"{type(e).__name__}: {e}"
        try:
            self._answered.emit(nid, error)  # queued to the GUI thread, where the notifier lives
        except RuntimeError:  # the notifier was deleted meanwhile (the window closed)
            pass

    @Slot(object, object)
    def _on_answered(self, nid: int | None, error: str) -> None:
        sending, self._sending = self._sending, None
        if sending is None:
            return
        self._watchdog.stop()
        if nid is not None:
            self.notification_id = int(nid)
        if not sending.overdue:  # an overdue call was reported (as its fallback) already
            if nid is not None:
                self._report("dbus")
            else:
                log.info("desktop notification over D-Bus failed (%s); trying the tray", error)
                self._fallback(sending.title, sending.text)
        if self._queued is not None:
            queued, self._queued = self._queued, None
            self.notify(*queued)

    @Slot()
    def _overdue(self) -> None:
        sending = self._sending
        if sending is None or sending.overdue:
            return
        sending.overdue = True
        log.info(
            "the notification daemon did not answer in %.1f s; trying the tray", self._timeout_s
        )
        queued, self._queued = self._queued, None
        self._fallback(*(queued or (sending.title, sending.text)))

    def _fallback(self, title: str, text: str) -> None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            self._report("none")
            return
        if self._tray is None:
            tray = QSystemTrayIcon(self._icon or QIcon(), self)
            tray.show()
            self._tray = tray
        self._tray.showMessage(title, text)
        self._report("tray")

    def _report(self, path: NotifyPath) -> None:
        self.path = path
        self.done.emit(path)
