"""The docker backend's own scripts: in a source checkout only, never in the wheel.

`scripts/dockerd.sh` (the project's Docker engine) and `scripts/images.sh` (the images,
built from a debootstrapped Debian base with `docker/*/Dockerfile`, the Files twin's
source and the AWS control plane's launcher) work on a checkout: they read its
`.venv`, the twin's package and `docker/`. An installed copy does not carry them. What the
backend needs at run time is only an engine that answers and the images present in it,
so from an installed copy the docker backend runs where those exist (`DOCKER_HOST`, or
images built once from a checkout into the same engine), and where they do not, the
message says to make them from a checkout rather than naming a script that is not here.
"""

from __future__ import annotations

from pathlib import Path

# The checkout this package was imported from (site-packages for an installed wheel).
_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = _ROOT / "scripts"
FROM_A_CHECKOUT = (
    "from a source checkout of runbook-checks (git clone it; the installed package does "
    "not carry the docker backend's scripts and Dockerfiles)"
)


def script(name: str) -> Path | None:
    """`scripts/NAME` of the checkout this package runs from, or None when installed."""
    path = SCRIPTS / name
    return path if path.is_file() and (_ROOT / "docker").is_dir() else None


def how_to_run(name: str, command: str) -> str:
    """How to run `command` (`make images`, `scripts/dockerd.sh start`), said for here:
    with the script's path in a checkout, or where to get it when installed."""
    path = script(name)
    return f"`{command}` ({path})" if path else f"`{command}` {FROM_A_CHECKOUT}"
