"""Live SQL validation never changes the database: UPDATEs, DDL and backend-killing
SELECTs are validated, and afterwards every row, index and connection is as it was."""

from __future__ import annotations

import psycopg
import pytest

from runbook_checks.gate import sql_check
from runbook_checks.gate.locate import Located
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
