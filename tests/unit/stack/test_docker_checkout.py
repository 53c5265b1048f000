"""The docker backend's scripts are a checkout's: named with their path here, and where
an installed copy has none, the message says to use a checkout (never a missing path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.stack.docker import checkout, testing
from tests.profiles import ROOT


def test_in_the_checkout_the_scripts_are_found_and_named_with_their_path() -> None:
    assert checkout.script("images.sh") == ROOT / "scripts" / "images.sh"
    assert checkout.script("dockerd.sh") == ROOT / "scripts" / "dockerd.sh"
    said = checkout.how_to_run("images.sh", "make images")
    assert said == f"`make images` ({ROOT / 'scripts' / 'images.sh'})"


def test_installed_without_them_the_message_says_to_use_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"  # what parents[3] of the module is in a wheel install
    (site / "runbook_checks").mkdir(parents=True)
    monkeypatch.setattr(checkout, "_ROOT", site)
    monkeypatch.setattr(checkout, "SCRIPTS", site / "scripts")
    assert checkout.script("images.sh") is None
    said = checkout.how_to_run("images.sh", "make images")
    assert said.startswith("`make images` from a source checkout of runbook-checks")
    assert "scripts/images.sh" not in said
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    reason = testing.cannot_run_here()
    assert reason is not None
    assert reason.startswith("scripts/dockerd.sh and scripts/images.sh not here")
