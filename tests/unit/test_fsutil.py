import errno
import os

import pytest

from evr_desktop import fsutil


def test_atomic_write_is_private_and_replaces(tmp_path):
    path = tmp_path / "f"
    fsutil.atomic_write(path, b"one")
    fsutil.atomic_write(path, b"two")
    assert path.read_bytes() == b"two"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "vault.json"
    fsutil.atomic_write(path, b"old contents")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError) as info:
        fsutil.atomic_write(path, b"new contents" * 1000)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["vault.json"]


def test_append_durably_creates_private_file(tmp_path):
    path = tmp_path / "log"
    fsutil.append_durably(path, b"a\n")
    fsutil.append_durably(path, b"b\n")
    assert path.read_bytes() == b"a\nb\n" and oct(path.stat().st_mode & 0o777) == "0o600"
