"""Argon2id key derivation for the officer's passphrase, with bounded parameters.

The parameters are stored beside the sealed blob so a profile created on one
laptop unlocks on another, but a stored parameter is attacker-controlled input:
a vault file asking for 1 TiB of memory or a billion passes would hang or kill
the app. ``KdfParams.from_dict`` therefore refuses anything outside the bounds
before a single byte is derived.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass

ALGORITHM = "argon2id"
KEY_LENGTH = 32

# Bounds for stored parameters. The lower bounds stop a downgraded vault file
# from making a passphrase cheap to brute-force; the upper bounds stop a
# crafted one from exhausting the laptop.
MIN_MEMORY_KIB = 19 * 1024  # OWASP's floor for Argon2id
MAX_MEMORY_KIB = 1024 * 1024  # 1 GiB
MIN_ITERATIONS = 1
MAX_ITERATIONS = 20
MIN_LANES = 1
MAX_LANES = 8
MIN_SALT = 16
MAX_SALT = 64

DEFAULT_MEMORY_KIB = 128 * 1024
TARGET_SECONDS = 0.5


class KdfParameterError(ValueError):
    """Stored key-derivation parameters outside the accepted bounds."""


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    memory_kib: int
    iterations: int
    lanes: int = 1

    def __post_init__(self) -> None:
        checks = [
            (MIN_SALT <= len(self.salt) <= MAX_SALT, f"salt length {len(self.salt)}"),
            (MIN_MEMORY_KIB <= self.memory_kib <= MAX_MEMORY_KIB, f"memory {self.memory_kib} KiB"),
            (MIN_ITERATIONS <= self.iterations <= MAX_ITERATIONS, f"iterations {self.iterations}"),
            (MIN_LANES <= self.lanes <= MAX_LANES, f"lanes {self.lanes}"),
            # Argon2 needs at least 8 KiB per lane.
            (self.memory_kib >= 8 * self.lanes, "memory below 8 KiB per lane"),
        ]
        bad = [what for ok, what in checks if not ok]
        if bad:
            raise KdfParameterError(
                "The vault's key-derivation parameters are outside the accepted range ("
                + ", ".join(bad)
                + "). The file may have been altered; nothing was derived."
            )

    def derive(self, passphrase: str) -> bytes:
        # Imported here: the KDF is only needed at unlock, not at start-up.
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        return Argon2id(
            salt=self.salt,
            length=KEY_LENGTH,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(passphrase.encode("utf-8"))

    def to_dict(self) -> dict[str, object]:
        return {
            "algorithm": ALGORITHM,
            "salt": base64.b64encode(self.salt).decode("ascii"),
            "memory_kib": self.memory_kib,
            "iterations": self.iterations,
            "lanes": self.lanes,
        }

    @classmethod
    def from_dict(cls, data: object) -> KdfParams:
        if not isinstance(data, dict) or data.get("algorithm") != ALGORITHM:
            raise KdfParameterError("The vault names an unknown key-derivation algorithm.")
        try:
            salt = base64.b64decode(str(data["salt"]), validate=True)
            ints = [data["memory_kib"], data["iterations"], data["lanes"]]
        except (KeyError, ValueError) as exc:
            raise KdfParameterError(f"The vault's key-derivation parameters are unreadable ({exc}).") from exc
        if not all(type(i) is int for i in ints):
            raise KdfParameterError("The vault's key-derivation parameters must be whole numbers.")
        return cls(salt=salt, memory_kib=ints[0], iterations=ints[1], lanes=ints[2])


def calibrate(target_seconds: float = TARGET_SECONDS, memory_kib: int = DEFAULT_MEMORY_KIB) -> KdfParams:
    """Pick the pass count that makes one derivation take about ``target_seconds`` here.

    One pass is timed and the count scaled; memory stays fixed because memory
    hardness is what makes GPU guessing expensive.
    """
    probe = KdfParams(salt=os.urandom(16), memory_kib=memory_kib, iterations=1)
    start = time.perf_counter()
    probe.derive("calibration")
    one_pass = max(time.perf_counter() - start, 1e-3)
    iterations = int(round(target_seconds / one_pass))
    iterations = max(MIN_ITERATIONS, min(MAX_ITERATIONS, iterations))
    return KdfParams(salt=os.urandom(16), memory_kib=memory_kib, iterations=iterations)


def backoff_seconds(failures: int) -> float:
    """Wait imposed before the next unlock attempt after ``failures`` wrong ones.

    Grows 0, 1, 2, 4, 8 ... capped at 60 s: harmless for a typo, ruinous for
    guessing at the keyboard. Kept in memory only: a wrong passphrase writes
    nothing to disk.
    """
    if failures <= 0:
        return 0.0
    return float(min(2 ** (failures - 1), 60))
