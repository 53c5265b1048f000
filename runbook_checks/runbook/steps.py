"""Code blocks to `Step`s: one per command or SQL statement, classified.

What a block is follows from its info string and, for unlabelled blocks, its content:

- shell (bash, sh, console ...; unlabelled blocks that look like commands): one step
  per command (`runbook_checks.runbook.shell`), classified by
  `runbook_checks.runbook.classify`; `psql ... -c "SQL"` gives one SQL step per
  statement; comment lines no command follows give MANUAL steps.
- sql: one SQL step per statement (`runbook_checks.runbook.sql`).
- program code (javascript, python ...): one NOTE step, "code change, not a command".
- numbered prose ("1. Post status update"): one MANUAL step per line.
- other prose: one NOTE step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runbook_checks.runbook import classify as rules
from runbook_checks.runbook.model import CodeBlock, Phase, Step, StepKind
from runbook_checks.runbook.shell import (
    ShellCommand,
    ShellInstruction,
    split_commands,
    split_pipeline,
    words,
)
from runbook_checks.runbook.sql import split_statements

SHELL_LANGUAGES = frozenset(
    {"bash", "sh", "shell", "zsh", "ksh", "console", "shell-session", "shellsession", "terminal"}
)
CONSOLE_LANGUAGES = frozenset({"console", "shell-session", "shellsession", "terminal"})
SQL_LANGUAGES = frozenset({"sql", "postgresql", "postgres", "psql", "pgsql", "plpgsql"})
PLAIN_LANGUAGES = frozenset({"", "text", "txt", "plain", "plaintext", "none"})
MARKDOWN_LANGUAGES = frozenset({"markdown", "md"})

_NUMBERED_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*+]|\[[ xX]\])\s+\S")
_COMMAND_WORD = re.compile(r"^(?:\./|/|~/)?[a-z0-9_][a-z0-9_.+/-]*$")
_PROMPT_LINE = re.compile(r"^\s*[$%]\s")
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
    """ "shell", "sql", "code", "numbered" or "prose"."""
    language = fence.language
    if language in SHELL_LANGUAGES:
        return "shell"
    if language in SQL_LANGUAGES:
        return "sql"
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
    if kind == "code":
        match = _CODE_COMMENT.match(fence.block.text.split("\n")[first])
        comment = match.group(1) if match else ""
    return [
        Step(
            text=text.strip(),
            raw=fence.block.text.rstrip("\n"),
            line=fence.content_line + first,
            language=fence.language,
            kind=StepKind.NOTE,
            phase=phase,
            comment=comment,
            manual_reason=rules.CODE_REASON if kind == "code" else rules.PROSE_REASON,
        )
    ]


def _is_numbered(text: str) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    return bool(lines) and all(_NUMBERED_LINE.match(line) for line in lines)


def _looks_like_commands(text: str) -> bool:
    """An unlabelled block is commands when every command's name looks like one and
    at least half of them are commands the classifier knows."""
    commands = [i for i in split_commands(text, console=_is_console(text, "")) if _is_cmd(i)]
    if not commands:
        return False
    known = 0
    for item in commands:
        argv = rules.command_words(words(split_pipeline(item.text)[0]))
        if not argv or not _COMMAND_WORD.match(argv[0]):
            return False
        if not rules.classify(argv).manual_reason.startswith("unknown command"):
            known += 1
    return known * 2 >= len(commands)


def _is_cmd(item: ShellCommand | ShellInstruction) -> bool:
    return isinstance(item, ShellCommand)


def _is_console(text: str, language: str) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    prompted = [line for line in lines if _PROMPT_LINE.match(line)]
    if language in CONSOLE_LANGUAGES:
        return bool(prompted)
    commands = [line for line in lines if not line.lstrip().startswith("#")]
    return bool(commands) and len(prompted) == len(commands)


def _shell_steps(fence: Fence, phase: Phase, path: Path, warnings: list[str]) -> list[Step]:
    steps: list[Step] = []
    host = ""
    console = _is_console(fence.block.text, fence.language)
    for item in split_commands(fence.block.text, console=console):
        line = fence.content_line + item.line
        if isinstance(item, ShellInstruction):
            steps.append(
                Step(
                    text=item.text,
                    raw=item.raw,
                    line=line,
                    language=fence.language,
                    kind=StepKind.MANUAL,
                    phase=phase,
                    comment=item.comment,
                    manual_reason=rules.INSTRUCTION_REASON,
                    host=host,
                )
            )
            continue
        if item.unterminated:
            warnings.append(
                f"{path}:{line}: a quote or here-document in this command is never closed; "
                "the command runs to the end of its code block"
            )
        stages = split_pipeline(item.text)
        argv = words(stages[0])
        found = rules.classify(argv)
        if found.name == "psql":
            steps.extend(_psql_steps(fence, phase, item, line, argv, stages, host))
            continue
        if found.name in ("exit", "logout") and host:
            host = ""
            reason = "leaves the host an earlier ssh logged into"
        else:
            reason = found.manual_reason
        steps.append(
            Step(
                text=stages[0],
                raw=item.raw,
                line=line,
                language=fence.language,
                kind=found.kind,
                phase=phase,
                comment=item.comment,
                pipeline=tuple(stages[1:]),
                manual_reason=reason,
                host=found.host or host,
            )
        )
        if found.host:
            host = found.host
    return steps


def psql_sql(argv: list[str]) -> list[str] | None:
    """The SQL given to psql with -c/--command, in order; None when there is none."""
    values: list[str] = []
    args = rules.command_words(argv)[1:]
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
        )
        for statement in split_statements(text)
    ]
