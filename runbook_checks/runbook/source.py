"""Reading a runbook file: checks, decoding, and the text the parser sees.

Everything a user can get wrong about the file itself (missing, a directory, binary,
empty, too large, not decodable as UTF-8) is caught here and reported as a
`UsageError` naming the file, the line where it matters, and what to do.

The text handed to the Markdown parser keeps the file's line numbering: line endings
are normalised to "\\n" (CRLF and lone CR), a byte-order mark is dropped, and YAML
(`---`) or TOML (`+++`) front matter is blanked out line for line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from runbook_checks.errors import UsageError

MAX_BYTES = 5 * 1024 * 1024
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")
_FRONT_MATTER_KEY = re.compile(r"^\s*([A-Za-z][\w -]*?)\s*[:=]\s*(.*?)\s*$")


@dataclass(frozen=True)
class Source:
    """The text to parse, with what was learnt while reading it."""

    path: Path
    text: str  # "\n" line endings, no BOM, front matter blanked (same line count)
    encoding: str
    sha256: str  # of the file's bytes (or of the text encoded, for parse_text)
    warnings: tuple[str, ...]
    front_matter: tuple[tuple[str, str, int], ...]  # (key, value, line) pairs

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


def read_source(path: Path) -> Source:
    """Read and decode `path`; raise `UsageError` when it is not a readable runbook."""
    path = Path(path)
    if not path.exists():
        raise UsageError(
            f"{path}: no such file",
            hint="pass the path of the runbook's Markdown file, e.g. runbooks/my-service.md",
        )
    if path.is_dir():
        found = sorted(path.glob("*.md"))
        example = f" (it holds {found[0].name})" if found else ""
        raise UsageError(
            f"{path} is a directory, not a runbook file{example}",
            hint="pass the runbook's .md file itself",
        )
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UsageError(
                f"{path}: {size / 1024 / 1024:.1f} MB is larger than the "
                f"{MAX_BYTES // 1024 // 1024} MB a runbook may be",
                hint="check that this is the runbook and not a log or a dump",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot be read ({exc.strerror or exc})",
            hint="check the file's permissions",
        ) from exc
    _check_bytes(data, path)
    text, encoding, warnings = decode(data, path)
    return prepare(text, path, encoding, hashlib.sha256(data).hexdigest(), warnings)


def decode(data: bytes, path: Path) -> tuple[str, str, list[str]]:
    """UTF-8 first, then cp1252, then latin-1 (which always succeeds)."""
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        first_error = f"byte 0x{data[exc.start]:02x} on line {line}"
    for encoding in _FALLBACK_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        warning = (
            f"{path}:{line}: not valid UTF-8 ({first_error}); read as {encoding}. "
            "Save the runbook as UTF-8."
        )
        return text, encoding, [warning]
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


def prepare(
    text: str, path: Path, encoding: str, sha256: str, warnings: list[str] | None = None
) -> Source:
    """Normalise `text` for the parser, checking what `read_source` checks on bytes."""
    warnings = list(warnings or [])
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise _binary(path, line)
    if len(text) > MAX_BYTES:
        raise UsageError(
            f"{path}: {len(text)} characters is more than a runbook may be "
            f"({MAX_BYTES // 1024 // 1024} MB)",
            hint="check that this is the runbook and not a log or a dump",
        )
    if text.startswith("\ufeff"):
        text = text[1:]
        warnings.append(f"{path}:1: starts with a byte-order mark (BOM); it was ignored")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UsageError(
            f"{path}:1: the file is empty",
            hint="write the runbook in Markdown, with a '## SEV-1: ...' heading per scenario",
        )
    text, front_matter, fm_warnings = _blank_front_matter(text, path)
    warnings.extend(fm_warnings)
    return Source(
        path=path,
        text=text,
        encoding=encoding,
        sha256=sha256,
        warnings=tuple(warnings),
        front_matter=front_matter,
    )


def _check_bytes(data: bytes, path: Path) -> None:
    if not data.strip():
        raise UsageError(
            f"{path}:1: the file is empty ({len(data)} bytes)",
            hint="write the runbook in Markdown, with a '## SEV-1: ...' heading per scenario",
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        # UTF-16 text is full of NUL bytes too; say so, it is the likely mistake
        raise _binary(path, data.count(b"\n", 0, nul) + 1)


def _binary(path: Path, line: int) -> UsageError:
    return UsageError(
        f"{path}:{line}: contains a NUL byte: this is binary content (or UTF-16), not Markdown",
        hint="pass the runbook's Markdown file, saved as UTF-8",
    )


def _blank_front_matter(
    text: str, path: Path
) -> tuple[str, tuple[tuple[str, str, int], ...], list[str]]:
    lines = text.split("\n")
    fence = lines[0].strip()
    if fence not in ("---", "+++"):
        return text, (), []
    closers = ("---", "...") if fence == "---" else ("+++",)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in closers), None)
    if end is None:
        if fence == "+++":
            return text, (), [f"{path}:1: TOML front matter ('+++') is never closed"]
        return text, (), []  # a thematic break, not front matter
    pairs: list[tuple[str, str, int]] = []
    for index in range(1, end):
        match = _FRONT_MATTER_KEY.match(lines[index])
        if match and not lines[index].startswith((" ", "\t", "#")):
            value = match.group(2).strip().strip("\"'")
            pairs.append((match.group(1).strip(), value, index + 1))
    if not pairs:
        return text, (), []  # two thematic breaks around Markdown, not front matter
    blanked = [""] * (end + 1) + lines[end + 1 :]
    return "\n".join(blanked), tuple(pairs), []
