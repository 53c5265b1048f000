"""Database clients' prompts in console transcripts: what was typed, never the output.

A transcript block may change dialect half-way: a shell (`$ sudo -u postgres psql
orders`, read by `runbook_checks.runbook.shell.split_commands` with `console=True`), then
the client's own prompts:

- psql: `orders=# select ...` / `orders=> ...` (PROMPT1: `=`, or `^`, `!`, with `*`, `!`
  or `?` for the transaction state), continued on `orders-# ` / `orders(# ` / `orders'# `
  lines (PROMPT2); `psql> ` as some documents write it;
- mysql / MariaDB: `mysql> ` / `MariaDB [db]> `, continued on `    -> ` (and `'> `, `"> `);
- redis-cli: `127.0.0.1:6379> `, `cache:6379[1]> `, `redis> `, `redis-cli> `, one line each
  (it has no continuation prompt).

Every line without a prompt is output: result tables (`----+----`), `(3 rows)`, JSON,
`OK`. An `Entry` is one input of the client, its lines joined with "\\n" (a psql entry may
hold several statements; the caller splits it as psql would).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PSQL, MYSQL, REDIS = "psql", "mysql", "redis"

# psql's PROMPT1 is '%/%R%x%# ': the database, '=' ('^' single-line, '!' disconnected),
# the transaction state ('*', '!', '?'), '#' for a superuser else '>'. PROMPT2 puts
# '-', '(', a quote or '*' (in a comment) where PROMPT1 has '='.
_PSQL = re.compile(r"^\s*(?:[A-Za-z_][\w$.-]*?(?P<state>[=^!\-('\"*$])[*!?]?[#>]|psql>)(?: |$)")
_PSQL_FIRST = "=^!"
_MYSQL = re.compile(r"^\s*(?:mysql|MariaDB \[[^\]\n]*\])> ?")
_MYSQL_MORE = re.compile(r"^\s*(?:->|'>|\">|`>|/\*>) ?")
_REDIS = re.compile(r"^\s*(?:redis(?:-cli)?(?: [\w.-]+:\d+)?|[\w.-]+:\d{2,5}(?:\[\d+\])?)> ?")


@dataclass(frozen=True)
class Entry:
    """One input typed at a database client's prompt."""

    dialect: str  # PSQL, MYSQL or REDIS
    text: str  # what was typed: prompts removed, lines joined with "\n"
    raw: str  # the source lines, prompts included
    lines: tuple[int, ...]  # 0-based line within the block of each line of `text`

    @property
    def line(self) -> int:
        return self.lines[0]


def _prompt(line: str) -> tuple[str, bool, int] | None:
    """(dialect, whether it starts an input, where the input begins) of a prompted line."""
    match = _PSQL.match(line)
    if match is not None:
        state = match.group("state")
        return PSQL, state is None or state in _PSQL_FIRST, match.end()
    match = _MYSQL.match(line)
    if match is not None:
        return MYSQL, True, match.end()
    match = _MYSQL_MORE.match(line)
    if match is not None:
        return MYSQL, False, match.end()
    match = _REDIS.match(line)
    if match is not None:
        return REDIS, True, match.end()
    return None


def has_client_prompts(block: str) -> bool:
    """Does `block` hold a database client's prompt that starts an input?"""
    for line in block.split("\n"):
        found = _prompt(line)
        if found is not None and found[1]:
            return True
    return False


def client_entries(block: str) -> list[Entry]:
    """The inputs typed at database clients' prompts in `block`, in order. A
    continuation prompt belongs to the input its dialect has open; one with no input
    open is output."""
    entries: list[Entry] = []
    dialect = ""
    typed: list[str] = []
    raw: list[str] = []
    numbers: list[int] = []

    def flush() -> None:
        nonlocal dialect
        if dialect and any(t.strip() for t in typed):
            entries.append(Entry(dialect, "\n".join(typed), "\n".join(raw), tuple(numbers)))
        dialect = ""
        typed.clear()
        raw.clear()
        numbers.clear()

    for number, line in enumerate(block.split("\n")):
        found = _prompt(line)
        if found is None or (not found[1] and found[0] != dialect):
            flush()  # output, a shell's line, or a blank line: the input is over
            continue
        kind, first, end = found
        if first:
            flush()
            dialect = kind
        typed.append(line[end:].rstrip())
        raw.append(line)
        numbers.append(number)
    flush()
    return entries
