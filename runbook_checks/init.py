"""`runbook-checks init RUNBOOK`: a starting profile for a runbook, and what is not drilled.

It reads the runbook's commands and lists every host, placeholder, service, process and
path they use, each with what it maps to where that is plain (a `postgresql` unit is the
database, `/var/lib/redis` is Redis's data) or "to be mapped" where only the runbook's
owner knows. The profile is written beside the runbook (never over an existing one
unless --force), and the coverage table says which sections and options no scenario
drills yet. No test stubs are generated: a drill that says nothing is worse than none.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from runbook_checks.errors import UsageError
from runbook_checks.gate import coverage
from runbook_checks.gate.locate import Located, runbook_steps
from runbook_checks.profile import TO_BE_MAPPED, Profile, candidates, find_profile, load_profile
from runbook_checks.runbook.model import Runbook, StepKind
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.steps.binding import Bindings, bind

# What a name says plainly (anything else is the owner's to map).
_KNOWN_SERVICES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "redis": "redis",
    "redis-server": "redis",
}
_KNOWN_PATHS = {
    "/var/lib/postgresql": "postgres:data",
    "/var/lib/redis": "redis:data",
}
_URL = re.compile(r"https?://([^/\s'\"$`]+)")
_FILE_TOOLS = frozenset({"tail", "head", "cat", "less", "grep", "zgrep", "ls", "du", "df", "find"})
_SERVICE_VERBS = frozenset({"restart", "start", "stop", "status", "reload"})


@dataclass
class Inventory:
    """The names a runbook uses, each with the first line it appears on."""

    hosts: dict[str, int] = field(default_factory=dict)
    placeholders: dict[str, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    status_pages: dict[str, int] = field(default_factory=dict)  # provider -> line
    pages: dict[str, str] = field(default_factory=dict)  # provider -> its status page host

    def note(self, table: dict[str, int], name: str, line: int) -> None:
        if name and name not in table:
            table[name] = line


def inventory(runbook: Runbook) -> Inventory:
    """Every host, placeholder, service, process and path the runbook's steps use."""
    found = Inventory()
    for item in runbook_steps(runbook):
        _scan(item, found)
    return found


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def _scan(item: Located, found: Inventory) -> None:
    step = item.step
    if step.kind is StepKind.NOTE:
        return
    line = step.line
    texts = (step.text, *step.pipeline)
    for text in texts:
        for match in _URL.finditer(text):
            host = urlsplit(f"http://{match.group(1)}").netloc
            if host.startswith("status."):  # a provider's page, not the service's host
                provider = host.split(".")[1]
                found.note(found.status_pages, provider, line)
                found.pages.setdefault(provider, host)
                continue
            found.note(found.hosts, host, line)
    if step.host:
        found.note(found.hosts, step.host, line)
    words = _words(step.text)
    tool = words[0] if words else ""
    if tool == "sudo" and len(words) > 1:
        words, tool = words[1:], words[1]
    if tool == "ssh" and len(words) > 1:
        found.note(found.hosts, words[-1].rpartition("@")[2], line)
    if tool == "systemctl" and len(words) > 2 and words[1] in _SERVICE_VERBS:
        found.note(found.services, words[2], line)
    if tool == "service" and len(words) > 2:
        found.note(found.services, words[1], line)
    if tool in ("ps", "pgrep"):
        stages = [_words(p) for p in step.pipeline] if tool == "ps" else [words]
        for stage in stages:
            if stage and stage[0] in ("grep", "pgrep"):
                names = [w for w in stage[1:] if not w.startswith("-")]
                if names:
                    found.note(found.processes, names[0], line)
    for text in texts:
        parts = _words(text)
        if parts and parts[0] in _FILE_TOOLS:
            for word in parts[1:]:
                if word.startswith("/"):
                    found.note(found.paths, _folder(word), line)
    if not step.executable:  # prose: its capitals are words, not placeholders
        return
    sql = step.kind is StepKind.SQL
    for name in bind(step.text, Bindings(), sql=sql).unbound:
        if not name.startswith(("$", "<")):
            found.note(found.placeholders, name, line)


def _folder(path: str) -> str:
    """A log or data path's folder (what a profile maps): /var/log/api/error.log ->
    /var/log/api; a folder stays itself."""
    parent, _, last = path.rstrip("/").rpartition("/")
    return parent or path if "." in last else path.rstrip("/")


def render(runbook: Runbook, found: Inventory, existing: Profile) -> str:
    """The profile's TOML: every name, with the existing profile's mapping, a plain one,
    or "to be mapped", and the line it is first used on."""

    def target(table: str, name: str, plain: dict[str, str] | None = None) -> str:
        mapped = getattr(existing, table).get(name)
        return mapped or (plain or {}).get(name, TO_BE_MAPPED)

    def block(
        title: str,
        table: str,
        names: dict[str, int],
        what: str,
        plain: dict[str, str] | None = None,
    ) -> list[str]:
        out = [f"[{table}]  # {what}"]
        if not names:
            out.append(f"# (the runbook uses no {title})")
        for name, line in names.items():
            out.append(f"{_key(name)} = {_string(target(table, name, plain))}  # line {line}")
        return [*out, ""]

    scenarios = existing.scenarios
    lines = [
        f"# The profile of {runbook.path.name}: what the names it writes mean on the stack",
        "# that stands in for its service (written by `runbook-checks init`; map every",
        f'# "{TO_BE_MAPPED}", then `runbook-checks gate` and `drill` use it).',
        "",
        "[profile]",
        f"name = {_string(existing.name or runbook.path.stem)}",
        (
            f"scenarios = {_string(_relative(scenarios, runbook.path.parent))}"
            if scenarios
            else '# scenarios = "../scenarios"  # the folder of the drills of this runbook'
        ),
        (
            f"load = {_string(_relative(existing.load, runbook.path.parent))}"
            if existing.load
            else '# load = "../loadtests"  # its locustfile (or folder): runbook-checks load'
        ),
        (
            f"environment = {_string(_relative(existing.environment, runbook.path.parent))}"
            if existing.environment
            else '# environment = "staging.environment.toml"  # a staging environment the '
            "commands may reach (the external backend's config)"
        ),
        (
            f"kit = {_string(existing.kit)}"
            if existing.kit
            else '# kit = "my_service_kit"  # the module whose KIT describes the service'
        ),
        "",
        *block(
            "hosts", "hosts", found.hosts,
            "a host the commands address -> api, api-instance, postgres, redis, object_store, aws",
        ),
        *block(
            "placeholders", "placeholders", found.placeholders,
            "a word that stands for a value -> scenario (a drill binds it) or itself",
        ),
        *block(
            "services", "services", found.services, "systemctl units -> components",
            _KNOWN_SERVICES,
        ),
        *block("processes", "processes", found.processes, "`ps | grep NAME` -> components"),
        *block(
            "paths", "paths", found.paths,
            "a folder the commands read -> COMPONENT:logs or COMPONENT:data", _KNOWN_PATHS,
        ),
        *block(
            "status pages", "status_pages", found.status_pages,
            "a provider's status page (answered in-process, never fetched) -> its host",
            found.pages,
        ),
    ]  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def coverage_rows(runbook: Runbook, scenarios: Path | None) -> list[tuple[str, str, str]]:
    """(section, option or "investigation", "drilled by N" or "no drill") for every
    scenario section and option."""
    scan = coverage.scan_scenarios(scenarios) if scenarios else coverage.Scan()
    rows = []
    for section in runbook.scenarios:
        marks = [m for m in scan.markers if coverage.section_for(runbook, m.section) is section]
        for option in section.options or (None,):
            label = option.title if option else "(the section)"
            if option is None:
                n = len(marks)
            else:
                n = sum(
                    1
                    for m in marks
                    if m.option is None or coverage.option_for(section, m.option) is option
                )
            rows.append((section.title, label, f"drilled by {n}" if n else "no drill"))
    return rows


def run_init(runbook_path: Path, *, out: Path | None, force: bool) -> tuple[Path, str]:
    runbook = parse_runbook(runbook_path)
    existing = find_profile(runbook_path)
    target = out or candidates(runbook_path)[0]
    if target.exists() and not force:
        raise UsageError(
            f"{target} exists already",
            hint="pass --force to write it again (names it maps keep their mapping), or "
            "--out FILE for another file",
        )
    found = inventory(runbook)
    text = render(runbook, found, existing)
    target.write_text(text, encoding="utf-8")
    rows = coverage_rows(runbook, existing.scenarios)
    width = max((len(s) for s, _, _ in rows), default=7)
    table = "\n".join(f"  {s:{width}}  {o:40}  {c}" for s, o, c in rows)
    unmapped = len(load_profile(target).unmapped())  # what was written reads back
    summary = (
        f"wrote {target}: {len(found.hosts)} host(s), {len(found.placeholders)} "
        f"placeholder(s), {len(found.services)} service(s), {len(found.processes)} "
        f"process(es), {len(found.paths)} path(s); {unmapped} still to be mapped\n"
        + ("coverage (sections and options, and the drills that cover them):\n" + table
           if rows else "the runbook has no scenario sections (no SEV-N headings)")
    )  # fmt: skip
    return target, summary


def add_init_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser(
        "init",
        help="write a starting profile for a runbook and print what no drill covers",
    )
    init.add_argument("runbook", help="the runbook (Markdown)")
    init.add_argument("--out", help="where to write the profile (default: beside the runbook)")
    init.add_argument("--force", action="store_true", help="write over an existing profile")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    _, summary = run_init(
        Path(args.runbook), out=Path(args.out) if args.out else None, force=args.force
    )
    print(summary)
    return 0
