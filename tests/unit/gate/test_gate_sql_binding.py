"""Placeholders in the gate's SQL check, offline: a capitalised word is bound only where
the statement needs a value, and every statement ends validated or reported.

`FakeServer` stands in for PostgreSQL's answers here (the live versions of these tests,
in tests/integration/test_gate_live_sql.py, use the real server): it refuses a column or
a type it is told does not exist, as the server does (unquoted names folded to lower
case), and otherwise gives the answers it was scripted with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
import psycopg.errors
import pytest
from gate_samples import SEVERITIES
from hypothesis import given
from hypothesis import strategies as st
from pglast import parse_sql
from pglast.visitors import Visitor

from runbook_checks.findings import Finding, Level
from runbook_checks.gate import sql_check
from runbook_checks.gate.locate import Located, runbook_steps
from runbook_checks.gate.placeholders import IMPOSSIBLE_PID, named_like_placeholder
from runbook_checks.gate.sql_binding import candidates
from runbook_checks.runbook import Runbook
from runbook_checks.runbook.model import Phase, Section, Step, StepKind
from runbook_checks.runbook.source import read_source
from runbook_checks.runbook.sql import split_statements
from runbook_checks.steps.binding import sql_keywords

MakeRunbook = Callable[..., Runbook]


# a few tables of the twin's schema, as far as these tests need them
SCHEMA: dict[str, frozenset[str]] = {
    "users": frozenset({"id", "email", "subscription_tier", "created_at"}),
    "storage_files": frozenset({"id", "name", "user_id", "is_deleted", "deleted_at"}),
    "file_shares": frozenset({"id", "file_id", "token", "max_downloads", "expires_at"}),
    "pg_stat_activity": frozenset({"pid", "state", "query", "query_start"}),
}


class FakeServer:
    """Answers `SchemaValidator.attempt` offline (see the module's docstring): a column
    reference none of the statement's tables has is refused, and so is a type named in
    `missing_types`; otherwise the next scripted answer (a SQLSTATE; None: accepted)."""

    def __init__(
        self, missing_types: Iterable[str] = (), answers: Iterable[str | None] = ()
    ) -> None:
        self.missing_types = {t.lower() for t in missing_types}
        self.answers = list(answers)
        self.sent: list[str] = []
        self.accepted: list[str] = []

    def attempt(self, plan: sql_check.Plan) -> psycopg.Error | None:
        self.sent.append(plan.sql)
        error = self._resolve(plan.sql)
        if error is None and self.answers:
            state = self.answers.pop(0)
            if state is not None:
                error = psycopg.errors.lookup(state)(f"scripted answer {state}")
        if error is None:
            self.accepted.append(plan.sql)
        return error

    def _resolve(self, sql: str) -> psycopg.Error | None:
        tables: list[str] = []
        columns: list[str] = []
        types: list[str] = []

        class _Names(Visitor):
            def visit_RangeVar(self, ancestors: object, node: Any) -> None:
                tables.append(node.relname)

            def visit_ColumnRef(self, ancestors: object, node: Any) -> None:
                fields: Sequence[Any] = node.fields or ()
                if len(fields) == 1 and hasattr(fields[0], "sval"):
                    columns.append(fields[0].sval)

            def visit_TypeName(self, ancestors: object, node: Any) -> None:
                types.append(node.names[-1].sval)

        for raw in parse_sql(sql):
            _Names()(raw)
        known = {c for t in tables for c in SCHEMA.get(t, ())}
        for name in columns:
            if name not in known:
                return psycopg.errors.UndefinedColumn(f'column "{name}" does not exist')
        for name in types:
            if name in self.missing_types:
                return psycopg.errors.UndefinedObject(f'type "{name}" does not exist')
        return None

    def columns(self, table: str) -> list[str]:
        return []

    def relations(self) -> list[str]:
        return []

    def extension(self, name: str) -> tuple[str, str | None] | None:
        return None

    def functions(self) -> list[str]:
        return []


SECTION = Section(id="sev-1-db", title="SEV-1: DB", level=2, line=1, end_line=99, content_hash="x")


def sql_step(text: str, line: int = 10) -> Located:
    step = Step(
        text=text, raw=text, line=line, language="sql", kind=StepKind.SQL, phase=Phase.MITIGATION
    )
    return Located(SECTION, step)


def section(body: str) -> str:
    return (
        "## SEV-1: Database Down\n\n### Symptoms\n- errors\n\n### Investigation\n\n"
        f"{body}\n### Mitigation\n\n**Option A: Wait**\n```bash\nsleep 1\n```\n"
    )


def checked_runbook(
    make_runbook: MakeRunbook, sql: str, server: FakeServer
) -> tuple[list[str], list[Finding], list[sql_check.Checked]]:
    """The runbook's lines, the static findings and the live outcomes of one sql block."""
    runbook = make_runbook(SEVERITIES, section(f"```sql\n{sql}\n```\n"))
    lines = read_source(runbook.path).lines
    source = "\n".join(lines)
    steps = runbook_steps(runbook)
    return (
        lines,
        sql_check.check_sql_syntax(steps, source),
        sql_check.check_statements(steps, server, source),
    )


def at(lines: Sequence[str], finding: Finding) -> str:
    return lines[finding.line - 1].strip()


# -- which words are placeholders -------------------------------------------------------


def test_keywords_are_never_placeholders() -> None:
    for keyword in sorted(sql_keywords()):
        statement = f"SELECT count(*) FROM users WHERE id = {keyword} AND a = '{keyword}'"
        found = candidates(statement)
        assert keyword not in {o.name for o in found.bare}, keyword


@pytest.mark.parametrize(
    ("name", "placeholder"),
    [("PID", True), ("BLOCKING_PID", True), ("SHARE_ID", True), ("ADMIN_TOKEN", True),
     ("FILE_ID", True), ("abc123xyz", True), ("xxx", True), ("ACTIVE", False),
     ("SELEC", False), ("INTEGR", False), ("ID", False), ("_X", False)],
)  # fmt: skip
def test_a_placeholder_is_named_like_one(name: str, placeholder: bool) -> None:
    assert named_like_placeholder(name) is placeholder


def test_a_bare_word_in_a_call_or_qualified_name_is_no_candidate() -> None:
    found = candidates("SELECT MY_FUNC(1), t.MY_COL, MY_SCHEMA.f() FROM t WHERE a = MY_ARG")
    assert [o.name for o in found.bare] == ["MY_ARG"]


# -- the defects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "line"),
    [
        ("SELEC count(*)\nFROM users;", "SELEC count(*)"),
        ("SELECT count(*)\nFROM users\nWHERE id = 'FILE_ID'\nGROUP BY id HAVNG count(*) > 1;",
         "GROUP BY id HAVNG count(*) > 1;"),
    ],
)  # fmt: skip
def test_a_misspelled_capitalised_keyword_is_an_error(
    make_runbook: MakeRunbook, sql: str, line: str
) -> None:
    server = FakeServer()
    lines, static, (live,) = checked_runbook(make_runbook, sql, server)
    (finding,) = static
    assert (finding.level, finding.kind) == (Level.ERROR, sql_check.SYNTAX)
    assert at(lines, finding) == line
    # the live check reports it too (the same finding: the gate keeps one), never skips it
    assert live.finding == finding
    assert server.sent == []


def test_a_misspelled_keyword_next_to_a_placeholder_names_the_binding_tried(
    make_runbook: MakeRunbook,
) -> None:
    lines, static, (live,) = checked_runbook(
        make_runbook, "SELECT count(*)\nFORM users WHERE id = SHARE_ID;", FakeServer()
    )
    (finding,) = static
    assert finding.kind == sql_check.SYNTAX
    assert at(lines, finding) == "FORM users WHERE id = SHARE_ID;"
    assert "nor with SHARE_ID bound to a uuid string literal" in finding.message
    assert live.finding == finding


@pytest.mark.parametrize(
    ("sql", "server", "kind", "word"),
    [
        ("SELECT CAST(created_at AS INTEGR)\nFROM users;", FakeServer(missing_types=["integr"]),
         sql_check.UNDEFINED_OBJECT, "INTEGR"),
        ("SELECT created_at::TIMESTAMPTZZ FROM users;", FakeServer(missing_types=["timestamptzz"]),
         sql_check.UNDEFINED_OBJECT, "TIMESTAMPTZZ"),
        ("SELECT count(*)\nFROM pg_stat_activity\nWHERE state = ACTIVE;",
         FakeServer(), sql_check.UNDEFINED_COLUMN, "ACTIVE"),
    ],
)  # fmt: skip
def test_a_capitalised_typo_reaches_the_server_as_written(
    make_runbook: MakeRunbook, sql: str, server: FakeServer, kind: str, word: str
) -> None:
    lines, static, (live,) = checked_runbook(make_runbook, sql, server)
    assert static == []  # it parses: only the server knows the name is wrong
    assert live.finding is not None
    assert (live.finding.level, live.finding.kind) == (Level.ERROR, kind)
    assert word in at(lines, live.finding)
    assert len(server.sent) == 1
    assert word in server.sent[0]  # not replaced by a value


def test_pg_terminate_backend_pid_still_validates() -> None:
    server = FakeServer()
    (checked,) = sql_check.check_statements([sql_step("SELECT pg_terminate_backend(PID);")], server)
    assert checked.validated
    assert checked.bound == ("PID",)
    assert checked.sent == f"EXPLAIN SELECT pg_terminate_backend({IMPOSSIBLE_PID});"
    # first as written (the server knows no column pid there), then with PID bound
    assert server.sent == ["EXPLAIN SELECT pg_terminate_backend(PID);", checked.sent]


def test_the_shipped_runbooks_placeholders_validate(make_runbook: MakeRunbook) -> None:
    sql = (
        "SELECT pg_terminate_backend(PID);\n"
        "SELECT pg_terminate_backend(pid)\nFROM pg_stat_activity\nWHERE state = 'idle';\n"
        "EXPLAIN ANALYZE SELECT * FROM storage_files WHERE user_id = 'xxx';\n"
        "UPDATE file_shares\nSET max_downloads = max_downloads + 10\nWHERE token = 'abc123xyz';\n"
        "UPDATE storage_files\nSET is_deleted = false, deleted_at = NULL\nWHERE id = 'FILE_ID';"
    )
    server = FakeServer()
    _, static, live = checked_runbook(make_runbook, sql, server)
    assert static == []
    assert [c.finding for c in live] == [None] * 5
    assert [c.bound for c in live] == [("PID",), (), ("xxx",), ("abc123xyz",), ("FILE_ID",)]
    # a column of the query's own table is no placeholder: `pid` is sent as written
    assert live[1].sent.startswith("EXPLAIN SELECT pg_terminate_backend(pid)")
    assert all(name not in live[4].sent for name in ("FILE_ID",))


def test_a_placeholder_of_no_known_shape_is_bound_to_null() -> None:
    server = FakeServer()
    statement = "UPDATE file_shares SET max_downloads = NEW_LIMIT WHERE token = 'abc123xyz';"
    (checked,) = sql_check.check_statements([sql_step(statement)], server)
    assert checked.validated
    assert checked.bound == ("NEW_LIMIT", "abc123xyz")
    assert "SET max_downloads = NULL WHERE token = '" in checked.sent


def test_a_statement_that_fails_only_once_bound_is_reported(make_runbook: MakeRunbook) -> None:
    server = FakeServer()
    lines, static, (first, live) = checked_runbook(
        make_runbook, "SELECT 1;\nSELECT pg_terminate_backend(\n  PID[1]);", server
    )
    assert static == []  # it parses as written
    assert first.validated
    finding = live.finding
    assert finding is not None
    assert (finding.level, finding.kind) == (Level.ERROR, sql_check.SYNTAX)
    assert "PID bound to 2147483647" in finding.message
    assert 'syntax error at or near "["' in finding.message
    assert finding.statement == "SELECT pg_terminate_backend(\n  PID[1]);"
    assert f"{IMPOSSIBLE_PID}[1]" in finding.evidence
    assert lines[finding.line - 1].strip() == "PID[1]);"


def test_a_statement_that_parses_only_once_bound_is_validated_bound(
    make_runbook: MakeRunbook,
) -> None:
    server = FakeServer()
    _, static, (live,) = checked_runbook(
        make_runbook, "COMMENT ON TABLE storage_files IS NEW_COMMENT;", server
    )
    assert static == []  # a string literal in NEW_COMMENT's place parses
    assert live.validated
    assert live.bound == ("NEW_COMMENT",)
    assert "NEW_COMMENT" not in live.sent


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("VACUUM storage_files;", "a VacuumStmt has effects a rollback cannot undo"),
        ("COMMIT;", "a TransactionStmt has effects"),
        ("\\dt storage_files", "a psql meta-command"),
        ("ALTER ROLE files_api PASSWORD NEW_PASSWORD;", "a AlterRoleStmt has effects"),
    ],
)
def test_a_statement_the_validator_cannot_send_is_reported(
    make_runbook: MakeRunbook, sql: str, reason: str
) -> None:
    server = FakeServer()
    lines, static, (first, live) = checked_runbook(make_runbook, f"SELECT 1;\n{sql}", server)
    assert static == []
    assert first.validated
    finding = live.finding
    assert finding is not None
    assert finding.kind == sql_check.NOT_VALIDATED
    assert finding.level is Level.INFO
    assert reason in finding.message
    assert finding.statement == sql
    assert at(lines, finding) == sql
    assert server.sent == ["EXPLAIN SELECT 1;"]


# -- every statement: validated, or one finding ------------------------------------------

_STATEMENTS = [
    "SELECT 1",
    "SELECT pg_terminate_backend(PID)",
    "SELECT pg_terminate_backend(PID[1])",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle'",
    "UPDATE file_shares SET max_downloads = max_downloads + 10 WHERE token = 'abc123xyz'",
    "UPDATE storage_files SET is_deleted = false WHERE id = 'FILE_ID'",
    "EXPLAIN ANALYZE SELECT * FROM storage_files WHERE user_id = 'xxx'",
    "CREATE INDEX CONCURRENTLY gate_idx ON storage_files (name)",
    "SELEC count(*) FROM users",
    "SELECT CAST(created_at AS INTEGR) FROM users",
    "SELECT count(*) FROM pg_stat_activity WHERE state = ACTIVE",
    "SELECT count(*) FORM users WHERE id = SHARE_ID",
    "COMMENT ON TABLE storage_files IS NEW_COMMENT",
    "SELECT * FROM users WHERE id = USER_ID AND email = EMAIL",
    "UPDATE file_shares SET max_downloads = NEW_LIMIT WHERE token = 'abc123xyz'",
    "SELECT pg_terminate_backend(BLOCKING_PIDS[1])",
    "VACUUM storage_files",
    "COMMIT",
    "\\dt",
    "-- a comment\nSELECT now() - INTERVAL '10 minutes'",
]
_FRAGMENT = st.text(alphabet=st.sampled_from(list("SELCTPIDFROMx_()'\"$;-=1 \n")), max_size=24)
_BLOCK = st.lists(st.sampled_from(_STATEMENTS) | _FRAGMENT, min_size=1, max_size=8).map(
    lambda parts: ";\n".join(parts) + ";"
)
_ANSWERS = st.lists(
    st.sampled_from([None, "42703", "42P01", "42601", "42P07", "25006", "22P02", "XX000"]),
    max_size=8,
)


@given(_BLOCK, _ANSWERS)
def test_every_statement_is_validated_or_has_one_finding(
    block: str, answers: list[str | None]
) -> None:
    server = FakeServer(answers=answers)
    step = sql_step(block, line=10)
    statements = [s for t in sql_check.sql_texts([step]) for s in split_statements(t.sql)]
    checked = sql_check.check_statements([step], server)
    assert [c.statement for c in checked] == [s.text for s in statements]
    last_line = 10 + block.count("\n")
    for outcome in checked:
        assert outcome.validated != (outcome.finding is not None)
        if outcome.validated:
            assert outcome.sent in server.accepted  # the server did accept it
        else:
            assert outcome.finding is not None
            assert outcome.finding.statement == outcome.statement
            assert 10 <= outcome.finding.line <= last_line
    findings = sql_check.validate_sql([step], FakeServer(answers=answers))
    assert len(findings) == sum(not c.validated for c in checked)
