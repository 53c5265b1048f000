"""The runbook as data: frozen dataclasses produced by `runbook_checks.runbook.parser`.

A `Runbook` has metadata, an optional severity table (the SLA), and `Section`s. A
scenario section ("SEV-1: Database Failure") holds symptoms, investigation `Step`s and
mitigation `Option`s. A `Step` is one command or SQL statement from a code block, with
its source line and a classification (`executor` set when it can run, `manual_reason`
when it cannot).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class StepKind(enum.StrEnum):
    """Which executor runs a step (or MANUAL: none, with a reason)."""

    SQL = "sql"  # a SQL statement (fenced sql block, or psql -c "...")
    HTTP = "http"  # a curl command line
    AWS = "aws"  # an aws CLI command line
    SHELL = "shell"  # a shell tool the stack can answer (pg_isready, df, redis-cli, ...)
    # a platform command carried out from its text (kubectl scale, heroku config:set,
    # npm run SCRIPT, git checkout): see runbook_checks.steps.platform
    PLATFORM = "platform"
    MANUAL = "manual"  # needs a human or a system the stack does not have
    NOTE = "note"  # prose in a code block (status templates, numbered instructions)


class Phase(enum.StrEnum):
    INVESTIGATION = "investigation"
    MITIGATION = "mitigation"
    OTHER = "other"


@dataclass(frozen=True)
class Step:
    """One command as written in the runbook.

    `text` is the command exactly as written (continuation lines joined with a single
    space, comments removed); `raw` is the source text including continuations.
    `comment` is the nearest preceding `#`/`--` comment line in the block ("1. Check
    database status"). `pipeline` holds the later stages when the command is a pipe
    (`redis-cli INFO stats | grep keyspace` -> text "redis-cli INFO stats",
    pipeline ("grep keyspace",)).
    """

    text: str
    raw: str
    line: int  # 1-based line in the runbook file where the command starts
    language: str  # the fence info string ("bash", "sql", "" ...)
    kind: StepKind
    phase: Phase
    comment: str = ""
    pipeline: tuple[str, ...] = ()
    manual_reason: str = ""  # set when kind is MANUAL or NOTE
    # the host of an earlier bare `ssh host` in the same block ("production-api-01"):
    # the step still runs, against the stack component standing in for that host
    host: str = ""
    # the tool the command is written for ("kubectl", "cf", "psql", "redis-cli"), "sql"
    # for a statement of a SQL block, a query language for a query block ("promql");
    # "" for prose and instructions. With `kind` it says what a step is even when it
    # cannot run here.
    tool: str = ""

    @property
    def executable(self) -> bool:
        return self.kind not in (StepKind.MANUAL, StepKind.NOTE)

    @property
    def may_call_aws(self) -> bool:
        """Whether running it may reach the AWS control plane: an aws command, or a
        platform one (a scale-out registers its instances behind the load balancer)."""
        return self.kind in (StepKind.AWS, StepKind.PLATFORM)


@dataclass(frozen=True)
class CodeBlock:
    language: str
    text: str
    line: int  # line of the opening fence
    closed: bool = True  # False when the fence was never terminated
    end_line: int = 0  # line of the closing fence (the last line read when unclosed)


@dataclass(frozen=True)
class Option:
    """A mitigation option or cause: "Option A: Restart API Server", "1. Share Expired"."""

    key: str  # "A", "1", or a slug for "If Storage Quota Exceeded" -> "storage-quota-exceeded"
    title: str  # the heading text as written
    line: int
    steps: tuple[Step, ...] = ()
    blocks: tuple[CodeBlock, ...] = ()
    prose: str = ""  # any non-code text under the option

    @property
    def id(self) -> str:
        return self.key


@dataclass(frozen=True)
class Section:
    """A heading-delimited part of the runbook; scenario sections have a severity."""

    id: str  # stable slug, e.g. "sev-1-database-failure"
    title: str  # as written: "SEV-1: Database Failure"
    level: int  # markdown heading level
    line: int
    end_line: int
    content_hash: str  # sha256 hex of the section's source text (normalised line endings)
    severity: str | None = None  # "SEV-1" when the title names one
    symptoms: tuple[str, ...] = ()
    # the 1-based source line of each symptom bullet, parallel to `symptoms`
    symptom_lines: tuple[int, ...] = ()
    investigation: tuple[Step, ...] = ()
    options: tuple[Option, ...] = ()
    blocks: tuple[CodeBlock, ...] = ()
    subsections: tuple[str, ...] = ()  # titles of child headings, in order
    parent: str | None = None  # id of the enclosing section, None at the top
    # steps from code blocks that belong to no investigation or option (Phase.OTHER):
    # blocks directly under this heading, or under a child that is not a phase heading
    other_steps: tuple[Step, ...] = ()
    # read as a scenario-like unit: it has phase parts (Symptoms, Diagnosis, Mitigation,
    # Troubleshooting, Resolution ...) whether or not its title names a severity (an
    # alert page, a troubleshooting entry)
    unit: bool = False
    # where `severity` comes from: "title" ("SEV-1: ..."), "page" (the runbook's front
    # matter or its severity field table), "" when there is none
    severity_source: str = ""

    @property
    def is_scenario(self) -> bool:
        return self.severity is not None or self.unit

    def option(self, key: str) -> Option:
        for option in self.options:
            if option.key.lower() == key.lower() or option.title.lower() == key.lower():
                return option
        raise KeyError(f"{self.title!r} has no option {key!r}")

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.investigation + tuple(s for o in self.options for s in o.steps)


@dataclass(frozen=True)
class SeverityLevel:
    level: str  # "SEV-1"
    label: str  # "Critical"
    impact: str
    response_time: str  # as written: "15 minutes"
    response_seconds: float | None  # parsed; None when it is not a duration
    examples: str
    line: int


@dataclass(frozen=True)
class TableRow:
    cells: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[TableRow, ...]
    line: int


@dataclass(frozen=True)
class Template:
    """A communication or post-mortem template (a fenced block under a named heading)."""

    title: str
    text: str
    line: int
    section: str = ""  # id of the section the template is written in


@dataclass(frozen=True)
class MisEncoded:
    """Characters that were UTF-8, read as cp1252 and saved again ("â†’" for "→")."""

    line: int
    text: str  # as it stands in the file: "â†’"
    repaired: str  # what it most likely was: "→"


@dataclass(frozen=True)
class Metadata:
    last_updated: str | None = None
    next_review: str | None = None
    owner: str | None = None
    audience: str | None = None
    priority: str | None = None
    review_frequency: str | None = None
    # the page's own severity: `severity: critical` in the front matter, or a
    # "Severity | warning" row of a field table (an alert page's)
    severity: str | None = None
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    # other "**Label**: value" lines ("Emergency Slack" -> "`#incidents`"); their line
    # numbers are in `lines` under the same label
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Runbook:
    path: Path
    title: str
    sha256: str  # of the whole file's bytes
    metadata: Metadata
    severities: tuple[SeverityLevel, ...]
    sections: tuple[Section, ...]  # every heading section, in document order
    process: tuple[str, ...] = ()  # the general process stages ("DETECT", "TRIAGE" ...)
    templates: tuple[Template, ...] = ()
    tables: tuple[Table, ...] = ()  # escalation, contacts, tools ... (every table)
    encoding: str = "utf-8"
    warnings: tuple[str, ...] = ()  # parse-time oddities (unterminated fences ...)
    mis_encoded: tuple[MisEncoded, ...] = ()  # mojibake runs, in document order
    # how the runbook is organised (runbook_checks.runbook.shape.Shape's values):
    # "severity-sections", "alert", "troubleshooting", "procedure" or "reference"
    shape: str = ""

    @property
    def scenarios(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.is_scenario)

    def section(self, ref: str) -> Section:
        """By id or title (case-insensitive)."""
        wanted = ref.strip().lower()
        for section in self.sections:
            if section.id == wanted or section.title.lower() == wanted:
                return section
        known = ", ".join(s.title for s in self.scenarios)
        raise KeyError(f"no section {ref!r} in {self.path}; scenario sections: {known}")

    def severity(self, level: str) -> SeverityLevel | None:
        for sev in self.severities:
            if sev.level.lower() == level.lower():
                return sev
        return None
