"""What may be done to an environment that is not ours, and whether it looks like production.

Every fault kind has a `Risk`. On the external backend only the first four are allowed by
default; `DESTRUCTIVE` kinds need the environment's own opt-in (its config lists them by
kind), and a kind this table does not know is destructive (deny by default).

`production_signs()` reads an environment's name and hosts the way a careful person
would: a name or host word like "prod" or "live", or a public address (a global IP, or a
DNS name outside the reserved and internal suffixes with no word like "staging" in it).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping

from runbook_checks.profile import host_of


class Risk(enum.StrEnum):
    TEST_ACCOUNTS = "test-accounts"  # changes rows of dedicated test accounts only
    CLIENT = "client"  # requests any client could send, as a test account
    BOUNDED_LOAD = "bounded-load"  # more traffic: allowed with a stop condition (hard stop)
    PROXY = "proxy"  # the environment's own path through the fault proxy it routes via
    DESTRUCTIVE = "destructive"  # touches everyone or shared state: per-environment opt-in
    COMBINED = "combined"  # several faults at once: each part is judged on its own


FAULT_RISK: Mapping[str, Risk] = {
    # data faults: one share link or file, checked to belong to a test account
    "share-expired": Risk.TEST_ACCOUNTS,
    "share-download-limit": Risk.TEST_ACCOUNTS,
    "file-soft-deleted": Risk.TEST_ACCOUNTS,
    "file-purged": Risk.TEST_ACCOUNTS,
    # clients: uploads by a drill user of its own
    "oversized-upload": Risk.CLIENT,
    "unusual-uploads": Risk.CLIENT,
    "slow-client-upload": Risk.CLIENT,
    # pool pressure, stopped by the environment's stop conditions
    "load-increase": Risk.BOUNDED_LOAD,
    # the fault proxy the environment routes through
    "network-latency": Risk.PROXY,
    "network-bandwidth": Risk.PROXY,
    "network-blackhole": Risk.PROXY,
    "network-reset": Risk.PROXY,
    "network-down": Risk.PROXY,
    # shared state or everyone's service
    "long-running-query": Risk.DESTRUCTIVE,
    "idle-in-transaction": Risk.DESTRUCTIVE,
    "max-connections": Risk.DESTRUCTIVE,
    "missing-index": Risk.DESTRUCTIVE,
    "disk-full": Risk.DESTRUCTIVE,
    "storage-outage": Risk.DESTRUCTIVE,
    "storage-quota-exceeded": Risk.DESTRUCTIVE,
    "cold-cache": Risk.DESTRUCTIVE,
    "redis-down": Risk.DESTRUCTIVE,
    "bad-release": Risk.DESTRUCTIVE,
    "process-kill": Risk.DESTRUCTIVE,
    "process-stop": Risk.DESTRUCTIVE,
    "process-freeze": Risk.DESTRUCTIVE,
    "crash-loop": Risk.DESTRUCTIVE,
    "api-settings": Risk.DESTRUCTIVE,
    "memory-limit": Risk.DESTRUCTIVE,  # an OOM-killed server
    "cpu-limit": Risk.DESTRUCTIVE,  # a starved server
    "all-of": Risk.COMBINED,
}


def risk_of(kind: str) -> Risk:
    return FAULT_RISK.get(kind, Risk.DESTRUCTIVE)


# ------------------------------------------------------------------ production-likeness

PRODUCTION_WORDS = frozenset({"prod", "production", "prd", "live"})
NON_PRODUCTION_WORDS = frozenset(
    {
        "staging",
        "stage",
        "stg",
        "dev",
        "development",
        "test",
        "testing",
        "qa",
        "sandbox",
        "preview",
        "uat",
        "demo",
        "drill",
        "local",
        "localhost",
        "ci",
    }
)
INTERNAL_SUFFIXES = (
    ".test",
    ".local",
    ".localhost",
    ".internal",
    ".lan",
    ".example",
    ".invalid",
    ".home.arpa",
    ".corp",
    ".intranet",
    ".private",
    "example.com",
    "example.net",
    "example.org",
)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    """Lower-case alphanumeric words ("files-prod-eu.db" -> files, prod, eu, db)."""
    return set(_WORD.findall(text.lower()))


def is_public_host(host: str) -> bool:
    """A host the public internet reaches: a global IP, or a DNS name that is neither
    reserved/internal nor marked as a non-production one."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    if not host or host == "localhost" or "." not in host:
        return False  # single-label names resolve inside a private network (docker, k8s)
    if host.endswith(INTERNAL_SUFFIXES):
        return False
    return not words(host) & NON_PRODUCTION_WORDS


def production_signs(name: str, addresses: Mapping[str, str]) -> list[str]:
    """Why an environment looks like production ([] when nothing does)."""
    signs: list[str] = []
    found = sorted(words(name) & PRODUCTION_WORDS)
    if found:
        signs.append(f"its name {name!r} says {found[0]!r}")
    for label, address in addresses.items():
        host = host_of(address) if address else ""
        if not host:
            continue
        found = sorted(words(host) & PRODUCTION_WORDS)
        if found:
            signs.append(f"the {label} host {host} says {found[0]!r}")
        elif is_public_host(host):
            signs.append(f"the {label} host {host} is a public address")
    return signs
