"""Runtime code imports only what an installed copy has.

`pip install runbook-checks[load,docker]` brings the `[project].dependencies` and the
runtime extras, with what they require in turn; never the `dev` extra (linters, type
stubs, test helpers). Every import that runs (at module level or inside a function: a
lazy import fails just as late, in a user's hands) must name the standard library, the
project's own modules, or a distribution of that runtime closure. That holds for the
packages (`runbook_checks/`, `files_api/`, `files_profile/`) and for what a user's
install runs beside them: the drills' `scenarios/` (`runbook-checks drill`) and
`loadtests/` (`load`).
Imports under `if TYPE_CHECKING:` never run and may name anything.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
RUNTIME_PACKAGES = ("runbook_checks", "files_api", "files_profile")
#: folders of modules a user's install runs: `drill` collects the scenarios, `load` runs
#: the locustfile (whose modules import each other by their file names)
RUNTIME_SCRIPTS = ("scenarios", "loadtests")
OWN = frozenset(RUNTIME_PACKAGES)
#: extras a user installs to run the product (README: load tests, the docker backend)
RUNTIME_EXTRAS = ("load", "docker")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # the top-level module name

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: import {self.module}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path, source: str) -> Iterator[Import]:
    """Absolute imports of `source` that run: those under `if TYPE_CHECKING:` are left out
    (its `else:` branch runs and is kept)."""

    def walk(node: ast.AST) -> Iterator[Import]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:
                yield from walk(branch)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name.partition(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Import(path, node.lineno, node.module.partition(".")[0])
        for child in ast.iter_child_nodes(node):
            yield from walk(child)

    yield from walk(ast.parse(source, filename=str(path)))


def _requirements(name: str, extras: frozenset[str]) -> Iterator[Requirement]:
    for text in metadata.requires(name) or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            yield req


def _project(pyproject: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return project


def declared(pyproject: Path, groups: tuple[str, ...]) -> list[Requirement]:
    """The requirements of `groups`: "" is `[project].dependencies`, others are extras."""
    project = _project(pyproject)
    texts: list[str] = []
    for group in groups:
        texts += project["dependencies"] if group == "" else project["optional-dependencies"][group]
    return [Requirement(text) for text in texts]


def closure(wanted: list[Requirement]) -> frozenset[str]:
    """Canonical names of the distributions installing `wanted` brings (as installed here:
    each requirement's own requirements, with the extras asked for)."""
    seen: set[str] = set()
    todo = [
        (r.name, frozenset(r.extras)) for r in wanted if r.marker is None or r.marker.evaluate()
    ]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in done:
            continue
        done.add((canonicalize_name(name), extras))
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing imports it here either
        seen.add(canonicalize_name(name))
        todo += [(r.name, frozenset(r.extras)) for r in _requirements(name, extras)]
    return frozenset(seen)


@dataclass(frozen=True)
class Requirements:
    """What runtime code may import (`direct`: declared by the project for a runtime
    install), and what explains a refusal."""

    direct: frozenset[str]
    runtime: frozenset[str]  # all that a runtime install brings
    dev: frozenset[str]  # all that the dev extra brings

    @classmethod
    def of(cls, pyproject: Path) -> Requirements:
        wanted = declared(pyproject, ("", *RUNTIME_EXTRAS))
        return cls(
            direct=frozenset(canonicalize_name(r.name) for r in wanted),
            runtime=closure(wanted),
            dev=closure(declared(pyproject, ("dev",))),
        )


INSTALL = f"`pip install runbook-checks[{','.join(RUNTIME_EXTRAS)}]`"


def offending_imports(
    imports: list[Import],
    requirements: Requirements,
    providers: Mapping[str, list[str]],
    own: frozenset[str] = OWN,
) -> list[str]:
    """The imports of a distribution the project does not declare for a runtime install,
    each with why: dev-only, only brought by another requirement, or nowhere."""
    bad = []
    for imp in imports:
        if imp.module in own or imp.module in sys.stdlib_module_names:
            continue
        dists = {canonicalize_name(d) for d in providers.get(imp.module, [])}
        names = ", ".join(sorted(dists))
        if dists & requirements.direct:
            continue
        if not dists:
            bad.append(f"{imp}: no installed distribution provides {imp.module!r}")
        elif dists & requirements.runtime:
            bad.append(
                f"{imp}: {imp.module!r} comes from {names}, which only another requirement "
                "brings: declare it in pyproject.toml's dependencies (or the extra that "
                "uses it)"
            )
        elif dists & requirements.dev:
            bad.append(
                f"{imp}: {imp.module!r} comes from {names}, of the dev extra only, which "
                f"{INSTALL} does not bring: put the import under `if TYPE_CHECKING:`"
            )
        else:
            bad.append(f"{imp}: {imp.module!r} comes from {names}, which {INSTALL} lacks")
    return bad


def _imports(folder: str) -> list[Import]:
    found: list[Import] = []
    for path in sorted((REPO / folder).rglob("*.py")):
        found += runtime_imports(path, path.read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("folder", RUNTIME_PACKAGES + RUNTIME_SCRIPTS)
def test_runtime_code_imports_only_declared_runtime_dependencies(folder: str) -> None:
    requirements = Requirements.of(REPO / "pyproject.toml")
    own = OWN | {path.stem for path in (REPO / folder).glob("*.py")}
    found = _imports(folder)
    assert found, f"no import found in {folder}/"
    bad = offending_imports(found, requirements, metadata.packages_distributions(), own)
    assert not bad, "runtime imports an installed copy may lack:\n" + "\n".join(bad)


def test_dev_extra_is_not_in_the_runtime_closure() -> None:
    """What the check leans on: the dev extra's tools are really absent from an install
    (else importing them would pass unnoticed)."""
    requirements = Requirements.of(REPO / "pyproject.toml")
    for name in ("respx", "mypy", "ruff", "boto3-stubs", "mypy-boto3-s3", "types-redis"):
        assert canonicalize_name(name) in requirements.dev, name
        assert canonicalize_name(name) not in requirements.runtime, name


SAMPLE = """
from __future__ import annotations
import os
from typing import TYPE_CHECKING
import typing

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
else:
    import yaml
if typing.TYPE_CHECKING:
    import respx

def lazy() -> None:
    import respx.models
    from . import sibling
"""


def test_the_walk_sees_lazy_imports_and_skips_type_checking_blocks() -> None:
    found = [(i.line, i.module) for i in runtime_imports(REPO / "x.py", SAMPLE)]
    assert found == [
        (2, "__future__"),
        (3, "os"),
        (4, "typing"),
        (5, "typing"),
        (10, "yaml"),
        (15, "respx"),
    ]


@pytest.mark.parametrize(
    ("module", "dists", "problem"),
    [
        ("respx", ["respx"], r"comes from respx, of the dev extra only"),
        ("mypy_boto3_s3", ["mypy-boto3-s3"], r"mypy-boto3-s3, of the dev extra only"),
        ("starlette", ["starlette"], r"starlette, which only another requirement brings"),
        ("nowhere_to_be_found", [], r"no installed distribution provides"),
        ("elsewhere", ["elsewhere"], r"elsewhere, which `pip install runbook-checks\[.*lacks"),
    ],
)
def test_an_undeclared_import_is_named_with_why(
    module: str, dists: list[str], problem: str
) -> None:
    imp = Import(REPO / "runbook_checks" / "x.py", 7, module)
    providers = {module: dists, "httpx": ["httpx"]}
    requirements = Requirements(
        direct=frozenset({"httpx"}),
        runtime=frozenset({"httpx", "starlette"}),
        dev=frozenset({"respx", "mypy-boto3-s3"}),
    )
    bad = offending_imports([imp, Import(imp.path, 8, "httpx")], requirements, providers)
    assert len(bad) == 1
    assert re.search(r"runbook_checks/x\.py:7: import " + module, bad[0])
    assert re.search(problem, bad[0])
