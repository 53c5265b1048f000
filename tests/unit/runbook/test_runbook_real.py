"""The runbook under test, parsed: what the drills and the gate build on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from runbook_checks.runbook import Phase, Runbook, StepKind, parse_runbook

RUNBOOK = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return parse_runbook(RUNBOOK)


def source_line(number: int) -> str:
    return RUNBOOK.read_text(encoding="utf-8").split("\n")[number - 1]


def test_scenarios_with_their_severities_and_options(runbook: Runbook) -> None:
    # the runbook has six "SEV-n: ..." sections (the brief said seven but named six)
    found = [(s.severity, s.title, tuple(o.key for o in s.options)) for s in runbook.scenarios]
    assert found == [
        ("SEV-1", "SEV-1: API Server Down", ("A", "B", "C")),
        ("SEV-1", "SEV-1: Database Failure", ("A", "B", "C")),
        ("SEV-1", "SEV-1: Storage System Failure", ("supabase-outage", "storage-quota-exceeded")),
        ("SEV-2", "SEV-2: File Upload Failures", ("1", "2", "3")),
        ("SEV-2", "SEV-2: Performance Degradation", ("1", "2", "3")),
        ("SEV-3", "SEV-3: Share Links Not Working", ("1", "2", "3")),
    ]


def test_section_ids_titles_and_lines(runbook: Runbook) -> None:
    database = runbook.section("sev-1-database-failure")
    assert database.title == "SEV-1: Database Failure"
    assert (database.level, database.line) == (2, 150)
    assert source_line(database.line) == "## SEV-1: Database Failure"
    assert database.end_line == 224 + 2  # up to the "---" before the next "##"
    assert runbook.section("SEV-1: Database Failure") is database
    assert database.subsections == ("Symptoms", "Investigation", "Mitigation")
    assert database.parent == "incident-response-runbook"


def test_repeated_headings_get_numbered_ids(runbook: Runbook) -> None:
    ids = [s.id for s in runbook.sections if s.title == "Investigation"]
    assert ids == [
        "investigation",
        "investigation-2",
        "investigation-3",
        "investigation-4",
        "investigation-5",
    ]
    assert len({s.id for s in runbook.sections}) == len(runbook.sections)


def test_content_hash_is_the_sha256_of_the_section_text(runbook: Runbook) -> None:
    section = runbook.section("sev-3-share-links-not-working")
    lines = RUNBOOK.read_text(encoding="utf-8").split("\n")
    text = "\n".join(lines[section.line - 1 : section.end_line])
    assert section.content_hash == hashlib.sha256(text.encode()).hexdigest()
    assert len({s.content_hash for s in runbook.scenarios}) == len(runbook.scenarios)


def test_file_hash_title_and_encoding(runbook: Runbook) -> None:
    assert runbook.sha256 == hashlib.sha256(RUNBOOK.read_bytes()).hexdigest()
    assert runbook.title == "Incident Response Runbook"
    assert runbook.encoding == "utf-8"


def test_symptoms(runbook: Runbook) -> None:
    assert runbook.section("sev-1-api-server-down").symptoms == (
        "`/health` endpoint returns 500 or times out",
        "Sentry: Spike in errors",
        "Grafana: 0 req/s on API dashboard",
    )
    assert len(runbook.section("sev-3-share-links-not-working").symptoms) == 2


def test_api_server_down_investigation(runbook: Runbook) -> None:
    steps = runbook.section("sev-1-api-server-down").investigation
    assert [(s.line, s.kind, s.text) for s in steps] == [
        (77, StepKind.MANUAL, "ssh production-api-01"),
        (78, StepKind.SHELL, "ps aux"),
        (81, StepKind.SHELL, "tail -100 /var/log/api/error.log"),
        (84, StepKind.SHELL, "top"),
        (85, StepKind.SHELL, "df -h"),
        (86, StepKind.SHELL, "free -m"),
        (89, StepKind.SQL, "SELECT 1;"),
        (92, StepKind.HTTP, "curl https://status.supabase.com/api/v2/status.json"),
    ]
    assert all(s.phase is Phase.INVESTIGATION and s.language == "bash" for s in steps)
    ssh, ps = steps[0], steps[1]
    assert ssh.manual_reason == "logs into a host: the stack's components stand in for it"
    assert ps.pipeline == ("grep node",)
    assert ps.comment == "1. Check if API process is running"
    assert ps.host == "production-api-01"  # still runs, against the host's component
    assert steps[6].raw == 'psql $DATABASE_URL -c "SELECT 1;"'


def test_database_failure_investigation(runbook: Runbook) -> None:
    steps = runbook.section("sev-1-database-failure").investigation
    pg_isready = steps[0]
    assert (pg_isready.line, pg_isready.kind, pg_isready.text) == (
        161,
        StepKind.SHELL,
        "pg_isready -h $DB_HOST -p 5432",
    )
    assert pg_isready.comment == "1. Check database status"
    long_running = steps[2]
    assert long_running.kind is StepKind.SQL
    assert long_running.line == 172  # where the statement starts, inside psql -c "..."
    assert source_line(long_running.line).strip().startswith("SELECT pid, now() - query_start")
    assert long_running.text.startswith("SELECT pid, now() - query_start as duration, query")
    assert long_running.text.endswith("ORDER BY duration DESC;")
    assert long_running.raw.startswith('psql $DATABASE_URL -c "')
    assert long_running.comment == "3. Check for long-running queries"
    assert [s.kind for s in steps] == [
        StepKind.SHELL,
        StepKind.SQL,
        StepKind.SQL,
        StepKind.MANUAL,
        StepKind.SHELL,
    ]
    assert steps[4].host == "db-server"


def test_upload_curl_is_joined_across_continuations(runbook: Runbook) -> None:
    steps = runbook.section("sev-1-storage-system-failure").investigation
    upload = steps[1]
    assert upload.kind is StepKind.HTTP
    assert upload.line == 242
    assert upload.text == (
        "curl -X POST https://api.rolerabbit.com/api/storage/files/upload "
        '-H "Authorization: Bearer TOKEN" -F "file=@test.txt"'
    )
    assert upload.raw.count("\n") == 2
    dashboard = steps[3]
    assert (dashboard.kind, dashboard.text, dashboard.line) == (
        StepKind.MANUAL,
        "Go to: Dashboard > Storage > Logs",
        250,
    )
    assert dashboard.manual_reason == "instruction for a person (comment in a code block)"
    assert dashboard.comment == "4. Check Supabase dashboard"


def test_file_upload_investigation(runbook: Runbook) -> None:
    steps = runbook.section("sev-2-file-upload-failures").investigation
    assert [(s.line, s.kind) for s in steps] == [
        (288, StepKind.MANUAL),
        (291, StepKind.SHELL),
        (294, StepKind.HTTP),
        (301, StepKind.SQL),
    ]
    assert steps[1].text == 'grep "upload" /var/log/api/production.log'
    assert steps[1].pipeline == ("tail -100",)
    assert steps[2].text.endswith('-F "file=@test.pdf" -v')


def test_performance_investigation(runbook: Runbook) -> None:
    steps = runbook.section("sev-2-performance-degradation").investigation
    assert [(s.line, s.kind, s.text.split("\n")[0]) for s in steps] == [
        (
            346,
            StepKind.HTTP,
            'curl -w "@curl-format.txt" https://api.rolerabbit.com/api/storage/files',
        ),
        (350, StepKind.SQL, "SELECT"),
        (360, StepKind.SHELL, "redis-cli INFO stats"),
        (363, StepKind.SHELL, "top"),
        (364, StepKind.SHELL, "htop"),
        (365, StepKind.SHELL, "iotop"),
    ]
    assert steps[2].pipeline == ("grep keyspace",)


def test_api_server_down_options(runbook: Runbook) -> None:
    section = runbook.section("sev-1-api-server-down")
    restart = section.option("A")
    assert (restart.title, restart.line) == ("Option A: Restart API Server", 97)
    assert [(s.line, s.kind, s.text) for s in restart.steps] == [
        (100, StepKind.SHELL, "sudo systemctl restart rolerabbit-api"),
        (103, StepKind.HTTP, "curl http://localhost:5000/health"),
    ]
    assert all(s.phase is Phase.MITIGATION for s in restart.steps)
    failover = section.option("b")
    assert [s.kind for s in failover.steps] == [StepKind.AWS, StepKind.AWS, StepKind.SHELL]
    rollback = section.option("Option C: Rollback Deployment")
    # carried out from their text on the stack's deployment history and pipeline
    assert [(s.kind, s.text) for s in rollback.steps] == [
        (StepKind.PLATFORM, "git checkout main@{1}"),
        (StepKind.PLATFORM, "npm run deploy:rollback"),
    ]
    assert len(restart.blocks) == 1
    assert restart.blocks[0].line == 98


def test_database_failure_options(runbook: Runbook) -> None:
    section = runbook.section("sev-1-database-failure")
    kill = section.option("A").steps
    assert [(s.line, s.kind, s.comment) for s in kill] == [
        (188, StepKind.SQL, "Kill specific query"),
        (191, StepKind.SQL, "Kill all idle connections"),
    ]
    assert kill[0].text == "SELECT pg_terminate_backend(PID);"
    assert kill[1].text.endswith("INTERVAL '10 minutes';")
    replica = section.option("B").steps
    assert [s.kind for s in replica] == [StepKind.AWS, StepKind.PLATFORM, StepKind.PLATFORM]
    restore = section.option("C").steps
    assert [(s.line, s.kind) for s in restore] == [
        (211, StepKind.MANUAL),
        (214, StepKind.PLATFORM),
        (217, StepKind.AWS),
        (221, StepKind.MANUAL),
        (222, StepKind.MANUAL),
        (223, StepKind.MANUAL),
    ]
    assert restore[2].text == (
        "aws rds restore-db-instance-from-snapshot --db-instance-identifier restored-db "
        "--db-snapshot-identifier snapshot-20240115"
    )
    assert restore[3].text == "3. Update DNS/config to point to restored DB"
    assert restore[3].manual_reason == "instruction for a person (comment in a code block)"


def test_storage_failure_options(runbook: Runbook) -> None:
    section = runbook.section("sev-1-storage-system-failure")
    outage = section.option("supabase-outage")
    assert outage.title == "If Supabase Outage"
    assert next((s.line, s.kind, s.manual_reason) for s in outage.steps) == (
        257,
        StepKind.MANUAL,
        "instruction for a person",
    )
    assert len(outage.steps) == 5
    quota = section.option("storage-quota-exceeded")
    assert [(s.line, s.kind, s.text) for s in quota.steps] == [
        (267, StepKind.MANUAL, "Via Supabase Dashboard: Settings > Billing > Upgrade"),
        (270, StepKind.HTTP, "curl -X POST https://api.rolerabbit.com/admin/cleanup/deleted"),
        (272, StepKind.MANUAL, "3. Notify large users to reduce usage"),
    ]


def test_code_change_options_are_notes(runbook: Runbook) -> None:
    section = runbook.section("sev-2-file-upload-failures")
    invalid_type = section.option("2").steps
    assert [(s.kind, s.manual_reason, s.line) for s in invalid_type] == [
        (StepKind.NOTE, "code change, not a command", 317)
    ]
    assert not any(s.executable for s in section.option("3").steps)
    assert section.option("1").steps[0].kind is StepKind.NOTE


def test_sql_options(runbook: Runbook) -> None:
    indexes = runbook.section("sev-2-performance-degradation").option("2").steps
    assert [(s.line, s.comment) for s in indexes] == [
        (378, "Identify slow queries"),
        (381, "Add index if missing"),
    ]
    shares = runbook.section("sev-3-share-links-not-working")
    assert [o.title for o in shares.options] == [
        "1. Share Expired",
        "2. Download Limit Reached",
        "3. File Deleted",
    ]
    assert all(s.kind is StepKind.SQL for o in shares.options for s in o.steps)


def test_severity_table(runbook: Runbook) -> None:
    table = [
        (s.level, s.label, s.response_time, s.response_seconds, s.line) for s in runbook.severities
    ]
    assert table == [
        ("SEV-1", "Critical", "15 minutes", 900.0, 16),
        ("SEV-2", "High", "1 hour", 3600.0, 17),
        ("SEV-3", "Medium", "4 hours", 14400.0, 18),
        ("SEV-4", "Low", "Next business day", None, 19),
    ]
    sev1 = runbook.severity("sev-1")
    assert sev1 is not None
    assert sev1.impact == "Complete service outage, data loss"


def test_process_stages_read_through_the_mis_encoded_arrows(runbook: Runbook) -> None:
    assert runbook.process == (
        "DETECT",
        "TRIAGE",
        "COMMUNICATE",
        "INVESTIGATE",
        "MITIGATE",
        "RESOLVE",
        "POST-MORTEM",
    )
    # the diagram is not a step of its section
    assert runbook.section("general-incident-response-process").other_steps == ()


def test_mis_encoded_characters_are_reported(runbook: Runbook) -> None:
    lines = sorted({m.line for m in runbook.mis_encoded})
    assert lines == [26, 127, 138, 461, 462, 463, 464, 557, 568, 579, 589]
    arrow = runbook.mis_encoded[0]
    assert (arrow.text, arrow.repaired) == ("\u00e2\u2020\u2019", "\u2192")
    assert any("mis-encoded" in w and ":26:" in w for w in runbook.warnings)


def test_templates(runbook: Runbook) -> None:
    found = [(t.title, t.line, t.section) for t in runbook.templates]
    assert found == [
        ("Status Page Update", 126, "communication-template"),
        ("Resolution Update", 137, "communication-template"),
        ("Post-Mortem Template", 468, "post-mortem-template"),
        ("Investigating", 556, "status-page-updates"),
        ("Identified", 567, "status-page-updates"),
        ("Monitoring", 578, "status-page-updates"),
        ("Resolved", 588, "status-page-updates"),
    ]
    assert runbook.templates[2].text.startswith("# Incident Post-Mortem: [Title]")
    assert runbook.templates[0].text.endswith("Next update: 10:30 AM PST")
    # templates are not steps
    assert runbook.section("sev-1-api-server-down").other_steps == ()


def test_tables(runbook: Runbook) -> None:
    headers = [t.header for t in runbook.tables]
    assert headers == [
        ("Level", "Impact", "Response Time", "Examples"),
        ("Role", "Primary", "Secondary", "Escalation"),
        ("Tool", "URL", "Purpose"),
    ]
    contacts = runbook.tables[1]
    assert contacts.line == 602
    assert contacts.rows[0].cells == ("On-Call Engineer", "[Name]", "[Name]", "Engineering Lead")
    assert contacts.rows[0].line == 604
    assert [r.line for r in runbook.tables[2].rows] == [619, 620, 621, 622, 623]


def test_metadata(runbook: Runbook) -> None:
    meta = runbook.metadata
    assert (meta.last_updated, meta.next_review, meta.owner) == (
        "2024-01-15",
        "2024-04-15",
        "DevOps Team",
    )
    assert meta.audience == "On-call engineers, SRE team, DevOps"
    assert meta.priority == "P0 (Critical for production stability)"
    assert meta.review_frequency == "Quarterly"
    assert {k: meta.lines[k] for k in ("audience", "priority", "review_frequency")} == {
        "audience": 6,
        "priority": 7,
        "review_frequency": 8,
    }
    assert (meta.lines["last_updated"], meta.lines["next_review"], meta.lines["owner"]) == (
        627,
        628,
        629,
    )
    assert meta.extra["Emergency Phone"] == "`+1-XXX-ONCALL`"


def test_every_step_line_points_at_its_text(runbook: Runbook) -> None:
    lines = RUNBOOK.read_text(encoding="utf-8").split("\n")
    for section in runbook.sections:
        for step in section.steps + section.other_steps:
            first = step.text.split("\n")[0].strip()
            source = lines[step.line - 1]
            if step.kind is StepKind.NOTE:
                assert source.strip() == first
            else:
                assert first[:20] in source, (step.line, first, source)


def test_no_warnings_but_the_mis_encoding(runbook: Runbook) -> None:
    assert len(runbook.warnings) == 1
    assert all(block.closed for s in runbook.sections for block in s.blocks)
