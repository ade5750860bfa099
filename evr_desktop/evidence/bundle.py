"""The evidence bundle for a case file (issue 12, item 3): a folder a
prosecutor, a defence expert or a court can check with standard tools and
without trusting this software.

Layout (every name from internal IDs and sanitised parts, ``names.py``)::

    EVR-<urn>-<appointment>-<UTC time>/
      README.txt                 what is here and how to check it
      manifest.json              every other file: path, role, size, SHA-256; the case's IDs
      manifest.json.p7s          CMS (PKCS #7) detached signature of manifest.json, officer's key
      SHA256SUMS                 `sha256sum -c SHA256SUMS` (every file but itself)
      certs/officer.pem          the signer's certificate
      certs/force-ca.pem         a copy of the force CA, for convenience only: trust your own copy
      statements/<id>-v<N>-<MG11|VPS>.pdf    signed PDFs, byte for byte as signed
      recordings/<recording id>/ recording.json, seg-NNNNNN.age..., manifest.json.age (still encrypted)
      exhibits/<ref>-<still id>.png.age      the stills, still encrypted
      exhibits/exhibit-list.json             exhibit references, times, hashes
      audit/signed-checkpoint.json           the audit log's checkpoint signed at export
      audit/entries.json                     the case's entries with Merkle inclusion proofs
      RESTRICTED-not-for-disclosure/<id>-v<N>-rear-page.pdf   the MG11 rear page, kept apart

Or, with ``as_zip``, one ``EVR-….zip`` holding that folder (``zip_folder``;
the verifier reads it in place).

Writing: everything goes into a hidden staging folder created fresh inside
the destination (``mkdir`` fails on anything already there, a planted link
included; files are created ``O_EXCL | O_NOFOLLOW`` and sources read
``O_NOFOLLOW``), each file fsynced, then the folder is renamed to its final
name, which must not exist (a new suffix if it does): nothing is ever
overwritten, and a cancelled or failed export removes its staging folder,
leaving nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from ..fsutil import fsync_dir
from .names import safe_id, safe_part

FORMAT = "evr-evidence-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.p7s"
SUMS = "SHA256SUMS"
RESTRICTED_DIR = "RESTRICTED-not-for-disclosure"
CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class ExportError(ValueError):
    """The export could not be made; nothing was left behind. The message is for the officer
    (a ``ValueError``: the UI shows its words as they are)."""


class ExportCancelled(ExportError):
    pass


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative, POSIX, built from safe parts only
    role: str
    source: Path | None = None  # copied from here...
    data: bytes | None = None  # ...or these bytes...
    chunks: Callable[[], Iterable[bytes]] | None = None  # ...or these (e.g. decrypted as they are read)
    size_hint: int = 0  # for the progress bar, with ``chunks``


@dataclass
class CaseMaterial:
    """Everything one export writes (gathered by ``services.Session.export_case``)."""

    appointment_id: str
    urn: str
    officer: str
    force: str
    files: list[BundleFile] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)  # recordings, statements, exhibits, audit
    sign: Callable[[bytes], bytes] | None = None  # manifest bytes -> DER CMS detached signature


def _check_relative(path: str) -> str:
    p = PurePosixPath(path)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts) or "\\" in path \
            or ":" in path:
        raise ValueError("a bundle path is not a plain relative path")
    return str(p)


def bundle_name(urn: str, appointment_id: str, when: datetime) -> str:
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"EVR-{safe_part(urn, 40, 'case')}-{safe_id(appointment_id)[:12]}-{stamp}"


def _destination(dest: Path) -> Path:
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        raise ExportError(f"The folder {dest} does not exist. Choose an existing folder.") from None
    except OSError as exc:
        raise ExportError(f"The folder {dest} cannot be used ({exc.strerror or exc}).") from None
    if stat.S_ISLNK(st.st_mode):
        raise ExportError(f"{dest} is a link to somewhere else, not a folder. Choose the real folder.")
    if not stat.S_ISDIR(st.st_mode):
        raise ExportError(f"{dest} is not a folder. Choose a folder to export into.")
    return dest


def _write_new(path: Path, chunks: Any, cancelled: Callable[[], bool],
               advance: Callable[[int], None]) -> tuple[str, int]:
    """Create ``path`` (never existing, never through a link), write, fsync; SHA-256 and size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o600)
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in chunks:
            if cancelled():
                raise ExportCancelled("The export was cancelled; nothing was left behind.")
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            digest.update(chunk)
            size += len(chunk)
            advance(len(chunk))
        os.fsync(fd)
    finally:
        os.close(fd)
    return digest.hexdigest(), size


def _read_chunks(source: Path) -> Any:
    fd = os.open(source, os.O_RDONLY | _NOFOLLOW | _BINARY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ExportError("A file to export is not an ordinary file; nothing was exported.")
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        os.close(fd)


README = """EVR Desktop evidence bundle ({format})

Case: appointment {appointment}, exported {created} by {officer} ({force}).

What is here: see manifest.json (every file, its role, size and SHA-256).
Recordings and stills are still encrypted (age format) to the force's
evidence (escrow) key and the officer's key; decrypt them with the standard
`age` tool: age -d -i ESCROW_IDENTITY FILE.age > FILE. The folder
{restricted} holds the MG11 restricted rear page: keep it out of anything
meant for disclosure.

How to check it without this software:
  sha256sum -c SHA256SUMS
  openssl cms -verify -binary -inform DER -in manifest.json.p7s \\
      -content manifest.json -CAfile YOUR-COPY-OF-THE-FORCE-CA.pem -purpose any -out /dev/null
  pdfsig statements/*.pdf
With this software: evr-desktop evidence verify --ca YOUR-COPY-OF-THE-FORCE-CA.pem THIS-FOLDER
"""


def write_bundle(material: CaseMaterial, destination: str | os.PathLike[str], *,
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 now: datetime | None = None, as_zip: bool = False) -> Path:
    """Write the bundle into ``destination`` (an existing folder) and return
    its path: the folder, or with ``as_zip`` one ``.zip`` file holding it
    (``zip_folder``). Raises ``ExportError`` (``ExportCancelled``) with nothing
    left behind."""
    if material.sign is None:
        raise ValueError("a bundle is signed")
    is_cancelled = cancelled or (lambda: False)
    dest = _destination(Path(destination))
    when = now or datetime.now(timezone.utc)
    name = bundle_name(material.urn, material.appointment_id, when)
    total = sum((f.source.stat().st_size if f.source is not None else f.size_hint if f.chunks is not None
                 else len(f.data or b"")) for f in material.files)
    if as_zip:
        total *= 2  # every byte is written twice: into the folder, then into the zip
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(min(done, total), total)

    staging = dest / f".{name}.partial-{secrets.token_hex(4)}"
    try:
        os.mkdir(staging, 0o700)
    except FileExistsError:
        raise ExportError("Something is already in the way in that folder; nothing was exported.") from None
    except OSError as exc:
        raise ExportError(f"The folder {dest} cannot be written ({exc.strerror or exc}); nothing was exported.") \
            from None
    try:
        entries: list[dict[str, Any]] = []
        made: set[str] = set()
        for f in material.files:
            rel = _check_relative(f.path)
            if rel in made or rel in (MANIFEST, SIGNATURE, SUMS):
                raise ValueError("two files in a bundle with one name")
            made.add(rel)
            target = staging / rel
            # inside the staging folder made just now, owner-only: nothing else is in it
            os.makedirs(target.parent, mode=0o700, exist_ok=True)
            if f.source is not None:
                chunks: Iterable[bytes] = _read_chunks(f.source)
            elif f.chunks is not None:
                chunks = f.chunks()
            else:
                chunks = [f.data or b""]
            digest, size = _write_new(target, chunks, is_cancelled, advance)
            entries.append({"path": rel, "role": f.role, "size": size, "sha256": digest})
        if progress is not None and not as_zip:
            progress(total, total)  # a decrypted file is a little smaller than its size hint
        manifest = {
            "format": FORMAT,
            "created": when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "case": {"appointment": material.appointment_id, "urn": material.urn,
                     "officer": material.officer, "force": material.force},
            "files": sorted(entries, key=lambda e: e["path"]),
            **material.sections,
        }
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=True).encode("ascii") + b"\n"
        sums: dict[str, str] = {e["path"]: e["sha256"] for e in entries}
        sums[MANIFEST] = _write_new(staging / MANIFEST, [manifest_bytes], is_cancelled, lambda n: None)[0]
        sums[SIGNATURE] = _write_new(staging / SIGNATURE, [material.sign(manifest_bytes)], is_cancelled,
                                     lambda n: None)[0]
        lines = "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items()))
        _write_new(staging / SUMS, [lines.encode("ascii")], is_cancelled, lambda n: None)
        for folder in sorted({p for p in staging.rglob("*") if p.is_dir()} | {staging}, key=lambda p: -len(p.parts)):
            fsync_dir(folder)
        if is_cancelled():
            raise ExportCancelled("The export was cancelled; nothing was left behind.")
        if as_zip:
            done = max(done, total // 2)  # never backwards: the bar goes on from where the folder left it
            zipped = zip_folder(staging, dest, name, when, is_cancelled, advance)
            shutil.rmtree(staging, ignore_errors=True)  # the zip holds it now
            if progress is not None:
                progress(total, total)
            return zipped
        final = dest / name
        n = 2
        while os.path.lexists(final):
            final = dest / f"{name}-{n}"
            n += 1
        os.rename(staging, final)  # Windows refuses an existing target; the loop above covers POSIX
        fsync_dir(dest)
        return final
    except ExportError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"The export could not be written ({exc.strerror or exc}); nothing was left behind.") \
            from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def cms_signer(certificate_pem: str, key_pem: str, chain_pem: tuple[str, ...] = ()) -> Callable[[bytes], bytes]:
    """A detached CMS (PKCS #7) signature over the manifest's bytes, by the
    officer's key, with the officer's certificate (and chain) embedded:
    ``openssl cms -verify -binary -inform DER ... -content manifest.json`` checks it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    extra = [x509.load_pem_x509_certificate(p.encode("ascii")) for p in chain_pem]

    def sign(data: bytes) -> bytes:
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())  # type: ignore[arg-type]
        for c in extra:
            builder = builder.add_certificate(c)
        return builder.sign(serialization.Encoding.DER,
                            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])

    return sign


def readme(material: CaseMaterial, when: datetime) -> bytes:
    return README.format(format=FORMAT, appointment=material.appointment_id,
                         created=when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         officer=material.officer, force=material.force, restricted=RESTRICTED_DIR).encode("utf-8")


def zip_folder(folder: Path, dest: Path, name: str, when: datetime, cancelled: Callable[[], bool],
               advance: Callable[[int], None]) -> Path:
    """The finished bundle ``folder`` as one zip in ``dest``: every file stored
    (not compressed: the media, the PDFs and the age files do not shrink, and a
    stored member is the file's bytes as they are) under ``name/``, with the
    export's time and owner-only permissions, files in sorted order; so
    ``unzip`` gives back the folder, on which ``sha256sum -c`` and the rest
    work as on an exported folder. Written to a fresh hidden file, fsynced,
    then linked to ``name.zip`` (a hard link fails rather than replace
    anything: a new suffix if the name is taken) and the hidden name removed.
    Raises ``ExportCancelled`` / ``OSError``; the caller removes ``folder``."""
    import zipfile

    stamp = when.astimezone(timezone.utc)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    partial = dest / f".{name}.zip.partial-{secrets.token_hex(4)}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                files = sorted((p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()),
                               key=lambda p: p.relative_to(folder).as_posix())
                for path in files:
                    info = zipfile.ZipInfo(f"{name}/{path.relative_to(folder).as_posix()}", date_time)
                    info.compress_type = zipfile.ZIP_STORED
                    info.external_attr = (stat.S_IFREG | 0o600) << 16
                    size = path.stat().st_size
                    with zf.open(info, "w", force_zip64=size >= (1 << 31)) as member:
                        for chunk in _read_chunks(path):
                            if cancelled():
                                raise ExportCancelled("The export was cancelled; nothing was left behind.")
                            member.write(chunk)
                            advance(len(chunk))
            raw.flush()
            os.fsync(raw.fileno())
        final = dest / f"{name}.zip"
        n = 2
        while True:
            try:
                os.link(partial, final)  # never replaces: fails if the name is taken
                break
            except FileExistsError:
                final = dest / f"{name}-{n}.zip"
                n += 1
        os.unlink(partial)
        fsync_dir(dest)
        return final
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise
