"""What goes into one case's evidence bundle, gathered from the app's own
records (statements, recordings, stills, the audit log) into a
``CaseMaterial`` for ``bundle.write_bundle``. No Qt, no codec: the GUI's
worker runs it. Everything here is ciphertext already (recordings, stills)
or signed (PDFs), except the JSON lists, which carry IDs, times and hashes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audit.log import AuditEntry
from ..audit.merkle import MerkleTree
from ..recording.manifest import MANIFEST_FILE, START_FILE, check_segments, read_manifest
from ..vault.age import Identity
from .bundle import RESTRICTED_DIR, BundleFile, CaseMaterial
from .names import safe_id, safe_part


@dataclass(frozen=True)
class SignedStatement:
    id: str
    kind: str  # "witness" | "vps"
    version: int
    pdf: bytes
    rear_page: bytes | None


@dataclass(frozen=True)
class Still:
    id: str
    exhibit: str
    taken_at: str
    at_s: float | None
    file: Path
    ciphertext_sha256: str
    plaintext_sha256: str
    width: int
    height: int


WORKING_COPY = "working-copy.mp4.age"
CHAT = "chat.json.age"


def _decrypting(path: Path, identities: Sequence[Identity]) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        from ..vault.age import Decryptor

        with open(path, "rb") as fh:
            yield from Decryptor(fh, identities)

    return chunks


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=True).encode("ascii") + b"\n"


def gather(
    *, appointment_id: str, urn: str, officer: str, force: str,
    statements: Sequence[SignedStatement], recordings: Sequence[Path], identities: Sequence[Identity],
    stills: Sequence[Still], audit_entries: Sequence[AuditEntry], audit_leaves: Sequence[bytes],
    signed_checkpoint: dict[str, Any], certificate_pem: str, ca_pem: str,
    sign: Callable[[bytes], bytes], related_ids: set[str],
) -> CaseMaterial:
    """The bundle's files and manifest sections. ``audit_leaves``: every entry
    hash of the log up to the signed checkpoint (for the proofs);
    ``related_ids``: the object IDs whose audit entries belong to this case."""
    material = CaseMaterial(appointment_id=safe_id(appointment_id), urn=urn, officer=officer, force=force, sign=sign)
    files = material.files
    files.append(BundleFile("certs/officer.pem", "certificate", data=certificate_pem.encode("ascii")))
    files.append(BundleFile("certs/force-ca.pem", "certificate", data=ca_pem.encode("ascii")))

    listed_statements = []
    for st in statements:
        kind = "vps" if st.kind == "vps" else "statement"
        label = "VPS" if kind == "vps" else "MG11"
        path = f"statements/{safe_id(st.id)}-v{int(st.version)}-{label}.pdf"
        files.append(BundleFile(path, kind, data=st.pdf))
        entry = {"id": st.id, "kind": st.kind, "version": st.version, "path": path}
        if st.rear_page is not None:
            rear = f"{RESTRICTED_DIR}/{safe_id(st.id)}-v{int(st.version)}-rear-page.pdf"
            files.append(BundleFile(rear, "rear-page", data=st.rear_page))
            entry["rear_page"] = rear
        listed_statements.append(entry)
    if any(st.rear_page is not None for st in statements):
        files.append(BundleFile(f"{RESTRICTED_DIR}/README.txt", "readme", data=(
            b"RESTRICTED: the MG11 rear page holds the witness's contact details and other\n"
            b"information that is not for disclosure. Keep this folder out of any disclosure bundle.\n")))

    listed_recordings = []
    for folder in recordings:
        rid = safe_id(folder.name)
        manifest = read_manifest(folder, identities)
        problem = ""
        try:
            check_segments(folder, manifest)
        except Exception as exc:  # noqa: BLE001 - ManifestError and friends: exported as found, and said
            problem = str(exc)
        segs = []
        for seg in manifest.segments:
            path = f"recordings/{rid}/seg-{int(seg['index']):06d}.age"  # as the app names them, from the index
            if (folder / seg["file"]).is_file():
                files.append(BundleFile(path, "recording-segment", source=folder / seg["file"]))
            segs.append({"path": path, "index": seg["index"], "sha256": seg["ciphertext_sha256"],
                         "plaintext_sha256": seg.get("plaintext_sha256"), "complete": seg.get("complete", True)})
        for name, role in ((START_FILE, "recording-start"), (MANIFEST_FILE, "recording-manifest")):
            if (folder / name).is_file():
                files.append(BundleFile(f"recordings/{rid}/{name}", role, source=folder / name))
        # The working copy (plays in ordinary players) and the chat, made after the call by the media
        # process and kept encrypted on the laptop: decrypted here, as they are written into the bundle.
        extras: dict[str, str] = {}
        for name, out, role in ((WORKING_COPY, "working-copy.mp4", "working-copy"), (CHAT, "chat.json", "chat")):
            if (folder / name).is_file():
                path = f"recordings/{rid}/{out}"
                files.append(BundleFile(path, role, chunks=_decrypting(folder / name, identities),
                                        size_hint=(folder / name).stat().st_size))
                extras[role] = path
        listed_recordings.append({
            "id": rid, "finalised": manifest.finalised, "manifest_sha256": manifest.sha256,
            "started_at": manifest.data.get("started_at"), "duration_s": manifest.data.get("duration_s"),
            "segments": segs, **({"problem": problem} if problem else {}),
            "working_copy": extras.get("working-copy"), "chat": extras.get("chat"),
        })

    exhibits: list[dict[str, Any]] = []
    for still in stills:
        path = f"exhibits/{safe_part(still.exhibit, 20)}-{safe_id(still.id)}.png.age"
        files.append(BundleFile(path, "exhibit", source=still.file))
        exhibits.append({"exhibit": still.exhibit, "id": still.id, "path": path, "taken_at": still.taken_at,
                         "at_s": still.at_s, "sha256": still.ciphertext_sha256,
                         "plaintext_sha256": still.plaintext_sha256, "width": still.width, "height": still.height})
    files.append(BundleFile("exhibits/exhibit-list.json", "exhibit-list", data=_json({"exhibits": exhibits})))

    size = int(signed_checkpoint["size"])
    tree = MerkleTree(list(audit_leaves[:size]))
    extract: list[dict[str, Any]] = []
    for audited in audit_entries:
        if audited.object_id not in related_ids or audited.seq > size:
            continue
        proof = tree.inclusion_proof(audited.seq - 1, size)
        extract.append({"entry": audited.to_dict(), "proof": [base64.b64encode(p).decode("ascii") for p in proof]})
    files.append(BundleFile("audit/signed-checkpoint.json", "audit", data=_json(signed_checkpoint)))
    files.append(BundleFile("audit/entries.json", "audit", data=_json(
        {"tree_size": size, "count": len(extract), "entries": extract})))

    material.sections = {
        "statements": listed_statements, "recordings": listed_recordings, "exhibits": exhibits,
        "audit": {"checkpoint": "audit/signed-checkpoint.json", "entries": "audit/entries.json",
                  "entries_count": len(extract), "tree_size": size},
    }
    return material
