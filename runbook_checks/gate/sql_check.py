"""SQL: every statement parses with PostgreSQL's own parser (pglast), and, with a stack,
is valid against the twin's live schema.

Live validation never changes anything: each statement runs in its own transaction,
which is always rolled back. SELECT, INSERT, UPDATE, DELETE and MERGE are not executed
at all: `EXPLAIN` plans them (names, types and functions are resolved) in a read-only
transaction. `EXPLAIN ANALYZE` would execute, so its inner statement is planned instead.
Transactional DDL (CREATE INDEX, ALTER TABLE ...) runs inside the rolled-back transaction
with short lock and statement timeouts; `CONCURRENTLY`, which refuses transactions, is
checked in its plain form. Statements with effects outside a transaction (VACUUM, DO,
CALL, COPY, BEGIN/COMMIT ...) are parsed only, and said so.

Every statement ends either validated or reported (`check_statements`): one that does
not parse is a syntax error, one that cannot be sent (those above, a psql meta-command)
is `sql-not-validated` with the reason. Placeholders are bound to harmless values of the
right shape (`gate.placeholders`), and a bare word only where the statement needs a value
(`gate.sql_binding`): a misspelled keyword, type or value in capitals (`SELEC`, `INTEGR`,
`ACTIVE`) reaches the parser and the server as written.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pglast import ast as pg_ast
from pglast.enums import SetOperation as SetOp
from pglast.enums import VariableSetKind as VarSet

from runbook_checks.findings import Finding, Level
from runbook_checks.gate.locate import Located
from runbook_checks.gate.placeholders import RoleValues, harmless_values
from runbook_checks.gate.sql_binding import (
    Occurrence,
    candidates,
    describe,
    parse_error,
    substitute,
    value_positions,
)
from runbook_checks.runbook.model import StepKind
from runbook_checks.runbook.sql import Statement, split_statements
from runbook_checks.steps.binding import Bound
from runbook_checks.steps.sql import sql_source

if TYPE_CHECKING:
    import psycopg

SYNTAX = "sql-syntax-error"
UNDEFINED_COLUMN = "sql-undefined-column"
UNDEFINED_TABLE = "sql-undefined-table"
UNDEFINED_FUNCTION = "sql-undefined-function"
UNDEFINED_OBJECT = "sql-undefined-object"
WRONG_TYPE = "sql-type-mismatch"
INVALID_VALUE = "sql-invalid-value"
ALREADY_EXISTS = "sql-already-exists"
NOT_VALIDATED = "sql-not-validated"
SQL_ERROR = "sql-error"
STATIC_KINDS = (SYNTAX,)
LIVE_KINDS = (
    SYNTAX,  # a statement that parses only without its placeholders bound
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    UNDEFINED_FUNCTION,
    UNDEFINED_OBJECT,
    WRONG_TYPE,
    INVALID_VALUE,
    ALREADY_EXISTS,
    NOT_VALIDATED,
    SQL_ERROR,
)

_BY_SQLSTATE = {
    "42703": UNDEFINED_COLUMN,
    "42P01": UNDEFINED_TABLE,
    "42883": UNDEFINED_FUNCTION,
    "42704": UNDEFINED_OBJECT,
    "3F000": UNDEFINED_OBJECT,
    "42804": WRONG_TYPE,
    "42P18": WRONG_TYPE,
    "42P07": ALREADY_EXISTS,
    "42710": ALREADY_EXISTS,
    "42P06": ALREADY_EXISTS,
    "42601": SYNTAX,
}
# raised by the check's own limits or the twin's grants, not by the runbook's text
_NOT_VALIDATED_STATES = frozenset({"25001", "25006", "55P03", "57014", "42501", "0A000", "42P02"})

EXPLAINABLE = frozenset(
    {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CreateTableAsStmt"}
)
# utility statements whose every effect a ROLLBACK undoes
TRANSACTIONAL = frozenset(
    {
        "CreateStmt",
        "IndexStmt",
        "AlterTableStmt",
        "DropStmt",
        "RenameStmt",
        "CommentStmt",
        "GrantStmt",
        "ViewStmt",
        "CreateSeqStmt",
        "AlterSeqStmt",
        "TruncateStmt",
        "VariableSetStmt",
        "VariableShowStmt",
        "CreateSchemaStmt",
        "CreateFunctionStmt",
        "CreateTrigStmt",
        "AlterOwnerStmt",
        "LockStmt",
        "CreateDomainStmt",
        "AlterDomainStmt",
        "CreateEnumStmt",
        "CompositeTypeStmt",
        "DefineStmt",
        "CreateExtensionStmt",
        "AlterObjectSchemaStmt",
        "CreateStatsStmt",
        "RuleStmt",
        "CreatePolicyStmt",
        "AlterPolicyStmt",
        "GrantRoleStmt",
        "AlterRoleSetStmt",
    }
)


@dataclass(frozen=True)
class SqlText:
    """One SQL text of a step (a sql block statement, or one psql -c argument)."""

    located: Located
    sql: str  # as written
    first_line: int  # runbook line of sql's first character


def sql_texts(steps: Sequence[Located], source: str | None = None) -> Iterator[SqlText]:
    """The SQL texts of `steps`. With the runbook's `source` text, each text's first line
    is found in it (the occurrence nearest the step), not derived from the step."""
    for item in steps:
        if item.step.kind is not StepKind.SQL:
            continue
        sql_of = sql_source(item.step)
        if sql_of.manual_reason:
            continue
        for sql, line in zip(sql_of.sql, sql_of.lines, strict=True):
            found = locate(sql, source, item.step.line) if source is not None else None
            yield SqlText(item, sql, found or line)


def locate(text: str, source: str, near: int) -> int | None:
    """The 1-based line of the occurrence of `text` in `source` nearest line `near`."""
    needle = text.strip()
    if not needle:
        return None
    best: int | None = None
    at = source.find(needle)
    while at >= 0:
        line = source.count("\n", 0, at) + 1
        if best is None or abs(line - near) < abs(best - near):
            best = line
        at = source.find(needle, at + 1)
    if best is None:
        return None
    # `text` may start with blank lines that `needle` dropped
    return best - text[: text.find(needle)].count("\n")


def _line_at(sql: str, first_line: int, offset: int) -> int:
    return first_line + sql.count("\n", 0, max(0, min(offset, len(sql))))


def _finding(
    text: SqlText,
    level: Level,
    kind: str,
    statement: str,
    message: str,
    line: int,
    suggestion: str = "",
    evidence: str = "",
) -> Finding:
    return Finding(
        level,
        kind,
        text.located.section.id,
        message,
        line=line,
        statement=statement,
        suggestion=suggestion,
        evidence=evidence,
    )


# -- static ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntaxProblem:
    """Why a statement does not parse, as written and with its placeholders bound."""

    message: str  # pglast's, for the statement as written
    offset: int  # where it points, in the statement as written
    tried: str = ""  # the placeholder binding also tried ("" when there was none)


def syntax_problem(statement: str, roles: RoleValues) -> SyntaxProblem | None:
    """None when `statement` parses as written, or once the words that may be
    placeholders are bound to literals (`sql_binding`); else what pglast says."""
    error = parse_error(statement)
    if error is None:
        return None
    found = candidates(statement)
    if not found.bare:
        return SyntaxProblem(*error)
    chosen = (*found.quoted, *found.bare)
    if parse_error(substitute(statement, chosen, roles).text) is None:
        return None
    return SyntaxProblem(*error, tried=describe(found.bare))


def _statement_offset(text: SqlText, statement: Statement) -> int:
    offset = text.sql.find(statement.text, statement.start)
    return statement.start if offset < 0 else offset


def _syntax_finding(text: SqlText, statement: Statement, problem: SyntaxProblem) -> Finding:
    """The one finding for a statement that does not parse (the static check and the live
    one make the same, so the gate keeps one)."""
    message = f"PostgreSQL cannot parse this statement: {problem.message}"
    if problem.tried:
        message += f" (nor with {problem.tried})"
    return _finding(
        text,
        Level.ERROR,
        SYNTAX,
        statement.text,
        message,
        _line_at(text.sql, text.first_line, _statement_offset(text, statement) + problem.offset),
        "correct the statement's syntax (it fails before reaching the server)",
    )


def check_sql_syntax(steps: Sequence[Located], source: str | None = None) -> list[Finding]:
    """Every statement parses with pglast (PostgreSQL's parser), as written or once its
    placeholders are bound."""
    roles = harmless_values()
    findings: list[Finding] = []
    for text in sql_texts(steps, source):
        for statement in split_statements(text.sql):
            if statement.text.startswith("\\"):
                continue  # psql's, not the server's; the live check reports it
            problem = syntax_problem(statement.text, roles)
            if problem is not None:
                findings.append(_syntax_finding(text, statement, problem))
    return findings


# -- live --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    sql: str  # what is sent
    prefix: int  # characters before the statement's own text (0: sent as written)
    read_only: bool
    mappable: bool  # positions in `sql` map back to the statement
    note: str = ""
    skip: str = ""  # why it is not sent at all


def plan_statement(text: str) -> Plan:
    """How to validate one (bound) statement without effects."""
    from pglast import parse_sql
    from pglast.parser import ParseError
    from pglast.stream import RawStream

    try:
        parsed = parse_sql(text)
    except ParseError as exc:
        return Plan("", 0, True, False, skip=f"does not parse: {exc.args[0]}")
    if len(parsed) != 1:
        return Plan("", 0, True, False, skip="not a single statement")
    node: Any = parsed[0].stmt
    name = type(node).__name__
    if name == "ExplainStmt":
        options = {getattr(o, "defname", "") for o in (node.options or ())}
        if "analyze" in options:
            inner = RawStream()(node.query)
            return Plan(
                f"EXPLAIN {inner}",
                0,
                True,
                False,
                note="EXPLAIN ANALYZE executes: its statement was planned instead",
            )
        return Plan(text, 0, True, True)
    if name in EXPLAINABLE:
        return Plan(f"EXPLAIN {text}", len("EXPLAIN "), True, True)
    if name == "IndexStmt" and getattr(node, "concurrent", False):
        node.concurrent = False
        return Plan(
            RawStream()(node),
            0,
            False,
            False,
            note="CONCURRENTLY cannot run in a transaction: checked without it",
        )
    if name in TRANSACTIONAL:
        return Plan(text, 0, False, True)
    return Plan(
        "",
        0,
        True,
        False,
        skip=f"a {name} has effects a rollback cannot undo (or ends the transaction)",
    )


class SchemaValidator:
    """Validates statements on one connection; every transaction is rolled back."""

    def __init__(self, database_url: str, *, timeout_s: float = 5.0) -> None:
        import psycopg

        self.timeout_ms = max(int(timeout_s * 1000), 100)
        self.conn: psycopg.Connection[Any] = psycopg.connect(
            database_url,
            autocommit=False,
            connect_timeout=max(2, int(timeout_s)),
            application_name="runbook-checks-gate",
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.rollback()
        with contextlib.suppress(Exception):
            self.conn.close()

    def __enter__(self) -> SchemaValidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin(self, read_only: bool) -> None:
        if read_only:
            self.conn.execute("SET TRANSACTION READ ONLY")
        self.conn.execute(f"SET LOCAL statement_timeout = {self.timeout_ms}")
        self.conn.execute(f"SET LOCAL lock_timeout = {min(self.timeout_ms, 1000)}")

    def attempt(self, plan: Plan) -> psycopg.Error | None:
        """Send `plan.sql` in a transaction that is rolled back; the error, if any."""
        import psycopg

        try:
            self._begin(plan.read_only)
            self.conn.execute(plan.sql.encode())
        except psycopg.Error as exc:
            return exc
        finally:
            self.conn.rollback()
        return None

    def rows(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        try:
            self._begin(True)
            return list(self.conn.execute(query, params).fetchall())
        finally:
            self.conn.rollback()

    # -- suggestions ---------------------------------------------------------------------
    def columns(self, table: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                table,
            )
        ]

    def relations(self) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.relkind IN ('r','v','m','p','f') "
                "AND n.nspname = ANY(current_schemas(true))"
            )
        ]

    def extension(self, name: str) -> tuple[str, str | None] | None:
        found = self.rows(
            "SELECT name, installed_version FROM pg_available_extensions WHERE name = %s", name
        )
        return (str(found[0][0]), found[0][1]) if found else None

    def functions(self) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT DISTINCT p.proname FROM pg_proc p JOIN pg_namespace n "
                "ON n.oid = p.pronamespace WHERE n.nspname = ANY(current_schemas(true))"
            )
        ]


_QUOTED = re.compile(r'"([^"]+)"')
_COLUMN = re.compile(r"column (?:\"?([\w.]+)\"?\.)?\"?(\w+)\"? does not exist")


def relations_in(statement: str) -> list[str]:
    """Tables the statement names (FROM, JOIN, UPDATE, INSERT INTO ...)."""
    from pglast import parse_sql
    from pglast.parser import ParseError
    from pglast.visitors import Visitor

    names: list[str] = []

    class _Tables(Visitor):
        def visit_RangeVar(self, ancestors: object, node: Any) -> None:
            name = f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
            if name not in names:
                names.append(name)

    try:
        for raw in parse_sql(statement):
            _Tables()(raw)
    except ParseError:
        return []
    return names


def _suggest(kind: str, exc: psycopg.Error, statement: str, db: Validator) -> str:
    primary = exc.diag.message_primary or ""
    hint = exc.diag.message_hint or ""
    parts: list[str] = [hint] if hint else []
    try:
        if kind == UNDEFINED_COLUMN:
            match = _COLUMN.search(primary)
            missing = match.group(2) if match else ""
            known = {t: db.columns(t) for t in relations_in(statement)}
            # the tables that lack the column are the ones the statement may mean
            lacking = {t: c for t, c in known.items() if missing not in c} or known
            candidates = [c for cols in lacking.values() for c in cols if c != missing]
            close = difflib.get_close_matches(missing, candidates, n=3, cutoff=0.4)
            if close:
                parts.append(f"did you mean {' or '.join(close)}?")
            listed = "; ".join(
                f"{t} has {', '.join(c) or '(no such table)'}" for t, c in lacking.items()
            )
            if listed:
                parts.append(f"no {missing} in: {listed}")
        elif kind == UNDEFINED_TABLE:
            quoted = _QUOTED.findall(primary)
            missing = quoted[0] if quoted else ""
            extension = db.extension(missing.split(".")[-1]) if missing else None
            if extension is not None and extension[1] is None:
                parts.append(
                    f"{missing} comes with the {extension[0]} extension, not installed here: "
                    f"`CREATE EXTENSION {extension[0]};` (and say so in the runbook)"
                )
            close = difflib.get_close_matches(missing, db.relations(), n=3, cutoff=0.5)
            if close:
                parts.append(f"did you mean {' or '.join(close)}?")
        elif kind == UNDEFINED_FUNCTION:
            name = primary.split("(", 1)[0].rsplit(" ", 1)[-1]
            close = difflib.get_close_matches(name, db.functions(), n=3, cutoff=0.6)
            if close:
                parts.append(f"functions with a similar name: {', '.join(close)}")
        elif kind == ALREADY_EXISTS:
            parts.append(
                "make it idempotent: CREATE ... IF NOT EXISTS (the step may be run "
                "again during an incident)"
            )
    except Exception:  # suggestions are a courtesy; never let them hide the finding
        pass
    return "; ".join(p for p in parts if p)


def _error_line(exc: psycopg.Error, plan: Plan, start: int, bound: Bound, text: SqlText) -> int:
    """The runbook line an error points at; `bound` came from the statement that starts at
    offset `start` of `text.sql`."""
    position = exc.diag.statement_position
    if position and plan.mappable:
        in_statement = max(int(position) - plan.prefix, 1) - 1
        return _line_at(text.sql, text.first_line, start + bound.source_offset(in_statement))
    # no usable position: the first name the message quotes, found in the statement
    for name in _QUOTED.findall(exc.diag.message_primary or str(exc)):
        # an unquoted name comes back folded to lower case
        word = re.escape(name.split(".")[-1])
        pattern = re.compile(rf"(?<![\w\"]){word}(?![\w\"])", re.IGNORECASE)
        match = pattern.search(text.sql, start)
        if match:
            return _line_at(text.sql, text.first_line, match.start())
    return _line_at(text.sql, text.first_line, start)


class Validator(Protocol):
    """What `validate_sql` needs from the database (`SchemaValidator`)."""

    def attempt(self, plan: Plan) -> psycopg.Error | None: ...
    def columns(self, table: str) -> list[str]: ...
    def relations(self) -> list[str]: ...
    def extension(self, name: str) -> tuple[str, str | None] | None: ...
    def functions(self) -> list[str]: ...


@dataclass(frozen=True)
class Checked:
    """What became of one SQL statement: validated (`finding` is None), or a finding."""

    text: SqlText
    statement: str  # as written
    line: int  # of its first character
    finding: Finding | None = None
    sent: str = ""  # validated: what the server accepted
    bound: tuple[str, ...] = ()  # the placeholders bound in what was sent

    @property
    def validated(self) -> bool:
        return self.finding is None


def check_statements(
    steps: Sequence[Located], db: Validator, source: str | None = None
) -> list[Checked]:
    """Every SQL statement of `steps`, in order, each validated against the live schema
    behind `db` or reported: never skipped without a word."""
    roles = harmless_values()
    return [
        _check(text, statement, db, roles)
        for text in sql_texts(steps, source)
        for statement in split_statements(text.sql)
    ]


def validate_sql(
    steps: Sequence[Located], db: Validator, source: str | None = None
) -> list[Finding]:
    """The findings of `check_statements`."""
    return [c.finding for c in check_statements(steps, db, source) if c.finding is not None]


def _check(text: SqlText, statement: Statement, db: Validator, roles: RoleValues) -> Checked:
    """Validate one statement as written, binding a bare placeholder only where the
    statement needs a value: where it does not parse without one, or where the server
    does not know the column the word names (`pg_terminate_backend(PID)`)."""
    written = statement.text
    start = _statement_offset(text, statement)
    line = _line_at(text.sql, text.first_line, start)

    def report(finding: Finding) -> Checked:
        return Checked(text, written, line, finding)

    def not_validated(why: str, level: Level = Level.INFO, evidence: str = "") -> Checked:
        message = f"not validated against the schema: {why}"
        return report(_finding(text, level, NOT_VALIDATED, written, message, line, "", evidence))

    if written.startswith("\\"):
        return not_validated("a psql meta-command: psql runs it, the server never sees it")
    found = candidates(written)
    positions = value_positions(written)
    chosen: list[Occurrence] = list(found.quoted)
    if positions is None:  # does not parse as written
        problem = syntax_problem(written, roles)
        if problem is not None:
            return report(_syntax_finding(text, statement, problem))
        chosen += found.bare  # a literal in their place makes it parse
    expression = positions is not None  # bare words bound only where a column can stand
    bound = substitute(written, chosen, roles, expression=expression)
    while True:
        plan = plan_statement(bound.text)
        if plan.skip:  # a statement that does not parse here is an error all the same
            level = Level.ERROR if plan.skip.startswith("does not parse") else Level.INFO
            return not_validated(plan.skip, level, _sent(bound))
        error = db.attempt(plan)
        if error is None:
            return Checked(text, written, line, sent=plan.sql, bound=bound.bound)
        needed = _needed(error, found.bare, chosen, positions)
        if not needed:
            return report(_from_error(error, plan, start, bound, text, written, db))
        chosen += needed
        bound = substitute(written, chosen, roles, expression=True)
        broken = parse_error(bound.text)
        if broken is not None:
            return report(_unparsable_once_bound(text, start, written, bound, needed, broken))


def _sent(bound: Bound) -> str:
    return f"bound: {bound.text}" if bound.bound else ""


def _needed(
    exc: psycopg.Error,
    bare: Sequence[Occurrence],
    chosen: Sequence[Occurrence],
    positions: frozenset[int] | None,
) -> list[Occurrence]:
    """The bare placeholders to bind after `exc`: those standing where a value goes whose
    name is the column the server says does not exist (an unquoted word is folded to
    lower case, as PostgreSQL does)."""
    if exc.sqlstate != "42703" or positions is None:
        return []
    match = _COLUMN.search(exc.diag.message_primary or str(exc))
    if match is None or match.group(1):
        return []
    missing = match.group(2)
    return [
        o
        for o in bare
        if o not in chosen and o.start in positions and o.name.lower() == missing.lower()
    ]


def _unparsable_once_bound(
    text: SqlText,
    start: int,
    written: str,
    bound: Bound,
    needed: Sequence[Occurrence],
    broken: tuple[str, int],
) -> Finding:
    message, where = broken
    tried = describe(needed, expression=True)
    names = ", ".join(dict.fromkeys(o.name for o in needed))
    return _finding(
        text,
        Level.ERROR,
        SYNTAX,
        written,
        f"parses as written, but not with {tried}: {message} (as written, {names} is a "
        "column the schema does not have)",
        _line_at(text.sql, text.first_line, start + bound.source_offset(where)),
        f"write {names} where a value can stand (a literal, or a function's argument), or "
        "quote it as a string literal if it stands for text",
        f"sent: {bound.text}",
    )


def _from_error(
    exc: psycopg.Error,
    plan: Plan,
    start: int,
    bound: Bound,
    text: SqlText,
    as_written: str,
    db: Validator,
) -> Finding:
    state = exc.sqlstate or ""
    primary = exc.diag.message_primary or str(exc)
    line = _error_line(exc, plan, start, bound, text)
    evidence = f"ERROR:  {primary} [SQLSTATE {state}]"
    if exc.diag.message_detail:
        evidence += f"\nDETAIL:  {exc.diag.message_detail}"
    if plan.note:
        evidence += f"\n({plan.note})"
    if bound.bound:
        evidence += f"\n({_sent(bound)})"
    if state in _NOT_VALIDATED_STATES:
        return _finding(
            text,
            Level.WARNING,
            NOT_VALIDATED,
            as_written,
            f"could not be validated here: {primary} [SQLSTATE {state}]",
            line,
            evidence=evidence,
        )
    kind = _BY_SQLSTATE.get(state)
    if kind is None:
        kind = INVALID_VALUE if state.startswith("22") else SQL_ERROR
    level = Level.WARNING if kind == ALREADY_EXISTS else Level.ERROR
    message = f"{primary} [SQLSTATE {state}] on the twin's schema"
    if kind == ALREADY_EXISTS:
        message = f"fails when run as written on a healthy database: {primary} [SQLSTATE {state}]"
    return _finding(
        text,
        level,
        kind,
        as_written,
        message,
        line,
        _suggest(kind, exc, bound.text, db),
        evidence,
    )


# -- stock catalog -----------------------------------------------------------------------
#
# A runbook whose service has no schema to check on (its profile names no stack) still
# has SQL worth checking: what it asks of PostgreSQL itself (pg_stat_activity, pg_locks,
# pg_stat_replication, settings, built-in functions). Each statement is resolved against
# a stock PostgreSQL's system catalogs (`gate.stock_catalog`, generated from a real
# server): relations, the columns a query names of them, functions and settings. Only
# what cannot be anything else is an error (a column a system view does not have, a
# misspelt catalog, function or setting close to a real one); a table nobody described
# is "not validated: no schema for table X" (INFO), and so is a name a later version or
# another extension may have.

STOCK_KINDS = (
    SYNTAX,
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    UNDEFINED_FUNCTION,
    UNDEFINED_OBJECT,
    NOT_VALIDATED,
)
STOCK = "stock catalog"
# newer than the catalog's version: never an error, only "not validated"
_LATER_RELATIONS = frozenset(
    {"pg_stat_io", "pg_stat_checkpointer", "pg_wait_events", "pg_aios",
     "pg_shmem_allocations_numa", "pg_stat_subscription_stats"}
)  # fmt: skip
_LATER_FUNCTIONS = frozenset(
    {"pg_input_is_valid", "pg_input_error_info", "pg_split_walfile_name",
     "pg_log_standby_snapshot", "pg_sync_replication_slots", "pg_get_wal_summarizer_state",
     "pg_available_wal_summaries", "pg_wal_summary_contents", "pg_stat_reset_backend_stats",
     "pg_get_loaded_modules", "pg_numa_available"}
)  # fmt: skip
# settings SHOW and SET know that pg_settings does not list
_HIDDEN_SETTINGS = frozenset({"all", "role", "session_authorization", "is_superuser", "seed"})
_CATALOG_SCHEMAS = ("pg_catalog", "information_schema")


@dataclass(frozen=True)
class StockProblem:
    """A name the stock catalog cannot have meant as written."""

    kind: str
    name: str  # as written, to find its line
    message: str
    suggestion: str = ""


@dataclass
class StockResolution:
    """What resolving one statement against the stock catalog found."""

    problems: list[StockProblem]
    unresolved: list[str]  # why parts of it could not be checked ("no schema for table X")
    extensions: list[str]  # the extensions whose relations or functions it uses


class _Scope:
    """The relations a SELECT's FROM makes visible, and its output names."""

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.tables: dict[str, tuple[str, tuple[str, ...] | None]] = {}  # alias -> (rel, cols)
        self.ctes: set[str] = set()
        self.outputs: set[str] = set()
        self.open = False  # a FROM item whose columns are not known

    def chain(self) -> Iterator[_Scope]:
        scope: _Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent

    def add(self, alias: str, relation: str, columns: tuple[str, ...] | None) -> None:
        self.tables[alias] = (relation, columns)
        if columns is None:
            self.open = True


def _close(name: str, known: Sequence[str] | frozenset[str]) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=3, cutoff=0.85)


def _names(nodes: Sequence[Any] | None) -> list[str]:
    """The words of a qualified name (`pg_catalog.now`, `t.col`)."""
    return [n.sval for n in nodes or () if isinstance(n, pg_ast.String) and n.sval]


class _StockResolver:
    def __init__(self) -> None:
        from runbook_checks.gate import stock_catalog

        self.catalog = stock_catalog
        self.result = StockResolution([], [], [])

    # -- names ---------------------------------------------------------------------------
    def _problem(self, kind: str, name: str, message: str, suggestion: str = "") -> None:
        self.result.problems.append(StockProblem(kind, name, message, suggestion))

    def _unresolved(self, why: str) -> None:
        if why not in self.result.unresolved:
            self.result.unresolved.append(why)

    def _extension(self, name: str) -> None:
        if name not in self.result.extensions:
            self.result.extensions.append(name)

    def relation(self, node: Any) -> tuple[str, tuple[str, ...] | None]:
        """The relation a RangeVar names and its columns (None: not known)."""
        schema, name = node.schemaname, str(node.relname or "")
        written = f"{schema}.{name}" if schema else name
        relations = self.catalog.RELATIONS
        for candidate in (schema,) if schema else ("pg_catalog",):
            columns = relations.get(f"{candidate}.{name}")
            if columns is not None:
                return written, tuple(columns.split())
        if schema not in _CATALOG_SCHEMAS and name in self.catalog.EXTENSION_RELATIONS:
            extension, columns = self.catalog.EXTENSION_RELATIONS[name]
            self._extension(extension)
            return written, tuple(columns.split())
        version = self.catalog.VERSION
        if name in _LATER_RELATIONS:
            self._unresolved(f"{written} is newer than PostgreSQL {version}'s catalog")
        elif schema in _CATALOG_SCHEMAS or (schema is None and name.startswith("pg_")):
            names = [k.split(".", 1)[1] for k in relations if k.startswith(f"{schema or 'pg'}")]
            close = _close(name, names + list(self.catalog.EXTENSION_RELATIONS))
            if schema in _CATALOG_SCHEMAS or close:
                self._problem(
                    UNDEFINED_TABLE,
                    name,
                    f'relation "{written}" does not exist in PostgreSQL {version}\'s '
                    "system catalogs",
                    f"did you mean {' or '.join(close)}?" if close else "",
                )
            else:
                self._unresolved(
                    f"{written} is not a relation of PostgreSQL {version}'s catalog "
                    "(an extension's?)"
                )
        else:
            self._unresolved(f"no schema for table {written}")
        return written, None

    def function(self, node: Any) -> None:
        names = _names(node.funcname)
        if not names:
            return
        name = names[-1]
        schema = names[-2] if len(names) > 1 else None
        if schema in (None, "pg_catalog") and name in self.catalog.FUNCTIONS:
            return
        if schema != "pg_catalog" and name in self.catalog.EXTENSION_FUNCTIONS:
            self._extension(self.catalog.EXTENSION_FUNCTIONS[name])
            return
        written = ".".join(names)
        version = self.catalog.VERSION
        close = [] if name in _LATER_FUNCTIONS else _close(name, self.catalog.FUNCTIONS)
        if schema in (None, "pg_catalog") and name.startswith("pg_") and close:
            self._problem(
                UNDEFINED_FUNCTION,
                name,
                f"function {written}() does not exist in PostgreSQL {version}",
                f"did you mean {' or '.join(close)}?",
            )
        else:
            self._unresolved(f"{written}() is not a built-in function of PostgreSQL {version}")

    def setting(self, name: str | None) -> None:
        if not name:
            return
        lowered = name.lower()
        if lowered in self.catalog.SETTINGS or lowered in _HIDDEN_SETTINGS:
            return
        version = self.catalog.VERSION
        close = [] if "." in lowered else _close(lowered, self.catalog.SETTINGS)
        if close:
            self._problem(
                UNDEFINED_OBJECT,
                name,
                f'unrecognized configuration parameter "{name}" (PostgreSQL {version})',
                f"did you mean {' or '.join(close)}?",
            )
        elif "." in lowered:
            self._unresolved(f"{name} is a custom or an extension's setting")
        else:
            self._unresolved(f"{name} is not a setting of PostgreSQL {version}")

    # -- statements ----------------------------------------------------------------------
    def statement(self, node: Any) -> None:
        if isinstance(node, pg_ast.SelectStmt):
            self.select(node, None)
        elif isinstance(node, pg_ast.ExplainStmt):
            self.statement(node.query)
        elif isinstance(node, pg_ast.VariableShowStmt):
            self.setting(node.name)
        elif isinstance(node, pg_ast.VariableSetStmt):
            if node.kind in (VarSet.VAR_SET_VALUE, VarSet.VAR_SET_DEFAULT, VarSet.VAR_RESET):
                self.setting(node.name)
        elif isinstance(node, pg_ast.AlterSystemStmt):
            self.statement(node.setstmt)
        elif isinstance(node, pg_ast.DoStmt | pg_ast.CreateFunctionStmt):
            self._unresolved("the body of a DO block or a function is not checked")
        else:  # relations and functions only: the columns of DML/DDL are not resolved
            self.expression(node, _Scope(None), columns=False)

    def select(self, node: Any, parent: _Scope | None) -> None:
        if node.op != SetOp.SETOP_NONE:
            self.select(node.larg, parent)
            self.select(node.rarg, parent)
            return
        scope = _Scope(parent)
        if node.withClause is not None:
            for cte in node.withClause.ctes or ():
                scope.ctes.add(str(cte.ctename))
                self.expression(cte.ctequery, scope)
        pending: list[Any] = []
        for item in node.fromClause or ():
            self.from_item(item, scope, pending)
        for target in node.targetList or ():
            if isinstance(target, pg_ast.ResTarget) and target.name:
                scope.outputs.add(target.name)
        parts = (
            node.targetList,
            node.whereClause,
            node.groupClause,
            node.havingClause,
            node.sortClause,
            node.windowClause,
            node.distinctClause,
            node.limitCount,
            node.limitOffset,
            node.valuesLists,
            pending,
        )
        for part in parts:
            self.expression(part, scope)

    def from_item(self, item: Any, scope: _Scope, pending: list[Any]) -> None:
        alias = str(getattr(getattr(item, "alias", None), "aliasname", None) or "")
        renamed = bool(getattr(getattr(item, "alias", None), "colnames", None))
        if isinstance(item, pg_ast.RangeVar):
            name = str(item.relname or "")
            if item.schemaname is None and any(name in s.ctes for s in scope.chain()):
                scope.add(alias or name, name, None)
                return
            relation, columns = self.relation(item)
            scope.add(alias or name, relation, None if renamed else columns)
        elif isinstance(item, pg_ast.JoinExpr):
            self.from_item(item.larg, scope, pending)
            self.from_item(item.rarg, scope, pending)
            if item.quals is not None:
                pending.append(item.quals)
            if alias:  # the join's own name: its columns are not resolved
                scope.add(alias, alias, None)
        elif isinstance(item, pg_ast.RangeSubselect):
            self.expression(item.subquery, scope)
            scope.add(alias, alias or "(subquery)", None)
        else:  # a function in FROM, a sample ...: columns not known
            self.expression(item, scope)
            scope.add(alias, alias or "(function)", None)

    def expression(self, node: Any, scope: _Scope, *, columns: bool = True) -> None:
        if node is None:
            return
        if isinstance(node, list | tuple):
            for item in node:
                self.expression(item, scope, columns=columns)
            return
        if not isinstance(node, pg_ast.Node):
            return
        if isinstance(node, pg_ast.SelectStmt):
            self.select(node, scope)
            return
        if isinstance(node, pg_ast.RangeVar):
            self.relation(node)
            return
        if isinstance(node, pg_ast.ColumnRef):
            if columns:
                self.column(node, scope)
            return
        if isinstance(node, pg_ast.FuncCall):
            self.function(node)
        for attribute in getattr(type(node), "__slots__", ()):
            value = getattr(node, attribute, None)
            if isinstance(value, pg_ast.Node | list | tuple):
                self.expression(value, scope, columns=columns)

    def column(self, node: Any, scope: _Scope) -> None:
        names = _names(node.fields)
        if not names or isinstance(node.fields[-1], pg_ast.A_Star):
            return  # `*`, `t.*`
        if len(names) == 1:
            self._bare_column(names[0], scope)
            return
        alias, name = names[-2], names[-1]
        for level in scope.chain():
            if alias in level.tables:
                relation, known = level.tables[alias]
                if known is not None and name not in known:
                    close = _close(name, known) or difflib.get_close_matches(name, known, n=3)
                    self._problem(
                        UNDEFINED_COLUMN,
                        name,
                        f'column {alias}.{name} does not exist: {relation} has no "{name}"',
                        f"did you mean {' or '.join(close)}?" if close else "",
                    )
                return
        # not an alias in sight: a schema-qualified name, or a field of a composite

    def _bare_column(self, name: str, scope: _Scope) -> None:
        candidates: list[str] = []
        where: list[str] = []
        for level in scope.chain():
            if name in level.outputs or name in level.tables:
                return  # an output name (ORDER BY n), or a whole-row reference
            for relation, known in level.tables.values():
                if known is not None and name in known:
                    return
                if known is not None:
                    candidates.extend(known)
                    where.append(relation)
            if level.open:
                return  # it may come from a relation whose columns are not known
        if not where:
            return  # no relation at all (SELECT now()): nothing to resolve against
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        self._problem(
            UNDEFINED_COLUMN,
            name,
            f'column "{name}" does not exist in {", ".join(dict.fromkeys(where))}',
            f"did you mean {' or '.join(dict.fromkeys(close))}?" if close else "",
        )


def resolve_stock(statement: str) -> StockResolution:
    """Resolve one (bound) statement against the stock catalog; a statement that does
    not parse resolves to nothing (the syntax check reports it)."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    resolver = _StockResolver()
    try:
        parsed = parse_sql(statement)
    except ParseError:
        return resolver.result
    for raw in parsed:
        resolver.statement(raw.stmt)
    return resolver.result


def check_stock(steps: Sequence[Located], source: str | None = None) -> list[Checked]:
    """Every SQL statement of `steps`, in order, each validated against a stock
    PostgreSQL's system catalogs or reported (never skipped without a word)."""
    roles = harmless_values()
    return [
        _check_stock(text, statement, roles)
        for text in sql_texts(steps, source)
        for statement in split_statements(text.sql)
    ]


def validate_stock(steps: Sequence[Located], source: str | None = None) -> list[Finding]:
    """The findings of `check_stock`."""
    return [c.finding for c in check_stock(steps, source) if c.finding is not None]


def _check_stock(text: SqlText, statement: Statement, roles: RoleValues) -> Checked:
    written = statement.text
    start = _statement_offset(text, statement)
    line = _line_at(text.sql, text.first_line, start)

    def report(finding: Finding) -> Checked:
        return Checked(text, written, line, finding)

    def not_validated(why: str) -> Checked:
        message = f"not validated: {why}"
        return report(_finding(text, Level.INFO, NOT_VALIDATED, written, message, line))

    if written.startswith("\\"):
        return not_validated("a psql meta-command: psql runs it, the server never sees it")
    found = candidates(written)
    chosen: list[Occurrence] = list(found.quoted)
    if parse_error(written) is not None:
        problem = syntax_problem(written, roles)
        if problem is not None:
            return report(_syntax_finding(text, statement, problem))
        chosen += found.bare
    bound = substitute(written, chosen, roles)
    resolution = resolve_stock(bound.text)
    # a bare placeholder where a value goes reads as a column (`WHERE pid = PID`): as
    # the live check binds it when the server knows no such column, it is no problem
    placeholders = {o.name.lower() for o in found.bare if o not in chosen}
    resolution.problems = [
        p
        for p in resolution.problems
        if not (p.kind == UNDEFINED_COLUMN and p.name.lower() in placeholders)
    ]
    if resolution.problems:
        first = resolution.problems[0]
        more = resolution.problems[1:]
        message = first.message + (f" (and {len(more)} more)" if more else "")
        evidence = "\n".join(p.message for p in resolution.problems)
        return report(
            _finding(
                text,
                Level.ERROR,
                first.kind,
                written,
                f"{message} [{STOCK}]",
                _name_line(text, start, first.name),
                first.suggestion,
                evidence,
            )
        )
    if resolution.unresolved:
        return not_validated("; ".join(resolution.unresolved))
    extensions = ", ".join(resolution.extensions)
    sent = STOCK + (f" (with the {extensions} extension)" if extensions else "")
    return Checked(text, written, line, sent=sent, bound=bound.bound)


def _name_line(text: SqlText, start: int, name: str) -> int:
    """The runbook line of the first occurrence of `name` in the statement at `start`."""
    pattern = re.compile(rf"(?<![\w\"]){re.escape(name)}(?![\w\"])", re.IGNORECASE)
    match = pattern.search(text.sql, start)
    return _line_at(text.sql, text.first_line, match.start() if match else start)
