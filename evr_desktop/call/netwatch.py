"""Notices when this computer's network addresses change, so a live call can
restart ICE at once instead of freezing.

An officer's laptop moves between networks mid-call: the dock's Ethernet is
unplugged and Wi-Fi takes over, a VPN comes up or drops, a phone's hotspot
replaces the office Wi-Fi. The old ICE candidate pair is dead from that
moment, but ICE itself only notices after its consent checks time out (tens
of seconds in aioice), and the victim sees a frozen picture meanwhile.

There is no portable change notification (netlink is Linux only; Windows and
macOS each have their own), so this polls the same address list aioice
gathers its host candidates from (``aioice.ice.get_host_addresses``, looked
up at each poll so the engine's loopback setting in ``call/ice.py`` applies).
A poll costs well under a millisecond; every 2 s is plenty. Only a change in
the set of addresses counts: the order they are listed in does not.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

OnChange = Callable[[frozenset[str], frozenset[str]], "Awaitable[None] | None"]


def host_addresses() -> frozenset[str]:
    """The addresses aioice would gather host candidates from, now."""
    import aioice.ice

    return frozenset(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))


class NetworkWatcher:
    """Calls ``on_change(old, new)`` on the event loop when the set of host
    addresses changes. ``addresses`` is for tests (a callable returning the
    current addresses); by default the real interfaces are read."""

    def __init__(self, on_change: OnChange, *, interval: float = 2.0,
                 addresses: Callable[[], Iterable[str]] | None = None):
        if interval <= 0:
            raise ValueError("the poll interval must be positive")
        self.on_change = on_change
        self.interval = interval
        self._addresses = addresses or host_addresses
        self._task: asyncio.Task | None = None
        self.changes = 0
        self.current: frozenset[str] = frozenset()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling (call on the event loop). A second call does nothing."""
        if self.running:
            return
        self.current = self._read() or frozenset()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="network-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def _read(self) -> frozenset[str] | None:
        try:
            return frozenset(self._addresses())
        except Exception:  # an interface vanishing mid-read, a platform quirk
            log.warning("could not read the network addresses", exc_info=True)
            return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = self._read()
            if now is None or now == self.current:
                continue
            old, self.current = self.current, now
            self.changes += 1
            log.info("network addresses changed (%d -> %d addresses)", len(old), len(now))
            try:
                result = self.on_change(old, now)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("reacting to a network change failed")
