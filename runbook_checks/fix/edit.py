"""Line edits on a runbook's bytes, and the unified diff that carries them.

An `Edit` replaces one line's text with another; the file's other lines stay byte for
byte as they were (line endings, encoding, a byte-order mark). A changed line is decoded
with the file's encoding, compared with what the fixer saw, and encoded back with the
same encoding and the same line ending.
"""

from __future__ import annotations

import codecs
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runbook_checks.errors import UsageError


@dataclass(frozen=True)
class Edit:
    """One line of the runbook, as written (`old`) and as fixed (`new`)."""

    line: int  # 1-based
    old: str  # the line's text without its line ending
    new: str
    why: str  # what was wrong and where the fix comes from
    kind: str  # the finding kind it fixes
    section_id: str = ""
    todo: str = ""  # what the edit leaves for the owner (a placeholder value to fill)

    def __post_init__(self) -> None:
        if "\n" in self.new or "\r" in self.new:
            raise ValueError(f"an edit changes one line; line {self.line}'s new text has a break")

    def to_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "old": self.old,
            "new": self.new,
            "why": self.why,
            "kind": self.kind,
            "section_id": self.section_id,
            "todo": self.todo,
        }


def split_lines(data: bytes) -> list[bytes]:
    """The file's lines with their endings (CRLF, LF or a lone CR), as the runbook reader
    counts them."""
    return data.splitlines(keepends=True)


def _ending(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    if line.endswith((b"\n", b"\r")):
        return line[-1:]
    return b""


def patched_bytes(data: bytes, encoding: str, lines: Mapping[int, tuple[str, str]]) -> bytes:
    """`data` with each line number of `lines` changed from its `old` text to its `new`
    one; every other byte as it was. A UsageError when a line is not what the fixer saw
    (the file changed meanwhile) or the new text cannot be written in the file's
    encoding."""
    raw = split_lines(data)
    for number, (old, new) in sorted(lines.items()):
        if not 0 < number <= len(raw):
            raise UsageError(f"line {number}: the file has {len(raw)} lines")
        line = raw[number - 1]
        ending = _ending(line)
        body = line[: len(line) - len(ending)]
        bom = b""
        if number == 1 and encoding == "utf-8" and body.startswith(codecs.BOM_UTF8):
            bom, body = codecs.BOM_UTF8, body[len(codecs.BOM_UTF8) :]
        if body.decode(encoding, errors="replace") != old:
            raise UsageError(
                f"line {number} is not the text the fix was made for",
                hint="the file changed while runbook-checks fix ran: run it again",
            )
        try:
            encoded = new.encode(encoding)
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"line {number}: the fixed text cannot be written in the file's encoding "
                f"({encoding}): {exc.reason}",
                hint="save the runbook as UTF-8, then run runbook-checks fix again",
            ) from exc
        raw[number - 1] = bom + encoded + ending
    return b"".join(raw)


_NO_EOL = b"\\ No newline at end of file\n"


def unified_diff(before: bytes, after: bytes, path: str, header: Sequence[str] = ()) -> bytes:
    """A unified diff of two versions of one file (`a/PATH`, `b/PATH`: `patch -p1`), in
    the file's own bytes; `header` lines come first, each as a `#` comment (patch
    ignores everything before the first `---`)."""
    out = b"".join(f"# {line}".rstrip().encode() + b"\n" for line in header)
    if before == after:
        return out
    name = path.encode()
    diff = difflib.diff_bytes(
        difflib.unified_diff, split_lines(before), split_lines(after), b"a/" + name, b"b/" + name
    )
    for line in diff:
        if line.startswith((b"---", b"+++")):
            out += line.rstrip(b"\r\n") + b"\n"
        elif line.startswith(b"@@") or line.endswith((b"\n", b"\r")):
            out += line
        else:  # the file's last line, without a line ending
            out += line + b"\n" + _NO_EOL
    return out
