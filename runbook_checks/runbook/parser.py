"""Markdown runbook -> `Runbook`, from markdown-it-py's token stream.

The token stream is flattened into a list of blocks (headings, paragraphs, list items,
code blocks, tables), each with its 1-based source line (from `token.map`). Every
heading becomes a `Section` spanning to the next heading of the same or higher level.

A section is read as a scenario-like unit (symptoms, investigation, mitigation options)
when it has phase children: "Symptoms", "Investigation"/"Diagnosis"/"Troubleshooting",
"Mitigation"/"Common Causes"/"Resolution"/"Fix" headings or bold labels, whether or not
its title names a severity (`Section.unit`: an alert page's "Diagnosis" and "Mitigation"
make it one). Its severity comes from its title ("SEV-1", "Sev 2", "P1", or a level
named in the severity table), spelt as the table spells it; a severity heading that only
groups scenario headings passes its severity down to them; a unit whose title names none
takes the page's own (front matter `severity:`, a "**Severity**:" line or a field
table's row: `runbook.shape.page_severity`). `runbook.shape` says how the whole runbook
is organised (severity sections, alert pages, troubleshooting, a procedure).

Within a mitigation phase an option starts at a bold paragraph ("**Option A: ...**",
"**If Provider Outage:**", "**1. Warm Up Cache**") or a sub-heading, and owns the code
and prose up to the next option. Code blocks elsewhere are templates (under
"Communication Template", "Status Page Updates", "Post-Mortem Template" ...) when they
are prose, and `Section.other_steps` otherwise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from runbook_checks.errors import UsageError
from runbook_checks.runbook import mojibake, severity
from runbook_checks.runbook import shape as shapes
from runbook_checks.runbook.model import (
    CodeBlock,
    Metadata,
    MisEncoded,
    Option,
    Phase,
    Runbook,
    Section,
    SeverityLevel,
    Step,
    Table,
    TableRow,
    Template,
)
from runbook_checks.runbook.source import Source, prepare, read_source
from runbook_checks.runbook.steps import Fence, nature, steps_from

__all__ = ["parse_runbook", "parse_text", "slugify"]

SYMPTOMS, INVESTIGATION, MITIGATION, OTHER = "symptoms", "investigation", "mitigation", "other"

_PHASE_TITLES = (
    (SYMPTOMS, re.compile(r"^(?:symptoms?|signs|indicators|what you(?:'ll| will)? see)$")),
    (
        INVESTIGATION,
        re.compile(
            r"^(?:investigation(?: steps)?|investigate|diagnosis|diagnostics?|diagnose"
            r"|troubleshooting(?: steps)?|triage steps|(?:possible )?checks|debugging"
            r"|how to (?:investigate|diagnose))$"
        ),
    ),
    (
        MITIGATION,
        re.compile(
            r"^(?:mitigations?(?: steps| options)?|mitigate|common causes?"
            r"(?: (?:&|and) (?:fix(?:es)?|solutions?|resolutions?|mitigations?))?"
            r"|resolution(?: steps| options)?|resolve|fix(?:es)?|remediation(?: steps)?"
            r"|recovery(?: steps)?|workarounds?|how to fix|possible causes?"
            r"|possible resolutions?|solutions?|how to resolve|remed(?:y|ies))$"
        ),
    ),
)
_OPTION_TITLE = re.compile(r"^(?:option\s+[A-Za-z0-9]+\b|if\s+\S)", re.IGNORECASE)
_TEMPLATE_TITLE = re.compile(
    r"template|status page|communication|announcement|notification|post-?mortem|message",
    re.IGNORECASE,
)
_TEMPLATE_LABEL = re.compile(
    r"template|update|announcement|notice|message|investigating|identified|monitoring"
    r"|resolved",
    re.IGNORECASE,
)
_NOT_OPTIONS = frozenset({"note", "warning", "important", "caution", "tip", "example", "notes"})
_BOLD_LEAD = re.compile(r"^\s*(\*\*|__)(?P<inner>.+?)\1(?P<rest>.*)$")
_METADATA_LINE = re.compile(
    r"^\s*(?:[-*+]\s+)?(\*\*|__)(?P<key>[^*_:]+?)\s*(?::\s*)?\1\s*:?\s*(?P<value>.*?)\s*$"
)
_METADATA_KEYS = {
    "last updated": "last_updated",
    "updated": "last_updated",
    "last update": "last_updated",
    "last_updated": "last_updated",
    "next review": "next_review",
    "next review date": "next_review",
    "next_review": "next_review",
    "owner": "owner",
    "owners": "owner",
    "maintainer": "owner",
    "audience": "audience",
    "priority": "priority",
    "review frequency": "review_frequency",
    "review cadence": "review_frequency",
    "review_frequency": "review_frequency",
}
_ARROW = re.compile(r"\s*(?:→|⟶|➔|➜|⇒|->|=>)\s*")
_STAGE_NUMBER = re.compile(r"^\s*\d+[.)]\s*")
_STAGE_LABEL = re.compile(r"^[^:]{1,40}:\s+(?=\S)")
_SEVERITY_GROUP = re.compile(r"severity|severities", re.IGNORECASE)
_FENCE_CLOSE = re.compile(r"^[\s>]*(?P<marks>`{3,}|~{3,})\s*$")


def parse_runbook(path: Path) -> Runbook:
    """Read and parse the runbook at `path`; `UsageError` when it is not one."""
    return _parse(read_source(Path(path)))


def parse_text(text: str, path: Path, encoding: str = "utf-8") -> Runbook:
    """Parse runbook `text` as if read from `path` (which need not exist)."""
    path = Path(path)
    try:
        data = text.encode(encoding, errors="surrogateescape")
    except (LookupError, UnicodeError):
        data = text.encode("utf-8", errors="surrogatepass")
    return _parse(prepare(text, path, encoding, hashlib.sha256(data).hexdigest()))


def slugify(title: str) -> str:
    """A stable id for a title: "SEV-1: Database Failure" -> "sev-1-database-failure"."""
    text = severity.plain(title).lower()
    return re.sub(r"[\W_]+", "-", text).strip("-") or "section"


# -- the flattened token stream -------------------------------------------------------


@dataclass
class _Heading:
    index: int  # position in the heading list
    level: int
    title: str
    line: int
    id: str = ""
    parent: _Heading | None = None
    end_line: int = 0
    block: int = 0  # position in the block list
    end_block: int = 0  # position of the block after the span
    severity: str | None = None
    severity_source: str = ""  # "title" (its own or a group's), "page"
    machine: bool = False  # read as a scenario (has phase children)
    children: list[_Heading] = field(default_factory=list)


@dataclass(frozen=True)
class _Paragraph:
    text: str
    line: int
    in_list: bool


@dataclass(frozen=True)
class _TableBlock:
    table: Table


_Block = _Heading | _Paragraph | Fence | _TableBlock


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _blocks(
    tokens: Sequence[Token],
    lines: list[str],
    path: Path,
    warnings: list[str],
    numbered: list[Fence] | None = None,
) -> list[_Block]:
    """The blocks of the token stream; the fences inside numbered list items are also
    added to `numbered`."""
    blocks: list[_Block] = []
    headings = 0
    list_depth = 0
    ordered = 0  # depth of numbered lists
    i = 0
    while i < len(tokens):
        token = tokens[i]
        start = token.map[0] if token.map else 0
        if token.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
            ordered += token.type == "ordered_list_open"
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
            ordered -= token.type == "ordered_list_close"
        elif token.type == "heading_open":
            title = tokens[i + 1].content.strip()
            blocks.append(_Heading(headings, int(token.tag[1]), title, start + 1))
            headings += 1
            i += 3
            continue
        elif token.type == "paragraph_open":
            blocks.append(_Paragraph(tokens[i + 1].content, start + 1, list_depth > 0))
            i += 3
            continue
        elif token.type in ("fence", "code_block") and token.map:
            fence = _fence(token, lines, path, warnings)
            blocks.append(fence)
            if ordered and numbered is not None:
                numbered.append(fence)
        elif token.type == "table_open":
            table, i = _table(tokens, i)
            blocks.append(_TableBlock(table))
            continue
        i += 1
    return blocks


def _fence(token: Token, lines: list[str], path: Path, warnings: list[str]) -> Fence:
    assert token.map is not None
    start, end = token.map
    language = token.info.strip().split(maxsplit=1)[0].lower() if token.info.strip() else ""
    language = language.strip("{}.")
    if token.type == "code_block":  # indented code: no fence lines
        block = CodeBlock(language, token.content, start + 1, True, end)
        return Fence(block, start + 1)
    closing = _FENCE_CLOSE.match(lines[end - 1]) if end - 1 > start else None
    closed = bool(
        closing
        and closing.group("marks")[0] == token.markup[0]
        and len(closing.group("marks")) >= len(token.markup)
    )
    if not closed:
        warnings.append(
            f"{path}:{start + 1}: this code fence ({token.markup}) is never closed; "
            f"everything after it (to line {end}) is read as code. "
            f"Close it with a {token.markup} line."
        )
    return Fence(CodeBlock(language, token.content, start + 1, closed, end), start + 2)


def _table(tokens: Sequence[Token], i: int) -> tuple[Table, int]:
    opening = tokens[i]
    line = (opening.map[0] if opening.map else 0) + 1
    header: tuple[str, ...] = ()
    rows: list[TableRow] = []
    cells: list[str] = []
    row_line = line
    in_head = False
    while i < len(tokens) and tokens[i].type != "table_close":
        token = tokens[i]
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            cells = []
            row_line = (token.map[0] if token.map else row_line - 1) + 1
        elif token.type == "inline":
            cells.append(token.content.strip())
        elif token.type == "tr_close":
            if in_head:
                header = tuple(cells)
            else:
                rows.append(TableRow(tuple(cells), row_line))
        i += 1
    return Table(header, tuple(rows), line), i + 1


# -- sections -------------------------------------------------------------------------


def _phase_of(title: str) -> str | None:
    text = severity.plain(title).strip().rstrip(":").strip().lower()
    text = re.sub(r"\s+", " ", text)
    for phase, pattern in _PHASE_TITLES:
        if pattern.match(text):
            return phase
    return None


def _label(paragraph: _Paragraph) -> tuple[str, str, bool] | None:
    """A paragraph that opens with bold text: (label, rest of its first line, whether
    the bold text is all there is on that line). Trailing colons are dropped."""
    first = paragraph.text.split("\n", 1)[0]
    match = _BOLD_LEAD.match(first)
    if match is None:
        return None
    inner = match.group("inner").strip()
    rest = match.group("rest").strip()
    only = rest in ("", ":")
    return inner.rstrip(":").strip(), rest.lstrip(":").strip(), only


def _option_key(title: str) -> str:
    text = severity.plain(title).strip().rstrip(":").strip()
    patterns = (
        r"^option\s+([A-Za-z0-9]+)\b",
        r"^(?:step|fix|cause|solution|approach|plan)\s+([A-Za-z0-9]+)\b",
        r"^(\d+)[.):]?(?:\s|$)",
        r"^([A-Za-z])[.)]\s",
    )
    for pattern in patterns:
        match = re.match(pattern, text, re.IGNORECASE)
        if match:
            key = match.group(1)
            return key.upper() if len(key) == 1 and key.isalpha() else key
    match = re.match(r"^if\s+(.+)$", text, re.IGNORECASE)
    if match:
        return slugify(match.group(1))
    return slugify(text)


@dataclass
class _OptionBuilder:
    key: str
    title: str
    line: int
    level: int | None  # heading level for a heading option, None for a bold one
    steps: list[Step] = field(default_factory=list)
    blocks: list[CodeBlock] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)


@dataclass
class _Contents:
    symptoms: list[str] = field(default_factory=list)
    symptom_lines: list[int] = field(default_factory=list)
    investigation: list[Step] = field(default_factory=list)
    options: list[_OptionBuilder] = field(default_factory=list)
    other_steps: list[Step] = field(default_factory=list)


class _Reader:
    """Reads the blocks owned by one section."""

    def __init__(self, path: Path, warnings: list[str], skip: set[int]) -> None:
        self.path = path
        self.warnings = warnings
        self.skip = skip  # ids of fences already used (the process diagram)
        self.templates: list[Template] = []

    def read(self, root: _Heading, blocks: Sequence[_Block], scenario: bool) -> _Contents:
        out = _Contents()
        phase = OTHER
        phase_level = root.level
        option: _OptionBuilder | None = None
        strict = False  # options are headings titled "Option X" / "If ..." only
        phase_title = root.title  # names an option made for code before any option
        region = root
        label = ""
        for block in blocks:
            if isinstance(block, _Heading):
                label = ""
                region = block
                if option is not None and (option.level is None or block.level <= option.level):
                    option = None
                elif option is not None:
                    continue  # a sub-heading inside a heading option
                found = _phase_of(block.title) if scenario else None
                option_title = scenario and bool(_OPTION_TITLE.match(severity.plain(block.title)))
                if found is not None:
                    phase, phase_level, strict = found, block.level, False
                    phase_title = block.title
                elif block.level <= phase_level:
                    if option_title:
                        phase, phase_level, strict = MITIGATION, block.level - 1, True
                        option = self._option(out, block.title, block.line, block.level)
                    else:
                        phase, phase_level = OTHER, block.level
                elif phase == MITIGATION and (option_title or not strict):
                    option = self._option(out, block.title, block.line, block.level)
                elif phase == MITIGATION:
                    phase, phase_level = OTHER, block.level
                continue
            if isinstance(block, _Paragraph):
                labelled = _label(block)
                plain_first = severity.plain(block.text.split("\n", 1)[0]).strip()
                candidate = labelled[0] if labelled else plain_first
                found = _phase_of(candidate) if scenario else None
                is_label = (labelled is not None and (labelled[2] or found is not None)) or (
                    labelled is None and plain_first.endswith(":") and "\n" not in block.text
                )
                if found is not None and is_label and not block.in_list:
                    phase, phase_level, option, strict = found, 99, None, False
                    phase_title = labelled[0] if labelled else plain_first.rstrip(":")
                    if found == SYMPTOMS and labelled and labelled[1]:
                        out.symptoms.append(labelled[1])
                        out.symptom_lines.append(block.line)
                    continue
                if phase == MITIGATION and labelled and not block.in_list:
                    name, rest, only = labelled
                    in_heading_option = option is not None and option.level is not None
                    if name.lower() not in _NOT_OPTIONS and (
                        _OPTION_TITLE.match(name) or (only and not in_heading_option)
                    ):
                        title = name if only else f"{name}: {rest}" if rest else name
                        option = self._option(out, title, block.line, None)
                        more = block.text.split("\n", 1)[1:] if "\n" in block.text else []
                        option.prose.extend(m.strip() for m in more if m.strip())
                        continue
                if phase == SYMPTOMS and block.in_list:
                    out.symptoms.append(block.text.strip())
                    out.symptom_lines.append(block.line)
                elif phase == MITIGATION and option is not None:
                    option.prose.append(block.text.strip())
                elif labelled and labelled[2]:
                    label = labelled[0]
                continue
            if isinstance(block, Fence):
                if id(block) in self.skip:
                    continue
                if phase == INVESTIGATION:
                    out.investigation.extend(self._steps(block, Phase.INVESTIGATION))
                elif phase == MITIGATION:
                    if option is None:
                        option = self._option(out, phase_title, block.block.line, None)
                    option.blocks.append(block.block)
                    option.steps.extend(self._steps(block, Phase.MITIGATION))
                else:
                    self._other(block, region, label, out)
                label = ""
        return out

    def _option(self, out: _Contents, title: str, line: int, level: int | None) -> _OptionBuilder:
        clean = severity.plain(title).strip().rstrip(":").strip()
        key = _option_key(clean)
        taken = {o.key for o in out.options}
        unique, n = key, 2
        while unique in taken:
            unique, n = f"{key}-{n}", n + 1
        option = _OptionBuilder(unique, clean, line, level)
        out.options.append(option)
        return option

    def _steps(self, fence: Fence, phase: Phase) -> list[Step]:
        return steps_from(fence, phase, self.path, self.warnings)

    def _other(self, fence: Fence, region: _Heading, label: str, out: _Contents) -> None:
        titles: list[str] = []
        heading: _Heading | None = region
        while heading is not None:
            titles.append(heading.title)
            heading = heading.parent
        in_template = any(_TEMPLATE_TITLE.search(t) for t in titles) or bool(
            label and _TEMPLATE_LABEL.search(label)
        )
        if in_template and nature(fence) in ("prose", "numbered"):
            self.templates.append(
                Template(
                    title=label or region.title,
                    text=fence.block.text.rstrip("\n"),
                    line=fence.block.line,
                    section=region.id,
                )
            )
            return
        out.other_steps.extend(self._steps(fence, Phase.OTHER))


# -- the whole document ---------------------------------------------------------------


def _parse(source: Source) -> Runbook:
    path = source.path
    lines = source.lines
    warnings = list(source.warnings)
    tokens = _markdown().parse(source.text)
    numbered: list[Fence] = []
    blocks = _blocks(tokens, lines, path, warnings, numbered)
    headings = [b for b in blocks if isinstance(b, _Heading)]
    if not headings:
        raise _no_headings(path, lines, blocks)

    tables = tuple(b.table for b in blocks if isinstance(b, _TableBlock))
    levels: tuple[SeverityLevel, ...] = ()
    for table in tables:
        if severity.is_severity_table(table):
            levels = severity.levels_from(table)
            break

    positions = {id(b): n for n, b in enumerate(blocks)}
    _link(headings, lines, positions, len(blocks))
    spans = {h.index: _span(blocks, h) for h in headings}
    _mark_scenarios(headings, spans, levels)
    metadata = _metadata(blocks, source, tables)
    if metadata.severity is not None:
        for heading in headings:
            if heading.machine and heading.severity is None:
                heading.severity, heading.severity_source = metadata.severity, "page"

    process, process_fences = _process(blocks, headings)
    reader = _Reader(path, warnings, process_fences)
    contents: dict[int, _Contents] = {}
    owned_by_machine: set[int] = set()
    for heading in headings:
        if heading.machine and not _inside_machine(heading):
            span = spans[heading.index]
            contents[heading.index] = reader.read(heading, span, scenario=True)
            owned_by_machine.update(id(b) for b in span)
    for heading in headings:
        if heading.index in contents or _inside_machine(heading):
            continue
        direct = _direct(spans[heading.index])
        contents[heading.index] = reader.read(heading, direct, scenario=False)
    first = positions[id(headings[0])]
    for block in blocks[:first]:
        if isinstance(block, Fence):
            warnings.append(
                f"{path}:{block.block.line}: code block before the first heading; "
                "it belongs to no section and its commands are not checked"
            )

    sections = tuple(
        _section(h, spans[h.index], contents.get(h.index, _Contents()), lines) for h in headings
    )
    found = mojibake.find(lines)
    if found:
        warnings.append(_mojibake_warning(path, found))
    title = next((h.title for h in headings if h.level == 1), headings[0].title)
    fences = sum(1 for b in blocks if isinstance(b, Fence))
    return Runbook(
        path=path,
        title=title,
        sha256=source.sha256,
        metadata=metadata,
        severities=levels,
        sections=sections,
        process=process,
        templates=tuple(reader.templates),
        tables=tables,
        encoding=source.encoding,
        warnings=tuple(warnings),
        mis_encoded=found,
        shape=shapes.detect(sections, len(numbered), fences).value,
    )


def _no_headings(path: Path, lines: list[str], blocks: Sequence[_Block]) -> UsageError:
    unclosed = [b for b in blocks if isinstance(b, Fence) and not b.block.closed]
    why = (
        f"; the code fence opened on line {unclosed[0].block.line} is never closed and "
        "swallows the rest of the file"
        if unclosed
        else ""
    )
    return UsageError(
        f"{path}:1: no Markdown headings in its {len(lines)} lines{why}",
        hint="a runbook needs headings: '# Title', then one '## SEV-1: <failure>' "
        "section per documented failure",
    )


def _link(
    headings: list[_Heading], lines: list[str], positions: dict[int, int], total: int
) -> None:
    """Ids, parents, children, end lines and the end of each heading's span of blocks."""
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    stack: list[_Heading] = []

    def close(heading: _Heading, end_line: int, end_block: int) -> None:
        while end_line > heading.line and not lines[end_line - 1].strip():
            end_line -= 1
        heading.end_line, heading.end_block = end_line, end_block

    for heading in headings:
        base = slugify(heading.title)
        unique, n = base, next_suffix.get(base, 2)
        while unique in taken:
            unique, n = f"{base}-{n}", n + 1
        next_suffix[base] = n
        taken.add(unique)
        heading.id = unique
        heading.block = positions[id(heading)]
        while stack and stack[-1].level >= heading.level:
            close(stack.pop(), heading.line - 1, heading.block)
        if stack:
            heading.parent = stack[-1]
            stack[-1].children.append(heading)
        stack.append(heading)
    for heading in stack:
        close(heading, len(lines), total)


def _span(blocks: Sequence[_Block], heading: _Heading) -> list[_Block]:
    """The blocks after `heading` up to the next heading of the same or higher level."""
    return list(blocks[heading.block + 1 : heading.end_block])


def _direct(span: Sequence[_Block]) -> list[_Block]:
    """The blocks of a span before its first sub-heading."""
    out: list[_Block] = []
    for block in span:
        if isinstance(block, _Heading):
            break
        out.append(block)
    return out


def _has_phases(heading: _Heading, span: Sequence[_Block]) -> bool:
    if any(_phase_of(child.title) for child in heading.children):
        return True
    for block in _direct(span):
        if isinstance(block, _Paragraph) and not block.in_list:
            labelled = _label(block)
            if labelled and _phase_of(labelled[0]):
                return True
    return False


def _mark_scenarios(
    headings: list[_Heading], spans: dict[int, list[_Block]], levels: Sequence[SeverityLevel]
) -> None:
    for heading in headings:
        if _under_severity_definitions(heading):
            continue
        heading.severity = severity.severity_in(heading.title, levels)
        heading.severity_source = "title" if heading.severity else ""
        heading.machine = _has_phases(heading, spans[heading.index])
    for heading in headings:
        if heading.severity is None or heading.machine:
            continue
        groups = [h for h in _descendants(heading) if h.machine]
        if groups:  # "## SEV-1 incidents" / "### API down" / "#### Symptoms"
            for child in groups:
                if child.severity is None:
                    child.severity, child.severity_source = heading.severity, "title"
            heading.severity, heading.severity_source = None, ""
        else:  # a scenario that says nothing yet: still a scenario
            heading.machine = True


def _under_severity_definitions(heading: _Heading) -> bool:
    parent = heading.parent
    while parent is not None:
        if _SEVERITY_GROUP.search(parent.title) and not severity.severity_in(parent.title, ()):
            return True
        parent = parent.parent
    return False


def _descendants(heading: _Heading) -> Iterator[_Heading]:
    for child in heading.children:
        yield child
        yield from _descendants(child)


def _inside_machine(heading: _Heading) -> bool:
    parent = heading.parent
    while parent is not None:
        if parent.machine:
            return True
        parent = parent.parent
    return False


def _section(
    heading: _Heading, span: Sequence[_Block], contents: _Contents, lines: list[str]
) -> Section:
    source = "\n".join(lines[heading.line - 1 : heading.end_line])
    options = tuple(
        Option(
            key=o.key,
            title=o.title,
            line=o.line,
            steps=tuple(o.steps),
            blocks=tuple(o.blocks),
            prose="\n".join(o.prose),
        )
        for o in contents.options
    )
    return Section(
        id=heading.id,
        title=heading.title,
        level=heading.level,
        line=heading.line,
        end_line=heading.end_line,
        content_hash=hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest(),
        severity=heading.severity if heading.machine else None,
        symptoms=tuple(contents.symptoms),
        symptom_lines=tuple(contents.symptom_lines),
        investigation=tuple(contents.investigation),
        options=options,
        blocks=tuple(b.block for b in span if isinstance(b, Fence)),
        subsections=tuple(child.title for child in heading.children),
        parent=heading.parent.id if heading.parent else None,
        other_steps=tuple(contents.other_steps),
        unit=heading.machine,
        severity_source=heading.severity_source if heading.machine else "",
    )


def _process(
    blocks: Sequence[_Block], headings: list[_Heading]
) -> tuple[tuple[str, ...], set[int]]:
    """The process stages ("DETECT", "TRIAGE", ...) from an arrow diagram ("1. DETECT →
    2. TRIAGE", mis-encoded arrows too), else from a process section's numbered
    sub-headings; and the ids of the fences that held the diagram."""
    current: _Heading | None = None
    candidates: list[tuple[bool, tuple[str, ...], int | None]] = []
    for block in blocks:
        if isinstance(block, _Heading):
            current = block
            continue
        if isinstance(block, Fence):
            text, fence_id = block.block.text, id(block)
        elif isinstance(block, _Paragraph) and not block.in_list:
            text, fence_id = block.text, None
        else:
            continue
        for line in text.split("\n"):
            if len(line) > 1000 or ("->" not in line and "=>" not in line and line.isascii()):
                continue  # no diagram here (and a long line is no diagram)
            parts = [p for p in _ARROW.split(mojibake.repair_all(line)) if p.strip()]
            if 3 <= len(parts) <= 20:
                parts[0] = _STAGE_LABEL.sub("", parts[0])  # "Process: Page -> ..."
                stages = tuple(_STAGE_NUMBER.sub("", severity.plain(p)).strip() for p in parts)
                in_process = current is not None and "process" in current.title.lower()
                candidates.append((in_process, stages, fence_id))
                break
    if candidates:
        best = next((c for c in candidates if c[0]), candidates[0])
        return best[1], {best[2]} if best[2] is not None else set()
    for heading in headings:
        if "process" in heading.title.lower():
            numbered = [c for c in heading.children if _STAGE_NUMBER.match(c.title)]
            if len(numbered) >= 2:
                stages = tuple(
                    re.sub(r"\s*\(.*?\)\s*$", "", _STAGE_NUMBER.sub("", c.title)).strip()
                    for c in numbered
                )
                return stages, set()
    return (), set()


def _metadata(blocks: Sequence[_Block], source: Source, tables: Sequence[Table]) -> Metadata:
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    extra: dict[str, str] = {}
    for key, value, line in source.front_matter:
        name = _METADATA_KEYS.get(key.strip().lower().replace("-", " "))
        if name and name not in values and value:
            values[name], lines[name] = value, line
    for block in blocks:
        if not isinstance(block, _Paragraph):
            continue
        for offset, text in enumerate(block.text.split("\n")):
            match = _METADATA_LINE.match(text)
            if match is None or not match.group("value"):
                continue
            label = match.group("key").strip()
            name = _METADATA_KEYS.get(label.lower())
            if name is not None:
                if name not in values:
                    values[name], lines[name] = match.group("value"), block.line + offset
            elif not block.in_list and label not in extra:
                extra[label], lines[label] = match.group("value"), block.line + offset
    page = shapes.page_severity(source.front_matter, ())
    label = next((k for k in extra if k.strip().lower() == "severity"), None)
    if page is None and label is not None:
        page = extra[label], lines[label]
    page = page or shapes.page_severity((), tables)
    if page is not None:
        values["severity"], lines["severity"] = page
    return Metadata(
        last_updated=values.get("last_updated"),
        next_review=values.get("next_review"),
        owner=values.get("owner"),
        audience=values.get("audience"),
        priority=values.get("priority"),
        review_frequency=values.get("review_frequency"),
        severity=values.get("severity"),
        lines=lines,
        extra=extra,
    )


def _mojibake_warning(path: Path, found: Sequence[MisEncoded]) -> str:
    numbers = sorted({m.line for m in found})
    shown = ", ".join(str(n) for n in numbers[:12]) + (" ..." if len(numbers) > 12 else "")
    pairs: dict[str, str] = {}
    for item in found:
        pairs.setdefault(item.text, item.repaired)
    examples = ", ".join(f"{k!r} for {v!r}" for k, v in list(pairs.items())[:4])
    return (
        f"{path}:{numbers[0]}: mis-encoded characters (UTF-8 read as cp1252 and saved "
        f"again) on line(s) {shown}: {examples}. Re-save the runbook as UTF-8 with the "
        "original characters."
    )
