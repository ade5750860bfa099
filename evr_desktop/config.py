"""Typed settings and data folders, in one place.

Folders come from platformdirs (per-user, per-OS), with ``--profile`` as the
override for tests and portable use. Settings are a small JSON file in the
profile with typed defaults; Qt's QSettings is used only for window geometry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .fsutil import atomic_write

APP_NAME = "EVR Desktop"
APP_AUTHOR = "EVR"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class Paths:
    """Where one profile keeps its files."""

    profile: Path
    demo: bool

    @property
    def vault(self) -> Path:
        return self.profile / "vault.json"

    @property
    def store(self) -> Path:
        return self.profile / "store.sqlite3"

    @property
    def audit(self) -> Path:
        return self.profile / "audit"

    @property
    def settings(self) -> Path:
        return self.profile / SETTINGS_FILE

    @property
    def recordings(self) -> Path:
        """Call recordings: ``recordings/<appointment id>/<recording id>/`` (age segments, manifest)."""
        return self.profile / "recordings"

    @property
    def evidence_office(self) -> Path:
        """Demo only: stands in for the force's evidence office, deliberately
        *outside* the officer's profile (the officer's laptop would never hold
        the escrow private key in real use)."""
        return self.profile.parent / f"{self.profile.name}-evidence-office-DEMO"


def default_profile(demo: bool) -> Path:
    from platformdirs import user_data_path

    base = user_data_path(APP_NAME, APP_AUTHOR)
    return base / ("demo-profile" if demo else "profile")


def resolve_paths(profile: str | Path | None, demo: bool) -> Paths:
    path = Path(profile).expanduser().resolve() if profile else default_profile(demo)
    return Paths(profile=path, demo=demo)


@dataclass(frozen=True)
class Settings:
    lock_after_minutes: int = 10
    # RFC 3161 timestamp authority for statement signatures; "" = signing time only.
    timestamp_url: str = ""
    # Force mode's text messages: GOV.UK Notify (its API address, the template
    # whose body is ((body)), and the file holding the service's API key,
    # readable by the officer's account only). All empty: the outbox only.
    notify_url: str = ""
    notify_template_id: str = ""
    notify_key_file: str = ""
    # Force mode's calls: the force's evr-rendezvous (its public https:// address;
    # TLS only) and, when the system does not trust its certificate, a CA bundle
    # file (PEM). Empty: the demo's rendezvous on this computer's loopback.
    rendezvous_url: str = ""
    rendezvous_ca_file: str = ""
    # The force's evidence rules. An export may carry a decrypted copy of the original
    # recording (besides the encrypted master) only if this allows it, and only with the
    # officer's reason (in the bundle's manifest; audited). After an export that verifies,
    # the laptop's copy of the recordings may be removed only if this allows it (audited).
    allow_decrypted_export: bool = False
    allow_remove_after_export: bool = False

    @property
    def notify_configured(self) -> bool:
        return bool(self.notify_url and self.notify_template_id and self.notify_key_file)

    @property
    def force_calls(self) -> bool:
        """Calls go through the force's rendezvous (not the demo's loopback one)."""
        return bool(self.rendezvous_url)

    # Bounds keep a hand-edited file from disabling the lock altogether.
    @staticmethod
    def bounds() -> dict[str, tuple[int, int]]:
        return {"lock_after_minutes": (1, 60)}


class SettingsError(ValueError):
    pass


def load_settings(paths: Paths) -> Settings:
    """Read settings; unknown keys are ignored, bad values refused with a message."""
    if not paths.settings.exists():
        return Settings()
    try:
        data = json.loads(paths.settings.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{paths.settings} is not readable JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{paths.settings} must hold a JSON object.")
    values: dict[str, Any] = {}  # each one checked below
    for f in fields(Settings):
        if f.name in data:
            value = data[f.name]
            if f.name in ("timestamp_url", "notify_url"):
                if not isinstance(value, str) or (value and not value.startswith(("https://", "http://"))):
                    raise SettingsError(f"Setting {f.name} must be an http(s) URL, or empty.")
                values[f.name] = value
                continue
            if f.name == "rendezvous_url":
                if not isinstance(value, str) or (value and not value.startswith("https://")) or len(value) > 2048:
                    raise SettingsError("Setting rendezvous_url must be the force's https:// address (TLS only), "
                                        "or empty for the demo.")
                values[f.name] = value
                continue
            if f.name in ("notify_template_id", "notify_key_file", "rendezvous_ca_file"):
                if not isinstance(value, str) or len(value) > 4096:
                    raise SettingsError(f"Setting {f.name} must be text.")
                values[f.name] = value
                continue
            if f.name in ("allow_decrypted_export", "allow_remove_after_export"):
                if type(value) is not bool:
                    raise SettingsError(f"Setting {f.name} must be true or false.")
                values[f.name] = value
                continue
            low, high = Settings.bounds()[f.name]
            if type(value) is not int or not low <= value <= high:
                raise SettingsError(f"Setting {f.name} must be a whole number from {low} to {high}.")
            values[f.name] = value
    return Settings(**values)


def save_settings(paths: Paths, settings: Settings) -> None:
    atomic_write(paths.settings, json.dumps(asdict(settings), indent=1).encode("utf-8"))
