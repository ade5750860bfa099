"""The GUI's side of the media process: ``MediaCalls`` starts, supervises and
stops the child; ``MediaCalls.engine`` (a ``MediaEngine``) has the surface of
``CallEngine`` that the UI uses, so the call window does not know where the
engine runs.

- Commands return ``concurrent.futures.Future``s resolved from the child's
  replies; a failed command raises in the future (``ValueError``,
  ``LookupError``, ``TimeoutError`` as in the engine, else ``CommandFailed``
  with the engine's kind and sentence); a command to a child that is gone
  raises ``MediaUnavailable``.
- Events come back as the same ``call/events.py`` dataclasses and are given to
  listeners on the channel's reader thread (as the engine gave them on its
  loop's thread): keep listeners short (the UI's bridge queues a signal).
- Display frames: ``latest_remote_bgra()`` / ``latest_local_preview()`` read
  the shared slots (frames.py): a view, valid until the next call returns a
  newer frame. Each new remote frame is also a byte on ``frame_wakeup_fd``
  (a pipe from the child, ``FrameWakeup``), which the call window watches on
  its own thread: no message and no thread between the frame and the paint.

Supervision (``_supervise``, one long-lived thread, which also spawns every
child so that Linux's parent-death signal, tied to the spawning *thread*,
fires only when the app is gone): a ping every ``PING_INTERVAL`` s, answered
through the child's event loop; no pong for ``HANG_TIMEOUT`` s means hung:
killed. A child that exits or is killed: pending commands fail, each call in
progress gets ``Error(code="media-lost", fatal=True)`` and ``CallEnded``, then
``MediaProcessLost``; a new child is started and ``MediaProcessRestarted``
follows. After ``MAX_LOSSES`` losses in ``LOSS_WINDOW`` s it is not restarted
(the officer is told to restart the app).

Imports no codec, no aiortc, no PyAV, no OpenCV (a test pins it).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..call import events as ev
from ..domain.phone_signing import BadPageMessage, check_strokes, is_review_id
from .channel import CHILD_SENDS, STILL_RESULT_FIELDS, Channel, ChannelClosed, ProtocolError, _is
from .frames import LOCAL_MAX, REMOTE_MAX, FrameSlot, FrameWakeup

log = logging.getLogger("evr_desktop.media")

PING_INTERVAL = 1.0
HANG_TIMEOUT = 5.0  # s without a pong: the child is hung
START_TIMEOUT = 60.0  # s for a child to import the engine and start it (~1-2 s here)
STOP_TIMEOUT = 10.0
MAX_LOSSES = 3
LOSS_WINDOW = 120.0
RESTART_DELAY = 0.5

LOST_IN_CALL = ("The video call stopped because the video part of EVR Desktop stopped unexpectedly. "
                "Your statement is safe.")
LOST = ("The video part of EVR Desktop stopped unexpectedly and is being restarted. Your statement is safe. "
        "The link you sent still works: when the victim opens it again, they appear as waiting and you can "
        "call them. If they cannot, send them a new link.")
LOST_FOR_GOOD = ("The video part of EVR Desktop keeps stopping, so video calls are off. Your statement is "
                 "safe. Save your work and restart EVR Desktop.")


class MediaUnavailable(Exception):
    """The media process is not running (starting, restarting, or stopped)."""


class CommandFailed(Exception):
    """A command the engine refused or that failed there; ``kind`` is the
    engine's exception name (e.g. ``CommitTimeout``), the text its sentence."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


_KNOWN_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError, "LookupError": LookupError, "KeyError": LookupError,
    "TimeoutError": TimeoutError, "RuntimeError": RuntimeError,
    # the rendezvous could not be reached or refused (force mode's links): plain words
    "ConnectionError": ConnectionError,
}


def _error(fields: dict[str, Any] | None) -> Exception:
    fields = fields or {}
    kind, message = str(fields.get("type", "Error")), str(fields.get("message", "the command failed"))
    if kind == "ProtocolError":
        return ProtocolError("refused", message)
    known = _KNOWN_ERRORS.get(kind)
    return known(message) if known is not None else CommandFailed(kind, message)


_FROM_CHILD = {
    name: cls for name, cls in vars(ev).items()
    if isinstance(cls, type) and issubclass(cls, ev.Event) and cls is not ev.Event
    # the app's own, never the child's; the recording's come as messages of their own
    and cls not in (ev.MediaProcessLost, ev.MediaProcessRestarted, ev.RecordingStatus, ev.RecordingEnded)
}

RECORDING_STATES = ("recording", "failed")
_RESULT_FIELDS: dict[str, tuple[type | None, ...]] = {
    "recording_id": (str,), "manifest_sha256": (str, type(None)), "started_at": (str, type(None)),
    "ended_at": (str,), "duration_s": (float, int), "segments": (int,), "finalised": (bool,),
    "error": (str, type(None)),
}


def recording_status_from(m: dict[str, Any]) -> ev.RecordingStatus:
    if m["state"] not in RECORDING_STATES:
        raise ProtocolError("bad-fields", f"recording_status: state {str(m['state'])[:20]!r}")
    return ev.RecordingStatus(m["appointment"], m["state"], m["message"][:2000])


def recording_ended_from(m: dict[str, Any]) -> ev.RecordingEnded:
    """``recording_ended``'s result, checked field by field (a bool is not a number here)."""
    result = m["result"]
    if set(result) != set(_RESULT_FIELDS):
        raise ProtocolError("bad-fields", "recording_ended: result fields missing or unexpected")
    for name, types in _RESULT_FIELDS.items():
        value = result[name]
        if isinstance(value, bool) and bool not in types or not isinstance(value, tuple(t for t in types if t)):
            raise ProtocolError("bad-fields", f"recording_ended: result {name} has the wrong type")
    return ev.RecordingEnded(appointment=m["appointment"], **{**result, "duration_s": float(result["duration_s"])})


_SHA256_HEX = frozenset("0123456789abcdef")


def still_result_from(result: Any) -> dict[str, Any]:
    """``capture_still``'s reply result, checked field by field (``channel.STILL_RESULT_FIELDS``):
    exactly those fields, of their types, hashes as 64 hex digits, sizes and dimensions positive."""
    if not isinstance(result, dict) or set(result) != set(STILL_RESULT_FIELDS):
        raise ProtocolError("bad-fields", "capture_still: result fields missing or unexpected")
    for name, types in STILL_RESULT_FIELDS.items():
        value = result[name]
        if not _is(value, types):
            raise ProtocolError("bad-fields", f"capture_still: result {name} has the wrong type")
    for name in ("ciphertext_sha256", "plaintext_sha256"):
        if len(result[name]) != 64 or not set(result[name]) <= _SHA256_HEX:
            raise ProtocolError("bad-fields", f"capture_still: result {name} is not a SHA-256")
    for name in ("ciphertext_size", "plaintext_size", "width", "height"):
        if result[name] <= 0:
            raise ProtocolError("bad-fields", f"capture_still: result {name} is not positive")
    if result["at_s"] is not None and result["at_s"] < 0:
        raise ProtocolError("bad-fields", "capture_still: result at_s is negative")
    return dict(result)


def statement_signed_from(fields: dict[str, Any]) -> ev.StatementSigned:
    """``StatementSigned`` from the media process, checked again here as the
    engine checked the page's message (``domain.phone_signing``): exactly its
    fields, a review id, a SHA-256, strokes in range; nested lists into tuples."""
    names = {f.name for f in dataclasses.fields(ev.StatementSigned)}
    if set(fields) != names:
        raise ProtocolError("bad-fields", "event StatementSigned: fields missing or unexpected")
    if not isinstance(fields["appointment"], str) or not is_review_id(fields["review_id"]):
        raise ProtocolError("bad-fields", "event StatementSigned: appointment or review id")
    digest = fields["sha256"]
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _SHA256_HEX:
        raise ProtocolError("bad-fields", "event StatementSigned: sha256 is not a SHA-256")
    at = fields["recording_at_s"]
    if at is not None and (not _is(at, (int, float)) or not math.isfinite(at) or at < 0):
        raise ProtocolError("bad-fields", "event StatementSigned: recording_at_s")
    try:
        strokes, width, height = check_strokes(fields["strokes"], fields["width"], fields["height"])
    except BadPageMessage as exc:
        raise ProtocolError("bad-fields", f"event StatementSigned: {exc.code}") from None
    return ev.StatementSigned(fields["appointment"], fields["review_id"], digest, strokes, width, height,
                              None if at is None else float(at))


def event_from(name: str, fields: dict[str, Any]) -> ev.Event:
    """An ``event`` message back into its dataclass (lists back into tuples)."""
    if name == "StatementSigned":
        return statement_signed_from(fields)
    cls = _FROM_CHILD.get(name)
    if cls is None:
        raise ProtocolError("bad-fields", f"event {name[:40]!r} is not one the engine sends")
    allowed = {f.name for f in dataclasses.fields(cls)}
    if not set(fields) <= allowed:
        raise ProtocolError("bad-fields", f"event {name}: unexpected fields")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    except TypeError:
        raise ProtocolError("bad-fields", f"event {name}: fields missing") from None


@dataclass(frozen=True)
class MediaSettings:
    """What the UI reads of the engine's settings (the devices for the next call)."""

    camera: int | None = None
    microphone: int | None = None


@dataclass(frozen=True)
class Device:
    index: int
    name: str


def media_command() -> list[str]:
    """How to start the child: the frozen app runs itself with ``__media__``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "__media__"]
    return [sys.executable, "-m", "evr_desktop.media"]


class _Child:
    """One running media process and its end of the channel."""

    def __init__(self, proc: subprocess.Popen, channel: Channel, remote: FrameSlot, local: FrameSlot):
        self.proc = proc
        self.channel = channel
        self.remote = remote
        self.local = local
        self.pending: dict[int, concurrent.futures.Future] = {}
        self.ready = threading.Event()
        self.closed = threading.Event()
        self.speaker_note = ""
        self.last_pong = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid


class MediaCalls:
    """``EmbeddedCalls``' surface (``start``, ``stop``, ``issue_link``,
    ``choose_devices``, ``speaker_note``, ``engine``) over a media process."""

    def __init__(self, *, host_candidates: str = "with-loopback", hang_timeout: float = HANG_TIMEOUT,
                 synthetic: tuple[int, int, int] | None = None, force_url: str | None = None,
                 force_ca: str | None = None):
        """``force_url``/``force_ca``: force mode (``EmbeddedCalls``'s doc): the
        child connects to the force's rendezvous with the officer token that
        ``set_officer_token`` gives (kept here, and given to a restarted child)."""
        self.host_candidates = host_candidates
        self.force_url = force_url
        self.force_ca = force_ca
        self._officer_token = ""
        self.synthetic = synthetic  # (width, height, fps): always the test pattern (benchmarks)
        self.hang_timeout = hang_timeout
        self.engine = MediaEngine(self)
        self.speaker_note = ""
        self.settings = MediaSettings()
        self.protocol_errors = 0  # messages from the child refused here
        self.refused_by_child: list[str] = []  # codes of our messages the child refused (newest last, 100 kept)
        self.restarts = 0
        # New remote frames wake the GUI thread through this pipe (made by start()).
        self.wakeup: FrameWakeup | None = None
        self._child: _Child | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = False
        self._wake = threading.Event()
        self._first = threading.Event()
        self._first_error: BaseException | None = None
        self._supervisor: threading.Thread | None = None
        self._active: set[str] = set()  # calls in progress (told of a loss)
        # The demo rendezvous's address, kept across children: the app holds the
        # listening socket, each child serves on it.
        self._listen: socket.socket | None = None
        # appointment -> (token, slot, minutes): the newest link, while not spent,
        # to be restored in a new child (the token is in the officer's outbox anyway).
        self._links: dict[str, tuple[str, str, int]] = {}

    # -- lifecycle ---------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running child's process id (tests, the log)."""
        child = self._child
        return child.pid if child is not None else None

    @property
    def running(self) -> bool:
        child = self._child
        return child is not None and child.ready.is_set() and not child.closed.is_set()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the child and wait until its engine and rendezvous are up."""
        if self._supervisor is not None:
            return
        if self.wakeup is None:
            self.wakeup = FrameWakeup()
            # Closed with this object: the window's notifier on its read end goes first.
            weakref.finalize(self, self.wakeup.close)
        if self.force_url is None:
            self._listen = socket.create_server(("127.0.0.1", 0))
        self._supervisor = threading.Thread(target=self._supervise, name="media-supervisor", daemon=True)
        self._supervisor.start()
        if not self._first.wait(timeout):
            self.stop()
            raise MediaUnavailable("Video calls could not start (the video part did not answer in time).")
        if self._first_error is not None:
            self.stop()
            raise MediaUnavailable(f"Video calls could not start: {self._first_error}")

    def stop(self) -> None:
        """Stop the child cleanly (no bye: links are not spent), then the supervisor."""
        self._closing = True
        self._wake.set()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(STOP_TIMEOUT + 10)
        if self._listen is not None and (supervisor is None or not supervisor.is_alive()):
            self._listen.close()
            self._listen = None

    # -- what the controller calls -------------------------------------------------------

    def issue_link(self, appointment: Any, timeout: float = 10.0) -> str:
        """A new one-time join link, from the child's rendezvous (blocking: call it on the worker)."""
        slot, minutes = appointment.slot.isoformat(), int(appointment.duration_minutes)
        link = str(self.command("issue_link", appointment=appointment.id, slot=slot,
                                duration_minutes=minutes).result(timeout))
        self._links[appointment.id] = (link.rsplit("/j/", 1)[-1], slot, minutes)
        return link

    def set_officer_token(self, token: str) -> None:
        """Force mode: the officer token for the rendezvous (renewed by the app)."""
        self._officer_token = token
        if self.running:
            self.command("officer_token", token=token)

    def _restore_links(self) -> None:
        """In a new child: the links the old one issued and that were not spent
        (force mode: the force's rendezvous kept them; the child needs the officer token)."""
        if self.force_url is not None:
            if self._officer_token:
                self.command("officer_token", token=self._officer_token)
            return
        for appointment, (token, slot, minutes) in list(self._links.items()):
            try:
                self.command("restore_link", appointment=appointment, token=token, slot=slot,
                             duration_minutes=minutes).result(10)
            except Exception as exc:  # noqa: BLE001 - e.g. its slot is over: that link is gone
                log.info("media: a link for appointment %s was not restored (%s)", appointment, type(exc).__name__)
                self._links.pop(appointment, None)

    def choose_devices(self, camera: int | None, microphone: int | None) -> None:
        self.settings = MediaSettings(camera, microphone)
        self.command("choose_devices", camera=camera, microphone=microphone)

    def set_synthetic(self, width: int, height: int, fps: int) -> None:
        """Benchmarks: the test pattern's size from the next call (started with ``synthetic``)."""
        self.synthetic = (width, height, fps)
        self.command("set_synthetic", width=width, height=height, fps=fps).result(10)

    def list_devices(self, timeout: float = 20.0) -> tuple[list[Device], list[Device]]:
        """The cameras and microphones, probed in the child (blocking: call it on the worker)."""
        found = self.command("list_devices").result(timeout)
        return ([Device(int(c["index"]), str(c["name"])) for c in found["cameras"]],
                [Device(int(m["index"]), str(m["name"])) for m in found["microphones"]])

    # -- the channel ---------------------------------------------------------------------

    def command(self, kind: str, **fields: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        child = self._child
        if child is None or not child.ready.is_set() or child.closed.is_set():
            future.set_exception(MediaUnavailable("Video calls are restarting. Try again in a moment."))
            return future
        with self._lock:
            msg_id = next(self._ids)
            child.pending[msg_id] = future
        try:
            child.channel.send({"type": kind, "id": msg_id, **fields})
        except (ChannelClosed, ProtocolError) as exc:
            with self._lock:
                child.pending.pop(msg_id, None)
            if not future.done():
                future.set_exception(exc if isinstance(exc, ProtocolError) else MediaUnavailable(str(exc)))
        return future

    def _read(self, child: _Child) -> None:
        while True:
            try:
                m = child.channel.recv()
            except ProtocolError as exc:
                self.protocol_errors += 1
                log.warning("media: refused a message from the media process (%s)", exc.code)
                try:
                    child.channel.send({"type": "protocol-error", "code": exc.code, "detail": exc.detail[:200]})
                except (ChannelClosed, ProtocolError):
                    pass
                if exc.id is not None:  # a reply we cannot read: fail its command
                    self._resolve(child, exc.id, exc)
                continue
            except ChannelClosed:
                break
            try:
                self._dispatch(child, m)
            except ProtocolError as exc:
                self.protocol_errors += 1
                log.warning("media: refused an event from the media process (%s)", exc.code)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the reader
                log.exception("media: handling a %s message failed", m.get("type"))
        child.closed.set()
        self._wake.set()

    def _dispatch(self, child: _Child, m: dict[str, Any]) -> None:
        kind = m["type"]
        if kind == "event":
            e = event_from(m["event"], m["fields"])
            appointment = getattr(e, "appointment", None)
            if isinstance(e, ev.CallEnded):
                # A call that ended in the engine sent or got a bye (or gave
                # up): its link may be spent, so it is never restored.
                self._links.pop(e.appointment, None)
            if isinstance(e, ev.CallEnded) or (isinstance(e, ev.CallStateChanged) and e.state == "closed"):
                self._active.discard(e.appointment)
            elif isinstance(e, ev.CallStateChanged) and appointment:
                self._active.add(appointment)
            self.engine._emit(e)
        elif kind == "recording_status":
            self.engine._emit(recording_status_from(m))
        elif kind == "recording_ended":
            self.engine._emit(recording_ended_from(m))
        elif kind == "player_status":
            listener = self.engine.player_listener
            if listener is not None:
                listener(m)
        elif kind == "reply":
            self._resolve(child, m["id"], None if m["ok"] else _error(m.get("error")), m.get("result"))
        elif kind == "pong":
            child.last_pong = time.monotonic()
            self._resolve(child, m["id"], None)
        elif kind == "ready":
            child.speaker_note = m["speaker_note"]
            child.last_pong = time.monotonic()
            child.ready.set()
            self._wake.set()
        elif kind == "protocol-error":
            log.warning("media: the media process refused a message (%s)", m["code"])
            self.refused_by_child = [*self.refused_by_child[-99:], m["code"]]

    def _resolve(self, child: _Child, msg_id: int, exc: BaseException | None, result: Any = None) -> None:
        with self._lock:
            future = child.pending.pop(msg_id, None)
        if future is None or future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    # -- supervision -------------------------------------------------------------------

    def _spawn(self) -> _Child:
        remote = FrameSlot.create(REMOTE_MAX)
        local = FrameSlot.create(LOCAL_MAX)
        mine, theirs = socket.socketpair()
        assert self.wakeup is not None  # made by start()
        wakeup = self.wakeup.write_fd
        if self.force_url is not None:
            where = ["--rendezvous-url", self.force_url, *(["--rendezvous-ca", self.force_ca] if self.force_ca else [])]
            fds: tuple[int, ...] = (theirs.fileno(), wakeup)
        else:
            assert self._listen is not None
            where = ["--rendezvous-fd", str(self._listen.fileno())]
            fds = (theirs.fileno(), wakeup, self._listen.fileno())
        try:
            proc = subprocess.Popen(
                [*media_command(), "--fd", str(theirs.fileno()), "--parent", str(os.getpid()), *where,
                 "--remote-frames", remote.name, "--local-frames", local.name, "--frame-wakeup-fd", str(wakeup),
                 "--host-candidates", self.host_candidates,
                 *(["--synthetic", "x".join(map(str, self.synthetic))] if self.synthetic else [])],
                pass_fds=fds, stdin=subprocess.DEVNULL, close_fds=True,
            )
        except BaseException:
            remote.unlink()
            local.unlink()
            mine.close()
            raise
        finally:
            theirs.close()
        child = _Child(proc, Channel(mine, CHILD_SENDS, name="media-app"), remote, local)
        threading.Thread(target=self._read, args=(child,), name="media-reader", daemon=True).start()
        log.info("media process %d started", proc.pid)
        return child

    def _wait_ready(self, child: _Child) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline and not self._closing:
                if child.ready.is_set():
                    return True
                if child.closed.is_set() or child.proc.poll() is not None:
                    return False
                self._wake.wait(0.2)
                self._wake.clear()
            return False
        finally:
            # The child unlinks them once mapped; this covers a child that died first.
            child.remote.unlink()
            child.local.unlink()

    def _supervise(self) -> None:
        losses: list[float] = []
        first = True
        while not self._closing:
            try:
                child = self._spawn()
            except Exception as exc:  # noqa: BLE001 - e.g. no memory for the frames
                log.exception("media: could not start the media process")
                if first:
                    self._first_error = exc
                    break
                if not self._again(losses):
                    self.engine._emit(ev.MediaProcessLost(LOST_FOR_GOOD, "exited", restarting=False))
                    break
                time.sleep(RESTART_DELAY)
                continue
            self._child = child
            if self._wait_ready(child):
                self.speaker_note = child.speaker_note
                if not first:
                    self.restarts += 1
                    if self.settings != MediaSettings():
                        self.command("choose_devices", camera=self.settings.camera,
                                     microphone=self.settings.microphone)
                    self._restore_links()
                    self.engine._emit(ev.MediaProcessRestarted())
                first = False
                self._first.set()
                log.info("media process %d ready", child.pid)
                why = self._watch(child)
            elif first and not self._closing:
                self._first_error = RuntimeError("the video part stopped while starting")
                self._end(child)
                break
            else:
                why = "exited"
            if self._closing:
                self._end(child, gracefully=True)
                break
            again = self._again(losses)
            self._lost(child, why, restarting=again)
            if not again:
                log.error("media: the media process was lost %d times: not restarting", len(losses))
                break
            time.sleep(RESTART_DELAY)
        self._first.set()

    @staticmethod
    def _again(losses: list[float]) -> bool:
        """Count a loss; False once there were MAX_LOSSES within LOSS_WINDOW."""
        now = time.monotonic()
        losses[:] = [t for t in losses if now - t < LOSS_WINDOW] + [now]
        return len(losses) < MAX_LOSSES

    def _watch(self, child: _Child) -> str:
        """Until the child is lost ("exited", "hung") or the app closes ("closing")."""
        next_ping = 0.0
        while not self._closing:
            if child.closed.is_set() or child.proc.poll() is not None:
                return "exited"
            now = time.monotonic()
            if now - child.last_pong > self.hang_timeout:
                log.error("media: process %d did not answer for %.0f s: stopping it", child.pid, self.hang_timeout)
                child.proc.kill()
                return "hung"
            if now >= next_ping:
                next_ping = now + PING_INTERVAL
                self.command("ping")
            self._wake.wait(0.25)
            self._wake.clear()
        return "closing"

    def _end(self, child: _Child, gracefully: bool = False) -> None:
        if gracefully and child.proc.poll() is None and child.ready.is_set():
            try:
                self.command("stop").result(STOP_TIMEOUT)
            except Exception:  # noqa: BLE001 - then it is killed below
                log.warning("media: process %d did not stop cleanly", child.pid)
            try:
                child.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if child.proc.poll() is None:
            child.proc.kill()
        try:
            child.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            log.error("media: process %d did not exit", child.pid)
        child.channel.close()
        if self._child is child:
            self._child = None
        with self._lock:
            pending, child.pending = child.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(MediaUnavailable("Video calls stopped."))

    def _lost(self, child: _Child, why: str, *, restarting: bool) -> None:
        code = child.proc.poll()
        log.error("media: process %d lost (%s, exit status %s)", child.pid, why, code)
        self._end(child)
        calls, self._active = tuple(sorted(self._active)), set()
        for appointment in calls:
            self.engine._emit(ev.Error(LOST_IN_CALL, appointment=appointment, code="media-lost", fatal=True))
            self.engine._emit(ev.CallEnded(appointment, by="engine", reason="media-lost"))
        self.engine._emit(ev.MediaProcessLost(LOST if restarting else LOST_FOR_GOOD, why, calls,
                                              restarting=restarting, links_lost=not restarting))


class MediaEngine:
    """The call engine's surface, in the GUI process, over the media process."""

    def __init__(self, calls: MediaCalls):
        self._calls = calls
        self._listeners = ev.Listeners(log)
        # Called on the reader thread with each ``player_status`` message (playback).
        self.player_listener: Callable[[dict[str, Any]], None] | None = None

    @property
    def settings(self) -> MediaSettings:
        return self._calls.settings

    @property
    def frame_wakeup(self) -> FrameWakeup | None:
        """The pipe that says a new remote frame is in shared memory (None
        until the media process is started); the in-process engine has
        ``frame_listener`` instead."""
        return self._calls.wakeup

    @property
    def running(self) -> bool:
        return self._calls.running

    # -- listeners ----------------------------------------------------------------

    def add_listener(self, listener: Any) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: Any) -> None:
        self._listeners.remove(listener)

    def _emit(self, event: ev.Event) -> None:
        self._listeners.emit(event)

    # -- commands (each returns a Future at once) -------------------------------------

    def start_call(self, appointment: str) -> concurrent.futures.Future:
        future = self._calls.command("start_call", appointment=appointment)
        if not future.done():
            self._calls._active.add(appointment)
        return future

    def end_call(self, appointment: str, reason: str | None = None) -> concurrent.futures.Future:
        return self._calls.command("end_call", appointment=appointment, reason=reason)

    def send_chat(self, appointment: str, text: str, mid: str | None = None) -> concurrent.futures.Future:
        return self._calls.command("send_chat", appointment=appointment, text=text, mid=mid)

    def record_start(self, appointment: str, folder: str, officer_recipient: str,
                     escrow_recipient: str) -> concurrent.futures.Future:
        """Record this call in the child (send before ``start_call``); the future
        fails when recording is refused (``CommandFailed`` kind ``RecordingRefused``,
        or an ``OSError``'s kind and sentence)."""
        return self._calls.command("record_start", appointment=appointment, folder=folder,
                                  officer_recipient=officer_recipient, escrow_recipient=escrow_recipient)

    def capture_still(self, appointment: str, exhibit: str) -> concurrent.futures.Future:
        """Take the victim's current frame as exhibit ``exhibit`` (in the media process);
        the future's result is the checked dict of ``still_result_from``. It fails with
        ``CommandFailed`` (kind ``NoFrame``, ``StillRefused``, ``OSError``...) or ``ProtocolError``."""
        raw = self._calls.command("capture_still", appointment=appointment, exhibit=exhibit)
        checked: concurrent.futures.Future = concurrent.futures.Future()
        checked.set_running_or_notify_cancel()

        def done(f: concurrent.futures.Future) -> None:
            exc = f.exception()
            if exc is not None:
                checked.set_exception(exc)
                return
            try:
                checked.set_result(still_result_from(f.result()))
            except ProtocolError as bad:
                checked.set_exception(bad)

        raw.add_done_callback(done)
        return checked

    def send_statement_review(self, appointment: str, review_id: str, text: str, pages: int, declaration: str,
                              kind: str) -> concurrent.futures.Future:
        """The statement to the victim's phone for signing (over the call's data channel)."""
        return self._calls.command("send_statement_review", appointment=appointment, review_id=review_id,
                                   text=text, pages=pages, declaration=declaration, statement_type=kind)

    def withdraw_statement_review(self, appointment: str, review_id: str) -> concurrent.futures.Future:
        return self._calls.command("withdraw_statement_review", appointment=appointment, review_id=review_id)

    def restart_ice(self, appointment: str) -> concurrent.futures.Future:
        return self._calls.command("restart_ice", appointment=appointment)

    def call_info(self, appointment: str) -> concurrent.futures.Future:
        return self._calls.command("call_info", appointment=appointment)

    def set_microphone_muted(self, muted: bool) -> concurrent.futures.Future:
        return self._calls.command("set_microphone_muted", muted=bool(muted))

    def set_camera_enabled(self, enabled: bool) -> concurrent.futures.Future:
        return self._calls.command("set_camera_enabled", enabled=bool(enabled))

    # -- playback (issue 10 item 9) ---------------------------------------------------

    def working_copy(self, recording: str, folder: str, segments: list[dict[str, Any]],
                     recipients: list[str]) -> concurrent.futures.Future:
        """The recording's working copy and chat, made in the media process (its result: duration_s,
        video_frames, chat_lines)."""
        return self._calls.command("working_copy", recording=recording, folder=folder, segments=segments,
                                   recipients=recipients)

    def player_open(self, recording: str, folder: str, segments: list[dict[str, Any]]) -> concurrent.futures.Future:
        """Open a recording in the child from its file keys (``recording.library.PlaybackSegment.message``).
        The result: ``duration``, ``chat`` (``at``, ``text``), ``tracks``, ``note``."""
        return self._calls.command("player_open", recording=recording, folder=folder, segments=segments)

    def player_play(self) -> concurrent.futures.Future:
        return self._calls.command("player_play")

    def player_pause(self) -> concurrent.futures.Future:
        return self._calls.command("player_pause")

    def player_seek(self, seconds: float) -> concurrent.futures.Future:
        return self._calls.command("player_seek", seconds=float(seconds))

    def player_close(self) -> concurrent.futures.Future:
        return self._calls.command("player_close")

    def latest_player_bgra(self, recording: str) -> np.ndarray | None:
        """The player's newest picture (both sides), BGRA, as ``latest_remote_bgra``."""
        child = self._calls._child
        return None if child is None else child.remote.acquire(f"player:{recording}")

    # -- display frames ---------------------------------------------------------------

    def latest_remote_bgra(self, appointment: str | None = None) -> np.ndarray | None:
        """The victim's newest frame, BGRA (h, w, 4): a view into shared memory,
        valid until this returns a newer frame (see frames.py); None if none."""
        child = self._calls._child
        if child is None:
            return None
        return child.remote.acquire(f"remote:{appointment}" if appointment else None)

    def latest_remote_frame(self, appointment: str | None = None) -> np.ndarray | None:
        bgra = self.latest_remote_bgra(appointment)
        return None if bgra is None else bgra[:, :, 2::-1]

    def latest_local_preview(self) -> np.ndarray | None:
        """The self view (at most 320 px wide), BGRA, as ``latest_remote_bgra``."""
        child = self._calls._child
        return None if child is None else child.local.acquire("local")
