"""Hand-made drill results for the evidence writers (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook_checks.drill.ledger import LedgerResult, LostWrite
from runbook_checks.drill.result import DrillResult, Event, StepRecord, Verdict
from runbook_checks.drill.sampler import Sample
from runbook_checks.evidence.bundle import new_journal
from runbook_checks.evidence.journal import (
    Environment,
    Journal,
    ScenarioRecord,
    runbook_info,
)
from runbook_checks.findings import Finding, Level
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook
from runbook_checks.runbook.parser import parse_runbook

RUNBOOK = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"

# secrets planted in the results: none may reach a written file
DB_PASSWORD = "Pg-s3cret-Pa55word"
BEARER = "tok_live_9f8e7d6c5b4a3f2e1d0c"
ADMIN_TOKEN = "adm1n-T0ken-ZZZ-777"
SECRETS = (DB_PASSWORD, BEARER, ADMIN_TOKEN)


@pytest.fixture(scope="session")
def runbook() -> Runbook:
    return parse_runbook(RUNBOOK)


@pytest.fixture
def redactor() -> Redactor:
    return Redactor.for_values(
        {"ADMIN_TOKEN": ADMIN_TOKEN, "DATABASE_URL": f"postgresql://ops:{DB_PASSWORD}@127.0.0.1/f"}
    )


def make_result(
    runbook: Runbook,
    *,
    section: str = "SEV-1: API Server Down",
    option: str | None = "A",
    verdict: Verdict = Verdict.PASSED,
    ttd: float | None = 0.4,
    ttr: float | None = 2.5,
    budget_s: float = 900.0,
    findings: tuple[Finding, ...] = (),
    section_hash: str | None = None,
    scenario: str = "scenarios/test_api.py::test_option_a",
    started_wall: float = 1_790_000_000.0,
) -> DrillResult:
    sec = runbook.section(section)
    events = [
        Event(0.0, "steady", "steady state holds"),
        Event(0.0, "injected", "process-kill(target='api')"),
        Event(0.05, "symptom", "fault in effect"),
    ]
    if ttd is not None:
        events.append(Event(ttd, "detected", "line 78: `ps` lists no process"))
    events.append(Event(1.0, "mitigating", "Option A: Restart API Server"))
    if ttr is not None:
        events.append(Event(ttr, "recovered"))
    events.append(Event((ttr or 5.0) + 0.2, "reverted", "fault reverted"))
    steps = [
        StepRecord(
            "investigation",
            78,
            "ps aux",
            "ps aux",
            "ok",
            0.1,
            0.05,
            "root 1 ... files_api",
            "DETECTED: no files_api process",
        ),
        StepRecord(
            "investigation",
            89,
            "psql $DATABASE_URL -c 'SELECT 1;'",
            f"psql postgresql://ops:{DB_PASSWORD}@127.0.0.1:5432/files -c 'SELECT 1;'",
            "ok",
            0.2,
            0.01,
            "1 row",
        ),
        StepRecord(
            "mitigation",
            100,
            "sudo systemctl restart rolerabbit-api",
            "stack.component('api').restart()",
            "ok",
            1.0,
            1.2,
            f"curl -H 'Authorization: Bearer {BEARER}' answered 200",
        ),
        StepRecord(
            "mitigation",
            103,
            "curl http://localhost:5000/health",
            "GET http://127.0.0.1:1234/health",
            "ok",
            2.3,
            0.01,
            f"admin token was {ADMIN_TOKEN}",
        ),
    ]
    samples = [
        Sample(
            t / 5,
            200 if not 0.2 <= t / 5 <= (ttr or 9) else 0,
            12.0 + t,
            "" if not 0.2 <= t / 5 <= (ttr or 9) else "ConnectError",
        )
        for t in range(0, 20)
    ]
    return DrillResult(
        scenario=scenario,
        section_id=sec.id,
        section_title=sec.title,
        option=option,
        section_hash=section_hash or sec.content_hash,
        severity=sec.severity,
        fault="process-kill(target='api')",
        budget_s=budget_s,
        events=events,
        steps=steps,
        findings=list(findings),
        samples=samples,
        ledger=LedgerResult(
            20,
            12,
            11,
            (LostWrite("ledger-00004.txt", "f-4", "fault", "missing (404)"),),
            8,
            {"steady": (3, 0), "fault": (4, 1), "after": (5, 0)},
        ),
        time_to_detect_s=ttd,
        time_to_recover_s=ttr,
        verdict=verdict,
        error="" if verdict is not Verdict.ERROR else f"stack down: redis://:{DB_PASSWORD}@h",
        started_wall=started_wall,
    )


def finding(
    kind: str = "mitigation-step-failed",
    *,
    section: str = "sev-1-api-server-down",
    statement: str = "aws elb register-targets --target-group-arn STANDBY",
    level: Level = Level.ERROR,
) -> Finding:
    return Finding(
        level,
        kind,
        section,
        f"the step fails as written ({kind})",
        line=110,
        statement=statement,
        suggestion="use `aws elbv2 register-targets`",
        evidence=f"Authorization: Bearer {BEARER}",
        source="drill:x",
    )


def make_journal(
    runbook: Runbook,
    records: list[ScenarioRecord],
    *,
    when: datetime | None = None,
    kind: str = "drill",
) -> Journal:
    env = Environment(
        backend="local",
        versions={"postgres": "16.4", "redis": "7.0"},
        python="3.11",
        platform="linux",
        project_commit="a" * 40,
        runbook=runbook_info(runbook),
    )
    return new_journal(env, records, kind=kind, now=when or datetime(2026, 11, 3, tzinfo=UTC))


class Builders:
    """Factories bound to the real runbook (a fixture: tests do not import conftest)."""

    secrets = SECRETS
    db_password = DB_PASSWORD
    bearer = BEARER
    admin_token = ADMIN_TOKEN

    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook

    def result(self, **kwargs: object) -> DrillResult:
        return make_result(self.runbook, **kwargs)  # type: ignore[arg-type]

    def finding(self, kind: str = "mitigation-step-failed", **kwargs: object) -> Finding:
        return finding(kind, **kwargs)  # type: ignore[arg-type]

    def journal(self, records: list[ScenarioRecord], **kwargs: object) -> Journal:
        return make_journal(self.runbook, records, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def build(runbook: Runbook) -> Builders:
    return Builders(runbook)
