"""Desktop notifications, against a real D-Bus.

Each test that needs a bus starts its own ``dbus-daemon`` (a private session
bus with no service activation, so no real notification daemon of this machine
can be started by a test) and, where it needs one, a fake notification daemon
as a separate process on that bus (``fake_notification_daemon.py``: strict
about the ``Notify`` signature, as GNOME Shell is, and recording every call).
The notifier is pointed at the bus by address (or by
``DBUS_SESSION_BUS_ADDRESS`` for the app's own notifier), so nothing here
depends on the machine's session bus or on test order. Qt runs offscreen:
there is no system tray, so a fallback reports "none".
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QSystemTrayIcon

from evr_desktop.ui.desktop_notify import DesktopNotifier, session_bus_address
from tests.conftest import REPO

FAKE_DAEMON = Path(__file__).with_name("fake_notification_daemon.py")
TITLE, TEXT = "A victim is waiting", "Open EVR Desktop to start the call."

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def read_line(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """The first line a child prints, without hanging the test if it prints none."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise AssertionError(f"{proc.args[0]} printed nothing in {timeout} s")
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait(5)
        raise AssertionError(f"{proc.args[0]} exited: {proc.stderr.read() if proc.stderr else ''}")
    return line


@dataclass
class FakeDaemon:
    proc: subprocess.Popen
    record: Path

    def calls(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text("utf-8").splitlines() if line]


@dataclass
class Bus:
    address: str
    folder: Path
    daemons: list[FakeDaemon] = field(default_factory=list)

    def start_daemon(self, delay: float = 0.0) -> FakeDaemon:
        record = self.folder / f"notifications-{len(self.daemons)}.jsonl"
        proc = subprocess.Popen(
            [sys.executable, str(FAKE_DAEMON), self.address, str(record), "--delay", str(delay)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        daemon = FakeDaemon(proc, record)
        self.daemons.append(daemon)
        assert read_line(proc) == "ready"
        return daemon


@pytest.fixture
def bus() -> Iterator[Bus]:
    dbus_daemon = shutil.which("dbus-daemon")
    if dbus_daemon is None:
        pytest.fail(
            "dbus-daemon is not installed: run ./dev test, which installs it (package dbus)"
        )
    # A short folder of our own: a unix socket path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="evr-bus-"))
    config = folder / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=folder / "bus"), "utf-8")
    proc = subprocess.Popen(
        [dbus_daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    b = Bus(read_line(proc), folder)
    try:
        yield b
    finally:
        for d in b.daemons:
            d.proc.kill()
            d.proc.wait(5)
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def timed_notify(notifier: DesktopNotifier) -> float:
    start = time.monotonic()
    notifier.notify(TITLE, TEXT)
    return time.monotonic() - start


def test_offscreen_has_no_tray(qapp):
    # The fallback tests below rely on it: with no tray, the fallback is "none".
    assert not QSystemTrayIcon.isSystemTrayAvailable()


def test_the_notification_reaches_the_daemon_and_later_ones_replace_it(qtbot, bus):
    daemon = bus.start_daemon()
    notifier = DesktopNotifier(bus_address=bus.address)
    paths: list[str] = []
    notifier.done.connect(paths.append)

    # Two at once (the second waits for the first one's id), then a third later.
    notifier.notify(TITLE, TEXT)
    notifier.notify(TITLE, TEXT)
    qtbot.waitUntil(lambda: len(daemon.calls()) == 2 and len(paths) == 2, timeout=10000)
    notifier.notify(TITLE, TEXT)
    qtbot.waitUntil(lambda: len(daemon.calls()) == 3 and len(paths) == 3, timeout=10000)

    first, second, third = daemon.calls()
    assert first["signature"] == "susssasa{sv}i"
    assert first["app_name"] == "EVR Desktop"
    assert (first["summary"], first["body"]) == (TITLE, TEXT)
    assert first["actions"] == [] and first["expire_timeout"] == -1
    assert first["hints"]["urgency"] == ["y", 2]  # a byte, as the spec says; critical
    assert first["replaces_id"] == 0
    assert second["replaces_id"] == first["id"] and third["replaces_id"] == first["id"]
    assert second["id"] == third["id"] == first["id"]  # replaced, not piled up
    assert paths == ["dbus", "dbus", "dbus"] and notifier.path == "dbus"
    assert notifier.notification_id == first["id"]


def test_no_notification_service_on_the_bus_reports_none_without_blocking(qtbot, bus):
    notifier = DesktopNotifier(bus_address=bus.address)
    with qtbot.waitSignal(notifier.done, timeout=10000) as signal:
        assert timed_notify(notifier) < 0.5
    assert signal.args == ["none"] and notifier.path == "none"
    assert notifier.notification_id == 0


def test_no_session_bus_at_all_reports_none(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no bus socket in it
    assert session_bus_address() is None
    notifier = DesktopNotifier()
    with qtbot.waitSignal(notifier.done, timeout=5000) as signal:
        notifier.notify(TITLE, TEXT)
    assert signal.args == ["none"]


def test_the_per_user_bus_is_found_without_the_variable(bus, monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv(
        "XDG_RUNTIME_DIR", str(bus.folder)
    )  # holds the socket "bus", like /run/user/UID
    assert session_bus_address() == f"unix:path={bus.folder / 'bus'}"


def test_a_slow_daemon_does_not_hold_up_the_gui(qtbot, bus):
    daemon = bus.start_daemon(delay=1.5)
    notifier = DesktopNotifier(bus_address=bus.address)
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(50)
    assert timed_notify(notifier) < 0.5
    qtbot.waitUntil(lambda: len(daemon.calls()) == 1, timeout=5000)
    assert notifier.path is None  # still waiting for the answer...
    with qtbot.waitSignal(notifier.done, timeout=10000) as signal:
        pass
    timer.stop()
    assert signal.args == ["dbus"]
    assert len(ticks) >= 10  # ...while the event loop kept running


def test_a_daemon_that_never_answers_is_given_up_on(qtbot, bus):
    daemon = bus.start_daemon(delay=60)
    notifier = DesktopNotifier(bus_address=bus.address, timeout_s=0.5)
    start = time.monotonic()
    with qtbot.waitSignal(notifier.done, timeout=5000) as signal:
        notifier.notify(TITLE, TEXT)
    assert signal.args == ["none"] and time.monotonic() - start < 3
    assert len(daemon.calls()) == 1  # it did arrive; the answer never came


def test_windows_and_macos_use_the_tray_not_dbus(qtbot, bus):
    daemon = bus.start_daemon()
    for platform in ("win32", "darwin"):
        notifier = DesktopNotifier(bus_address=bus.address, platform=platform)
        with qtbot.waitSignal(notifier.done, timeout=5000) as signal:
            notifier.notify(TITLE, TEXT)
        assert signal.args == ["none"]  # no tray offscreen
    qtbot.wait(200)
    assert daemon.calls() == []


# -- the app: a victim enters the waiting room ---------------------------------


def book(qtbot, main, name: str, mobile: str, urn: str):
    """An appointment, once the call engine is up (it starts after the queue's
    first paint; a "victim waiting" can only come from a running engine)."""
    from evr_desktop.domain.appointment import Appointment, OffenceType, VictimDetails

    qtbot.waitUntil(lambda: main.calls.ready, timeout=20000)

    a = Appointment(
        slot=datetime.now().astimezone() + timedelta(minutes=5),
        urn=urn,
        offence=OffenceType.ASSAULT,
        victim=VictimDetails(name, date(1980, 1, 1), mobile),
    )
    main.session.save_appointment(a, new=True)
    main.queue.upsert(a)
    return a


def test_a_victim_waiting_notifies_the_desktop_without_naming_them(
    qtbot, unlocked, bus, monkeypatch
):
    from evr_desktop.call import events as ev

    main = unlocked
    daemon = bus.start_daemon()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    a = book(qtbot, main, "Gwladys Invented-Waiter", "07700 900555", "99VW1234527")

    main.calls._call_event(ev.VictimWaiting(a.id))
    qtbot.waitUntil(lambda: len(daemon.calls()) == 1, timeout=10000)
    call = daemon.calls()[0]
    assert (call["app_name"], call["summary"], call["body"]) == ("EVR Desktop", TITLE, TEXT)
    assert call["hints"]["urgency"][0] == "y"
    everything = daemon.record.read_text("utf-8")
    for secret in ("Gwladys", "Invented-Waiter", "07700", "900555", "7700900555", a.urn):
        assert secret not in everything
    qtbot.waitUntil(lambda: main.calls._notifier.path == "dbus", timeout=5000)
    assert "not available" not in main.window.statusBar().currentMessage()

    # A second victim waiting replaces the notification rather than adding one.
    b = book(qtbot, main, "Idris Invented-Second", "07700 900666", "99VW1234528")
    main.calls._call_event(ev.VictimWaiting(b.id))
    qtbot.waitUntil(lambda: len(daemon.calls()) == 2, timeout=10000)
    assert daemon.calls()[1]["replaces_id"] == call["id"]
    assert "Idris" not in daemon.record.read_text("utf-8")


def test_without_desktop_notifications_the_status_bar_says_so_once(
    qtbot, unlocked, bus, monkeypatch
):
    from evr_desktop.call import events as ev

    main = unlocked
    monkeypatch.setenv(
        "DBUS_SESSION_BUS_ADDRESS", bus.address
    )  # a bus, but no notification service
    bar = main.window.statusBar()
    a = book(qtbot, main, "Gwladys Invented-Waiter", "07700 900555", "99VW1234527")

    main.calls._call_event(ev.VictimWaiting(a.id))
    notifier = main.calls._notifier
    qtbot.waitUntil(lambda: notifier.path == "none", timeout=10000)
    assert bar.currentMessage() == (
        "A victim is waiting for their video appointment. "
        "Desktop notifications are not available on this computer."
    )

    with qtbot.waitSignal(notifier.done, timeout=10000):
        main.calls._call_event(ev.VictimWaiting(a.id))
    assert bar.currentMessage() == "A victim is waiting for their video appointment"


# -- why jeepney, and the import cost ------------------------------------------


def test_pyside6_qtdbus_still_cannot_write_a_uint32(qapp):
    """Notify's replaces_id is a uint32. From Python, QtDBus writes an int as
    int32 and ``QDBusArgument << int`` as uint16, and daemons refuse the call
    (GNOME Shell: InvalidArgs). If this fails, PySide6 has changed: QtDBus may
    now do the job without jeepney (see desktop_notify's docstring)."""
    from PySide6.QtDBus import QDBusArgument

    arg = QDBusArgument()
    arg << 0
    assert arg.currentSignature() == "q"
    arg = QDBusArgument()
    arg.appendVariant(0)
    assert arg.currentSignature() == "i"


def test_loading_the_call_controller_loads_neither_the_notifier_nor_jeepney():
    code = (
        "import sys, evr_desktop.ui.call_controller\n"
        "lazy = ('evr_desktop.ui.desktop_notify', 'jeepney', 'PySide6.QtDBus')\n"
        "print([m for m in sys.modules if m.startswith(lazy)])"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
