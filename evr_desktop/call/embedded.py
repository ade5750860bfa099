"""The embedded default: the app runs the rendezvous itself, on loopback, on
the call engine's own asyncio loop, so one command gives a complete system on
one machine (the demo).

Force mode (``force_url``): no rendezvous here. The engine connects to the
force's ``evr-rendezvous`` over TLS (its CA bundle from ``force_ca``, or the
system's trust) as the officer, with a short-lived officer token the app
makes and renews (``set_officer_token``), and links are issued through that
server's API (``request_link``), which binds each to this officer.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..domain.appointment import Appointment
from .engine import CallEngine, CallSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedCalls:
    """Owns the call engine and the loopback rendezvous. ``start()`` does the
    I/O; constructing is cheap. Thread-safe: links are issued on the engine's
    loop (the token registry belongs to that loop)."""

    def __init__(self, *, sources: Callable[[], Any] | None = None, host_candidates: str = "with-loopback",
                 listen: socket.socket | None = None, tap_sink: Callable[[Any], None] | None = None,
                 force_url: str | None = None, force_ca: str | None = None):
        """``listen``: a listening loopback socket to serve the rendezvous on
        (the media process gets the app's, so links keep their address when
        it is restarted); None: a free port of its own. ``tap_sink``: the
        engine's encoded-frame sink (the media process's recording router).
        ``force_url``/``force_ca``: force mode (see the module's doc)."""
        if force_url is not None and not force_url.startswith("https://"):
            raise ValueError("The force's rendezvous address must start with https:// (TLS only).")
        self.force_url = force_url
        self._force_ca = force_ca
        self._sources = sources
        self._tap_sink = tap_sink
        self._listen = listen
        self._host_candidates = host_candidates
        self.engine: CallEngine | None = None
        self.base_url = ""
        self._runner: Any = None
        self._registry: Any = None
        self.speaker: Any = None
        self.speaker_note = ""

    def start(self, timeout: float = 15.0) -> None:
        kwargs: dict[str, Any] = {}
        if self._sources is not None:
            kwargs["sources"] = self._sources
        if self._tap_sink is not None:
            kwargs["tap_sink"] = self._tap_sink
        if self.force_url is not None:
            self.base_url = self.force_url.rstrip("/")
            # No credentials yet: the signalling client waits for the app's first token.
            self.engine = CallEngine(
                CallSettings(rendezvous_url=self.base_url, officer_secret="", rendezvous_ca=self._force_ca,
                             renewable_credentials=True, ice_servers=[], host_candidates=self._host_candidates),
                **kwargs,
            )
            self.engine.start()
            self._start_speaker()
            gc.freeze()  # as below
            return
        from ..rendezvous.server import create_app, start
        from ..rendezvous.tokens import TokenRegistry

        secret = secrets.token_urlsafe(32)
        port = self._listen.getsockname()[1] if self._listen is not None else _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.engine = CallEngine(
            CallSettings(rendezvous_url=self.base_url, officer_secret=secret, ice_servers=[],
                         host_candidates=self._host_candidates),
            **kwargs,
        )
        self.engine.start()
        self._start_speaker()
        self._registry = TokenRegistry()

        async def serve() -> Any:
            runner, _port = await start(create_app(self._registry, secret), "127.0.0.1", port, sock=self._listen)
            return runner

        # The engine's signalling client retries until this is up (a few 100 ms).
        self._runner = self.engine.submit(serve()).result(timeout)
        # Everything alive now (the modules and tables of aiortc, PyAV, OpenCV,
        # numpy, the app's own) lives until the app quits. Freezing it takes it
        # out of the cyclic collector's full passes, which otherwise scan all of
        # it and stop every thread, the GUI's too, for ~50-100 ms mid-call
        # (bench/call.py C). Only an O(1) move of a list; nothing is collected.
        gc.freeze()

    def _start_speaker(self) -> None:
        """The victim's voice to the officer's speakers; a plain note when there are none."""
        from ..capture.base import DeviceError
        from ..capture.speaker import Speaker

        speaker = Speaker()
        try:
            speaker.start()
        except DeviceError as exc:
            self.speaker_note = str(exc)
            return
        self.speaker = speaker
        assert self.engine is not None
        self.engine.remote_audio_sink = lambda _appointment, frame: speaker.put(frame)

    def set_officer_token(self, token: str) -> None:
        """Force mode: the officer token the app made (and renews)."""
        if self.engine is not None:
            self.engine.set_officer_secret(token)

    def issue_link(self, appointment: Appointment, timeout: float = 5.0) -> str:
        """A new one-time join link for the appointment (earlier ones are revoked).
        Force mode: from the force's rendezvous, bound to this officer (it may
        take a little longer: the server is across the network)."""
        assert self.engine is not None, "start() first"
        start = appointment.slot.astimezone(timezone.utc)
        end = start + timedelta(minutes=appointment.duration_minutes)
        from ..rendezvous.tokens import DEFAULT_LATE

        if end + DEFAULT_LATE <= datetime.now(timezone.utc):
            raise ValueError(
                "This appointment's slot is over, so a link would not work. Edit the appointment "
                "to book a new time, then send the link."
            )
        if self.force_url is not None:
            from .engine import request_link

            engine = self.engine
            data = engine.submit(request_link(engine.settings, appointment.id, start, end)).result(max(timeout, 20))
            return str(data["url"])
        assert self._registry is not None

        async def issue() -> str:
            token, _link_id = self._registry.issue(appointment.id, start, end, datetime.now(timezone.utc))
            return f"{self.base_url}/j/{token}"

        return self.engine.submit(issue()).result(timeout)

    def restore_link(self, appointment: Appointment, token: str, timeout: float = 5.0) -> str:
        """Make a link issued by an earlier media process work again (unclaimed);
        see ``TokenRegistry.restore``. Returns the link. Force mode: the force's
        rendezvous kept it, nothing to do."""
        if self.force_url is not None:
            return f"{self.base_url}/j/{token}"
        assert self.engine is not None and self._registry is not None, "start() first"
        start = appointment.slot.astimezone(timezone.utc)
        end = start + timedelta(minutes=appointment.duration_minutes)

        async def restore() -> str:
            self._registry.restore(token, appointment.id, start, end, datetime.now(timezone.utc))
            return f"{self.base_url}/j/{token}"

        return self.engine.submit(restore()).result(timeout)

    def choose_devices(self, camera: int | None, microphone: int | None) -> None:
        """Use these devices from the next call on (None: automatic)."""
        from dataclasses import replace

        if self.engine is not None:
            # The engine reads its settings when a call starts; swapping the
            # (immutable) settings object is a single reference assignment.
            self.engine.settings = replace(self.engine.settings, camera=camera, microphone=microphone)

    def list_devices(self) -> tuple[list, list]:
        """The cameras and microphones this machine has (probes hardware: call it on a worker)."""
        from ..capture.devices import list_cameras, list_microphones

        return list_cameras(), list_microphones()

    def stop(self) -> None:
        if self.engine is None:
            return
        if self._runner is not None:
            try:
                self.engine.submit(asyncio.wait_for(self._runner.cleanup(), 5)).result(10)
            except Exception:  # noqa: BLE001 - stopping: nothing more to do
                pass
        self.engine.stop()
        self.engine = None
        if self.speaker is not None:
            self.speaker.close()
            self.speaker = None
