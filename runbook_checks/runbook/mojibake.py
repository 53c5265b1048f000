"""Mojibake: UTF-8 text that was read as cp1252 and saved again.

"→" is the UTF-8 bytes E2 86 92; read as cp1252 they are "â", "†", "’", and saved as
UTF-8 again the file says "â†’". Such runs are found by their shape (a lead character
Â..ô followed by cp1252 continuation characters) and confirmed by undoing the damage:
encoding the run back to cp1252 bytes must give valid UTF-8.
"""

from __future__ import annotations

import re

from runbook_checks.runbook.model import MisEncoded

# the characters cp1252 shows for the bytes 0x80-0xBF (UTF-8 continuation bytes)
_CONTINUATION = (
    "\u0080-\u00bf"  # latin-1 range (and the five bytes cp1252 leaves undefined)
    "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
_RUN = re.compile(f"(?:[\u00c2-\u00f4][{_CONTINUATION}]+)+")


def _to_bytes(text: str) -> bytes | None:
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            if ord(char) > 0xFF:
                return None
            out.append(ord(char))  # the five bytes cp1252 leaves undefined
    return bytes(out)


def repair(text: str) -> str | None:
    """What a mojibake run most likely was ("â†’" -> "→"), or None when it is not one."""
    data = _to_bytes(text)
    if data is None:
        return None
    try:
        repaired = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return repaired if repaired != text else None


def repair_all(text: str) -> str:
    """`text` with every confirmed mojibake run repaired."""

    def fix(match: re.Match[str]) -> str:
        return repair(match.group(0)) or match.group(0)

    return _RUN.sub(fix, text)


def find(lines: list[str]) -> tuple[MisEncoded, ...]:
    """Every mojibake run, with its 1-based line."""
    found: list[MisEncoded] = []
    for number, line in enumerate(lines, start=1):
        for match in _RUN.finditer(line):
            repaired = repair(match.group(0))
            if repaired is not None:
                found.append(MisEncoded(line=number, text=match.group(0), repaired=repaired))
    return tuple(found)
