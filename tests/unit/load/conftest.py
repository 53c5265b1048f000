"""The locustfile's helper modules (loadtests/user_mix.py, loadtests/per_second.py) are
plain Python, importable here by path; locust itself is never imported in this process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

LOADTESTS = Path(__file__).resolve().parents[3] / "loadtests"


def load_helper(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LOADTESTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def user_mix() -> ModuleType:
    return load_helper("user_mix")


@pytest.fixture(scope="session")
def per_second() -> ModuleType:
    return load_helper("per_second")


@pytest.fixture(autouse=True, scope="session")
def _locust_stays_out() -> object:
    yield
    assert "locust" not in sys.modules, "a unit test imported locust (gevent patching)"
    assert "gevent" not in sys.modules
