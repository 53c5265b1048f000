"""Malformed runbooks through the parser and `runbook-checks gate`: binary, huge, broken
fences, wrong encodings, missing sections, and the real runbook mangled in ways
Hypothesis picks. Every outcome is either a parsed runbook (whose problems the gate
reports as findings with their lines, exit 0/1) or a clear error naming the file (and the
line where one matters), exit 2. Never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from runbook_checks.cli import main
from runbook_checks.errors import UsageError
from runbook_checks.runbook.parser import parse_runbook

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "runbooks" / "files-incident-response.md"
REAL = RUNBOOK.read_bytes()
HEAD = "# Files runbook\n\n## SEV-1: Database Failure\n\n### Symptoms\n- down\n\n"

CASES: dict[str, Callable[[Path], Path]] = {}


def case(name: str, data: bytes | None = None) -> None:
    def make(folder: Path) -> Path:
        path = folder / f"{name}.md"
        path.write_bytes(data if data is not None else b"")
        return path

    CASES[name] = make


case("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
case("nul-in-the-middle", REAL[:4000] + b"\x00" + REAL[4000:])
case("utf16", REAL.decode("utf-8").encode("utf-16"))
case("utf32", HEAD.encode("utf-32"))
case("latin1", (HEAD + "Caf\u00e9 na\u00efve r\u00e9sum\u00e9\n").encode("latin-1"))
case("invalid-utf8", HEAD.encode() + b"\xc3\x28 \xa0\xa1 \xf0\x28\x8c\xbc\n")
case("bom-and-crlf", b"\xef\xbb\xbf" + REAL.replace(b"\n", b"\r\n"))
case("lone-cr", REAL.replace(b"\n", b"\r"))
case("empty")
case("whitespace", b"   \n\n\t\n")
case("no-headings", b"Just some text.\nNo headings at all.\n")
case("only-front-matter", b"---\ntitle: x\nowner: y\n---\n")
case("unclosed-front-matter", b"---\ntitle: x\n# Heading\n")
case(
    "unclosed-fence", (HEAD + "### Investigation\n```bash\npg_isready\n\n## SEV-2: Next\n").encode()
)
case("fence-only", b"```\n# not a heading\n")
case("mismatched-fences", (HEAD + "```sql\nSELECT 1;\n~~~\n\n## SEV-2: X\n").encode())
case("missing-sections", b"# Runbook\n\n## SEV-1: Database Failure\n")
case("headings-only", "".join(f"## SEV-{i % 4}: S{i}\n" for i in range(300)).encode())
case("one-huge-line", b"# R\n\n" + b"x" * 1_000_000 + b"\n")
case("deep-nesting", b"# R\n\n" + b">" * 5000 + b" deep\n" + b"- " * 2000 + b"list\n")
case("too-big", b"# R\n" + b"a" * (5 * 1024 * 1024 + 10))
case("broken-sql", (HEAD + "### Investigation\n```sql\nSELECT FROM WHERE ((;\n```\n").encode())
case("broken-shell", (HEAD + "### Investigation\n```bash\necho 'unterminated\n```\n").encode())


def _directory(folder: Path) -> Path:
    (folder / "a-folder").mkdir()
    return folder / "a-folder"


CASES["a-directory"] = _directory
CASES["missing"] = lambda folder: folder / "does-not-exist.md"

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"", re.MULTILINE)
TALLY = {"runbooks": 0, "tracebacks": 0}


def check_gate_outcome(path: Path, code: int, output: str) -> None:
    TALLY["runbooks"] += 1
    if TRACEBACK.search(output):
        TALLY["tracebacks"] += 1
    assert not TRACEBACK.search(output), output[-3000:]
    assert code in (0, 1, 2), (code, output[-2000:])
    if code == 2:
        error = [line for line in output.splitlines() if line.startswith("runbook-checks: error:")]
        assert error, output[-2000:]
        assert str(path) in error[0], error[0]  # names the file (and line where it matters)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_gate_command_never_shows_a_traceback(name: str, tmp_path: Path) -> None:
    path = CASES[name](tmp_path)
    report = tmp_path / "gate.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "gate",
            str(path),
            "--offline",
            "--json",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    output = done.stdout + done.stderr
    check_gate_outcome(path, done.returncode, output)
    if name in ("png", "utf16", "utf32", "nul-in-the-middle"):
        assert done.returncode == 2
        assert re.search(rf"{re.escape(str(path))}:\d+: contains a NUL byte", output), output
    if name in ("empty", "no-headings", "too-big", "a-directory", "missing", "whitespace"):
        assert done.returncode == 2, output[-2000:]


def test_the_parser_names_an_unclosed_fence_with_its_line(tmp_path: Path) -> None:
    path = CASES["unclosed-fence"](tmp_path)
    runbook = parse_runbook(path)
    assert any(
        w.startswith(f"{path}:9: this code fence (```) is never closed") for w in runbook.warnings
    ), runbook.warnings


def test_the_gate_reports_an_unclosed_fence_with_its_line(tmp_path: Path) -> None:
    path = CASES["unclosed-fence"](tmp_path)
    report = tmp_path / "gate.json"
    assert main(["gate", str(path), "--offline", "--json", str(report)]) == 1
    findings = json.loads(report.read_text())["findings"]
    assert any(f.get("line") == 9 and "never closed" in f.get("message", "") for f in findings)


# -------------------------------------------------------------- mangled real runbooks

LINES = REAL.split(b"\n")


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        how = draw(st.sampled_from(["drop", "dup", "fence", "bytes", "cut", "heading", "swap"]))
        if how == "drop" and lines:
            del lines[at : at + draw(st.integers(1, 40))]
        elif how == "dup":
            lines[at:at] = lines[at : at + draw(st.integers(1, 20))]
        elif how == "fence":
            lines.insert(at, draw(st.sampled_from([b"```", b"~~~", b"```sql", b"````", b"   ```"])))
        elif how == "bytes":
            lines.insert(at, draw(st.binary(min_size=1, max_size=40)))
        elif how == "cut":
            lines = lines[:at]
        elif how == "heading":
            lines.insert(
                at,
                draw(
                    st.sampled_from(
                        [
                            b"#",
                            b"## ",
                            b"## SEV-9: ?",
                            b"######## x",
                            b"### Mitigation",
                            b"**Option A:**",
                        ]
                    )
                ),
            )
        elif how == "swap" and len(lines) > 2:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
    return b"\n".join(lines)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=mangled())
def test_a_mangled_runbook_parses_or_says_why(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "mangled.md"
    path.write_bytes(data)
    try:
        parse_runbook(path)
    except UsageError as exc:
        assert str(exc).startswith(str(path)), str(exc)  # noqa: PT017


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=mangled())
def test_the_gate_on_a_mangled_runbook_never_shows_a_traceback(
    data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mangled.md"
    path.write_bytes(data)
    code = main(["gate", str(path), "--offline"])  # in-process: an escaping exception fails
    captured = capsys.readouterr()
    check_gate_outcome(path, code, captured.out + captured.err)


def test_malformed_runbook_figures(record_property: Callable[[str, object], None]) -> None:
    record_property(
        "figure",
        f"malformed runbooks: {TALLY['runbooks']} through `runbook-checks gate` (plus 150 "
        f"mangled ones through the parser), {TALLY['tracebacks']} tracebacks",
    )
    assert TALLY["tracebacks"] == 0
