"""``evr-desktop evidence decrypt`` and ``evidence recover``, for the evidence team.

Exit codes: 0 done; 3 done but the recording or segment is UNFINALISED (a
crash or a write error cut it short: what was written is the authenticated
part only); 1 refused (wrong key, damaged or tampered data, a missing or
reordered segment: the message names it); 2 unreadable input or arguments.
Output is written beside OUT and renamed into place only when everything
authenticated, so a refused file never leaves partial plaintext behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from ..vault.age import AgeError, Decryptor, Identity, X25519Identity, decrypt_prefix
from .manifest import MANIFEST_FILE, START_FILE, ManifestError, iter_recording, read_manifest
from .recover import recover

EXIT_OK, EXIT_REFUSED, EXIT_INPUT, EXIT_UNFINALISED = 0, 1, 2, 3


def load_identities(paths: Iterable[str]) -> list[Identity]:
    """age identity files: one AGE-SECRET-KEY-1... per line, # comments."""
    out: list[Identity] = []
    for p in paths:
        for line in Path(p).read_text("utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(X25519Identity.from_string(line))
    if not out:
        raise ValueError("no identity found in the identity file(s)")
    return out


def _err(msg: str) -> None:
    print(f"evr-desktop evidence: {msg}", file=sys.stderr)


def _write_out(out: str, chunks: Iterable[bytes]) -> int:
    """Stream ``chunks`` to ``out`` (``-`` is stdout) via a temp file; return bytes."""
    total = 0
    if out == "-":
        for c in chunks:
            sys.stdout.buffer.write(c)
            total += len(c)
        sys.stdout.buffer.flush()
        return total
    target = Path(out)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.",
                               suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            for c in chunks:
                fh.write(c)
                total += len(c)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return total


def _stream(fh: BinaryIO, identities: list[Identity]) -> Iterable[bytes]:
    yield from Decryptor(fh, identities)


def _refusals(run: Callable[[list[Identity], Path], int], identity_files: list[str], path: str) -> int:
    """Run a command on ``path`` with the identities read, turning what the
    evidence team can meet (a bad identity, a refused manifest or chunk, a
    file that cannot be read) into a message and an exit code."""
    try:
        identities = load_identities(identity_files)
    except (OSError, ValueError) as exc:
        _err(f"cannot read the identity: {exc}")
        return EXIT_INPUT
    src = Path(path)
    try:
        return run(identities, src)
    except ManifestError as exc:
        _err(str(exc))
        return EXIT_REFUSED
    except AgeError as exc:
        _err(f"{src}: {exc}")
        return EXIT_REFUSED
    except OSError as exc:
        _err(str(exc))
        return EXIT_INPUT


def run_decrypt(identity_files: list[str], path: str, out: str) -> int:
    return _refusals(lambda identities, src: _decrypt(identities, src, out), identity_files, path)


def _decrypt(identities: list[Identity], src: Path, out: str) -> int:
    if src.is_dir():
        if not (src / MANIFEST_FILE).exists():
            if (src / START_FILE).exists():
                _err("this recording was never closed (no manifest): run `evidence recover` on the folder first")
                return EXIT_REFUSED
            _err(f"{src} is not a recording folder")
            return EXIT_INPUT
        manifest = read_manifest(src, identities)
        n = _write_out(out, iter_recording(src, identities))
        print(f"decrypted {len(manifest.segments)} segment(s), {n} bytes; manifest SHA-256 {manifest.sha256}",
              file=sys.stderr)
        if not manifest.finalised:
            _err(f"UNFINALISED recording: {manifest.data.get('reason')}")
            return EXIT_UNFINALISED
        return EXIT_OK
    with open(src, "rb") as fh:
        _write_out(out, _stream(fh, identities))
    return EXIT_OK


def run_recover(identity_files: list[str], path: str, out: str | None) -> int:
    return _refusals(lambda identities, src: _recover(identities, src, identity_files, out), identity_files, path)


def _recover(identities: list[Identity], src: Path, identity_files: list[str], out: str | None) -> int:
    if src.is_dir():
        if not (src / MANIFEST_FILE).exists():
            result = recover(src, identities)
            print(f"recovered {result.segments} segment(s) ({result.complete} complete, "
                  f"{result.recovered_bytes} bytes from the unfinished one); "
                  f"manifest SHA-256 {result.manifest_sha256}", file=sys.stderr)
            for p in result.problems:
                _err(p)
        if out:
            return run_decrypt(identity_files, str(src), out)
        return EXIT_UNFINALISED if not read_manifest(src, identities).finalised else EXIT_OK
    with open(src, "rb") as fh:
        plain, finalised = decrypt_prefix(fh, identities)
    if out:
        _write_out(out, [plain])
    if finalised:
        print(f"{src.name}: complete ({len(plain)} bytes)", file=sys.stderr)
        return EXIT_OK
    _err(f"{src.name}: UNFINALISED: {len(plain)} bytes authenticated; the unfinished tail was dropped")
    return EXIT_UNFINALISED
