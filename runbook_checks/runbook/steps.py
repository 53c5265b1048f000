"""Code blocks to `Step`s: one per command or SQL statement, classified.

What a block is follows from its info string and, for unlabelled blocks, its content:

- shell (bash, sh, console ...; unlabelled blocks that look like commands): one step
  per command (`runbook_checks.runbook.shell`), classified by
  `runbook_checks.runbook.classify`; `psql ... -c "SQL"` gives one SQL step per
  statement; comment lines no command follows give MANUAL steps.
- console transcripts (any of those, or a sql/plain block, with prompts): the commands
  typed after a prompt, never the output. Shell prompts (`$ `, `user@host:~$ `,
  `[user@host dir]$ `, and `# ` where the block shows it is a root shell's: a known
  command after it, output below it); database clients' (`runbook.transcript`): psql
  (`db=# select ...;` -> one SQL step per statement), redis-cli (`host:6379> INFO` ->
  a `redis-cli INFO` step, with the options of the `redis-cli -h host` that opened the
  session), mysql (classified, a MANUAL step: no MySQL here).
- sql: one SQL step per statement (`runbook_checks.runbook.sql`).
- a query language (promql, logql ...): one MANUAL step per block, saying whose query.
- program code (javascript, python ...): one NOTE step, "code change, not a command".
- numbered prose ("1. Post status update"): one MANUAL step per line.
- other prose: one NOTE step.

Every step says its `tool` (the classifier's name for the command, "sql" for a SQL
block's statement, the language of a query or code block).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from runbook_checks.runbook import classify as rules
from runbook_checks.runbook import transcript
from runbook_checks.runbook.model import CodeBlock, Phase, Step, StepKind
from runbook_checks.runbook.shell import (
    ShellCommand,
    ShellInstruction,
    shell_prompt,
    split_commands,
    split_pipeline,
    words,
)
from runbook_checks.runbook.sql import split_statements
from runbook_checks.runbook.words import command_words

SHELL_LANGUAGES = frozenset(
    {"bash", "sh", "shell", "zsh", "ksh", "console", "shell-session", "shellsession", "terminal"}
)
CONSOLE_LANGUAGES = frozenset({"console", "shell-session", "shellsession", "terminal"})
SQL_LANGUAGES = frozenset({"sql", "postgresql", "postgres", "psql", "pgsql", "plpgsql"})
PLAIN_LANGUAGES = frozenset({"", "text", "txt", "plain", "plaintext", "none"})
MARKDOWN_LANGUAGES = frozenset({"markdown", "md"})
# query languages of monitoring systems: whose query it is
QUERY_LANGUAGES = {
    "promql": "a Prometheus query",
    "logql": "a Loki query",
    "metricsql": "a VictoriaMetrics query",
    "traceql": "a Tempo query",
    "kql": "an Azure Monitor (Kusto) query",
    "kusto": "an Azure Monitor (Kusto) query",
    "spl": "a Splunk search",
    "splunk": "a Splunk search",
    "nrql": "a New Relic query",
}
QUERY_REASON = "{language}: {what}, run in the monitoring system; no such system in the stack"
SESSION_REASON = "{tool} without a command: an interactive session; what is typed in it follows"

_NUMBERED_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*+]|\[[ xX]\])\s+\S")
_COMMAND_WORD = re.compile(r"^(?:\./|/|~/)?[a-z0-9_][a-z0-9_.+/-]*$")
_ROOT_LINE = re.compile(r"^\s*#\s+(?P<command>\S.*)$")
# redis-cli options that take a value: an interactive session has no other word
_REDIS_VALUE_OPTIONS = frozenset({"-h", "-p", "-a", "-n", "-u", "-s", "--user", "--pass"})
_CODE_COMMENT = re.compile(r"^\s*(?://|#|--|/\*)\s*(.*?)\s*(?:\*/)?$")


@dataclass(frozen=True)
class Fence:
    """A code block as the parser found it."""

    block: CodeBlock
    content_line: int  # 1-based line of the block's first content line

    @property
    def language(self) -> str:
        return self.block.language


def nature(fence: Fence) -> str:
    """ "shell", "sql", "query", "code", "numbered" or "prose"."""
    language = fence.language
    if language in SHELL_LANGUAGES:
        return "shell"
    plain_or_sql = language in SQL_LANGUAGES or language in PLAIN_LANGUAGES
    if plain_or_sql and transcript.has_client_prompts(fence.block.text):
        return "shell"  # a transcript: `db=# select ...` and its output
    if language in SQL_LANGUAGES:
        return "sql"
    if language in QUERY_LANGUAGES:
        return "query"
    if language in PLAIN_LANGUAGES:
        if _looks_like_commands(fence.block.text):
            return "shell"
        return "numbered" if _is_numbered(fence.block.text) else "prose"
    if language in MARKDOWN_LANGUAGES:
        return "numbered" if _is_numbered(fence.block.text) else "prose"
    return "code"


def steps_from(fence: Fence, phase: Phase, path: Path, warnings: list[str]) -> list[Step]:
    kind = nature(fence)
    if kind == "shell":
        return _shell_steps(fence, phase, path, warnings)
    if kind == "sql":
        return _sql_steps(fence, phase)
    text = fence.block.text.strip("\n")
    if not text.strip():
        return []
    if kind == "numbered":
        return [
            Step(
                text=line.strip(),
                raw=line,
                line=fence.content_line + offset,
                language=fence.language,
                kind=StepKind.MANUAL,
                phase=phase,
                manual_reason=rules.PROSE_INSTRUCTION_REASON,
            )
            for offset, line in enumerate(fence.block.text.split("\n"))
            if line.strip()
        ]
    first = next(i for i, line in enumerate(fence.block.text.split("\n")) if line.strip())
    comment = ""
    step_kind, tool = StepKind.NOTE, ""
    if kind == "query":  # a query for a system the stack does not have
        step_kind, tool = StepKind.MANUAL, fence.language
        what = QUERY_LANGUAGES[fence.language]
        reason = QUERY_REASON.format(language=fence.language, what=what)
    elif kind == "code":
        match = _CODE_COMMENT.match(fence.block.text.split("\n")[first])
        comment = match.group(1) if match else ""
        reason, tool = rules.CODE_REASON, fence.language
    else:
        reason = rules.PROSE_REASON
    return [
        Step(
            text=text.strip(),
            raw=fence.block.text.rstrip("\n"),
            line=fence.content_line + first,
            language=fence.language,
            kind=step_kind,
            phase=phase,
            comment=comment,
            manual_reason=reason,
            tool=tool,
        )
    ]


def _is_numbered(text: str) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    return bool(lines) and all(_NUMBERED_LINE.match(line) for line in lines)


def _looks_like_commands(text: str) -> bool:
    """An unlabelled block is commands when every command's name looks like one and
    at least half of them are commands the classifier knows."""
    console = _is_console(text, "")
    lines = [line for line in text.split("\n") if line.strip()]
    root = _root_prompt if console and _root_transcript(lines) else None
    commands = [i for i in split_commands(text, console=console, root_prompt=root) if _is_cmd(i)]
    if not commands:
        return False
    known = 0
    for item in commands:
        argv = command_words(words(split_pipeline(item.text)[0]))
        if not argv or not _COMMAND_WORD.match(argv[0]):
            return False
        if rules.known(argv):
            known += 1
    return known * 2 >= len(commands)


def _is_cmd(item: ShellCommand | ShellInstruction) -> bool:
    return isinstance(item, ShellCommand)


def _is_console(text: str, language: str) -> bool:
    """Is the block a terminal transcript (commands after prompts, output between)?

    Yes when a database client's prompt is in it; in a console block, when a line has
    a shell prompt; in another, when the first line that is not a comment has one (then
    the lines without are output), or when its `# ` lines are a root shell's prompts."""
    if transcript.has_client_prompts(text):
        return True
    lines = [line for line in text.split("\n") if line.strip()]
    if any(shell_prompt(line) is not None for line in lines):
        if language in CONSOLE_LANGUAGES:
            return True
        first = next((line for line in lines if not line.lstrip().startswith("#")), "")
        if shell_prompt(first) is not None:
            return True
    return _root_transcript(lines)


def _root_prompt(command: str) -> bool:
    """Is the text after a `# ` a command (the root prompt's) rather than a comment?"""
    argv = words(split_pipeline(command)[0])
    return bool(argv) and _COMMAND_WORD.match(argv[0]) is not None and rules.known(argv)


def _root_transcript(lines: list[str]) -> bool:
    """Are the block's `# ` lines a root shell's prompts (not comments)? When one is a
    known command followed by output: a line that is neither a comment nor a command
    ("# systemctl status x" / "● x.service - ..."). A commented-out command followed by
    commands or comments stays a comment."""
    for index, line in enumerate(lines):
        match = _ROOT_LINE.match(line)
        if match is None or not _root_prompt(match.group("command")):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following and not following.lstrip().startswith("#") and not _is_command(following):
            return True
    return False


def _is_command(line: str) -> bool:
    if shell_prompt(line) is not None:
        return True
    argv = command_words(words(split_pipeline(line)[0]))
    return bool(argv) and _COMMAND_WORD.match(argv[0]) is not None and rules.known(argv)


def _shell_steps(fence: Fence, phase: Phase, path: Path, warnings: list[str]) -> list[Step]:
    text = fence.block.text
    console = _is_console(text, fence.language)
    lines = [line for line in text.split("\n") if line.strip()]
    root = _root_prompt if console and _root_transcript(lines) else None
    shell: list[ShellItem | transcript.Entry] = list(
        split_commands(text, console=console, root_prompt=root)
    )
    entries = transcript.client_entries(text) if console else []
    items = sorted([*shell, *entries], key=lambda item: item.line)
    reader = _ShellReader(fence, phase, path, warnings, bool(entries))
    for item in items:
        if isinstance(item, transcript.Entry):
            reader.entry(item)
        elif isinstance(item, ShellInstruction):
            reader.instruction(item)
        else:
            reader.command(item)
    return reader.steps


ShellItem = ShellCommand | ShellInstruction


class _ShellReader:
    """The steps of one shell block, read in order: an `ssh host` or an interactive
    `redis-cli -h host` is remembered for what follows it."""

    def __init__(
        self, fence: Fence, phase: Phase, path: Path, warnings: list[str], sessions: bool
    ) -> None:
        self.fence = fence
        self.phase = phase
        self.path = path
        self.warnings = warnings
        self.sessions = sessions  # the block has database clients' prompts
        self.steps: list[Step] = []
        self.host = ""
        self.redis = ["redis-cli"]  # the command an interactive session was opened with

    def step(
        self,
        text: str,
        raw: str,
        line: int,
        kind: StepKind,
        *,
        comment: str = "",
        pipeline: tuple[str, ...] = (),
        manual_reason: str = "",
        host: str | None = None,
        tool: str = "",
    ) -> None:
        self.steps.append(
            Step(
                text=text,
                raw=raw,
                line=line,
                language=self.fence.language,
                kind=kind,
                phase=self.phase,
                comment=comment,
                pipeline=pipeline,
                manual_reason=manual_reason,
                host=self.host if host is None else host,
                tool=tool,
            )
        )

    def instruction(self, item: ShellInstruction) -> None:
        line = self.fence.content_line + item.line
        self.step(
            item.text,
            item.raw,
            line,
            StepKind.MANUAL,
            comment=item.comment,
            manual_reason=rules.INSTRUCTION_REASON,
        )

    def command(self, item: ShellCommand) -> None:
        line = self.fence.content_line + item.line
        if item.unterminated:
            self.warnings.append(
                f"{self.path}:{line}: a quote or here-document in this command is never "
                "closed; the command runs to the end of its code block"
            )
        stages = split_pipeline(item.text)
        argv = words(stages[0])
        found = rules.classify(argv)
        if found.name == "psql":
            steps = _psql_steps(self.fence, self.phase, item, line, argv, stages, self.host)
            if self.sessions and psql_sql(argv) is None and steps[0].kind is StepKind.MANUAL:
                reason = SESSION_REASON.format(tool="psql")
                steps = [replace(steps[0], manual_reason=reason)]
            self.steps.extend(steps)
            return
        kind, reason = found.kind, found.manual_reason
        if found.name in ("exit", "logout") and self.host:
            self.host = ""
            reason = "leaves the host an earlier ssh logged into"
        elif found.name == "redis-cli" and not stages[1:] and _interactive_redis(argv):
            self.redis = command_words(argv)
            kind, reason = StepKind.MANUAL, SESSION_REASON.format(tool="redis-cli")
        self.step(
            stages[0],
            item.raw,
            line,
            kind,
            comment=item.comment,
            pipeline=tuple(stages[1:]),
            manual_reason=reason,
            host=found.host or self.host,
            tool=found.name,
        )
        if found.host:
            self.host = found.host

    def entry(self, entry: transcript.Entry) -> None:
        line = self.fence.content_line + entry.line
        if entry.dialect == transcript.REDIS:
            command = shlex.join(self.redis) + " " + entry.text.strip()
            found = rules.classify(words(command))
            self.step(command, entry.raw, line, found.kind, tool="redis-cli")
            return
        if entry.dialect == transcript.MYSQL:
            reason = rules.NOT_IN_STACK["mysql"]
            self.step(
                entry.text, entry.raw, line, StepKind.MANUAL, manual_reason=reason, tool="mysql"
            )
            return
        raw_lines = entry.raw.split("\n")
        for statement in split_statements(entry.text):
            first = statement.line
            last = min(first + statement.text.count("\n"), len(raw_lines) - 1)
            self.step(
                statement.text,
                "\n".join(raw_lines[first : last + 1]),
                self.fence.content_line + entry.lines[first],
                StepKind.SQL,
                comment=statement.comment,
                tool="psql",
            )


def _interactive_redis(argv: list[str]) -> bool:
    """`redis-cli [-h host] [-p port] ...` with no command: an interactive session."""
    args = command_words(argv)[1:]
    i = 0
    while i < len(args):
        if args[i] in _REDIS_VALUE_OPTIONS:
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            return False
    return True


def psql_sql(argv: list[str]) -> list[str] | None:
    """The SQL given to psql with -c/--command, in order; None when there is none."""
    values: list[str] = []
    args = command_words(argv)[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--command") and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--command="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-c") and len(arg) > 2:
            values.append(arg[2:])
        i += 1
    return values or None


def _psql_steps(
    fence: Fence,
    phase: Phase,
    item: ShellCommand,
    line: int,
    argv: list[str],
    stages: list[str],
    host: str,
) -> list[Step]:
    def manual(reason: str) -> Step:
        return Step(
            text=stages[0],
            raw=item.raw,
            line=line,
            language=fence.language,
            kind=StepKind.MANUAL,
            phase=phase,
            comment=item.comment,
            pipeline=tuple(stages[1:]),
            manual_reason=reason,
            host=host,
            tool="psql",
        )

    sources = psql_sql(argv)
    if sources is None:
        if any(a in ("-f", "--file") or a.startswith("--file=") for a in argv):
            return [manual("psql -f runs a SQL file that is not in the runbook")]
        return [manual("psql without -c: an interactive session, no SQL to run")]
    steps: list[Step] = []
    cursor, counted, newlines = 0, 0, 0
    for sql in sources:
        for statement in split_statements(sql):
            first_line = statement.text.split("\n", 1)[0]
            found = item.raw.find(first_line, cursor)
            if found >= 0:  # the line where the statement starts inside the quotes
                newlines += item.raw.count("\n", counted, found)
                counted = cursor = found
                cursor += len(first_line)
                statement_line = line + newlines
            else:
                statement_line = line
            steps.append(
                Step(
                    text=statement.text,
                    raw=item.raw,
                    line=statement_line,
                    language=fence.language,
                    kind=StepKind.SQL,
                    phase=phase,
                    comment=statement.comment or item.comment,
                    pipeline=tuple(stages[1:]),
                    host=host,
                    tool="psql",
                )
            )
    return steps or [manual("psql -c gives no SQL statement")]


def _sql_steps(fence: Fence, phase: Phase) -> list[Step]:
    text = fence.block.text
    return [
        Step(
            text=statement.text,
            raw=statement.text,
            line=fence.content_line + statement.line,
            language=fence.language,
            kind=StepKind.SQL,
            phase=phase,
            comment=statement.comment,
            tool="sql",
        )
        for statement in split_statements(text)
    ]
