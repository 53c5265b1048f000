"""The service twin is launched as its kit says (no server starts: the command lines)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import cast

from files_profile import KIT, TWIN
from runbook_checks.service import Twin
from runbook_checks.stack.docker.components import DockerApi, Placement
from runbook_checks.stack.docker.engine import DockerClient
from runbook_checks.stack.docker.images import ResolvedImage
from runbook_checks.stack.postgres import _migrations_digest
from runbook_checks.stack.servers import LocalApi

OTHER = Twin(
    label="orders",
    serve=("-m", "orders_twin", "run"),
    migrate=("-m", "orders_twin", "schema"),
    migrations=None,
    release_setting="ORDERS_RELEASE",
    pool_size_setting="ORDERS_POOL",
    quota_setting="ORDERS_QUOTA",
    upload_timeout_setting="ORDERS_BODY_TIMEOUT",
    default_upload_timeout_s=10.0,
    default_release="main",
)


def test_the_local_api_runs_the_twins_serve_command(tmp_path: Path) -> None:
    api = LocalApi(tmp_path / "api", {}, twin=OTHER)
    assert api.process.argv == [
        sys.executable,
        "-m",
        "orders_twin",
        "run",
        "--instance",
        f"api@{tmp_path.name}",
    ]


def test_the_docker_api_runs_the_same_command_with_the_images_python(tmp_path: Path) -> None:
    image = ResolvedImage(
        "api", "example/orders:dev", "example/orders:dev", "sha256:" + "0" * 64, "files-api"
    )
    place = Placement(cast(DockerClient, None), "stack-t1", {}, None)
    api = DockerApi(tmp_path / "api", {}, placement=place, image=image, twin=OTHER)
    spec = api.process.spec  # type: ignore[attr-defined]
    assert [*spec.entrypoint, *spec.command] == [
        "python",
        "-m",
        "orders_twin",
        "run",
        "--instance",
        f"api@{tmp_path.name}",
    ]


def test_the_release_is_the_twins_setting_or_its_default() -> None:
    assert OTHER.describe({}) == "orders main"
    assert OTHER.describe({"ORDERS_RELEASE": ""}) == "orders main"  # blank: not set
    assert OTHER.describe({"ORDERS_RELEASE": "r2"}) == "orders r2"


def test_the_template_cluster_is_keyed_by_the_twins_migrations(tmp_path: Path) -> None:
    assert KIT.twin is TWIN
    assert TWIN.migrations is not None
    assert any(TWIN.migrations.glob("*.sql"))
    files = _migrations_digest(TWIN)
    assert files != _migrations_digest(OTHER) != _migrations_digest(None)
    (tmp_path / "001.sql").write_text("CREATE TABLE t (id int);\n")
    mine = replace(TWIN, label="files_api", migrations=tmp_path)
    before = _migrations_digest(mine)
    (tmp_path / "001.sql").write_text("CREATE TABLE t (id bigint);\n")
    assert _migrations_digest(mine) != before
