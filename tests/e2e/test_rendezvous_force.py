"""The rendezvous in force mode (issue 11, item 1): officers authenticate one
by one with their own certificates from the force CA (mutual TLS on the
officer listener), hundreds may be connected, each link belongs to the
officer who issued it and its victim's events reach that officer only. A
revoked certificate (the force's CRL, re-read when it changes), a foreign
one, none at all, or the old shared secret get nothing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evr_desktop.domain.officer import OfficerIdentity
from evr_desktop.rendezvous.officers import CertificateAuth, officer_tls_context
from evr_desktop.rendezvous.server import COOKIE_HTTPS, create_app, start
from evr_desktop.rendezvous.tokens import TokenRegistry
from evr_desktop.vault import pki
from tests.e2e.test_rendezvous import closed, recv

WAIT = 5.0


def _pem(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _server_certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """A TLS CA and a certificate for 127.0.0.1 (the phones' and the officers' view)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test web CA")])
    now = dt.datetime.now(dt.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meet")]))
            .issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (_pem(tmp, "web-ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
            _pem(tmp, "server.pem", cert.public_bytes(serialization.Encoding.PEM)),
            _pem(tmp, "server.key", _key_pem(key)))


def _crl(ca_key: Any, ca: x509.Certificate, revoked: list[x509.Certificate]) -> bytes:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(now - dt.timedelta(minutes=1)).next_update(now + dt.timedelta(days=1)))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Force:
    """A force CA with its officers' certificates on disk, and a client per officer."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ca_key, self.ca = pki.make_demo_ca("Testshire Police")
        self.ca_file = _pem(tmp, "force-ca.pem", self.ca.public_bytes(serialization.Encoding.PEM))
        self.web_ca, self.server_cert, self.server_key = _server_certificate(tmp)
        self.crl_file = tmp / "force.crl"
        self.certs: dict[str, x509.Certificate] = {}

    def officer(self, collar: str, ca: tuple[Any, x509.Certificate] | None = None) -> ssl.SSLContext:
        ca_key, ca_cert = ca or (self.ca_key, self.ca)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = pki.issue_officer_certificate(ca_key, ca_cert, OfficerIdentity(
            f"Officer {collar}", collar, "Testshire Police", "Invented Station"), key)
        self.certs[collar] = cert
        cert_file = _pem(self.tmp, f"{collar}.pem", cert.public_bytes(serialization.Encoding.PEM))
        key_file = _pem(self.tmp, f"{collar}.key", _key_pem(key))
        ctx = self.client()
        ctx.load_cert_chain(cert_file, key_file)
        return ctx

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.web_ca))

    def revoke(self, *collars: str) -> None:
        self.crl_file.write_bytes(_crl(self.ca_key, self.ca, [self.certs[c] for c in collars]))


@contextlib.asynccontextmanager
async def serving(force: Force, **kw: Any) -> AsyncIterator[tuple[str, str, TokenRegistry]]:
    registry = TokenRegistry()
    force.revoke()  # an empty CRL to begin with
    app = create_app(registry, None, public_url="https://127.0.0.1", officer_auth=CertificateAuth(
        force.ca, force.crl_file), recheck_seconds=0.2, **kw)
    victim_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    victim_tls.load_cert_chain(force.server_cert, force.server_key)
    runner, port = await start(app, "127.0.0.1", 0, ssl_context=victim_tls, officer_port=0,
                               officer_ssl_context=officer_tls_context(force.server_cert, force.server_key,
                                                                       force.ca_file))
    officer_port = runner.addresses[1][1]
    try:
        yield f"https://127.0.0.1:{port}", f"https://127.0.0.1:{officer_port}", registry
    finally:
        await runner.cleanup()


async def _officer(session: aiohttp.ClientSession, base: str, ctx: ssl.SSLContext):
    ws = await session.ws_connect(f"{base}/ws/officer", ssl=ctx)
    assert (await recv(ws, "welcome"))["type"] == "welcome"
    return ws


async def _link(session: aiohttp.ClientSession, base: str, ctx: ssl.SSLContext, appt: str) -> tuple[int, str]:
    now = dt.datetime.now(dt.timezone.utc)
    body = {"appointment": appt, "slot_start": now.isoformat(),
            "slot_end": (now + dt.timedelta(minutes=45)).isoformat()}
    async with session.post(f"{base}/api/links", json=body, ssl=ctx) as r:
        return r.status, ((await r.json())["url"] if r.status == 200 else "")


async def _victim(session: aiohttp.ClientSession, victim_base: str, url: str, ctx: ssl.SSLContext):
    token = url.rsplit("/", 1)[1]
    origin = {"Origin": "https://127.0.0.1"}
    async with session.get(f"{victim_base}/j/{token}", ssl=ctx) as r:
        assert r.status == 200
    async with session.post(f"{victim_base}/j/{token}/claim", ssl=ctx, headers=origin) as r:
        assert r.status == 200
        cookie = r.cookies[COOKIE_HTTPS].value
    ws = await session.ws_connect(f"{victim_base}/ws/victim", ssl=ctx,
                                  headers={"Cookie": f"{COOKIE_HTTPS}={cookie}", **origin})
    await recv(ws, "waiting")
    return ws


async def _nothing(ws: Any, within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await recv(ws, timeout=within)


def test_two_officers_each_see_only_their_own_victims(tmp_path: Path) -> None:
    force = Force(tmp_path)
    a_ctx, b_ctx = force.officer("PC 1001"), force.officer("PC 2002")

    async def main() -> None:
        async with serving(force) as (victim_base, officer_base, _registry), \
                aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            a = await _officer(http, officer_base, a_ctx)
            b = await _officer(http, officer_base, b_ctx)
            status, url_a = await _link(http, officer_base, a_ctx, "appt-a")
            assert status == 200 and url_a.startswith("https://127.0.0.1/j/")
            assert (await _link(http, officer_base, b_ctx, "appt-b"))[0] == 200
            victim_a = await _victim(http, victim_base, url_a, force.client())
            got = await recv(a, "victim_waiting")
            assert got["appointment"] == "appt-a"
            await _nothing(b)
            # B cannot reach A's victim, nor take A's appointment.
            await b.send_json({"type": "offer", "appointment": "appt-a", "sdp": "v=0\r\n"})
            assert (await recv(b, "error"))["code"] == "not-allowed"
            await _nothing(victim_a)
            assert (await _link(http, officer_base, b_ctx, "appt-a"))[0] == 409
            async with http.delete(f"{officer_base}/api/links/appt-a", ssl=b_ctx) as r:
                assert r.status == 403
            # A's victim flags: A is told, B is not.
            await victim_a.send_json({"type": "flag"})
            assert (await recv(a, "flag"))["appointment"] == "appt-a"
            await _nothing(b)
            # A's app restarts: its new socket replaces the old, and is told who waits.
            a2 = await _officer(http, officer_base, a_ctx)
            assert await closed(a) == 4001
            assert (await recv(a2, "victim_waiting"))["appointment"] == "appt-a"

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_revoked_foreign_or_missing_certificate_or_the_old_secret_gets_nothing(tmp_path: Path) -> None:
    force = Force(tmp_path)
    good, revoked = force.officer("PC 3003"), force.officer("PC 4004")
    foreign = force.officer("PC 5005", ca=pki.make_demo_ca("Elsewhere Constabulary"))

    async def main() -> None:
        async with serving(force) as (victim_base, officer_base, _registry), \
                aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            force.revoke("PC 4004")
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(f"{officer_base}/ws/officer", ssl=revoked)
            assert err.value.status == 401
            assert (await _link(http, officer_base, revoked, "appt-r"))[0] == 401
            for ctx in (foreign, force.client()):  # a foreign CA's certificate; none at all
                with pytest.raises((aiohttp.ClientConnectorError, aiohttp.ClientOSError,
                                    aiohttp.ServerDisconnectedError, ssl.SSLError)):
                    await http.ws_connect(f"{officer_base}/ws/officer", ssl=ctx)
            # The victims' listener has no client certificates: no officer there, secret or not.
            for headers in ({}, {"Authorization": "Bearer officer-secret-of-a-whole-force"}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await http.ws_connect(f"{victim_base}/ws/officer", ssl=force.client(), headers=headers)
                assert err.value.status == 401
            # A certificate revoked while connected: dropped at the next check, and refused after.
            ws = await _officer(http, officer_base, good)
            force.revoke("PC 4004", "PC 3003")
            assert await closed(ws, timeout=WAIT) == 4403
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(f"{officer_base}/ws/officer", ssl=good)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_hundreds_of_officers_at_once(tmp_path: Path) -> None:
    force = Force(tmp_path)
    contexts = [force.officer(f"PC {9000 + i}") for i in range(200)]

    async def main() -> None:
        async with serving(force) as (victim_base, officer_base, registry), \
                aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                      connector=aiohttp.TCPConnector(limit=0)) as http:
            sockets = await asyncio.gather(*(_officer(http, officer_base, c) for c in contexts))
            urls = await asyncio.gather(*(_link(http, officer_base, c, f"appt-{i}") for i, c in enumerate(contexts)))
            assert all(status == 200 for status, _ in urls)
            # The victim of officer 137 reaches officer 137.
            victim = await _victim(http, victim_base, urls[137][1], force.client())
            assert (await recv(sockets[137], "victim_waiting"))["appointment"] == "appt-137"
            await _nothing(sockets[136], 0.2)
            await victim.close()

    asyncio.run(asyncio.wait_for(main(), 60))


# --- the officer's app (its engine) in force mode, with short-lived officer tokens --------------


def test_two_officer_apps_on_one_force_rendezvous(tmp_path: Path) -> None:
    """Two real call engines, each authenticated by a token its app signed with the
    officer's key (the media process never holds that key): each issues its own
    links and hears only its own victims; a call connects; an expired or
    misaddressed token, or another officer's appointment, is refused."""
    import time as _time

    from cryptography.hazmat.primitives.asymmetric import ec as _ec

    from evr_desktop.call import events as ev
    from evr_desktop.call.engine import CallEngine, CallSettings, request_link
    from evr_desktop.rendezvous.officers import make_officer_token
    from tests.e2e.test_call_engine import Recorder, Victim, small_sources, until

    force = Force(tmp_path)
    keys, certs = {}, {}
    for collar in ("PC 6006", "PC 7007"):
        keys[collar] = _ec.generate_private_key(_ec.SECP256R1())
        certs[collar] = pki.issue_officer_certificate(force.ca_key, force.ca, OfficerIdentity(
            f"Officer {collar}", collar, "Testshire Police", "Invented Station"), keys[collar])

    async def main() -> None:
        registry = TokenRegistry()
        force.revoke()
        victim_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        victim_tls.load_cert_chain(force.server_cert, force.server_key)
        # force=False: everything here is on this machine's loopback, whose candidates force mode refuses
        # (test_hostile_load.py shows that refusal; test_netns_call.py a call over a real path).
        app = create_app(registry, None, public_url="https://127.0.0.1", web_root=Path("/nonexistent"), force=False,
                         officer_auth=CertificateAuth(force.ca, force.crl_file,
                                                      audience="https://127.0.0.1"))
        runner, port = await start(app, "127.0.0.1", 0, ssl_context=victim_tls)
        base = f"https://127.0.0.1:{port}"
        engines, events = {}, {}
        try:
            for collar in keys:
                token = make_officer_token(certs[collar], keys[collar], "https://127.0.0.1")
                settings = CallSettings(rendezvous_url=base, officer_secret=token, rendezvous_ca=str(force.web_ca),
                                        ice_servers=[], host_candidates="loopback-only", prefer_real_devices=False)
                events[collar] = Recorder()
                engines[collar] = CallEngine(settings, sources=small_sources)
                engines[collar].add_listener(events[collar].on_event)
                engines[collar].start()
            for collar in keys:
                await events[collar].wait(ev.SignallingChanged, lambda e: e.connected)
            now = dt.datetime.now(dt.timezone.utc)
            later = now + dt.timedelta(minutes=45)
            link_a = await request_link(engines["PC 6006"].settings, "appt-a", now, later)
            await request_link(engines["PC 7007"].settings, "appt-b", now, later)
            with pytest.raises(ConnectionError, match="another officer"):
                await request_link(engines["PC 7007"].settings, "appt-a", now, later)
            http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                         connector=aiohttp.TCPConnector(ssl=force.client()))
            victim = Victim(base, http)
            try:
                await victim.join(link_a["url"].rsplit("/", 1)[1])
                await events["PC 6006"].wait(ev.VictimWaiting, lambda e: e.appointment == "appt-a")
                await asyncio.sleep(0.5)
                assert events["PC 7007"].of(ev.VictimWaiting) == []
                await asyncio.wrap_future(engines["PC 6006"].start_call("appt-a"))
                await events["PC 6006"].wait(ev.CallStateChanged,
                                             lambda e: e.appointment == "appt-a" and e.state == "connected",
                                             timeout=20)
                code = await events["PC 6006"].wait(ev.VerificationCode, lambda e: e.appointment == "appt-a")
                await until(lambda: victim.codes, what="the victim's code")
                assert victim.codes[-1] == code.code
            finally:
                await victim.close()
                await http.close()
            # An expired token, and one made for another rendezvous: refused.
            for token in (make_officer_token(certs["PC 6006"], keys["PC 6006"], "https://127.0.0.1",
                                             now=_time.time() - 3600),
                          make_officer_token(certs["PC 6006"], keys["PC 6006"], "https://elsewhere.example")):
                with pytest.raises(ConnectionError, match="refused this app's credentials"):
                    await request_link(CallSettings(rendezvous_url=base, officer_secret=token,
                                                    rendezvous_ca=str(force.web_ca)), "appt-x", now, later)
        finally:
            for engine in engines.values():
                await asyncio.to_thread(engine.stop)
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(main(), 60))
