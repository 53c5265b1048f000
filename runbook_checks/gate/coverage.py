"""Coverage: every scenario section and mitigation option is exercised by a scenario.

Scenario modules are read with `ast`, never imported (importing runs their code and
needs their dependencies): a test is marked `@pytest.mark.runbook(SECTION, option="A")`,
directly, through `pytestmark` (module or class), or in `pytest.param(marks=...)`. The
section may be a string or a module-level string constant.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runbook_checks.findings import Finding, Level
from runbook_checks.runbook.model import Option, Runbook, Section

MISSING = "coverage-missing"
UNKNOWN_SECTION = "coverage-unknown-section"
UNKNOWN_OPTION = "coverage-unknown-option"
UNREADABLE = "coverage-unreadable-scenario"
NO_SCENARIOS = "coverage-no-scenarios"
KINDS = (MISSING, UNKNOWN_SECTION, UNKNOWN_OPTION, UNREADABLE, NO_SCENARIOS)


@dataclass(frozen=True)
class Marker:
    section: str  # as written in the marker (a title or an id)
    option: str | None
    path: Path
    test: str  # "test_x" or "TestY::test_x"
    line: int

    @property
    def nodeid(self) -> str:
        return f"{self.path.name}::{self.test}"

    @property
    def function(self) -> str:
        return self.test.rsplit("::", 1)[-1]

    def describe(self) -> str:
        option = f", option={self.option!r}" if self.option is not None else ""
        return f"@pytest.mark.runbook({self.section!r}{option}) on {self.nodeid}"


@dataclass(frozen=True)
class Scan:
    markers: tuple[Marker, ...] = ()
    problems: tuple[str, ...] = ()  # modules or markers that could not be read
    folder: Path | None = None
    modules: int = 0
    unmarked: tuple[str, ...] = field(default=())  # tests without a runbook marker


def _is_runbook_mark(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr != "runbook":
        return False
    value = func.value
    return (isinstance(value, ast.Attribute) and value.attr == "mark") or (
        isinstance(value, ast.Name) and value.id == "mark"
    )


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value.value
    return found


def _string(node: ast.expr | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _marks_in(nodes: Iterable[ast.AST]) -> list[ast.Call]:
    return [
        call
        for node in nodes
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and _is_runbook_mark(call)
    ]


def _pytestmark(body: Sequence[ast.stmt]) -> list[ast.Call]:
    values = [
        node.value
        for node in body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
    ]
    return _marks_in(values)


def scan_module(path: Path) -> Scan:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        return Scan(problems=(f"{path.name}: cannot be read: {exc}",), modules=1)
    constants = _constants(tree)
    markers: list[Marker] = []
    problems: list[str] = []
    unmarked: list[str] = []
    module_marks = _pytestmark(tree.body)

    def add(test: str, node: ast.AST, calls: list[ast.Call]) -> None:
        if not calls:
            unmarked.append(f"{path.name}::{test}")
        for call in calls:
            section = _string(call.args[0] if call.args else None, constants)
            option_node = next((k.value for k in call.keywords if k.arg == "option"), None)
            if option_node is None and len(call.args) > 1:
                option_node = call.args[1]
            option = _string(option_node, constants)
            none_option = option_node is None or (
                isinstance(option_node, ast.Constant) and option_node.value is None
            )
            if section is None or (option is None and not none_option):
                problems.append(
                    f"{path.name}:{call.lineno}: {test}: runbook marker with a section or "
                    "option that is not a literal or module constant"
                )
                continue
            markers.append(Marker(section, option, path, test, getattr(node, "lineno", 0)))

    def is_test(node: ast.stmt) -> bool:
        return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        )

    for node in tree.body:
        if is_test(node):
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            add(node.name, node, module_marks + _marks_in(node.decorator_list))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            class_marks = module_marks + _marks_in(node.decorator_list) + _pytestmark(node.body)
            for item in node.body:
                if is_test(item):
                    assert isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    add(
                        f"{node.name}::{item.name}",
                        item,
                        class_marks + _marks_in(item.decorator_list),
                    )
    return Scan(tuple(markers), tuple(problems), path.parent, 1, tuple(unmarked))


def scan_scenarios(folder: Path) -> Scan:
    if not folder.is_dir():
        return Scan(folder=None)
    markers: list[Marker] = []
    problems: list[str] = []
    unmarked: list[str] = []
    modules = sorted(p for p in folder.rglob("test_*.py") if "__pycache__" not in p.parts)
    for path in modules:
        scan = scan_module(path)
        markers += scan.markers
        problems += scan.problems
        unmarked += scan.unmarked
    return Scan(tuple(markers), tuple(problems), folder, len(modules), tuple(unmarked))


def section_for(runbook: Runbook, ref: str) -> Section | None:
    wanted = ref.strip().lower()
    for section in runbook.scenarios:
        if wanted in (section.id, section.title.lower()):
            return section
    return None


def option_for(section: Section, ref: str) -> Option | None:
    try:
        return section.option(ref)
    except KeyError:
        return None


def check_coverage(runbook: Runbook, scan: Scan) -> list[Finding]:
    findings: list[Finding] = []
    if scan.folder is None:
        return [
            Finding(
                Level.INFO,
                NO_SCENARIOS,
                "",
                "no scenarios drill this runbook: coverage of its sections and options is "
                "not checked",
                statement="scenarios/",
                suggestion="name the folder of its drill modules in the runbook's profile "
                "([profile] scenarios = ...; `runbook-checks init RUNBOOK` writes one), or "
                "give --scenarios DIR",
            )
        ]
    for problem in scan.problems:
        findings.append(
            Finding(Level.WARNING, UNREADABLE, "", problem, statement=problem.split(":", 1)[0])
        )
    covered: dict[str, set[str | None]] = {}
    for marker in scan.markers:
        section = section_for(runbook, marker.section)
        if section is None:
            known = "; ".join(s.title for s in runbook.scenarios)
            findings.append(
                Finding(
                    Level.ERROR,
                    UNKNOWN_SECTION,
                    "",
                    f"{marker.describe()} names a section the runbook does not have",
                    statement=marker.describe(),
                    suggestion=f"mark it with one of: {known}",
                )
            )
            continue
        option_key: str | None = None
        if marker.option is not None:
            option = option_for(section, marker.option)
            if option is None:
                known = ", ".join(f"{o.key} ({o.title})" for o in section.options) or "none"
                findings.append(
                    Finding(
                        Level.ERROR,
                        UNKNOWN_OPTION,
                        section.id,
                        f"{marker.describe()} names option {marker.option!r}, which "
                        f"{section.title!r} does not have",
                        line=section.line,
                        statement=marker.describe(),
                        suggestion=f"options of the section: {known}",
                    )
                )
                continue
            option_key = option.key
        covered.setdefault(section.id, set()).add(option_key)
    for section in runbook.scenarios:
        keys = covered.get(section.id)
        if keys is None:
            findings.append(
                Finding(
                    Level.ERROR,
                    MISSING,
                    section.id,
                    f"no scenario exercises {section.title!r}: its investigation is never "
                    "run against the failure it describes",
                    line=section.line,
                    statement=section.title,
                    suggestion=f"add scenarios/test_{section.id.replace('-', '_')}.py with "
                    f"@pytest.mark.runbook({section.title!r}, option=...) tests",
                )
            )
        for option in section.options:
            if keys is not None and option.key in keys:
                continue
            findings.append(
                Finding(
                    Level.ERROR,
                    MISSING,
                    section.id,
                    f"no scenario exercises {section.title!r} / {option.title!r}",
                    line=option.line,
                    statement=option.title,
                    suggestion=f"add a test marked @pytest.mark.runbook({section.title!r}, "
                    f"option={option.key!r}) that injects the failure and runs this option",
                )
            )
    return findings
