"""The victim's text through GOV.UK Notify, with its official client
(``notifications-python-client``), behind the :class:`~.base.Notifier`
interface (issue 11, item 9).

In force mode (``settings.json`` ``notify``: the service's base URL, the
template and the file holding the API key) **Send link** sends the text
itself; when that fails, or the laptop is offline, the session puts it in the
encrypted outbox instead and the officer is told which happened
(``services.Session.send_link``).

The Notify template is ``((body))``: the text is composed once by
``domain/sms.py``, so the outbox and Notify send the same words; the
appointment id goes as ``reference`` (an opaque id). What this adds to the
client:

- **Bounded retries** where sending again is right: a 5xx answer, a timeout,
  a connection that failed (the client reports those as 503). A 4xx is final
  (the number, the template, the key, the rate limit: waiting is the
  officer's call). At most ``attempts`` tries, ``timeout`` seconds each.
- **No redirects, no proxy from the environment**: the bearer token and the
  number go to the configured host or nowhere. ``http://`` only on loopback.
- **Plain words** for the officer; nothing logged but the appointment id,
  the attempt, the status and Notify's notification id (never the number,
  the text, the link or the key).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .base import SendResult, SendStatus, failed

log = logging.getLogger("evr_desktop.notify")

NOTIFY_API = "https://api.notifications.service.gov.uk"

_FINAL = {
    400: "The force's SMS service refused the message ({detail}). Check the mobile number; the text is in the "
         "outbox to copy.",
    401: "The force's SMS service refused this app's key. Tell IT; the text is in the outbox to copy.",
    403: "The force's SMS service refused this app's key. Tell IT; the text is in the outbox to copy.",
    429: "The force's SMS service is sending too many texts just now. The text is in the outbox to copy.",
}


class NotifyConfigError(ValueError):
    """The Notify settings cannot be used (said in words for IT)."""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class GovukNotifier:
    def __init__(self, api_key: str, template_id: str, base_url: str = NOTIFY_API, *, timeout: float = 15.0,
                 attempts: int = 3, backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep):
        from notifications_python_client.notifications import NotificationsAPIClient

        parts = urlsplit(base_url)
        if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname or "")):
            raise NotifyConfigError("the Notify address must be https:// (http:// only on this machine)")
        if not template_id.strip():
            raise NotifyConfigError("the Notify template id is missing")
        try:
            self._client = NotificationsAPIClient(api_key.strip(), base_url=base_url.rstrip("/"), timeout=timeout)
        except (AssertionError, IndexError, ValueError, TypeError) as exc:
            raise NotifyConfigError("the Notify API key is not one Notify issues") from exc
        session = self._client.request_session
        session.trust_env = False  # no proxy or .netrc from the environment
        session.max_redirects = 0  # a redirect is an error: the key and the number stay with this host
        self.template_id = template_id.strip()
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep

    @classmethod
    def from_key_file(cls, key_file: Path, template_id: str, base_url: str = NOTIFY_API, **kw: object) -> GovukNotifier:
        try:
            key = key_file.read_text("utf-8").strip()
        except OSError as exc:
            raise NotifyConfigError(f"the Notify key file cannot be read ({exc.strerror})") from None
        return cls(key, template_id, base_url, **kw)  # type: ignore[arg-type]

    def send(self, appointment_id: str, to_e164: str, text: str) -> SendResult:
        from notifications_python_client.errors import APIError

        last = "no answer"
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self._client.send_sms_notification(
                    phone_number=to_e164, template_id=self.template_id, personalisation={"body": text},
                    reference=appointment_id)
            except APIError as exc:
                status = exc.status_code
                log.warning("notify: appointment=%s attempt=%d status=%s", appointment_id, attempt, status)
                if 400 <= status < 500:
                    return failed(_FINAL.get(status, _FINAL[400]).format(detail=_detail(exc)))
                last = f"status {status}" if status != 503 else "it could not be reached"
            except Exception as exc:  # noqa: BLE001 - whatever the client raises is told, never a traceback
                log.warning("notify: appointment=%s attempt=%d %s", appointment_id, attempt, type(exc).__name__)
                last = "it gave an answer this app cannot read"
            else:
                notification = answer.get("id") if isinstance(answer, dict) else None
                log.info("notify: appointment=%s sent notification=%s", appointment_id, notification)
                return SendResult(SendStatus.SENT, str(notification) if notification else None,
                                  "Sent by text message through the force's SMS service.")
            if attempt < self.attempts:
                self._sleep(self.backoff * 2 ** (attempt - 1))
        return failed(f"The force's SMS service did not take the message ({last}, {self.attempts} tries). "
                      "The text is in the outbox to copy.")


def _detail(exc: object) -> str:
    message = getattr(exc, "message", "")
    if isinstance(message, list) and message and isinstance(message[0], dict):
        message = message[0].get("message", "")
    text = str(message)[:120]
    return text.replace("\n", " ") or "no reason given"
