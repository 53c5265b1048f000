"""Runtime code imports only what an installed copy has.

`pip install runbook-checks[load,docker]` brings the `[project].dependencies` and the
runtime extras, with what they require in turn; never the `dev` extra (linters, type
stubs, test helpers). Every import that runs (at module level or inside a function: a
lazy import fails just as late, in a user's hands) must name the standard library, the
project's own modules, or a distribution of that runtime closure. That holds for the
packages (`runbook_checks/`, `files_api/`) and for what a user's install runs beside
them: the drills' `scenarios/` (`runbook-checks drill`) and `loadtests/` (`load`).
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

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
RUNTIME_PACKAGES = ("runbook_checks", "files_api")
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


def runtime_closure(pyproject: Path) -> frozenset[str]:
    """Canonical names of the distributions `pip install .[load,docker]` brings (as
    installed here: each requirement's own requirements, with the extras asked for)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in RUNTIME_EXTRAS:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
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


def dev_only(pyproject: Path) -> frozenset[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return frozenset(
        canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]
    )


def offending_imports(
    imports: list[Import],
    closure: frozenset[str],
    providers: Mapping[str, list[str]],
    own: frozenset[str] = OWN,
) -> list[str]:
    """The imports whose module no distribution of `closure` provides, each with why."""
    bad = []
    for imp in imports:
        if imp.module in own or imp.module in sys.stdlib_module_names:
            continue
        dists = {canonicalize_name(d) for d in providers.get(imp.module, [])}
        if not dists:
            bad.append(f"{imp}: no installed distribution provides {imp.module!r}")
        elif not dists & closure:
            bad.append(
                f"{imp}: {imp.module!r} comes from {', '.join(sorted(dists))}, which "
                f"`pip install runbook-checks[{','.join(RUNTIME_EXTRAS)}]` does not bring "
                "(put the import under `if TYPE_CHECKING:` or declare the dependency)"
            )
    return bad


def _imports(folder: str) -> list[Import]:
    found: list[Import] = []
    for path in sorted((REPO / folder).rglob("*.py")):
        found += runtime_imports(path, path.read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("folder", RUNTIME_PACKAGES + RUNTIME_SCRIPTS)
def test_runtime_code_imports_only_runtime_dependencies(folder: str) -> None:
    closure = runtime_closure(REPO / "pyproject.toml")
    own = OWN | {path.stem for path in (REPO / folder).glob("*.py")}
    found = _imports(folder)
    assert found, f"no import found in {folder}/"
    bad = offending_imports(found, closure, metadata.packages_distributions(), own)
    assert not bad, "runtime imports an installed copy lacks:\n" + "\n".join(bad)


def test_dev_extra_is_not_in_the_runtime_closure() -> None:
    """What the check leans on: the dev extra's tools are really absent from an install
    (else importing them would pass unnoticed). A dev package that a runtime dependency
    also requires is allowed; none of the type stubs or linters may be."""
    closure = runtime_closure(REPO / "pyproject.toml")
    for name in ("respx", "mypy", "ruff", "boto3-stubs", "types-redis", "schemathesis"):
        assert canonicalize_name(name) in dev_only(REPO / "pyproject.toml")
        assert canonicalize_name(name) not in closure, name


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
        ("respx", ["respx"], r"comes from respx, which `pip install"),
        ("mypy_boto3_s3", ["mypy-boto3-s3"], r"comes from mypy-boto3-s3"),
        ("nowhere_to_be_found", [], r"no installed distribution provides"),
    ],
)
def test_an_import_outside_the_closure_is_named(
    module: str, dists: list[str], problem: str
) -> None:
    imp = Import(REPO / "runbook_checks" / "x.py", 7, module)
    providers = {module: dists, "httpx": ["httpx"]}
    bad = offending_imports([imp, Import(imp.path, 8, "httpx")], frozenset({"httpx"}), providers)
    assert len(bad) == 1
    assert re.search(r"runbook_checks/x\.py:7: import " + module, bad[0])
    assert re.search(problem, bad[0])
