"""Force mode with whole apps (issue 11, item 1): two officers' apps, each with
a force-provisioned vault (PKCS#12 from the force CA) and the force's
rendezvous in its settings, connect to one ``evr-rendezvous`` over TLS, each
as its own officer (a short-lived token signed in the app's process with the
officer's key; the media process gets only the token). Each sends a link by
pressing Send link and hears only its own victim; a call connects. An officer
whose certificate the force revokes, or whose certificate another CA issued,
is refused, and their queue says that video calls are unavailable."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import shiboken6
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from PySide6.QtCore import Qt

from evr_desktop.call import events as ev
from evr_desktop.config import Paths
from evr_desktop.domain.appointment import OffenceType, Status
from evr_desktop.domain.officer import OfficerIdentity
from evr_desktop.rendezvous.officers import CertificateAuth
from evr_desktop.rendezvous.server import create_app, start
from evr_desktop.rendezvous.tokens import TokenRegistry
from evr_desktop.services import Workspace
from evr_desktop.ui.application import build
from evr_desktop.vault import pki
from evr_desktop.vault.age import X25519Identity
from evr_desktop.vault.vault import ForceProvisioning
from tests.conftest import PASSPHRASE, fast_kdf
from tests.e2e.test_call_engine import Victim
from tests.e2e.test_rendezvous_force import Force, _crl
from tests.ui.test_call_flow import book_and_send_link, on_loop, select

pytestmark = pytest.mark.slow


class ForceServer:
    """The force's rendezvous on a loop of its own (the GUI has the main thread)."""

    def __init__(self, tmp: Path):
        self.force = Force(tmp)
        self.escrow = X25519Identity.generate()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.force.crl_file.write_bytes(_crl(self.force.ca_key, self.force.ca, []))
        self.registry = TokenRegistry()
        self.runner = self.run(self._start())

    async def _start(self) -> Any:
        victim_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        victim_tls.load_cert_chain(self.force.server_cert, self.force.server_key)
        # force=False: the apps and victims here are on this machine's loopback, whose
        # candidates force mode refuses (tests/e2e/test_netns_call.py: a real path).
        app = create_app(self.registry, None, public_url=self.url, web_root=Path("/nonexistent"), force=False,
                         officer_auth=CertificateAuth(self.force.ca, self.force.crl_file, audience=self.url),
                         recheck_seconds=0.3)
        return (await start(app, "127.0.0.1", self.port, ssl_context=victim_tls))[0]

    def stop(self) -> None:
        self.run(self.runner.cleanup())

    def restart(self) -> None:
        self.runner = self.run(self._start())

    def run(self, coro: Any, timeout: float = 20) -> Any:
        return on_loop(self.loop, coro, timeout)

    def provision(self, tmp: Path, officer: OfficerIdentity, foreign: bool = False) -> tuple[Paths, Any]:
        """A force profile for ``officer`` (as IT would provision it), pointed at this rendezvous."""
        ca_key, ca = pki.make_demo_ca("Elsewhere Police") if foreign else (self.force.ca_key, self.force.ca)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = pki.issue_officer_certificate(ca_key, ca, officer, key)
        p12 = pkcs12.serialize_key_and_certificates(b"officer", key, cert, [ca], BestAvailableEncryption(b"p12"))
        paths = Paths(profile=tmp / officer.collar.replace(" ", ""), demo=False)
        workspace = Workspace(paths, make_kdf=fast_kdf)
        workspace.start()
        session = workspace.create(officer, PASSPHRASE, ForceProvisioning(pki.cert_pem(ca).encode(),
                                                                          self.escrow.recipient, p12, "p12"),
                                   with_demo_data=False)
        session.lock()
        paths.settings.write_text(json.dumps({"rendezvous_url": self.url,
                                              "rendezvous_ca_file": str(self.force.web_ca)}))
        return paths, cert

    def revoke(self, *certs: Any) -> None:
        self.force.crl_file.write_bytes(_crl(self.force.ca_key, self.force.ca, list(certs)))

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def force_server(tmp_path: Path) -> Iterator[ForceServer]:
    server = ForceServer(tmp_path)
    yield server
    server.close()


class Heard:
    """The events one app's engine passes to its window (what that officer hears)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, e: Any) -> None:
        self.events.append(e)

    def waiting(self) -> set[str]:
        return {e.appointment for e in self.events if isinstance(e, ev.VictimWaiting)}


@pytest.fixture
def apps(qtbot, tmp_path: Path) -> Iterator[list[Any]]:
    """Start app windows on given profiles and unlock them as the officer would."""
    opened: list[tuple[Any, Any]] = []

    def open_app(paths: Paths) -> Any:
        _app, worker, main = build(Workspace(paths, make_kdf=fast_kdf))
        qtbot.addWidget(main.window)
        main.show()
        main.start()
        opened.append((main, worker))
        qtbot.waitUntil(lambda: main.stack.currentWidget() is main.unlock_page and main.unlock_page.button.isEnabled()
                        and main.unlock_page.who.text().startswith("Unlock as"), timeout=10000)
        qtbot.keyClicks(main.unlock_page.passphrase, PASSPHRASE)
        qtbot.mouseClick(main.unlock_page.button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.stack.currentWidget() is main.queue or main.unlock_page.button.isEnabled(),
                        timeout=10000)
        assert main.stack.currentWidget() is main.queue, main.unlock_page.message.text()
        qtbot.waitUntil(lambda: main.calls.embedded is not None and main.calls.embedded.engine is not None,
                        timeout=20000)
        heard = Heard()
        main.calls.embedded.engine.add_listener(heard)
        main.heard = heard
        return main

    yield [open_app]
    for main, worker in opened:
        if not shiboken6.isValid(main.window):
            continue
        main.lock()
        qtbot.waitUntil(lambda w=worker: w.pending == 0, timeout=10000)
        main.shutdown()
        worker.shutdown()


def _connected(main: Any) -> bool:
    return main.calls.rendezvous_connected and main.calls.calls_unavailable is None


def test_two_officer_apps_on_one_force_rendezvous(qtbot, tmp_path: Path, force_server: ForceServer, apps,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    open_app = apps[0]
    a_paths, _a_cert = force_server.provision(tmp_path, OfficerIdentity(
        "PC Ada Invented-Forcewide", "TS 4101", "Testshire Police", "Testford"))
    b_paths, b_cert = force_server.provision(tmp_path, OfficerIdentity(
        "PC Bryn Invented-Forcewide", "TS 4102", "Testshire Police", "Testford"))
    a, b = open_app(a_paths), open_app(b_paths)
    # Each app is connected as its own officer, and its media process holds no key.
    qtbot.waitUntil(lambda: _connected(a) and _connected(b), timeout=20000)
    assert not a.queue.calls_state.isVisible() and not b.queue.calls_state.isVisible()
    assert a.calls.embedded.force_url == force_server.url and a.calls.embedded.pid is not None
    with open(f"/proc/{a.calls.embedded.pid}/cmdline", "rb") as f:
        cmdline = f.read()
    assert b"PRIVATE KEY" not in cmdline and b"evr1." not in cmdline  # the token goes over the channel

    # Each officer sends a link by pressing Send link: it comes from the force's rendezvous.
    appt_a = book_and_send_link(qtbot, a, "Carys Invented-Victim", "07700 900511", "99FA1234526", OffenceType.ASSAULT)
    appt_b = book_and_send_link(qtbot, b, "Dylan Invented-Victim", "07700 900512", "99FB1234526", OffenceType.FRAUD)
    link_a, link_b = a.calls.links[appt_a.id], b.calls.links[appt_b.id]
    assert link_a.startswith(force_server.url + "/j/") and link_b.startswith(force_server.url + "/j/")

    victim_loop = force_server.loop
    http = on_loop(victim_loop, _client(force_server))
    victims = [Victim(force_server.url, http), Victim(force_server.url, http)]
    try:
        # A's victim waits: A hears it (the queue says so); B hears nothing.
        on_loop(victim_loop, victims[0].join(link_a.rsplit("/j/", 1)[1]))
        qtbot.waitUntil(lambda: a.session.store.get(appt_a.id).status is Status.VICTIM_WAITING, timeout=10000)
        qtbot.wait(500)
        assert b.heard.waiting() == set()
        # B's victim waits: only B hears it.
        on_loop(victim_loop, victims[1].join(link_b.rsplit("/j/", 1)[1]))
        qtbot.waitUntil(lambda: b.session.store.get(appt_b.id).status is Status.VICTIM_WAITING, timeout=10000)
        qtbot.wait(500)
        assert a.heard.waiting() == {appt_a.id} and b.heard.waiting() == {appt_b.id}

        # A calls their victim from the queue: connected, the same code on both sides.
        select(a, appt_a.id)
        qtbot.mouseClick(a.queue.detail.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: a.calls.screen is not None and a.calls.screen.appointment == appt_a.id,
                        timeout=10000)
        screen = a.calls.screen
        qtbot.waitUntil(lambda: screen.state.text() == "Connected", timeout=30000)
        qtbot.waitUntil(lambda: victims[0].codes and victims[0].codes[-1][:3] in screen.code.text(), timeout=10000)
        assert screen.code.text().replace(" ", "").endswith(victims[0].codes[-1])
        assert b.heard.waiting() == {appt_b.id} and not any(
            getattr(e, "appointment", None) == appt_a.id for e in b.heard.events)
        # A ends the call (and says yes when asked).
        from PySide6.QtWidgets import QMessageBox

        monkeypatch.setattr(QMessageBox, "exec", lambda _box: QMessageBox.StandardButton.Yes)
        qtbot.mouseClick(screen.end_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: a.session.store.get(appt_a.id).status is Status.CALL_ENDED, timeout=10000)
    finally:
        for victim in victims:
            on_loop(victim_loop, victim.close())
        on_loop(victim_loop, http.close())

    # The force revokes B's certificate: B is disconnected, refused on reconnecting,
    # and B's queue says video calls are unavailable and why. A is untouched.
    force_server.revoke(b_cert)
    qtbot.waitUntil(lambda: b.queue.calls_state.isVisible()
                    and "did not accept this officer's credentials" in b.queue.calls_state.text(), timeout=20000)
    assert "Video calls unavailable" in b.queue.calls_state.text()
    assert not a.queue.calls_state.isVisible()


def test_an_officer_from_another_force_is_refused_and_told(qtbot, tmp_path: Path, force_server: ForceServer,
                                                           apps) -> None:
    paths, _cert = force_server.provision(tmp_path, OfficerIdentity(
        "PC Eira Invented-Outsider", "XF 77", "Elsewhere Police", "Othertown"), foreign=True)
    main = apps[0](paths)
    qtbot.waitUntil(lambda: main.queue.calls_state.isVisible(), timeout=20000)
    assert "did not accept this officer's credentials" in main.queue.calls_state.text()
    assert not main.calls.rendezvous_connected
    keep = os.environ.get("EVR_KEEP_SCREENSHOTS")
    if keep:  # for a person to look at the notice on the queue
        main.window.resize(1366, 768)
        qtbot.wait(300)
        main.window.grab().save(os.path.join(keep, "calls-unavailable.png"))
    # Sending a link is refused too, with words, and nothing is marked as sent.
    from PySide6.QtWidgets import QMessageBox

    link_sent = main.calls.links.copy()
    from datetime import date, datetime, timedelta

    from evr_desktop.domain.appointment import Appointment, VictimDetails

    appt = Appointment(slot=datetime.now().astimezone() + timedelta(minutes=5), urn="99XF1234526",
                       offence=OffenceType.ASSAULT,
                       victim=VictimDetails("Ffion Invented-Victim", date(1980, 1, 1), "07700 900513"))
    main.session.save_appointment(appt, new=True)
    main.queue.upsert(appt)
    main.queue.day_enabled.setChecked(False)
    select(main, appt.id)
    qtbot.mouseClick(main.queue.detail.link_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.window.findChild(QMessageBox, "errorBox") is not None, timeout=20000)
    box = main.window.findChild(QMessageBox, "errorBox")
    assert "refused this app's credentials" in box.text() and "no link was issued" in box.text(), box.text()
    box.close()
    assert main.calls.links == link_sent
    assert main.session.store.get(appt.id).status is not Status.LINK_SENT


async def _client(server: ForceServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                 connector=aiohttp.TCPConnector(ssl=server.force.client()))



def test_a_lost_rendezvous_is_said_on_the_queue_and_calls_come_back_by_themselves(qtbot, tmp_path: Path,
                                                                                force_server: ForceServer,
                                                                                apps) -> None:
    paths, _cert = force_server.provision(tmp_path, OfficerIdentity(
        "PC Gwen Invented-Reconnect", "TS 4103", "Testshire Police", "Testford"))
    main = apps[0](paths)
    qtbot.waitUntil(lambda: _connected(main), timeout=20000)
    # The force's server goes away (a restart, a network outage): the queue says so at once.
    force_server.stop()
    qtbot.waitUntil(lambda: main.queue.calls_state.isVisible(), timeout=10000)
    assert "Video calls unavailable" in main.queue.calls_state.text()
    assert not main.calls.rendezvous_connected
    # It comes back on the same address: the app reconnects by itself and the notice goes.
    force_server.restart()
    qtbot.waitUntil(lambda: _connected(main) and not main.queue.calls_state.isVisible(), timeout=30000)
