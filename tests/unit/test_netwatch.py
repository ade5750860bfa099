"""The network watcher: a change in the set of addresses, and only that, is reported."""

from __future__ import annotations

import asyncio

import pytest

from evr_desktop.call.netwatch import NetworkWatcher, host_addresses


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_reports_a_changed_set_once_and_ignores_order_and_read_errors():
    readings = [
        ["192.0.2.10", "127.0.0.1"],  # at start
        ["127.0.0.1", "192.0.2.10"],  # same set, other order: no change
        RuntimeError("interface vanished"),  # a failed read: no change, keeps going
        ["127.0.0.1", "198.51.100.7"],  # Wi-Fi -> hotspot
        ["127.0.0.1", "198.51.100.7"],
    ]
    seen: list[tuple[frozenset[str], frozenset[str]]] = []

    def addresses():
        item = readings.pop(0) if len(readings) > 1 else readings[0]
        if isinstance(item, Exception):
            raise item
        return item

    async def main() -> None:
        async def on_change(old, new):
            seen.append((old, new))

        w = NetworkWatcher(on_change, interval=0.01, addresses=addresses)
        w.start()
        w.start()  # idempotent
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(readings) == 1:
                break
        await asyncio.sleep(0.05)
        await w.stop()
        assert not w.running and w.changes == 1

    run(main())
    assert seen == [(frozenset({"192.0.2.10", "127.0.0.1"}), frozenset({"127.0.0.1", "198.51.100.7"}))]


def test_a_failing_reaction_does_not_stop_the_watcher():
    state = {"n": 0}

    def addresses():
        state["n"] += 1
        return [f"192.0.2.{state['n']}"]  # a new set at every poll

    calls = []

    def on_change(old, new):
        calls.append(new)
        raise RuntimeError("reaction failed")

    async def main() -> None:
        w = NetworkWatcher(on_change, interval=0.01, addresses=addresses)
        w.start()
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        await w.stop()

    run(main())
    assert len(calls) >= 3


def test_real_addresses_include_this_machine_and_the_interval_is_checked():
    addrs = host_addresses()  # aioice's own list (it may be empty on a machine with loopback only)
    assert isinstance(addrs, frozenset) and all(isinstance(a, str) for a in addrs)
    with pytest.raises(ValueError):
        NetworkWatcher(lambda o, n: None, interval=0)
