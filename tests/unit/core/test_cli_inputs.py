"""Every command checks its inputs once, up front: a bad runbook given to `drill` is one
clear error and exit 2, never one pytest error per scenario (no servers start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.cli import main


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01binary\x00", "binary content"),
        (None, "no such file"),
    ],
    ids=["empty", "binary", "missing"],
)
def test_drill_refuses_a_bad_runbook_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, said: str
) -> None:
    runbook = tmp_path / "runbook.md"
    if content is not None:
        runbook.write_bytes(content)
    assert main(["drill", "--runbook", str(runbook)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert said in err
    assert str(runbook) in err
