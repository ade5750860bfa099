"""The media process for real (no Qt): a child refuses bad messages and goes
on; the watchdog stops a hung child and a new one starts; a killed child
fails what was pending and is replaced; stopping is clean; and no child
outlives an app killed with SIGKILL."""

from __future__ import annotations

import glob
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from evr_desktop.call import events as ev
from evr_desktop.media.channel import MAX_MESSAGE
from evr_desktop.media.proxy import MediaCalls, MediaUnavailable
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def wait_for(cond, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts: it runs no code)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line for line in fh)
    except FileNotFoundError:
        return True


@pytest.fixture
def media():
    calls = MediaCalls(hang_timeout=2.0)
    seen: list[ev.Event] = []
    lock = threading.Lock()

    def listener(e: ev.Event) -> None:
        with lock:
            seen.append(e)

    calls.engine.add_listener(listener)
    calls.start()
    calls.seen = seen
    yield calls
    calls.stop()


def raw(obj) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def test_the_child_refuses_bad_messages_with_a_typed_error_and_goes_on(media):
    channel = media._child.channel
    pid = media.pid
    for data in (b"\xff\xfe", b"[]", {"type": "ping", "id": 1}, {"v": 9, "type": "ping", "id": 2},
                 {"v": 1, "type": "rm -rf", "id": 3}, {"v": 1, "type": "start_call", "id": 4}):
        channel.send_raw(raw(data))
    channel.send_raw(raw({"v": 1, "type": "send_chat", "id": 5, "appointment": "a", "text": "x" * (MAX_MESSAGE + 1)}))
    assert wait_for(lambda: len(media.refused_by_child) == 7, 10), media.refused_by_child
    assert media.refused_by_child == ["malformed", "malformed", "version", "version", "unknown-type",
                                      "bad-fields", "oversized"]
    # Still the same child, still answering, still working.
    assert media.pid == pid and media.running
    with pytest.raises(LookupError):
        media.engine.send_chat("no-such-call", "hello").result(10)
    assert media.command("ping").result(10) is None


def test_the_watchdog_replaces_a_hung_child(media):
    pid = media.pid
    os.kill(pid, signal.SIGSTOP)  # hung: alive, answering nothing
    try:
        started = time.monotonic()
        assert wait_for(lambda: any(isinstance(e, ev.MediaProcessLost) for e in media.seen), 15)
        noticed = time.monotonic() - started
        lost = next(e for e in media.seen if isinstance(e, ev.MediaProcessLost))
        assert lost.why == "hung" and lost.restarting and "new link" in lost.message
        assert noticed < 2.0 + 3.0, f"noticed after {noticed:.1f} s"
        print(f"\nhung media process noticed after {noticed:.1f} s (hang_timeout 2 s)")
        assert wait_for(lambda: any(isinstance(e, ev.MediaProcessRestarted) for e in media.seen), 60)
        assert media.running and media.pid != pid and gone(pid)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_a_killed_child_fails_pending_commands_and_is_replaced(media):
    pid = media.pid
    os.kill(pid, signal.SIGSTOP)  # so the command stays pending
    pending = media.engine.send_chat("a", "hello")
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(MediaUnavailable):
        pending.result(10)
    assert wait_for(lambda: any(isinstance(e, ev.MediaProcessRestarted) for e in media.seen), 60)
    lost = next(e for e in media.seen if isinstance(e, ev.MediaProcessLost))
    assert lost.why == "exited" and lost.appointments == ()
    assert media.pid != pid and media.running
    with pytest.raises(LookupError):  # the new child answers
        media.engine.send_chat("a", "hello").result(10)


def test_stop_is_clean_and_leaves_no_shared_memory():
    calls = MediaCalls()
    calls.start()
    child = calls._child
    assert glob.glob(f"/dev/shm/evr-{os.getpid()}-*") == []  # unlinked once both had mapped them
    started = time.monotonic()
    calls.stop()
    assert child.proc.returncode == 0
    assert time.monotonic() - started < 10
    assert not calls.running and calls.pid is None


PARENT = textwrap.dedent(
    """
    import sys, time
    from evr_desktop.media.proxy import MediaCalls
    calls = MediaCalls()
    calls.start()
    print(calls.pid, flush=True)
    time.sleep(600)
    """
)


def test_no_media_process_outlives_an_app_killed_with_sigkill(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), "the media process did not start"
        child = int(line)
        assert not gone(child)
        parent.kill()
        parent.wait(10)
        started = time.monotonic()
        assert wait_for(lambda: gone(child), 5), "the media process outlived the app"
        print(f"\nmedia process gone {time.monotonic() - started:.2f} s after the app's SIGKILL")
    finally:
        if parent.poll() is None:
            parent.kill()
