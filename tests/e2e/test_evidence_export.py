"""The evidence bundle (issue 12, items 3-4), end to end on a real session: a
signed MG11 with its rear page, a real recording (the Recorder fed real VP8
and Opus) and a still, exported; then the standard tools check it without
this software (`sha256sum -c`, `openssl cms -verify`, `pdfsig`, `age -d`
with the escrow identity), and `evr-desktop evidence verify` passes. Each
tampering then fails the verifier, which names the cause."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from evr_desktop.__main__ import main
from evr_desktop.domain.appointment import Happening
from evr_desktop.evidence.bundle import RESTRICTED_DIR, ExportCancelled, ExportError
from evr_desktop.evidence.verify import verify_bundle
from evr_desktop.recording.player import segment_keys
from evr_desktop.recording.recorder import Recorder
from evr_desktop.recording.stills import capture_still
from evr_desktop.recording.working_copy import write_working_copy
from evr_desktop.statement.pdf import render_statement
from tests.e2e.test_statement_scripts import OFFICER as SCRIPT_OFFICER
from tests.e2e.test_statement_scripts import TEMPLATES, _complete, _signature
from tests.recording_media import call_frames
from tests.unit.test_domain import make

pytestmark = pytest.mark.slow


def _case(session, tmp: Path):
    """An appointment with a signed statement, a two-second recording and one still."""
    from evr_desktop.media.channel import STILL_RESULT_FIELDS

    a = session.save_appointment(make(), new=True)
    for happening in (Happening.LINK_SENT, Happening.VICTIM_ARRIVED, Happening.CALL_CONNECTED):
        session.record(a.id, happening)
    folder = session.recordings / a.id / "rec0001"
    folder.parent.mkdir(parents=True)
    frames = call_frames(2.0)
    now = [frames[0].monotonic]
    rec = Recorder(folder, officer_recipient=session.vault.header.age_recipient,
                   escrow_recipient=session.vault.header.escrow_recipient, session=a.id, clock=lambda: now[0],
                   fsync=False)
    for f in frames:
        now[0] = f.monotonic
        rec(f)
        if f is frames[len(frames) // 2]:
            rec.add_chat("victim", "It happened by the bus stop", at=f.monotonic)
    ref = session.begin_still(a.id)
    frame = np.zeros((240, 320, 4), np.uint8)
    frame[:, :, 2] = 200
    frame[:, :, 3] = 255
    result = capture_still(rec, frame, exhibit=str(ref), appointment=a.id)
    session.record_still(a.id, ref, {k: getattr(result, k) for k in STILL_RESULT_FIELDS})
    rec.close("call ended")
    statements = session.statements
    opened = statements.open_for_appointment(a.id)
    statements.sign(opened.id, _complete("He pushed me against the door and ran off.", "Ann EXAMPLE"), _signature())
    return a


def _new_session(profile: Path):
    """A fresh officer's session in ``profile`` (a test's own), no demo data."""
    from evr_desktop.config import Paths
    from evr_desktop.services import Workspace
    from tests.conftest import OFFICER, PASSPHRASE, fast_kdf

    workspace = Workspace(Paths(profile=profile, demo=True), make_kdf=fast_kdf)
    workspace.start()
    return workspace.create(OFFICER, PASSPHRASE, with_demo_data=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export for the whole module (it signs a PDF and writes a recording): the bundle,
    the force CA file and the escrow identity file, as the evidence office holds them."""
    from evr_desktop.config import Paths
    from evr_desktop.services import Workspace
    from tests.conftest import OFFICER, PASSPHRASE, fast_kdf

    tmp = tmp_path_factory.mktemp("export")
    paths = Paths(profile=tmp / "profile", demo=True)
    workspace = Workspace(paths, make_kdf=fast_kdf)
    workspace.start()
    session = workspace.create(OFFICER, PASSPHRASE, with_demo_data=False)
    a = _case(session, tmp)
    # The working copy, made as the media process makes it after the call (from file keys only).
    for plan, recipients in session.working_copy_jobs(a.id):
        write_working_copy(plan.folder, segment_keys([seg.message() for seg in plan.segments]), recipients)
    assert session.working_copy_jobs(a.id) == []  # made once
    dest = tmp / "case-file"
    dest.mkdir()
    seen: list[tuple[int, int]] = []
    bundle = session.export_case(a.id, dest, progress=lambda done, total: seen.append((done, total)))
    from evr_desktop.domain.appointment import Status

    assert session.store.get(a.id).status is Status.EXPORTED
    session.lock()
    office = paths.evidence_office
    return {"bundle": bundle, "ca": office / "demo-force-ca.pem", "escrow": office / "escrow-identity-DEMO.txt",
            "progress": seen, "dest": dest, "session": session, "appointment": a, "workspace": workspace}


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_standard_tools_and_the_verifier_accept_the_bundle(exported, capsys):
    bundle, ca = exported["bundle"], exported["ca"]
    assert bundle.parent == exported["dest"] and bundle.name.startswith("EVR-")
    assert [p.name for p in exported["dest"].iterdir()] == [bundle.name]  # no staging left
    done, total = exported["progress"][-1]
    assert done == total > 0
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert "manifest.json" in names and "manifest.json.p7s" in names and "SHA256SUMS" in names
    assert any(n.startswith("statements/") and n.endswith("-MG11.pdf") for n in names)
    assert any(n.startswith(RESTRICTED_DIR + "/") and n.endswith("-rear-page.pdf") for n in names)
    segments = [n for n in names if n.startswith("recordings/") and n.endswith(".age") and "/seg-" in n]
    assert segments and any(n.startswith("exhibits/") and n.endswith(".png.age") for n in names), names

    sums = _run("sha256sum", "-c", "--strict", "SHA256SUMS", cwd=bundle)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    cms = _run("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "manifest.json.p7s",
               "-content", "manifest.json", "-CAfile", str(ca), "-purpose", "any", "-out", os.devnull, cwd=bundle)
    assert cms.returncode == 0 and "Verification successful" in cms.stderr, cms.stderr
    for pdf in [n for n in names if n.endswith(".pdf")]:
        sig = _run("pdfsig", str(bundle / pdf))
        assert sig.returncode == 0 and "Signature is Valid" in sig.stdout, (pdf, sig.stdout)
    plain = b""
    for seg in sorted(segments):  # the escrow identity alone opens every segment
        out = subprocess.run(["age", "-d", "-i", str(exported["escrow"]), str(bundle / seg)], capture_output=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        plain += out.stdout
    assert plain[:4] == b"\x1a\x45\xdf\xa3"  # Matroska
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                            "-i", "pipe:0"], input=plain, capture_output=True, timeout=60)
    assert probe.returncode == 0 and b"vp8" in probe.stdout and b"opus" in probe.stdout
    still = [n for n in names if n.endswith(".png.age")][0]
    png = subprocess.run(["age", "-d", "-i", str(exported["escrow"]), str(bundle / still)], capture_output=True)
    assert png.returncode == 0 and png.stdout[:8] == b"\x89PNG\r\n\x1a\n"

    # The working copy plays in ordinary players: H.264 and AAC in MP4, both sides side by side,
    # as long as the recording; the chat is listed with its time.
    copy = next(bundle.glob("recordings/*/working-copy.mp4"))
    probe = json.loads(_run("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,channels"
                            ":format=duration,format_name", "-of", "json", str(copy)).stdout)
    assert [s["codec_name"] for s in probe["streams"]] == ["h264", "aac"] and probe["streams"][0]["width"] == 960
    assert "mp4" in probe["format"]["format_name"] and 1.5 < float(probe["format"]["duration"]) < 3.0
    chat = json.loads(next(bundle.glob("recordings/*/chat.json")).read_text())["chat"]
    assert [c["text"] for c in chat] == ["Victim: It happened by the bus stop"] and 0.5 < chat[0]["at_s"] < 1.5
    assert main(["evidence", "verify", "--ca", str(ca), str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "Result: OK" in out and "NOT anchored" not in out
    assert main(["evidence", "verify", "--json", "--ca", str(ca), str(bundle)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["checked"]["audit entries"] > 3 and report["checked"]["signed PDFs"] == 2
    # With the escrow identity, every segment and still is also decrypted and checked
    # against its recorded plaintext hash; another identity opens nothing.
    assert main(["evidence", "verify", "--json", "--ca", str(ca), "-i", str(exported["escrow"]), str(bundle)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked"]["files decrypted"] == len(segments) + 1
    stranger = exported["dest"].parent / "stranger.txt"
    from evr_desktop.vault.age import X25519Identity

    stranger.write_text(X25519Identity.generate().to_string() + "\n")
    assert main(["evidence", "verify", "--ca", str(ca), "-i", str(stranger), str(bundle)]) == 1
    assert "does not decrypt with the identity given" in capsys.readouterr().out
    # Without a CA of one's own: still checked, but said not to be anchored.
    assert main(["evidence", "verify", str(bundle)]) == 0
    assert "NOT anchored" in capsys.readouterr().out
    # the manifest names no victim
    manifest = (bundle / "manifest.json").read_text()
    assert exported["appointment"].victim.full_name not in manifest


def _copy(exported, tmp_path: Path) -> Path:
    target = tmp_path / exported["bundle"].name
    shutil.copytree(exported["bundle"], target, symlinks=True)
    return target


def _problems(bundle: Path, ca: Path) -> list[str]:
    report = verify_bundle(bundle, ca.read_bytes())
    assert not report.ok
    return report.problems


def test_one_byte_changed_in_any_file_is_named(exported, tmp_path):
    original = exported["bundle"]
    for path in sorted(p for p in original.rglob("*") if p.is_file()):
        rel = path.relative_to(original).as_posix()
        copy = _copy(exported, tmp_path / rel.replace("/", "_"))
        target = copy / rel
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        problems = _problems(copy, exported["ca"])
        assert any(rel in p for p in problems) or rel in ("manifest.json", "manifest.json.p7s") and problems, \
            (rel, problems)
        shutil.rmtree(copy)


def test_a_file_removed_or_added_is_named(exported, tmp_path):
    copy = _copy(exported, tmp_path / "removed")
    victim = next(p for p in (copy / "recordings").rglob("seg-*.age"))
    rel = victim.relative_to(copy).as_posix()
    victim.unlink()
    assert any(rel in p and "missing" in p for p in _problems(copy, exported["ca"]))
    copy = _copy(exported, tmp_path / "added")
    (copy / "statements" / "extra.pdf").write_bytes(b"%PDF-1.7 planted")
    assert any("statements/extra.pdf" in p and "added" in p for p in _problems(copy, exported["ca"]))


def test_the_manifest_edited_is_named(exported, tmp_path):
    copy = _copy(exported, tmp_path / "manifest")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["case"]["officer"] = "XX 0000"
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    problems = _problems(copy, exported["ca"])
    assert any("manifest.json does not match its signature" in p for p in problems), problems


def _edit_audit(copy: Path, change) -> None:  # noqa: ANN001
    path = copy / "audit" / "entries.json"
    data = json.loads(path.read_text())
    change(data, copy)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def test_an_audit_entry_edited_is_named(exported, tmp_path):
    copy = _copy(exported, tmp_path / "entry")

    def edit(data, _copy):  # noqa: ANN001
        data["entries"][1]["entry"]["action"] = "appointment.delete"

    _edit_audit(copy, edit)
    seq = json.loads((copy / "audit" / "entries.json").read_text())["entries"][1]["entry"]["seq"]
    problems = _problems(copy, exported["ca"])
    assert any(f"audit entry {seq}: edited" in p for p in problems), problems


def test_the_audit_tail_deleted_with_the_checkpoint_recomputed_is_named(exported, tmp_path):
    from evr_desktop.audit.log import canonical_json
    from evr_desktop.audit.merkle import MerkleTree

    copy = _copy(exported, tmp_path / "tail")
    entries = json.loads((copy / "audit" / "entries.json").read_text())
    last = entries["entries"][-1]["entry"]["seq"]
    # cut the last entry, and redo the checkpoint (size and root) for the shorter log
    log = exported["workspace"].paths.audit / "audit.log"
    hashes = [bytes.fromhex(json.loads(x)["hash"]) for x in log.read_bytes().splitlines()][: last - 1]
    cp_path = copy / "audit" / "signed-checkpoint.json"
    cp = json.loads(cp_path.read_text())
    cp.update(size=last - 1, head=hashes[-1].hex(), root=MerkleTree(hashes).root().hex())
    cp_path.write_bytes(canonical_json(cp) + b"\n")

    def cut(data, _copy):  # noqa: ANN001
        data["entries"] = data["entries"][:-1]
        data["count"] -= 1
        data["tree_size"] = last - 1

    _edit_audit(copy, cut)
    problems = _problems(copy, exported["ca"])
    assert any("the audit checkpoint: its signature does not verify" in p for p in problems), problems


def test_a_statement_re_signed_with_another_certificate_is_named(exported, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    from evr_desktop.domain.officer import OfficerIdentity
    from evr_desktop.statement.signing import sign_statement
    from evr_desktop.vault import pki

    copy = _copy(exported, tmp_path / "resigned")
    pdf = next((copy / "statements").glob("*-MG11.pdf"))
    ca_key, ca_cert = pki.make_demo_ca("Elsewhere Police")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue_officer_certificate(ca_key, ca_cert, OfficerIdentity(
        "PC Other Impostor", "XX 1", "Elsewhere Police", "Othertown"), key)
    unsigned = render_statement(_complete("He pushed me against the door and ran off.", "Ann EXAMPLE"), TEMPLATES,
                                SCRIPT_OFFICER)
    pdf.write_bytes(sign_statement(unsigned, signing_key_pem=pki.key_pem(key), certificate_pem=pki.cert_pem(cert),
                                   chain_pem=(pki.cert_pem(ca_cert),), location="Othertown",
                                   signer_name="PC Other Impostor (XX 1)"))
    problems = _problems(copy, exported["ca"])
    rel = pdf.relative_to(copy).as_posix()
    assert any(rel in p and "signature does not verify against the force CA" in p for p in problems), problems


def test_a_cancelled_or_failed_export_leaves_nothing_and_nothing_to_export_is_refused(tmp_path):
    from evr_desktop.domain.errors import Refused

    session = _new_session(tmp_path / "profile")
    empty = session.save_appointment(make(), new=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(Refused, match="nothing to export"):
        session.export_case(empty.id, dest)
    a = _case(session, tmp_path)
    with pytest.raises(ExportCancelled):
        session.export_case(a.id, dest, cancelled=lambda: True)
    assert list(dest.iterdir()) == []
    with pytest.raises(ExportError, match="does not exist"):
        session.export_case(a.id, tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        session.export_case(a.id, tmp_path / "a-file")
    link = tmp_path / "link-to-dest"
    link.symlink_to(dest)
    with pytest.raises(ExportError, match="link"):
        session.export_case(a.id, link)
    assert list(dest.iterdir()) == []
    session.lock()


def test_a_decrypted_copy_only_where_allowed_with_a_reason_and_removal_after_a_verified_export(tmp_path):
    from dataclasses import replace

    from evr_desktop.domain.errors import Refused

    session = _new_session(tmp_path / "profile")
    a = _case(session, tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(Refused, match="do not allow a decrypted copy"):
        session.export_case(a.id, dest, decrypted_reason="The CPS asked for it")
    session.settings = replace(session.settings, allow_decrypted_export=True, allow_remove_after_export=False)
    with pytest.raises(Refused, match="Give the reason"):
        session.export_case(a.id, dest, decrypted_reason="  ")
    assert list(dest.iterdir()) == []
    bundle = session.export_case(a.id, dest, decrypted_reason="The CPS asked for a copy to play in court")
    copy = next(bundle.glob("recordings/*/decrypted-original.mkv"))
    folder = next((session.recordings / a.id).iterdir())
    from evr_desktop.recording.manifest import iter_recording
    from evr_desktop.vault.age import X25519Identity

    assert copy.read_bytes() == b"".join(iter_recording(folder, [X25519Identity.from_string(
        session.vault.age_identity)]))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["decrypted_copy"]["reason"] == "The CPS asked for a copy to play in court"
    assert verify_bundle(bundle, session.vault.header.force_ca_pem.encode()).ok
    actions = [e.action for e in session.audit.entries() if e.object_id == a.id]
    assert "evidence.export_decrypted_copy" in actions

    # Removing the laptop's copy: only where allowed, only when the bundle holds it all.
    with pytest.raises(Refused, match="keep the laptop's copy"):
        session.remove_exported_recordings(a.id, bundle)
    session.settings = replace(session.settings, allow_remove_after_export=True)
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    seg = next(tampered.glob("recordings/*/seg-*.age"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))  # always a change (a last byte of 0 stayed 0)
    with pytest.raises(Refused, match="does not match"):
        session.remove_exported_recordings(a.id, tampered)
    assert folder.is_dir()
    assert session.remove_exported_recordings(a.id, bundle) == 1
    assert not folder.exists()
    assert any(e.action.startswith("recording.removed_after_export.") and e.category == "erasure"
               for e in session.audit.entries() if e.object_id == a.id)
    session.lock()


def _rezip(source: Path, target: Path, change) -> None:  # noqa: ANN001
    """A copy of the zip ``source`` with ``change(name, data) -> [(name, data), ...]`` applied to each member."""
    import zipfile

    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            for name, data in change(info.filename, zin.read(info)):
                zout.writestr(name, data)


def test_a_zip_bundle_verifies_in_place_unzips_to_a_folder_the_tools_accept_and_tampering_is_named(tmp_path):
    """The same bundle as one zip (issue 12: "a folder, or a zip"): written
    without ever leaving a partial zip or the staging folder, verified where
    it lies (nothing extracted), ``unzip`` gives the folder that ``sha256sum
    -c`` accepts, and a changed member, an added one, a name that climbs out
    (``../``), an absolute name and a symbolic link are each named. The
    laptop's copy may be removed against a zip too."""
    import stat as stat_module
    import zipfile
    from dataclasses import replace

    session = _new_session(tmp_path / "profile")
    a = _case(session, tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    ca = session.vault.header.force_ca_pem.encode()
    # cancelled while zipping: nothing left, neither the folder nor a partial zip
    calls = [0]

    def late_cancel() -> bool:
        calls[0] += 1
        return calls[0] > 12

    with pytest.raises(ExportCancelled):
        session.export_case(a.id, dest, cancelled=late_cancel, as_zip=True)
    assert list(dest.iterdir()) == []
    seen: list[tuple[int, int]] = []
    zipped = session.export_case(a.id, dest, as_zip=True, progress=lambda done, total: seen.append((done, total)))
    assert zipped.suffix == ".zip" and zipped.is_file() and list(dest.iterdir()) == [zipped]
    assert seen[-1][0] == seen[-1][1] and all(x[0] <= y[0] for x, y in zip(seen, seen[1:], strict=False))
    assert stat_module.S_IMODE(zipped.stat().st_mode) == 0o600
    from evr_desktop.vault.age import X25519Identity

    # -i: every segment and still decrypted from its zip member, authenticated, against its plaintext hash
    report = verify_bundle(zipped, ca, [X25519Identity.from_string(session.vault.age_identity)])
    assert report.ok and report.anchored, report.problems
    assert report.checked["signed PDFs"] >= 2 and report.checked["recording segments"] >= 1
    assert report.checked["files decrypted"] == report.checked["recording segments"] + 1  # and the still
    assert main(["evidence", "verify", str(zipped)]) == 0  # the CLI takes the zip as it is
    # A second export never replaces the first.
    again = session.export_case(a.id, dest, as_zip=True)
    # Never over the first: the same name gets "-2"; a second later the stamp differs anyway.
    assert again != zipped and zipped.is_file() and again.is_file()
    assert again.name.endswith("-2.zip") or again.name[:-4] != zipped.name[:-4]
    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    top = names[0].split("/")[0]
    assert all(n.startswith(top + "/") for n in names) and f"{top}/SHA256SUMS" in names
    assert any(n.startswith(f"{top}/{RESTRICTED_DIR}/") for n in names)
    # The standard tools, after unzip, as a case-file system would.
    out = tmp_path / "unzipped"
    done = _run("unzip", "-q", str(zipped), "-d", str(out))
    assert done.returncode == 0, done.stderr
    sums = _run("sha256sum", "-c", "--quiet", "SHA256SUMS", cwd=out / top)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert verify_bundle(out / top, ca).ok
    shutil.rmtree(out)

    member = next(n for n in names if "/recordings/" in n and n.endswith(".age"))
    rel = member.split("/", 1)[1]

    def flipped(name: str, data: bytes):  # noqa: ANN202
        if name == member:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return [(name, data)]

    cases = {
        "changed": (flipped, rel),
        "added": (lambda n, d: [(n, d)] + ([(f"{top}/statements/extra.pdf", b"%PDF planted")]
                                           if n == f"{top}/README.txt" else []), "statements/extra.pdf"),
        "climbs out": (lambda n, d: [(n, d)] + ([("../../outside.txt", b"x")] if n == f"{top}/README.txt" else []),
                       "outside.txt"),
        "absolute": (lambda n, d: [(n, d)] + ([("/etc/evr-planted", b"x")] if n == f"{top}/README.txt" else []),
                     "/etc/evr-planted"),
    }
    for what, (change, named) in cases.items():
        bad = tmp_path / f"bad-{what.replace(' ', '-')}.zip"
        _rezip(zipped, bad, change)
        problems = verify_bundle(bad, ca).problems
        assert any(named in p for p in problems), (what, problems)
    # a member that is a symbolic link
    link_zip = tmp_path / "link.zip"
    shutil.copy(zipped, link_zip)
    with zipfile.ZipFile(link_zip, "a") as zf:
        info = zipfile.ZipInfo(f"{top}/statements/link.pdf")
        info.external_attr = (stat_module.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    assert any("link.pdf" in p and "symbolic link" in p for p in verify_bundle(link_zip, ca).problems)
    # not a zip at all, and a zip cut short
    (tmp_path / "not.zip").write_bytes(b"PK\x03\x04 nonsense")
    assert not verify_bundle(tmp_path / "not.zip", ca).ok
    cut = tmp_path / "cut.zip"
    cut.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    assert not verify_bundle(cut, ca).ok
    assert not (tmp_path / "outside.txt").exists() and not Path("/etc/evr-planted").exists()

    # Removing the laptop's copy against the zip: refused for a tampered one, done for the real one.
    session.settings = replace(session.settings, allow_remove_after_export=True)
    from evr_desktop.domain.errors import Refused

    with pytest.raises(Refused, match="does not match"):
        session.remove_exported_recordings(a.id, tmp_path / "bad-changed.zip")
    assert session.remove_exported_recordings(a.id, zipped) == 1
    session.lock()
