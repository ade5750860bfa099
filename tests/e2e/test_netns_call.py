"""A call across a real network path (issue 11's first must-show): the victim's
Chromium runs in its own network namespace, joined to this machine by a veth
pair with addresses of its own (made here, removed afterwards; only loopback
and these addresses are ever used). The officer's engine and the rendezvous
stay on the host end.

1. Direct: the call connects over the veth pair (not loopback), video both
   ways, the same code on both screens.
2. Relay only: inside the namespace nftables drops every UDP packet to the
   host but coturn's port, so the only path is through coturn, with
   credentials from the rendezvous; the page's chosen candidate is a relay one,
   video both ways, the same code.

Needs root (``ip netns``, as ./dev test runs in CI), ``ip``, ``nft``, Debian's
``chromium`` and ``turnserver``: a missing one fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from evr_desktop.call import events as ev
from evr_desktop.call.engine import CallEngine, CallSettings
from evr_desktop.rendezvous.server import create_app, start
from evr_desktop.rendezvous.tokens import TokenRegistry
from evr_desktop.rendezvous.turn import TurnConfig
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, phone, playwright
from tests.e2e.test_call_engine import Recorder, small_sources
from tests.e2e.test_victim_page import WEB_ROOT, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
SECRET = "officer-secret-for-netns-tests-0123"
WAIT_MS = 30_000


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@contextlib.contextmanager
def namespace() -> Iterator[dict[str, str]]:
    """A namespace ``evrv<n>`` and a veth pair 10.203.<n>.1 (host) / .2 (inside)."""
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root: ./dev test runs as root in CI")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (apt-get install iproute2 nftables)")
    n = random.randrange(1, 250)
    ns, host_if, ns_if = f"evrv{n}", f"evrh{n}", f"evrp{n}"
    host, inside = f"10.203.{n}.1", f"10.203.{n}.2"
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _run("ip", "link", "set", ns_if, "netns", ns)
        _run("ip", "addr", "add", f"{host}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{inside}/30", "dev", ns_if)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield {"ns": ns, "host": host, "inside": inside}
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=20)


@contextlib.contextmanager
def coturn_on(address: str, tmp: Path) -> Iterator[tuple[int, str]]:
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.fail("turnserver is missing (apt-get install coturn)")
    port = random.randrange(20000, 30000)
    low = random.randrange(40000, 60000, 20)
    secret = secrets.token_urlsafe(24)
    proc = subprocess.Popen(
        [exe, "-n", f"--listening-ip={address}", f"--listening-port={port}", f"--relay-ip={address}",
         f"--min-port={low}", f"--max-port={low + 19}", "--use-auth-secret", f"--static-auth-secret={secret}",
         "--realm=evr.test", "--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay",
         f"--pidfile={tmp / 'turn.pid'}", f"--userdb={tmp / 'turndb'}", "--log-file=stdout", "--simple-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        assert proc.poll() is None, "turnserver did not start"
        yield port, secret
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


class Officer:
    """The rendezvous (on the host end of the pair) and the officer's engine,
    on a loop of their own so Playwright's sync API keeps the test's thread."""

    def __init__(self, address: str, turn: TurnConfig):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.registry = TokenRegistry()
        app = create_app(self.registry, SECRET, web_root=WEB_ROOT, turn=turn)
        self.runner, port = asyncio.run_coroutine_threadsafe(start(app, address, 0), self.loop).result(10)
        self.base = f"http://{address}:{port}"
        self.events = Recorder()
        self.engine = CallEngine(CallSettings(rendezvous_url=self.base, officer_secret=SECRET, ice_servers=[],
                                              prefer_real_devices=False), sources=small_sources)
        self.engine.add_listener(self.events.on_event)
        self.engine.start()

    def link(self, appt: str) -> str:
        now = datetime.now(timezone.utc)
        token, _ = self.registry.issue(appt, now, now + timedelta(minutes=45), now)
        return f"{self.base}/j/{token}"

    def wait(self, cls: type, pred: Any = lambda e: True, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((e for e in self.events.of(cls) if pred(e)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {cls.__name__} within {timeout} s: {self.events.events[-10:]}")

    def close(self) -> None:
        self.engine.stop()
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


SELECTED_PAIR = """async () => {
  const stats = await window.EVR_PC().getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return {local: local.address || local.ip, localType: local.candidateType,
          remote: remote.address || remote.ip, remoteType: remote.candidateType};
}"""


def _call(tmp_path: Path, relay_only: bool) -> None:
    with namespace() as net, coturn_on(net["host"], tmp_path) as (turn_port, turn_secret):
        if relay_only:  # only coturn's port is reachable by UDP from the victim's side
            ns = net["ns"]
            _run("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "evr")
            _run("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "evr", "out",
                 "{ type filter hook output priority 0; }")
            _run("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "evr", "out", "meta", "l4proto", "udp",
                 "ip", "daddr", net["host"], "udp", "dport", "!=", str(turn_port), "drop")
        turn = TurnConfig([f"turn:{net['host']}:{turn_port}?transport=udp"], turn_secret)
        officer = Officer(net["host"], turn)
        wrapper = tmp_path / "chromium-in-namespace"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {net["ns"]} {chromium_path()} "$@"\n')
        wrapper.chmod(0o755)
        appt = "appt-netns-relay" if relay_only else "appt-netns-direct"
        try:
            url = officer.link(appt)
            origin = officer.base
            with playwright() as p:
                browser = p.chromium.launch(executable_path=str(wrapper), headless=True, args=[
                    *CHROMIUM_FLAGS, f"--unsafely-treat-insecure-origin-as-secure={origin}"])
                try:
                    ctx = browser.new_context(**phone(p), bypass_csp=True)
                    page = ctx.new_page()
                    # Expose the page's peer connection for the stats (the test reads, never drives, it).
                    page.add_init_script("""(() => { const P = window.RTCPeerConnection; let last = null;
                      window.RTCPeerConnection = function (...a) { last = new P(...a); return last; };
                      window.RTCPeerConnection.prototype = P.prototype;
                      Object.assign(window.RTCPeerConnection, P);
                      window.EVR_PC = () => last; })();""")
                    page.goto(url)
                    page.locator("#consent-agree").click()
                    page.locator("#perm-start").click()
                    page.locator("#screen-waiting").wait_for(state="visible", timeout=WAIT_MS)
                    officer.wait(ev.VictimWaiting, lambda e: e.appointment == appt)
                    officer.engine.start_call(appt).result(30)
                    officer.wait(ev.CallStateChanged, lambda e: e.appointment == appt and e.state == "connected")
                    page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_MS)
                    # Video both ways.
                    wait_until(page, "document.getElementById('remote-video').videoWidth > 0", timeout=WAIT_MS)
                    deadline = time.monotonic() + 30
                    while officer.engine.latest_remote_frame(appt) is None and time.monotonic() < deadline:
                        time.sleep(0.1)
                    assert officer.engine.latest_remote_frame(appt) is not None, "no video from the victim"
                    # The same code on both screens.
                    code = officer.wait(ev.VerificationCode, lambda e: e.appointment == appt).code
                    wait_until(page, "document.getElementById('verification-code').hasAttribute('data-code')",
                               timeout=WAIT_MS)
                    assert page.locator("#verification-code").get_attribute("data-code") == code
                    # The path the call took.
                    pair = page.evaluate(SELECTED_PAIR)
                    assert pair is not None
                    assert not str(pair["local"]).startswith("127.") and pair["local"] != "::1", pair
                    if relay_only:
                        assert pair["localType"] == "relay", pair
                    else:
                        assert pair["local"] == net["inside"] and pair["remote"] == net["host"], pair
                finally:
                    browser.close()
        finally:
            officer.close()


def test_a_call_from_another_network_connects_directly(tmp_path: Path) -> None:
    _call(tmp_path, relay_only=False)


def test_with_direct_udp_blocked_the_call_goes_through_coturn(tmp_path: Path) -> None:
    _call(tmp_path, relay_only=True)
