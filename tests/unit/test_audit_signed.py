"""Signed audit checkpoints and Merkle inclusion proofs (issue 12, item 2):
cutting the log's tail and recomputing its checkpoint, undetected before,
now fails `audit verify`; so does an edited entry with every hash redone, an
edited or removed signed checkpoint, and one signed outside the force CA."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from cryptography import x509

from evr_desktop.__main__ import main
from evr_desktop.audit.log import CHECKPOINT_NAME, LOG_NAME, canonical_json, entry_hash, merkle_root, verify
from evr_desktop.audit.merkle import MerkleTree, verify_inclusion
from evr_desktop.audit.signed import SIGNATURES_NAME, read_signatures, run_verify_signed, verify_signed
from evr_desktop.domain.audit import Category
from tests.conftest import PASSPHRASE


def test_merkle_roots_and_every_inclusion_proof_for_every_size():
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(40)]
    tree = MerkleTree(leaves)
    for size in range(1, 41):
        root = tree.root(size)
        assert root == merkle_root(leaves[:size])  # the log's own root, RFC 6962
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert verify_inclusion(leaves[index], index, size, proof, root)
            # the wrong entry, place, size or root: refused
            assert not verify_inclusion(leaves[(index + 1) % 40], index, size, proof, root)
            assert not verify_inclusion(leaves[index], index, size, proof, hashlib.sha256(b"x").digest())
            if size > 1:
                assert not verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)
    with pytest.raises(ValueError):
        tree.inclusion_proof(5, 5)


def _ca(session) -> x509.Certificate:
    return x509.load_pem_x509_certificate(session.vault.header.force_ca_pem.encode())


def _busy_session(session, entries: int = 12):
    for i in range(entries):
        session.audit_event(Category.CONSULTATION, f"appt-{i}", "appointment.view")
    return session


def _rewrite(folder: Path, lines: list[bytes]) -> None:
    """What someone with write access and no key can do: rewrite the log and
    recompute its unsigned checkpoint so that the hash chain verifies."""
    (folder / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in lines))
    hashes = [bytes.fromhex(json.loads(line)["hash"]) for line in lines]
    checkpoint = {"size": len(lines), "head": hashes[-1].hex() if hashes else "0" * 64,
                  "root": merkle_root(hashes).hex()}
    (folder / CHECKPOINT_NAME).write_bytes(canonical_json(checkpoint) + b"\n")


def test_a_lock_signs_the_checkpoint_and_it_verifies_against_the_force_ca(session):
    folder = session.audit.folder
    _busy_session(session)
    session.sign_audit_checkpoint("export")
    session.lock()
    signed, problems = read_signatures(folder)
    assert not problems and [s["reason"] for s in signed] == ["export", "lock"]
    result = verify_signed(folder, _ca(session))
    assert result.ok and result.signed == 2 and result.ca_checked
    assert result.last_signed_size == verify(folder).count  # the lock's covers every entry, its own too


def test_the_tail_cut_and_the_checkpoint_recomputed_is_caught(session):
    folder = session.audit.folder
    _busy_session(session)
    ca = _ca(session)
    session.lock()
    lines = (folder / LOG_NAME).read_bytes().splitlines()
    _rewrite(folder, lines[:-3])
    assert verify(folder).ok  # the hash chain and checkpoint alone cannot see it
    result = verify_signed(folder, ca)
    assert not result.ok
    assert f"covers {len(lines)} entries, but the log has only {len(lines) - 3}" in result.problems[0]
    out = io.StringIO()
    assert run_verify_signed(folder, ca, out) == 1
    assert "AUDIT LOG FAILED VERIFICATION" in out.getvalue() and "deleted" in out.getvalue()


def test_an_entry_edited_with_every_hash_redone_is_caught(session):
    folder = session.audit.folder
    _busy_session(session)
    ca = _ca(session)
    session.lock()
    objs = [json.loads(x) for x in (folder / LOG_NAME).read_bytes().splitlines()]
    objs[3]["action"] = "appointment.edit"  # a view rewritten as something else
    prev = "0" * 64
    for obj in objs:
        obj["prev"] = prev
        obj["hash"] = entry_hash(obj)
        prev = obj["hash"]
    _rewrite(folder, [canonical_json(o) for o in objs])
    assert verify(folder).ok
    result = verify_signed(folder, ca)
    assert not result.ok and "does not match the log's first" in result.problems[0]


def test_signed_checkpoints_edited_removed_or_from_another_ca(session, tmp_path: Path):
    folder = session.audit.folder
    _busy_session(session, 3)
    ca = _ca(session)
    for _ in range(3):
        session.audit_event(Category.CONSULTATION, "queue", "queue.list")
        session.sign_audit_checkpoint("interval")
    session.lock()
    path = folder / SIGNATURES_NAME
    original = path.read_bytes()
    lines = original.splitlines()
    # one removed from the middle
    path.write_bytes(b"\n".join([lines[0], *lines[2:]]) + b"\n")
    assert "does not follow the one before it" in verify_signed(folder, ca).problems[0]
    # one whose size was raised, with its chain kept (the signature gives it away)
    obj = json.loads(lines[-1])
    obj["size"] -= 1
    path.write_bytes(b"\n".join([*lines[:-1], canonical_json(obj)]) + b"\n")
    assert "signature does not verify" in verify_signed(folder, ca).problems[0]
    # the genuine file checks; against another force's CA it does not
    path.write_bytes(original)
    assert verify_signed(folder, ca).ok
    from evr_desktop.vault import pki

    _key, other_ca = pki.make_demo_ca("Elsewhere Police")
    result = verify_signed(folder, other_ca)
    assert not result.ok and "the force CA did not issue" in result.problems[0]
    # without a CA the signatures are checked and the report says the CA was not
    without = verify_signed(folder, None)
    assert without.ok and not without.ca_checked


def test_cli_audit_verify_takes_the_ca_from_a_file_or_the_authenticated_vault(session, paths, capsys):
    _busy_session(session, 2)
    ca_file = paths.profile.parent / "force-ca.pem"
    ca_file.write_text(session.vault.header.force_ca_pem)
    session.lock()
    assert main(["audit", "verify", "--profile", str(paths.profile), "--ca", str(ca_file)]) == 0
    out = capsys.readouterr().out
    assert "checked against the force CA" in out
    r, w = os.pipe()
    os.write(w, PASSPHRASE.encode() + b"\n")
    os.close(w)
    assert main(["--passphrase-fd", str(r), "audit", "verify", "--profile", str(paths.profile)]) == 0
    assert "checked against the force CA" in capsys.readouterr().out
    # no CA at hand (no terminal to ask on): checked, and said to be unanchored
    assert main(["audit", "verify", "--profile", str(paths.profile)]) == 0
    assert "NOT checked against a force CA" in capsys.readouterr().out
