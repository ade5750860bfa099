"""Debian's Chromium driven by Playwright, for tests that need a real browser.

Never ``playwright install``: these machines download nothing. Playwright's
Python package drives the system ``chromium`` (apt) through
``executable_path``. A missing browser or package FAILS the test (it is part of
the test environment, installed by ``./dev test``), it is never skipped.

    with chromium() as browser:
        page = browser.new_page()
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

# The flags that worked here for WebRTC on loopback with fake camera and microphone
# (measured: Chromium starts in ~0.85 s, ICE connects 0.33-0.53 s after page load).
# --use-fake-ui-for-media-stream grants getUserMedia.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium_path() -> str:
    """The system Chromium (``EVR_CHROMIUM`` overrides); fails the test if absent."""
    wanted = os.environ.get("EVR_CHROMIUM")
    for candidate in ([wanted] if wanted else []) + ["/usr/bin/chromium", "chromium"]:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    pytest.fail("chromium is not installed (apt-get install chromium): run ./dev test, which installs it")


def sync_playwright_or_fail() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright Python package is missing: pip install -e '.[test]' (never playwright install)")
    return sync_playwright


@contextlib.contextmanager
def playwright() -> Iterator[Playwright]:
    sync_playwright = sync_playwright_or_fail()
    with sync_playwright() as p:
        yield p


@contextlib.contextmanager
def chromium(p: Playwright | None = None, *extra_flags: str) -> Iterator[Browser]:
    """A headless Chromium with the fake media flags; closed on exit."""
    path = chromium_path()
    with contextlib.ExitStack() as stack:
        if p is None:
            p = stack.enter_context(playwright())
        browser = p.chromium.launch(
            executable_path=path, headless=True, args=[*CHROMIUM_FLAGS, *extra_flags]
        )
        try:
            yield browser
        finally:
            browser.close()


def phone(p: Playwright, name: str = "Pixel 7") -> dict[str, Any]:
    """A Playwright device descriptor as ``new_context`` keyword arguments
    (viewport, user agent, scale, ``is_mobile``, ``has_touch``)."""
    desc = dict(p.devices[name])
    desc.pop("default_browser_type", None)
    return desc


class PageWatch:
    """Collects what a page complains about: console errors and warnings, uncaught
    exceptions, and Content-Security-Policy violations (as events, so they are
    caught even when the console says nothing)."""

    INIT = (
        "window.__evrCsp = [];"
        "document.addEventListener('securitypolicyviolation', function (e) {"
        "  window.__evrCsp.push(e.violatedDirective + ' ' + e.blockedURI);"
        "});"
    )

    def __init__(self, page: Page):
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        self.csp: list[str] = []
        page.add_init_script(self.INIT)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.console.append(f"{msg.type}: {msg.text}")

    def collect_csp(self) -> list[str]:
        """Read the violations recorded by the current document (call before it navigates)."""
        with contextlib.suppress(Exception):
            self.csp.extend(self.page.evaluate("window.__evrCsp || []"))
            self.page.evaluate("window.__evrCsp = []")
        return self.csp

    def assert_clean(self) -> None:
        self.collect_csp()
        assert not self.csp, f"CSP violations: {self.csp}"
        assert not self.errors, f"uncaught page errors: {self.errors}"
        assert not self.console, f"console errors/warnings: {self.console}"


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``EVR_KEEP_SCREENSHOTS`` to keep them, else tmp_path (removed)."""
    keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
