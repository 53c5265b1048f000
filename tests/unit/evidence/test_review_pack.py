"""The review pack over bundles written by the project's own writers: runs kept apart
from the pass rates, merging by section hash, owners of open findings, game days, the
fix patch, and the `review` command."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbook_checks.cli import main
from runbook_checks.clock import FakeClock
from runbook_checks.drill.result import Verdict
from runbook_checks.evidence.bundle import write_bundle
from runbook_checks.evidence.journal import Journal, ScenarioRecord, Selection
from runbook_checks.evidence.manifest import verify_manifest
from runbook_checks.evidence.review import (
    INTERRUPTED,
    OTHER_TEXT,
    OUTDATED,
    SUBSET,
    UNOWNED,
    aggregate,
    owner_of,
    parse_period,
)
from runbook_checks.evidence.review_report import FixPatch, review_html, review_md, write_review
from runbook_checks.findings import Level
from runbook_checks.gate.baseline import Baseline, Entry
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders

A = "scenarios/test_api.py::test_option_a"
B = "scenarios/test_api.py::test_option_b"
Q4 = parse_period("2026Q4")


def _write(journal: Journal, folder: Path, runbook: Runbook) -> Path:
    return write_bundle(journal, folder, runbook=runbook, redactor=Redactor())


def _day(day: int) -> datetime:
    return datetime(2026, 11, day, 9, tzinfo=UTC)


def _other_version(journal: Journal, *, path: str = "", sha256: str = "f" * 64) -> Journal:
    """The same journal as if drilled from another version (or another file) of the text."""
    book = journal.environment.runbook
    book = dataclasses.replace(book, path=path or book.path, sha256=sha256)
    env = dataclasses.replace(journal.environment, runbook=book)
    return dataclasses.replace(journal, environment=env)


@pytest.fixture
def evidence(tmp_path: Path, build: Builders, runbook: Runbook) -> Path:
    """Five drill sessions of option A (three whole ones, two of them from another version
    of the file whose section A is unchanged), and one each: interrupted, another runbook
    file, a -k subset, an older text of option B's section; plus a game day."""
    folder = tmp_path / "evidence"
    whole = [
        build.journal([ScenarioRecord(build.result(ttr=4.0, scenario=A))], when=_day(2)),
        _other_version(
            build.journal(
                [ScenarioRecord(build.result(ttr=3.0, scenario=A, verdict=Verdict.RUNBOOK_WRONG))],
                when=_day(3),
            )
        ),
        _other_version(
            build.journal([ScenarioRecord(build.result(ttr=2.0, scenario=A))], when=_day(4))
        ),
    ]
    for journal in whole:
        _write(journal, folder, runbook)
    cut = build.journal(
        [ScenarioRecord(build.result(scenario=A, verdict=Verdict.ERROR, ttr=None))], when=_day(5)
    )
    _write(
        dataclasses.replace(cut, interrupted="SIGINT", interrupted_scenarios=(A,)),
        folder,
        runbook,
    )
    branch = build.journal(
        [ScenarioRecord(build.result(scenario=A, verdict=Verdict.FAILED))], when=_day(6)
    )
    _write(_other_version(branch, path="tests/copies/files-incident-response.md"), folder, runbook)
    subset = build.journal(
        [ScenarioRecord(build.result(scenario=A, verdict=Verdict.FAILED))], when=_day(7)
    )
    _write(
        dataclasses.replace(
            subset, selection=Selection(keyword="option_a", collected=2, deselected=(B,))
        ),
        folder,
        runbook,
    )
    old = build.journal(
        [ScenarioRecord(build.result(option="B", scenario=B, section_hash="0" * 64))],
        when=_day(8),
    )
    _write(old, folder, runbook)
    return folder


def test_runs_that_do_not_describe_the_runbook_are_set_apart(
    evidence: Path, runbook: Runbook
) -> None:
    review = aggregate(evidence, Q4, runbook)
    [trend] = review.scenarios
    assert trend.scenario == A
    # the three whole sessions only: from two versions of the file, section A unchanged
    assert trend.times("time_to_recover_s") == [4.0, 3.0, 2.0]
    assert review.pass_rate == pytest.approx(2 / 3)
    apart = {a.kind: a for a in review.apart}
    assert sorted(apart) == sorted([INTERRUPTED, OTHER_TEXT, SUBSET, OUTDATED])
    assert apart[INTERRUPTED].detail == "cut short by SIGINT"
    assert apart[OTHER_TEXT].detail.startswith("drilled tests/copies/files-incident-response.md")
    assert apart[SUBSET].detail == "-k 'option_a': 1 of 2 scenario(s) ran"
    assert apart[OUTDATED].run.record.result.scenario == B
    # the old text's drill still says its option was drilled, only against an outdated text
    assert [(g.section_id, g.option) for g in review.outdated] == [("sev-1-api-server-down", "B")]
    html, md = review_html(review), review_md(review)
    assert "Runs set apart" in html
    assert "cut short by SIGINT" in html
    assert "- subset: SEV-1: API Server Down / option A" in md


def test_a_changed_section_counts_only_as_outdated(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    """Merging by section hash: an older text of the section never counts toward the
    current text's pass rate, whatever machine or version it came from."""
    folder = tmp_path / "evidence"
    _write(
        _other_version(
            build.journal(
                [ScenarioRecord(build.result(scenario=A, section_hash="1" * 64))], when=_day(2)
            )
        ),
        folder,
        runbook,
    )
    _write(
        build.journal(
            [ScenarioRecord(build.result(scenario=A, verdict=Verdict.RUNBOOK_WRONG))],
            when=_day(3),
        ),
        folder,
        runbook,
    )
    review = aggregate(folder, Q4, runbook)
    assert review.runs == 1
    assert review.pass_rate == 0.0
    assert [a.kind for a in review.apart] == [OUTDATED]
    assert review.outdated == []  # the current text was drilled too


def test_owners_come_from_the_baseline_then_the_runbook(build: Builders, runbook: Runbook) -> None:
    finding = build.finding()
    entry = Entry(
        finding.section_id,
        finding.kind,
        finding.statement,
        "classic ELB has no register-targets (owner: Storage Team, next review)",
        index=4,
    )
    assert owner_of(finding, runbook, Baseline(None, (entry,))) == (
        "Storage Team",
        "baseline entry 4",
    )
    owner, source = owner_of(finding, runbook, Baseline(None))
    assert owner == "DevOps Team"  # the runbook's **Owner** line
    assert source.startswith("runbook line ")
    anonymous = dataclasses.replace(
        runbook, metadata=dataclasses.replace(runbook.metadata, owner=None)
    )
    assert owner_of(finding, anonymous, Baseline(None)) == (UNOWNED, "")


def test_open_findings_are_grouped_by_owner_and_severity(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    folder = tmp_path / "evidence"
    findings = (build.finding(), build.finding("diagnostic-missed", level=Level.WARNING))
    _write(
        build.journal([ScenarioRecord(build.result(scenario=A, findings=findings))], when=_day(2)),
        folder,
        runbook,
    )
    entry = Entry(
        findings[0].section_id, findings[0].kind, findings[0].statement, "(owner: DevOps)", 1
    )
    review = aggregate(folder, Q4, runbook, baseline=Baseline(None, (entry,)))
    grouped = [
        (owner, [(level, [i.finding.kind for i in items]) for level, items in levels])
        for owner, levels in review.by_owner()
    ]
    assert grouped == [
        ("DevOps", [("error", ["mitigation-step-failed"])]),
        ("DevOps Team", [("warning", ["diagnostic-missed"])]),
    ]
    md = review_md(review)
    assert "### DevOps\n" in md
    assert "- **warning** diagnostic-missed" in md


def test_game_days_show_their_human_times(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    folder = tmp_path / "evidence"
    result = build.result(scenario="gameday: api down", ttd=95.0, ttr=610.0)
    result.acknowledged_s = 42.0
    result.communication = [
        {"stage": "investigating", "posted": True, "at_s": 130.0},
        {"stage": "resolved", "posted": False, "at_s": 700.0},
    ]
    record = ScenarioRecord(result, outcome="gameday", operator="alice")
    _write(build.journal([record], when=_day(10), kind="gameday"), folder, runbook)
    review = aggregate(folder, Q4, runbook)
    [day] = review.gamedays
    assert review.scenarios == []  # people's times: in no pass rate
    assert ("sev-1-api-server-down", "A") not in {
        (g.section_id, g.option) for g in review.never_drilled
    }  # but the section was drilled
    assert day.record.operator == "alice"
    assert day.posted == [("investigating", 130.0)]
    html = review_html(review)
    assert '<td class="num">42.0s</td>' in html
    assert "investigating at 2m10s" in html
    assert (
        "acknowledged 42.0s, detected 1m35s, recovered 10m10s; posted: investigating at 2m10s"
        in (review_md(review))
    )


def test_the_pack_holds_the_fix_patch_and_a_manifest(
    evidence: Path, tmp_path: Path, runbook: Runbook
) -> None:
    patch_file = tmp_path / "runbook.fix.patch"
    patch_file.write_text("--- a/rb.md\n+++ b/rb.md\n@@ -1 +1 @@\n-aws elb <x>\n+aws elbv2 <x>\n")
    review = aggregate(evidence, Q4, runbook)
    out = tmp_path / "pack"
    clock = FakeClock(epoch=datetime(2027, 1, 4, 9, 30, tzinfo=UTC).timestamp())
    write_review(review, out, store="s3://b/p", patch=FixPatch.read(patch_file), clock=clock)
    assert (out / "fix.patch").read_text() == patch_file.read_text()
    assert verify_manifest(out).ok
    html = (out / "review.html").read_text()
    assert "+aws elbv2 &lt;x&gt;" in html  # autoescaped
    assert "Content-Security-Policy" in html  # base.html's layout
    assert "<script" not in html
    assert "made 2027-01-04 09:30 UTC" in html
    assert "```diff\n--- a/rb.md" in (out / "review.md").read_text()


def test_review_command_writes_the_pack(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pack"
    runbook = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"
    args = ["review", "--quarter", "2026Q4", "--store", str(evidence), "--out", str(out)]
    code = main([*args, "--runbook", str(runbook)])
    assert code == 0
    said = capsys.readouterr().out
    assert "7 evidence bundle(s) 2026Q4" in said
    assert "3 scenario run(s) of the reviewed text" in said
    assert "4 run(s) set apart" in said
    assert (out / "review.html").exists()
    # a tampered bundle: refused, said, exit 1
    victim = sorted(evidence.iterdir())[0]
    (victim / "journal.json").write_text((victim / "journal.json").read_text() + " ")
    assert main(["review", "--quarter", "2026Q4", "--store", str(evidence), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"REFUSED bundle {victim.name} refused: altered: journal.json" in err


def test_review_command_refuses_a_missing_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["review", "--quarter", "2026Q4", "--store", str(tmp_path), "--fix-patch", "nope.patch"]
    )
    assert code == 2
    assert "--fix-patch nope.patch: cannot read it" in capsys.readouterr().err


def test_an_error_of_an_interrupted_parallel_session_is_set_apart(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    """Parallel workers see the interrupt, the controller writing the journal does not
    know which drill it cut: in an interrupted session, an error run is that drill."""
    folder = tmp_path / "evidence"
    journal = build.journal(
        [
            ScenarioRecord(build.result(scenario=A)),
            ScenarioRecord(build.result(scenario=B, option="B", verdict=Verdict.ERROR)),
        ],
        when=_day(2),
    )
    _write(dataclasses.replace(journal, interrupted="SIGTERM"), folder, runbook)
    review = aggregate(folder, Q4, runbook)
    assert [t.scenario for t in review.scenarios] == [A]
    assert [(a.kind, a.run.record.result.scenario) for a in review.apart] == [(INTERRUPTED, B)]


def test_the_last_gate_run_of_the_text_adds_its_open_findings(
    tmp_path: Path,
    runbook: Runbook,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`gate --store` bundles: the last gate run of the reviewed text brings its errors
    and warnings, owned as the baseline says; a gate run of another version of the file
    (same path in its checkout, another sha256) brings none."""
    store = tmp_path / "store"
    checkout = tmp_path / "branch"
    copy = checkout / "runbooks" / "files-incident-response.md"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(runbook.path.read_bytes() + b"\nedited\n")
    monkeypatch.chdir(checkout)  # the journal names it runbooks/files-incident-response.md
    assert main(["gate", str(copy), "--offline", "--store", str(store)]) in (0, 1)
    monkeypatch.undo()
    other = aggregate(store, parse_period("2000-01-01"), runbook)
    assert other.open_findings == []
    assert main(["gate", str(runbook.path), "--offline", "--store", str(store)]) in (0, 1)
    capsys.readouterr()
    review = aggregate(store, parse_period("2000-01-01"), runbook)
    mojibake = [o for o in review.open_findings if o.finding.kind == "text-mis-encoded"]
    assert mojibake
    assert {o.scenario for o in mojibake} == {"gate"}
    assert {o.owner for o in mojibake} == {"DevOps Team"}  # the baseline entries say so
    assert all(o.owner_source.startswith("baseline entry ") for o in mojibake)
    assert "found by gate" in review_md(review)


def test_the_pages_escape_what_the_evidence_says(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    """Autoescaping: text from a journal (a finding's message, a command's output) is
    shown, never run, in review.html; review.md keeps it as written."""
    folder = tmp_path / "evidence"
    finding = dataclasses.replace(build.finding(), message="<script>alert(1)</script> & more")
    _write(
        build.journal(
            [ScenarioRecord(build.result(scenario=A, findings=(finding,)))], when=_day(2)
        ),
        folder,
        runbook,
    )
    review = aggregate(folder, Q4, runbook)
    html = review_html(review)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<script>alert(1)</script> & more" in review_md(review)


def test_the_pack_says_what_the_fix_patch_is_for_and_how_it_was_verified(
    tmp_path: Path,
) -> None:
    """The fix's JSON report beside the patch says which text it was made for: the pack
    tells a patch of the reviewed text from an applied one and from another text's."""
    original, patched = b"aws elb x\n", b"aws elbv2 x\n"
    patch_file = tmp_path / "rb.fix.patch"
    patch_file.write_text("--- a/rb.md\n+++ b/rb.md\n@@ -1 +1 @@\n-aws elb x\n+aws elbv2 x\n")
    patch_file.with_suffix(".json").write_text(
        json.dumps(
            {
                "runbook_sha256": hashlib.sha256(original).hexdigest(),
                "patched_sha256": hashlib.sha256(patched).hexdigest(),
                "verdict": "1 proved by a drill, 0 by the gate only, 0 not proved; nothing worse",
            }
        )
    )
    current = FixPatch.read(patch_file, original)
    assert current.verified.startswith("1 proved by a drill")
    assert current.status == "made for the reviewed text of the runbook"
    assert FixPatch.read(patch_file, patched).status.startswith("already applied")
    assert FixPatch.read(patch_file, b"edited since\n").status.startswith("made for another")
    assert FixPatch.read(patch_file).status == ""  # no text to judge it against
    patch_file.with_suffix(".json").unlink()
    assert FixPatch.read(patch_file, original).verified == ""  # shown, not verified


def test_review_takes_the_patch_fix_left_beside_the_runbook(evidence: Path, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"
    runbook = tmp_path / "rb.md"
    runbook.write_bytes(shipped.read_bytes())
    (tmp_path / "rb.fix.patch").write_text("--- a/rb.md\n+++ b/rb.md\n")
    (tmp_path / "rb.fix.json").write_text(
        json.dumps(
            {
                "runbook_sha256": hashlib.sha256(runbook.read_bytes()).hexdigest(),
                "verdict": "2 proved by a drill, 1 by the gate only, 0 not proved; nothing worse",
            }
        )
    )
    out = tmp_path / "pack"
    args = ["review", "--quarter", "2026Q4", "--store", str(evidence), "--out", str(out)]
    assert main([*args, "--runbook", str(runbook)]) == 0
    md = (out / "review.md").read_text()
    assert "Verified by `runbook-checks fix`: 2 proved by a drill" in md
    assert "The patch was made for the reviewed text of the runbook." in md
    assert (out / "fix.patch").exists()
