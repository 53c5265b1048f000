"""moto in a container, without an engine: which server the AWS control plane runs (the
project's launcher where the image carries it, plain `moto_server` in a foreign image),
how the image says so, the object store's launcher likewise, and that the files
scripts/images.sh stages into the moto image are exactly what the launchers import."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("docker", reason="the docker extra is not installed")

from files_profile import KIT
from runbook_checks.config import ImageNames
from runbook_checks.stack.docker.components import DockerMoto, Placement
from runbook_checks.stack.docker.container import ContainerProcess
from runbook_checks.stack.docker.engine import DockerClient
from runbook_checks.stack.docker.images import (
    CONTROL_PLANE_LABEL,
    FLAVOUR_LABEL,
    OBJECT_STORE_LABEL,
    ResolvedImage,
    resolve_images,
)
from runbook_checks.stack.docker.network import StackNetwork
from runbook_checks.stack.docker.stack import DockerStack

ROOT = Path(__file__).resolve().parents[3]
IMAGES_SH = ROOT / "scripts" / "images.sh"
ZERO = "sha256:" + "0" * 64
# what `make images` builds (docker/moto: the launcher and its label)
OURS = ResolvedImage(
    "aws",
    "motoserver/moto",
    "runbook-checks/moto:dev",
    ZERO,
    "moto",
    control_plane="rules",
    object_store="listed-once",
)
FOREIGN = ResolvedImage("aws", "motoserver/moto", "motoserver/moto", ZERO, "moto")
# a moto image of `make images` built before it carried the object store's launcher
OLDER = ResolvedImage(
    "aws", "motoserver/moto", "runbook-checks/moto:dev", ZERO, "moto", control_plane="rules"
)
LAUNCHER = ["python", "-m", "runbook_checks.stack.aws_control_plane"]
OBJECT_STORE_LAUNCHER = ["python", "-m", "runbook_checks.stack.object_store_server"]


def _placement(network: StackNetwork | None = None) -> Placement:
    # building a component's container spec does not talk to the engine
    return Placement(cast(DockerClient, None), "stack-t1", {"x": "y"}, network)


def _spec(moto: DockerMoto) -> Any:
    return cast(ContainerProcess, moto.process).spec


def test_the_control_plane_runs_the_launcher_where_the_image_carries_it(tmp_path: Path) -> None:
    aws = DockerMoto("aws", tmp_path / "aws", placement=_placement(), image=OURS)
    spec = _spec(aws)
    assert aws.launcher
    assert list(spec.entrypoint) == LAUNCHER
    assert list(spec.command) == ["-H", "127.0.0.1", "-p", str(aws.port)]
    assert "preconditions" in aws.describe()
    assert "plain" not in aws.describe()
    bridged = StackNetwork("rc-stack-t1", "f" * 64, "172.18.0.0/16", "172.18.0.1")
    aws = DockerMoto("aws", tmp_path / "aws2", placement=_placement(bridged), image=OURS)
    assert list(_spec(aws).entrypoint) == LAUNCHER
    assert list(_spec(aws).command) == ["-H", "0.0.0.0", "-p", str(aws.port)]


def test_a_foreign_moto_image_runs_plain_moto_server_and_says_so(tmp_path: Path) -> None:
    aws = DockerMoto("aws", tmp_path / "aws", placement=_placement(), image=FOREIGN)
    spec = _spec(aws)
    assert not aws.launcher
    assert list(spec.entrypoint) == ["moto_server"]
    assert list(spec.command) == ["-H", "127.0.0.1", "-p", str(aws.port)]
    assert "without AWS's preconditions" in aws.describe()
    # a label on an image that is not moto's does not make it the launcher
    assert not ResolvedImage("aws", "x", "x", ZERO, "minio", control_plane="rules").has_launcher


def test_the_object_store_runs_its_own_launcher_where_the_image_carries_it(
    tmp_path: Path,
) -> None:
    store = DockerMoto("object_store", tmp_path / "store", placement=_placement(), image=OURS)
    assert not store.launcher  # not the control plane's
    assert list(_spec(store).entrypoint) == OBJECT_STORE_LAUNCHER
    assert list(_spec(store).command) == ["-H", "127.0.0.1", "-p", str(store.port)]
    assert store.describe() == "moto"
    for image in (FOREIGN, OLDER):  # plain moto_server, the same arguments
        store = DockerMoto(
            "object_store", tmp_path / image.name.replace("/", "_"), placement=_placement(),
            image=image,
        )  # fmt: skip
        assert list(_spec(store).entrypoint) == ["moto_server"]
        assert list(_spec(store).command) == ["-H", "127.0.0.1", "-p", str(store.port)]
    # the control plane of an image with both launchers runs its own
    aws = DockerMoto("aws", tmp_path / "aws", placement=_placement(), image=OURS)
    assert list(_spec(aws).entrypoint) == LAUNCHER
    # a label on an image that is not moto's does not make it the launcher
    minio = ResolvedImage("object_store", "x", "x", ZERO, "minio", object_store="listed-once")
    assert not minio.has_object_store_launcher


def test_versions_say_which_control_plane_runs(tmp_path: Path) -> None:
    for image, expected in ((OURS, "behind AWS's preconditions"), (FOREIGN, "plain moto_server")):
        stack = DockerStack(kit=KIT)
        stack.resolved = {"aws": image}
        stack.components["aws"] = DockerMoto(
            "aws", tmp_path / image.name.replace("/", "_"), placement=_placement(), image=image
        )
        assert expected in stack.versions()["aws"]


class _Image:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.id = ZERO
        self.labels = labels
        self.name = name


class _Images:
    def __init__(self, images: dict[str, dict[str, str]]) -> None:
        self.images = images

    def get(self, name: str) -> _Image:
        from docker.errors import ImageNotFound

        if name not in self.images:
            raise ImageNotFound(name)
        return _Image(name, self.images[name])


def test_resolving_images_reads_the_control_plane_label() -> None:
    present = {
        "postgres:15": {},
        "redis:7": {},
        "minio/minio": {},
        "runbook-checks/files-api:dev": {FLAVOUR_LABEL: "files-api"},  # the Files kit's
        "runbook-checks/moto:dev": {
            FLAVOUR_LABEL: "moto",
            CONTROL_PLANE_LABEL: "rules",
            OBJECT_STORE_LABEL: "listed-once",
        },
        "motoserver/moto": {},
    }
    client = cast(DockerClient, type("Client", (), {"images": _Images(present)})())
    twin = KIT.twin.image
    ours = resolve_images(
        client,
        ImageNames(aws="runbook-checks/moto:dev", object_store="runbook-checks/moto:dev", api=twin),
    )
    assert ours["aws"].has_launcher
    assert ours["object_store"].has_object_store_launcher
    foreign = resolve_images(
        client, ImageNames(aws="motoserver/moto", object_store="motoserver/moto", api=twin)
    )
    assert foreign["aws"].flavour == "moto"
    assert not foreign["aws"].has_launcher
    assert not foreign["object_store"].has_object_store_launcher


# -- what the moto image carries ----------------------------------------------------------


def staged_files() -> list[str]:
    """scripts/images.sh's LAUNCHER_FILES: what it copies into the moto image."""
    found = re.search(r"^LAUNCHER_FILES=\(\n(.*?)\n\)", IMAGES_SH.read_text(), re.M | re.S)
    assert found, "scripts/images.sh has no LAUNCHER_FILES=( ... ) list"
    return found.group(1).split()


IMPORT_ONLY = """
import json, sys
before = set(sys.modules)
import runbook_checks.stack.aws_control_plane
import runbook_checks.stack.object_store_server
new = set(sys.modules) - before
print(json.dumps({
    "ours": sorted(m.__file__ for n, m in sys.modules.items() if n.startswith("runbook_checks")),
    "others": sorted(
        {n.split(".")[0] for n in new} - set(sys.stdlib_module_names) - {"runbook_checks"}
    ),
}))
"""


def test_the_staged_files_are_exactly_what_the_launchers_import(tmp_path: Path) -> None:
    """Imported from a copy of the staged files alone (as in the image, where nothing else
    of the project exists): nothing missing, nothing staged that it does not import, and
    nothing imported beyond the standard library (moto is imported lazily, at start)."""
    staged = staged_files()
    for name in staged:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ONLY],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout: `-c` puts the working folder first on sys.path
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert sorted(str(Path(f).relative_to(tmp_path)) for f in loaded["ours"]) == sorted(staged)
    assert loaded["others"] == []
