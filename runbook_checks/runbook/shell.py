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
from collections.abc import Callable
from dataclasses import dataclass

_NUMBERED = re.compile(r"^\d+[.)]\s")
# "$ ", "% ", "user@host:~$ ", "root@db:/# ", "[user@host dir]$ ", "~/app$ " (not
# "100% " in output)
_PROMPT = re.compile(
    r"^\s*(?:[\w.-]+@[\w.-]+:\S*[#$]|\[[\w.-]+@[\w.-]+(?:\s[^\]\n]*)?\][#$]"
    r"|[\w~/.:-]*[A-Za-z~/][\w~/.:-]*[$%]|[$%])(?:\s|$)"
)
# "# systemctl restart pgbouncer": a root shell's prompt, when the caller says the
# command after it is one (a `#` line is a comment otherwise)
_ROOT_PROMPT = re.compile(r"^\s*#\s")
_CONTINUATION_PROMPT = re.compile(r"^\s*>\s?")
_HEREDOC = re.compile(r"(?<!<)<<-?\s*(['\"]?)([A-Za-z_]\w*)\1")
# runs of characters with no meaning to the scanners, matched at once (long lines stay fast)
_DQ_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
_DQ_ESCAPE = re.compile(r'\\([\\"$`\n])')
_WORD_PLAIN = re.compile(r"[^\s'\"\\]*")
_MASK_PLAIN = re.compile(r"[^'\"\\`$)\n]*")
_LINE_PLAIN = re.compile(r"[^'\"\\#]*")
_NOT_NEWLINE = re.compile(r"[^\n]")


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
    comment: str  # the numbered comment it elaborates ("4. Check the provider's dashboard")


ShellItem = ShellCommand | ShellInstruction


def split_commands(
    block: str, *, console: bool = False, root_prompt: Callable[[str], bool] | None = None
) -> list[ShellItem]:
    """Commands and instructions of a shell block, in order.

    With `console`, lines are a terminal transcript: commands start with a prompt
    ("$ ", "user@host:~$ ", "[user@host dir]$ "), and other lines are output and
    ignored. With `root_prompt` too, a "# " line is a root shell's prompt when
    `root_prompt` says the text after it is a command ("# systemctl restart x").
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
            if prompt is None and root_prompt is not None:
                root = _ROOT_PROMPT.match(line)
                if root is not None and root_prompt(line[root.end() :]):
                    prompt = root
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


def shell_prompt(line: str) -> int | None:
    """Where the command after a shell prompt starts in `line`; None without a prompt."""
    match = _PROMPT.match(line)
    return match.end() if match else None


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
    """The command's words after quote removal, as the shell reads them (no expansion).

    Never raises: an unclosed quote runs to the end of the text, as in the shell.
    """
    out: list[str] = []
    current: list[str] = []
    started = False
    i = 0
    n = len(text)
    while i < n:
        plain = _end(_WORD_PLAIN, text, i)
        if plain > i:
            current.append(text[i:plain])
            started = True
            i = plain
            continue
        char = text[i]
        if char.isspace():
            if started:
                out.append("".join(current))
                current, started = [], False
            i += 1
        elif char == "'":
            end = text.find("'", i + 1)
            end = n if end < 0 else end
            current.append(text[i + 1 : end])
            started = True
            i = end + 1
        elif char == '"':
            body = _end(_DQ_BODY, text, i + 1)
            current.append(_DQ_ESCAPE.sub(_unescape, text[i + 1 : body]))
            started = True
            i = body + 1
        else:  # a backslash: the next character as it is; backslash-newline vanishes
            if i + 1 < n and text[i + 1] != "\n":
                current.append(text[i + 1])
                started = True
            i += 2
    if started:
        out.append("".join(current))
    return out


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    return "" if escaped == "\n" else escaped


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
        if quote == "'":
            end = text.find("'", i)
            end = n if end < 0 else end
        elif quote == '"':
            end = _end(_DQ_BODY, text, i)
        else:
            end = _end(_MASK_PLAIN, text, i)
        if end > i:
            chunk = text[i:end]
            out.append(_blank(chunk) if quote or depth or tick else chunk)
            i = end
            continue
        char = text[i]
        hidden = depth > 0 or tick
        if quote is not None:  # the closing quote (or a lone backslash at the end)
            out.append(char if char == quote and not hidden else "_")
            if char == quote:
                quote = None
            i += 1
        elif char == "\n":
            out.append(char)
            i += 1
        elif char == "\\":
            out.append(_blank(text[i : i + 2]))
            i += 2
        elif char == "`":
            tick = not tick
            out.append("_")
            i += 1
        elif text.startswith("$(", i):
            depth += 1
            out.append("__")
            i += 2
        elif char == ")" and depth:
            depth -= 1
            out.append("_")
            i += 1
        elif char in "'\"":
            quote = char
            out.append("_" if hidden else char)
            i += 1
        else:  # "$" or ")" that opens or closes nothing
            out.append("_" if hidden else char)
            i += 1
    return "".join(out)


def _blank(text: str) -> str:
    return _NOT_NEWLINE.sub("_", text)


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
        if quote == "'":
            end = line.find("'", i)
            if end < 0:
                return line, quote, False
            quote, i = None, end + 1
            continue
        if quote == '"':
            end = _end(_DQ_BODY, line, i)
            if end >= n or line[end] != '"':
                return line, quote, False  # (a backslash at the end stays in the quote)
            quote, i = None, end + 1
            continue
        end = _end(_LINE_PLAIN, line, i)
        if end >= n:
            break
        char = line[end]
        if char == "\\":
            if end + 1 == n:
                return line, None, True
            i = end + 2
        elif char in "'\"":
            quote, i = char, end + 1
        elif end == 0 or line[end - 1] in " \t;|&(":  # "#" starting a word: a comment
            return line[:end].rstrip(), None, False
        else:
            i = end + 1
    return line, quote, False


def _instructions(pending: list[tuple[int, str, str]], context: str) -> list[ShellItem]:
    """Comment lines no command followed. A numbered comment followed by unnumbered
    ones is their title ("# 4. Check the provider's dashboard" / "# Go to: ..."); every other
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


def _end(pattern: re.Pattern[str], text: str, start: int) -> int:
    """Where `pattern`'s match at `start` ends (`start` when it does not match)."""
    match = pattern.match(text, start)
    return match.end() if match else start
