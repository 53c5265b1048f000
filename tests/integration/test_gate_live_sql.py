"""Live SQL validation never changes the database: UPDATEs, DDL and backend-killing
SELECTs are validated, and afterwards every row, index and connection is as it was.
Placeholders are bound only where a statement needs a value, against the real schema:
a capitalised typo reaches the server as written, and every statement ends validated or
reported."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_checks.findings import Level
from runbook_checks.gate import sql_check
from runbook_checks.gate.locate import Located
from runbook_checks.gate.placeholders import IMPOSSIBLE_PID
from runbook_checks.runbook.model import Phase, Section, Step, StepKind
from runbook_checks.stack.base import Stack

pytestmark = pytest.mark.integration

SECTION = Section(
    id="sev-3-shares", title="SEV-3: Shares", level=2, line=1, end_line=40, content_hash="x"
)


def sql_step(text: str, line: int = 10) -> Located:
    step = Step(
        text=text, raw=text, line=line, language="sql", kind=StepKind.SQL, phase=Phase.MITIGATION
    )
    return Located(SECTION, step)


def snapshot(url: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        shares = conn.execute("SELECT count(*), sum(max_downloads) FROM file_shares").fetchone()
        files = conn.execute("SELECT count(*) FROM storage_files WHERE is_deleted").fetchone()
        indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'gate_idx'")
        return (shares, files, indexes.fetchone())


def test_validation_leaves_everything_as_it_was(fresh_stack: Stack) -> None:
    url = fresh_stack.endpoints.database_url
    with psycopg.connect(url, autocommit=True) as bystander:
        pid = bystander.info.backend_pid
        before = snapshot(url)
        steps = [
            sql_step("UPDATE file_shares SET max_downloads = max_downloads + 10;"),
            sql_step("UPDATE storage_files SET is_deleted = true;"),
            sql_step("DELETE FROM file_shares;"),
            sql_step("CREATE INDEX CONCURRENTLY gate_idx ON storage_files (name);"),
            sql_step("SELECT pg_terminate_backend(pid) FROM pg_stat_activity;"),
            sql_step("SELECT pg_terminate_backend(PID);"),
            sql_step("EXPLAIN ANALYZE DELETE FROM storage_files;"),
            sql_step("COMMIT;"),
        ]
        with sql_check.SchemaValidator(url) as db:
            findings = sql_check.validate_sql(steps, db)
        assert [f.kind for f in findings] == [sql_check.NOT_VALIDATED]  # the COMMIT only
        assert snapshot(url) == before
        assert bystander.execute("SELECT pg_backend_pid()").fetchone() == (pid,)


def test_errors_carry_sqlstate_line_and_suggestion(fresh_stack: Stack) -> None:
    steps = [
        sql_step("SELECT id, nme\nFROM storage_files\nWHERE id = 'FILE_ID';", line=20),
        sql_step("SELECT * FROM file_share WHERE token = 'abc123xyz';", line=30),
        sql_step("SELECT pg_terminate_backnd(PID);", line=40),
    ]
    with sql_check.SchemaValidator(fresh_stack.endpoints.database_url) as db:
        column, table, function = sql_check.validate_sql(steps, db)
    assert (column.kind, column.line) == (sql_check.UNDEFINED_COLUMN, 20)
    assert "42703" in column.message
    assert "name" in column.suggestion
    assert (table.kind, table.line) == (sql_check.UNDEFINED_TABLE, 30)
    assert "file_shares" in table.suggestion
    assert function.kind == sql_check.UNDEFINED_FUNCTION
    assert "pg_terminate_backend" in function.suggestion


# -- placeholders: bound only where the statement needs a value ----------------------------


@pytest.fixture(scope="module")
def validator(stack: Stack) -> Iterator[sql_check.SchemaValidator]:
    with sql_check.SchemaValidator(stack.endpoints.database_url) as db:
        yield db


def test_capitalised_typos_reach_the_server_as_written(
    validator: sql_check.SchemaValidator,
) -> None:
    steps = [
        sql_step("SELEC count(*)\nFROM users;", line=10),
        sql_step("SELECT CAST(created_at AS INTEGR)\nFROM users;", line=20),
        sql_step("SELECT count(*)\nFROM pg_stat_activity\nWHERE state = ACTIVE;", line=30),
        sql_step("SELECT pg_terminate_backend(\n  PID[1]);", line=40),
    ]
    typo, type_name, value, bound = sql_check.validate_sql(steps, validator)
    assert (typo.level, typo.kind, typo.line) == (Level.ERROR, sql_check.SYNTAX, 10)
    assert (type_name.level, type_name.kind, type_name.line) == (
        Level.ERROR,
        sql_check.UNDEFINED_OBJECT,
        20,
    )
    assert 'type "integr" does not exist' in type_name.message
    assert (value.level, value.kind, value.line) == (Level.ERROR, sql_check.UNDEFINED_COLUMN, 32)
    assert 'column "active" does not exist' in value.message
    # parses as written; once PID is bound (the server knows no column pid), it does not
    assert (bound.level, bound.kind, bound.line) == (Level.ERROR, sql_check.SYNTAX, 41)
    assert "PID bound to 2147483647" in bound.message


def test_the_shipped_runbooks_placeholders_validate(validator: sql_check.SchemaValidator) -> None:
    steps = [
        sql_step("SELECT pg_terminate_backend(PID);"),
        sql_step("EXPLAIN ANALYZE SELECT * FROM storage_files WHERE user_id = 'xxx';"),
        sql_step("SELECT id, name FROM storage_files WHERE id = 'FILE_ID';"),
        sql_step("UPDATE file_shares SET max_downloads = 1 WHERE token = 'abc123xyz';"),
        sql_step("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle';"),
        sql_step("COMMENT ON TABLE storage_files IS NEW_COMMENT;"),
        # NEW_LIMIT says nothing of its shape: NULL, not a uuid string the integer refuses
        sql_step("UPDATE file_shares SET max_downloads = NEW_LIMIT WHERE token = 'abc123xyz';"),
    ]
    checked = sql_check.check_statements(steps, validator)
    assert [c.finding for c in checked] == [None] * len(steps)
    assert [c.bound for c in checked] == [
        ("PID",),
        ("xxx",),
        ("FILE_ID",),
        ("abc123xyz",),
        (),
        ("NEW_COMMENT",),
        ("NEW_LIMIT", "abc123xyz"),
    ]
    assert str(IMPOSSIBLE_PID) in checked[0].sent
    assert "max_downloads = NULL" in checked[-1].sent


def test_what_cannot_be_sent_is_reported(validator: sql_check.SchemaValidator) -> None:
    steps = [sql_step("SELECT 1;\nVACUUM storage_files;\n\\dt\nCOMMIT;", line=50)]
    checked = sql_check.check_statements(steps, validator)
    assert checked[0].validated
    reported = [c.finding for c in checked[1:]]
    assert [(f.kind, f.level, f.line) for f in reported if f] == [
        (sql_check.NOT_VALIDATED, Level.INFO, 51),
        (sql_check.NOT_VALIDATED, Level.INFO, 52),
        (sql_check.NOT_VALIDATED, Level.INFO, 53),
    ]
    assert "psql meta-command" in str(reported[1])


_STATEMENTS = [
    "SELECT pg_terminate_backend(PID)",
    "SELECT pg_terminate_backend(PID[1])",
    "UPDATE file_shares SET max_downloads = max_downloads + 10 WHERE token = 'abc123xyz'",
    "UPDATE storage_files SET is_deleted = false WHERE id = 'FILE_ID'",
    "SELEC count(*) FROM users",
    "SELECT CAST(created_at AS INTEGR) FROM users",
    "SELECT count(*) FROM pg_stat_activity WHERE state = ACTIVE",
    "SELECT count(*) FORM users WHERE id = SHARE_ID",
    "SELECT * FROM users WHERE id = USER_ID AND email = EMAIL",
    "COMMENT ON TABLE storage_files IS NEW_COMMENT",
    "UPDATE file_shares SET max_downloads = NEW_LIMIT WHERE token = 'abc123xyz'",
    "SELECT pg_terminate_backend(BLOCKING_PIDS[1])",
    "VACUUM storage_files",
    "\\dt",
]


_VALID = {
    "SELECT pg_terminate_backend(PID);",
    "UPDATE file_shares SET max_downloads = max_downloads + 10 WHERE token = 'abc123xyz';",
    "UPDATE storage_files SET is_deleted = false WHERE id = 'FILE_ID';",
    "COMMENT ON TABLE storage_files IS NEW_COMMENT;",
    "SELECT * FROM users WHERE id = USER_ID AND email = EMAIL;",
    "UPDATE file_shares SET max_downloads = NEW_LIMIT WHERE token = 'abc123xyz';",
}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(_STATEMENTS), min_size=1, max_size=6))
def test_every_statement_is_validated_or_reported(
    validator: sql_check.SchemaValidator, parts: list[str]
) -> None:
    block = ";\n".join(parts) + ";"
    checked = sql_check.check_statements([sql_step(block, line=10)], validator)
    assert [c.statement for c in checked] == [f"{p};" for p in parts]
    for outcome in checked:
        assert outcome.validated == (outcome.finding is None)
        assert outcome.validated == (outcome.statement in _VALID)
