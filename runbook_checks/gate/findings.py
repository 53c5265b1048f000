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
