"""Reading the file: encodings, line endings, and bad input reported as UsageError."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.errors import UsageError
from runbook_checks.runbook import StepKind, parse_runbook, parse_text
from runbook_checks.runbook.source import MAX_BYTES

SAMPLE = (
    "# Runbook\n"
    "## SEV-1: Database Failure\n"
    "### Investigation\n"
    "```bash\n"
    "# 1. Check\n"
    "pg_isready -h $DB_HOST\n"
    'psql $DATABASE_URL -c "\n'
    "  SELECT 1;\n"
    '"\n'
    "```\n"
    "**Owner**: Caf\u00e9 team\n"
)


def write(tmp_path: Path, data: bytes, name: str = "runbook.md") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def steps_of(path: Path) -> list[tuple[int, StepKind, str]]:
    runbook = parse_runbook(path)
    return [(s.line, s.kind, s.text) for s in runbook.scenarios[0].investigation]


def test_utf8_file(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE.encode())
    runbook = parse_runbook(path)
    assert runbook.encoding == "utf-8"
    assert runbook.warnings == ()
    assert runbook.sha256 == hashlib.sha256(SAMPLE.encode()).hexdigest()
    assert steps_of(path) == [
        (6, StepKind.SHELL, "pg_isready -h $DB_HOST"),
        (8, StepKind.SQL, "SELECT 1;"),
    ]


def test_crlf_reads_like_lf(tmp_path: Path) -> None:
    lf = write(tmp_path, SAMPLE.encode(), "lf.md")
    crlf = write(tmp_path, SAMPLE.replace("\n", "\r\n").encode(), "crlf.md")
    assert steps_of(crlf) == steps_of(lf)
    hashes = [
        [s.content_hash for s in parse_runbook(p).sections] for p in (lf, crlf)
    ]  # normalised line endings: the same section text, the same hash
    assert hashes[0] == hashes[1]
    assert parse_runbook(crlf).sha256 != parse_runbook(lf).sha256  # the file's own bytes


def test_bom_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + SAMPLE.encode())
    runbook = parse_runbook(path)
    assert runbook.title == "Runbook"
    assert runbook.sections[0].line == 1
    assert steps_of(path)[0][0] == 6
    assert any("byte-order mark" in w for w in runbook.warnings)


def test_cp1252_bytes_fall_back_with_a_warning(tmp_path: Path) -> None:
    data = SAMPLE.replace("Caf\u00e9", "Caf\u00e9 \u2013 \u201cops\u201d").encode("cp1252")
    path = write(tmp_path, data)
    runbook = parse_runbook(path)
    assert runbook.encoding == "cp1252"
    assert runbook.metadata.owner == "Caf\u00e9 \u2013 \u201cops\u201d team"
    (warning,) = runbook.warnings
    assert "not valid UTF-8" in warning
    assert f"{path}:11:" in warning
    assert "cp1252" in warning


def test_bytes_cp1252_leaves_undefined_fall_back_to_latin1(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE.encode() + b"\x81\x8d\n")
    runbook = parse_runbook(path)
    assert runbook.encoding == "latin-1"
    assert steps_of(path)[0][0] == 6


def test_parse_text_records_the_given_encoding() -> None:
    runbook = parse_text(SAMPLE, Path("x.md"), encoding="cp1252")
    assert runbook.encoding == "cp1252"
    assert runbook.path == Path("x.md")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "runbook.md:1: the file is empty"),
        (b"  \n\n\t\n", "runbook.md:1: the file is empty"),
        (b"# Title\nok\n\x00\x01\x02", "runbook.md:3: contains a NUL byte"),
        ("# Title".encode("utf-16"), "runbook.md:1: contains a NUL byte"),
        (b"just some text\nand more\n", "runbook.md:1: no Markdown headings in its 3 lines"),
        (
            b"intro\n```\n# not a heading\n",
            "the code fence opened on line 2 is never closed",
        ),
    ],
)
def test_bad_content_is_a_usage_error(tmp_path: Path, data: bytes, expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as info:
        parse_runbook(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.hint  # says what to do


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file") as info:
        parse_runbook(tmp_path / "nope.md")
    assert "e.g. runbooks/" in (info.value.hint or "")


def test_directory(tmp_path: Path) -> None:
    write(tmp_path, SAMPLE.encode(), "incident.md")
    with pytest.raises(UsageError, match="is a directory") as info:
        parse_runbook(tmp_path)
    assert "incident.md" in str(info.value)


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: no 5 MB written
    with pytest.raises(UsageError, match="larger than the 5 MB"):
        parse_runbook(path)


def test_too_large_text() -> None:
    with pytest.raises(UsageError, match="more than a runbook may be"):
        parse_text("# x\n" + "a" * MAX_BYTES, Path("big.md"))


def test_nul_in_text() -> None:
    with pytest.raises(UsageError, match=r"big\.md:2: contains a NUL byte"):
        parse_text("# x\n\x00", Path("big.md"))


_PIECES = [
    *"#`~*_-|>:; \n\t\r\"'\\$()[]{}<=/.",
    *("abc", "SEV-1", "P1", "Option A", "```bash\n", "```\n", 'psql -c "', "curl "),
    *("## ", "### Mitigation\n", "**", "1. ", "- ", "\u00e2\u2020\u2019", "\ufeff", "---\n"),
]
_MARKDOWNISH = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)


@given(_MARKDOWNISH)
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    try:
        runbook = parse_text(text, Path("fuzz.md"))
    except UsageError:
        return
    lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for section in runbook.sections:
        assert 1 <= section.line <= section.end_line <= lines
        for step in section.steps + section.other_steps:
            assert 1 <= step.line <= lines
