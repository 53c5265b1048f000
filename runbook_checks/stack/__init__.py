"""The environment the drills run in. `create_stack(config)` picks the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_checks.errors import UsageError

if TYPE_CHECKING:
    from runbook_checks.config import ChecksConfig
    from runbook_checks.stack.external import ExternalStack
    from runbook_checks.stack.local import LocalStack


def create_stack(config: ChecksConfig) -> LocalStack | ExternalStack:
    if config.backend == "local":
        from runbook_checks.stack.local import LocalStack

        return LocalStack(api_settings={"DB_POOL_SIZE": str(config.pool_size)})
    if config.backend == "external":  # the environment file: $RUNBOOK_CHECKS_ENVIRONMENT
        from runbook_checks.stack.external import ExternalStack, environment_file

        return ExternalStack.from_file(environment_file(), evidence_dir=config.evidence_dir)
    if config.backend == "docker":  # containers; DockerStack is a LocalStack
        from runbook_checks.stack.docker.stack import DockerStack

        return DockerStack(
            images=config.images,
            network=config.docker_network,
            api_settings={"DB_POOL_SIZE": str(config.pool_size)},
        )
    raise UsageError(
        f"the {config.backend!r} backend is not available yet",
        hint="use --backend local (the embedded default)",
    )
