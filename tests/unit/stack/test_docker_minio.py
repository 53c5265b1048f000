"""MinIO as the container backend's object store: how its container is asked to run.

MinIO exists in no registry these machines reach, so it cannot run here; what can be
checked is the contract the container is given (and, in tests/integration/test_stack.py,
that every S3 client signs with the credentials a stack carries, against an object store
that checks them)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

pytest.importorskip("docker", reason="the docker extra is not installed")

from runbook_checks.errors import StackError
from runbook_checks.stack.base import DUMMY_KEY
from runbook_checks.stack.docker.components import DockerMinio, DockerMoto, Placement
from runbook_checks.stack.docker.engine import DockerClient
from runbook_checks.stack.docker.images import ResolvedImage

MINIO = ResolvedImage("object_store", "minio/minio", "minio/minio", "sha256:" + "0" * 64, "minio")


def _placement() -> Placement:
    # building a component's container spec does not talk to the engine
    return Placement(client=cast(DockerClient, None), stack_id="t1", labels={"x": "y"})


def test_minio_runs_on_loopback_with_credentials_it_accepts(tmp_path: Path) -> None:
    store = DockerMinio(tmp_path / "object_store", placement=_placement(), image=MINIO)
    spec = store.process.spec  # type: ignore[attr-defined]
    assert list(spec.entrypoint) == ["minio"]
    assert list(spec.command) == [
        "server",
        "/data",
        "--address",
        f"127.0.0.1:{store.port}",
        "--console-address",
        f"127.0.0.1:{store.console_port}",
    ]
    assert spec.environment["MINIO_ROOT_USER"] == store.access_key
    assert spec.environment["MINIO_ROOT_PASSWORD"] == store.secret_key
    assert len(store.access_key) >= 3  # MinIO's own minimums
    assert len(store.secret_key) >= 8
    assert store.secret_key != DUMMY_KEY
    assert spec.run_kwargs()["network_mode"] == "host"
    other = DockerMinio(tmp_path / "other", placement=_placement(), image=MINIO)
    assert other.secret_key != store.secret_key  # one per stack


def test_the_control_plane_refuses_a_minio_image(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="not moto's server"):
        DockerMoto("aws", tmp_path / "aws", placement=_placement(), image=MINIO)
