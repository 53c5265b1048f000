"""Findings: what is wrong with the runbook, with evidence and a suggested fix.

Shared by the gate (static and live checks) and the drills (a diagnostic that misses the
fault, a mitigation that does not recover). A finding's `key` identifies it by section,
kind and statement, never by line number, so a baseline entry survives unrelated edits.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import asdict, dataclass


class Level(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_SPACE = re.compile(r"\s+")


def normalise_statement(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


_ERRNO = re.compile(r"\b(E(?:CONN|HOST|NET|PIPE|TIMEDOUT|NOSPC|ACCES|PERM|NOENT)[A-Z]*)\b")
_SQLSTATE = re.compile(r"SQLSTATE\W{0,3}([0-9A-Z]{5})", re.IGNORECASE)
_HTTP = re.compile(
    r"(?:\banswer(?:s|ed)|\bHTTP|\bstatus(?: code)?|\bgot)\W{0,3}([1-5]\d\d)\b", re.IGNORECASE
)
_EXIT = re.compile(r"\bexit(?:ed| code| status)?\W{0,3}(\d{1,3})\b", re.IGNORECASE)
_CLASSES = (
    (re.compile(r"time(?:d)? ?out|deadline", re.IGNORECASE), "timeout"),
    (re.compile(r"connection refused|no answer|unreachable", re.IGNORECASE), "unreachable"),
    (re.compile(r"still (?:queued|disabled)", re.IGNORECASE), "still-pending"),
    (re.compile(r"not cached|listings? still", re.IGNORECASE), "cache"),
    (re.compile(r"\b0 rows|UPDATE 0|no row", re.IGNORECASE), "no-row"),
    (re.compile(r"error|refused|invalid", re.IGNORECASE), "errors"),
)


def cause_class(observed: str) -> str:
    """The class of an observation, stable across runs: an errno name, a SQLSTATE, an
    HTTP status, an exit status, or a coarse word ("timeout", "unreachable" ...); never
    the figures, ids or times that differ from run to run."""
    for pattern, label in ((_ERRNO, "{}"), (_SQLSTATE, "sqlstate-{}"), (_HTTP, "http-{}")):
        match = pattern.search(observed)
        if match:
            return label.format(match.group(1).upper())
    for regex, label in _CLASSES:
        if regex.search(observed):
            return label
    match = _EXIT.search(observed)
    if match:
        return f"exit-{match.group(1)}"
    return "other"


@dataclass(frozen=True)
class Finding:
    level: Level
    kind: str  # e.g. "sql-undefined-column", "curl-unknown-route", "detection-missed"
    section_id: str  # "" for whole-document findings
    message: str  # what is wrong, observed
    line: int = 0  # 1-based line in the runbook (0: not tied to a line)
    statement: str = ""  # the step or text concerned, as written
    suggestion: str = ""  # what to change in the runbook
    evidence: str = ""  # output excerpt that shows it
    source: str = "gate"  # "gate" or "drill:<scenario>"
    # a drill finding's cause fingerprint: which check failed and the class of what was
    # observed ("link_serves_the_file: http-404"), so a baseline entry acknowledging one
    # cause of a kind never covers another (see `cause_class`)
    cause: str = ""

    @property
    def from_drill(self) -> bool:
        return self.source.startswith("drill:")

    @property
    def key(self) -> str:
        basis = "\x1f".join((self.section_id, self.kind, normalise_statement(self.statement)))
        return hashlib.sha256(basis.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["level"] = self.level.value
        data["key"] = self.key
        return data

    def headline(self) -> str:
        where = f"line {self.line}" if self.line else "document"
        return f"[{self.level.value}] {where} ({self.section_id or '-'}): {self.message}"
