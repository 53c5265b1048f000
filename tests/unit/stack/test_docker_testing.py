"""Which engine the docker backend's tests use: $DOCKER_HOST naming the project's own
socket (as `connect()` records it) is the project's engine, to be started again when a
module before stopped it; any other $DOCKER_HOST is someone else's, used as it is."""

from __future__ import annotations

import pytest

from runbook_checks.stack.docker.engine import project_socket
from runbook_checks.stack.docker.testing import foreign_engine


def test_the_projects_own_socket_is_not_a_foreign_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{project_socket()}")
    assert foreign_engine() is None


def test_another_engine_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert foreign_engine() == "tcp://127.0.0.1:2375"
    monkeypatch.delenv("DOCKER_HOST")
    assert foreign_engine() is None
