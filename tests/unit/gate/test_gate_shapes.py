"""The gate on runbooks of other shapes: structure findings that fit the shape, SQL
validated against a stock PostgreSQL's catalogs (no twin), every step listed with what
checked it. No stack is started: the fixtures have no profile naming one."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from runbook_checks.clock import FakeClock
from runbook_checks.findings import Finding, Level
from runbook_checks.gate import run as gate_run
from runbook_checks.gate import sql_check, structure
from runbook_checks.gate.report import report_json, step_list
from runbook_checks.gate.run import GateOptions, GateReport, run_gate
from runbook_checks.runbook import Runbook, parse_runbook

MakeRunbook = Callable[..., Runbook]
PUBLIC = Path(__file__).resolve().parents[2] / "fixtures" / "runbooks" / "public"
FIXTURES = sorted(p.name for p in PUBLIC.glob("*.md"))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(tmp_path: Path, text: str, name: str = "runbook.md") -> Runbook:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return parse_runbook(path)


def levels(findings: list[Finding]) -> list[tuple[str, Level]]:
    return [(f.kind, f.level) for f in findings]


# -- structure -------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_no_structure_noise_on_the_public_shapes(name: str) -> None:
    runbook = parse_runbook(PUBLIC / name)
    assert structure.check_structure(runbook) == []
    assert structure.check_parse_warnings(runbook) == []


def test_an_alert_page_without_a_way_out_is_a_warning(tmp_path: Path) -> None:
    runbook = write(
        tmp_path,
        """
        # HighErrorRate
        ## Impact
        Users see errors.
        ## Diagnosis
        ```shell
        kubectl -n shop logs deploy/api --since=10m
        ```
        """,
    )
    assert runbook.shape == "alert"
    (finding,) = structure.check_structure(runbook)
    assert (finding.kind, finding.level) == (structure.MISSING_MITIGATION, Level.WARNING)
    assert finding.section_id == "higherrorrate"
    assert "no Mitigation" in finding.message


def test_a_page_severity_is_checked_only_against_a_table(tmp_path: Path) -> None:
    page = """
        ---
        severity: critical
        ---
        # Queue backlog
        ## Diagnosis
        ```bash
        df -h
        ```
        ## Mitigation
        ```bash
        sudo systemctl restart worker
        ```
        """
    assert structure.check_structure(write(tmp_path, page)) == []
    table = """
        ## Severity levels
        | Level | Response time |
        |-------|---------------|
        | SEV-1 | 15 minutes    |
        """
    runbook = write(tmp_path, page + table)
    assert levels(structure.check_structure(runbook)) == [
        (structure.UNKNOWN_SEVERITY, Level.WARNING)
    ]


def test_a_sev_heading_without_a_severity_table_is_at_most_an_info(tmp_path: Path) -> None:
    runbook = write(
        tmp_path,
        """
        # Runbook
        ## SEV-1: API down
        ### Symptoms
        - 502s
        ### Investigation
        ```bash
        curl http://localhost:5000/health
        ```
        ### Mitigation
        **Option A: Restart**
        ```bash
        sudo systemctl restart api
        ```
        """,
    )
    assert levels(structure.check_structure(runbook)) == [(structure.UNKNOWN_SEVERITY, Level.INFO)]


def test_no_scenario_section(tmp_path: Path) -> None:
    # a procedure: commands, no problem sections; nothing to say
    assert structure.check_structure(parse_runbook(PUBLIC / "procedure-rds-restore.md")) == []
    # nothing at all to check: a warning
    empty = write(tmp_path, "# Contacts\n\n- Alice\n")
    assert levels(structure.check_structure(empty)) == [(structure.NO_SCENARIOS, Level.WARNING)]
    # severity levels defined, no section names one: the SEV sections are missing
    sev = write(
        tmp_path,
        """
        # Runbook
        | Level | Response time |
        |-------|---------------|
        | SEV-1 | 15 minutes    |
        ## Contacts
        - Alice
        """,
    )
    assert levels(structure.check_structure(sev)) == [(structure.NO_SCENARIOS, Level.ERROR)]


# -- the gate, without a stack ---------------------------------------------------------


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixtures' profiles name no stack: starting one is a failure here."""

    def refuse(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("the gate started a stack for a runbook with no stack")

    monkeypatch.setattr(gate_run, "_start_stack", refuse)


def clock() -> FakeClock:
    return FakeClock(epoch=dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC).timestamp())


def gate(path: Path) -> GateReport:
    return run_gate(GateOptions(path, clock=clock()))


STOCK = "sql: stock catalog"
KUBECTL = ("manual", "kubectl", "classified only: kubectl")
CF = ("manual", "cf", "classified only: cf")
AWS = ("aws", "aws", "aws: botocore")
PROMQL = ("manual", "promql", "classified only: promql")

# every step the gate lists for each fixture: (line, kind, tool, what checked it)
CHECKED: dict[str, list[tuple[int, str, str, str]]] = {
    "alert-postgres-replication-lag.md": [
        (24, *PROMQL),
        (30, *KUBECTL),
        (31, *KUBECTL),
        (37, "sql", "sql", STOCK),
        (41, "sql", "sql", STOCK),
        (52, "sql", "sql", STOCK),
        (62, *KUBECTL),
        (63, *KUBECTL),
    ],
    "troubleshooting-connections-psql.md": [
        (16, "manual", "psql", "classified only: psql"),
        (20, "sql", "psql", STOCK),
        (30, "sql", "psql", STOCK),
        (40, "sql", "psql", "sql: not validated: a psql meta-command: psql runs it, the "
         "server never sees it"),
        (42, "sql", "psql", STOCK),
        (58, "sql", "psql", "sql: not validated: no schema for table orders"),
        (71, "sql", "psql", STOCK),
        (85, "sql", "psql", STOCK),
        (87, "sql", "psql", STOCK),
        (97, "shell", "systemctl", "classified only: systemctl"),
        (98, "shell", "systemctl", "classified only: systemctl"),
    ],
    "procedure-rds-restore.md": [
        (20, *CF),
        (21, *CF),
        (27, *AWS),
        (36, *AWS),
        (40, *AWS),
        (46, *CF),
        (47, *CF),
        (48, *CF),
        (54, "sql", "sql", STOCK),
    ],
    "k8s-volume-filling-up.md": [
        (19, *KUBECTL),
        (22, *KUBECTL),
        (28, *KUBECTL),
        (29, *KUBECTL),
        (35, *KUBECTL),
        (41, *PROMQL),
        (51, *KUBECTL),
        (58, "manual", "gcloud", "classified only: gcloud"),
        (66, "manual", "oc", "classified only: oc"),
    ],
    "front-matter-redis-memory.md": [
        (20, "shell", "redis-cli", "classified only: redis-cli"),
        (22, "manual", "redis-cli", "classified only: redis-cli"),
        (23, "shell", "redis-cli", "classified only: redis-cli"),
        (26, "shell", "redis-cli", "classified only: redis-cli"),
        (33, "manual", "az", "classified only: az"),
        (39, "manual", "ssh", "classified only: ssh"),
        (47, "shell", "redis-cli", "classified only: redis-cli"),
        (54, "manual", "az", "classified only: az"),
    ],
    "gitlab-style-search-indexer.md": [
        (11, "manual", "docsctl", "manual: unknown command docsctl"),
        (13, "http", "curl", "classified only: curl (not the service's API)"),
        (31, "sql", "psql", "sql: not validated: no schema for table index_jobs"),
        (41, "shell", "tail", "classified only: tail"),
        (43, "shell", "grep", "classified only: grep"),
        (52, "manual", "docsctl", "manual: unknown command docsctl"),
        (61, "sql", "psql", STOCK),
        (71, "sql", "psql", STOCK),
    ],
}  # fmt: skip


def test_every_fixture_is_listed() -> None:
    assert sorted(CHECKED) == FIXTURES


@pytest.mark.usefixtures("no_stack")
@pytest.mark.parametrize("name", FIXTURES)
def test_the_gate_lists_every_step_with_what_checked_it(name: str) -> None:
    report = gate(PUBLIC / name)
    assert report.mode == "static"
    listed = [(s["line"], s["kind"], s["tool"], s["checked"]) for s in step_list(report)]
    assert listed == CHECKED[name]
    data = report_json(report)
    assert data["shape"] == report.runbook.shape
    assert data["steps"] == step_list(report)
    ran = {c.name: c.ran for c in report.checks}
    assert (ran["sql-stock"], ran["sql-schema"], ran["diagnostics"]) == (True, False, False)


@pytest.mark.usefixtures("no_stack")
@pytest.mark.parametrize("name", FIXTURES)
def test_no_false_error_and_no_structure_noise(name: str) -> None:
    report = gate(PUBLIC / name)
    errors = [f.headline() for f in report.findings if f.level is Level.ERROR]
    assert errors == []
    assert [f for f in report.findings if f.kind.startswith("structure")] == []
    # what the stock catalog cannot check is said, as an INFO, never more
    for finding in report.findings:
        if finding.kind == sql_check.NOT_VALIDATED:
            assert finding.level is Level.INFO
    assert report.exit_code == 0


@pytest.mark.usefixtures("no_stack")
def test_the_stock_catalog_finds_what_is_wrong(tmp_path: Path) -> None:
    text = (PUBLIC / "alert-postgres-replication-lag.md").read_text(encoding="utf-8")
    broken = (
        text.replace("FROM pg_stat_replication;", "FROM pg_stat_replicaton;")
        .replace("active,\n", "activ,\n")
        .replace("pg_cancel_backend(pid)", "pg_cancel_backed(pid)")
        .replace("AND state = 'active'", "AND stat = 'active'")
    )
    path = tmp_path / "alert.md"
    path.write_text(broken, encoding="utf-8")
    report = gate(path)
    errors = [f for f in report.findings if f.level is Level.ERROR]
    assert [(f.line, f.kind, f.suggestion) for f in errors] == [
        (39, sql_check.UNDEFINED_TABLE, "did you mean pg_stat_replication?"),
        (41, sql_check.UNDEFINED_COLUMN, "did you mean active or active_pid?"),
        (52, sql_check.UNDEFINED_FUNCTION, "did you mean pg_cancel_backend?"),
    ]
    # one finding per statement: its other problems are in the message and the evidence
    assert "(and 1 more)" in errors[2].message
    assert 'column "stat" does not exist in pg_stat_activity' in errors[2].evidence
    assert report.exit_code == 1


@pytest.mark.parametrize(
    ("sql", "problems", "unresolved"),
    [
        # resolved: no false error on what catalogs and SQL allow
        ("SELECT pid, now() - query_start AS age FROM pg_stat_activity ORDER BY age", [], []),
        ("SELECT datname, count(*) FROM pg_stat_activity GROUP BY 1 HAVING count(*) > 5", [], []),
        ("SELECT c.relname, c.ctid FROM pg_class c JOIN pg_namespace n "
         "ON n.oid = c.relnamespace WHERE n.nspname = 'public'", [], []),
        ("SELECT blocked.pid, blocking.query FROM pg_stat_activity blocked "
         "JOIN pg_stat_activity blocking ON blocking.pid = ANY(pg_blocking_pids(blocked.pid))",
         [], []),
        ("WITH w AS (SELECT pid, state FROM pg_stat_activity) SELECT state, count(*) FROM w "
         "GROUP BY state", [], []),
        ("SELECT a.pid FROM pg_stat_activity a WHERE EXISTS (SELECT 1 FROM pg_locks l "
         "WHERE l.pid = a.pid AND NOT granted)", [], []),
        ("SELECT s FROM generate_series(1, 3) s", [], []),
        # a column of a relation whose columns are not known: never guessed wrong
        ("SELECT relname, total FROM pg_class JOIN (SELECT 1 AS total) t ON true", [], []),
        ("SELECT c.relname, x FROM pg_class c, pg_ls_dir('.') AS d(x)", [], []),
        ("SELECT table_name, column_name FROM information_schema.columns "
         "WHERE table_schema = 'public'", [], []),
        ("SELECT query, calls, total_exec_time FROM pg_stat_statements "
         "ORDER BY total_exec_time DESC LIMIT 5", [], []),
        ("SELECT extract(epoch FROM now() - xact_start), count(*) FILTER (WHERE state = "
         "'active') OVER (PARTITION BY datname) FROM pg_stat_activity", [], []),
        ("SELECT relname, pg_size_pretty(pg_total_relation_size(relid)) FROM "
         "pg_stat_user_tables", [], []),
        ("SHOW max_connections", [], []),
        ("SET statement_timeout = '5s'", [], []),
        ("SELECT relation::regclass, mode FROM pg_locks l WHERE l.granted", [], []),
        # wrong, and said so
        ("SELECT total_time FROM pg_stat_statements", [sql_check.UNDEFINED_COLUMN], []),
        ("SELECT * FROM pg_catalog.pg_stat_activities", [sql_check.UNDEFINED_TABLE], []),
        ("SELECT a.wait_even FROM pg_stat_activity a", [sql_check.UNDEFINED_COLUMN], []),
        ("SHOW max_conections", [sql_check.UNDEFINED_OBJECT], []),
        # not checkable here: said, never an error
        ("SELECT status FROM orders", [], ["no schema for table orders"]),
        ("VACUUM ANALYZE public.orders", [], ["no schema for table public.orders"]),
        ("SELECT * FROM pg_stat_io", [], ["pg_stat_io is newer than PostgreSQL"]),
        ("SET myapp.tenant = 'a'", [], ["myapp.tenant is a custom or an extension's setting"]),
        ("SELECT my_helper(1)", [], ["my_helper() is not a built-in function"]),
    ],
)  # fmt: skip
def test_resolve_stock(sql: str, problems: list[str], unresolved: list[str]) -> None:
    resolution = sql_check.resolve_stock(sql)
    assert [p.kind for p in resolution.problems] == problems
    assert len(resolution.unresolved) == len(unresolved)
    for said, expected in zip(resolution.unresolved, unresolved, strict=True):
        assert said.startswith(expected), said


def test_a_profile_that_names_the_stack_keeps_the_live_schema(tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_text((PUBLIC / "procedure-rds-restore.md").read_text(encoding="utf-8"))
    (tmp_path / "runbook-checks.toml").write_text(
        '[profile]\nstack = "files-twin"\n', encoding="utf-8"
    )
    report = run_gate(GateOptions(path, offline=True, clock=clock()))
    ran = {c.name for c in report.checks if c.ran}
    assert "sql-stock" not in ran
    sql = [s for s in step_list(report) if s["kind"] == "sql"]
    assert [s["checked"] for s in sql] == ["sql: syntax only (pglast)"]


@pytest.mark.usefixtures("no_stack")
def test_placeholders_are_values_not_columns(tmp_path: Path) -> None:
    runbook = write(
        tmp_path,
        """
        # Stuck sessions
        ## Diagnosis
        ```sql
        SELECT pid, state FROM pg_stat_activity WHERE usename = USER_NAME AND pid <> PID;
        SELECT pid FROM pg_stat_activity WHERE application_name = 'APP_NAME';
        SELECT pid FROM pg_stat_activity WHERE usernme = 'x';
        ```
        ## Mitigation
        ```sql
        SELECT pg_terminate_backend(PID);
        ```
        """,
    )
    report = gate(runbook.path)
    errors = [(f.line, f.kind) for f in report.findings if f.level is Level.ERROR]
    assert errors == [(6, sql_check.UNDEFINED_COLUMN)]  # usernme, not a placeholder
    checked = [s["checked"] for s in step_list(report) if s["kind"] == "sql"]
    assert checked == [STOCK] * 4


def test_the_stack_runs_the_service_of_the_profile_the_gate_was_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A runbook copied elsewhere, gated with --profile: the stack is the profile's
    service, not the (missing) profile beside the copy's."""
    import contextlib

    from runbook_checks import stack as stack_module
    from runbook_checks.config import ChecksConfig
    from tests.profiles import FILES, FILES_PROFILE_PATH

    made: list[ChecksConfig] = []

    def create(config: ChecksConfig, **kwargs: object) -> NoReturn:
        made.append(config)
        raise RuntimeError("no stack in a unit test")

    monkeypatch.setattr(stack_module, "create_stack", create)
    options = GateOptions(tmp_path / "copy.md", profile=FILES, clock=clock())
    with contextlib.ExitStack() as cleanup, pytest.raises(RuntimeError, match="no stack"):
        gate_run.start_stack(options, lambda _m: None, cleanup)
    assert [c.profile for c in made] == [FILES_PROFILE_PATH]
