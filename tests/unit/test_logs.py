"""The logs' privacy (issue 11, item 6): every record, whoever logged it, is
one JSON line with no address, SDP or candidate in it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from evr_desktop.logs import configure, scrub
from tests.conftest import logging_kept

SDP = ("v=0\r\no=- 3920 2 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\n"
       "a=candidate:1 1 udp 2122260223 192.168.1.23 54321 typ host\r\na=fingerprint:sha-256 AB:CD\r\n")


@pytest.mark.parametrize("text", [
    "Check CandidatePair(('192.0.2.2', 33304) -> ('198.51.100.9', 46978)) State.FROZEN -> State.WAITING",
    "Error handling request from 203.0.113.50",
    "Connection(0) Check CandidatePair(('fd00::2', 48050) -> ('2001:db8:85a3::8a2e:370:7334', 57158))",
    "remote ::ffff:198.51.100.4 and fe80::1%eth0 and ::1",
    "candidate:842163049 1 udp 1677729535 198.51.100.77 61001 typ srflx raddr 0.0.0.0 rport 0",
    "host 5f3c1a2b-1111-2222-3333-444455556666.local",
    "the answer: " + SDP,
])
def test_scrub_leaves_no_address(text):
    out = scrub(text)
    for leak in ("192.0.2.2", "198.51.100", "203.0.113", "fd00::2", "2001:db8", "fe80::1", "::1", "192.168",
                 "candidate:", "v=0", ".local"):
        assert leak not in out, (leak, out)


def test_scrub_keeps_ids_and_plain_words():
    text = "victim waiting: appointment=0f3e8a7b9c1d4e2fa1b2c3d4e5f60718 link=7eed108fd6d3 reason=second-device"
    assert scrub(text) == text


def test_every_record_is_a_scrubbed_json_line_and_the_noisy_libraries_are_quiet(monkeypatch):
    root = logging.getLogger()
    monkeypatch.delenv("EVR_LOG_LIBRARIES", raising=False)
    buf = io.StringIO()
    with logging_kept():
        configure("app", "DEBUG", stream=buf)
        assert root.handlers and all(isinstance(h.formatter, type(root.handlers[0].formatter)) for h in root.handlers)
        logging.getLogger("evr_desktop.call").debug("offer for %s: %s", "appt-1", SDP)
        logging.getLogger("aioice.ice").info("pair %s", ("198.51.100.7", 5000))  # below WARNING: not written
        logging.getLogger("aiohttp.server").warning("Error handling request from %s", "203.0.113.50")
        try:
            raise ConnectionError("connect to 198.51.100.7:443 failed")
        except ConnectionError:
            logging.getLogger("evr_desktop.rendezvous").exception("socket for %s", "appt-2")
        lines = [json.loads(line) for line in buf.getvalue().splitlines()]
        assert [(x["logger"], x["level"]) for x in lines] == [
            ("evr_desktop.call", "DEBUG"), ("aiohttp.server", "WARNING"), ("evr_desktop.rendezvous", "ERROR")]
        assert lines[0]["msg"] == "offer for appt-1: [sdp]" and lines[0]["process"] == "app"
        assert lines[1]["msg"] == "Error handling request from [address]"
        assert "ConnectionError" in lines[2]["exc"] and "198.51" not in lines[2]["exc"]
        assert "[address]" in lines[2]["exc"]
