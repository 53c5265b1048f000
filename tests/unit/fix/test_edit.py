"""Edits on a runbook's bytes and the diff that carries them: untouched lines stay byte
for byte (CRLF, a Latin-1 line, a missing final newline), and `patch -p1` applies the
diff, its owner checklist header included, to the same bytes `--write` produces."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.fix.edit import Edit, patched_bytes, unified_diff

CRLF = (
    b"# Runbook\r\n"
    b"\r\n"
    b"```sql\r\n"
    b"CREATE INDEX CONCURRENTLY idx_a ON t(a);\r\n"
    b"```\r\n"
    b"Caf\xc3\xa9 \xe2\x86\x92 done\r\n"
)
# a cp1252/Latin-1 file: line 2 holds "Café" as one byte 0xE9
LATIN1 = b"# Runbook\nCaf\xe9 au lait\ncurl https://api/x\n"


def _patch(folder: Path, name: str, diff: bytes) -> bytes:
    (folder / "p.patch").write_bytes(diff)
    done = subprocess.run(
        ["patch", "-p1", "--quiet", "-i", "p.patch"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return (folder / name).read_bytes()


def test_a_crlf_file_keeps_every_other_byte_and_the_edited_lines_ending() -> None:
    old = "CREATE INDEX CONCURRENTLY idx_a ON t(a);"
    new = "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON t(a);"
    out = patched_bytes(CRLF, "utf-8", {4: (old, new)})
    assert out == CRLF.replace(old.encode(), new.encode())
    assert out.count(b"\r\n") == CRLF.count(b"\r\n")


def test_a_latin1_line_stays_as_it_was_and_the_edit_is_written_in_the_files_encoding() -> None:
    old, new = "curl https://api/x", 'curl -H "Authorization: Bearer $T" https://api/x'
    out = patched_bytes(LATIN1, "cp1252", {3: (old, new)})
    assert out.split(b"\n")[1] == b"Caf\xe9 au lait"  # not re-encoded as UTF-8
    assert out.split(b"\n")[2] == new.encode("cp1252")
    # an edit of the Latin-1 line itself is written back in Latin-1
    out = patched_bytes(LATIN1, "cp1252", {2: ("Café au lait", "Café noir")})
    assert out == b"# Runbook\nCaf\xe9 noir\ncurl https://api/x\n"


def test_a_line_that_is_not_what_the_fixer_saw_is_refused() -> None:
    with pytest.raises(UsageError, match="line 3 is not the text"):
        patched_bytes(LATIN1, "cp1252", {3: ("curl https://api/y", "x")})


def test_text_the_files_encoding_cannot_hold_is_refused_with_what_to_do() -> None:
    with pytest.raises(UsageError) as caught:
        patched_bytes(LATIN1, "cp1252", {1: ("# Runbook", "# Runbook \U0001f7e1")})
    assert "save the runbook as UTF-8" in (caught.value.hint or "")


def test_an_edit_is_one_line() -> None:
    with pytest.raises(ValueError, match="one line"):
        Edit(1, "a", "a\nb", "why", "kind")


@pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch is not installed")
@pytest.mark.parametrize(
    ("data", "encoding", "changes"),
    [
        (
            CRLF,
            "utf-8",
            {
                4: (
                    "CREATE INDEX CONCURRENTLY idx_a ON t(a);",
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON t(a);",
                )
            },
        ),
        (LATIN1, "cp1252", {3: ("curl https://api/x", 'curl -H "A: $T" https://api/x')}),
        (b"one\ntwo", "utf-8", {2: ("two", "deux")}),  # no newline at the end
    ],
    ids=["crlf", "latin1", "no-final-newline"],
)
def test_patch_applies_the_diff_to_the_same_bytes_as_write(
    tmp_path: Path, data: bytes, encoding: str, changes: dict[int, tuple[str, str]]
) -> None:
    after = patched_bytes(data, encoding, changes)
    (tmp_path / "runbook.md").write_bytes(data)
    header = ["runbook-checks fix: 1 fix", "", "- [ ] line 9 contact-placeholder: --- a/x"]
    diff = unified_diff(data, after, "runbook.md", header)
    assert diff.startswith(b"# runbook-checks fix: 1 fix\n#\n# - [ ] line 9")
    assert _patch(tmp_path, "runbook.md", diff) == after


def test_no_change_is_a_header_only() -> None:
    assert unified_diff(LATIN1, LATIN1, "r.md", ["nothing to fix"]) == b"# nothing to fix\n"
