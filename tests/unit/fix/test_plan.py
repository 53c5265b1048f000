"""The plan: fixers run on the lines as earlier edits left them, a drill's finding of a
defect already fixed is that edit's, and what no program can fix is the owner's; the
verification compares the gate before and after and the drills' verdicts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runbook_checks.findings import Finding, Level
from runbook_checks.fix.edit import Edit
from runbook_checks.fix.fixers import Models
from runbook_checks.fix.plan import Fix, baseline_findings, locate, plan_fixes
from runbook_checks.fix.verify import (
    DrillRun,
    Verification,
    check_fixes,
    compare_gate,
    scenarios_of,
)
from runbook_checks.gate.baseline import Baseline, Entry
from runbook_checks.gate.coverage import Marker
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.runbook.parser import parse_text

TEXT = """\
## SEV-1: Outage

### Symptoms
- errors

### Investigation

```bash
curl https://api.test/admin/stats
```

### Mitigation

**Option A: Warm**
```bash
curl -X POST https://api.test/admin/warm
```

## Status Page Updates

ðŸŸ¡ Investigating - [Feature] Issues

## Emergency Contacts

| Role | Primary |
|------|---------|
| On-Call | [Name] |
"""
SECTION = "sev-1-outage"


def models() -> tuple[Models, list[str]]:
    runbook = parse_text(TEXT, Path("runbook.md"))
    auth = {"/admin/": "Authorization: Bearer $ADMIN_TOKEN"}
    return Models(runbook, runbook_steps(runbook), auth), TEXT.split("\n")


def line_of(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def gate(kind: str, line: int, section: str = SECTION, **fields: str) -> Finding:
    return Finding(Level.ERROR, kind, section, fields.pop("message", kind), line, **fields)


def test_fixes_owner_items_and_drill_findings_of_a_fixed_line() -> None:
    m, lines = models()
    stats, warm = line_of(lines, "admin/stats"), line_of(lines, "admin/warm")
    mojibake = line_of(lines, "Investigating")
    findings = [
        gate("curl-missing-auth", stats, statement="curl https://api.test/admin/stats"),
        gate("curl-missing-auth", warm, statement="curl -X POST https://api.test/admin/warm"),
        gate("text-mis-encoded", mojibake, "status-page-updates"),
        gate("contact-placeholder", line_of(lines, "[Name]"), "emergency-contacts"),
        Finding(Level.INFO, "curl-external-host", SECTION, "not checked", stats),
        # the drills' findings of the same defects, as the baseline acknowledges them
        Finding(
            Level.ERROR,
            "mitigation-step-failed",
            SECTION,
            "401",
            statement="curl -X POST https://api.test/admin/warm",
            source="baseline:b.toml#1",
            cause="http-401",
        ),
        Finding(
            Level.ERROR,
            "status-update-unreadable",
            "status-page-updates",
            "mojibake",
            statement="Investigating: ðŸŸ¡",
            source="baseline:b.toml#2",
        ),
    ]
    proposal = plan_fixes(findings, lines, m)
    assert [(f.edit.line, f.edit.kind) for f in proposal.fixes] == [
        (stats, "curl-missing-auth"),
        (warm, "curl-missing-auth"),
        (mojibake, "text-mis-encoded"),
    ]
    answered = {f.edit.line: [x.kind for x in f.findings] for f in proposal.fixes}
    assert answered[warm] == ["curl-missing-auth", "mitigation-step-failed"]
    assert answered[mojibake] == ["text-mis-encoded", "status-update-unreadable"]
    assert [o.finding.kind for o in proposal.owner_items] == ["contact-placeholder"]
    assert proposal.lines[mojibake - 1] == "🟡 Investigating - [Feature] Issues"
    assert proposal.lines[warm - 1].count("Authorization") == 1
    changed = proposal.changed(lines)
    assert sorted(changed) == [stats, warm, mojibake]


def test_a_second_finding_of_the_same_defect_never_edits_the_line_twice() -> None:
    m, lines = models()
    stats = line_of(lines, "admin/stats")
    first = gate("curl-missing-auth", stats, statement="curl https://api.test/admin/stats")
    # a drill's finding of it, without a line (placed by its statement)
    twice = [first, dataclasses.replace(first, line=0, source="baseline:b.toml#3", cause="x")]
    proposal = plan_fixes(twice, lines, m)
    assert len(proposal.fixes) == 1
    assert proposal.lines[stats - 1].count("Authorization") == 1


def test_baseline_drill_entries_become_findings_placed_by_their_statement() -> None:
    m, lines = models()
    baseline = Baseline(
        Path("r.baseline.toml"),
        (
            Entry(
                SECTION,
                "mitigation-step-failed",
                "curl -X POST https://api.test/admin/warm",
                "401 as written",
                1,
                cause="http-401",
            ),
            Entry(SECTION, "curl-missing-auth", "curl https://api.test/admin/stats", "gate", 2),
            Entry(
                SECTION,
                "mitigation-did-not-recover",
                "Option A: Warm :: cold cache",
                "did not recover",
                3,
                cause="c",
            ),
        ),
    )
    found = baseline_findings(baseline)
    assert [f.kind for f in found] == ["mitigation-step-failed", "mitigation-did-not-recover"]
    placed = [locate(f, m.runbook, lines).line for f in found]
    assert placed == [line_of(lines, "admin/warm"), line_of(lines, "Option A: Warm")]


def test_the_gate_comparison_and_each_fixs_proof() -> None:
    before = [
        gate("curl-missing-auth", 9),
        gate("contact-placeholder", 30),
        gate("aws-invalid-parameters", 12, statement="aws elb x"),
    ]
    after = [
        gate("contact-placeholder", 30),
        gate("curl-unknown-option", 9),
        # the line's statement changed with its edit, the defect stayed: not new, not gone
        gate("aws-invalid-parameters", 12, statement="aws elbv2 x"),
    ]
    comparison = compare_gate(before, after)
    assert [f.kind for f in comparison.gone] == ["curl-missing-auth"]
    assert [f.kind for f in comparison.new] == ["curl-unknown-option"]
    fix = Fix(
        Edit(9, "curl x", 'curl -H "A: $T" x', "w", "curl-missing-auth", SECTION), (before[0],)
    )
    other = Fix(Edit(16, "a", "b", "w", "curl-missing-auth", SECTION), ())
    drills_before = DrillRun({"test_a": "runbook-wrong", "test_b": "passed"}, 1, "")
    drills_after = DrillRun({"test_a": "passed", "test_b": "assisted"}, 1, "")
    checks = check_fixes(
        [fix, other], comparison, lambda _s: ["test_a", "test_b"], drills_before, drills_after
    )
    assert checks[0].status == "worse"  # a new finding at its line, and test_b got worse
    assert checks[0].scenarios == ("test_a",)
    assert any("test_b went from passed to assisted" in w for w in checks[0].worse)
    only_gate = check_fixes([fix], compare_gate(before, before[1:]), lambda _s: [], None, None)
    assert only_gate[0].status == "gate"
    proved = check_fixes(
        [fix],
        compare_gate(before, before[1:]),
        lambda _s: ["test_a"],
        drills_before,
        drills_after,
    )
    assert (proved[0].status, proved[0].scenarios) == ("drill", ("test_a",))


def test_a_fix_is_drilled_by_its_options_scenarios_or_by_all_of_its_sections() -> None:
    m, lines = models()
    path = Path("scenarios/test_outage.py")
    markers = (
        Marker("SEV-1: Outage", "A", path, "test_warm", 1),
        Marker("SEV-1: Outage", "B", path, "test_other_option", 2),
        Marker("SEV-1: Outage", None, path, "test_whole_section", 3),
        Marker("SEV-2: Elsewhere", None, path, "test_elsewhere", 4),
    )
    warm, stats = line_of(lines, "admin/warm"), line_of(lines, "admin/stats")
    assert scenarios_of(m.runbook, markers, SECTION, warm) == ["test_warm", "test_whole_section"]
    assert scenarios_of(m.runbook, markers, SECTION, stats) == [
        "test_warm",
        "test_other_option",
        "test_whole_section",
    ]
    assert scenarios_of(m.runbook, markers, "status-page-updates", 1) == []


def test_a_patched_copy_whose_drill_gives_no_verdicts_is_worse() -> None:
    assert Verification("all", (), broken="the drill of the patched copy left no verdicts").worse
    assert not Verification("all", (), notes=("no scenario drills the touched sections",)).worse
