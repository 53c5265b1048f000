"""The scenario catalogue for game days: the `Scenario` objects scenario modules define at
module level, with the runbook section (and option) each drills.

A scenario carries its own (`Scenario(section=..., option=...)`). One that does not takes
them from the `@pytest.mark.runbook(section, option=...)` of the test whose code names
it (else the module's first runbook mark, else its `SECTION`). A scenario whose own
section or option differs from the mark of a test that runs it is reported (`problems`):
the game day and the drill would exercise different parts of the runbook.

The modules are the runbook's, found through its profile (`[profile] scenarios`), as
`runbook-checks drill` finds them: the engine, installed or checked out, carries none.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from runbook_checks.drill.spec import Scenario
from runbook_checks.errors import UsageError


@dataclass(frozen=True)
class CatalogueEntry:
    name: str  # "sev1_api_server_down:api_killed"
    variable: str  # "API_KILLED"
    module: str  # "test_sev1_api_server_down"
    section: str  # runbook section title or id
    option: str | None
    scenario: Scenario

    @property
    def title(self) -> str:
        return self.scenario.title or self.variable.replace("_", " ").lower()


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[CatalogueEntry, ...]
    problems: tuple[str, ...] = ()  # modules that could not be imported, with why

    def find(self, wanted: str) -> CatalogueEntry:
        text = wanted.strip().lower()
        exact = [
            e
            for e in self.entries
            if text in (e.name.lower(), e.variable.lower(), e.name.split(":")[1])
        ]
        partial = exact or [e for e in self.entries if text in e.name.lower()]
        if len(partial) == 1:
            return partial[0]
        names = ", ".join(e.name for e in (partial or self.entries)) or "none"
        what = "matches several" if partial else "matches no"
        raise UsageError(
            f"scenario {wanted!r} {what} scenario: {names}",
            hint="see `runbook-checks gameday --list`",
        )


def _import(path: Path) -> ModuleType:
    name = f"runbook_checks_scenarios.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _marks(function: object) -> list[tuple[str, str | None]]:
    out = []
    for mark in getattr(function, "pytestmark", []):
        if getattr(mark, "name", "") == "runbook" and getattr(mark, "args", ()):
            option = mark.kwargs.get("option")
            out.append((str(mark.args[0]), None if option is None else str(option)))
    return out


def _entries(module: ModuleType, stem: str, problems: list[str]) -> list[CatalogueEntry]:
    tests = [
        (fn, _marks(fn))
        for name, fn in vars(module).items()
        if name.startswith("test") and inspect.isfunction(fn)
    ]
    module_marks = [m for _, marks in tests for m in marks]
    default_section = str(getattr(module, "SECTION", ""))
    out: list[CatalogueEntry] = []
    for variable, value in vars(module).items():
        if not isinstance(value, Scenario) or variable.startswith("_"):
            continue
        users = [marks for fn, marks in tests if variable in fn.__code__.co_names and marks]
        section, option = (
            users[0][0] if users else module_marks[0] if module_marks else (default_section, None)
        )
        if value.section:
            own = (value.section, value.option)
            problems.extend(
                f"{stem}.py: {variable} drills {_said(own)}, but a test that runs it is "
                f"marked {_said(mark)}"
                for marks in users
                for mark in marks
                if mark != own
            )
            section, option = own
        if not section:
            continue
        out.append(
            CatalogueEntry(
                f"{stem.removeprefix('test_')}:{variable.lower()}",
                variable,
                stem,
                section,
                option,
                value,
            )
        )
    return out


def runbook_catalogue(runbook: Path, profile: Path | None = None) -> Catalogue:
    """The scenarios of `runbook`'s profile (`profile`: an explicit profile file)."""
    from runbook_checks.profile import find_profile, scenarios_folder

    return discover(scenarios_folder(runbook, find_profile(runbook, profile)))


def _said(where: tuple[str, str | None]) -> str:
    section, option = where
    return repr(section) + ("" if option is None else f" option {option!r}")


def discover(folder: Path) -> Catalogue:
    entries: list[CatalogueEntry] = []
    problems: list[str] = []
    for path in sorted(folder.glob("test_*.py")):
        try:
            module = _import(path)
        except Exception as exc:  # one broken module must not hide the others
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        entries += _entries(module, path.stem, problems)
    return Catalogue(tuple(entries), tuple(problems))
