"""The media process: the call engine (aiortc, the signalling client, capture,
codecs, the encoded-frame tap, the demo's loopback rendezvous) in a child
process of its own, so its Python work never holds the GUI's interpreter and a
codec crash loses neither the window nor the officer's draft.

- ``channel``: the one socket between the two processes: typed, versioned,
  length-prefixed JSON messages, refused with a typed error when malformed.
- ``frames``: display frames through shared memory, latest-wins.
- ``child``: what runs in the child (``python -m evr_desktop.media``).
- ``proxy``: the GUI's side: starts, supervises and stops the child and offers
  the call engine's surface (futures, listeners, frames) to the UI.

No Qt here (only ``ui/`` imports it), and the GUI's side imports no codec:
docs/call-engine.md "The media process".
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

IN_PROCESS_ENV = "EVR_MEDIA_IN_PROCESS"


def in_process() -> bool:
    """``EVR_MEDIA_IN_PROCESS=1`` keeps the engine in the GUI's process (the
    benchmark's comparison); so does Windows until the channel is ported."""
    return os.environ.get(IN_PROCESS_ENV) == "1" or sys.platform == "win32"


@dataclass(frozen=True)
class ForceRendezvous:
    """Force mode: the force's ``evr-rendezvous`` (its public https:// address,
    and a CA bundle file for its TLS when the system does not trust it)."""

    url: str
    ca_file: str | None = None


def make_calls(force: ForceRendezvous | None = None) -> Any:
    """The calls object the app uses: a ``MediaCalls`` (the engine in a child
    process) or, in process, ``EmbeddedCalls``. Both offer ``start()``,
    ``stop()``, ``issue_link``, ``set_officer_token``, ``choose_devices``,
    ``list_devices``, ``speaker_note`` and ``engine``. Constructing is cheap;
    ``start()`` does the work. ``force``: the force's rendezvous instead of the
    demo's loopback one (host candidates from the real interfaces, never loopback)."""
    kwargs: dict[str, Any] = {}
    if force is not None:
        kwargs = {"force_url": force.url, "force_ca": force.ca_file, "host_candidates": "default"}
    if in_process():
        from ..call.embedded import EmbeddedCalls

        return EmbeddedCalls(**kwargs)
    from .proxy import MediaCalls

    return MediaCalls(**kwargs)
