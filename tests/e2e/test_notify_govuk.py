"""Force mode's text messages (issue 11, item 9): GOV.UK Notify's official
client, pointed at a local stand-in that speaks Notify's HTTP API (the fake
of test_notify_gateway.py: it checks each request's JWT as Notify does); a
failure falls back to the encrypted outbox with the officer told. Nothing
here can reach a real gateway (the loopback guard)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from evr_desktop.domain.appointment import Status
from evr_desktop.domain.audit import Category
from evr_desktop.notify.base import SendStatus
from evr_desktop.notify.govuk import GovukNotifier, NotifyConfigError
from tests.e2e.test_notify_gateway import APPT, NUMBER, SECRET, SERVICE, TEMPLATE, TEXT, FakeNotify
from tests.e2e.test_notify_gateway import loopback_only as loopback_only  # noqa: F401 - the guard (autouse)
from tests.e2e.test_notify_gateway import notify as notify  # noqa: F401 - the fixture
from tests.unit.test_domain import make

API_KEY = f"evr_desktop_test-{SERVICE}-{SECRET}"  # Notify's key format: name, service id, secret


def notifier(fake: FakeNotify, **kw) -> GovukNotifier:
    return GovukNotifier(API_KEY, TEMPLATE, fake.base_url, timeout=2.0, backoff=0.0, **kw)


def test_the_official_client_sends_the_text_with_a_valid_token(notify):  # noqa: F811
    result = notifier(notify).send(APPT, NUMBER, TEXT)
    assert result.status is SendStatus.SENT and result.provider_id
    [request] = notify.requests
    assert request.jwt_problem is None  # the fake checked the JWT (HS256, iss, iat) as Notify does
    assert request.method == "POST" and request.path == "/v2/notifications/sms"
    body = json.loads(request.body)
    assert body == {"phone_number": NUMBER, "template_id": TEMPLATE, "personalisation": {"body": TEXT},
                    "reference": APPT}


@pytest.mark.parametrize(("behaviour", "words"), [
    ("400", "Check the mobile number"), ("403", "refused this app's key"), ("429", "too many texts")])
def test_a_4xx_is_final_and_said_plainly(notify, behaviour, words):  # noqa: F811
    notify.script = [behaviour]
    result = notifier(notify).send(APPT, NUMBER, TEXT)
    assert result.status is SendStatus.FAILED and words in result.message and "outbox" in result.message
    assert len(notify.requests) == 1
    assert NUMBER not in result.message and "/j/" not in result.message


def test_a_5xx_is_tried_again_a_bounded_number_of_times(notify):  # noqa: F811
    notify.script = ["500", "201"]
    assert notifier(notify).send(APPT, NUMBER, TEXT).ok and len(notify.requests) == 2
    notify.requests.clear()
    notify.script = ["500", "503", "500", "201"]
    result = notifier(notify).send(APPT, NUMBER, TEXT)
    assert not result.ok and "3 tries" in result.message and len(notify.requests) == 3


def test_redirects_are_not_followed_and_nothing_listening_is_plain(notify):  # noqa: F811
    notify.script = ["302"]
    result = notifier(notify, attempts=1).send(APPT, NUMBER, TEXT)
    assert not result.ok and [r.path for r in notify.requests] == ["/v2/notifications/sms"]
    dead = GovukNotifier(API_KEY, TEMPLATE, "http://127.0.0.1:9", timeout=1.0, attempts=2, backoff=0.0)
    result = dead.send(APPT, NUMBER, TEXT)
    assert not result.ok and "could not be reached" in result.message


def test_settings_that_cannot_work_are_refused_in_words(tmp_path: Path):
    with pytest.raises(NotifyConfigError, match="https"):
        GovukNotifier(API_KEY, TEMPLATE, "http://notify.example.test")
    with pytest.raises(NotifyConfigError, match="key"):
        GovukNotifier("not-a-key", TEMPLATE, "https://notify.example.test")
    with pytest.raises(NotifyConfigError, match="cannot be read"):
        GovukNotifier.from_key_file(tmp_path / "missing", TEMPLATE)


def _force_mode(session, fake: FakeNotify, tmp_path: Path):
    key_file = tmp_path / "notify.key"
    key_file.write_text(API_KEY)
    key_file.chmod(0o600)
    session.settings = replace(session.settings, notify_url=fake.base_url, notify_template_id=TEMPLATE,
                               notify_key_file=str(key_file))


def test_send_link_in_force_mode_goes_by_text_and_falls_back_to_the_outbox(session, notify, tmp_path):  # noqa: F811
    _force_mode(session, notify, tmp_path)
    session._sms = None
    a = session.save_appointment(make(), new=True)
    sent = session.send_link(a.id, lambda appointment: "https://meet.example.test/j/Zq3xY7bN1vK8pL0sT4uW6rA2cE5gH9jM")
    assert sent.sent_by_sms and sent.sms_problem is None
    assert sent.appointment.status is Status.LINK_SENT
    assert session.outbox.list() == []  # nothing to copy by hand
    body = json.loads(notify.requests[-1].body)
    assert body["personalisation"]["body"] == sent.text and body["reference"] == a.id
    disclosures = [e.action for e in session.audit.entries() if e.category is Category.DISCLOSURE]
    assert disclosures[-2:] == ["appointment.link_sent", "appointment.link_sent.sms"]

    # The service refuses (or the laptop is offline): the outbox has it, and the officer is told why.
    b = session.save_appointment(make(), new=True)
    notify.script = ["500", "500", "500"]
    sent = session.send_link(b.id, lambda appointment: "https://meet.example.test/j/Ab3xY7bN1vK8pL0sT4uW6rA2cE5gH9jM")
    assert not sent.sent_by_sms and "did not take the message" in sent.sms_problem
    assert [m.appointment_id for m in session.outbox.list()] == [b.id]
    assert sent.appointment.status is Status.LINK_SENT
    actions = [e.action for e in session.audit.entries() if e.object_id == b.id]
    assert "appointment.link_sms_failed" in actions and "appointment.link_sent" in actions


def test_settings_that_cannot_work_fall_back_to_the_outbox_with_a_word_for_it(session, tmp_path):
    session.settings = replace(session.settings, notify_url="https://notify.example.test", notify_template_id=TEMPLATE,
                               notify_key_file=str(tmp_path / "missing.key"))
    session._sms = None
    a = session.save_appointment(make(), new=True)
    sent = session.send_link(a.id, lambda appointment: "https://meet.example.test/j/Cd3xY7bN1vK8pL0sT4uW6rA2cE5gH9jM")
    assert not sent.sent_by_sms and "tell IT" in sent.sms_problem
    assert [m.appointment_id for m in session.outbox.list()] == [a.id]
