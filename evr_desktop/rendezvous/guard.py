"""The rendezvous's connections under hostile load (issue 11, item 7):
a deadline for each request's headers and body, and a cap on connections
from one address.

Slowloris holds a server's connections open by sending a request a byte at a
time; aiohttp on its own waits for it (its keep-alive timer only covers a
silent connection, and is an hour by default). Here every connection gets:

- a **request deadline** (``header_timeout``): from a request's first byte
  until its headers and body are in; a connection that has not finished by
  then is aborted. A WebSocket, once upgraded, is not timed (its messages
  have their own limits: size, rate, errors);
- a **per-address cap** (``per_address``): the connections one address may
  hold at once; one more is closed at once. Behind a reverse proxy every
  connection comes from the proxy, so set it to 0 (off) there and let the
  proxy enforce it (docs/rendezvous.md has an nginx example);
- a short **keep-alive** (``keepalive_timeout``) for idle connections.

How it plugs into aiohttp (pinned ``aiohttp>=3.12.14,<4``, checked by
tests/e2e/test_rendezvous.py): :class:`GuardedRunner` is an ``AppRunner``
whose server (``Server``, made by ``Application._make_handler``) makes
:class:`GuardedHandler`\\ s, a ``RequestHandler`` subclass watching
``connection_made``, ``data_received`` and ``connection_lost``. Its
``_request_count`` (headers parsed) and ``_upgraded`` are aiohttp's.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

log = logging.getLogger("evr_desktop.rendezvous")


@dataclass
class ConnectionGuard:
    header_timeout: float = 10.0  # seconds for a request's headers and body
    per_address: int = 64  # connections from one address at once; 0: no cap (behind a proxy)
    keepalive_timeout: float = 15.0  # an idle kept-alive connection
    open: Counter[str] = field(default_factory=Counter)
    # Listening ports without the cap: the officers' (mutual TLS), where a whole
    # force may come from one NAT address and every connection must show a
    # force certificate before it is served.
    uncapped_ports: set[int] = field(default_factory=set)
    refused: int = 0  # connections closed by the cap (for the metrics)
    timed_out: int = 0  # connections aborted by the deadline

    def admit(self, address: str, port: int | None = None) -> bool:
        if port in self.uncapped_ports:
            return True
        if self.per_address and self.open[address] >= self.per_address:
            self.refused += 1
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class GuardedHandler(RequestHandler):
    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "unix"
        local = transport.get_extra_info("sockname")
        self._uncapped = isinstance(local, tuple) and local[1] in self.guard.uncapped_ports
        self._admitted = self.guard.admit(self._address, local[1] if isinstance(local, tuple) else None)
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = 0
        if not self._admitted:
            log.warning("connection refused: too many from one address")  # never the address itself
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not getattr(self, "_admitted", False):
            return
        if self._upgraded:  # a WebSocket now: its messages have their own limits
            self._disarm()
        elif self._request_count > self._counted:  # the headers are in
            self._counted = self._request_count
            self._disarm()
        elif self._deadline is None and data:  # the first bytes of the next request
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if getattr(self, "_admitted", False):
            if not self._uncapped:
                self.guard.release(self._address)
            self._admitted = False
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self._loop.call_later(self.guard.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            assert self._deadline is not None
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self.guard.timed_out += 1
        log.warning("connection aborted: its request did not arrive within %.0f s", self.guard.header_timeout)
        if self.transport is not None:
            self.transport.abort()


class _GuardedServer(Server):
    guard: ConnectionGuard

    def __call__(self) -> RequestHandler:
        handler = GuardedHandler(self, loop=self._loop, **self._kwargs)
        handler.guard = self.guard
        return handler


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are guarded (see the module)."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any):
        kwargs.setdefault("keepalive_timeout", guard.keepalive_timeout)
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _GuardedServer
        server.guard = self.guard  # type: ignore[attr-defined]
        return server
