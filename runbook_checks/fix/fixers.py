"""One fixer per finding kind that has a mechanical fix.

A fixer takes the finding, the runbook's lines as they are now (1-based line N is
`lines[N - 1]`) and what else it needs (the step the finding is about, botocore's model,
the profile's auth headers, the schema), and returns an `Edit` of one line, or None when
the fix is not mechanical after all (two readings, a value only the owner knows): the
finding is then the owner's. Each changes only the characters that are wrong.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from runbook_checks.findings import Finding
from runbook_checks.fix.edit import Edit
from runbook_checks.gate.locate import Located
from runbook_checks.runbook import mojibake
from runbook_checks.runbook.model import Runbook, StepKind

if TYPE_CHECKING:
    from botocore.model import Shape


class Schema(Protocol):
    """The service's tables and their columns (the gate's `SchemaValidator` is one)."""

    def columns(self, table: str) -> list[str]: ...
    def relations(self) -> list[str]: ...


class StockSchema:
    """PostgreSQL's own system catalogs (`gate/stock_catalog.py`): the schema a runbook
    whose profile names no stack is checked against (pg_stat_activity, pg_locks ...)."""

    def columns(self, table: str) -> list[str]:
        from runbook_checks.gate.stock_catalog import RELATIONS

        name = table.rsplit(".", 1)[-1]
        for key in (table, f"pg_catalog.{name}", f"information_schema.{name}"):
            if key in RELATIONS:
                return RELATIONS[key].split()
        return []

    def relations(self) -> list[str]:
        from runbook_checks.gate.stock_catalog import RELATIONS

        return sorted({key.rsplit(".", 1)[-1] for key in RELATIONS})


@dataclass(frozen=True)
class Models:
    """What the fixers read besides the finding and the lines."""

    runbook: Runbook
    steps: Sequence[Located] = ()
    curl_auth: Mapping[str, str] = field(default_factory=dict)  # the profile's [curl_auth]
    placeholders: Collection[str] = ()  # the names the profile's [placeholders] binds
    schema: Schema | None = None

    def step_at(self, line: int) -> Located | None:
        for item in self.steps:
            if item.step.line <= line <= item.end_line:
                return item
        return None


def _edit(finding: Finding, line: int, old: str, new: str, why: str, todo: str = "") -> Edit | None:
    if new == old:
        return None
    return Edit(line, old, new, why, finding.kind, finding.section_id, todo)


def _line(lines: Sequence[str], number: int) -> str | None:
    return lines[number - 1] if 0 < number <= len(lines) else None


# -- text ------------------------------------------------------------------------------


def fix_mis_encoded(finding: Finding, lines: Sequence[str]) -> Edit | None:
    """Mojibake ('ðŸŸ¡', UTF-8 read as cp1252) back to the character it was ('🟡'):
    exactly the confirmed runs, nothing else on the line."""
    old = _line(lines, finding.line)
    if old is None:
        return None
    runs = mojibake.find([old])
    if not runs:
        return None
    shown = ", ".join(dict.fromkeys(f"{r.text!r} -> {r.repaired!r}" for r in runs))
    return _edit(
        finding,
        finding.line,
        old,
        mojibake.repair_all(old),
        f"mis-encoded characters repaired (UTF-8 that was read as cp1252): {shown}",
    )


# -- aws -------------------------------------------------------------------------------

_WORD = r"(?<![\w-]){}(?![\w-])"


def _command_end(line: str) -> int:
    """Where a shell line's command ends: before a `#` comment outside quotes."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return len(line)


def placeholder_value(name: str, shape: Shape) -> str:
    """A value for a required parameter the line lacks, as a placeholder the owner
    fills (`--targets Id=TARGET_ID`): never a guessed real value."""
    base = name.upper().replace("-", "_")
    if shape.type_name == "list":
        inner = getattr(shape, "member", None)
        return placeholder_value(name.removesuffix("s"), inner) if inner is not None else base
    if shape.type_name == "structure":
        members = getattr(shape, "members", {})
        required = list(getattr(shape, "required_members", [])) or list(members)[:1]
        return ",".join(f"{m}={base}_{m.upper()}" for m in required)
    return base


def fix_aws(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """A wrong service or operation name, a misspelt parameter, a missing required
    parameter: corrected from botocore's model (`steps.aws.correct_aws`). Missing
    parameters get a placeholder value (`placeholder_value`) for the owner to fill."""
    from runbook_checks.steps.aws import correct_aws, parse_aws

    item = models.step_at(finding.line)
    if item is None or item.step.kind is not StepKind.AWS:
        return None
    correction = correct_aws(item.step.text)
    if correction is None:
        return None
    command = parse_aws(item.step.text)
    number = item.step.line
    old = _line(lines, number)
    if old is None:
        return None
    new = old
    words = ((command.service, correction.service), (command.operation, correction.operation))
    at = new.find("aws")
    for written, right in words:
        match = re.compile(_WORD.format(re.escape(written))).search(new, max(at, 0))
        if match is None:
            return None
        if written != right:
            new = new[: match.start()] + right + new[match.end() :]
        at = match.start() + len(right)
    for written, right in correction.renamed:
        new, count = re.subn(_WORD.format(re.escape(f"--{written}")), f"--{right}", new, count=1)
        if not count:
            return None  # on another line of the command: not this edit's
    todo = ""
    if correction.missing:
        added = " ".join(f"--{name} {placeholder_value(name, s)}" for name, s in correction.missing)
        todo = f"the fix added `{added}`: write the real value"
        body = new[: _command_end(new)].rstrip()
        if body.endswith("\\"):  # continued: the parameters go after the operation
            new = f"{new[:at]} {added}{new[at:]}"
        else:
            new = f"{body} {added}{new[len(body) :]}"
    return _edit(finding, number, old, new, f"from botocore's model: {correction.why}", todo)


# -- curl ------------------------------------------------------------------------------

_BEARER = re.compile(r"-H \"(Authorization: [^\"]+)\"")
# what the credential in a header may be: a variable, or a placeholder the profile binds
_VARIABLE = re.compile(r"^\$(?:[A-Za-z_]\w*|\{[A-Za-z_]\w*\})$")
_CURL = re.compile(r"(?<![\w-])curl(?![\w-])")


def auth_header(
    path: str, curl_auth: Mapping[str, str], suggestion: str, placeholders: Collection[str] = ()
) -> str | None:
    """The header a route needs: the profile's `[curl_auth]` (longest matching path
    prefix), else the one the gate suggests from the API's document; only if its
    credential is a variable (`$ADMIN_TOKEN`) or a placeholder the profile binds
    (`TOKEN`), never anything that could be a secret."""
    prefixes = sorted((p for p in curl_auth if path.startswith(p)), key=len, reverse=True)
    if prefixes:
        header = curl_auth[prefixes[0]]
    else:
        match = _BEARER.search(suggestion)
        if match is None:
            return None
        header = match.group(1)
    credential = header.rsplit(" ", 1)[-1]
    safe = bool(_VARIABLE.match(credential)) or credential in placeholders
    return header if safe and '"' not in header else None


def fix_curl_auth(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """`-H "Authorization: Bearer $ADMIN_TOKEN"` added right after `curl`, with the
    variable the profile names for the route (or the API document's placeholder)."""
    from runbook_checks.gate.curl_check import curl_lines
    from runbook_checks.steps.curl import parse_curl

    item = models.step_at(finding.line)
    if item is None:
        return None
    command = next((c.text for c in curl_lines([item])), None)
    if command is None:
        return None
    try:
        request = parse_curl(command)
    except Exception:
        return None
    if request.header("Authorization") is not None or request.user is not None:
        return None
    url = request.url if "://" in request.url else f"http://{request.url}"
    path = urlsplit(url).path or "/"
    header = auth_header(path, models.curl_auth, finding.suggestion, models.placeholders)
    if header is None:
        return None
    for number in range(item.step.line, item.end_line + 1):
        old = _line(lines, number)
        match = _CURL.search(old or "")
        if old is None or match is None:
            continue
        new = f'{old[: match.end()]} -H "{header}"{old[match.end() :]}'
        return _edit(finding, number, old, new, f"the route needs {header.split(':')[0]}")
    return None


_METHOD = re.compile(r"(?P<flag>(?<![\w-])(?:-X|--request))(?P<gap>\s*)(?P<method>[A-Za-z]+)\b")
_BODY = re.compile(r"(?<![\w-])(?:-d|--data[\w-]*|-F|--form|-T|--upload-file)(?![\w-])")


def fix_curl_method(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """The method the route answers (`-X POST`), in place of the one written or right
    after `curl`; `-X GET` on a route that answers GET only is dropped when nothing
    sends a body."""
    item = models.step_at(finding.line)
    wanted = finding.suggestion.removeprefix("use -X ").strip()
    drop = finding.suggestion.startswith("drop -X")
    if item is None or (not drop and not re.fullmatch(r"[A-Z]+", wanted)):
        return None
    numbers = range(item.step.line, item.end_line + 1)
    if drop and _BODY.search(" ".join(lines[n - 1] for n in numbers if 0 < n <= len(lines))):
        return None  # a body: which of the two is wrong is the owner's call
    for number in numbers:
        old = _line(lines, number) or ""
        match = _METHOD.search(old)
        if match is not None:
            if drop:
                new = (old[: match.start()] + old[match.end() :].lstrip(" ")).rstrip()
                new += old[len(old.rstrip()) :]
            else:
                new = old[: match.start("method")] + wanted + old[match.end("method") :]
            return _edit(finding, number, old, new, f"the route answers {wanted or 'GET'}")
    for number in numbers:
        old = _line(lines, number) or ""
        found = _CURL.search(old)
        if found is not None and not drop:
            new = f"{old[: found.end()]} -X {wanted}{old[found.end() :]}"
            return _edit(finding, number, old, new, f"the route answers {wanted}")
    return None


# -- SQL -------------------------------------------------------------------------------

_MISSING_COLUMN = re.compile(r"column \"?(?:[\w.]+\.)?\"?(\w+)\"? does not exist")


def fix_column(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """A column the table does not have, replaced by the schema's one closest name (two
    equally close names are the owner's choice)."""
    from runbook_checks.gate.sql_check import relations_in

    match = _MISSING_COLUMN.search(finding.message)
    old = _line(lines, finding.line)
    if match is None or old is None or models.schema is None:
        return None
    missing = match.group(1)
    known = {t: models.schema.columns(t) for t in relations_in(finding.statement)}
    lacking = {t: c for t, c in known.items() if c and missing not in c}
    candidates = sorted({c for cols in lacking.values() for c in cols})
    close = _closest(missing, candidates, cutoff=0.4)
    word = re.compile(rf"(?<![\w\"]){re.escape(missing)}(?![\w\"])")
    if close is None or len(word.findall(old)) != 1:
        return None
    tables = ", ".join(t for t, c in lacking.items() if close in c)
    return _edit(
        finding,
        finding.line,
        old,
        word.sub(close, old),
        f"the schema has no column {missing}; {tables} has {close}",
    )


def _closest(name: str, known: Sequence[str], *, cutoff: float) -> str | None:
    """The one closest name, or None (none close enough, or two equally close)."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=2, cutoff=cutoff)
    if not close:
        return None
    ratios = [difflib.SequenceMatcher(None, name, c).ratio() for c in close]
    return None if len(close) == 2 and ratios[0] == ratios[1] else close[0]


_MISSING_TABLE = re.compile(r"relation \"(?:[\w]+\.)?(\w+)\" does not exist")


def fix_table(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """A table the schema does not have, replaced by its one closest table name (never
    for a relation an extension brings: installing it is the owner's decision)."""
    match = _MISSING_TABLE.search(finding.message)
    old = _line(lines, finding.line)
    if match is None or old is None or models.schema is None:
        return None
    if "extension" in finding.suggestion:
        return None
    missing = match.group(1)
    close = _closest(missing, models.schema.relations(), cutoff=0.6)
    word = re.compile(rf"(?<![\w\"]){re.escape(missing)}(?![\w\"])")
    if close is None or len(word.findall(old)) != 1:
        return None
    return _edit(
        finding, finding.line, old, word.sub(close, old), f"the schema has {close}, no {missing}"
    )


_CREATE = re.compile(
    r"\b(?P<head>CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?"
    r"|CREATE\s+(?:UNLOGGED\s+)?TABLE\s+|CREATE\s+SCHEMA\s+|CREATE\s+SEQUENCE\s+"
    r"|CREATE\s+EXTENSION\s+|CREATE\s+MATERIALIZED\s+VIEW\s+|ADD\s+COLUMN\s+)"
    r"(?!IF\s+NOT\s+EXISTS\b)(?P<name>(?!ON\b)[\w\"]+)",
    re.IGNORECASE,
)


def fix_idempotent_ddl(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """`CREATE INDEX ... name` -> `CREATE INDEX ... IF NOT EXISTS name` (tables, schemas,
    sequences, extensions, materialized views and added columns alike): a step may be
    run again during an incident."""
    item = models.step_at(finding.line)
    first, last = (item.step.line, item.end_line) if item else (finding.line, finding.line)
    for number in range(first, last + 1):
        old = _line(lines, number)
        match = _CREATE.search(old or "")
        if old is None or match is None:
            continue
        keywords = "IF NOT EXISTS" if match.group("head").isupper() else "if not exists"
        at = match.start("name")
        new = f"{old[:at]}{keywords} {old[at:]}"
        return _edit(finding, number, old, new, "made idempotent: it may be run again")
    return None


_EXPIRY = re.compile(
    r"(?P<col>\b\w*expir\w*)(?P<eq>\s*=\s*)(?P=col)(?P<plus>\s*\+\s*)"
    r"(?=INTERVAL\b|'[^']*'\s*::\s*interval\b|make_interval\s*\()",
    re.IGNORECASE,
)


def fix_expiry(finding: Finding, lines: Sequence[str], models: Models) -> Edit | None:
    """An option that did not recover because it extends an expiry from its old value
    (`expires_at = expires_at + INTERVAL '7 days'` leaves a share that lapsed long ago
    in the past): extended from now when it already lapsed,
    `GREATEST(expires_at, NOW()) + INTERVAL ...`."""
    title = finding.statement.split(" :: ", 1)[0].strip()
    section = next((s for s in models.runbook.sections if s.id == finding.section_id), None)
    if section is None:
        return None
    option = next((o for o in section.options if o.title.strip() == title), None)
    steps = option.steps if option is not None else ()
    for step in steps:
        if step.kind is not StepKind.SQL:
            continue
        end = step.line + (step.raw or step.text).rstrip("\n").count("\n")
        for number in range(step.line, end + 1):
            old = _line(lines, number)
            match = _EXPIRY.search(old or "")
            if old is None or match is None:
                continue
            col = match.group("col")
            new = (
                old[: match.start()]
                + f"{col}{match.group('eq')}GREATEST({col}, NOW()){match.group('plus')}"
                + old[match.end() :]
            )
            return _edit(
                finding,
                number,
                old,
                new,
                f"{col} + INTERVAL leaves an expiry that lapsed long ago in the past: "
                "extend from now when it already lapsed",
            )
    return None


Fixer = Callable[[Finding, Sequence[str], Models], Edit | None]


def _mis_encoded(finding: Finding, lines: Sequence[str], _models: Models) -> Edit | None:
    return fix_mis_encoded(finding, lines)


# a drill's finding of the same defect as a gate's has the same fixer (so the plan
# knows an edit made for one answers the other)
FIXERS: dict[str, Fixer] = {
    "text-mis-encoded": _mis_encoded,
    "status-update-unreadable": _mis_encoded,
    "aws-invalid-operation": fix_aws,
    "aws-invalid-parameters": fix_aws,
    "curl-missing-auth": fix_curl_auth,
    "curl-wrong-method": fix_curl_method,
    "sql-undefined-column": fix_column,
    "sql-undefined-table": fix_table,
    "sql-already-exists": fix_idempotent_ddl,
    "mitigation-did-not-recover": fix_expiry,
}
