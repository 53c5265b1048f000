"""SQL steps: fenced `sql` statements and `psql $DATABASE_URL -c "..."` lines.

Run through psycopg with psql's semantics: autocommit, one statement at a time in
order (split the way psql's lexer splits), stopping at the first error (as `psql -c`
and `ON_ERROR_STOP` do). Every statement has a `statement_timeout` equal to the step's
timeout, and a client-side deadline backs it up for a server that does not answer at
all (a paused process). A PostgreSQL error comes back as a `failed` result with the
server's message, its SQLSTATE and, where the server gives a position, the runbook line
it points at. Exit codes follow psql: 0 success, 1 an SQL error, 2 no connection.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import shlex
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from urllib.parse import urlsplit

from runbook_checks.runbook.model import Step
from runbook_checks.runbook.sql import split_statements
from runbook_checks.steps.base import (
    ExecContext,
    StepResult,
    StepStatus,
    excerpt,
    unbound_result,
)
from runbook_checks.steps.binding import Bound, bind

T = TypeVar("T")

APPLICATION_NAME = "runbook-checks"
PSQL_EXIT_OK, PSQL_EXIT_SQL_ERROR, PSQL_EXIT_CONNECTION = 0, 1, 2


@dataclass(frozen=True)
class SqlSource:
    """Where a step's SQL is and how it is to be reached."""

    sql: tuple[str, ...]  # the SQL texts as written (one per psql -c; one for a sql block)
    lines: tuple[int, ...]  # runbook line of each text's first character
    via_psql: bool
    connection: str = ""  # psql's connection argument as written ("$DATABASE_URL")
    ignored: tuple[str, ...] = ()  # psql options that do not apply here
    manual_reason: str = ""


_PSQL_VALUE_OPTIONS = frozenset(
    {"-h", "--host", "-p", "--port", "-U", "--username", "-v", "--set", "--variable",
     "-P", "--pset", "-F", "--field-separator", "-R", "--record-separator", "-T",
     "--table-attr", "-L", "--log-file", "-o", "--output"}
)  # fmt: skip


def _psql_argv(text: str) -> list[str] | None:
    """The words of a psql command line (prefixes like sudo removed); None if not psql."""
    from runbook_checks.runbook.words import command_words

    if not any(os.path.basename(w) == "psql" for w in text.split()[:6]):
        return None
    try:
        argv = command_words(shlex.split(text.replace("\\\n", "")))
    except ValueError:
        return None
    return argv if argv and os.path.basename(argv[0]) == "psql" else None


@dataclass(frozen=True)
class _Psql:
    commands: tuple[str, ...] = ()
    connection: str = ""
    ignored: tuple[str, ...] = ()
    manual_reason: str = ""


def _parse_psql(argv: list[str]) -> _Psql:
    commands: list[str] = []
    connection = ""
    ignored: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else ""
        if arg in ("-c", "--command"):
            commands.append(following)
            i += 2
            continue
        if arg in ("-d", "--dbname"):
            connection = connection or following
            i += 2
            continue
        if arg in _PSQL_VALUE_OPTIONS:
            ignored.append(f"{arg} {following}".strip())
            i += 2
            continue
        if arg.startswith("--command="):
            commands.append(arg.split("=", 1)[1])
        elif arg.startswith("-c") and len(arg) > 2:
            commands.append(arg[2:])
        elif arg in ("-f", "--file") or arg.startswith("--file="):
            return _Psql(manual_reason="psql -f runs a script file the runbook does not include")
        elif arg.startswith("--dbname="):
            connection = connection or arg.split("=", 1)[1]
        elif arg.startswith("-"):
            ignored.append(arg)
        elif not connection:
            connection = arg
        i += 1
    if not commands:
        return _Psql(
            connection=connection, manual_reason="psql without -c opens an interactive session"
        )
    return _Psql(tuple(commands), connection, tuple(ignored))


def sql_source(step: Step) -> SqlSource:
    """The SQL of `step`: the `-c` argument(s) of a psql line, or the statement itself
    (which the parser may have taken out of a psql line: `raw` then holds that line)."""
    argv = _psql_argv(step.text)
    if argv is not None:
        psql = _parse_psql(argv)
        if psql.manual_reason:
            return SqlSource((), (), True, psql.connection, manual_reason=psql.manual_reason)
        lines = tuple(_line_of(step, c) for c in psql.commands)
        return SqlSource(psql.commands, lines, True, psql.connection, psql.ignored)
    raw_argv = _psql_argv(step.raw) if step.raw else None
    if raw_argv is not None:
        psql = _parse_psql(raw_argv)
        text = step.text
        return SqlSource((text,), (_line_of(step, text),), True, psql.connection, psql.ignored)
    source = _exact_source(step)
    return SqlSource((source,), (_line_of(step, source),), False)


def _normalise(sql: str) -> str:
    without = re.sub(r"--[^\n]*", " ", sql)
    return " ".join(without.split())


def _exact_source(step: Step) -> str:
    """The statement with its original line breaks when `raw` holds just it."""
    raw = step.raw
    if raw and _normalise(raw) == _normalise(step.text):
        return raw
    return step.text


def _line_of(step: Step, sql: str) -> int:
    raw = step.raw or step.text
    index = raw.find(sql)
    if index < 0:
        first = sql.strip().splitlines()[0] if sql.strip() else ""
        index = raw.find(first) if first else -1
        if index < 0:
            return step.line
        # sql's leading blank lines are not in the located text
        return step.line + raw.count("\n", 0, index) - sql[: sql.find(first)].count("\n")
    return step.line + raw.count("\n", 0, index)


def run_sql(step: Step, ctx: ExecContext) -> StepResult:
    source = sql_source(step)
    if source.manual_reason:
        return StepResult(step=step, status=StepStatus.MANUAL, reason=source.manual_reason)
    notes: list[str] = [f"psql option {o!r} ignored" for o in source.ignored]

    bound_sql = [bind(sql, ctx.bindings, sql=True) for sql in source.sql]
    conn_bound = bind(source.connection, ctx.bindings) if source.connection else None
    all_bound = tuple(
        dict.fromkeys(
            n for b in [*bound_sql, *([conn_bound] if conn_bound else [])] for n in b.bound
        )
    )
    all_unbound = tuple(
        dict.fromkeys(
            n for b in [*bound_sql, *([conn_bound] if conn_bound else [])] for n in b.unbound
        )
    )

    if all_unbound:
        shown = conn_bound.text if conn_bound else ""
        executed = ctx.redact(_executed(source, shown, [b.text for b in bound_sql]))
        merged = Bound("", "", all_bound, all_unbound)
        return _with_notes(unbound_result(step, merged, executed), notes)
    url, url_note, refused = _database_url(conn_bound, ctx)
    if url_note:
        notes.append(url_note)
    executed = ctx.redact(_executed(source, url, [b.text for b in bound_sql]))
    if refused:
        return StepResult(
            step=step,
            status=StepStatus.ERROR,
            executed=executed,
            error=refused,
            bound_placeholders=all_bound,
            notes=tuple(notes),
        )

    outcome = _execute(url, bound_sql, source, ctx)
    return StepResult(
        step=step,
        status=StepStatus.OK if outcome.exit_code == 0 else StepStatus.FAILED,
        executed=executed,
        exit_code=outcome.exit_code,
        output=ctx.redact(excerpt(outcome.output)),
        rows=outcome.rows,
        columns=outcome.columns,
        error=ctx.redact(outcome.error),
        sqlstate=outcome.sqlstate,
        error_line=outcome.error_line,
        suggestion=outcome.hint,
        bound_placeholders=all_bound,
        notes=tuple(notes),
    )


def _with_notes(result: StepResult, notes: list[str]) -> StepResult:
    from dataclasses import replace

    return replace(result, notes=tuple(notes)) if notes else result


def _database_url(conn: Bound | None, ctx: ExecContext) -> tuple[str, str, str]:
    """(url to use, note, refusal). A psql connection argument that is a URL or conninfo
    naming a host on loopback or one the profile allows (`bindings.reach`) is honoured (a
    scenario may point $DATABASE_URL at a replica); any other host is refused, the
    stack's own database too when the profile does not allow it; a database name alone
    gets the stack's database."""
    url, note = _chosen_url(conn, ctx.stack.endpoints.database_url)
    if "://" in url:
        host = urlsplit(url).hostname or ""
    else:  # a conninfo string
        match = re.search(r"\bhost\s*=\s*(\S+)", url)
        host = match.group(1) if match else "127.0.0.1"
    refused = ctx.bindings.reach.refusal(host, "database")
    if refused is not None:
        if conn is not None and conn.text and not conn.unbound:
            refused += f" (or bind {conn.source} to the stack's database)"
        return url, "", refused
    return url, note, ""


def _chosen_url(conn: Bound | None, stack_url: str) -> tuple[str, str]:
    """The connection the step asks for (as written, bound), and a note."""
    if conn is None or not conn.text or conn.unbound:
        return stack_url, ""
    if "://" in conn.text or "=" in conn.text:
        return conn.text, ""
    return stack_url, f"psql database argument {conn.text!r}: the stack's database is used"


def _executed(source: SqlSource, url: str, sql: Sequence[str]) -> str:
    if not source.via_psql:
        return "\n".join(sql)
    parts = ["psql", url]
    for text in sql:
        parts += ["-c", text]
    return shlex.join(parts)


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    output: str = ""
    rows: tuple[tuple[object, ...], ...] = ()
    columns: tuple[str, ...] = ()
    error: str = ""
    sqlstate: str | None = None
    error_line: int | None = None
    hint: str = ""


def _execute(url: str, bound_sql: list[Bound], source: SqlSource, ctx: ExecContext) -> _Outcome:
    import psycopg

    timeout_ms = max(int(ctx.timeout_s * 1000), 1)
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, math.ceil(ctx.timeout_s)),
            application_name=APPLICATION_NAME,
            options=f"-c statement_timeout={timeout_ms}",
        )
    except psycopg.Error as exc:
        return _Outcome(PSQL_EXIT_CONNECTION, error=f"psql: error: {_message(exc)}")
    outputs: list[str] = []
    rows: tuple[tuple[object, ...], ...] = ()
    columns: tuple[str, ...] = ()
    try:
        for bound, sql, first_line in zip(bound_sql, source.sql, source.lines, strict=True):
            for statement in split_statements(bound.text):
                if statement.text.startswith("\\"):
                    return _Outcome(
                        PSQL_EXIT_SQL_ERROR,
                        "\n".join(outputs),
                        rows,
                        columns,
                        error=f"psql meta-command {statement.text.split()[0]!r} is not "
                        "emulated (it is not SQL)",
                    )
                query = statement.text.encode()
                try:
                    cursor = _with_deadline(
                        functools.partial(conn.execute, query),
                        ctx.timeout_s + 2.0,
                        functools.partial(_shutdown, conn),
                    )
                except psycopg.Error as exc:
                    line = _error_line(exc, statement.start, bound, sql, first_line)
                    diag = exc.diag
                    where = f" (runbook line {line})" if line is not None else ""
                    error = f"ERROR:  {_message(exc)}"
                    if exc.sqlstate:
                        error += f" [SQLSTATE {exc.sqlstate}]"
                    error += where
                    if conn.broken:
                        return _Outcome(
                            PSQL_EXIT_CONNECTION,
                            "\n".join(outputs),
                            rows,
                            columns,
                            error=error,
                            sqlstate=exc.sqlstate,
                            error_line=line,
                        )
                    return _Outcome(
                        PSQL_EXIT_SQL_ERROR,
                        "\n".join(outputs),
                        rows,
                        columns,
                        error=error,
                        sqlstate=exc.sqlstate,
                        error_line=line,
                        hint=diag.message_hint or "",
                    )
                except TimeoutError:
                    return _Outcome(
                        PSQL_EXIT_CONNECTION,
                        "\n".join(outputs),
                        rows,
                        columns,
                        error=f"no answer from the server within {ctx.timeout_s + 2.0:.0f}s "
                        "(statement_timeout did not fire: the server is not responding); "
                        "connection closed",
                    )
                if cursor.description is not None:
                    columns = tuple(d.name for d in cursor.description)
                    rows = tuple(tuple(r) for r in cursor.fetchall())
                    outputs.append(format_table(columns, rows))
                else:
                    outputs.append(cursor.statusmessage or "")
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return _Outcome(PSQL_EXIT_OK, "\n".join(outputs), rows, columns)


def _message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc)
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    if detail:
        text += f"\nDETAIL:  {detail}"
    return text.strip()


def _error_line(
    exc: BaseException, statement_start: int, bound: Bound, sql: str, first_line: int
) -> int | None:
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None) if diag is not None else None
    if not position:
        return None
    try:
        number = int(position)
    except ValueError:
        return None
    return runbook_line(number, statement_start, bound, sql, first_line)


def runbook_line(
    position: int, statement_start: int, bound: Bound, sql: str, first_line: int
) -> int:
    """The runbook line of a server error position.

    `position` is PostgreSQL's (1-based, in the statement as sent); the statement starts
    at `statement_start` in `bound.text`; `bound` came from `sql`, whose first character
    is on runbook line `first_line`.
    """
    source_offset = bound.source_offset(statement_start + position - 1)
    return first_line + sql.count("\n", 0, source_offset)


def _shutdown(conn: object) -> None:
    """Close a connection's socket under a blocked query (the server does not answer)."""
    try:
        fileno = conn.pgconn.socket  # type: ignore[attr-defined]
        duplicate = socket.socket(fileno=os.dup(fileno))
    except Exception:
        return
    with contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)
    duplicate.close()


def _with_deadline(call: Callable[[], T], timeout_s: float, on_timeout: Callable[[], None]) -> T:
    """`call()` in a worker thread; after `timeout_s`, `on_timeout()` and TimeoutError."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name="runbook-checks-sql", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        on_timeout()
        worker.join(5.0)
        raise TimeoutError(f"no answer within {timeout_s:.1f}s")
    if "error" in box:
        error = box["error"]
        assert isinstance(error, BaseException)
        raise error
    return box["value"]  # type: ignore[return-value]


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows the way psql's aligned format prints them."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], *(len(part) for part in cell.split("\n")))
    header = "|".join(f" {c.center(widths[i])} " for i, c in enumerate(columns))
    rule = "+".join("-" * (w + 2) for w in widths)
    numeric = [
        bool(rows)
        and all(
            (isinstance(row[i], int | float | Decimal) and not isinstance(row[i], bool))
            or row[i] is None
            for row in rows
        )
        for i in range(len(columns))
    ]
    body = [
        "|".join(
            f" {cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])} "
            for i, cell in enumerate(row)
        ).rstrip()
        for row in cells
    ]
    count = len(rows)
    footer = f"({count} row{'s' if count != 1 else ''})"
    return "\n".join([header.rstrip(), rule, *body, footer])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)
