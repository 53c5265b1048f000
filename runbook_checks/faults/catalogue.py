"""The fault catalogue: every fault by its `kind`, and a table of them.

`CATALOGUE` maps each fault's `kind` (what `runbook-checks faults` and the evidence show)
to its class. It is written out rather than discovered, so reading this file tells what
exists; a unit test walks `runbook_checks.faults` and fails when a fault is missing here.

`describe_catalogue()` renders the table for the README and the CLI: kind, settings (the
dataclass fields with their defaults), required capabilities (per mode where a fault's
needs depend on its mode), and what it does (the first paragraph of its docstring).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from runbook_checks.faults.base import AllOf, Fault
from runbook_checks.faults.cache import ColdCache, RedisDown
from runbook_checks.faults.client import OversizedUpload, SlowClientUpload, UnusualUploads
from runbook_checks.faults.container import CpuLimit, MemoryLimit, _ContainerFault
from runbook_checks.faults.data import (
    FilePurged,
    FileSoftDeleted,
    ShareDownloadLimitReached,
    ShareExpired,
)
from runbook_checks.faults.database import (
    IdleInTransaction,
    LongRunningQuery,
    MaxConnections,
    MissingIndex,
)
from runbook_checks.faults.deploy import ApiSettings, BadRelease
from runbook_checks.faults.disk import DiskFull
from runbook_checks.faults.network import (
    NetworkBandwidth,
    NetworkBlackhole,
    NetworkDown,
    NetworkFault,
    NetworkLatency,
    NetworkReset,
)
from runbook_checks.faults.process import CrashLoop, ProcessFreeze, ProcessKill, ProcessStop
from runbook_checks.faults.storage import StorageOutage, StorageQuotaExceeded
from runbook_checks.faults.traffic import LoadIncrease
from runbook_checks.stack.base import Capability

__all__ = [
    "ABSTRACT",
    "CATALOGUE",
    "COMBINATORS",
    "CatalogueEntry",
    "catalogue_entries",
    "describe_catalogue",
]

_FAULTS: tuple[type[Fault], ...] = (
    # processes
    ProcessKill,
    ProcessStop,
    ProcessFreeze,
    CrashLoop,
    # network paths (fault proxy)
    NetworkLatency,
    NetworkBandwidth,
    NetworkBlackhole,
    NetworkReset,
    NetworkDown,
    # database
    LongRunningQuery,
    IdleInTransaction,
    MaxConnections,
    MissingIndex,
    # disk
    DiskFull,
    # object storage
    StorageOutage,
    StorageQuotaExceeded,
    # data
    ShareExpired,
    ShareDownloadLimitReached,
    FileSoftDeleted,
    FilePurged,
    # clients
    OversizedUpload,
    UnusualUploads,
    SlowClientUpload,
    # cache
    ColdCache,
    RedisDown,
    # deploys and configuration
    BadRelease,
    ApiSettings,
    # traffic
    LoadIncrease,
    # containers (the docker backend's engine: memory and CPU limits)
    MemoryLimit,
    CpuLimit,
    # several at once
    AllOf,
)

ABSTRACT: tuple[type[Fault], ...] = (Fault, NetworkFault, _ContainerFault)
"""Bases that are not faults of their own (not in the catalogue)."""

COMBINATORS: tuple[type[Fault], ...] = (AllOf,)
"""Faults made of other faults: they need what their parts need."""


def _by_kind(faults: tuple[type[Fault], ...]) -> dict[str, type[Fault]]:
    catalogue: dict[str, type[Fault]] = {}
    for fault in faults:
        if fault.kind in catalogue:
            raise TypeError(
                f"two faults share the kind {fault.kind!r}: "
                f"{catalogue[fault.kind].__name__} and {fault.__name__}"
            )
        catalogue[fault.kind] = fault
    return catalogue


CATALOGUE: Mapping[str, type[Fault]] = _by_kind(_FAULTS)


@dataclass(frozen=True)
class CatalogueEntry:
    kind: str
    name: str  # the class name, as scenarios import it
    module: str
    settings: str  # "target: str, headroom_mb: int = 4"
    requires: str  # "kill, proxy" or "down: proxy; kill: data, kill"
    summary: str  # the first paragraph of the docstring, on one line


def _settings(fault: type[Fault]) -> str:
    parts = []
    for f in dataclasses.fields(fault):
        text = f"{f.name}: {f.type}"
        if f.default is not dataclasses.MISSING:
            text += f" = {f.default!r}"
        parts.append(text)
    return ", ".join(parts) or "(none)"


def _names(needs: frozenset[Capability]) -> str:
    return ", ".join(sorted(c.value for c in needs)) or "(nothing)"


def _requires(fault: type[Fault]) -> str:
    if fault in COMBINATORS:
        return "what its parts need"
    by_mode: object = getattr(fault, "requires_by_mode", None)
    if isinstance(by_mode, Mapping):
        text = "; ".join(f"mode={mode}: {_names(needs)}" for mode, needs in by_mode.items())
    else:
        text = _names(fault.requires)
    if_set: object = getattr(fault, "requires_if_set", None)
    if isinstance(if_set, Mapping):
        text += "".join(
            f" (+ {_names(needs)} when {name} is set)" for name, needs in if_set.items()
        )
    return text


def _summary(fault: type[Fault]) -> str:
    doc = inspect.getdoc(fault) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def catalogue_entries() -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            kind,
            fault.__name__,
            fault.__module__.rsplit(".", 1)[-1],
            _settings(fault),
            _requires(fault),
            _summary(fault),
        )
        for kind, fault in CATALOGUE.items()
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe ends a Markdown table cell, even in code


def describe_catalogue(fmt: Literal["markdown", "text"] = "markdown") -> str:
    """The catalogue as a Markdown table (README) or as plain text (the CLI)."""
    entries = catalogue_entries()
    if fmt == "markdown":
        lines = ["| kind | settings | requires | what it does |", "|---|---|---|---|"]
        lines += [
            f"| `{e.kind}` ({e.module}.{e.name}) | `{_cell(e.settings)}` | {_cell(e.requires)} "
            f"| {_cell(e.summary)} |"
            for e in entries
        ]
        return "\n".join(lines) + "\n"
    blocks = [
        f"{e.kind}  ({e.module}.{e.name})\n  {e.summary}\n  settings: {e.settings}\n"
        f"  requires: {e.requires}"
        for e in entries
    ]
    return "\n\n".join(blocks) + "\n"
