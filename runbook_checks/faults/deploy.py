"""Deploy faults: the API restarted as a release whose configuration is broken.

A bad deploy is a restart with new settings, so this is where the API's settings are
changed and restored for every fault that needs a different configuration (a small
quota, a short upload timeout, a small pool):

- `change_api_settings` reads the API's current settings, registers their exact restore
  on the handle *before* restarting (a restart that fails half-way is still undone),
  then restarts the API with the changes;
- `restore_api_settings` restarts the API with the old values only when they differ
  from what it runs now, so a revert after a rollback (or twice) does nothing. A setting
  that was not set before is restored as "not set" (the twin reads a blank value as
  unset, and the entry is removed from the stack's record of the settings).

The settings are read from `stack.api.settings` (the local backend's record of the API's
environment); a backend that carries the RECONFIGURE capability must expose the same.

`BadRelease` records the release it replaced, so `rollback(stack)` (what the drill runs
for the runbook's `npm run deploy:rollback`) and the fault's revert both bring the
previous release back; whichever runs second finds nothing left to do.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from runbook_checks.errors import StackError, UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.stack.base import Capability, Stack

__all__ = [
    "BREAKAGES",
    "ApiSettings",
    "BadRelease",
    "Breakage",
    "api_settings",
    "change_api_settings",
    "restore_api_settings",
    "rollback",
]


# ------------------------------------------------------------------------- API settings


def api_settings(stack: Stack) -> dict[str, str]:
    """A copy of the API's current settings (its environment as the stack starts it)."""
    settings = stack.api_env
    if settings is None:
        raise FaultError(
            f"cannot read the API's settings on the {stack.backend} backend, so a restart "
            "with other settings could not be undone exactly",
            hint="faults that reconfigure the API run on the local backend",
        )
    return {str(k): str(v) for k, v in settings.items()}


def redact(value: str) -> str:
    """A setting's value safe for notes and evidence: URL passwords replaced by ***."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return value
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _show(values: Mapping[str, str | None]) -> str:
    return ", ".join(
        f"{k}={'(not set)' if v is None else redact(v)}" for k, v in sorted(values.items())
    )


def _restart_with(stack: Stack, values: Mapping[str, str | None]) -> None:
    """Restart the API with `values`; None means "not set"."""
    try:
        stack.restart_api(**{k: "" if v is None else v for k, v in values.items()})
    finally:
        settings = stack.api_env
        if settings is not None:
            for name, value in values.items():
                if value is None:
                    settings.pop(name, None)


def restore_api_settings(stack: Stack, previous: Mapping[str, str | None]) -> str:
    """Bring the API back to `previous` (name -> value, None = not set); returns what was
    done. Restarts only when a value differs, or when the API is not answering."""
    current = api_settings(stack)
    differs = {k: v for k, v in previous.items() if current.get(k) != v}
    api = stack.component("api")
    if not differs:
        if api.is_ready():
            return f"API settings already {_show(previous)}"
        _restart_with(stack, {})
        return f"API settings already {_show(previous)}; restarted the API (it was down)"
    _restart_with(stack, previous)
    return f"restarted the API with {_show(differs)}"


def change_api_settings(
    stack: Stack,
    handle: FaultHandle,
    changes: Mapping[str, str],
    *,
    why: str,
    must_start: bool = True,
) -> dict[str, str | None]:
    """Restart the API with `changes`, the exact restore registered first; returns the
    previous values (None = was not set). With `must_start=False` an API that exits at
    start is expected: the failure is recorded in the notes instead of raised."""
    before = api_settings(stack)
    previous: dict[str, str | None] = {k: before.get(k) for k in changes}
    handle.did(
        f"API settings before: {_show(previous)}",
        lambda: handle.notes.append(restore_api_settings(stack, previous)),
        f"restart the API with {_show(previous)}",
    )
    try:
        stack.restart_api(**changes)
    except StackError as exc:
        if must_start:
            raise
        first = str(exc).strip().splitlines()[0]
        handle.did(f"restarted the API with {_show(changes)} ({why}); it did not start: {first}")
    else:
        handle.did(f"restarted the API with {_show(changes)} ({why})")
    return previous


# ------------------------------------------------------------------------- bad release


@dataclass(frozen=True)
class Breakage:
    """One way a release's configuration is broken."""

    summary: str
    settings: Callable[[Mapping[str, str]], dict[str, str]]  # current settings -> changes
    starts: bool  # does the API come up at all (and then fail requests)?
    log_shows: str = ""  # what the API's output says when it exits at start


def _closed_port_url(current: Mapping[str, str]) -> dict[str, str]:
    parts = urlsplit(current.get("DATABASE_URL", "postgresql://files@127.0.0.1:5432/files"))
    host = parts.netloc.rsplit("@", 1)
    auth = f"{host[0]}@" if len(host) == 2 else ""
    # port 1 on the same host: nothing listens, every connection is refused
    return {"DATABASE_URL": urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:1"))}


def _wrong_password_url(current: Mapping[str, str]) -> dict[str, str]:
    parts = urlsplit(current.get("DATABASE_URL", "postgresql://files@127.0.0.1:5432/files"))
    user = parts.username or "files_app"
    netloc = f"{user}:rotated-away-in-this-release@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return {"DATABASE_URL": urlunsplit(parts._replace(netloc=netloc))}


BREAKAGES: Mapping[str, Breakage] = {
    "crash": Breakage(
        "S3_ENDPOINT_URL without its scheme: the API refuses the setting and exits at start "
        "(a crash loop under a supervisor)",
        lambda _: {"S3_ENDPOINT_URL": "storage.internal:9000"},
        starts=False,
        log_shows="bad configuration: S3_ENDPOINT_URL",
    ),
    "db-url": Breakage(
        "DATABASE_URL pointing at a port nothing listens on: the API starts, /health and "
        "every request that needs the database answer 503 (ECONNREFUSED)",
        _closed_port_url,
        starts=True,
    ),
    "db-password": Breakage(
        "DATABASE_URL with a password the database does not accept: the API starts, every "
        "request that needs the database answers 503",
        _wrong_password_url,
        starts=True,
    ),
}


@dataclass
class _Deployment:
    stack: Stack
    release: str
    previous_release: str
    previous: dict[str, str | None]
    handle: FaultHandle
    rolled_back: bool = False


_DEPLOYED: list[_Deployment] = []
_DEPLOYED_LOCK = threading.Lock()


def _forget(deployment: _Deployment) -> None:
    with _DEPLOYED_LOCK:
        if deployment in _DEPLOYED:
            _DEPLOYED.remove(deployment)


@dataclass(frozen=True)
class BadRelease(Fault):
    """The API restarted as release `release` whose configuration is broken the way bad
    deploys are (`breakage`: one of BREAKAGES); `rollback(stack)` restores the previous
    release."""

    kind: ClassVar[str] = "bad-release"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.RECONFIGURE})

    release: str = "2024.01.15-bad"
    breakage: str = "crash"

    def __post_init__(self) -> None:
        if self.breakage not in BREAKAGES:
            raise UsageError(
                f"{self.kind}: unknown breakage {self.breakage!r}; expected one of "
                f"{', '.join(BREAKAGES)}"
            )
        if not self.release.strip():
            raise UsageError(f"{self.kind}: the release needs a name")

    def describe(self) -> str:
        return (
            f"deploy release {self.release} with a broken configuration "
            f"({self.breakage}: {BREAKAGES[self.breakage].summary})"
        )

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        breakage = BREAKAGES[self.breakage]
        current = api_settings(stack)
        twin = stack.kit.twin
        changes = {twin.release_setting: self.release, **breakage.settings(current)}
        previous = change_api_settings(
            stack, handle, changes, why=f"bad release ({self.breakage})", must_start=breakage.starts
        )
        deployment = _Deployment(stack, self.release, twin.release(current), previous, handle)
        with _DEPLOYED_LOCK:
            _DEPLOYED.append(deployment)
        handle.did(
            f"release {self.release} deployed over {deployment.previous_release}",
            functools.partial(_forget, deployment),
            "forget the deployment",
        )
        api = stack.component("api")
        if not breakage.starts:
            if api.is_running():
                raise FaultError(
                    f"{self.describe()}: the API is still running, so the release did not "
                    "break it as intended",
                    hint=f"check how {stack.kit.twin.label} validates its settings at start",
                )
            tail = api.log_tail(20)
            if breakage.log_shows and breakage.log_shows not in tail:
                raise FaultError(
                    f"{self.describe()}: the API exited at start, but its output does not "
                    f"say {breakage.log_shows!r}; last lines:\n{tail}"
                )
            handle.did(f"the API exited at start: {_line_with(tail, breakage.log_shows)}")


def _line_with(text: str, needle: str) -> str:
    for line in text.splitlines():
        if needle and needle in line:
            return line.strip()
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


def deployed_releases(stack: Stack) -> list[str]:
    """The releases deployed on `stack` by BadRelease, oldest first (the one each
    replaced, then each one): the deployment repository's history, as `git` sees it."""
    with _DEPLOYED_LOCK:
        live = [d for d in _DEPLOYED if d.stack is stack]
    if not live:
        return []
    return [live[0].previous_release, *(d.release for d in live)]


def rollback(stack: Stack) -> str:
    """Roll the latest bad release on `stack` back to the release it replaced (the
    drill's stand-in for `npm run deploy:rollback`); returns what was done."""
    with _DEPLOYED_LOCK:
        live = [d for d in _DEPLOYED if d.stack is stack and not d.rolled_back]
    if not live:
        raise FaultError(
            "nothing to roll back: no bad release is deployed on this stack",
            hint="inject BadRelease first; rollback restores the release it replaced",
        )
    deployment = live[-1]
    done = restore_api_settings(stack, deployment.previous)
    deployment.rolled_back = True
    deployment.handle.notes.append(f"rolled back by rollback(): {done}")
    return f"rolled back release {deployment.release} to {deployment.previous_release}: {done}"


@dataclass(frozen=True)
class ApiSettings(Fault):
    """The API restarted with other settings (a config change: a smaller pool, a shorter
    timeout); revert restarts it with exactly the previous values."""

    kind: ClassVar[str] = "api-settings"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.RECONFIGURE})

    settings: tuple[tuple[str, str], ...] = ()
    why: str = "a configuration change"

    def __post_init__(self) -> None:
        if not self.settings:
            raise UsageError(f"{self.kind}: name at least one setting to change")

    def describe(self) -> str:
        return f"API restarted with {_show(dict(self.settings))} ({self.why})"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        change_api_settings(stack, handle, dict(self.settings), why=self.why)
