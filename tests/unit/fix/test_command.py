"""`runbook-checks fix` as a user runs it: the patch and its JSON beside the runbook,
--write only when nothing got worse (exit 1 otherwise), a drill's findings.json read,
a broken one refused with what to give instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook_checks import cli
from runbook_checks.errors import UsageError
from runbook_checks.findings import Level
from runbook_checks.fix import api
from runbook_checks.fix.api import FixPlan
from runbook_checks.fix.edit import Edit
from runbook_checks.fix.plan import Fix, drill_findings
from runbook_checks.fix.verify import FixCheck, Verification

BEFORE = b"# Runbook\r\ncurl https://api.test/admin/x\r\n"
AFTER = b'# Runbook\r\ncurl -H "A: $T" https://api.test/admin/x\r\n'


def plan(runbook: Path, worse: bool) -> FixPlan:
    edit = Edit(2, "curl https://api.test/admin/x", 'curl -H "A: $T" https://api.test/admin/x',
                "the route needs A", "curl-missing-auth")  # fmt: skip
    check = FixCheck(2, edit.kind, "gate", ("gate: new curl-unknown-option",) if worse else ())
    return FixPlan(
        runbook,
        runbook.name,
        "utf-8",
        BEFORE,
        AFTER,
        (Fix(edit, ()),),
        (),
        Verification("gate", (check,)),
    )


@pytest.mark.parametrize("worse", [False, True])
def test_write_patches_in_place_only_when_nothing_got_worse(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    worse: bool,
) -> None:
    runbook = tmp_path / "svc.md"
    runbook.write_bytes(BEFORE)
    monkeypatch.setattr(api, "propose", lambda path, **_kw: plan(Path(path), worse))
    code = cli.main(["fix", str(runbook), "--write", "--verify", "gate"])
    out = capsys.readouterr().out
    patch, report = tmp_path / "svc.fix.patch", tmp_path / "svc.fix.json"
    assert patch.read_bytes().startswith(b"# runbook-checks fix svc.md: 1 fix(es)")
    assert b'\n+curl -H "A: $T" https://api.test/admin/x\r\n' in patch.read_bytes()
    assert json.loads(report.read_text())["worse"] is worse
    assert "line 2 curl-missing-auth: " + ("worse" if worse else "gate") in out
    assert code == (1 if worse else 0)
    assert runbook.read_bytes() == (BEFORE if worse else AFTER)


def test_a_drills_findings_json_is_read_and_a_broken_one_refused(tmp_path: Path) -> None:
    good = tmp_path / "findings.json"
    good.write_text(
        json.dumps(
            {
                "bundle": "x",
                "findings": [
                    {
                        "level": "error",
                        "kind": "mitigation-did-not-recover",
                        "section_id": "sev-3-share-links",
                        "message": "did not recover",
                        "line": 398,
                        "statement": "1. Share Expired :: long ago",
                        "source": "drill:scenarios/test_x.py::test_y",
                        "cause": "link: http-404",
                    }
                ],
            }
        )
    )
    (found,) = drill_findings(good)
    assert (found.level, found.kind, found.line, found.cause) == (
        Level.ERROR,
        "mitigation-did-not-recover",
        398,
        "link: http-404",
    )
    bad = tmp_path / "broken.json"
    bad.write_text('{"findings": [{"kind": "x"}]}')
    with pytest.raises(UsageError, match=r"not a drill's findings\.json"):
        drill_findings(bad)
