"""Hostile identifiers in an export (issue 12): a URN or exhibit reference
holding ``../``, ``..\\``, ``C:\\``, ``CON``, ``NUL.txt``, trailing dots and
spaces, ``:`` streams, look-alike Unicode or 300 characters, and a
destination with a planted symbolic link: every file lands inside the
destination, nothing is overwritten, no link is followed."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from evr_desktop.evidence.bundle import BundleFile, CaseMaterial, ExportError, bundle_name, write_bundle
from evr_desktop.evidence.names import safe_id, safe_part

HOSTILE = [
    "../../etc/passwd", "..\\..\\Windows\\System32", "C:\\evil", "CON", "NUL.txt", "com1", "LPT9.log",
    "urn. . .", "  ", "name:stream:$DATA", "\u0430\u0440\u0440\u04cf\u0435",  # Cyrillic look-alike "apple"
    "x" * 300, "\u202eexe.txt", "/absolute", ".hidden", "...", "a/b\\c:d*e?f\"g<h>i|j", "\x00nul",
]
WHEN = datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", HOSTILE)
def test_every_hostile_part_becomes_a_plain_name(text):
    part = safe_part(text)
    assert part and len(part) <= 40 and all(c.isascii() and (c.isalnum() or c in "-_") for c in part)
    assert part.upper() not in {"CON", "NUL", "COM1", "LPT9"} and not part.startswith(("-", "."))


@pytest.mark.parametrize("value", ["../x", "CON", "a b", "", "x" * 65, "é"])
def test_an_internal_id_that_is_not_one_is_refused(value):
    with pytest.raises(ValueError):
        safe_id(value)


def _material(urn: str, exhibit_part: str) -> CaseMaterial:
    return CaseMaterial(
        appointment_id="0123456789abcdef", urn=urn, officer="TW 9001", force="Testshire Police",
        files=[BundleFile("statements/0123-v1-MG11.pdf", "statement", data=b"%PDF-1.7 x"),
               BundleFile(f"exhibits/{safe_part(exhibit_part, 20)}-abc.png.age", "exhibit", data=b"age")],
        sign=lambda data: b"signature",
    )


def _inside(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*")]


def test_hostile_case_data_stays_inside_the_destination_and_overwrites_nothing(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    # A link planted where the first bundle would land, pointing outside.
    first = bundle_name(HOSTILE[0], "0123456789abcdef", WHEN)
    (dest / first).symlink_to(outside, target_is_directory=True)
    made = []
    for text in HOSTILE:
        made.append(write_bundle(_material(text, text), dest, now=WHEN))
    assert (outside / "precious.txt").read_text() == "keep me" and sorted(os.listdir(outside)) == ["precious.txt"]
    assert (dest / first).is_symlink()  # left as it was, not followed, not replaced
    assert len(set(made)) == len(HOSTILE)  # same name each time: a new suffix, never an overwrite
    for bundle in made:
        assert bundle.parent == dest and not bundle.is_symlink()
        for path in bundle.rglob("*"):
            assert path.resolve().is_relative_to(dest.resolve()), path
            assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in path.name), path.name
    # nothing else appeared anywhere: every entry of dest is one of ours or the planted link
    assert sorted(p.name for p in dest.iterdir()) == sorted([first, *(b.name for b in made)])


def test_a_relative_path_escaping_the_bundle_is_refused_before_anything_is_written(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    for bad in ("../escape.pdf", "/abs.pdf", "a/../../b", "C:/x", "a\\b"):
        material = _material("URN1", "RJ/1")
        material.files.append(BundleFile(bad, "statement", data=b"x"))
        with pytest.raises(ValueError):
            write_bundle(material, dest, now=WHEN)
    assert list(dest.iterdir()) == []  # the staging folder went with the refusal


def test_a_destination_that_is_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(ExportError, match="link"):
        write_bundle(_material("URN1", "RJ/1"), link, now=WHEN)
    assert list(real.iterdir()) == []


def test_a_real_export_with_hostile_case_data_and_a_planted_link(session, tmp_path):
    """Through the session: a URN and a victim's name written to break out (the
    URN stored as it came, whatever the booking form allows), a destination
    holding a link where the bundle would land: everything lands inside."""
    from dataclasses import replace

    from tests.e2e.test_evidence_export import _case
    from tests.unit.test_domain import make

    hostile_urn = "..\\\\..\\\\C:\\\\CON NUL.txt:$DATA . . " + "\u0430" * 300
    a = _case(session, tmp_path)
    session.store.update(replace(session.store.get(a.id), urn=hostile_urn,
                                 victim=replace(make().victim, full_name="../../etc/passwd")))
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    stamp = datetime.now(timezone.utc)
    for seconds in range(-2, 60):  # wherever the clock puts the bundle's name, a link waits there
        when = stamp.replace(microsecond=0) + timedelta(seconds=seconds)
        (dest / bundle_name(hostile_urn, a.id, when)).symlink_to(outside, target_is_directory=True)
    bundle = session.export_case(a.id, dest)
    assert bundle.parent == dest and not bundle.is_symlink() and list(outside.iterdir()) == []
    for path in bundle.rglob("*"):
        assert path.resolve().is_relative_to(bundle.resolve()) and "passwd" not in path.name
    assert bundle.name.startswith("EVR-C-CON-NUL-txt-DATA-") and bundle.name.endswith("Z-2")
    assert all(p.is_symlink() for p in dest.iterdir() if p != bundle)  # the planted links, untouched
