"""Splitting a shell code block into commands, as a reader of the runbook sees them.

One command per logical line: `\\` continuations are joined with a single space, a
quoted string may span lines (`psql $DATABASE_URL -c "` ... `"`), a here-document
belongs to its command, and `#` comments are taken out of the text. Comment lines
work as in most runbooks: a comment right before a command (in the same blank-line
separated group) labels it; comment lines that no command follows are instructions
for a person ("# 3. Update DNS/config to point to restored DB").

No shell is run and no expansion happens: the text stays as written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_NUMBERED = re.compile(r"^\d+[.)]\s")
_PROMPT = re.compile(r"^\s*(?:[\w.-]+@[\w.-]+:\S*[#$]|[\w~/.:-]*[$%])\s?")
_CONTINUATION_PROMPT = re.compile(r"^\s*>\s?")
_HEREDOC = re.compile(r"(?<!<)<<-?\s*(['\"]?)([A-Za-z_]\w*)\1")


@dataclass(frozen=True)
class ShellCommand:
    text: str  # as written, continuations joined with one space, comments removed
    raw: str  # the source lines, joined with "\n"
    line: int  # 0-based line of the command's first line within the block
    comment: str  # nearest comment before it in the same group ("" when none)
    unterminated: bool = False  # a quote or here-document ran to the end of the block


@dataclass(frozen=True)
class ShellInstruction:
    """Comment lines no command follows: an instruction for a person."""

    text: str  # the comment without its '#'
    raw: str
    line: int  # 0-based within the block
    comment: str  # the numbered comment it elaborates ("4. Check Supabase dashboard")


ShellItem = ShellCommand | ShellInstruction


def split_commands(block: str, *, console: bool = False) -> list[ShellItem]:
    """Commands and instructions of a shell block, in order.

    With `console`, lines are a terminal transcript: commands start with a prompt
    ("$ ", "user@host:~$ "), and other lines are output and ignored.
    """
    lines = block.split("\n")
    items: list[ShellItem] = []
    pending: list[tuple[int, str, str]] = []  # comment lines waiting for a command
    context = ""  # the comment labelling commands in the current group
    i = 0
    while i < len(lines):
        line = lines[i]
        if console:
            prompt = _PROMPT.match(line)
            if prompt is None:  # output, or a blank line
                if not line.strip():
                    items.extend(_instructions(pending, context))
                    pending, context = [], ""
                i += 1
                continue
            line = line[prompt.end() :]
        stripped = line.strip()
        if not stripped:
            items.extend(_instructions(pending, context))
            pending, context = [], ""
            i += 1
            continue
        if stripped.startswith("#!"):  # a shebang: not a comment, not a command
            i += 1
            continue
        if stripped.startswith("#"):
            pending.append((i, stripped.lstrip("#").strip(), lines[i]))
            i += 1
            continue
        if pending:
            # "# 3. Update DNS" / "# 4. Start servers" / command: step 3 is done by hand
            for index, (number, text, raw) in enumerate(pending[:-1]):
                if _NUMBERED.match(text) and _NUMBERED.match(pending[index + 1][1]):
                    items.append(ShellInstruction(text, raw, number, context))
            context = pending[-1][1]
            pending = []
        command, i = _read_command(lines, i, line, console)
        items.append(
            ShellCommand(command.text, command.raw, command.line, context, command.unterminated)
        )
    items.extend(_instructions(pending, context))
    return items


def split_pipeline(text: str) -> list[str]:
    """The stages of a pipe ("ps aux | grep node" -> ["ps aux", "grep node"]).

    `||` is not a pipe; a `|` inside quotes, `$(...)` or backticks does not split.
    """
    masked = mask(text)
    stages: list[str] = []
    start = 0
    i = 0
    while i < len(masked):
        if masked[i] == "|":
            if masked.startswith("||", i):
                i += 2
                continue
            stages.append(text[start:i].strip())
            i += 2 if masked.startswith("|&", i) else 1
            start = i
            continue
        i += 1
    stages.append(text[start:].strip())
    return [stage for stage in stages if stage] or [text.strip()]


def words(text: str) -> list[str]:
    """The command's words after shell quote removal (no expansion); never raises."""
    for closing in ("", '"', "'"):  # an unclosed quote runs to the end, as in the shell
        try:
            return shlex.split(text + closing, comments=False, posix=True)
        except ValueError:
            continue
    return text.split()


def mask(text: str) -> str:
    """`text` with everything quoted, escaped or substituted replaced by '_'.

    Same length as `text`; quote characters and newlines stay, so positions of
    operators found in the mask are positions in `text`.
    """
    out: list[str] = []
    quote: str | None = None
    depth = 0  # inside $( ... )
    tick = False  # inside backticks
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            out.append(char)
        elif quote == "'":
            if char == "'":
                quote = None
            out.append(char if quote is None else "_")
        elif quote == '"':
            if char == "\\" and i + 1 < n:
                out.append("_" if text[i + 1] == "\n" else "__")
                if text[i + 1] == "\n":
                    out.append("\n")
                i += 2
                continue
            if char == '"':
                quote = None
            out.append(char if quote is None else "_")
        elif char == "\\" and i + 1 < n:
            out.append("__" if text[i + 1] != "\n" else "_\n")
            i += 2
            continue
        elif char == "`":
            tick = not tick
            out.append("_")
        elif text.startswith("$(", i):
            depth += 1
            out.append("__")
            i += 2
            continue
        elif char == ")" and depth:
            depth -= 1
            out.append("_")
        elif depth or tick:
            out.append("_")
        elif char in "'\"":
            quote = char
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Read:
    text: str
    raw: str
    line: int
    unterminated: bool


def _read_command(lines: list[str], i: int, first: str, console: bool) -> tuple[_Read, int]:
    """Read the command starting at line `i` (whose text, prompt removed, is `first`)."""
    start = i
    raw: list[str] = []
    text = ""
    quote: str | None = None
    joiner: str | None = None
    line = first
    while True:
        raw.append(lines[i])
        code, quote, continued = _scan_line(line, quote)
        if joiner is None:
            text = code.lstrip()
        elif joiner == "\n":
            text += "\n" + code
        else:
            text += " " + code.lstrip()
        i += 1
        if quote is not None:
            joiner = "\n"
        elif continued:
            text = text[:-1].rstrip()
            joiner = " "
        else:
            text = text.rstrip()
            break
        if i >= len(lines):
            return _Read(text.rstrip(), "\n".join(raw), start, quote is not None), i
        line = lines[i]
        if console and joiner == " ":
            line = _CONTINUATION_PROMPT.sub("", line, count=1)
    heredoc = _HEREDOC.search(mask(text))
    if heredoc is None:
        return _Read(text, "\n".join(raw), start, False), i
    tag = _HEREDOC.match(text, heredoc.start())
    delimiter = tag.group(2) if tag else heredoc.group(2)
    while i < len(lines):
        raw.append(lines[i])
        text += "\n" + lines[i]
        i += 1
        if lines[i - 1].strip() == delimiter:
            return _Read(text, "\n".join(raw), start, False), i
    return _Read(text, "\n".join(raw), start, True), i


def _scan_line(line: str, quote: str | None) -> tuple[str, str | None, bool]:
    """The code part of `line` (comment removed), the open quote at its end, and
    whether it ends with a `\\` continuation."""
    i = 0
    n = len(line)
    while i < n:
        char = line[i]
        if quote == "'":
            if char == "'":
                quote = None
        elif quote == '"':
            if char == "\\":
                i += 2
                continue
            if char == '"':
                quote = None
        elif char == "\\":
            if i + 1 == n:
                return line, None, True
            i += 2
            continue
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t;|&("):
            return line[:i].rstrip(), None, False
        i += 1
    return line, quote, False


def _instructions(pending: list[tuple[int, str, str]], context: str) -> list[ShellItem]:
    """Comment lines no command followed. A numbered comment followed by unnumbered
    ones is their title ("# 4. Check Supabase dashboard" / "# Go to: ..."); every other
    comment is an instruction of its own."""
    items: list[ShellItem] = []
    title = context
    for index, (line, text, raw) in enumerate(pending):
        following = pending[index + 1][1] if index + 1 < len(pending) else None
        if (
            _NUMBERED.match(text)
            and following is not None
            and not _NUMBERED.match(following)
            and following
        ):
            title = text
            continue
        if text:
            items.append(ShellInstruction(text, raw, line, title))
    return items
