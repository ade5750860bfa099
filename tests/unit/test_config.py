import json

import pytest

from evr_desktop.config import Paths, Settings, SettingsError, load_settings, save_settings


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "p").mkdir()
    return Paths(tmp_path / "p", demo=False)


def test_defaults_and_round_trip(paths):
    assert load_settings(paths) == Settings()
    save_settings(paths, Settings(lock_after_minutes=5, timestamp_url="https://tsa.example.invalid/tsr"))
    assert load_settings(paths).lock_after_minutes == 5
    assert oct(paths.settings.stat().st_mode & 0o777) == "0o600"
    assert not load_settings(paths).force_calls  # the demo's loopback rendezvous by default
    paths.settings.write_text(json.dumps({"rendezvous_url": "https://meet.example.police.uk",
                                          "rendezvous_ca_file": "/etc/evr/force-web-ca.pem"}))
    assert load_settings(paths).force_calls


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"lock_after_minutes": 0}, "from 1 to 60"),
        ({"lock_after_minutes": 10000}, "from 1 to 60"),
        ({"lock_after_minutes": "10"}, "whole number"),
        ({"timestamp_url": "file:///etc/passwd"}, "http(s) URL"),
        ({"timestamp_url": 5}, "http(s) URL"),
        # the force's rendezvous: TLS only
        ({"rendezvous_url": "http://meet.example.police.uk"}, "https:// address (TLS only)"),
        ({"rendezvous_url": "wss://meet.example.police.uk"}, "https:// address (TLS only)"),
        ({"rendezvous_url": ["https://x"]}, "https:// address (TLS only)"),
        ({"rendezvous_ca_file": 3}, "must be text"),
    ],
)
def test_bad_values_are_refused_with_a_message(paths, data, fragment):
    paths.settings.write_text(json.dumps(data))
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_settings(paths)


def test_unreadable_file(paths):
    paths.settings.write_text("{not json")
    with pytest.raises(SettingsError, match="not readable JSON"):
        load_settings(paths)
