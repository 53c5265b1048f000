"""The members of the `Stack` protocol a fake stack has nothing for, as every backend
without them has them: no monitoring (and why), no state file, no fault proxies, no API
settings of its own, no API instances of its own, nothing to do when told of a fault
or a step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, ClassVar, cast

from files_profile import KIT
from runbook_checks.service import ServiceKit
from runbook_checks.stack.base import Endpoints
from runbook_checks.stack.proxy import ProxySet

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack
    from runbook_checks.stack.leftovers import StateFile
    from runbook_checks.stack.live import FaultView, LiveFault
    from runbook_checks.stack.monitoring import Monitoring


class NoStackExtras:
    """Mix into a fake stack; a fake overrides what its test needs."""

    monitoring: ClassVar[Monitoring | None] = None
    monitoring_missing: ClassVar[str] = ""  # no reason given
    state: StateFile | None = None
    proxies: ProxySet = ProxySet()  # empty: a fake that needs proxies sets its own
    api_env: dict[str, str] | None = None
    kit: ServiceKit = KIT  # the Files service's: the suite's own tests drill it

    def on_fault_event(self, event: str, fault: FaultView, handle: LiveFault | None) -> None:
        pass

    def on_step(self, line: int, text: str) -> None:
        pass

    def prepare(self, name: str) -> None:
        pass

    def on_step_done(self, line: int, outcome: object) -> None:
        pass

    def api_fleet(self) -> None:
        return None

    def servers_ended_unasked(self, besides: object = ()) -> list[str]:
        return []


NO_EXTRAS: dict[str, object] = {
    "monitoring": None,
    "monitoring_missing": NoStackExtras.monitoring_missing,
    "state": None,
    "proxies": ProxySet(),
    "api_env": None,
    "on_fault_event": lambda event, fault, handle: None,
    "on_step": lambda line, text: None,
    "on_step_done": lambda line, outcome: None,
    "prepare": lambda name: None,
    "kit": KIT,
    "api_fleet": lambda: None,
    "servers_ended_unasked": lambda besides=(): [],
}
"""The same, for a `SimpleNamespace` fake."""


def offline_stack(log_dir: Path, **extra: object) -> Stack:
    """A stack whose endpoints answer nothing (port 9), for tests that never reach it."""
    endpoints = Endpoints(
        api_url="http://127.0.0.1:9",
        database_url="postgresql://u:pw@127.0.0.1:9/db",
        app_database_url="",
        s3_endpoint="http://127.0.0.1:9",
        s3_bucket="b",
        redis_url="redis://127.0.0.1:9/0",
        aws_endpoint="http://127.0.0.1:9",
        aws_region="us-east-1",
        admin_token="admin-token-123",
        log_dir=log_dir,
    )
    return cast(
        "Stack", SimpleNamespace(endpoints=endpoints, backend="offline", **{**NO_EXTRAS, **extra})
    )
