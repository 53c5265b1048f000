"""SQL steps without a server: where the SQL is, psql's options, positions -> lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from runbook_checks.runbook.model import Phase, Runbook, Step, StepKind
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.runbook.sql import split_statements
from runbook_checks.steps.binding import Bindings, bind
from runbook_checks.steps.sql import format_table, runbook_line, sql_source

RUNBOOK = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return parse_runbook(RUNBOOK)


def step_at(runbook: Runbook, line: int) -> Step:
    for section in runbook.sections:
        for step in (*section.steps, *section.other_steps):
            if step.line == line:
                return step
    raise LookupError(line)


def sql_step(text: str, raw: str = "", line: int = 10) -> Step:
    return Step(
        text=text,
        raw=raw or text,
        line=line,
        language="sql",
        kind=StepKind.SQL,
        phase=Phase.MITIGATION,
    )


def test_a_statement_taken_out_of_a_psql_line(runbook: Runbook) -> None:
    step = step_at(runbook, 301)  # psql $DATABASE_URL -c "\n  SELECT user_id ..."
    source = sql_source(step)
    assert source.via_psql
    assert source.connection == "$DATABASE_URL"
    assert source.sql == (step.text,)
    assert source.lines == (302,)  # the SELECT is on the line after `psql ... -c "`


def test_a_one_line_psql_and_a_fenced_statement(runbook: Runbook) -> None:
    select_one = sql_source(step_at(runbook, 89))
    assert (select_one.sql, select_one.lines, select_one.via_psql) == (("SELECT 1;",), (89,), True)
    terminate = sql_source(step_at(runbook, 191))
    assert not terminate.via_psql
    assert terminate.lines == (191,)
    assert terminate.sql[0].startswith("SELECT pg_terminate_backend(pid)\nFROM")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("psql $DATABASE_URL", "psql without -c opens an interactive session"),
        (
            "psql -f fix.sql $DATABASE_URL",
            "psql -f runs a script file the runbook does not include",
        ),
    ],
)
def test_psql_lines_that_need_a_person(line: str, reason: str) -> None:
    assert sql_source(sql_step(line)).manual_reason == reason


def test_psql_options() -> None:
    source = sql_source(
        sql_step(
            'sudo -u postgres psql -X -h db -d "$DATABASE_URL" -c "SELECT 1" --command=\'SELECT 2\''
        )
    )
    assert source.sql == ("SELECT 1", "SELECT 2")
    assert source.connection == "$DATABASE_URL"
    assert source.ignored == ("-X", "-h db")


def test_error_position_maps_to_the_runbook_line() -> None:
    sql = "\n  SELECT user_id, subscription_tier\n  FROM users\n  WHERE id = 'FILE_ID';\n"
    bindings = Bindings(values={"FILE_ID": "0b6f7d8e-0000-4000-8000-000000000000"})
    bound = bind(sql, bindings, sql=True)
    [statement] = split_statements(bound.text)
    # PostgreSQL reports 42703 at the 8th character of the statement ("user_id")
    assert runbook_line(8, statement.start, bound, sql, first_line=300) == 301
    at_where = statement.text.index("WHERE") + 1
    assert runbook_line(at_where, statement.start, bound, sql, first_line=300) == 303


def test_rows_print_like_psql() -> None:
    table = format_table(
        ("count", "state", "since", "ok"),
        [(5, None, dt.timedelta(seconds=3), True), (20, "idle", None, False)],
    )
    assert table.splitlines() == [
        " count | state |  since  | ok",
        "-------+-------+---------+----",
        "     5 |       | 0:00:03 | t",
        "    20 | idle  |         | f",
        "(2 rows)",
    ]
    assert format_table(("x",), [(Decimal("1.5"),)]).endswith("(1 row)")
