"""Placeholders: bound, reported when unbound, never guessed; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.redact import redact
from runbook_checks.steps.binding import Bindings, bind

DB_URL = "postgresql://files_app:pw-s3cret-42@127.0.0.1:5433/files"
BINDINGS = Bindings(
    values={
        "TOKEN": "tok-user-123456",
        "PID": "4242",
        "abc123xyz": "share-tok-9",
        "PRIMARY": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/p/1",
    },
    env={
        "DATABASE_URL": DB_URL,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "5433",
        "ADMIN_TOKEN": "admin-tok-abcdef",
    },
)


def test_bearer_token_is_bound_inside_quotes() -> None:
    bound = bind('curl -H "Authorization: Bearer TOKEN" https://api/x', BINDINGS)
    assert bound.text == 'curl -H "Authorization: Bearer tok-user-123456" https://api/x'
    assert bound.bound == ("TOKEN",)
    assert bound.unbound == ()


def test_whole_words_only() -> None:
    bound = bind('curl -H "Authorization: Bearer USER_TOKEN" https://api/x', BINDINGS)
    assert "USER_TOKEN" in bound.text  # TOKEN inside USER_TOKEN is not TOKEN
    assert bound.unbound == ("USER_TOKEN",)


_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_MARK = st.sampled_from(["xxx", "XXX", "xyz", "XyZ", "abc123", "ABC123", ""])
# a value as the stack makes them (secrets.token_urlsafe), with an example mark inside
_TOKEN = st.builds(
    lambda a, mark, b: a + mark + b,
    st.text(_URLSAFE, min_size=4, max_size=20),
    _MARK,
    st.text(_URLSAFE, min_size=4, max_size=20),
)
_WRITTEN = st.sampled_from(
    [
        'curl -X POST https://api/admin/cache/warm -H "Authorization: Bearer {}"',
        "curl -H 'X-Api-Key: {}' https://api/files",
        "psql postgresql://files_app:{}@127.0.0.1:5433/files -c 'select 1;'",
        "redis-cli -a {} INFO stats",
    ]
)


@given(_TOKEN, _WRITTEN, st.sampled_from(["secrets", "values", "env"]))
def test_any_token_shaped_value_written_out_stays_a_value(
    value: str, template: str, how: str
) -> None:
    """A command the harness writes out (the corrected form of a step) holds the stack's
    own values: a random token is a value, whatever letters it happens to hold."""
    bindings = {
        "secrets": Bindings(secrets=frozenset({value})),
        "values": Bindings(values={"ADMIN_TOKEN": value}),
        "env": Bindings(env={"ADMIN_TOKEN": value}),
    }[how]
    command = template.format(value)
    bound = bind(command, bindings)
    assert (bound.unbound, bound.text) == ((), command)


def test_an_example_beside_a_known_value_is_still_unbound() -> None:
    value = "Q7-mxyzT2f_0aLkW9vR"
    bound = bind(
        f"curl -H 'X-Key: {value}' https://api/files/i-xxx", BINDINGS.merged(secrets={value})
    )
    assert bound.unbound == ("i-xxx",)


def test_env_vars_expand_except_in_single_quotes() -> None:
    bound = bind("pg_isready -h $DB_HOST -p 5432 '$DB_HOST' ${DB_PORT}", BINDINGS)
    assert bound.text == "pg_isready -h 127.0.0.1 -p 5432 '$DB_HOST' 5433"
    assert bound.bound == ("$DB_HOST", "$DB_PORT")


def test_unknown_env_var_is_unbound() -> None:
    assert bind("psql $REPLICA_URL -c 'x'", BINDINGS).unbound == ("$REPLICA_URL",)


@pytest.mark.parametrize(
    ("text", "unbound"),
    [
        ("aws elb register-targets --target-group-arn STANDBY", ("STANDBY",)),
        ("aws ec2 modify-instance-attribute --instance-id i-xxx", ("i-xxx",)),
        ("curl https://rolerabbit.com/share/<share-token>", ("<share-token>",)),
        ("redis-cli INFO stats", ()),
        ("curl -X POST https://api.rolerabbit.com/admin/cache/warm", ()),
        ('heroku config:set DATABASE_URL="postgresql://x"', ()),
    ],
)
def test_placeholder_looking_words_in_commands(text: str, unbound: tuple[str, ...]) -> None:
    assert bind(text, BINDINGS).unbound == unbound


@pytest.mark.parametrize(
    ("sql", "bound", "unbound"),
    [
        ("SELECT pg_terminate_backend(PID);", ("PID",), ()),
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' "
            "AND query_start < NOW() - INTERVAL '10 minutes';",
            (),
            (),
        ),
        ("UPDATE storage_files SET is_deleted = false WHERE id = 'FILE_ID';", (), ("FILE_ID",)),
        ("EXPLAIN ANALYZE SELECT * FROM storage_files WHERE user_id = 'xxx';", (), ("xxx",)),
        ("SELECT id FROM file_shares WHERE token = 'abc123xyz';", ("abc123xyz",), ()),
        ("CREATE INDEX CONCURRENTLY idx ON storage_files(user_id);", (), ()),
        ("SELECT count(*), state FROM pg_stat_activity GROUP BY state;", (), ()),
        ("SELECT 1 -- TOKEN in a comment\n;", (), ()),
        ("SELECT \"PID\" FROM t WHERE s = 'ACTIVE';", (), ()),
    ],
)
def test_sql_placeholders(sql: str, bound: tuple[str, ...], unbound: tuple[str, ...]) -> None:
    result = bind(sql, BINDINGS, sql=True)
    assert (result.bound, result.unbound) == (bound, unbound)


def test_a_bound_sql_keyword_is_not_replaced_outside_strings() -> None:
    # PRIMARY is bound (an ARN for the aws steps); PRIMARY KEY in SQL stays SQL
    result = bind("CREATE TABLE t (id int PRIMARY KEY);", BINDINGS, sql=True)
    assert result.text == "CREATE TABLE t (id int PRIMARY KEY);"


def test_sql_share_token_is_replaced_inside_its_quotes() -> None:
    result = bind("WHERE token = 'abc123xyz';", BINDINGS, sql=True)
    assert result.text == "WHERE token = 'share-tok-9';"


def test_source_offsets_map_back_through_substitutions() -> None:
    text = "SELECT pg_terminate_backend(PID), bad_column FROM t WHERE token = 'abc123xyz'"
    bound = bind(text, BINDINGS, sql=True)
    at = bound.text.index("bad_column")
    assert bound.source_offset(at) == text.index("bad_column")
    inside = bound.text.index("4242") + 2  # inside a substituted value: its placeholder
    assert bound.source_offset(inside) == text.index("PID")


_word = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@given(st.lists(st.one_of(_word, st.sampled_from(["PID", "abc123xyz", "TOKEN"])), max_size=12))
def test_every_original_character_maps_back(words: list[str]) -> None:
    text = " ".join(words)
    bound = bind(text, BINDINGS, sql=True)
    for sub in bound.substitutions:
        assert text[sub.start : sub.end] == sub.name
        assert bound.text[sub.new_start : sub.new_end] == BINDINGS.values[sub.name]
    # every plain word is found back at its place in the source
    source_at = bound_at = 0
    for word in words:
        value = BINDINGS.values.get(word, word)
        if word not in BINDINGS.values:
            assert bound.text[bound_at : bound_at + len(word)] == word
            assert bound.source_offset(bound_at) == source_at
        source_at += len(word) + 1
        bound_at += len(value) + 1


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_text_without_candidates_is_unchanged(text: str) -> None:
    empty = Bindings(placeholders=frozenset())
    result = bind(text.lower().replace("$", "").replace("xxx", "").replace("<", ""), empty)
    assert result.text == result.source
    assert result.bound == ()


def test_redaction_of_urls_bearers_and_known_secrets() -> None:
    text = (
        f"psql {DB_URL} -c 'SELECT 1' -H 'Authorization: Bearer tok-user-123456' "
        "admin=admin-tok-abcdef redis-cli -h 127.0.0.1 -a hunter22 ping password=xyz"
    )
    redacted = redact(text, BINDINGS.secret_values())
    for secret in ("pw-s3cret-42", "tok-user-123456", "admin-tok-abcdef", "hunter22", "xyz"):
        assert secret not in redacted
    assert "postgresql://files_app:***@127.0.0.1:5433/files" in redacted
    assert "Bearer ***" in redacted


def test_secret_values_come_from_token_names_and_url_passwords() -> None:
    secrets = BINDINGS.secret_values()
    assert {"tok-user-123456", "admin-tok-abcdef", "pw-s3cret-42"} <= secrets
    assert "4242" not in secrets  # PID is no secret (and too short to redact safely)


def test_redaction_leaves_ordinary_text_alone() -> None:
    text = "ps -a aux | grep files_api; Token expired; curl -I http://h/"
    assert redact(text, ()) == text


def test_merged_adds_to_defaults(tmp_path: Path) -> None:
    bindings = BINDINGS.merged(
        values={"FILE_ID": "f-1"},
        hosts={"status.supabase.com": "http://127.0.0.1:1"},
        files={"big.bin": tmp_path / "big.bin"},
        secrets=["extra-secret"],
    )
    assert bindings.values["FILE_ID"] == "f-1"
    assert bindings.values["PID"] == "4242"
    assert bindings.hosts["status.supabase.com"] == "http://127.0.0.1:1"
    assert bindings.files["big.bin"] == tmp_path / "big.bin"
    assert "extra-secret" in bindings.secret_values()
    with pytest.raises(TypeError):
        BINDINGS.merged(nonsense={})
    with pytest.raises(TypeError):
        bindings.values["X"] = "y"  # type: ignore[index]
