"""The embedded default notifier: an encrypted outbox the officer copies from.

This machine reaches no SMS gateway, so ``send`` puts the text in the store's
outbox (``store/outbox.py``: number and text encrypted at rest) and returns
``queued``. The officer sees the outbox, copies the text and the number, sends
them from a work phone, and the app records ``copied`` and then ``sent``.
A new text for the same appointment cancels the older ones still open: a new
join link revokes the old link, so the old text must not go out.
"""

from __future__ import annotations

import logging

from ..domain.sms import SmsTooLong, check_length, is_e164_uk_mobile
from ..store.base import NotFound, StoreError
from ..store.outbox import OPEN_STATUSES, OutboxMessage, OutboxStatus, SqliteOutbox
from ..store.sqlite import SqliteStore
from .base import SendResult, SendStatus, failed

log = logging.getLogger(__name__)


class OutboxError(Exception):
    """A plain message for the officer (an unknown message, a change not allowed)."""


class OutboxNotifier:
    def __init__(self, store: SqliteStore | SqliteOutbox):
        self._outbox = store if isinstance(store, SqliteOutbox) else SqliteOutbox(store)

    def send(self, appointment_id: str, to_e164: str, text: str) -> SendResult:
        if not is_e164_uk_mobile(to_e164):
            return failed("The text was not queued: the number is not a UK mobile number (07...).")
        if not text.strip():
            return failed("The text was not queued: it is empty.")
        try:
            check_length(text)
        except SmsTooLong as exc:
            return failed(f"The text was not queued. {exc}")
        try:
            message = self._outbox.add(appointment_id, to_e164, text)
        except StoreError as exc:
            log.warning("outbox: queueing for appointment %s failed (%s)", appointment_id, type(exc).__name__)
            return failed(f"The text was not queued: {exc}")
        except Exception as exc:  # never a traceback to the officer
            log.error("outbox: queueing for appointment %s failed (%s)", appointment_id, type(exc).__name__)
            return failed("The text was not queued because of an unexpected problem; try again or call IT.")
        log.info("outbox: message %s queued for appointment %s", message.id, appointment_id)
        return SendResult(
            SendStatus.QUEUED,
            message.id,
            "The text is in the outbox. Copy it and send it to the victim from your work phone.",
        )

    def list(self, appointment_id: str | None = None, open_only: bool = False) -> list[OutboxMessage]:
        """Newest first; ``open_only`` keeps those still to be sent (queued or copied)."""
        return self._outbox.list(appointment_id, OPEN_STATUSES if open_only else None)

    def get(self, message_id: str) -> OutboxMessage:
        return self._call(self._outbox.get, message_id)

    def mark_copied(self, message_id: str) -> OutboxMessage:
        """The officer copied the text (copying again is fine)."""
        return self._status(message_id, OutboxStatus.COPIED)

    def mark_sent(self, message_id: str) -> OutboxMessage:
        """The officer says the text went from their phone."""
        return self._status(message_id, OutboxStatus.SENT)

    def cancel(self, message_id: str) -> OutboxMessage:
        return self._status(message_id, OutboxStatus.CANCELLED)

    def _status(self, message_id: str, status: OutboxStatus) -> OutboxMessage:
        message = self._call(self._outbox.set_status, message_id, status)
        log.info("outbox: message %s is now %s", message_id, status.value)
        return message

    @staticmethod
    def _call(fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except NotFound as exc:
            raise OutboxError(f"That text message is no longer in the outbox ({exc}).") from exc
        except StoreError as exc:
            raise OutboxError(str(exc)) from exc
