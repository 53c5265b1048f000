"""Splitting SQL text into statements the way psql does.

A `;` ends a statement unless it is inside a string ('...', E'...' with backslash
escapes), a quoted identifier ("..."), a dollar-quoted body ($$...$$, $tag$...$tag$),
a `--` line comment or a (nested) `/* */` block comment. Comments before a statement
are not part of it: the last one becomes the statement's `comment` ("-- Kill specific
query" -> "Kill specific query"). Empty statements are dropped; a psql meta-command
("\\dt") at the start of a statement runs to the end of its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# characters that never start a string, a comment or a dollar quote, nor end a statement
_PLAIN = re.compile(r"[^'\";$\-/\s]+")
_BACKSLASH_BODY = re.compile(r"(?:[^'\\]|\\.)*", re.DOTALL)
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$")


@dataclass(frozen=True)
class Statement:
    text: str  # stripped, including the terminating ';' when there is one
    start: int  # offset of the statement's first character in the input
    comment: str  # the nearest comment before it ("" when none)
    terminated: bool  # False for a last statement without ';'
    line: int = 0  # 0-based line of `start` within the input

    def line_in(self, source: str) -> int:
        """0-based line offset of the statement's start within `source`."""
        return source.count("\n", 0, self.start)


def split_statements(sql: str) -> list[Statement]:
    """Statements in order; text that holds only comments and whitespace yields none."""
    statements: list[Statement] = []
    i = 0
    n = len(sql)
    start: int | None = None  # first character of the current statement
    comment = ""  # the last comment seen before the statement started
    lines = [0, 0]  # newlines counted so far, and up to which offset

    def emit(begin: int, end: int, terminated: bool) -> None:
        lines[0] += sql.count("\n", lines[1], begin)
        lines[1] = begin
        statements.append(Statement(sql[begin:end].strip(), begin, comment, terminated, lines[0]))

    while i < n:
        if start is not None:  # inside a statement: skip what cannot end or quote it
            plain = _end(_PLAIN, sql, i)
            if plain > i:
                i = plain
                continue
        char = sql[i]
        if char.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            if start is None:
                comment = _comment_text(sql[i:end])
            i = end
            continue
        if sql.startswith("/*", i):
            end = _block_comment_end(sql, i)
            if start is None:
                comment = _comment_text(sql[i:end])
            i = end
            continue
        if start is None:
            if char == ";":  # an empty statement: psql ignores it
                i += 1
                continue
            if char == "\\":  # a psql meta-command ("\\dt", "\\x") runs to the end of the line
                end = sql.find("\n", i)
                end = n if end < 0 else end
                emit(i, end, True)
                comment = ""
                i = end
                continue
            start = i
        if char == ";":
            emit(start, i + 1, True)
            start, comment = None, ""
            i += 1
            continue
        i = _skip_token(sql, i)
    if start is not None:
        emit(start, n, False)
    return statements


def _skip_token(sql: str, i: int) -> int:
    """Index just after the quoted token or plain character starting at `i`."""
    char = sql[i]
    if char == "'":
        backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_word(sql[i - 2]))
        return _quoted_end(sql, i, "'", backslash)
    if char == '"':
        return _quoted_end(sql, i, '"', False)
    if char == "$" and (i == 0 or not _is_word(sql[i - 1])):
        match = _DOLLAR_TAG.match(sql, i)
        if match:
            tag = match.group(0)
            end = sql.find(tag, match.end())
            return len(sql) if end < 0 else end + len(tag)
    return i + 1


def _quoted_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index just after the string or identifier opened at `i` ('' doubles a quote)."""
    j = i + 1
    n = len(sql)
    while j < n:
        if backslash:
            j = _end(_BACKSLASH_BODY, sql, j)
        else:
            j = sql.find(quote, j)
            if j < 0:
                return n
        if j >= n:
            return n
        if j + 1 < n and sql[j + 1] == quote:  # doubled quote: an escaped quote
            j += 2
            continue
        return j + 1
    return n


def _block_comment_end(sql: str, i: int) -> int:
    depth = 0
    j = i
    n = len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return n


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _comment_text(comment: str) -> str:
    if comment.startswith("--"):
        return comment[2:].strip()
    body = comment[2:]
    if body.endswith("*/"):
        body = body[:-2]
    return " ".join(line.strip(" *") for line in body.strip().splitlines()).strip()


def _end(pattern: re.Pattern[str], text: str, start: int) -> int:
    """Where `pattern`'s match at `start` ends (`start` when it does not match)."""
    match = pattern.match(text, start)
    return match.end() if match else start
