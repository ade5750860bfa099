"""Logging for every process of the product (the app, its media process, the
rendezvous service): JSON lines, IDs only, and never a network address, an
SDP or an ICE candidate, whoever logged it (issue 11, item 6).

The libraries a call runs through log what they see: aioice its candidate
pairs (the victim's addresses) at INFO, aiortc SDP and DTLS details at DEBUG,
aiohttp "Error handling request from <address>". A victim's IP address
locates them; it must not reach a log file that IT collects and keeps.
Two layers, both on the one root handler so that no logger escapes them:

- **Levels.** The chatty libraries (``aioice``, ``aiortc``, ``aiohttp.access``,
  ``aiohttp.server``, ``aiohttp.web``, ``av``) start at WARNING whatever the
  process's level; ``EVR_LOG_LEVEL=DEBUG`` raises our own loggers only, and
  ``EVR_LOG_LIBRARIES=DEBUG`` lets theirs through too (still scrubbed).
- **Scrubbing** (:func:`scrub`), applied to the message, its arguments and
  any traceback of *every* record: SDP blobs become ``[sdp]``, candidate
  lines ``[candidate]``, IPv4 and IPv6 addresses ``[address]``, mDNS host
  names ``[mdns]``. A scrubbed log may say less than it could; it never says
  where a victim is.

Each line is one JSON object: ``t`` (UTC, ms), ``level``, ``process``,
``logger``, ``msg``, and ``exc`` for a traceback. The messages themselves
carry appointment and link IDs, reason codes and counts (the house rule in
STYLE: no names, no numbers, no content).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

# The libraries that log network details; quiet unless asked for.
NOISY = ("aioice", "aiortc", "aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.client", "av")

_SDP = re.compile(r"v=0\r?\n(?:[a-z]=[^\n]*\n?)+")
_CANDIDATE = re.compile(r"(?:a=)?candidate:\S+(?: \S+){5,}")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Any run of hex groups with at least two colons (compressed forms included,
# with a zone index); times ("14:05:33") are caught too, which costs nothing.
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[\w.]+)?(?![\w:])")
_MDNS = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local\b", re.I)


def scrub(text: str) -> str:
    """``text`` with every SDP, candidate, IP address and mDNS name replaced."""
    text = _SDP.sub("[sdp]", text)
    text = _CANDIDATE.sub("[candidate]", text)
    text = _MDNS.sub("[mdns]", text)
    text = _IPV4.sub("[address]", text)
    return _IPV6.sub("[address]", text)


class JsonLines(logging.Formatter):
    """One JSON object per record, scrubbed (see the module's docstring)."""

    def __init__(self, process: str):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} (unformattable arguments)"
        line: dict[str, Any] = {
            "t": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "msg": scrub(message),
        }
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc"] = scrub(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


def configure(process: str, level: str | int | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger of this process through one scrubbing JSON-lines
    handler on ``stream`` (standard error). ``level``: ours (default
    ``EVR_LOG_LEVEL`` or INFO); the libraries in :data:`NOISY` stay at WARNING
    unless ``EVR_LOG_LIBRARIES`` says otherwise. Replaces any handler set
    before (``basicConfig``'s): a second, unscrubbed path must not exist."""
    level = level or os.environ.get("EVR_LOG_LEVEL") or "INFO"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    libraries = os.environ.get("EVR_LOG_LIBRARIES", "WARNING").upper()
    for name in NOISY:
        logging.getLogger(name).setLevel(libraries)
    logging.captureWarnings(True)
    return handler
