"""The `Scenario` object a scenario test of scenarios/ verifies, for tests that drill it
in-process with other settings (a mutated runbook, an incident plan)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from runbook_checks.drill.spec import Scenario

ROOT = Path(__file__).resolve().parents[2]


def scenario_of(test_name: str) -> tuple[Scenario, str, str | None, tuple[str, ...]]:
    """The Scenario a scenario test verifies, its section, option and needed capabilities
    (read from the test's markers and its `drill.verify(NAME)` call)."""
    for path in sorted((ROOT / "scenarios").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == test_name:
                spec = importlib.util.spec_from_file_location(f"_mutated_{path.stem}", path)
                assert spec is not None
                assert spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                marks = getattr(module, test_name).pytestmark
                runbook = next(m for m in marks if m.name == "runbook")
                needs = tuple(a for m in marks if m.name == "needs" for a in m.args)
                call = next(
                    n
                    for n in ast.walk(node)
                    if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute)
                    and n.func.attr == "verify"
                )
                assert isinstance(call.args[0], ast.Name)
                scenario = getattr(module, call.args[0].id)
                return scenario, runbook.args[0], runbook.kwargs.get("option"), needs
    raise LookupError(test_name)
