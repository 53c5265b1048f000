"""The evidence store on a real S3 server (moto's, started here on 127.0.0.1 as the
stack starts it) and the quarterly review pack read from it: idempotent uploads, only
the period fetched, a bundle altered in the bucket refused naming the file, and the pack
(several drills, a game day, runs set apart, the fix patch) rendering in Chromium with
no external request."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from runbook_checks.cli import main
from runbook_checks.drill.result import DrillResult, Event, Verdict
from runbook_checks.evidence.bundle import new_journal, write_bundle
from runbook_checks.evidence.journal import ScenarioRecord, environment_for
from runbook_checks.evidence.manifest import verify_manifest, write_manifest
from runbook_checks.evidence.review import aggregate, parse_period
from runbook_checks.evidence.store import S3Store, StoreError, open_store
from runbook_checks.findings import Finding, Level
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.stack.servers import MotoServer
from tests.integration.chromium import screenshot

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "runbooks" / "files-incident-response.md"
BUCKET = "evidence"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; boto3 finds it the way users point it at theirs."""
    server = MotoServer("object_store", tmp_path_factory.mktemp("moto"))
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ENDPOINT_URL", server.url)
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
            env.delenv("AWS_PROFILE", raising=False)
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return parse_runbook(RUNBOOK)


def _result(
    runbook: Runbook,
    *,
    scenario: str,
    section: str = "SEV-1: API Server Down",
    option: str | None = "A",
    verdict: Verdict = Verdict.PASSED,
    ttd: float | None = 1.0,
    ttr: float | None = 30.0,
    section_hash: str = "",
    findings: tuple[Finding, ...] = (),
) -> DrillResult:
    sec = runbook.section(section)
    events = [Event(0.0, "injected", "process-kill(target='api')")]
    events += [Event(ttd, "detected")] if ttd is not None else []
    events += [Event(ttr, "recovered")] if ttr is not None else []
    return DrillResult(
        scenario=scenario,
        section_id=sec.id,
        section_title=sec.title,
        option=option,
        section_hash=section_hash or sec.content_hash,
        severity=sec.severity,
        fault="process-kill(target='api')",
        budget_s=900.0,
        events=events,
        findings=list(findings),
        time_to_detect_s=ttd,
        time_to_recover_s=ttr,
        verdict=verdict,
    )


def _bundle(
    runbook: Runbook,
    into: Path,
    when: datetime,
    records: list[ScenarioRecord],
    *,
    kind: str = "drill",
    interrupted: tuple[str, ...] = (),
) -> Path:
    env = environment_for(runbook, backend="local", versions={}, project_root=ROOT)
    journal = new_journal(env, records, kind=kind, now=when)
    if interrupted:
        from dataclasses import replace

        journal = replace(journal, interrupted="SIGTERM", interrupted_scenarios=interrupted)
    return write_bundle(journal, into, runbook=runbook, redactor=Redactor())


A = "scenarios/test_sev1_api_server_down.py::test_option_a_restart_recovers_a_killed_api"
B = "scenarios/test_sev1_api_server_down.py::test_option_b_failover_to_standby"


def _keys(prefix: str) -> list[str]:
    answer = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def test_upload_is_idempotent_and_fetch_reads_only_the_period(
    s3: str, runbook: Runbook, tmp_path: Path
) -> None:
    q3 = _bundle(
        runbook,
        tmp_path / "ev",
        datetime(2026, 8, 1, tzinfo=UTC),
        [ScenarioRecord(_result(runbook, scenario=A))],
    )
    q4 = _bundle(
        runbook,
        tmp_path / "ev",
        datetime(2026, 11, 1, tzinfo=UTC),
        [ScenarioRecord(_result(runbook, scenario=A))],
    )
    store = open_store("s3://evidence/idem/")
    assert isinstance(store, S3Store)
    assert store.upload(q3).sent
    first = store.upload(q4)
    assert first.sent
    assert first.location == f"s3://evidence/idem/{q4.name}/"
    keys = _keys("idem/")
    assert f"idem/{q4.name}/manifest.json" in keys
    assert not store.upload(q4).sent  # the same bundle again: nothing sent
    assert _keys("idem/") == keys
    assert store.bundles() == [q3.name, q4.name]
    cache = store.fetch(parse_period("2026Q4"), tmp_path / "cache")
    assert sorted(p.name for p in cache.iterdir()) == [q4.name]  # Q3 is not downloaded
    assert verify_manifest(cache / q4.name).ok


def test_the_quarter_pack_from_s3_renders_in_chromium(
    s3: str, runbook: Runbook, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "evidence"
    finding = Finding(
        Level.ERROR,
        "mitigation-step-failed",
        "sev-1-api-server-down",
        "classic ELB has no register-targets",
        line=110,
        statement="aws elb register-targets --target-group-arn STANDBY",
        suggestion="use `aws elbv2 register-targets`",
        source="drill:x",
        cause="failed",
    )
    folders = [
        _bundle(
            runbook,
            local,
            datetime(2026, 10, 5, tzinfo=UTC),
            [
                ScenarioRecord(_result(runbook, scenario=A, ttr=48.0)),
                ScenarioRecord(
                    _result(
                        runbook,
                        scenario=B,
                        option="B",
                        verdict=Verdict.ASSISTED,
                        findings=(finding,),
                    )
                ),
            ],
        ),
        _bundle(
            runbook,
            local,
            datetime(2026, 11, 5, tzinfo=UTC),
            [
                ScenarioRecord(_result(runbook, scenario=A, ttr=35.0)),
                ScenarioRecord(
                    _result(
                        runbook,
                        scenario=B,
                        option="B",
                        verdict=Verdict.ASSISTED,
                        findings=(finding,),
                    )
                ),
            ],
        ),
        _bundle(
            runbook,
            local,
            datetime(2026, 12, 5, tzinfo=UTC),
            [
                ScenarioRecord(_result(runbook, scenario=A, ttr=21.0)),
            ],
        ),
        # cut short by SIGTERM: an error, kept apart from the pass rate
        _bundle(
            runbook,
            local,
            datetime(2026, 12, 6, tzinfo=UTC),
            [
                ScenarioRecord(_result(runbook, scenario=A, verdict=Verdict.ERROR, ttr=None)),
            ],
            interrupted=(A,),
        ),
        # a drill of an older text of the database section
        _bundle(
            runbook,
            local,
            datetime(2026, 12, 7, tzinfo=UTC),
            [
                ScenarioRecord(
                    _result(
                        runbook,
                        scenario="scenarios/test_db.py::test_a",
                        section="SEV-1: Database Failure",
                        section_hash="0" * 64,
                    )
                ),
            ],
        ),
    ]
    gameday = _result(runbook, scenario="gameday", ttd=80.0, ttr=420.0)
    gameday.acknowledged_s = 55.0
    gameday.communication = [{"stage": "investigating", "posted": True, "at_s": 150.0}]
    folders.append(
        _bundle(
            runbook,
            local,
            datetime(2026, 12, 10, tzinfo=UTC),
            [
                ScenarioRecord(gameday, outcome="gameday", operator="alice"),
            ],
            kind="gameday",
        )
    )
    victim = _bundle(
        runbook,
        local,
        datetime(2026, 12, 11, tzinfo=UTC),
        [
            ScenarioRecord(_result(runbook, scenario=A, ttr=1.0)),
        ],
    )
    store = open_store("s3://evidence/team/files")
    for folder in [*folders, victim]:
        store.upload(folder)
    # someone rewrites a report in the bucket after the fact
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=f"team/files/{victim.name}/report.md", Body=b"all green, trust me\n"
    )
    patch = tmp_path / "runbook.fix.patch"
    patch.write_text(
        "--- a/runbook.md\n+++ b/runbook.md\n@@ -110 +110 @@\n"
        "-aws elb register-targets\n+aws elbv2 register-targets\n"
    )
    out = tmp_path / "pack"
    code = main(
        [
            "review",
            "--quarter",
            "2026Q4",
            "--store",
            "s3://evidence/team/files",
            "--runbook",
            str(RUNBOOK),
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
            "--fix-patch",
            str(patch),
        ]
    )
    said = capsys.readouterr()
    assert code == 1, said  # a bundle was refused
    refused = f"REFUSED bundle {victim.name} refused: altered: report.md"
    assert f"{refused} (sha256 differs from the manifest)" in said.err
    assert "6 evidence bundle(s) 2026Q4" in said.out
    html = (out / "review.html").read_text()
    assert f"evidence refused: bundle {victim.name}" in html
    assert "cut short by SIGTERM" in html
    assert "<td>alice</td>" in html
    assert "investigating at 2m30s" in html
    assert "+aws elbv2 register-targets" in html
    assert "<h3>DevOps</h3>" in html  # named by the finding's baseline entry
    md = (out / "review.md").read_text()
    assert "| SEV-1: API Server Down / option A | 3 | 3 | 100% |" in md
    assert verify_manifest(out).ok
    data = screenshot(out / "review.html", tmp_path, size=(1280, 3000))
    # a blank page of this size compresses to a few kilobytes; tables and charts don't
    assert len(data) > 60_000, len(data)


def test_a_real_drill_uploads_its_bundle_and_its_k_subset_is_set_apart(
    s3: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runbook-checks drill --store` after one real drill (a -k subset of the API-down
    scenarios): the bundle is in the bucket, and the review keeps it out of pass rates."""
    evidence = tmp_path / "evidence"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "drill",
            "--workers",
            "1",
            "--evidence-dir",
            str(evidence),
            "--store",
            "s3://evidence/real",
            "--",
            "-k",
            "test_option_a_restart_recovers_a_killed_api",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (bundle,) = [p for p in evidence.iterdir() if p.is_dir()]
    assert f"evidence {bundle.name} stored: s3://evidence/real/{bundle.name}/" in done.stdout
    assert f"real/{bundle.name}/manifest.json" in _keys("real/")
    out = tmp_path / "pack"
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    args = ["review", "--quarter", today, "--store", "s3://evidence/real", "--out", str(out)]
    assert main([*args, "--cache", str(tmp_path / "cache"), "--runbook", str(RUNBOOK)]) == 0
    assert "0 scenario run(s) of the reviewed text" in capsys.readouterr().out
    md = (out / "review.md").read_text()
    assert "- subset: SEV-1: API Server Down / option A" in md
    assert "-k 'test_option_a_restart_recovers_a_killed_api': 1 of" in md


def test_conflicts_missing_buckets_and_deleted_bundles(
    s3: str, runbook: Runbook, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    when = datetime(2026, 11, 2, tzinfo=UTC)
    folder = _bundle(runbook, tmp_path / "ev", when, [ScenarioRecord(_result(runbook, scenario=A))])
    store = open_store("s3://evidence/conflict")
    store.upload(folder)
    # another bundle under the same id is refused, and the stored one stays
    (folder / "report.md").write_text("rewritten\n")
    write_manifest(folder, folder.name)
    with pytest.raises(StoreError, match=f"bundle {folder.name} is already in the store"):
        store.upload(folder)
    stored = (
        boto3.client("s3")
        .get_object(Bucket=BUCKET, Key=f"conflict/{folder.name}/report.md")["Body"]
        .read()
    )
    assert b"rewritten" not in stored
    # a bundle deleted from the store leaves the cache at the next fetch
    q4, cache = parse_period("2026Q4"), tmp_path / "cache"
    assert [p.name for p in store.fetch(q4, cache).iterdir()] == [folder.name]
    client = boto3.client("s3")
    for key in _keys(f"conflict/{folder.name}/"):
        client.delete_object(Bucket=BUCKET, Key=key)
    assert list(store.fetch(q4, cache).iterdir()) == []
    # a bucket that is not there: said, with what to check, no traceback
    args = ["review", "--quarter", "2026Q4", "--store", "s3://no-such-bucket/x"]
    code = main([*args, "--cache", str(cache), "--out", str(tmp_path / "pack")])
    assert code == 2
    err = capsys.readouterr().err
    assert "s3://no-such-bucket/x: listing the bundles: NoSuchBucket" in err
    assert "check the bucket's name" in err


def test_an_upload_cut_short_is_refused_until_completed(
    s3: str, runbook: Runbook, tmp_path: Path
) -> None:
    """The manifest goes up last: a bundle without it in the store is refused by the
    review (saying so), and the next upload of it completes it."""
    when = datetime(2026, 11, 9, tzinfo=UTC)
    folder = _bundle(runbook, tmp_path / "ev", when, [ScenarioRecord(_result(runbook, scenario=A))])
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"partial/{folder.name}/journal.json",
        Body=(folder / "journal.json").read_bytes(),
    )
    store = open_store("s3://evidence/partial")
    q4 = parse_period("2026Q4")
    review = aggregate(store.fetch(q4, tmp_path / "cache"), q4, runbook)
    [refused] = review.refused
    assert refused.bundle == folder.name
    assert "no manifest" in refused.message()
    assert store.upload(folder).sent
    review = aggregate(store.fetch(q4, tmp_path / "cache"), q4, runbook)
    assert review.refused == []
    assert [b.journal.id for b in review.bundles] == [folder.name]
