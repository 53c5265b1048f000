"""The catalogue is complete (every Fault subclass in runbook_checks.faults), its kinds are
unique, every fault follows the house rules, and the table shows each one."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import runbook_checks.faults
from runbook_checks.faults.base import Fault
from runbook_checks.faults.catalogue import (
    ABSTRACT,
    CATALOGUE,
    COMBINATORS,
    _by_kind,
    catalogue_entries,
    describe_catalogue,
)
from runbook_checks.faults.network import NetworkDown
from runbook_checks.faults.process import ProcessKill

UNIT_SUFFIXES = (
    "_s",
    "_ms",
    "_mb",
    "_kb",
    "_kbps",
    "_bytes",
    "_fraction",
    "cpus",
)  # cpus: docker's


def fault_classes_in_package() -> set[type[Fault]]:
    found: set[type[Fault]] = set()
    for module_info in pkgutil.iter_modules(runbook_checks.faults.__path__):
        module = importlib.import_module(f"runbook_checks.faults.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Fault) and obj.__module__ == module.__name__:
                found.add(obj)
    return found


def test_every_fault_in_the_package_is_in_the_catalogue() -> None:
    missing = fault_classes_in_package() - set(CATALOGUE.values()) - set(ABSTRACT)
    assert not missing, f"add to faults/catalogue.py: {sorted(c.__name__ for c in missing)}"


def test_the_catalogue_holds_only_concrete_faults_under_their_kind() -> None:
    for kind, fault in CATALOGUE.items():
        assert fault.kind == kind
        assert fault not in ABSTRACT
    assert len(CATALOGUE) >= 27


def test_two_faults_with_one_kind_are_refused() -> None:
    class Twin(ProcessKill):
        pass

    with pytest.raises(TypeError, match="two faults share the kind 'process-kill'"):
        _by_kind((ProcessKill, Twin))


@pytest.mark.parametrize("fault", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_each_fault_follows_the_house_rules(fault: type[Fault]) -> None:
    assert dataclasses.is_dataclass(fault)
    assert fault.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert fault.requires or fault in COMBINATORS, (
        f"{fault.__name__} declares no required capability"
    )
    assert inspect.getdoc(fault), f"{fault.__name__} has no docstring"
    assert "_inject" in vars(fault) or any(
        "_inject" in vars(base) for base in fault.__mro__[1:] if base is not Fault
    )
    for field in dataclasses.fields(fault):
        if "float" in str(field.type):
            assert field.name.endswith(UNIT_SUFFIXES), (
                f"{fault.__name__}.{field.name}: a number setting names its unit"
            )


def test_the_table_has_a_row_per_fault_with_settings_needs_and_summary() -> None:
    table = describe_catalogue("markdown")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(CATALOGUE)
    row = next(r for r in rows if r.startswith("| `slow-client-upload`"))
    assert "client.SlowClientUpload" in row
    assert r"upload_timeout_s: float \| None = None" in row  # pipes escaped in cells
    assert "data (+ reconfigure when upload_timeout_s is set)" in row
    outage = next(r for r in rows if r.startswith("| `storage-outage`"))
    assert "mode=kill: data, kill" in outage


def test_entries_summarise_the_first_docstring_paragraph_on_one_line() -> None:
    entries = {e.kind: e for e in catalogue_entries()}
    down = entries[NetworkDown.kind]
    assert down.summary == "The path is down: new connections are refused, open ones are cut."
    assert down.settings == "target: str"
    assert down.requires == "proxy"
    assert all(e.summary and "\n" not in e.summary for e in entries.values())
    assert entries["cold-cache"].settings == "(none)"
    assert entries["all-of"].requires == "what its parts need"


def test_the_text_form_lists_every_kind() -> None:
    text = describe_catalogue("text")
    for kind in CATALOGUE:
        assert f"\n{kind}  (" in f"\n{text}"
