"""The environment the drills run in. `create_stack(config)` picks the backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from runbook_checks.errors import StackError, UsageError

if TYPE_CHECKING:
    from runbook_checks.config import ChecksConfig
    from runbook_checks.stack.external import ExternalStack
    from runbook_checks.stack.local import LocalStack

S = TypeVar("S", bound="LocalStack | ExternalStack")


def create_stack(
    config: ChecksConfig, *, monitoring: bool | None = None
) -> LocalStack | ExternalStack:
    """A stack of the service the runbook's profile names (its `[profile] kit`).
    `monitoring`: the local and docker stacks' Prometheus and Alertmanager (None: unless
    switched off; False for a caller that never reads them)."""
    from runbook_checks.profile import find_profile

    kit = find_profile(config.runbook, config.profile).service_kit()
    if config.backend == "local":
        from runbook_checks.stack.local import LocalStack

        pool = {kit.twin.pool_size_setting: str(config.pool_size)}
        return LocalStack(kit=kit, api_settings=pool, monitoring=monitoring)
    if config.backend == "external":  # $RUNBOOK_CHECKS_ENVIRONMENT, else the profile's
        from runbook_checks.stack.external import ExternalStack, environment_file

        named = find_profile(config.runbook, config.profile).environment
        return ExternalStack.from_file(
            environment_file(named), kit=kit, evidence_dir=config.evidence_dir
        )
    if config.backend == "docker":  # containers; DockerStack is a LocalStack
        from runbook_checks.stack.docker.stack import DockerStack

        return DockerStack(
            kit=kit,
            images=config.images,
            network=config.docker_network,
            api_settings={kit.twin.pool_size_setting: str(config.pool_size)},
            monitoring=monitoring,
        )
    raise UsageError(
        f"the {config.backend!r} backend is not available yet",
        hint="use --backend local (the embedded default)",
    )


PORT_RACE = "address already in use"
START_ATTEMPTS = 3


def start_with_retry(make: Callable[[], S], attempts: int = START_ATTEMPTS) -> S:
    """A started stack from `make()`. A free port is only free when it is picked: another
    process (an outgoing connection's local port among them) can take it before the
    component binds it. Such a start fails with "Address already in use" in the
    component's log; the failed stack cleans up after itself, and a new one (new ports)
    is tried, up to `attempts` times (stack/ports.py keeps such races rare). Any other
    failure is raised at once."""
    for attempt in range(1, attempts + 1):
        stack = make()
        try:
            stack.start()
        except StackError as exc:
            if PORT_RACE not in str(exc).lower() or attempt == attempts:
                raise
            continue
        return stack
    raise AssertionError("unreachable")
