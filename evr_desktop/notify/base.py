"""The notifier interface: one text message to one UK mobile, for one appointment.

``send`` never raises for anything that can happen in use (a refused number, a
gateway that is down, a full disk): it returns a :class:`SendResult` whose
``message`` is plain words for the officer. Tracebacks go nowhere near the
officer, and nothing a notifier logs carries the number or the text (the text
holds a live join link): logs name the appointment id and the provider's id.

``send`` blocks (it may wait on the network for tens of seconds): callers run
it on a worker thread, never on the Qt main thread or the engine's loop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class SendStatus(enum.StrEnum):
    QUEUED = "queued"  # accepted, not yet on its way (the outbox: waiting for the officer)
    SENT = "sent"  # handed to the SMS network (a gateway accepted it)
    FAILED = "failed"  # not sent; ``message`` says why and what to do


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    provider_id: str | None  # the outbox message id, or the gateway's notification id
    message: str  # plain words for the officer

    @property
    def ok(self) -> bool:
        return self.status is not SendStatus.FAILED


@runtime_checkable
class Notifier(Protocol):
    def send(self, appointment_id: str, to_e164: str, text: str) -> SendResult: ...


def failed(message: str) -> SendResult:
    return SendResult(SendStatus.FAILED, None, message)
