"""A runbook's profile: what the names a runbook writes mean for the service under test.

A runbook addresses hosts (`https://api.example.com/health`, `ssh production-api-01`),
writes placeholders (`Bearer TOKEN`, `pg_terminate_backend(PID)`), names services and
processes (`systemctl restart example-api`, `ps aux | grep node`), paths (`tail
/var/log/api/error.log`), status pages and admin routes. None of that is the engine's
business: a profile beside the runbook maps each name to a component of the stack (or
says it is still "to be mapped"), and names the scenarios that drill the runbook and
the locustfile that loads its service (both beside the runbook, never inside the engine:
an installed copy finds them through the profile).

Where it is read from, first found wins:

1. `--profile PATH` (the `profile` option);
2. `<runbook stem>.runbook-checks.toml` beside the runbook;
3. `runbook-checks.toml` beside the runbook;
4. `[tool.runbook-checks]` in a `pyproject.toml` beside the runbook.

Without one the runbook gets an empty profile: nothing is mapped, every host is refused,
and `runbook-checks init RUNBOOK` writes a starting one.

The hosts the runbook's commands may reach (steps/reach.py): the local stack's loopback,
and, for a staging environment, what the profile allows: the addresses of the environment
it names (`[profile] environment = "FILE"`, the external backend's config format) and any
`[hosts]` value that is an address rather than a component (`"db.example.com" =
"10.1.2.3:5432"`, `"api.example.com" = "https://files.staging.internal"`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn
from urllib.parse import urlsplit

from runbook_checks.errors import UsageError
from runbook_checks.service import ServiceKit, load_kit


def host_of(address: str) -> str:
    """The host of a URL ("postgresql://u:p@db:5432/x" -> "db") or of "host:port"."""
    if "://" not in address:
        address = "//" + address
    try:
        return (urlsplit(address).hostname or "").lower()
    except ValueError:
        return ""


TO_BE_MAPPED = "to be mapped"

# What a host, service, process or path may be mapped to on the stack under test.
COMPONENT_TARGETS = ("api", "api-instance", "postgres", "redis", "object_store", "aws")
# A placeholder's binding: "itself" (an example name that is valid as written: the drill
# creates the resource under it), "scenario" (the drill binds it: a token, an id, a PID
# read from the investigation's output), or TO_BE_MAPPED.
PLACEHOLDER_BINDINGS = ("itself", "scenario", TO_BE_MAPPED)
# A path prefix maps to a component's folder: "api:logs", "postgres:data", "redis:data".
PATH_TARGET = re.compile(r"^(?P<component>[a-z_-]+):(?P<folder>logs|data)$")

LOCUSTFILE = "locustfile.py"  # what `[profile] load = FOLDER` means

SECTIONS = (
    "profile",
    "hosts",
    "placeholders",
    "services",
    "processes",
    "paths",
    "status_pages",
    "curl_auth",
)


def address_host(target: str) -> str:
    """The host of a `[hosts]` value that is an address (a URL, host:port, an IP or a
    dotted name), "" for a component name or "to be mapped"."""
    if target == TO_BE_MAPPED or target in COMPONENT_TARGETS:
        return ""
    if "://" not in target and "." not in target and ":" not in target:
        return ""
    return host_of(target)


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Profile:
    """The names of one runbook, mapped onto the stack that stands in for its service."""

    source: Path | None = None  # the file it was read from (None: empty)
    name: str = ""
    scenarios: Path | None = None  # the folder of scenario modules that drill the runbook
    load: Path | None = None  # the service's locustfile (`runbook-checks load`)
    stack: str = ""  # the stack that stands in for the service: "NAME-twin", or a file
    kit: str = ""  # the module whose KIT describes the service (runbook_checks/service.py)
    environment: Path | None = None  # an external environment (staging) the runbook may reach
    hosts: Mapping[str, str] = field(default_factory=dict)  # host -> component or address
    placeholders: Mapping[str, str] = field(default_factory=dict)  # name -> binding
    services: Mapping[str, str] = field(default_factory=dict)  # systemd unit -> component
    processes: Mapping[str, str] = field(default_factory=dict)  # `ps | grep NAME` -> component
    paths: Mapping[str, str] = field(default_factory=dict)  # path prefix -> "api:logs" ...
    status_pages: Mapping[str, str] = field(default_factory=dict)  # provider -> host
    curl_auth: Mapping[str, str] = field(default_factory=dict)  # path prefix -> header
    prefix: str = ""  # where its tables are in the file ("tool.runbook-checks.": pyproject)

    def __post_init__(self) -> None:
        for name in (
            "hosts",
            "placeholders",
            "services",
            "processes",
            "paths",
            "status_pages",
            "curl_auth",
        ):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def empty(self) -> bool:
        return self.source is None

    def address_hosts(self) -> dict[str, str]:
        """Hosts `[hosts]` maps to an address (not a component): host -> the field."""
        found: dict[str, str] = {}
        for name, target in self.hosts.items():
            host = address_host(target)
            if host:
                found.setdefault(host, f"hosts.{name}")
        return found

    def service_kit(self) -> ServiceKit:
        """The service kit the profile names (`[profile] kit`), imported; a UsageError
        names the profile file and field when there is none or it is not one."""
        if self.source is None:
            raise UsageError(
                "the runbook has no profile, so nothing says which service a stack runs",
                hint="runbook-checks init RUNBOOK writes one; name the kit under [profile]",
            )
        if not self.kit:
            raise UsageError(
                f"{self.source}: {self.prefix}profile.kit: not set, so nothing says which "
                "service a stack runs",
                hint='name the module that describes the service: kit = "my_service_kit"',
            )
        return load_kit(self.kit, where=f"{self.source}: {self.prefix}profile.kit")

    def hosts_to(self, *targets: str) -> tuple[str, ...]:
        """The hosts mapped to any of `targets` ("api", "api-instance" ...), in order."""
        return tuple(h for h, t in self.hosts.items() if t in targets)

    @property
    def known_placeholders(self) -> tuple[str, ...]:
        return tuple(self.placeholders)

    @property
    def identity_placeholders(self) -> tuple[str, ...]:
        """Example names valid as written (bound to themselves)."""
        return tuple(n for n, b in self.placeholders.items() if b == "itself")

    def unmapped(self) -> list[str]:
        """Every name still "to be mapped", as `section.name`."""
        return [
            f"{section}.{name}"
            for section in SECTIONS[1:]
            for name, target in getattr(self, section).items()
            if target == TO_BE_MAPPED
        ]


EMPTY = Profile()


def candidates(runbook: Path) -> list[Path]:
    """Where a runbook's profile may be, in the order they are tried."""
    folder = runbook.parent
    return [
        folder / f"{runbook.stem}.runbook-checks.toml",
        folder / "runbook-checks.toml",
        folder / "pyproject.toml",
    ]


def find_profile(runbook: Path, explicit: Path | None = None) -> Profile:
    """The profile of `runbook`: `explicit` if given, else the first file found beside
    it (a pyproject.toml counts only with a [tool.runbook-checks] table), else EMPTY."""
    if explicit is not None:
        return load_profile(explicit)
    for path in candidates(runbook):
        if not path.is_file():
            continue
        if path.name == "pyproject.toml":
            table = _tool_table(_read(path))
            if table is not None:
                return _parse(table, path, prefix="tool.runbook-checks.")
            continue
        return load_profile(path)
    return EMPTY


def load_profile(path: Path) -> Profile:
    """Read and check a profile file; a UsageError names the file, the field and what to
    do about anything wrong."""
    if not path.is_file():
        raise UsageError(f"{path}: no such profile", hint="runbook-checks init RUNBOOK writes one")
    data = _read(path)
    if path.name == "pyproject.toml":
        table = _tool_table(data)
        if table is None:
            raise UsageError(f"{path}: no [tool.runbook-checks] table")
        return _parse(table, path, prefix="tool.runbook-checks.")
    return _parse(data, path, prefix="")


def _tool_table(data: Mapping[str, object]) -> dict[str, object] | None:
    tool = data.get("tool")
    table = tool.get("runbook-checks") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{path}: not valid TOML: {exc}", hint="fix the line it names (TOML syntax)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the profile: {exc}") from None


def _table(data: Mapping[str, object], name: str, where: str) -> dict[str, str]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}{name}: expected a table of names, found {type(value).__name__}")
    out: dict[str, str] = {}
    for key, target in value.items():
        if not isinstance(target, str):
            raise UsageError(
                f"{where}{name}.{key}: expected a string, found {type(target).__name__}",
                hint=f'write {key} = "..." (or "{TO_BE_MAPPED}")',
            )
        out[str(key)] = target
    return out


def _relative(
    head: Mapping[str, object], key: str, path: Path, where: str, kind: str, what: str
) -> Path | None:
    """`[profile] KEY`: a folder or file named relative to the profile, which must exist."""
    value = head.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{where}profile.{key}: expected a {kind} (a string)")
    if not value:
        return None
    found = (path.parent / value).resolve()
    if not (found.is_dir() if kind == "folder" else found.is_file()):
        raise UsageError(
            f"{where}profile.{key}: {found} is not a {kind}",
            hint=f"name {what}, relative to the profile",
        )
    return found


def _parse(data: Mapping[str, object], path: Path, *, prefix: str) -> Profile:
    where = f"{path}: {prefix}"
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise UsageError(
            f"{where}{unknown[0]}: not a profile table",
            hint=f"the tables are: {', '.join(SECTIONS)}",
        )
    head = data.get("profile", {})
    if not isinstance(head, dict):
        raise UsageError(f"{where}profile: expected a table")
    folder = _relative(
        head, "scenarios", path, where, "folder", "the folder of the scenario modules"
    )
    env_file = _relative(
        head,
        "environment",
        path,
        where,
        "file",
        "the environment's config file (runbook_checks/stack/external.py)",
    )
    kit = head.get("kit", "")
    if not isinstance(kit, str):
        raise UsageError(f"{where}profile.kit: expected a module name (a string)")
    profile = Profile(
        source=path,
        environment=env_file,
        name=str(head.get("name", path.stem)),
        scenarios=folder,
        load=_locustfile(head.get("load"), path, where),
        stack=str(head.get("stack", "")),
        kit=kit,
        hosts=_table(data, "hosts", where),
        placeholders=_table(data, "placeholders", where),
        services=_table(data, "services", where),
        processes=_table(data, "processes", where),
        paths=_table(data, "paths", where),
        status_pages=_table(data, "status_pages", where),
        curl_auth=_table(data, "curl_auth", where),
        prefix=prefix,
    )
    _check_targets(profile, where)
    return profile


def _locustfile(value: object, path: Path, where: str) -> Path | None:
    """`[profile] load`: a locustfile, or a folder holding `locustfile.py`, relative to
    the profile."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}profile.load: expected a locustfile or its folder (a string)")
    named = (path.parent / value).resolve()
    locustfile = named / LOCUSTFILE if named.is_dir() else named
    if not locustfile.is_file():
        raise UsageError(
            f"{where}profile.load: {locustfile} is not a file",
            hint=f"name the service's locustfile (or the folder holding {LOCUSTFILE}), "
            "relative to the profile",
        )
    return locustfile


def _check_targets(profile: Profile, where: str) -> None:
    def bad(section: str, name: str, target: str, allowed: str) -> UsageError:
        return UsageError(
            f"{where}{section}.{name}: {target!r} is not something the stack has",
            hint=f'map it to one of {allowed}, or "{TO_BE_MAPPED}"',
        )

    components = ", ".join(COMPONENT_TARGETS)
    for name, target in profile.hosts.items():
        if target != TO_BE_MAPPED and target not in COMPONENT_TARGETS and not address_host(target):
            raise bad("hosts", name, target, components + ", or an address of the environment")
    for section in ("services", "processes"):
        for name, target in getattr(profile, section).items():
            if target != TO_BE_MAPPED and target not in COMPONENT_TARGETS:
                raise bad(section, name, target, components)
    for name, binding in profile.placeholders.items():
        if binding not in PLACEHOLDER_BINDINGS:
            raise bad("placeholders", name, binding, ", ".join(PLACEHOLDER_BINDINGS))
    for name, target in profile.paths.items():
        if target != TO_BE_MAPPED and not PATH_TARGET.match(target):
            raise bad("paths", name, target, "COMPONENT:logs or COMPONENT:data (api:logs ...)")


def scenarios_folder(runbook: Path, profile: Profile) -> Path:
    """The folder of the scenario modules that drill `runbook` (drill, game days), or one
    UsageError saying how to name it: the engine carries no scenarios of its own."""
    if profile.scenarios is not None:
        return profile.scenarios
    return _missing(
        runbook,
        profile,
        "no scenarios to drill it with",
        'name the folder of its scenario modules in its profile: [profile] scenarios = "DIR"',
    )


def locustfile(runbook: Path, profile: Profile, explicit: Path | None = None) -> Path:
    """The service's locustfile for a load run: `explicit` (--locustfile), else the
    profile's `load`, else one UsageError saying how to name it."""
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(
                f"--locustfile {explicit}: no such file", hint="name the service's locustfile"
            )
        return explicit
    if profile.load is not None:
        return profile.load
    return _missing(
        runbook,
        profile,
        "no locustfile to load its service with",
        "pass --locustfile FILE, or name it in the runbook's profile: [profile] load = "
        f'"FILE" (or its folder, holding {LOCUSTFILE})',
    )


def _missing(runbook: Path, profile: Profile, what: str, how: str) -> NoReturn:
    if profile.source is None:
        raise UsageError(
            f"{runbook}: {what} (it has no profile)",
            hint=f"{how}; `runbook-checks init RUNBOOK` writes a profile beside the runbook",
        )
    raise UsageError(f"{runbook}: {what} (its profile {profile.source} names none)", hint=how)
