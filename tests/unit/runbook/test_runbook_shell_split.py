"""The shell command splitter and the classification rules."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.runbook.classify import classify
from runbook_checks.runbook.model import StepKind
from runbook_checks.runbook.shell import (
    ShellCommand,
    ShellInstruction,
    split_commands,
    split_pipeline,
    words,
)


def commands(block: str) -> list[tuple[int, str, str]]:
    return [
        (item.line, item.text, item.comment)
        for item in split_commands(block)
        if isinstance(item, ShellCommand)
    ]


def test_continuations_are_joined_with_one_space() -> None:
    block = "aws rds restore \\\n  --a x \\\n\t--b y\nnext"
    assert commands(block) == [(0, "aws rds restore --a x --b y", ""), (3, "next", "")]
    assert split_commands(block)[0] == ShellCommand(
        "aws rds restore --a x --b y", "aws rds restore \\\n  --a x \\\n\t--b y", 0, ""
    )


def test_multi_line_quotes_stay_together() -> None:
    block = 'psql $URL -c "\n  SELECT 1; # not a comment\n\n  -- sql comment\n"\ndf -h'
    assert commands(block) == [
        (0, 'psql $URL -c "\n  SELECT 1; # not a comment\n\n  -- sql comment\n"', ""),
        (5, "df -h", ""),
    ]


def test_comments() -> None:
    block = (
        "# 1. Check\n"
        "ssh host\n"
        "ps aux  # trailing comment\n"
        "\n"
        "# LAST RESORT\n"
        "\n"
        "# 4. Check dashboard\n"
        "# Go to: Dashboard > Logs\n"
        "\n"
        "# 3. Update DNS\n"
        "# 4. Start servers\n"
        "echo a#b ${x#y}\n"
    )
    items = split_commands(block)
    assert [(type(i).__name__, i.line, i.text, i.comment) for i in items] == [
        ("ShellCommand", 1, "ssh host", "1. Check"),
        ("ShellCommand", 2, "ps aux", "1. Check"),
        ("ShellInstruction", 4, "LAST RESORT", ""),
        ("ShellInstruction", 7, "Go to: Dashboard > Logs", "4. Check dashboard"),
        ("ShellInstruction", 9, "3. Update DNS", ""),
        ("ShellCommand", 11, "echo a#b ${x#y}", "4. Start servers"),
    ]


def test_description_comments_before_a_command_are_not_instructions() -> None:
    items = split_commands("# Restarts the API.\n# Takes 30 s.\nsudo systemctl restart api\n")
    assert [(type(i).__name__, i.comment) for i in items] == [("ShellCommand", "Takes 30 s.")]


def test_numbered_comments_without_commands_are_each_an_instruction() -> None:
    items = split_commands("# 3. Update DNS\n# 4. Start servers\n# 5. Verify\n")
    assert [(i.text, i.line) for i in items if isinstance(i, ShellInstruction)] == [
        ("3. Update DNS", 0),
        ("4. Start servers", 1),
        ("5. Verify", 2),
    ]


def test_heredoc_belongs_to_its_command() -> None:
    block = "cat <<EOF > /tmp/x\nline | one\n# not a comment\nEOF\ndf -h\ncat <<< 'here string'"
    assert [t for _, t, _ in commands(block)] == [
        "cat <<EOF > /tmp/x\nline | one\n# not a comment\nEOF",
        "df -h",
        "cat <<< 'here string'",
    ]


def test_console_prompts() -> None:
    block = "$ df -h\nFilesystem Size\nroot@db-1:~# tail -n 1 x.log\nlast line\n"
    assert [
        t for _, t, _ in [(i.line, i.text, "") for i in split_commands(block, console=True)]
    ] == [
        "df -h",
        "tail -n 1 x.log",
    ]


@pytest.mark.parametrize(
    ("text", "stages"),
    [
        ("ps aux | grep node", ["ps aux", "grep node"]),
        ("a || b", ["a || b"]),
        ("a |& b", ["a", "b"]),
        ("grep 'a|b' f | wc -l", ["grep 'a|b' f", "wc -l"]),
        ('echo "x|y" | cat', ['echo "x|y"', "cat"]),
        ("echo $(a | b) | cat", ["echo $(a | b)", "cat"]),
        ("echo `a | b` | cat", ["echo `a | b`", "cat"]),
        ("echo a\\|b", ["echo a\\|b"]),
    ],
)
def test_pipelines(text: str, stages: list[str]) -> None:
    assert split_pipeline(text) == stages


@pytest.mark.parametrize(
    ("command", "kind", "reason"),
    [
        ("curl -s http://x", StepKind.HTTP, ""),
        ("aws s3 ls", StepKind.AWS, ""),
        ("psql -c 'SELECT 1'", StepKind.SQL, ""),
        ("pg_isready -h db", StepKind.SHELL, ""),
        ("sudo systemctl restart api", StepKind.SHELL, ""),
        ("sudo -u postgres psql -c 'x'", StepKind.SQL, ""),
        ("FOO=1 env BAR=2 redis-cli PING", StepKind.SHELL, ""),
        ("/usr/bin/tail -f x", StepKind.SHELL, ""),
        ("watch -n 5 'curl http://x'", StepKind.SHELL, ""),
        ("docker ps", StepKind.SHELL, ""),
        ("docker compose logs api", StepKind.SHELL, ""),
        (
            "docker restart api",
            StepKind.MANUAL,
            "docker: changes containers; the stack manages its own components",
        ),
        (
            "ssh production-api-01",
            StepKind.MANUAL,
            "logs into a host: the stack's components stand in for it",
        ),
        ("kubectl get pods", StepKind.MANUAL, "kubectl: no Kubernetes cluster in the stack"),
        ("heroku ps", StepKind.MANUAL, "heroku: no Heroku app in the stack"),
        ("git checkout main@{1}", StepKind.PLATFORM, ""),
        ("npm run deploy", StepKind.PLATFORM, ""),
        ("kubectl scale deployment api --replicas=5", StepKind.PLATFORM, ""),
        ("sudo kubectl rollout restart deployment/api", StepKind.PLATFORM, ""),
        ('heroku config:set DATABASE_URL="postgresql://replica-01..."', StepKind.PLATFORM, ""),
        ("git log", StepKind.MANUAL, "git: no deployment repository in the stack"),
        ("npm install", StepKind.MANUAL, "npm: no build or deployment pipeline in the stack"),
        (
            "kubectl scale deployment api",
            StepKind.MANUAL,
            "kubectl: no Kubernetes cluster in the stack",
        ),
        (
            "terraform apply",
            StepKind.MANUAL,
            "terraform: no infrastructure-as-code state in the stack",
        ),
        ("frobnicate --now", StepKind.MANUAL, "unknown command frobnicate"),
        ("sudo", StepKind.MANUAL, "unknown command (none)"),
    ],
)
def test_classification(command: str, kind: StepKind, reason: str) -> None:
    found = classify(shlex.split(command))
    assert (found.kind, found.manual_reason) == (kind, reason)


def test_ssh_host() -> None:
    assert classify(["ssh", "-p", "2222", "-i", "k", "ops@db-1"]).host == "db-1"
    assert classify(["ssh", "db-1", "df", "-h"]).host == ""  # a remote command: no session


# -- properties -------------------------------------------------------------------------

_SAFE_WORD = st.text(alphabet="abcxyz0123456789-_=./:@%+,", min_size=1, max_size=10).filter(
    lambda w: not w.startswith("#")
)
_NAME = st.sampled_from(["curl", "aws", "df", "grep", "tail", "redis-cli", "kubectl"])
_ARGV = st.tuples(_NAME, st.lists(_SAFE_WORD, max_size=8)).map(lambda t: [t[0], *t[1]])
_SHORT_ARGV = st.tuples(_NAME, st.lists(_SAFE_WORD, max_size=3)).map(lambda t: [t[0], *t[1]])


@given(_ARGV, st.lists(st.sampled_from([" \\\n  ", " \\\n", " \\\n\t\t"]), min_size=8, max_size=8))
def test_continuation_joined_commands_keep_every_argument(
    argv: list[str], breaks: list[str]
) -> None:
    pieces = [argv[0]]
    for index, word in enumerate(argv[1:]):
        pieces.append((breaks[index] if index % 2 == 0 else " ") + word)
    block = "".join(pieces)
    (command,) = split_commands(block)
    assert isinstance(command, ShellCommand)
    assert command.text.split() == argv
    assert command.text == " ".join(argv)
    assert command.raw == block


_QUOTED_BODY = st.text(alphabet="ab |;#&\n$()<>-", max_size=20)


@given(_ARGV, _QUOTED_BODY, st.sampled_from(["'", '"']))
def test_quoted_arguments_are_never_split(argv: list[str], body: str, quote: str) -> None:
    if quote == '"':
        body = body.replace("$", "")
    text = f"{shlex.join(argv)} -c {quote}{body}{quote} tail"
    (command,) = split_commands(text + "\n\n")
    assert isinstance(command, ShellCommand)
    assert shlex.split(command.text) == [*argv, "-c", body, "tail"]
    assert len(split_pipeline(command.text)) == 1


@given(
    st.lists(_SHORT_ARGV, min_size=1, max_size=5), st.lists(st.booleans(), min_size=5, max_size=5)
)
def test_each_line_is_a_command_at_its_line(argvs: list[list[str]], blanks: list[bool]) -> None:
    lines: list[str] = []
    starts: list[int] = []
    for index, argv in enumerate(argvs):
        if blanks[index]:
            lines.append("")
        starts.append(len(lines))
        lines.append(" ".join(argv))
    found = [
        (c.line, c.text) for c in split_commands("\n".join(lines)) if isinstance(c, ShellCommand)
    ]
    assert found == [(start, " ".join(argv)) for start, argv in zip(starts, argvs, strict=True)]


@given(st.lists(_SHORT_ARGV, min_size=1, max_size=4))
def test_pipeline_stages_join_back(argvs: list[list[str]]) -> None:
    text = " | ".join(" ".join(argv) for argv in argvs)
    stages = split_pipeline(text)
    assert stages == [" ".join(argv) for argv in argvs]


@given(st.text(max_size=200))
def test_splitter_never_raises(block: str) -> None:
    for item in split_commands(block):
        assert item.line <= block.count("\n")
        assert item.text == item.text.strip() or "\n" in item.text


@given(st.lists(st.text(alphabet="ab $'\"\\|#;&\n\t*?", max_size=8), min_size=1, max_size=6))
def test_words_undo_shell_quoting(argv: list[str]) -> None:
    assert words(shlex.join(argv)) == argv


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a "b \\" \\$c \\x" d', ["a", 'b " $c \\x', "d"]),
        ("a 'b \\ c'", ["a", "b \\ c"]),
        ("a b\\ c", ["a", "b c"]),
        ('psql -c "SELECT 1;', ["psql", "-c", "SELECT 1;"]),  # unclosed: to the end
        ("", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_console_output_lines_are_not_prompts() -> None:
    block = "$ df -h\n100% done\n~/app$ make\n"
    assert [i.text for i in split_commands(block, console=True)] == ["df -h", "make"]
