"""Copying a cluster folder (the template into a new stack, a backup into a restore)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from runbook_checks.errors import StackError
from runbook_checks.stack.postgres import copy_cluster


def _cluster(root: Path) -> Path:
    source = root / "template"
    (source / "base" / "1").mkdir(parents=True)
    (source / "base" / "1" / "1259").write_bytes(b"\x00" * 8192)
    (source / "PG_VERSION").write_text("15\n")
    (source / "PG_VERSION").chmod(0o600)
    source.chmod(0o700)
    (source / "pg_wal").symlink_to("../elsewhere")  # initdb --waldir makes one
    os.utime(source / "PG_VERSION", (1_700_000_000, 1_700_000_000))
    return source


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("with_cp", [True, False], ids=["cp -a", "copytree"])
def test_a_copy_keeps_contents_modes_times_and_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_cp: bool
) -> None:
    if not with_cp:
        monkeypatch.setattr(shutil, "which", lambda name: None)
    source = _cluster(tmp_path)
    target = tmp_path / "stack" / "data"
    target.parent.mkdir()
    copy_cluster(source, target)
    assert (target / "base" / "1" / "1259").read_bytes() == b"\x00" * 8192
    assert _mode(target) == 0o700
    assert _mode(target / "PG_VERSION") == 0o600
    assert (target / "PG_VERSION").stat().st_mtime == 1_700_000_000
    assert os.readlink(target / "pg_wal") == "../elsewhere"
    assert not (target / "template").exists()  # the folder itself, not a folder inside it


def test_a_copy_never_lands_in_a_folder_that_exists(tmp_path: Path) -> None:
    source = _cluster(tmp_path)
    target = tmp_path / "data"
    target.mkdir()
    with pytest.raises(FileExistsError):
        copy_cluster(source, target)
    assert list(target.iterdir()) == []


def test_a_failed_copy_says_so_and_leaves_no_half_copy(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="could not copy the cluster") as info:
        copy_cluster(tmp_path / "missing", tmp_path / "data")
    assert "No such file" in str(info.value)
    assert not (tmp_path / "data").exists()
