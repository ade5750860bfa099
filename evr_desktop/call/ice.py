"""Host-candidate addresses for aioice, so calls can run on loopback.

aioice gathers host candidates from ``aioice.ice.get_host_addresses()``, which
leaves out 127.0.0.1 and ::1 on purpose, and neither aioice nor aiortc has an
option to change that (``RTCConfiguration`` has no interface or address
settings; aioice's ``use_ipv4``/``use_ipv6`` only switch families off). A
call between two processes on one machine with no other interface (CI
containers, the embedded tests), or with Chromium's loopback-only candidates,
then finds no pair.

The least intrusive fix is to wrap that one module-level function, which
``Connection.gather_candidates`` looks up at call time: :func:`set_host_addresses`
installs the wrapper once (idempotent, process-wide) and sets the mode:

- ``"default"``: exactly aioice's behaviour (the wrapper passes through);
- ``"with-loopback"``: aioice's addresses plus 127.0.0.1;
- ``"loopback-only"``: only 127.0.0.1 (deterministic tests: no other
  interface takes part).

Only the engine's settings (``CallSettings.host_candidates``) and tests call
this. Checked against aioice 0.10-0.13 (the function's signature
``get_host_addresses(use_ipv4, use_ipv6) -> list[str]`` is unchanged there).
"""

from __future__ import annotations

import threading

import aioice.ice

MODES = ("default", "with-loopback", "loopback-only")

_lock = threading.Lock()
_original = None
_mode = "default"


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    assert _original is not None
    if _mode == "loopback-only":
        return ["127.0.0.1"] if use_ipv4 else []
    addresses = list(_original(use_ipv4=use_ipv4, use_ipv6=use_ipv6))
    if _mode == "with-loopback" and use_ipv4 and "127.0.0.1" not in addresses:
        addresses.append("127.0.0.1")
    return addresses


def set_host_addresses(mode: str) -> None:
    global _original, _mode
    if mode not in MODES:
        raise ValueError(f"host candidate mode must be one of {MODES}")
    with _lock:
        if _original is None:
            _original = aioice.ice.get_host_addresses
            aioice.ice.get_host_addresses = _host_addresses
        _mode = mode
