"""SQL, offline: pglast syntax with runbook lines, how each statement would be validated
without effects, and the harmless placeholder values."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from gate_samples import SEVERITIES

from runbook_checks.gate import sql_check
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.gate.placeholders import (
    IMPOSSIBLE_PID,
    Role,
    harmless_values,
    placeholder_values,
    role_of,
)
from runbook_checks.runbook import Runbook
from runbook_checks.runbook.source import read_source

MakeRunbook = Callable[..., Runbook]


def section(body: str) -> str:
    return (
        "## SEV-1: Database Down\n\n### Symptoms\n- errors\n\n### Investigation\n\n"
        f"{body}\n### Mitigation\n\n**Option A: Wait**\n```bash\nsleep 1\n```\n"
    )


def test_a_syntax_error_names_its_line(make_runbook: MakeRunbook) -> None:
    body = (
        '```bash\npsql $DATABASE_URL -c "\n  SELECT id, name\n  FORM storage_files\n'
        '  WHERE id = 1;\n"\n```\n'
    )
    runbook = make_runbook(SEVERITIES, section(body))
    source = "\n".join(read_source(runbook.path).lines)
    (finding,) = sql_check.check_sql_syntax(runbook_steps(runbook), source)
    assert finding.kind == sql_check.SYNTAX
    assert read_source(runbook.path).lines[finding.line - 1].strip() == "FORM storage_files"
    assert "syntax error" in finding.message
    assert finding.statement.startswith("SELECT id, name")


def test_sql_is_located_in_the_source_nearest_its_step() -> None:
    source = 'psql -c "SELECT 1;"\nx\npsql $DATABASE_URL -c "\n  SELECT 1;\n"'
    assert sql_check.locate("SELECT 1;", source, 4) == 4
    assert sql_check.locate("SELECT 1;", source, 1) == 1
    assert sql_check.locate("\n  SELECT 1;", source, 4) == 3
    assert sql_check.locate("SELECT 2;", source, 4) is None


def test_valid_sql_blocks_and_psql_lines_parse(make_runbook: MakeRunbook) -> None:
    body = (
        "```sql\nSELECT pg_terminate_backend(PID);\n\nUPDATE file_shares\n"
        "SET max_downloads = max_downloads + 10\nWHERE token = 'abc123xyz';\n```\n"
        '```bash\npsql $DATABASE_URL -c "SELECT count(*), state FROM pg_stat_activity '
        'GROUP BY state;"\n```\n'
    )
    runbook = make_runbook(SEVERITIES, section(body))
    assert sql_check.check_sql_syntax(runbook_steps(runbook)) == []


@pytest.mark.parametrize(
    ("statement", "sent", "read_only"),
    [
        ("SELECT 1", "EXPLAIN SELECT 1", True),
        ("UPDATE t SET a = 1 WHERE b = 2", "EXPLAIN UPDATE t SET a = 1 WHERE b = 2", True),
        ("DELETE FROM t", "EXPLAIN DELETE FROM t", True),
        ("EXPLAIN SELECT 1", "EXPLAIN SELECT 1", True),
        ("CREATE INDEX i ON t (a)", "CREATE INDEX i ON t (a)", False),
        ("ALTER TABLE t ADD COLUMN c int", "ALTER TABLE t ADD COLUMN c int", False),
    ],
)
def test_plans_never_execute_dml(statement: str, sent: str, read_only: bool) -> None:
    plan = sql_check.plan_statement(statement)
    assert (plan.sql, plan.read_only, plan.skip) == (sent, read_only, "")


def test_explain_analyze_is_planned_not_executed() -> None:
    plan = sql_check.plan_statement("EXPLAIN ANALYZE UPDATE t SET a = 1")
    assert plan.sql == "EXPLAIN UPDATE t SET a = 1"
    assert "ANALYZE" not in plan.sql
    assert plan.read_only
    assert not plan.mappable


def test_create_index_concurrently_is_checked_without_it() -> None:
    plan = sql_check.plan_statement("CREATE INDEX CONCURRENTLY i ON t (a)")
    assert plan.sql == "CREATE INDEX i ON t (a)"
    assert "CONCURRENTLY" in plan.note


@pytest.mark.parametrize(
    "statement",
    ["COMMIT", "BEGIN", "VACUUM t", "DO $$ BEGIN PERFORM 1; END $$", "CALL p()",
     "COPY t TO '/tmp/x'", "CHECKPOINT"],
)  # fmt: skip
def test_statements_a_rollback_cannot_undo_are_not_sent(statement: str) -> None:
    plan = sql_check.plan_statement(statement)
    assert plan.skip
    assert plan.sql == ""


def test_relations_in_a_statement() -> None:
    names = sql_check.relations_in(
        "SELECT u.id FROM users u JOIN public.storage_files f ON f.user_id = u.id "
        "WHERE u.id IN (SELECT user_id FROM upload_failures)"
    )
    assert names == ["users", "public.storage_files", "upload_failures"]


def test_placeholder_roles_by_name_and_context() -> None:
    assert role_of("PID") is Role.BACKEND_PID
    assert role_of("USER_TOKEN") is Role.USER_TOKEN
    assert role_of("ADMIN_TOKEN") is Role.ADMIN_TOKEN
    assert role_of("FILE_ID") is Role.FILE_ID
    assert role_of("abc123xyz", "WHERE token = '") is Role.SHARE_TOKEN
    assert role_of("abc123xyz", "curl https://x.com/share/") is Role.SHARE_TOKEN
    assert role_of("xxx", "WHERE user_id = '") is Role.USER_ID
    assert role_of("xxx", "WHERE id = '") is Role.FILE_ID


def test_harmless_values_have_the_right_shapes() -> None:
    values = placeholder_values(
        "SELECT pg_terminate_backend(PID); UPDATE storage_files SET is_deleted = false "
        "WHERE id = 'FILE_ID'; UPDATE file_shares SET max_downloads = 1 WHERE token = 'abc123xyz';",
        harmless_values(),
        sql=True,
    )
    assert values["PID"] == str(IMPOSSIBLE_PID)
    assert IMPOSSIBLE_PID > 2**22  # above any Linux pid_max: never a real backend
    assert uuid.UUID(values["FILE_ID"])
    assert len(values["abc123xyz"]) >= 40
    assert values["abc123xyz"].replace("-", "").replace("_", "").isalnum()
