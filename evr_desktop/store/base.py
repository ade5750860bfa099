"""The repository interface the rest of the app talks to.

SQLite implements it for one officer's laptop; a force-wide shared queue will
be a PostgreSQL implementation of the same Protocol, not a rewrite of callers.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from ..domain.appointment import Appointment


class StoreError(Exception):
    """Base for store problems; the message is meant for the officer or IT."""


class StoreCorrupt(StoreError):
    """The store's file is damaged. Nothing was written to it."""


class StoreKeyMismatch(StoreError):
    """The store was made under a different key (another vault)."""


class NotFound(StoreError):
    pass


class AppointmentRepository(Protocol):
    def add(self, appointment: Appointment) -> None: ...

    def update(self, appointment: Appointment) -> None: ...

    def get(self, appointment_id: str) -> Appointment: ...

    def list(self, day: date | None = None) -> list[Appointment]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...
