"""The media process itself: ``python -m evr_desktop.media --fd N ...``.

It hosts ``EmbeddedCalls`` (the call engine and the demo's loopback
rendezvous), answers the GUI's commands, forwards the engine's events, copies
display frames into the shared slots and watches its parent: it exits when
the parent dies (``PR_SET_PDEATHSIG`` on Linux, a poll of the parent's pid and
the channel's end everywhere), so no media process outlives the app.

It is given no vault secret: the officer secret it uses is the one-off
secret between it and its own loopback rendezvous, or, in a force, a
short-lived officer token the app signed (``officer_token``; never the key),
and what the call needs: public data and the session's TURN credentials. The only media
it writes is the call's recording, encrypted as it is written to the two
public age recipients the app sends with ``record_start`` (one
``RecordingRouter`` is the engine's tap sink and listener; one ``Recorder``
per call); its log lines carry appointment IDs only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict, fields, is_dataclass, replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..call import events as ev
from ..recording.router import RecordingRouter
from .channel import PARENT_SENDS, STILL_RESULT_FIELDS, Channel, ChannelClosed, ProtocolError
from .frames import FrameSlot, ring

log = logging.getLogger("evr_desktop.media")

PARENT_POLL = 0.5  # s: how often the parent's pid is checked
LOCAL_POLL = 0.033  # s: how often the self view's newest preview is looked for


def event_message(e: ev.Event) -> dict[str, Any]:
    return {"type": "event", "event": type(e).__name__, "fields": asdict(e)}


def _watch_parent(parent: int) -> None:
    """The portable fallback to PR_SET_PDEATHSIG: a parent gone means exit now
    (no bye: as after a crash, the links are not spent)."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(PARENT_POLL)


def _harden(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # decoded video of the victim: no core dumps
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _plain(value: Any) -> Any:
    """A command's result as JSON (a call session object becomes None)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return None


def error_fields(exc: BaseException) -> dict[str, Any]:
    """An exception as the reply carries it: its kind and its sentence (the
    engine's messages are plain sentences and IDs, never victim data)."""
    kind = type(exc).__name__
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        kind = "TimeoutError"
    return {"type": kind, "message": str(exc)[:2000]}


class MediaChild:
    def __init__(self, channel: Channel, remote: FrameSlot, local: FrameSlot, calls: Any,
                 wakeup_fd: int | None = None):
        self._working_locks: dict[str, threading.Lock] = {}
        self.channel = channel
        self.remote = remote
        self.local = local
        # The write end of the app's frame wake-up pipe (``FrameWakeup``); None: no wake-ups.
        self.wakeup_fd = wakeup_fd
        self.calls = calls
        self.engine = calls.engine
        self._stopping = False
        self.synthetic: dict[str, int] = {}  # the test pattern's size, when --synthetic
        self.router: RecordingRouter | None = None  # set by main(): the engine's tap sink
        self._closing: list[threading.Thread] = []
        self.player: Any = None  # the recording being played (recording.player.Player), at most one
        self._player_id = ""

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except (ChannelClosed, ProtocolError):
            log.warning("media: could not send a %s message", message.get("type"))

    # -- engine side --------------------------------------------------------------

    def on_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.StatementSigned) and self.router is not None:
            # The declaration's moment on the recording's clock (the statement notes it).
            recorder = self.router.get(e.appointment)
            at = recorder.elapsed() if recorder is not None else None
            e = replace(e, recording_at_s=None if at is None else round(at, 3))
        self.send(event_message(e))
        if isinstance(e, ev.CallEnded) or (isinstance(e, ev.CallStateChanged) and e.state == "closed"):
            reason = getattr(e, "reason", None) or f"call ended ({getattr(e, 'by', 'closed')})"
            self.close_recording(e.appointment, reason)

    # -- recording ------------------------------------------------------------------

    def record_start(self, appointment: str, folder: str, officer_recipient: str, escrow_recipient: str) -> None:
        """Attach a recorder for the call (raises ``RecordingRefused``, ``OSError``: the failed reply)."""
        from ..recording.recorder import RECORDING, Recorder

        if self.router is None:
            raise RuntimeError("recording is not available in this media process")
        if self.router.get(appointment) is not None:  # left by a call that never ended here
            self.close_recording(appointment, "a new call started")

        def status(s: Any) -> None:
            self.send({"type": "recording_status", "appointment": appointment, "state": s.state,
                       "message": s.message})
            self._show_recording(appointment, s.state == RECORDING)

        def keyframe(direction: str) -> None:  # on the tap's thread: hand it to the engine's loop
            try:
                self.engine.request_keyframe(appointment, direction)
            except RuntimeError:  # the engine is stopping
                pass

        recorder = Recorder(Path(folder), officer_recipient=officer_recipient, escrow_recipient=escrow_recipient,
                            session=appointment, on_status=status, on_keyframe_wanted=keyframe)
        self.router.attach(appointment, recorder)
        log.info("media: recording %s", appointment)

    def close_recording(self, appointment: str, reason: str) -> None:
        """Detach and close the call's recorder on a thread of its own (the muxer's
        flush and the fsyncs stay off the engine's loop), then tell the app."""
        recorder = self.router.detach(appointment) if self.router is not None else None
        if recorder is None:
            return
        self._show_recording(appointment, False)

        def close() -> None:
            try:
                result = recorder.close(reason)
            except Exception as exc:  # noqa: BLE001 - told to the app, never raised into the engine
                log.exception("media: closing the recording of %s failed", appointment)
                self.send({"type": "recording_status", "appointment": appointment, "state": "failed",
                           "message": f"the recording could not be closed ({type(exc).__name__})"})
                return
            self.send({"type": "recording_ended", "appointment": appointment, "result": {
                "recording_id": result.recording_id, "manifest_sha256": result.manifest_sha256,
                "started_at": result.started_at, "ended_at": result.ended_at, "duration_s": result.duration_s,
                "segments": result.segments, "finalised": result.finalised, "error": result.error}})

        thread = threading.Thread(target=close, name="recording-close", daemon=False)
        thread.start()
        self._closing.append(thread)

    def _show_recording(self, appointment: str, on: bool) -> None:
        """The victim's page shows whether the call is being recorded (the engine
        tells it over the data channel)."""
        try:
            self.engine.set_recording_shown(appointment, on)
        except RuntimeError:  # the engine is stopping
            pass

    def close_all_recordings(self, reason: str, timeout: float = 10.0) -> None:
        if self.router is not None:
            for appointment in self.router.sessions():
                self.close_recording(appointment, reason)
        for thread in self._closing:
            thread.join(timeout)

    # -- stills ---------------------------------------------------------------------------

    def capture_still(self, appointment: str, exhibit: str) -> dict[str, Any]:
        """The victim's newest frame, at the size it was received, as an encrypted
        PNG in the call's recording folder (recording/stills.py). Runs on a thread
        of its own: the PNG encoding and the fsyncs never hold the engine's loop."""
        from ..recording.stills import StillRefused, capture_still

        if not exhibit or len(exhibit) > 40:
            raise ValueError("an exhibit reference of 1 to 40 characters is needed")
        session = getattr(self.engine, "session", None)
        if session is not None and session(appointment) is None:
            raise StillRefused("not in a call with this appointment: a still needs the call in progress")
        frame = self.engine.latest_remote_bgra(appointment)  # never scaled; never changed once published
        recorder = self.router.get(appointment) if self.router is not None else None
        result = capture_still(recorder, frame, exhibit=exhibit, appointment=appointment)
        log.info("media: still %s taken for %s (%dx%d)", result.exhibit, appointment, result.width, result.height)
        return {name: getattr(result, name) for name in STILL_RESULT_FIELDS}

    # -- playback -------------------------------------------------------------------

    def player_open(self, recording: str, folder: str, segments: Any) -> dict[str, Any]:
        """Open a recording from its file keys (blocking: one demux pass; run on a thread).
        Its pictures go into the remote slot under ``player:<recording>``."""
        import math

        from ..recording.player import Player, segment_keys

        if not (recording.isascii() and recording.isalnum() and len(recording) <= 40):
            raise ValueError("player_open: a recording id is letters and digits")
        keys = segment_keys(segments)
        self.player_close()
        key = f"player:{recording}"

        def status(state: str, position: float, message: str) -> None:
            if math.isfinite(position):
                self.send({"type": "player_status", "recording": recording, "state": state,
                           "position": round(position, 3), "message": message[:2000]})

        player = Player(Path(folder), keys, publish=lambda frame: self.remote.publish(key, frame),
                        on_status=status)
        info = player.open()
        self.player, self._player_id = player, recording
        return info

    def working_copy(self, recording: str, folder: str, segments: Any, recipients: Any) -> dict[str, Any]:
        """Make ``working-copy.mp4.age`` and ``chat.json.age`` in the recording's
        folder (blocking: run on a thread, at low priority), encrypted as written to
        the two public recipients; nothing in plaintext ever reaches the disk."""
        from ..recording.player import segment_keys
        from ..recording.working_copy import write_working_copy

        if not (recording.isascii() and recording.isalnum() and len(recording) <= 40):
            raise ValueError("working_copy: a recording id is letters and digits")
        if not (isinstance(recipients, list) and len(recipients) == 2 and all(isinstance(r, str) for r in recipients)):
            raise ValueError("working_copy: two recipients")
        keys = segment_keys(segments)
        try:  # Linux: niceness is per thread; the call, if one starts, goes first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        except (OSError, AttributeError):
            pass
        # One at a time per recording: a second request (the export, while the one made
        # after the call still runs) waits for the first and finds the copy made.
        with self._working_locks.setdefault(recording, threading.Lock()):
            if (Path(folder) / "working-copy.mp4.age").is_file():
                return {"duration_s": 0.0, "video_frames": 0, "chat_lines": 0, "already": True}
            result = write_working_copy(Path(folder), keys, recipients)
        log.info("media: working copy of %s made (%.1f s, %d frames)", recording, result["duration_s"],
                 result["video_frames"])
        return {"duration_s": result["duration_s"], "video_frames": result["video_frames"],
                "chat_lines": len(result["chat"])}

    def player_close(self) -> None:
        player, self.player = self.player, None
        if player is not None:
            player.close()

    def _player_command(self, fn: Any) -> Any:
        if self.player is None:
            raise ValueError("no recording is open")
        return fn(self.player)

    def on_frame(self, key: str) -> None:
        """Display thread: the newest remote frame into shared memory, then the
        wake-up, one byte on the app's pipe straight from this thread (no
        message, no writer thread; the app's GUI thread watches the pipe)."""
        appointment = key.removeprefix("remote:")
        frame = self.engine.latest_remote_bgra(appointment)
        if frame is not None and self.remote.publish(key, frame) and self.wakeup_fd is not None:
            ring(self.wakeup_fd)

    def _local_frames(self) -> None:
        last = None
        while not self._stopping:
            preview = self.engine.latest_local_preview()  # BGRA, made on the capture thread
            if preview is not None and preview is not last:
                last = preview
                self.local.publish("local", preview)
            time.sleep(LOCAL_POLL)

    # -- commands -----------------------------------------------------------------

    def reply_when_done(self, msg_id: int, future: Any) -> None:
        def done(f: Any) -> None:
            exc = f.exception()
            if exc is None:
                self.send({"type": "reply", "id": msg_id, "ok": True, "result": _plain(f.result())})
            else:
                self.send({"type": "reply", "id": msg_id, "ok": False, "error": error_fields(exc)})

        future.add_done_callback(done)

    def reply_now(self, msg_id: int, fn: Any) -> None:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI
            self.send({"type": "reply", "id": msg_id, "ok": False, "error": error_fields(exc)})
        else:
            self.send({"type": "reply", "id": msg_id, "ok": True, "result": _plain(result)})

    def handle(self, m: dict[str, Any]) -> None:
        kind, msg_id, engine = m["type"], m.get("id", 0), self.engine
        if kind == "ping":
            # Answered through the engine's loop: a loop that hangs gets no pong.
            self.reply_when_done_pong(msg_id)
        elif kind == "start_call":
            future = engine.start_call(m["appointment"])
            self.reply_when_done(msg_id, future)

            def not_started(f: Any, appointment: str = m["appointment"]) -> None:
                # A call that never started may end with no CallEnded: its recorder is closed here.
                if f.cancelled() or f.exception() is not None:
                    self.close_recording(appointment, "the call did not start")

            future.add_done_callback(not_started)
        elif kind == "end_call":
            self.reply_when_done(msg_id, engine.end_call(m["appointment"], m.get("reason")))
        elif kind == "send_chat":
            self.reply_when_done(msg_id, engine.send_chat(m["appointment"], m["text"], m.get("mid")))
            if self.router is not None:
                self.router.officer_chat(m["appointment"], m["text"])
        elif kind == "record_start":
            self.reply_now(msg_id, lambda: self.record_start(m["appointment"], m["folder"], m["officer_recipient"],
                                                             m["escrow_recipient"]))
        elif kind == "capture_still":
            threading.Thread(target=self.reply_now,
                             args=(msg_id, lambda: self.capture_still(m["appointment"], m["exhibit"])),
                             name="still", daemon=True).start()
        elif kind == "send_statement_review":
            self.reply_when_done(msg_id, engine.send_statement_review(
                m["appointment"], m["review_id"], m["text"], m["pages"], m["declaration"], m["statement_type"]))
        elif kind == "withdraw_statement_review":
            self.reply_when_done(msg_id, engine.withdraw_statement_review(m["appointment"], m["review_id"]))
        elif kind == "restart_ice":
            self.reply_when_done(msg_id, engine.restart_ice(m["appointment"]))
        elif kind == "call_info":
            self.reply_when_done(msg_id, engine.call_info(m["appointment"]))
        elif kind == "set_microphone_muted":
            self.reply_now(msg_id, lambda: engine.set_microphone_muted(m["muted"]))
        elif kind == "set_camera_enabled":
            self.reply_now(msg_id, lambda: engine.set_camera_enabled(m["enabled"]))
        elif kind == "choose_devices":
            self.reply_now(msg_id, lambda: self.calls.choose_devices(m["camera"], m["microphone"]))
        elif kind == "issue_link":
            appointment = SimpleNamespace(id=m["appointment"], slot=datetime.fromisoformat(m["slot"]),
                                          duration_minutes=m["duration_minutes"])
            # On a thread: issue_link waits on the engine's loop, and this one reads the channel.
            threading.Thread(target=self.reply_now, args=(msg_id, lambda: self.calls.issue_link(appointment)),
                             daemon=True).start()
        elif kind == "restore_link":
            appointment = SimpleNamespace(id=m["appointment"], slot=datetime.fromisoformat(m["slot"]),
                                          duration_minutes=m["duration_minutes"])
            threading.Thread(target=self.reply_now,
                             args=(msg_id, lambda: self.calls.restore_link(appointment, m["token"])),
                             daemon=True).start()
        elif kind == "officer_token":
            self.reply_now(msg_id, lambda: self.calls.set_officer_token(m["token"]))
        elif kind == "working_copy":
            threading.Thread(target=self.reply_now, args=(msg_id, lambda: self.working_copy(
                m["recording"], m["folder"], m["segments"], m["recipients"])), name="working-copy",
                daemon=True).start()
        elif kind == "set_synthetic":
            def resize() -> None:
                if not self.synthetic:
                    raise ValueError("not started with --synthetic")
                self.synthetic.update(width=m["width"], height=m["height"], fps=m["fps"])  # from the next call

            self.reply_now(msg_id, resize)
        elif kind == "list_devices":
            threading.Thread(target=self.reply_now, args=(msg_id, _list_devices), daemon=True).start()
        elif kind == "stop":
            self._stopping = True

            def stop() -> None:
                self.calls.stop()
                self.player_close()
                self.close_all_recordings("the app stopped video calls")

            self.reply_now(msg_id, stop)
            raise SystemExit(0)
        elif kind == "player_open":
            threading.Thread(target=self.reply_now, name="player-open", daemon=True, args=(
                msg_id, lambda: self.player_open(m["recording"], m["folder"], m["segments"]))).start()
        elif kind == "player_play":
            self.reply_now(msg_id, lambda: self._player_command(lambda p: p.play()))
        elif kind == "player_pause":
            self.reply_now(msg_id, lambda: self._player_command(lambda p: p.pause()))
        elif kind == "player_seek":
            def seek(p: Any) -> None:
                import math

                if not math.isfinite(m["seconds"]):
                    raise ValueError("player_seek: seconds must be a number")
                p.seek(m["seconds"])

            self.reply_now(msg_id, lambda: self._player_command(seek))
        elif kind == "player_close":
            self.reply_now(msg_id, self.player_close)
        elif kind == "protocol-error":
            log.warning("media: the app refused a message (%s)", m["code"])

    def reply_when_done_pong(self, msg_id: int) -> None:
        async def nothing() -> None:
            return None

        try:
            future = self.engine.submit(nothing())
        except RuntimeError:
            return  # the engine is not running: no pong, the watchdog decides
        future.add_done_callback(lambda f: self.send({"type": "pong", "id": msg_id}))

    def serve(self) -> None:
        threading.Thread(target=self._local_frames, name="local-frames", daemon=True).start()
        while True:
            try:
                m = self.channel.recv()
            except ProtocolError as exc:
                log.warning("media: refused a message from the app (%s)", exc.code)
                self.send({"type": "protocol-error", "code": exc.code, "detail": exc.detail[:200]})
                if exc.id is not None:
                    self.send({"type": "reply", "id": exc.id, "ok": False,
                               "error": {"type": "ProtocolError", "message": f"refused: {exc.code}"}})
                continue
            except ChannelClosed:
                return  # the app is gone or closed the channel
            try:
                self.handle(m)
            except SystemExit:
                raise
            except Exception:  # noqa: BLE001 - one bad command must not end the process
                log.exception("media: the %s command failed", m.get("type"))


def _list_devices() -> dict[str, list[dict[str, Any]]]:
    from ..capture.devices import list_cameras, list_microphones

    return {"cameras": [{"index": c.index, "name": c.name} for c in list_cameras()],
            "microphones": [{"index": m.index, "name": m.name} for m in list_microphones()]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="evr_desktop.media")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--remote-frames", required=True)
    p.add_argument("--local-frames", required=True)
    p.add_argument("--frame-wakeup-fd", type=int, help="the write end of the app's frame wake-up pipe")
    p.add_argument("--host-candidates", default="with-loopback")
    p.add_argument("--rendezvous-fd", type=int, help="the app's listening socket for the demo's rendezvous")
    p.add_argument("--rendezvous-url", help="force mode: the force's rendezvous (https://)")
    p.add_argument("--rendezvous-ca", help="force mode: a CA bundle (PEM) for the rendezvous's TLS")
    p.add_argument("--synthetic", metavar="WxHxFPS",
                   help="benchmarks and tests: always send the test pattern and tone, at this size")
    args = p.parse_args(argv)
    _harden(args.parent)
    from ..logs import configure

    configure("media")  # JSON lines on the stderr it shares with the app; no address ever
    sock = socket.socket(fileno=args.fd)
    channel = Channel(sock, PARENT_SENDS, name="media-child")
    remote = FrameSlot.attach(args.remote_frames)
    local = FrameSlot.attach(args.local_frames)
    # Both are mapped here and in the app now: the names can go.
    remote.unlink()
    local.unlink()

    from ..call.embedded import EmbeddedCalls

    kwargs: dict[str, Any] = {}
    synthetic: dict[str, int] = {}
    if args.synthetic:
        from ..capture.devices import choose_sources

        w, h, fps = (int(v) for v in args.synthetic.lower().split("x"))
        synthetic.update(width=w, height=h, fps=fps)
        kwargs["sources"] = lambda: choose_sources(False, **synthetic)
    if args.rendezvous_url:
        kwargs.update(force_url=args.rendezvous_url, force_ca=args.rendezvous_ca)
    elif args.rendezvous_fd is not None:
        kwargs["listen"] = socket.socket(fileno=args.rendezvous_fd)
    # One router for every call: the engine's tap sink and one of its listeners;
    # a recorder is attached per call by record_start.
    router = RecordingRouter()
    calls = EmbeddedCalls(host_candidates=args.host_candidates, tap_sink=router, **kwargs)
    calls.start()
    child = MediaChild(channel, remote, local, calls, wakeup_fd=args.frame_wakeup_fd)
    child.router = router
    child.synthetic = synthetic
    engine = calls.engine
    assert engine is not None  # started
    engine.add_listener(router.on_event)
    engine.add_listener(child.on_event)
    engine.frame_listener = child.on_frame
    child.send({"type": "ready", "speaker_note": calls.speaker_note})
    log.info("media process ready")
    try:
        child.serve()
    except SystemExit:
        channel.flush()
        return 0
    # The channel ended without a stop: the app is gone. Stop quickly, no bye.
    child._stopping = True
    def stop() -> None:
        calls.stop()
        child.close_all_recordings("the app stopped before the recording was closed", timeout=3)

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    stopper.join(5)
    return 0
