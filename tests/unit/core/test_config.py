from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.config import OPTIONS, ChecksConfig
from runbook_checks.errors import UsageError

DEFAULTS = {o.name: o.default for o in OPTIONS}


def test_defaults_resolve_relative_to_the_root(tmp_path: Path) -> None:
    config = ChecksConfig.from_values(DEFAULTS, root=tmp_path)
    assert config.runbook == tmp_path / "runbook.md"  # no runbook with a profile here
    assert config.backend == "local"
    assert config.pool_size == 20


def test_the_default_runbook_is_the_one_with_a_profile_under_runbooks(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "notes.md").write_text("# not a runbook of ours\n")
    (folder / "db.md").write_text("# DB\n")
    (folder / "db.runbook-checks.toml").write_text("[profile]\n")
    assert ChecksConfig.from_values(DEFAULTS, root=tmp_path).runbook == folder / "db.md"
    (folder / "api.md").write_text("# API\n")
    (folder / "api.runbook-checks.toml").write_text("[profile]\n")
    # two: none is the default (a command then says to name one with --runbook)
    assert ChecksConfig.from_values(DEFAULTS, root=tmp_path).runbook == tmp_path / "runbook.md"
    named = ChecksConfig.from_values({**DEFAULTS, "runbook": "runbooks/api.md"}, root=tmp_path)
    assert named.runbook == folder / "api.md"


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
