"""The victim's page (resources/web/) in headless Chromium under phone emulation,
against the real rendezvous on loopback and an officer driven from the test.

The officer is two halves: its signalling is an aiohttp WebSocket on
``/ws/officer`` (as the app's will be), its media a second Chromium page whose
RTCPeerConnection the test drives with ``page.evaluate``. Screenshots of each
screen, in English and Welsh, go to ``EVR_KEEP_SCREENSHOTS`` if set.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from evr_desktop.rendezvous.server import RENDEZVOUS, create_app, start
from evr_desktop.rendezvous.tokens import TokenRegistry
from tests.e2e.browser import PageWatch, chromium, phone, playwright, screenshot_dir

REPO = Path(__file__).resolve().parents[2]
WEB_ROOT = REPO / "resources" / "web"
SECRET = "officer-secret-for-page-tests-0123456789"
WAIT = 5.0  # seconds: the longest any one expectation may take
WAIT_MS = int(WAIT * 1000)


# --- the rendezvous and the officer's socket, on a loop in a background thread ---------


class Server:
    """The real rendezvous on 127.0.0.1 (a free port), in its own thread and loop,
    so Playwright's sync API can own the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.registry = TokenRegistry()
        self.runner, self.port = self.run(self._start())
        self.base = f"http://127.0.0.1:{self.port}"
        # Quick exit's neutral page: another origin (localhost is not 127.0.0.1).
        self.neutral = f"http://localhost:{self.port}/web/neutral.html"
        self.runner.app[RENDEZVOUS].neutral_url = self.neutral

    async def _start(self):
        app = create_app(self.registry, SECRET, web_root=WEB_ROOT)
        return await start(app, "127.0.0.1", 0)

    def run(self, coro: Any, timeout: float = WAIT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def link(self, appt: str) -> str:
        now = datetime.now(timezone.utc)
        token, _ = self.registry.issue(appt, now, now + timedelta(minutes=45), now)
        return f"{self.base}/j/{token}"

    def close(self) -> None:
        self.run(self.runner.cleanup(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Officer:
    """The officer app's signalling socket, driven from the test's thread."""

    def __init__(self, server: Server):
        self.server = server
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.backlog: list[dict] = []  # read while waiting for another type, kept for later
        self.server.run(self._connect())
        assert self.recv("welcome")["type"] == "welcome"

    async def _connect(self) -> None:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(
            f"{self.server.base}/ws/officer", headers={"Authorization": f"Bearer {SECRET}"}
        )

    def send(self, msg: dict) -> None:
        assert self.ws is not None
        self.server.run(self.ws.send_json(msg))

    def recv(self, kind: str, timeout: float = WAIT, **match: Any) -> dict:
        """The next message of type ``kind`` (with the given field values); others
        are kept for later calls (the page's messages may come in either order)."""

        def wanted(data: dict) -> bool:
            return data["type"] == kind and all(data.get(k) == v for k, v in match.items())

        for i, data in enumerate(self.backlog):
            if wanted(data):
                return self.backlog.pop(i)

        async def go() -> dict:
            assert self.ws is not None
            while True:
                msg = await self.ws.receive()
                if msg.type is not WSMsgType.TEXT:
                    raise AssertionError(f"officer socket closed waiting for {kind}")
                data = json.loads(msg.data)
                if wanted(data):
                    return data
                self.backlog.append(data)

        return self.server.run(asyncio.wait_for(go(), timeout), timeout + 1)

    def close(self) -> None:
        async def go() -> None:
            if self.ws is not None:
                await self.ws.close()
            if self.http is not None:
                await self.http.close()

        self.server.run(go())


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def pw() -> Iterator[Any]:
    with playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw: Any) -> Iterator[Any]:
    with chromium(pw) as b:
        yield b


@pytest.fixture()
def officer(server: Server) -> Iterator[Officer]:
    o = Officer(server)
    try:
        yield o
    finally:
        o.close()


# --- the officer's media: a second Chromium page acting as a minimal officer -------------

# The officer's side as the app's call engine does it (docs/call-engine.md): it
# offers (candidates inside the SDP), with the data channel "evr" for chat.
OFFICER_OFFER = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  window.got = {frames: 0, width: 0, height: 0, chat: []};
  const ch = pc.createDataChannel('evr', {ordered: true});
  window.ch = ch;
  ch.onmessage = (m) => window.got.chat.push(JSON.parse(m.data));
  pc.ontrack = (ev) => {
    if (ev.track.kind !== 'video') return;
    const v = document.createElement('video');
    v.muted = true; v.playsInline = true; v.autoplay = true;
    v.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    document.body.appendChild(v);
    const count = (now, meta) => {
      window.got.frames += 1; window.got.width = meta.width; window.got.height = meta.height;
      v.requestVideoFrameCallback(count);
    };
    v.requestVideoFrameCallback(count);
    v.play();
  };
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
      setTimeout(resolve, 2000);
    });
  }
  return pc.localDescription.sdp;
}"""

# Counts frames painted in the victim's remote video (the officer's camera).
COUNT_REMOTE_FRAMES = """() => new Promise((resolve) => {
  const v = document.getElementById('remote-video');
  let n = 0;
  const tick = () => {
    n += 1;
    if (n >= 10) resolve({n, w: v.videoWidth, h: v.videoHeight}); else v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
})"""


def fingerprint(sdp: str) -> str:
    for alg, value in re.findall(r"^a=fingerprint:(\S+)[ \t]+([0-9A-Fa-f:]+)[ \t]*\r?$", sdp, re.M):
        if alg.lower() == "sha-256":
            return value.upper()
    raise AssertionError("no sha-256 fingerprint")


def python_commit(sdp: str) -> str:
    """The ``commit`` hash the answer's fingerprint must open, derived independently
    of join.js (docs/victim-page.md, "Commitment")."""
    return hashlib.sha256(fingerprint(sdp).encode("utf-8")).hexdigest()


def python_code(sdp_a: str, sdp_b: str) -> str:
    """The verification code, derived independently of join.js (docs/victim-page.md,
    the same as evr_desktop/domain/verification.py)."""
    d = hashlib.sha256("\n".join(sorted([fingerprint(sdp_a), fingerprint(sdp_b)])).encode()).digest()
    return f"{((d[0] << 12) | (d[1] << 4) | (d[2] >> 4)) % 1_000_000:06d}"


# --- checks -------------------------------------------------------------------------------

VISIBLE_STRINGS = """(lang) => {
  const table = window.EVR_STRINGS[lang];
  const out = [];
  for (const el of document.querySelectorAll('[data-i18n]')) {
    if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue; // not shown
    const key = el.getAttribute('data-i18n');
    const vars = el.getAttribute('data-i18n-vars');
    if (vars) continue;
    if (el.textContent !== table[key]) out.push(key + ': ' + el.textContent);
  }
  for (const el of document.querySelectorAll('[data-i18n-aria]')) {
    const key = el.getAttribute('data-i18n-aria');
    if (el.getAttribute('aria-label') !== table[key]) out.push('aria ' + key);
  }
  return out;
}"""

SMALL_TARGETS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('button, summary, textarea')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue; // hidden
    if (r.width < 47.5 || r.height < 47.5) out.push(el.id + ' ' + r.width + 'x' + r.height);
  }
  return out;
}"""

UNLABELLED = """() => {
  const out = [];
  for (const el of document.querySelectorAll('button, textarea, video')) {
    const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
    if (!name) out.push(el.id || el.outerHTML.slice(0, 60));
  }
  return out;
}"""


def wait_until(page: Any, expression: str, timeout: int = WAIT_MS) -> None:
    """Poll a JavaScript expression from Python: Playwright's wait_for_function
    polls with eval, which the page's CSP (rightly) refuses."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


def check_screen(page: Any, lang: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # Playwright scrolls to click; shots start at the top
    assert page.evaluate("document.documentElement.lang") == lang
    assert page.evaluate(VISIBLE_STRINGS, lang) == []
    assert page.evaluate(SMALL_TARGETS) == []
    assert page.evaluate(UNLABELLED) == []


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_victim_page_end_to_end_on_a_phone(
    lang: str, server: Server, officer: Officer, browser: Any, pw: Any, tmp_path: Path
) -> None:
    shots = screenshot_dir(tmp_path)
    appt = f"appt-page-{lang}"
    url = server.link(appt)

    victim_ctx = browser.new_context(**phone(pw), locale="en-GB")
    officer_ctx = browser.new_context(bypass_csp=True)  # the test drives it with evaluate
    try:
        page = victim_ctx.new_page()
        watch = PageWatch(page)
        before_link = f"{server.base}/web/neutral.html?before-the-link"  # where the tab was before the SMS
        page.goto(before_link)
        page.goto(url)
        page.locator("#consent-agree").wait_for(state="visible", timeout=WAIT_MS)
        assert victim_ctx.cookies() == []  # opening the link claims nothing
        assert page.title() == "Video appointment"
        assert page.locator("#quick-exit").is_visible()

        # The language toggle switches every visible string, labels and lang.
        if lang == "cy":
            page.locator("#langs [data-lang=cy]").click()
            assert page.locator("#consent-agree").inner_text() == "Rwy'n cytuno, parhau"
            assert page.locator("#quick-exit").inner_text() == "Gadael yn gyflym"
            assert page.title() == "Apwyntiad fideo"
            assert page.locator("#langs [data-lang=en]").inner_text() == "English"
        else:
            assert page.locator("#consent-agree").inner_text() == "I agree, continue"
            assert page.locator("#langs [data-lang=cy]").inner_text() == "Cymraeg"
        check_screen(page, lang)
        page.screenshot(path=str(shots / f"1-consent-{lang}.png"), full_page=True)

        # Declining says how to get an in-person visit, then back.
        page.locator("#consent-decline").click()
        assert "101" in page.locator("#screen-decline").inner_text()
        check_screen(page, lang)
        page.locator("#decline-back").click()

        # Consent (which claims the link for this phone), then camera and
        # microphone (granted by the fake UI), then the waiting room.
        page.locator("#consent-agree").click()
        page.locator("#perm-start").wait_for(state="visible", timeout=WAIT_MS)
        assert officer.recv("link_opened", appointment=appt)["first"] is True
        assert [c["name"] for c in victim_ctx.cookies()] == ["evr_device"]
        check_screen(page, lang)
        page.screenshot(path=str(shots / f"2-permission-{lang}.png"), full_page=True)
        page.locator("#perm-start").click()
        page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT_MS)
        officer.recv("victim_waiting", appointment=appt)
        assert officer.recv("hello", appointment=appt)["lang"] == lang
        # Before any offer, the page commits to its DTLS certificate.
        committed = officer.recv("commit", appointment=appt)["hash"]
        assert re.fullmatch(r"[0-9a-f]{64}", committed), committed
        wait_until(page,
            "document.getElementById('wait-status').getAttribute('data-i18n') === 'wait_officer_here'",
            timeout=WAIT_MS,
        )
        wait_until(page, "document.getElementById('preview').videoWidth > 0", timeout=WAIT_MS)

        # Chat both ways.
        officer.send({"type": "chat", "appointment": appt, "text": "Hello, I'm PC 1234. Take your time."})
        page.locator("#chat-log .from-officer").wait_for(timeout=WAIT_MS)
        assert "PC 1234" in page.locator("#chat-log .from-officer").inner_text()
        page.locator("#chat-input").fill("I can type but not talk")
        page.locator("#chat-send").click()
        assert officer.recv("chat", appointment=appt)["text"] == "I can type but not talk"
        assert page.locator("#chat-log .from-me").count() == 1
        assert page.locator("#chat-input").input_value() == ""

        # "I can't talk freely": the officer is told; the page shows only a quiet tick.
        before = page.locator("#screen-waiting").inner_text()
        page.locator("#flag").click()
        assert officer.recv("flag", appointment=appt)["kind"] == "cannot-talk"
        assert page.locator("#flag-ack").inner_text() == "✓"
        assert page.locator("#screen-waiting").inner_text() == before
        check_screen(page, lang)
        page.screenshot(path=str(shots / f"3-waiting-{lang}.png"), full_page=True)

        # The call: the officer's app offers, the page answers.
        officer_page = officer_ctx.new_page()
        officer_page.goto(f"{server.base}/web/neutral.html")  # a secure context (loopback) for getUserMedia
        offer = officer_page.evaluate(OFFICER_OFFER)
        officer.send({"type": "offer", "appointment": appt, "sdp": offer})
        answer = officer.recv("answer", appointment=appt)["sdp"]
        # Both codecs stay on offer in the answer, VP8 first; the answer carries its candidates.
        video = answer[answer.index("m=video"):]
        assert re.search(r"^a=rtpmap:\d+ VP8/90000", video, re.M)
        assert re.search(r"^a=fmtp:\d+ .*packetization-mode=1.*profile-level-id=42e01f", video, re.M)
        first_pt = video.split("\r\n")[0].split()[3]
        assert re.search(rf"^a=rtpmap:{first_pt} VP8/90000", video, re.M), "VP8 is the first video codec"
        assert answer.count("a=candidate:") >= 1, "the answer carries its candidates"
        # The answer carries the certificate committed to; once it is revealed, the
        # page commits to a new one for any later connection.
        assert python_commit(answer) == committed
        next_commit = officer.recv("commit", appointment=appt)["hash"]
        assert next_commit != committed and re.fullmatch(r"[0-9a-f]{64}", next_commit)
        officer_page.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer)

        got = page.evaluate(COUNT_REMOTE_FRAMES)
        # (The test's officer page does not hold its resolution: Chromium may start it lower.)
        assert got["n"] >= 10 and got["w"] > 0 and got["h"] > 0, got
        wait_until(officer_page, "window.got.frames >= 10")
        sent = officer_page.evaluate("window.got")
        # 720p capped, and kept at 720p (degradationPreference maintain-resolution).
        assert (sent["width"], sent["height"]) == (1280, 720), sent

        # Chat over the data channel once the call is up, both ways.
        wait_until(officer_page, "window.ch.readyState === 'open'")
        officer_page.evaluate("window.ch.send(JSON.stringify({type: 'chat', text: 'Over the channel'}))")
        page.locator("#chat-log .from-officer >> text=Over the channel").wait_for(state="attached", timeout=WAIT_MS)
        assert page.locator("#chat-badge").is_visible()
        page.locator("#btn-chat").click()
        page.locator("#chat-input").fill("Typed in the call")
        page.locator("#chat-send").click()
        wait_until(officer_page, "window.got.chat.length === 1")
        assert officer_page.evaluate("window.got.chat[0].text") == "Typed in the call"
        page.locator("#btn-chat").click()

        # Both sides derive the same verification code from the two DTLS fingerprints.
        wait_until(page,
            "document.getElementById('verification-code').hasAttribute('data-code')", timeout=WAIT_MS
        )
        code = page.locator("#verification-code").get_attribute("data-code")
        assert code == python_code(offer, answer)
        assert page.locator("#verification-code").inner_text() == f"{code[:3]} {code[3:]}"
        assert page.evaluate("([a, b]) => window.EVR.verificationCode(a, b)", [answer, offer]) == code
        # ... the officer's one as DTLS actually used it (getRemoteCertificates), not the SDP's text.
        assert page.evaluate("window.EVR.codeFrom()") == "dtls"
        # The test vector of docs/call-engine.md, shared with the officer's app.
        vector = [
            f"v=0\r\na=fingerprint:sha-256 {'AB:' * 31}CD\r\n", f"v=0\r\na=fingerprint:SHA-256 {'01:' * 31}ef\r\n"
        ]
        assert page.evaluate("([a, b]) => window.EVR.verificationCode(a, b)", vector) == "061911"
        assert python_code(*vector) == "061911"
        # A pair whose 20 bits exceed 999999 (1044164): the modulo keeps it at six digits.
        wide = [f"v=0\r\na=fingerprint:sha-256 {'AB:' * 31}0F\r\n", vector[1]]
        assert page.evaluate("([a, b]) => window.EVR.verificationCode(a, b)", wide) == "044164"
        assert python_code(*wide) == "044164"
        # ...and the commitment's vector (tests/unit/test_verification.py).
        assert page.evaluate("(f) => window.EVR.commitHash(f)", f" {'ab:' * 31}cd ") == (
            "ba6d2890283617a6f6e6b1d237eb728fb618e0bfa83da9d29688aebfecf4a565")

        if lang == "en":
            # A restart (the app's rebuilt connection: new certificates, iceRestart):
            # a fresh connection with the certificate committed to after the first answer.
            officer_page.evaluate("window.pc.close()")
            offer2 = officer_page.evaluate(OFFICER_OFFER)
            officer.send({"type": "offer", "appointment": appt, "sdp": offer2, "iceRestart": True})
            answer2 = officer.recv("answer", appointment=appt)["sdp"]
            assert python_commit(answer2) == next_commit != python_commit(answer)
            third = officer.recv("commit", appointment=appt)["hash"]
            assert third not in (committed, next_commit)
            officer_page.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer2)
            code2 = python_code(offer2, answer2)
            wait_until(page, f"document.getElementById('verification-code').getAttribute('data-code') === '{code2}'")
            wait_until(officer_page, "window.pc.connectionState === 'connected' && window.ch.readyState === 'open'")

        # Call controls.
        assert page.locator("#remote-video").get_attribute("playsinline") is not None
        page.locator("#btn-mute").click()
        assert page.locator("#btn-mute").get_attribute("aria-pressed") == "true"
        page.locator("#btn-mute").click()
        page.locator("#btn-chat").click()
        assert page.locator("#chat-log .from-officer").first.is_visible()
        page.locator("#btn-chat").click()
        wait_until(page, "document.getElementById('call-status').textContent === ''", timeout=WAIT_MS)
        check_screen(page, lang)
        page.screenshot(path=str(shots / f"4-call-{lang}.png"))
        page.locator("#btn-chat").click()
        page.screenshot(path=str(shots / f"5-call-chat-{lang}.png"))
        page.locator("#btn-chat").click()

        if lang == "cy":
            # The officer ends the call: the page says so (in Welsh) and lets go of everything.
            officer.send({"type": "bye", "appointment": appt})
            page.locator("#screen-ended").wait_for(state="visible", timeout=WAIT_MS)
            assert page.locator("#ended-title").inner_text() == "Mae'r alwad wedi gorffen"
            officer.recv("victim_left", appointment=appt)
            assert page.evaluate("document.getElementById('remote-video').srcObject") is None
            check_screen(page, lang)
            page.screenshot(path=str(shots / f"6-ended-{lang}.png"), full_page=True)
            # After the call (its socket closed) "I can't talk freely" still reaches the officer, over HTTP.
            page.locator("#flag").click()
            assert officer.recv("flag", appointment=appt)["kind"] == "cannot-talk"

        # Quick exit: socket closed at once, neutral page in this page's place in history.
        length_before = page.evaluate("history.length")
        watch.collect_csp()
        page.locator("#quick-exit").click()
        page.wait_for_url(server.neutral, timeout=WAIT_MS)
        assert officer.recv("quick_exit", appointment=appt)["appointment"] == appt
        if lang == "en":
            officer.recv("victim_left", appointment=appt)
        # Clear-Site-Data took the device cookie; the link is locked on this phone.
        assert victim_ctx.cookies() == []
        assert length_before >= 2  # (Chromium keeps the initial about:blank too)
        assert page.evaluate("history.length") == length_before  # replaced, not pushed
        assert page.title() == "Weather"
        assert page.evaluate("sessionStorage.length") == 0
        watch.collect_csp()
        page.go_back()
        page.wait_for_load_state()
        # Back skips the call page: it is no longer in this tab's history.
        assert page.url == before_link, f"Back went to {page.url}"
        page.go_forward()
        page.wait_for_load_state()
        assert page.url == server.neutral
        watch.assert_clean()
        # The same phone opening the link again (the SMS tapped again) is refused until
        # reissued: locked by the quick exit, in the waiting room (en) or after the call (cy).
        page.goto(url)
        assert page.locator("h1").first.inner_text() == "This link is closed"
        assert officer.recv("link_refused", appointment=appt)["reason"] == "closed"
    finally:
        victim_ctx.close()
        officer_ctx.close()


def split_fingerprints(sdp: str) -> str:
    """The attack of issue 11 item 2 on the officer's offer: the first m-section
    announces another certificate (the attacker's) as sha-384, the others keep
    the honest sha-256. Chromium would check DTLS against the strongest."""
    sections = sdp.split("\r\nm=")
    out = []
    for i, section in enumerate(sections):
        if i == 1:
            lines = [ln for ln in section.split("\r\n") if not ln.startswith("a=fingerprint:")]
            lines.append("a=fingerprint:sha-384 " + ":".join(["5A"] * 48))
            section = "\r\n".join(lines)
        out.append(section)
    return "\r\nm=".join(out)


def test_an_offer_with_fingerprints_split_across_m_sections_is_refused(
    server: Server, officer: Officer, browser: Any, pw: Any
) -> None:
    appt = "appt-page-split"
    victim_ctx = browser.new_context(**phone(pw), locale="en-GB")
    officer_ctx = browser.new_context(bypass_csp=True)
    try:
        page = victim_ctx.new_page()
        page.goto(server.link(appt))
        page.locator("#consent-agree").click()
        page.locator("#perm-start").click()
        page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT_MS)
        officer.recv("commit", appointment=appt)
        officer_page = officer_ctx.new_page()
        officer_page.goto(f"{server.base}/web/neutral.html")
        offer = officer_page.evaluate(OFFICER_OFFER)
        tampered = split_fingerprints(offer)
        assert "sha-384" in tampered and "sha-256" in tampered  # both kinds, in different m-sections
        officer.send({"type": "offer", "appointment": appt, "sdp": tampered})
        page.locator("#screen-ended").wait_for(state="visible", timeout=WAIT_MS)
        assert page.locator("#ended-title").inner_text() == "The call was stopped to keep you safe"
        assert officer.recv("bye", appointment=appt)["reason"] == "fingerprint-mismatch"
        assert page.evaluate("document.getElementById('remote-video').srcObject") is None
    finally:
        victim_ctx.close()
        officer_ctx.close()


def test_readable_at_200_percent_zoom(server: Server, browser: Any, tmp_path: Path) -> None:
    """At 200% zoom a 412 px wide phone is 206 CSS px wide: nothing scrolls sideways,
    every target keeps its 48 px."""
    url = server.link("appt-zoom")
    ctx = browser.new_context(viewport={"width": 206, "height": 457}, device_scale_factor=4,
                              is_mobile=True, has_touch=True)
    try:
        page = ctx.new_page()
        watch = PageWatch(page)
        page.goto(url)
        page.locator("#consent-agree").wait_for(state="visible", timeout=WAIT_MS)
        for step in ("consent", "permission"):
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), step
            assert page.evaluate(SMALL_TARGETS) == [], step
            page.screenshot(path=str(screenshot_dir(tmp_path) / f"zoom-{step}.png"), full_page=True)
            if step == "consent":
                page.locator("#consent-agree").click()
                page.locator("#perm-start").wait_for(state="visible", timeout=WAIT_MS)
        page.locator("#quick-exit").click()
        page.wait_for_url(server.neutral, timeout=WAIT_MS)
        watch.assert_clean()
    finally:
        ctx.close()
