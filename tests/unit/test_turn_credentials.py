"""TURN REST-API credentials (coturn ``use-auth-secret``): a known vector, the
ttl bounds, URL checks and the CLI flags."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from evr_desktop.rendezvous import __main__ as cli
from evr_desktop.rendezvous.turn import (
    MAX_TTL,
    MIN_TTL,
    TurnConfig,
    check_turn_url,
    credential_for,
    ice_servers_for,
)

SECRET = "north-wales-turn-secret-0123456789"
URLS = ["turn:turn.example.police.uk:3478", "turns:turn.example.police.uk:5349?transport=tcp"]


def test_known_vector_computed_independently():
    config = TurnConfig(URLS, SECRET, ttl_seconds=3600)
    servers = ice_servers_for(config, "a1b2c3d4e5f6", now=1_700_000_000.9)
    assert servers == [
        {
            "urls": URLS,
            "username": "1700003600:a1b2c3d4e5f6",
            "credential": base64.b64encode(
                hmac.new(SECRET.encode(), b"1700003600:a1b2c3d4e5f6", hashlib.sha1).digest()
            ).decode(),
        }
    ]
    # A literal vector too, computed outside Python:
    # printf %s 1433895918506:username | openssl dgst -sha1 -hmac secret -binary | base64
    assert credential_for("secret", "1433895918506:username") == "kwzC1wLXPEXVs7H2rLU1EdZgo/M="


def test_credential_is_pinned_to_username_and_secret():
    config = TurnConfig(URLS, SECRET)
    a = ice_servers_for(config, "link1", now=1000)[0]
    b = ice_servers_for(config, "link2", now=1000)[0]
    c = ice_servers_for(TurnConfig(URLS, SECRET + "x"), "link1", now=1000)[0]
    assert a["credential"] != b["credential"] != c["credential"]
    assert a["username"] == "4600:link1"  # default ttl: one hour


def test_list_is_a_copy():
    config = TurnConfig(list(URLS), SECRET)
    servers = ice_servers_for(config, "x", now=0)
    servers[0]["urls"].append("turn:evil.example")
    assert config.urls == URLS


@pytest.mark.parametrize("opaque", ["", "a:b", "appt 1", "x" * 65, "é", None, 42])
def test_opaque_id_must_be_short_and_plain(opaque):
    with pytest.raises(ValueError):
        ice_servers_for(TurnConfig(URLS, SECRET), opaque, now=0)


@pytest.mark.parametrize("ttl", [MIN_TTL, 3600, MAX_TTL])
def test_ttl_in_bounds(ttl):
    servers = ice_servers_for(TurnConfig(URLS, SECRET, ttl), "id", now=100)
    assert servers[0]["username"] == f"{100 + ttl}:id"


@pytest.mark.parametrize("ttl", [0, -1, MIN_TTL - 1, MAX_TTL + 1, 3600.5, True, "3600"])
def test_ttl_out_of_bounds(ttl):
    with pytest.raises(ValueError):
        TurnConfig(URLS, SECRET, ttl)


@pytest.mark.parametrize(
    "url",
    [
        "turn:127.0.0.1",
        "turn:127.0.0.1:3478",
        "turn:turn.example.police.uk:3478?transport=udp",
        "turn:turn.example.police.uk?transport=tcp",
        "turns:turn.example.police.uk:5349?transport=tcp",
        "turns:turn.example.police.uk",
        "turn:[2001:db8::1]:3478",
    ],
)
def test_good_urls(url):
    assert check_turn_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "stun:stun.example:3478",
        "http://turn.example",
        "turn://turn.example:3478",
        "turn:",
        "turn:user@turn.example",
        "turn:turn.example:99999",
        "turn:turn.example:3478?transport=sctp",
        "turns:turn.example?transport=udp",
        "turn:turn.example/path",
        "turn:turn.example:3478 ",
        "TURN:turn.example",
        "turn:turn%2eexample",
        "javascript:alert(1)",
    ],
)
def test_bad_urls(url):
    with pytest.raises(ValueError):
        check_turn_url(url)


def test_config_checks():
    with pytest.raises(ValueError):
        TurnConfig([], SECRET)
    with pytest.raises(ValueError):
        TurnConfig("turn:turn.example", SECRET)  # a bare string, not a list
    with pytest.raises(ValueError):
        TurnConfig(["stun:stun.example"], SECRET)
    with pytest.raises(ValueError):
        TurnConfig(URLS, "short")
    assert SECRET not in repr(TurnConfig(URLS, SECRET))


def _run_cli(monkeypatch, argv):
    seen = {}

    def fake_create_app(registry, secret, **kw):
        seen.update(kw)
        return object()

    monkeypatch.setattr(cli, "create_app", fake_create_app)
    monkeypatch.setattr(cli, "run", lambda *a, **k: None)
    return cli.main(argv), seen


def test_cli_turn_flags(tmp_path, monkeypatch):
    officer = tmp_path / "officer"
    officer.write_text("officer-secret-0123456789\n")
    turn = tmp_path / "turn"
    turn.write_text(SECRET + "\n")
    base = ["--officer-secret-file", str(officer)]
    rc, seen = _run_cli(monkeypatch, base + ["--turn-url", URLS[0], "--turn-url", URLS[1],
                                             "--turn-secret-file", str(turn)])
    assert rc == 0
    assert seen["turn"] == TurnConfig(URLS, SECRET, 3600)
    rc, seen = _run_cli(monkeypatch, base)
    assert rc == 0 and seen["turn"] is None
    assert _run_cli(monkeypatch, base + ["--turn-url", URLS[0]])[0] == 2  # no secret file
    assert _run_cli(monkeypatch, base + ["--turn-secret-file", str(turn)])[0] == 2  # no URL
    bad = base + ["--turn-url", "stun:x", "--turn-secret-file", str(turn)]
    assert _run_cli(monkeypatch, bad)[0] == 2
    missing = base + ["--turn-url", URLS[0], "--turn-secret-file", str(tmp_path / "nope")]
    assert _run_cli(monkeypatch, missing)[0] == 2


def test_engine_accepts_only_clean_ice_servers():
    from evr_desktop.call.engine import clean_ice_servers

    good = {"urls": ["turn:turn.example:3478?transport=udp"], "username": "1:abc", "credential": "x", "extra": 1}
    assert clean_ice_servers([good]) == [
        {"urls": ["turn:turn.example:3478?transport=udp"], "username": "1:abc", "credential": "x"}
    ]
    assert clean_ice_servers([{"urls": "javascript:alert(1)"}]) == []
    assert clean_ice_servers("nonsense") == [] and clean_ice_servers([5, None]) == []
    assert clean_ice_servers([{"urls": "stun:s.example"}]) == [{"urls": ["stun:s.example"]}]
