"""Issue 12 item 1's must-show: headless Debian Chromium plays the victim
through the real join page (phone emulation, fake camera and microphone), the
officer's call engine (in this process) calls it over the real rendezvous and
sends the final statement over the data channel; the victim scrolls through
it, ticks the declaration, draws a signature with pointer events and signs.
The engine checks the page's answer; the statement service refuses the
signature for a text one character different, then signs the real one: a PDF
that pdfsig validates, with the witness's drawn signature on every page
(rendered with pdftoppm, kept in ``EVR_KEEP_SCREENSHOTS`` with the phone's
screens at phone size and at 200% zoom)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from evr_desktop.call import events as ev
from evr_desktop.call.engine import CallEngine, CallSettings
from evr_desktop.domain.phone_signing import PhoneSignature
from evr_desktop.recording.player import segment_keys
from evr_desktop.recording.recorder import Recorder
from evr_desktop.recording.working_copy import write_working_copy
from evr_desktop.services import Refused
from tests.e2e.browser import PageWatch, chromium, phone, playwright, screenshot_dir
from tests.e2e.conftest import require
from tests.e2e.test_statement_copies import complete, nssdb, pdfsig
from tests.e2e.test_victim_page import SECRET, SMALL_TARGETS, Server, wait_until
from tests.unit.test_domain import make

pytestmark = pytest.mark.slow
WAIT = 20.0


class Events:
    def __init__(self) -> None:
        self.items: list[ev.Event] = []
        self.lock = threading.Lock()

    def __call__(self, e: ev.Event) -> None:
        with self.lock:
            self.items.append(e)

    def first(self, kind: type, timeout: float = WAIT, **match: object) -> ev.Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for e in self.items:
                    if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items()):
                        return e
            time.sleep(0.02)
        raise AssertionError(f"no {kind.__name__} {match}")


def draw_signature(page) -> None:
    """A finger's signature as the page sees it: pointer events from Playwright's mouse."""
    page.locator("#signature").scroll_into_view_if_needed()
    box = page.locator("#signature").bounding_box()  # in the viewport, where the mouse works
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.08 * w, y0 + 0.6 * h)
    page.mouse.down()
    for i in range(1, 41):  # a wave across the box
        page.mouse.move(x0 + (0.08 + 0.8 * i / 40) * w, y0 + (0.6 - 0.3 * ((i % 10) / 10)) * h, steps=2)
    page.mouse.up()
    page.mouse.move(x0 + 0.15 * w, y0 + 0.8 * h)  # an underline
    page.mouse.down()
    page.mouse.move(x0 + 0.85 * w, y0 + 0.78 * h, steps=12)
    page.mouse.up()


def test_the_victim_reviews_and_signs_on_the_phone_and_the_app_signs_the_pdf(session, paths, tmp_path: Path) -> None:
    """And then, as issue 12's first must-show asks, the whole chain: the call was
    recorded, the signed statement and the recording are exported, and the
    standard tools and `evidence verify` all accept the bundle."""
    shots = screenshot_dir(tmp_path)
    service = session.statements
    a = session.save_appointment(make(), new=True)
    opened = service.open_for_appointment(a.id)
    content = replace(complete(session, opened.id), narrative="\n".join(
        f"{i}. He knocked on the door again and shouted my name through the letterbox." for i in range(1, 41)))
    review = service.phone_review(opened.id, content)
    assert review.pages == 2, review.pages

    appt = a.id
    server = Server()
    # The call is recorded as the media process records it: the engine's encoded-frame
    # tap into a Recorder, encrypted to the vault's officer and escrow recipients.
    (session.recordings / appt).mkdir(parents=True)
    recorder = Recorder(session.recordings / appt / "rec0001", officer_recipient=session.vault.header.age_recipient,
                        escrow_recipient=session.vault.header.escrow_recipient, session=appt, fsync=False)
    engine = CallEngine(CallSettings(rendezvous_url=server.base, officer_secret=SECRET, ice_servers=[],
                                     host_candidates="with-loopback", prefer_real_devices=False, network_poll=0,
                                     width=320, height=240, fps=15), tap_sink=recorder)
    events = Events()
    engine.add_listener(events)
    engine.start()
    try:
        events.first(ev.SignallingChanged, connected=True)
        with playwright() as p, chromium(p) as browser:
            context = browser.new_context(**phone(p), locale="en-GB")
            page = context.new_page()
            watch = PageWatch(page)
            page.goto(server.link(appt))
            page.locator("#consent-agree").click()
            page.locator("#perm-start").click()
            page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT * 1000)
            deadline = time.monotonic() + WAIT
            while appt not in engine.waiting and time.monotonic() < deadline:
                time.sleep(0.05)
            engine.start_call(appt).result(30)
            events.first(ev.CallStateChanged, appointment=appt, state="connected")
            deadline = time.monotonic() + WAIT  # the data channel opens just after DTLS
            while True:
                try:
                    engine.send_statement_review(appt, review.id, review.text, review.pages, review.declaration,
                                                 review.kind).result(10)
                    break
                except ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

            # The phone shows the whole text, the page count and the declaration.
            page.locator("#screen-review").wait_for(state="visible", timeout=WAIT * 1000)
            assert page.locator("#review-title").inner_text() == "Read and sign your statement"
            assert page.evaluate("document.getElementById('review-text').textContent") == review.text
            assert "2 page(s)" in page.locator("#review-pages").inner_text()
            assert page.locator("#review-declaration").inner_text() == review.declaration
            assert page.evaluate("document.activeElement.id") == "review-title"  # announced by screen readers
            # The text scrolls inside its region (the page does not scroll sideways).
            region = page.locator("#review-text")
            assert page.evaluate("(el) => el.scrollHeight > el.clientHeight + 100", region.element_handle())
            page.screenshot(path=str(shots / "review-1-top-en.png"))
            region.hover()
            for _ in range(40):
                page.mouse.wheel(0, 400)
                if page.evaluate("(el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2",
                                 region.element_handle()):
                    break
            assert page.evaluate("(el) => el.scrollTop > 0", region.element_handle())
            # Sign stays disabled until the declaration is confirmed and a signature drawn.
            sign = page.locator("#review-sign")
            assert sign.is_disabled()
            page.locator("#review-confirm").check()
            assert sign.is_disabled()
            draw_signature(page)
            assert page.evaluate("window.EVR.signaturePoints()") >= 20
            assert sign.is_enabled()
            page.locator("#review-sign").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "review-2-signed-en.png"))
            # 200% zoom: a 206 CSS px wide phone; nothing scrolls sideways, targets keep 48 px.
            page.set_viewport_size({"width": 206, "height": 457})
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert page.evaluate(SMALL_TARGETS) == []
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(shots / "review-3-zoom-200-en.png"))
            page.set_viewport_size({"width": 412, "height": 915})
            assert sign.is_enabled() or page.evaluate("window.EVR.signaturePoints()") == 0
            if page.evaluate("window.EVR.signaturePoints()") == 0:  # the box changed size: drawn again
                draw_signature(page)
            sign.click()
            signed = events.first(ev.StatementSigned, appointment=appt)
            declared_at = recorder.elapsed()  # the moment of the declaration, on the recording's clock
            assert isinstance(signed, ev.StatementSigned) and signed.review_id == review.id
            # Back to the call, which went on underneath.
            page.locator("#screen-call").wait_for(state="visible", timeout=WAIT * 1000)
            wait_until(page, "document.getElementById('call-status').getAttribute('data-i18n') === 'review_sent'")
            assert engine.session(appt).state == "connected"
            watch.assert_clean()  # no CSP violation, no page error
            engine.end_call(appt).result(10)
            context.close()
    finally:
        engine.stop()
        server.close()
        recording = recorder.close("call ended")
    assert recording.finalised and recording.segments >= 1

    # The page hashed exactly the text it was sent.
    assert signed.sha256 == review.sha256
    phone_sig = PhoneSignature(signed.review_id, signed.sha256, signed.strokes, signed.width, signed.height)
    # One character different from what the victim signed: refused, nothing signed.
    changed = replace(content, narrative=content.narrative.replace("letterbox.", "letterbox!", 1))
    with pytest.raises(Refused, match="not the text the victim signed"):
        service.sign_remote(opened.id, changed, phone_sig, review)
    assert service.repo.signed(opened.id) is None
    # The text as signed: the PDF, signed by the officer, valid.
    result = service.sign_remote(opened.id, content, phone_sig, review,
                                 recording_at_s=signed.recording_at_s or declared_at)
    assert result.signed is not None and result.signed.valid
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(service.repo.signed(opened.id)[1])
    lines = pdfsig(pdf, nssdb(tmp_path, session.vault.header.force_ca_pem))
    assert {"Signature Validation: Signature is Valid.", "Certificate Validation: Certificate is Trusted.",
            "Total document signed"} <= lines, lines
    # The witness's signature on every page: one image per page, rendered to look at.
    images = subprocess.run([require("pdfimages"), "-list", str(pdf)], check=True, capture_output=True,
                            text=True).stdout
    per_page = [int(ln.split()[0]) for ln in images.splitlines()[2:] if ln.split()]
    assert sorted(set(per_page)) == [1, 2], images
    subprocess.run([require("pdftoppm"), "-png", "-r", "60", str(pdf), str(shots / "signed-statement")],
                   check=True, timeout=60)

    # The evidence bundle, then every check a third party makes, with standard tools.
    for plan, recipients in session.working_copy_jobs(appt):  # as the media process does after the call
        write_working_copy(plan.folder, segment_keys([seg.message() for seg in plan.segments]), recipients)
    dest = tmp_path / "case-file"
    dest.mkdir()
    bundle = session.export_case(appt, dest)
    office = paths.evidence_office  # the escrow identity and the force CA, as the evidence office holds them
    ca, escrow = office / "demo-force-ca.pem", office / "escrow-identity-DEMO.txt"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, cwd=bundle, timeout=120)

    assert run("sha256sum", "-c", "--strict", "SHA256SUMS").returncode == 0
    for signed_pdf in [*bundle.glob("statements/*.pdf"), *bundle.glob("RESTRICTED-not-for-disclosure/*.pdf")]:
        check = run("pdfsig", str(signed_pdf))
        assert "Signature is Valid" in check.stdout, (signed_pdf, check.stdout)
    segments = sorted(bundle.glob("recordings/*/seg-*.age"))
    assert segments
    for seg in segments:
        assert run("age", "-d", "-i", str(escrow), "-o", os.devnull, str(seg)).returncode == 0, seg
    cms = run("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "manifest.json.p7s", "-content",
              "manifest.json", "-CAfile", str(ca), "-purpose", "any", "-out", os.devnull)
    assert cms.returncode == 0, cms.stderr
    probe = run("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                str(next(bundle.glob("recordings/*/working-copy.mp4"))))
    assert probe.stdout.split() == ["h264", "aac"], probe.stdout + probe.stderr
    verify = subprocess.run([sys.executable, "-m", "evr_desktop", "evidence", "verify", "--ca", str(ca), "-i",
                             str(escrow), str(bundle)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "Result: OK" in verify.stdout, verify.stdout + verify.stderr
