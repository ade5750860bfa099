"""Signing on the phone in the real main window (offscreen): the statement
screen's "Sign on the phone…" sends the review through the call's link, the
statement is locked meanwhile, and the phone's answer (as the media process
delivers it, through the call controller) signs it, or a decline unlocks it.
The phone itself is tests/e2e/test_phone_signing_chromium.py."""

from __future__ import annotations

import concurrent.futures
import subprocess

from PySide6.QtCore import Qt

from evr_desktop.call import events as ev
from evr_desktop.domain.appointment import Status
from tests.ui.test_statement_flow import complete_fields, open_statement_for_row

STROKES = (tuple((20.0 + 4 * i, 60.0 + (i % 7) * 5, 16 * i) for i in range(40)),)


class FakeLink:
    """The call's link to the phone: records what was sent, the send succeeds."""

    def __init__(self) -> None:
        self.sent: list = []
        self.withdrawn: list[str] = []

    def send(self, review):
        self.sent.append(review)
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(None)
        return done

    def withdraw(self, review_id: str) -> None:
        self.withdrawn.append(review_id)


def on_the_phone(qtbot, main):
    a, screen = open_statement_for_row(qtbot, main, Status.STATEMENT_DRAFTED)
    screen.panel.set_content(complete_fields(main.session.statements.templates(), screen.panel.content()))
    screen._changed()
    qtbot.waitUntil(lambda: screen.opened.version_number is not None, timeout=5000)
    assert not screen.phone_button.isVisible()  # no call, no phone
    link = FakeLink()
    screen.set_phone_link(link)
    assert screen.phone_button.isVisible()
    qtbot.mouseClick(screen.phone_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.status.text().startswith("On the victim's phone"), timeout=10000)
    return a, screen, link


def test_signed_on_the_phone_from_the_statement_screen(qtbot, unlocked, tmp_path):
    main = unlocked
    a, screen, link = on_the_phone(qtbot, main)
    (review,) = link.sent
    assert review.text.startswith("WITNESS STATEMENT\n") and review.pages == 1
    # Locked while the victim reads: no typing, no signing on the laptop.
    before = screen.panel.content().narrative
    qtbot.keyClicks(screen.panel.narrative, " typed meanwhile")
    assert screen.panel.content().narrative == before and not screen.sign_button.isEnabled()
    assert screen.phone_button.text() == "Withdraw from the p&hone"
    # A malformed answer (the engine's Error) is said; the statement stays out on the phone.
    main.calls._call_event(ev.Error("The victim's phone sent back a signature the app cannot use, so nothing was "
                                    "signed. Send the statement to the phone again.", a.id,
                                    code="bad-phone-signature"))
    assert "cannot use" in screen.status.text() and screen._phone_review is review
    # The phone's answer, as the media process delivers it.
    main.calls._call_event(ev.StatementSigned(a.id, review.id, review.sha256, STROKES, 320.0, 160.0, 65.2))
    qtbot.waitUntil(lambda: screen.status.text().startswith("Signed"), timeout=30000)
    assert "Signature valid" in screen.status.text()
    assert main.session.store.get(a.id).status is Status.SIGNED
    actions = [e.action for e in main.session.audit.entries() if e.object_id == screen.opened.id]
    ours = [x for x in actions if x in ("statement.phone_review", "statement.phone_signature", "statement.sign")]
    assert ours == ["statement.phone_review", "statement.phone_signature", "statement.sign"], actions
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(main.session.statements.repo.signed(screen.opened.id)[1])
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "00:01:05 into the call's recording" in text
    assert not screen.phone_button.isVisible()  # signed: nothing more to sign


def test_a_decline_or_a_withdrawal_unlocks_and_signs_nothing(qtbot, unlocked):
    main = unlocked
    a, screen, link = on_the_phone(qtbot, main)
    (review,) = link.sent
    main.calls._call_event(ev.StatementDeclined(a.id, review.id))
    assert "chose not to sign" in screen.status.text()
    assert screen.sign_button.isEnabled() and not screen.panel.narrative.isReadOnly()
    # Again, then withdrawn by the officer: the phone is told, a late signature is ignored.
    qtbot.mouseClick(screen.phone_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(link.sent) == 2 and screen.status.text().startswith("On the victim's phone"),
                    timeout=10000)
    qtbot.mouseClick(screen.phone_button, Qt.MouseButton.LeftButton)
    assert link.withdrawn == [link.sent[1].id] and "Withdrawn" in screen.status.text()
    main.calls._call_event(ev.StatementSigned(a.id, link.sent[1].id, link.sent[1].sha256, STROKES, 320.0, 160.0))
    qtbot.wait(300)
    assert main.session.statements.repo.signed(screen.opened.id) is None
    # The call ending while the statement is on the phone unlocks it.
    qtbot.mouseClick(screen.phone_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(link.sent) == 3 and screen.status.text().startswith("On the victim's phone"),
                    timeout=10000)
    screen.set_phone_link(None)
    assert "call ended before the victim signed" in screen.status.text()
    assert not screen.phone_button.isVisible() and screen.sign_button.isEnabled()
