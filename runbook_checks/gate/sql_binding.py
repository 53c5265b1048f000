"""Placeholders in one SQL statement, for the gate: which words are placeholders, where
they stand, and the statement with some of them bound to harmless values.

The run-time binder (`steps.binding.bind`) takes every capitalised word that is not a
keyword for a placeholder, and stops a step that has one without a value: safe when a
drill runs the step, since nothing is guessed. The gate cannot work that way: it binds
values itself, and binding `SELEC`, `INTEGR` or `ACTIVE` would validate a statement
PostgreSQL refuses. So here:

- inside a string literal (or a dollar-quoted body) a placeholder is only the literal's
  content (`WHERE id = 'FILE_ID'`, `WHERE token = 'abc123xyz'`): binding it never changes
  how the statement parses, and it is always bound (as written, `'FILE_ID'` is no uuid);
- outside one, a word is a placeholder only when its name says so
  (`placeholders.named_like_placeholder`: `PID`, `BLOCKING_PID`, `SHARE_ID`, never a
  keyword), and it is bound only where PostgreSQL's grammar takes a value: where the
  statement as written has a column reference (`pg_terminate_backend(PID)`,
  `id = SHARE_ID`), and only when the server does not know that column; or, for a
  statement that does not parse as written, where a literal makes it parse. The caller
  (`sql_check`) decides which, from the parse and the server's answer; this module
  finds the words and does the substitution.

Values outside quotes are SQL literals of the role's shape: a number for a backend PID,
a quoted string for ids and tokens, NULL for a name that says nothing of its shape where
any expression may stand (see `literal`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from runbook_checks.gate.placeholders import (
    IMPOSSIBLE_PID,
    Role,
    RoleValues,
    named_like_placeholder,
    role_of,
)
from runbook_checks.steps.binding import Bindings, Bound, Substitution, bind, sql_regions

_QUOTED_REGIONS = frozenset({"string", "dollar"})


@dataclass(frozen=True)
class Occurrence:
    """One placeholder word in a statement (`statement[start:end] == name`)."""

    name: str
    start: int
    end: int
    quoted: bool  # the content of a string literal or a dollar-quoted body
    role: Role


@dataclass(frozen=True)
class Candidates:
    """The placeholders of a statement the gate may bind."""

    quoted: tuple[Occurrence, ...]  # always bound
    bare: tuple[Occurrence, ...]  # outside quotes, named like placeholders: bound if needed


def occurrences(statement: str) -> tuple[Occurrence, ...]:
    """Every word of `statement` that the run-time binder would take for a placeholder,
    where it stands, and its role."""
    probe = bind(statement, Bindings(), sql=True)
    names = [n for n in probe.unbound if not n.startswith(("$", "<"))]
    if not names:
        return ()
    # binding each name to itself gives the spans the run-time binder would replace
    located = bind(statement, Bindings(values={n: n for n in names}), sql=True)
    regions = sql_regions(statement)
    found: list[Occurrence] = []
    for sub in located.substitutions:
        kind = next((r.kind for r in regions if r.start <= sub.start < r.end), "code")
        role = role_of(sub.name, statement[: sub.start])
        found.append(Occurrence(sub.name, sub.start, sub.end, kind in _QUOTED_REGIONS, role))
    return tuple(found)


def candidates(statement: str) -> Candidates:
    """The quoted placeholders, and the bare words that may be placeholders: named like
    one, and not part of a qualified name or a call (`x.PID`, `MY_FUNC(`)."""
    quoted: list[Occurrence] = []
    bare: list[Occurrence] = []
    for occurrence in occurrences(statement):
        if occurrence.quoted:
            quoted.append(occurrence)
        elif named_like_placeholder(occurrence.name) and _stands_alone(statement, occurrence):
            bare.append(occurrence)
    return Candidates(tuple(quoted), tuple(bare))


def _stands_alone(statement: str, occurrence: Occurrence) -> bool:
    before = statement[: occurrence.start].rstrip()
    after = statement[occurrence.end :].lstrip()
    return not before.endswith(".") and not after.startswith(("(", "."))


def literal(occurrence: Occurrence, roles: RoleValues, *, expression: bool = False) -> str:
    """The text that replaces `occurrence`: the value inside quotes; outside them, an SQL
    literal: a number for a backend PID, a quoted string otherwise. A placeholder whose
    name says nothing of its shape (`NEW_LIMIT`) standing where any expression can
    (`expression`: where the statement as written has a column reference) is NULL,
    which every type accepts: a uuid string would be refused by an integer column."""
    value = roles.get(occurrence.role)
    if occurrence.quoted or occurrence.role is Role.BACKEND_PID:
        return value
    if expression and occurrence.role is Role.UUID:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def substitute(
    statement: str, chosen: Iterable[Occurrence], roles: RoleValues, *, expression: bool = False
) -> Bound:
    """`statement` with the `chosen` occurrences replaced by their `literal`s."""
    out: list[str] = []
    subs: list[Substitution] = []
    names: list[str] = []
    position = length = 0
    for occurrence in sorted(set(chosen), key=lambda o: o.start):
        chunk = statement[position : occurrence.start]
        value = literal(occurrence, roles, expression=expression)
        out += [chunk, value]
        length += len(chunk)
        subs.append(
            Substitution(
                occurrence.name, occurrence.start, occurrence.end, length, length + len(value)
            )
        )
        length += len(value)
        position = occurrence.end
        if occurrence.name not in names:
            names.append(occurrence.name)
    out.append(statement[position:])
    return Bound("".join(out), statement, tuple(names), (), tuple(subs))


def describe(chosen: Sequence[Occurrence], *, expression: bool = False) -> str:
    """'PID bound to 2147483647, FILE_ID to a file-id string literal' (random values by
    their shape, so the message is the same from run to run)."""
    parts: list[str] = []
    seen: set[str] = set()
    for occurrence in sorted(chosen, key=lambda o: o.start):
        if occurrence.name in seen:
            continue
        seen.add(occurrence.name)
        if occurrence.role is Role.BACKEND_PID:
            shape = str(IMPOSSIBLE_PID)
        elif occurrence.quoted:
            shape = f"a {occurrence.role.value} value"
        elif expression and occurrence.role is Role.UUID:
            shape = "NULL"
        else:
            shape = f"a {occurrence.role.value} string literal"
        parts.append(f"{occurrence.name} {'bound to ' if not parts else 'to '}{shape}")
    return ", ".join(parts)


# -- what PostgreSQL's parser says --------------------------------------------------------


def parse_error(statement: str) -> tuple[str, int] | None:
    """pglast's message and the character offset it points at; None when it parses."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        parse_sql(statement)
    except ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        where = int(exc.args[1]) if len(exc.args) > 1 else 0
        return message, max(where, 0)
    return None


def value_positions(statement: str) -> frozenset[int] | None:
    """Offsets of the unqualified column references of `statement` (the places where a
    bare word stands for a value: a function's argument, a comparison's operand, a
    target ...); None when it does not parse. Keywords, type names, function names,
    tables and aliases are never column references."""
    from pglast import parse_sql
    from pglast.parser import ParseError
    from pglast.visitors import Visitor

    found: set[int] = set()

    class _References(Visitor):
        def visit_ColumnRef(self, ancestors: object, node: Any) -> None:
            fields: Sequence[Any] = node.fields or ()
            if len(fields) == 1 and type(fields[0]).__name__ == "String":
                found.add(int(node.location))

    try:
        parsed = parse_sql(statement)
    except ParseError:
        return None
    for raw in parsed:
        _References()(raw)
    return frozenset(found)
