"""Which hosts the runbook's commands may reach, and the refusal for every other.

Every executor that connects somewhere (curl/http, psql/SQL, aws, pg_isready, redis-cli)
asks `Reach.refusal(host, what)` before it sends anything. Allowed are:

- the loopback interface (127.0.0.0/8, localhost, ::1): the local and docker stacks;
- what the runbook's profile allows (runbook_checks/profile.py): every address of the
  external environment it names (`[profile] environment = "FILE"`: API, database,
  object store, Redis, AWS, proxy upstreams), and every `[hosts]` value that is an
  address rather than a component.

Anything else is refused before a connection is made, naming the host and the profile
field that would allow it. The safety policy applies to what the profile allows: a host
that looks like production (a production word in its name, a public address) is refused
when the profile is read, unless the environment's `production_override` (or
$RUNBOOK_CHECKS_ALLOW_PRODUCTION) names the environment.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runbook_checks.errors import UsageError
from runbook_checks.profile import Profile, host_of
from runbook_checks.safety.policy import production_signs

LOOPBACK_NAMES = frozenset({"localhost", "::1"})
ENVIRONMENT_FIELD = "profile.environment"


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Reach:
    """The hosts beyond loopback a runbook's commands may reach: host -> the profile
    field that allows it; `profile` names the file (for the refusal's hint)."""

    hosts: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", MappingProxyType(dict(self.hosts)))

    @classmethod
    def of(cls, profile: Profile) -> Reach:
        """What `profile` allows; a UsageError for a production-looking host (the safety
        policy), naming the field that allows it."""
        allowed: dict[str, str] = {}
        name, override = profile.name, ""
        if profile.environment is not None:
            from runbook_checks.stack.external import OVERRIDE_VAR, EnvironmentConfig

            config = EnvironmentConfig.load(profile.environment)
            name, override = config.name, config.production_override
            override = override or os.environ.get(OVERRIDE_VAR, "")
            for address in config.addresses().values():
                host = host_of(address)
                if host and not is_loopback(host):
                    allowed.setdefault(host, ENVIRONMENT_FIELD)
        for host, source in profile.address_hosts().items():
            if not is_loopback(host):
                allowed.setdefault(host, source)
        where = (
            str(profile.source)
            if profile.source
            else "a profile beside the runbook (`runbook-checks init RUNBOOK` writes one)"
        )
        if override != name:
            for host, source in allowed.items():
                signs = production_signs("", {source: host})
                if signs:
                    raise UsageError(
                        f"{where}: {source}: {signs[0]}; runbook commands are not sent "
                        "to production",
                        hint="allow only a staging environment's hosts (or set the "
                        "environment's [safety] production_override to its name)",
                    )
        return cls(allowed, where)

    def refusal(self, host: str, what: str) -> str | None:
        """Why `host` may not be reached (None: it may). `what`: "database", "API" ..."""
        bare = host.strip("[]").lower()
        if is_loopback(bare) or bare in self.hosts:
            return None
        allowed = ", ".join(["127.0.0.1", *sorted(self.hosts)])
        where = self.profile or "the runbook's profile"
        return (
            f"refused: {what} host {bare or '(none)'} is not one the profile allows "
            f"(allowed: {allowed}); to reach it, add it to [hosts] in {where} "
            f'(NAME = "{bare}") or name its environment in [profile] environment'
        )


NOWHERE = Reach()  # loopback only
