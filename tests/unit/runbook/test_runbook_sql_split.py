"""The SQL statement splitter: examples, and properties against generated SQL."""

from __future__ import annotations

import pglast
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.runbook.sql import split_statements


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1;", ["SELECT 1;"]),
        ("SELECT 1; SELECT 2", ["SELECT 1;", "SELECT 2"]),
        ("SELECT 'a;b';", ["SELECT 'a;b';"]),
        ("SELECT 'it''s; fine';", ["SELECT 'it''s; fine';"]),
        ("SELECT E'a\\';b';", ["SELECT E'a\\';b';"]),
        ('SELECT "we;ird" FROM t;', ['SELECT "we;ird" FROM t;']),
        ("DO $$ BEGIN PERFORM 1; END $$;", ["DO $$ BEGIN PERFORM 1; END $$;"]),
        (
            "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql; SELECT f();",
            [
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;",
                "SELECT f();",
            ],
        ),
        ("SELECT 1 /* a; /* nested; */ b; */ ;", ["SELECT 1 /* a; /* nested; */ b; */ ;"]),
        ("SELECT 1 -- trailing; comment\n;", ["SELECT 1 -- trailing; comment\n;"]),
        ("SELECT $1, a$b; SELECT 2;", ["SELECT $1, a$b;", "SELECT 2;"]),
        (";;  ;", []),
        ("-- only a comment\n/* and another */", []),
        ("\\x\nSELECT 1;", ["\\x", "SELECT 1;"]),
    ],
)
def test_examples(sql: str, expected: list[str]) -> None:
    assert texts(sql) == expected


def test_leading_comments_become_the_statement_comment() -> None:
    sql = "-- Kill specific query\nSELECT 1;\n\n/* Kill\n * all idle */\nSELECT 2;\nSELECT 3"
    statements = split_statements(sql)
    assert [(s.comment, s.line_in(sql)) for s in statements] == [
        ("Kill specific query", 1),
        ("Kill all idle", 5),
        ("", 6),
    ]
    assert [s.terminated for s in statements] == [True, True, False]


# -- properties -------------------------------------------------------------------------

_WORD = st.sampled_from(["SELECT", "x", "t.id", "count(*)", "FROM", "WHERE", "=", "1", "now()"])
_SINGLE = st.text(alphabet='ab ;$-/*"\n', max_size=8).map(
    lambda s: "'" + s.replace("'", "''") + "'"
)
_IDENT = st.text(alphabet="ab ;'$-\n", min_size=1, max_size=8).map(lambda s: '"' + s + '"')
_TAG = st.sampled_from(["", "body", "f_1"])
_DOLLAR = st.tuples(_TAG, st.text(alphabet="ab ;'\"-\n", max_size=10)).map(
    lambda pair: f"${pair[0]}${pair[1]}${pair[0]}$"
)
_BLOCK_COMMENT = st.text(alphabet="ab ;'\"\n", max_size=8).map(lambda s: f"/*{s}*/")
_TOKEN = st.one_of(_WORD, _WORD, _WORD, _SINGLE, _IDENT, _DOLLAR, _BLOCK_COMMENT)
_STATEMENT = (
    st.lists(_TOKEN, min_size=1, max_size=8)
    .map(" ".join)
    .filter(
        lambda s: not s.startswith("/*")  # a leading comment is the comment, not the text
    )
)


@given(st.lists(_STATEMENT, min_size=1, max_size=5), st.sampled_from(["\n", " ", "\n\n  "]))
def test_splitting_joined_statements_gives_them_back(statements: list[str], gap: str) -> None:
    sql = gap.join(f"{s};" for s in statements)
    assert texts(sql) == [f"{s};" for s in statements]


@given(_STATEMENT, st.sampled_from(["'a;b'", "$$ x; y $$", "$q$;$q$", '"c;d"', "/* ; */"]))
def test_a_semicolon_in_quotes_never_splits(statement: str, quoted: str) -> None:
    sql = f"{statement} {quoted} {statement};"
    assert texts(sql) == [sql]


@given(st.lists(_STATEMENT, min_size=1, max_size=4))
def test_offsets_point_at_each_statement(statements: list[str]) -> None:
    sql = "\n-- note\n".join(f"{s};" for s in statements)
    for statement in split_statements(sql):
        assert sql[statement.start :].startswith(statement.text)


@given(st.lists(_STATEMENT, min_size=1, max_size=4))
def test_agrees_with_postgres_own_scanner(statements: list[str]) -> None:
    # pglast's scanner split keeps statements that start with a keyword
    sql = "\n".join(f"SELECT {s};" for s in statements)
    ours = [s.text.rstrip(";").strip() for s in split_statements(sql)]
    theirs = [
        sql[piece].strip() for piece in pglast.split(sql, with_parser=False, only_slices=True)
    ]
    assert ours == theirs


@given(st.text(max_size=200))
def test_never_raises_and_loses_no_code(sql: str) -> None:
    statements = split_statements(sql)
    for statement in statements:
        assert statement.text
        assert sql[statement.start :].lstrip().startswith(statement.text[:1])
