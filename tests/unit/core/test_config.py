from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.config import OPTIONS, ChecksConfig
from runbook_checks.errors import UsageError

DEFAULTS = {o.name: o.default for o in OPTIONS}


def test_defaults_resolve_relative_to_the_root(tmp_path: Path) -> None:
    config = ChecksConfig.from_values(DEFAULTS, root=tmp_path)
    assert config.runbook == tmp_path / "runbooks/files-incident-response.md"
    assert config.backend == "local"
    assert config.pool_size == 20


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("backend", "k8s", "--backend 'k8s' is not one of"),
        ("pool_size", "0", "--pool-size '0': expected a whole number"),
        ("pool_size", "lots", "--pool-size 'lots'"),
    ],
)
def test_bad_values_name_the_option(field: str, value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=message):
        ChecksConfig.from_values({**DEFAULTS, field: value}, root=tmp_path)
