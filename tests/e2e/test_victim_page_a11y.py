"""The victim's page passes an axe-core WCAG 2.2 AA audit on every screen, in
English and Welsh (issue 11): consent, decline, camera permission, waiting
room (chat open), the call (chat open), the statement sent to read and sign
(issue 12: the review screen, kept as a screenshot at phone size), the end of
the call, and the server's refusal page. axe-core is installed by ./dev (npm, pinned, into
.venv/node); its experimental "label in name" rule (WCAG 2.5.3) is on too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import phone, screenshot_dir
from tests.e2e.test_victim_page import OFFICER_OFFER, WAIT_MS, Officer, Server, wait_until
from tests.e2e.test_victim_page import browser as browser  # noqa: F401 - the fixtures
from tests.e2e.test_victim_page import officer as officer  # noqa: F401
from tests.e2e.test_victim_page import pw as pw  # noqa: F401
from tests.e2e.test_victim_page import server as server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
AUDIT = """async (tags) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                     rules: {'label-content-name-mismatch': {enabled: true}}});
  return {ran: r.passes.length + r.violations.length + r.incomplete.length,
          label_in_name: [...r.passes, ...r.violations].some(x => x.id === 'label-content-name-mismatch'),
          violations: r.violations.map(v => ({id: v.id, help: v.help,
                                              nodes: v.nodes.map(n => n.target.join(' '))}))};
}"""


def audit(page: Any, where: str) -> None:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(AUDIT, TAGS)
    assert result["ran"] > 5, where  # axe really ran its rules (the refusal page is small)
    assert result["violations"] == [], f"{where}: {json.dumps(result['violations'], indent=1)}"


@pytest.fixture(scope="module", autouse=True)
def axe_installed() -> None:
    if not AXE.is_file():
        pytest.fail("axe-core is missing: ./dev test installs it into .venv/node")


def test_label_in_name_rule_catches_the_old_labels(browser: Any) -> None:
    """The audit could fail: the two labels issue 11 found broken fail it."""
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.set_content('<html lang="cy"><head><title>t</title></head><body><main>'
                         '<button aria-label="Darllen y dudalen hon yn Gymraeg">Cymraeg</button>'
                         "<button aria-label=\"Tell the officer, silently, that you can't talk freely\">"
                         "I can't talk freely</button></main></body></html>")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(AUDIT, TAGS)
        assert [v["id"] for v in result["violations"]] == ["label-content-name-mismatch"]
        assert len(result["violations"][0]["nodes"]) == 2
    finally:
        ctx.close()


REVIEW_TEXT = ("WITNESS STATEMENT\nURN: 01TS7654321\nStatement of: Gwenllian INVENTED\nAge if under 18: Over 18\n"
               "Occupation: Harpist\nThis statement was also visually recorded: Yes\n\n"
               + "\n".join(f"{i}. Daeth e at y drws eto. He came to the door again." for i in range(1, 40)))
SEND_REVIEW = """(text) => window.ch.send(JSON.stringify({type: 'statement_review', id: 'ab'.repeat(16), text,
  pages: 2, kind: 'witness', declaration: 'This statement (consisting of 2 page(s) each signed by me) is true '
  + 'to the best of my knowledge and belief.'}))"""


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_every_screen_passes_wcag_22_aa(lang: str, server: Server, officer: Officer, browser: Any,  # noqa: F811
                                        pw: Any, tmp_path: Any) -> None:  # noqa: F811
    appt = f"appt-a11y-{lang}"
    url = server.link(appt)
    # bypass_csp: the page's policy allows no inline script, and axe is injected as one.
    victim_ctx = browser.new_context(**phone(pw), locale="en-GB", bypass_csp=True)
    officer_ctx = browser.new_context(bypass_csp=True)
    try:
        page = victim_ctx.new_page()
        page.goto(url)
        page.locator("#consent-agree").wait_for(state="visible", timeout=WAIT_MS)
        if lang == "cy":
            page.locator("#langs [data-lang=cy]").click()
        audit(page, f"consent ({lang})")
        page.locator("#consent-decline").click()
        audit(page, f"decline ({lang})")
        page.locator("#decline-back").click()
        page.locator("#consent-agree").click()
        page.locator("#perm-start").wait_for(state="visible", timeout=WAIT_MS)
        audit(page, f"permission ({lang})")
        page.locator("#perm-start").click()
        page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT_MS)
        officer.send({"type": "chat", "appointment": appt, "text": "Hello, take your time."})
        page.locator("#chat-log .from-officer").wait_for(timeout=WAIT_MS)
        page.locator("#flag").click()
        audit(page, f"waiting room with chat ({lang})")
        # The call.
        officer.recv("commit", appointment=appt)
        officer_page = officer_ctx.new_page()
        officer_page.goto(f"{server.base}/web/neutral.html")
        offer = officer_page.evaluate(OFFICER_OFFER)
        officer.send({"type": "offer", "appointment": appt, "sdp": offer})
        answer = officer.recv("answer", appointment=appt)["sdp"]
        officer_page.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer)
        page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_MS)
        wait_until(page, "document.getElementById('verification-code').hasAttribute('data-code')")
        audit(page, f"call ({lang})")
        # The officer's app says the recorder runs: the page's "Recording" shows (and passes).
        wait_until(officer_page, "window.ch.readyState === 'open'")
        officer_page.evaluate("() => window.ch.send(JSON.stringify({type: 'recording', state: 'on'}))")
        page.locator("#rec-indicator").wait_for(state="visible", timeout=WAIT_MS)
        assert page.locator("#rec-indicator").inner_text().strip() == ("Yn recordio" if lang == "cy" else "Recording")
        audit(page, f"call, recording ({lang})")
        page.screenshot(path=str(screenshot_dir(tmp_path) / f"call-recording-{lang}.png"))
        officer_page.evaluate("() => window.ch.send(JSON.stringify({type: 'recording', state: 'off'}))")
        page.locator("#rec-indicator").wait_for(state="hidden", timeout=WAIT_MS)
        officer_page.evaluate("() => window.ch.send(JSON.stringify({type: 'recording', state: 'on'}))")
        page.locator("#rec-indicator").wait_for(state="visible", timeout=WAIT_MS)
        page.locator("#btn-chat").click()
        audit(page, f"call with chat open ({lang})")
        # The statement sent to read and sign (over the data channel, as the app sends it).
        wait_until(officer_page, "window.ch.readyState === 'open'")
        officer_page.evaluate(SEND_REVIEW, REVIEW_TEXT)
        page.locator("#screen-review").wait_for(state="visible", timeout=WAIT_MS)
        assert page.evaluate("document.getElementById('review-text').textContent") == REVIEW_TEXT
        audit(page, f"statement review ({lang})")
        page.screenshot(path=str(screenshot_dir(tmp_path) / f"review-phone-{lang}.png"), full_page=True)
        page.locator("#review-confirm").check()
        audit(page, f"statement review, confirmed ({lang})")
        page.locator("#review-decline").click()
        wait_until(officer_page, "window.got.chat.some((m) => m.type === 'statement_declined')")
        page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_MS)
        officer.send({"type": "bye", "appointment": appt})
        page.locator("#screen-ended").wait_for(state="visible", timeout=WAIT_MS)
        audit(page, f"ended ({lang})")
        # The server's refusal page (the link is spent now).
        page.goto(url + ("?lang=cy" if lang == "cy" else ""))
        audit(page, f"refusal page ({lang})")
    finally:
        victim_ctx.close()
        officer_ctx.close()
