"""Placeholders in runbook commands, and the values that stand in for them.

A runbook writes `Bearer TOKEN`, `pg_terminate_backend(PID)`, `psql $DATABASE_URL`,
`https://api.example.com/...`, `/var/log/app/error.log`, `systemctl restart example-api`.
The runbook's profile (runbook_checks/profile.py) says what each name means; `Bindings`
say what it is on the stack under test (`Bindings.from_stack` builds them from the
profile); `bind` substitutes them in a command's text and reports which placeholders it
bound and which it saw without a value. A token that looks like a placeholder but has no
binding is reported, never guessed.

`Bindings.secret_values` are the bound values never to show (runbook_checks.redact
takes them out of evidence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from runbook_checks.profile import EMPTY, TO_BE_MAPPED, Profile, address_host
from runbook_checks.redact import MIN_SECRET_LEN, SECRET_NAME, url_passwords
from runbook_checks.steps.reach import NOWHERE, Reach

if TYPE_CHECKING:
    import httpx

    from runbook_checks.runbook.platform import Platform
    from runbook_checks.stack.base import Stack

# Sample files the runbook uploads or reads, created in the work folder.
CURL_FORMAT = (
    "     time_namelookup:  %{time_namelookup}s\\n\n"
    "        time_connect:  %{time_connect}s\\n\n"
    "     time_appconnect:  %{time_appconnect}s\\n\n"
    "    time_pretransfer:  %{time_pretransfer}s\\n\n"
    "       time_redirect:  %{time_redirect}s\\n\n"
    "  time_starttransfer:  %{time_starttransfer}s\\n\n"
    "                     ----------\\n\n"
    "          time_total:  %{time_total}s\\n\n"
)
MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
SAMPLE_FILES: Mapping[str, bytes] = MappingProxyType(
    {
        "test.txt": b"runbook-checks upload probe\n",
        "test.pdf": MINIMAL_PDF,
        "curl-format.txt": CURL_FORMAT.encode(),
    }
)

_NOT_SECRET_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})  # dummy "testing"


def _frozen(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Bindings:
    """What the runbook's placeholders, hosts, paths and names mean on the stack.

    - `values`: placeholder -> value ("TOKEN" -> a user's bearer token, "abc123xyz" -> a
      real share token, "PRIMARY" -> a target group ARN); matched as whole words,
      inside quotes too, case-sensitively.
    - `env`: `$NAME` -> value (DATABASE_URL, DB_HOST, DB_PORT, REDIS_URL ...).
    - `hosts`: host (or host:port) in a URL -> base URL on the stack ("api.example.com"
      -> "http://127.0.0.1:PORT"). Hosts not listed are refused.
    - `paths`: path prefix -> folder on the stack ("/var/log/api" -> the API's log folder).
    - `services`: systemd service name -> stack component ("example-api" -> "api").
    - `processes`: process name in `ps | grep NAME` -> a pattern that matches the
      component's process ("node" -> the twin's module name).
    - `files`: file name as written -> a real file (test.txt, test.pdf, curl-format.txt).
    - `edges`: host outside the stack -> an in-process httpx transport that answers for
      it (a status page stand-in, e.g. a respx router's `httpx.MockTransport`). curl
      lines to such a host are sent to that transport and never leave the process (the
      request's client closes it afterwards: give a stateless one).
    - `platform`: what platform commands (kubectl, heroku, npm run, git checkout) act on
      (runbook_checks.steps.platform); None: such steps are left to a person.
    - `reach`: the hosts beyond loopback the commands may reach (steps/reach.py: what
      the profile allows); every other is refused.
    - `placeholders`: names that are placeholders when they have no value.
    - `secrets`: extra values to redact from evidence.
    """

    values: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    hosts: Mapping[str, str] = field(default_factory=dict)
    paths: Mapping[str, Path] = field(default_factory=dict)
    services: Mapping[str, str] = field(default_factory=dict)
    processes: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)
    edges: Mapping[str, httpx.BaseTransport] = field(default_factory=dict)
    platform: Platform | None = None
    reach: Reach = NOWHERE
    placeholders: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()
    work_dir: Path = Path(".")

    def __post_init__(self) -> None:
        for name in ("values", "env", "hosts", "paths", "services", "processes", "files", "edges"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_stack(
        cls,
        stack: Stack,
        work_dir: Path,
        profile: Profile = EMPTY,
        **overrides: Mapping[str, object] | Iterable[str] | Path,
    ) -> Bindings:
        """What `profile`'s names are on `stack`, with `overrides` merged over them.

        Hosts mapped to "api" reach the stack's front door, "api-instance" one API
        instance; paths reach a component's logs or data folder; services and processes
        name components; "itself" placeholders bind to their own name. Names still "to be
        mapped" stay unbound (a step using one stops, saying so). Mapping fields
        (`values`, `hosts`, ...) are merged key by key (a value of "" does not remove a
        default: build a `Bindings` yourself for that); `placeholders` and `secrets` are
        added to. The sample files are written into `work_dir`.
        """
        endpoints = stack.endpoints
        work_dir.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        for name, content in SAMPLE_FILES.items():
            path = work_dir / name
            if not path.exists():
                path.write_bytes(content)
            files[name] = path
        urls = {
            "api": endpoints.api_url.rstrip("/"),
            "api-instance": (endpoints.api_instance_url or endpoints.api_url).rstrip("/"),
        }
        folders = {f"{c}:data": Path(d) for c, d in endpoints.data_dirs.items()}
        folders["api:logs"] = Path(endpoints.log_dir)
        base = cls(
            values={name: name for name in profile.identity_placeholders},
            env=endpoints.as_env(),
            hosts={
                h: urls.get(t, t) for h, t in profile.hosts.items() if t in urls or address_host(t)
            },
            paths={p: folders[t] for p, t in profile.paths.items() if t in folders},
            services={n: t for n, t in profile.services.items() if t != TO_BE_MAPPED},
            processes={
                n: api_process_pattern(stack) if t in ("api", "api-instance") else t
                for n, t in profile.processes.items()
                if t != TO_BE_MAPPED
            },
            files=files,
            placeholders=frozenset(profile.known_placeholders),
            secrets=frozenset({endpoints.admin_token}),
            work_dir=work_dir,
            reach=Reach.of(profile),
        )
        return base.merged(**overrides)

    def merged(self, **overrides: Mapping[str, object] | Iterable[str] | Path) -> Bindings:
        """A copy with mapping fields merged key by key and sets extended."""
        changes: dict[str, object] = {}
        for name, value in overrides.items():
            if name in ("values", "env", "hosts", "services", "processes"):
                assert isinstance(value, Mapping), f"{name} must be a mapping"
                changes[name] = {**getattr(self, name), **{k: str(v) for k, v in value.items()}}
            elif name in ("paths", "files"):
                assert isinstance(value, Mapping), f"{name} must be a mapping"
                changes[name] = {
                    **getattr(self, name),
                    **{k: Path(str(v)) for k, v in value.items()},
                }
            elif name == "edges":
                assert isinstance(value, Mapping), f"{name} must be a mapping"
                changes[name] = {**self.edges, **value}
            elif name in ("placeholders", "secrets"):
                assert not isinstance(value, Mapping | Path), f"{name} must be strings"
                changes[name] = frozenset(getattr(self, name)) | frozenset(value)
            elif name == "work_dir":
                changes[name] = Path(str(value))
            elif name in ("platform", "reach"):
                changes[name] = value
            else:
                raise TypeError(f"Bindings has no field {name!r}")
        return replace(self, **changes)  # type: ignore[arg-type]

    def with_values(self, values: Mapping[str, str]) -> Bindings:
        """A copy with these placeholder values added (keys need not be identifiers)."""
        return self.merged(values=values)

    # -- secrets ---------------------------------------------------------------------
    def secret_values(self) -> frozenset[str]:
        """Values never to show in evidence: tokens, passwords, explicit secrets."""
        found = set(self.secrets)
        for name, value in self.values.items():
            if SECRET_NAME.search(name):
                found.add(value)
        for name, value in self.env.items():
            if SECRET_NAME.search(name) and name not in _NOT_SECRET_ENV:
                found.add(value)
            found.update(url_passwords(value))
        return frozenset(v for v in found if len(v) >= MIN_SECRET_LEN)


def api_process_pattern(stack: Stack) -> str:
    """A `grep` pattern that matches the API's process in `ps aux` output."""
    tag = stack.endpoints.api_process
    if tag:  # unique to this stack: another stack's API on the same host never matches
        return str(tag)
    try:
        pid = stack.component("api").pid
    except Exception:  # a backend without a local API process
        pid = None
    if pid is not None:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            argv = []
        label = stack.kit.twin.label  # the twin's module runs as `python -m LABEL`
        for arg in argv:
            text = arg.decode(errors="replace")
            if label in text:
                return label
            if "uvicorn" in text:
                return "uvicorn"
    return stack.kit.twin.label


# -- binding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Substitution:
    """One replaced span: `source[start:end]` became `text[new_start:new_end]`."""

    name: str
    start: int
    end: int
    new_start: int
    new_end: int


@dataclass(frozen=True)
class Bound:
    """A command's text after binding."""

    text: str
    source: str
    bound: tuple[str, ...] = ()  # placeholder names substituted, first-seen order
    unbound: tuple[str, ...] = ()  # placeholder-looking tokens with no value
    substitutions: tuple[Substitution, ...] = ()

    def source_offset(self, offset: int) -> int:
        """The offset in `source` of the character at `offset` in `text`.

        Inside a substituted value, the start of the placeholder it replaced.
        """
        shift = 0
        for sub in self.substitutions:
            if offset < sub.new_start:
                break
            if offset < sub.new_end:
                return sub.start
            shift = sub.end - sub.new_end
        return offset + shift


# HTTP methods, redis commands and other capitalised words that are not placeholders.
SHELL_WORDS = frozenset(
    {
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT",
        "INFO", "PING", "SET", "DEL", "KEYS", "SCAN", "DBSIZE", "CONFIG", "SLOWLOG",
        "CLIENT", "MEMORY", "LATENCY", "MONITOR", "TTL", "EXISTS", "TYPE", "FLUSHDB",
        "FLUSHALL", "HGETALL", "LLEN", "LIST", "RESET", "STATS", "INCR", "EXPIRE",
        "HTTP", "HTTPS", "JSON", "UTC", "OK", "ERROR", "WARN", "WARNING", "FATAL",
    }
)  # fmt: skip
# Type and function names that pglast does not list as keywords.
SQL_WORDS = frozenset(
    {"UUID", "JSONB", "JSON", "TEXT", "BOOL", "INT", "INT4", "INT8", "TIMESTAMPTZ",
     "BIGSERIAL", "SERIAL", "BYTEA", "CITEXT", "TRUE", "FALSE"}
)  # fmt: skip

_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_CAPS = re.compile(r"(?<![\w$%{.\-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?![\w\-.(=])")
# the marks of an example value that the reader is to replace ("i-xxx", "abc123xyz")
EXAMPLE_MARKS = ("xxx", "xyz", "abc123")
_XXX = re.compile(
    r"(?<![\w.\-])[\w\-]*(?:" + "|".join(EXAMPLE_MARKS) + r")[\w\-]*(?![\w\-])",
    re.IGNORECASE,
)
_ANGLE = re.compile(r"<([A-Za-z][\w\-]*)>")


def _sql_keywords() -> frozenset[str]:
    try:
        import pglast.keywords as kw
    except ImportError:  # pragma: no cover - pglast is a dependency
        return frozenset()
    names: set[str] = set()
    for group in (
        kw.RESERVED_KEYWORDS,
        kw.UNRESERVED_KEYWORDS,
        kw.COL_NAME_KEYWORDS,
        kw.TYPE_FUNC_NAME_KEYWORDS,
    ):
        names.update(str(w).upper() for w in group)
    return frozenset(names)


_SQL_KEYWORDS: frozenset[str] | None = None


def sql_keywords() -> frozenset[str]:
    global _SQL_KEYWORDS
    if _SQL_KEYWORDS is None:
        _SQL_KEYWORDS = _sql_keywords() | SQL_WORDS
    return _SQL_KEYWORDS


@dataclass(frozen=True)
class _Region:
    start: int
    end: int
    kind: str  # shell: plain, single, double; sql: code, string, ident, comment, dollar


def shell_regions(text: str) -> list[_Region]:
    """Quoting regions of a shell command (quotes included in their region)."""
    regions: list[_Region] = []
    i, n, start, kind = 0, len(text), 0, "plain"
    while i < n:
        char = text[i]
        if kind == "plain":
            if char == "\\":
                i += 2
                continue
            if char in "'\"":
                if i > start:
                    regions.append(_Region(start, i, "plain"))
                start, kind = i, "single" if char == "'" else "double"
        elif kind == "single":
            if char == "'":
                regions.append(_Region(start, i + 1, kind))
                start, kind = i + 1, "plain"
        else:
            if char == "\\":
                i += 2
                continue
            if char == '"':
                regions.append(_Region(start, i + 1, kind))
                start, kind = i + 1, "plain"
        i += 1
    if start < n:
        regions.append(_Region(start, n, kind))
    return regions


def sql_regions(text: str) -> list[_Region]:
    """Lexical regions of SQL: code, 'strings', "identifiers", comments, $$bodies$$."""
    regions: list[_Region] = []
    i, n, start = 0, len(text), 0

    def close(end: int, kind: str) -> None:
        nonlocal start
        regions.append(_Region(start, end, kind))
        start = end

    while i < n:
        if text.startswith("--", i):
            if i > start:
                close(i, "code")
            end = text.find("\n", i)
            i = n if end < 0 else end
            close(i, "comment")
            continue
        if text.startswith("/*", i):
            if i > start:
                close(i, "code")
            depth, j = 0, i
            while j < n:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                    if depth == 0:
                        break
                else:
                    j += 1
            i = min(j, n)
            close(i, "comment")
            continue
        char = text[i]
        if char in "'\"":
            if i > start:
                close(i, "code")
            backslash = char == "'" and i > 0 and text[i - 1] in "eE"
            j = i + 1
            while j < n:
                if backslash and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == char:
                    if j + 1 < n and text[j + 1] == char:
                        j += 2
                        continue
                    break
                j += 1
            i = min(j + 1, n)
            close(i, "string" if char == "'" else "ident")
            continue
        if char == "$" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            tag = re.match(r"\$(?:[A-Za-z_]\w*)?\$", text[i:])
            if tag:
                if i > start:
                    close(i, "code")
                end = text.find(tag.group(0), i + len(tag.group(0)))
                i = n if end < 0 else end + len(tag.group(0))
                close(i, "dollar")
                continue
        i += 1
    if start < n:
        regions.append(_Region(start, n, "code"))
    return regions


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    name: str
    value: str | None  # None: unbound


def bind(text: str, bindings: Bindings, *, sql: bool = False, caps: bool = True) -> Bound:
    """Substitute placeholders and `$VARS` in `text`; report the unbound ones.

    Shell text (`sql=False`): `$NAME`/`${NAME}` from `bindings.env`, except inside single
    quotes; an unknown `$NAME` is unbound. SQL text (`sql=True`): `$NAME` only when
    `bindings.env` has it (as the shell would have expanded it in `psql -c "..."`),
    nothing in comments; keys that are SQL keywords (PRIMARY) are not substituted
    outside string literals.

    Placeholder values (`bindings.values`) replace whole words (a word may contain '-'),
    inside quotes too. Unbound: known placeholders without a value, other ALL-CAPS words
    that are not keywords of the language (`Bearer TOKEN`, `(PID)`, `'FILE_ID'`), words
    containing "xxx", and `<name>`. `caps=False` turns the ALL-CAPS rule off, for tools
    whose words are capitalised commands (`redis-cli DEBUG SLEEP 0`).
    """
    regions = sql_regions(text) if sql else shell_regions(text)
    keywords = sql_keywords() if sql else SHELL_WORDS
    matches: list[_Match] = []

    def region_at(offset: int) -> _Region:
        for region in regions:
            if region.start <= offset < region.end:
                return region
        return _Region(offset, offset, "code" if sql else "plain")

    # $VARS
    for m in _ENV_REF.finditer(text):
        name = m.group(1) or m.group(2)
        kind = region_at(m.start()).kind
        if sql:
            if kind == "comment" or name not in bindings.env:
                continue
        elif kind == "single":
            continue
        matches.append(_Match(m.start(), m.end(), "$" + name, bindings.env.get(name)))

    # placeholder values and known placeholders
    names = set(bindings.values) | set(bindings.placeholders)
    if names:
        alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w$\-])(?:{alternation})(?![\w\-])")
        for m in pattern.finditer(text):
            kind = region_at(m.start()).kind
            if sql and kind in ("comment", "ident"):
                continue
            if sql and kind == "code" and m.group(0).upper() in keywords:
                continue
            matches.append(_Match(m.start(), m.end(), m.group(0), bindings.values.get(m.group(0))))

    # placeholder-looking words
    for m in _CAPS.finditer(text) if caps else ():
        word = m.group(0)
        if len(word) < 2 or word in bindings.values or word in keywords:
            continue
        kind = region_at(m.start()).kind
        if sql:
            if kind in ("comment", "ident", "dollar"):
                continue
            if kind == "string" and "_" not in word:
                continue
        matches.append(_Match(m.start(), m.end(), word, None))
    for m in _XXX.finditer(text):
        if m.group(0) in bindings.values:
            continue
        if sql and region_at(m.start()).kind in ("comment", "ident"):
            continue
        matches.append(_Match(m.start(), m.end(), m.group(0), None))
    if not sql:
        for m in _ANGLE.finditer(text):
            matches.append(_Match(m.start(), m.end(), m.group(0), bindings.values.get(m.group(0))))

    known = _known_spans(text, bindings)
    return _apply(
        text,
        [m for m in matches if m.value is not None or not _overlaps(m, known)],
    )


def _known_spans(text: str, bindings: Bindings) -> list[tuple[int, int]]:
    """Where `text` holds, written out, a value the bindings supply (a token, a password):
    a command the harness writes (the corrected form of a step) carries the stack's own
    values, and a random token that happens to hold "xyz" or "ABC123" is a value, not an
    example to replace."""
    values = {v for v in bindings.values.values() if len(v) >= MIN_SECRET_LEN}
    spans = []
    for value in values | bindings.secret_values():
        at = text.find(value)
        while at != -1:
            spans.append((at, at + len(value)))
            at = text.find(value, at + 1)
    return spans


def _overlaps(match: _Match, spans: list[tuple[int, int]]) -> bool:
    return any(start < match.end and match.start < end for start, end in spans)


def _apply(text: str, matches: list[_Match]) -> Bound:
    # earliest first; at the same start the longest; a bound match beats an unbound one
    matches.sort(key=lambda m: (m.start, -(m.end - m.start), m.value is None))
    out: list[str] = []
    subs: list[Substitution] = []
    bound: list[str] = []
    unbound: list[str] = []
    position = 0
    length = 0
    for m in matches:
        if m.start < position:
            continue
        chunk = text[position : m.start]
        out.append(chunk)
        length += len(chunk)
        if m.value is None:
            if m.name not in unbound:
                unbound.append(m.name)
            out.append(text[m.start : m.end])
            length += m.end - m.start
        else:
            if m.name not in bound:
                bound.append(m.name)
            out.append(m.value)
            subs.append(Substitution(m.name, m.start, m.end, length, length + len(m.value)))
            length += len(m.value)
        position = m.end
    out.append(text[position:])
    return Bound("".join(out), text, tuple(bound), tuple(unbound), tuple(subs))
