"""The image of each component: configured, present locally, never pulled.

Each component's image is an option (`--image-postgres`, ini `runbook_checks_image_postgres`,
`RUNBOOK_CHECKS_IMAGE_POSTGRES` ...). The defaults are the images users pull elsewhere
(postgres:15, minio/minio, redis:7, motoserver/moto) and the API twin's image built from
this repository. Where a default is not present locally, its air-gapped stand-in from
`make images` (`scripts/images.sh`) is used instead, and recorded as such; an image the
user chose explicitly is never replaced. An image that is missing is never pulled: the
backend stops before starting anything and says which images are missing and how to
build them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook_checks.config import IMAGE_COMPONENTS, OPTIONS, ImageNames
from runbook_checks.errors import StackError
from runbook_checks.stack.docker.checkout import SCRIPTS, how_to_run

if TYPE_CHECKING:
    from runbook_checks.stack.docker.engine import DockerClient

IMAGES_SCRIPT = SCRIPTS / "images.sh"  # a checkout's only (stack/docker/checkout.py)
FLAVOUR_LABEL = "org.runbook-checks.flavour"
HASH_LABEL = "org.runbook-checks.hash"
# a moto image that carries this project's AWS control plane launcher (docker/moto):
# `python -m runbook_checks.stack.aws_control_plane`, moto behind AWS's preconditions
CONTROL_PLANE_LABEL = "org.runbook-checks.control-plane"
CONTROL_PLANE_RULES = "rules"
# a moto image that carries the object store's launcher (docker/moto):
# `python -m runbook_checks.stack.object_store_server`, moto's server, its module folders
# listed once (stack/object_store_server.py)
OBJECT_STORE_LABEL = "org.runbook-checks.object-store"
OBJECT_STORE_LISTED_ONCE = "listed-once"

# the default image -> the stand-in `make images` builds for it (no registry needed)
STAND_INS = {
    "postgres:15": "runbook-checks/postgres:15",
    "minio/minio": "runbook-checks/moto:dev",
    "redis:7": "runbook-checks/redis:7",
    "motoserver/moto": "runbook-checks/moto:dev",
}
_FALLBACKS = {
    o.name.removeprefix("image_"): o.fallback for o in OPTIONS if o.name.startswith("image_")
}


@dataclass(frozen=True)
class ResolvedImage:
    component: str
    configured: str  # what the options asked for
    name: str  # what runs (the configured image, or its stand-in)
    image_id: str
    flavour: str  # how to start it: postgres, redis, moto, minio, twin
    control_plane: str = ""  # its CONTROL_PLANE_LABEL ("rules": it has the launcher)
    object_store: str = ""  # its OBJECT_STORE_LABEL ("listed-once": it has that launcher)

    @property
    def stand_in(self) -> bool:
        return self.name != self.configured

    @property
    def has_launcher(self) -> bool:
        """Does it carry the project's AWS control plane launcher (a moto image that
        `make images` built; a foreign motoserver/moto image does not)?"""
        return self.flavour == "moto" and self.control_plane == CONTROL_PLANE_RULES

    @property
    def has_object_store_launcher(self) -> bool:
        """Does it carry the object store's launcher (a moto image `make images` built
        since it has one; an older one, or motoserver/moto, runs plain `moto_server`)?"""
        return self.flavour == "moto" and self.object_store == OBJECT_STORE_LISTED_ONCE

    def describe(self) -> str:
        return f"{self.name} (stand-in for {self.configured})" if self.stand_in else self.name


# the stack's monitoring (Prometheus, Alertmanager, the exporters): Debian's packages in
# an image of `make images` (docker/monitoring), not a configurable component: where it is
# missing the stack runs without monitoring and says so
MONITORING_IMAGE = "runbook-checks/monitoring:dev"


def find_monitoring_image(client: DockerClient) -> ResolvedImage | str:
    """The monitoring image, or why the stack runs without it."""
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(MONITORING_IMAGE)
    except ImageNotFound:
        return (
            f"the monitoring image {MONITORING_IMAGE} is not built: "
            f"{how_to_run('images.sh', 'make images')} builds it without any registry"
        )
    return ResolvedImage(
        "monitoring", MONITORING_IMAGE, MONITORING_IMAGE, str(image.id), "monitoring"
    )


class MissingImages(StackError):
    """Images that are not present locally (and are never pulled)."""


def _flavour(component: str, name: str, labels: dict[str, str]) -> str:
    if labels.get(FLAVOUR_LABEL):
        return labels[FLAVOUR_LABEL]
    lowered = name.lower()
    if component in ("object_store", "aws"):
        return "minio" if "minio" in lowered else "moto"
    return {"postgres": "postgres", "redis": "redis", "api": "twin"}[component]


def candidates(component: str, configured: str) -> tuple[str, ...]:
    """The names to look for, in order: the configured image, then (for a default) its
    stand-in."""
    stand_in = STAND_INS.get(configured)
    if configured == _FALLBACKS.get(component) and stand_in:
        return (configured, stand_in)
    return (configured,)


def resolve_images(client: DockerClient, images: ImageNames) -> dict[str, ResolvedImage]:
    """Component -> the local image it runs; MissingImages naming every missing one."""
    from docker.errors import ImageNotFound

    found: dict[str, ResolvedImage] = {}
    missing: list[str] = []
    for component in IMAGE_COMPONENTS:
        configured = images.of(component)
        names = candidates(component, configured)
        for name in names:
            try:
                image = client.images.get(name)
            except ImageNotFound:
                continue
            labels = dict(image.labels or {})
            found[component] = ResolvedImage(
                component,
                configured,
                name,
                str(image.id),
                _flavour(component, name, labels),
                control_plane=labels.get(CONTROL_PLANE_LABEL, ""),
                object_store=labels.get(OBJECT_STORE_LABEL, ""),
            )
            break
        else:
            looked = " or ".join(names)
            missing.append(f"{component}: {looked}")
    if missing:
        raise MissingImages(
            "container images not present locally (the docker backend never pulls): "
            + "; ".join(missing),
            hint="build them without any registry: "
            f"{how_to_run('images.sh', 'make images')}; or "
            "pull them where a registry is reachable; or choose images that are present "
            "with --image-<component> / RUNBOOK_CHECKS_IMAGE_<COMPONENT>",
        )
    return found
