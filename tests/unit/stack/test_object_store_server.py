"""The object store's launcher: moto's own server, its module folders listed once."""

from __future__ import annotations

import os

import pytest
from moto import backends

from runbook_checks.stack import object_store_server
from runbook_checks.stack.aws_control_plane import service_lookup_listed_once


@pytest.fixture
def moto_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's own listing again after the test (the helper replaces it process-wide)."""
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)


@pytest.mark.usefixtures("moto_listing")
def test_moto_folders_are_listed_once_and_answered_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = set(backends.list_of_moto_modules())
    assert {"s3", "ec2", "rds", "elbv2"} <= names
    service_lookup_listed_once()
    service_lookup_listed_once()  # idempotent: still the first listing

    def no_listing(path: str) -> list[str]:
        raise AssertionError(f"moto's folder listed again: {path}")

    monkeypatch.setattr(os, "listdir", no_listing)
    assert set(backends.list_of_moto_modules()) == names
    assert "s3" in backends.list_of_moto_modules()
    assert "s3.us-east-1.amazonaws.com" not in backends.list_of_moto_modules()


@pytest.mark.usefixtures("moto_listing")
def test_the_launcher_lists_once_then_runs_motos_own_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import moto.server

    served: list[list[str] | None] = []

    def moto_main(argv: list[str] | None = None) -> None:
        assert getattr(backends.list_of_moto_modules, "listed_once", False)
        served.append(argv)

    monkeypatch.setattr(moto.server, "main", moto_main)
    object_store_server.main(["-H", "127.0.0.1", "-p", "5999"])
    assert served == [["-H", "127.0.0.1", "-p", "5999"]]
