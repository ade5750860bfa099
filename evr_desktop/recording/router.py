"""One sink for the engine, one recorder per call.

The engine has one encoded-frame tap (its ``tap_sink``) and outlives calls;
recorders are per call. :class:`RecordingRouter` is the engine's sink and
listener: it hands each frame to the recorder attached for
``frame.session`` (the appointment) and each chat line or victim signal to
the recorder of ``event.appointment``. Frames of a call with no recorder are
dropped. Nothing here raises into the engine.

Events are recognised by their class name (``ChatReceived``, ``VictimFlag``),
because ``recording`` sits below ``call`` and does not import it.
"""

from __future__ import annotations

import logging
import threading

from .frames import Frame
from .recorder import Recorder

log = logging.getLogger("evr_desktop.recording")


class RecordingRouter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recorders: dict[str, Recorder] = {}

    def attach(self, session: str, recorder: Recorder) -> None:
        with self._lock:
            if session in self._recorders:
                raise ValueError(f"a recorder is already attached for {session}")
            self._recorders[session] = recorder

    def detach(self, session: str) -> Recorder | None:
        """Stop routing to ``session``'s recorder and return it (to ``close()``)."""
        with self._lock:
            return self._recorders.pop(session, None)

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._recorders)

    def get(self, session: str) -> Recorder | None:
        with self._lock:
            return self._recorders.get(session)

    def __call__(self, frame: Frame) -> None:
        """The engine's ``tap_sink`` (on the tap's thread)."""
        recorder = self.get(getattr(frame, "session", ""))
        if recorder is not None:
            recorder(frame)  # never raises

    def on_event(self, event: object) -> None:
        """An engine listener (on the engine thread): the victim's chat and signals."""
        try:
            name = type(event).__name__
            if name not in ("ChatReceived", "VictimFlag"):
                return
            recorder = self.get(str(getattr(event, "appointment", "")))
            if recorder is None:
                return
            if name == "ChatReceived":
                recorder.add_chat("victim", str(getattr(event, "text", "")))
            else:
                recorder.add_flag(str(getattr(event, "kind", None) or "cant-talk"), bool(getattr(event, "held", False)))
        except Exception:
            log.exception("recording router: an event could not be recorded")

    def officer_chat(self, session: str, text: str) -> None:
        """A line the officer sent (the engine has no event for it)."""
        recorder = self.get(session)
        if recorder is not None:
            recorder.add_chat("officer", text)
