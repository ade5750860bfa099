"""The one channel between the GUI process and the media process.

A stream socket (a ``socketpair``) carrying messages, each a 4-byte big-endian
length and that many bytes of UTF-8 JSON: an object ``{"v": 1, "type": ...}``
plus the fields its type requires (``PARENT_SENDS`` / ``CHILD_SENDS``, checked
on receipt). What either side refuses, it refuses with a ``ProtocolError``
naming a code, and it goes on reading: a bad message never crashes the
reader.

=============  ==========================================================
code           when
=============  ==========================================================
``oversized``  the length prefix is over ``MAX_MESSAGE`` (1 MiB); the body
               is read and thrown away (up to ``MAX_SKIP``; past that the
               stream cannot be trusted and the channel is closed)
``malformed``  not UTF-8 JSON, or not an object
``version``    ``v`` is not 1
``unknown-type``  a ``type`` this side does not accept
``bad-fields`` a field missing, of the wrong type, or not expected
=============  ==========================================================

``send`` never blocks its caller (the GUI thread, the engine's loop): messages
go through a queue to a writer thread; a full queue fails the send.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import struct
import threading
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("evr_desktop.media")

VERSION = 1
MAX_MESSAGE = 1 << 20  # 1 MiB: a chat is at most 4000 characters, an event far less
MAX_SKIP = 16 * MAX_MESSAGE  # an oversized body longer than this is not skipped: the channel closes
OUTBOX = 10_000  # messages waiting for the writer thread
_LENGTH = struct.Struct(">I")

# The fields of each message type, by sender: name -> (accepted types, required).
# ``None`` in a type tuple means JSON null.
Spec = Mapping[str, Mapping[str, tuple[tuple[type | None, ...], bool]]]

_ID = {"id": ((int,), True)}
_APPT = {"appointment": ((str,), True)}

PARENT_SENDS: Spec = {
    "ping": {**_ID},
    "start_call": {**_ID, **_APPT},
    "end_call": {**_ID, **_APPT, "reason": ((str, None), False)},
    "send_chat": {**_ID, **_APPT, "text": ((str,), True), "mid": ((str, None), False)},
    "restart_ice": {**_ID, **_APPT},
    # The statement to the victim's phone for signing (its size is checked in the
    # engine, domain/phone_signing.py: at most 200 KB of JSON), and withdrawing it.
    "send_statement_review": {**_ID, **_APPT, "review_id": ((str,), True), "text": ((str,), True),
                              "pages": ((int,), True), "declaration": ((str,), True),
                              "statement_type": ((str,), True)},
    "withdraw_statement_review": {**_ID, **_APPT, "review_id": ((str,), True)},
    "call_info": {**_ID, **_APPT},
    "set_microphone_muted": {**_ID, "muted": ((bool,), True)},
    "set_camera_enabled": {**_ID, "enabled": ((bool,), True)},
    "issue_link": {**_ID, **_APPT, "slot": ((str,), True), "duration_minutes": ((int,), True)},
    "restore_link": {**_ID, **_APPT, "slot": ((str,), True), "duration_minutes": ((int,), True),
                     "token": ((str,), True)},
    "choose_devices": {**_ID, "camera": ((int, None), True), "microphone": ((int, None), True)},
    "list_devices": {**_ID},
    "set_synthetic": {**_ID, "width": ((int,), True), "height": ((int,), True), "fps": ((int,), True)},
    "stop": {**_ID},
    # Force mode: the officer token for the force's rendezvous (made and renewed by the app).
    "officer_token": {**_ID, "token": ((str,), True)},
    # Record this call (sent before start_call, once the victim consented): the
    # two public age recipients, never a key. The reply fails when recording is refused.
    "record_start": {**_ID, **_APPT, "folder": ((str,), True), "officer_recipient": ((str,), True),
                     "escrow_recipient": ((str,), True)},
    # Take the victim's current frame as exhibit ``exhibit`` (e.g. "RJ/1") into the call's
    # recording folder; the reply's result is ``STILL_RESULT`` (proxy.py checks it field by field).
    "capture_still": {**_ID, **_APPT, "exhibit": ((str,), True)},
    # Playback (issue 10 item 9): the recording's folder and, per segment, its
    # file name, file key (base64), plaintext size and whether it was
    # finalised (checked in the child, ``player.segment_keys``); nothing else
    # secret: never an identity.
    "player_open": {**_ID, "recording": ((str,), True), "folder": ((str,), True), "segments": ((list,), True)},
    # The working copy (H.264/AAC MP4) and chat of a finished recording, into its folder,
    # encrypted to these two public recipients; the segments as for player_open.
    "working_copy": {**_ID, "recording": ((str,), True), "folder": ((str,), True), "segments": ((list,), True),
                     "recipients": ((list,), True)},
    "player_play": {**_ID},
    "player_pause": {**_ID},
    "player_seek": {**_ID, "seconds": ((int, float), True)},
    "player_close": {**_ID},
    "protocol-error": {"code": ((str,), True), "detail": ((str,), True)},
}

CHILD_SENDS: Spec = {
    "ready": {"speaker_note": ((str,), True)},
    "reply": {**_ID, "ok": ((bool,), True), "result": ((object,), False), "error": ((dict,), False)},
    "event": {"event": ((str,), True), "fields": ((dict,), True)},
    "pong": {**_ID},
    "recording_status": {**_APPT, "state": ((str,), True), "message": ((str,), True)},
    "recording_ended": {**_APPT, "result": ((dict,), True)},
    # Playback: playing / paused / ended / error, the position (s) and a plain message.
    "player_status": {"recording": ((str,), True), "state": ((str,), True), "position": ((int, float), True),
                      "message": ((str,), True)},
    "protocol-error": {"code": ((str,), True), "detail": ((str,), True)},
}

# ``capture_still``'s reply result: name -> accepted types (a bool is not a number here; None is JSON null).
STILL_RESULT_FIELDS: Mapping[str, tuple[type | None, ...]] = {
    "file": (str,), "name": (str,), "exhibit": (str,), "ciphertext_sha256": (str,), "ciphertext_size": (int,),
    "plaintext_sha256": (str,), "plaintext_size": (int,), "width": (int,), "height": (int,),
    "at_s": (float, int, None), "taken_at": (str,), "recording_state": (str,),
}


class ProtocolError(Exception):
    """A message refused; ``code`` says why (see the module's table). ``id``
    is the refused command's id when it had one, so its sender can fail it."""

    def __init__(self, code: str, detail: str, msg_id: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.id = msg_id


class ChannelClosed(Exception):
    """The other end is gone (EOF, reset) or the stream can no longer be trusted."""


def encode(message: Mapping[str, Any]) -> bytes:
    """One message on the wire (``v`` added). Raises ``ProtocolError("oversized")``
    rather than send what the other side would refuse."""
    body = json.dumps({"v": VERSION, **message}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_MESSAGE:
        raise ProtocolError("oversized", f"{len(body)} bytes (at most {MAX_MESSAGE})")
    return _LENGTH.pack(len(body)) + body


def decode(body: bytes, accepts: Spec) -> dict[str, Any]:
    """Check one message's body against what this side accepts."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("malformed", f"not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed", "not a JSON object")
    msg_id = message.get("id") if type(message.get("id")) is int else None
    if message.get("v") != VERSION:
        raise ProtocolError("version", f"version {message.get('v')!r}, expected {VERSION}", msg_id)
    kind = message.get("type")
    spec = accepts.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ProtocolError("unknown-type", f"type {str(kind)[:40]!r}", msg_id)
    for name, (types, required) in spec.items():
        if name not in message:
            if required:
                raise ProtocolError("bad-fields", f"{kind}: {name} missing", msg_id)
            continue
        if not _is(message[name], types):
            raise ProtocolError("bad-fields", f"{kind}: {name} has the wrong type", msg_id)
    extra = set(message) - set(spec) - {"v", "type"}
    if extra:
        raise ProtocolError("bad-fields", f"{kind}: unexpected {sorted(extra)[:3]}", msg_id)
    return message


def _is(value: Any, types: tuple[type | None, ...]) -> bool:
    for t in types:
        if t is None and value is None:
            return True
        if t is object:
            return True
        if t is int and type(value) is int:  # bool is not an int here
            return True
        if t is not None and t is not int and isinstance(value, t):
            return True
    return False


class Channel:
    """One end of the channel. ``recv()`` from one thread; ``send()`` from any."""

    def __init__(self, sock: socket.socket, accepts: Spec, name: str = "media-channel"):
        sock.setblocking(True)
        self.sock = sock
        self.accepts = accepts
        self.refused = 0  # messages refused with a ProtocolError
        self._closed = False
        self._outbox: queue.Queue[bytes | None] = queue.Queue(OUTBOX)
        self._writer = threading.Thread(target=self._write, name=f"{name}-writer", daemon=True)
        self._writer.start()

    # -- sending -------------------------------------------------------------------

    def send(self, message: Mapping[str, Any]) -> None:
        """Queue one message; raises ``ProtocolError`` (too big) or
        ``ChannelClosed`` (closed, or the writer is that far behind)."""
        data = encode(message)
        self.send_raw(data)

    @property
    def backlog(self) -> int:
        """Messages queued and not yet written (the other side reads slowly)."""
        return self._outbox.qsize()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are (tests use it to send what ``encode`` would refuse)."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        try:
            self._outbox.put_nowait(data)
        except queue.Full:
            raise ChannelClosed("the other side is not reading") from None

    def _write(self) -> None:
        while True:
            data = self._outbox.get()
            if data is None:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self._closed = True
                return

    # -- receiving -----------------------------------------------------------------

    def recv(self) -> dict[str, Any]:
        """The next message. Raises ``ProtocolError`` for one refused (the
        stream stays usable) and ``ChannelClosed`` at the end."""
        head = self._read_exact(_LENGTH.size)
        (length,) = _LENGTH.unpack(head)
        if length > MAX_MESSAGE:
            if length > MAX_SKIP:
                self.close()
                raise ChannelClosed(f"a message of {length} bytes: the stream cannot be trusted")
            self._skip(length)
            self.refused += 1
            raise ProtocolError("oversized", f"{length} bytes (at most {MAX_MESSAGE})")
        body = self._read_exact(length)
        try:
            return decode(body, self.accepts)
        except ProtocolError:
            self.refused += 1
            raise

    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            try:
                chunk = self.sock.recv(min(n, 1 << 16))
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not chunk:
                raise ChannelClosed("end of stream")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _skip(self, n: int) -> None:
        while n:
            n -= len(self._read_exact(min(n, 1 << 16)))

    def close(self) -> None:
        if self._closed and not self._writer.is_alive():
            return
        self._closed = True
        try:
            self._outbox.put_nowait(None)
        except queue.Full:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def flush(self, timeout: float = 2.0) -> None:
        """Let the writer send what is queued, then stop it (before exiting)."""
        try:
            self._outbox.put(None, timeout=timeout)
        except queue.Full:
            return
        self._writer.join(timeout)
