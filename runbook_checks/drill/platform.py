"""The platform the runbook's kubectl / heroku / npm / git lines act on, on the stack.

`StackPlatform` implements runbook_checks.steps.platform.Platform over a stack: the
deployment `api` is the stack's API instances (behind its balancer), the Heroku app is
the API's settings, the npm scripts are the deployment pipeline's (`deploy:rollback`
redeploys the release a bad one replaced), and the deployment repository's history is the
releases deployed on the stack. Every name and value comes from the runbook's text; what
the platform would refuse (an unknown deployment or script, a revision the history does
not have, a database host the stack does not know, a value cut short) is refused here,
in the platform's own words, so a wrong line fails the drill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runbook_checks.faults.deploy import api_settings, deployed_releases, rollback
from runbook_checks.runbook.platform import cut_short
from runbook_checks.stack.base import Component, Stack
from runbook_checks.steps.platform import PlatformError

DEPLOYMENT = "api"  # the one deployment the stack runs
APP_DEFAULT = ""  # `heroku ...` without -a: the app of the current folder, the API
SCRIPTS = ("deploy:rollback",)


@dataclass
class StackPlatform:
    """What kubectl, heroku, npm and git act on, on `stack`.

    `database_hosts` maps host names a DATABASE_URL may name (as the runbook writes them:
    `replica-01`, `restored-db`) to the stack's PostgreSQL components; `setting_scale`
    scales numeric settings the way the drill scales the service (a pool of 50 in the
    runbook is 10 on a drill scaled 1/5)."""

    stack: Stack
    database_hosts: Mapping[str, str] = field(default_factory=dict)
    setting_scale: Mapping[str, float] = field(default_factory=dict)
    apps: tuple[str, ...] = (APP_DEFAULT,)
    checked_out: str = ""

    # -- kubectl ---------------------------------------------------------------------------
    def _deployment(self, name: str) -> None:
        if name != DEPLOYMENT:
            raise PlatformError(
                f'Error from server (NotFound): deployments.apps "{name}" not found',
                hint=f"the stack runs one deployment: {DEPLOYMENT}",
            )

    def restart_deployment(self, name: str) -> str:
        self._deployment(name)
        local = self.stack.api_fleet()
        if local is None:
            self.stack.restart_api()
            return f"deployment.apps/{name} restarted"
        for instance in local.api_instances():
            instance.restart()
        return f"deployment.apps/{name} restarted ({len(local.api_instances())} instance(s))"

    def scale_deployment(self, name: str, replicas: int) -> str:
        self._deployment(name)
        local = self.stack.api_fleet()
        if local is None:
            raise PlatformError(f"the {self.stack.backend} backend cannot scale the API")
        instances = local.api_instances()
        if replicas == 0:
            for instance in instances:
                instance.stop()
            return f"deployment.apps/{name} scaled (0 instances running)"
        primary = local.api
        if not primary.is_running():
            primary.start()
        running: list[Component] = [
            primary,
            *(i for i in instances if i is not primary and i.is_running()),
        ]
        fresh = []
        for index in range(len(running), replicas):
            extra = f"api-{index + 1}"
            stopped = {i.name: i for i in local.api_instances()}.get(extra)
            if stopped is None:
                fresh.append(extra)
                continue
            stopped.start()
            running.append(stopped)
        running.extend(local.add_registered_apis(fresh))  # at once, as pods come up
        for surplus in running[replicas:]:
            surplus.stop()
        return f"deployment.apps/{name} scaled ({replicas} instance(s) running)"

    # -- heroku ----------------------------------------------------------------------------
    def _app(self, app: str | None) -> None:
        if (app or APP_DEFAULT) not in self.apps:
            raise PlatformError(
                f" !    Couldn't find that app: {app}",
                hint="the stack's API is the app of the current folder (no -a)",
            )

    def set_config(self, app: str | None, settings: Mapping[str, str]) -> str:
        self._app(app)
        env: dict[str, str] = {}
        done = []
        for key, value in settings.items():
            short = cut_short(value)
            if short:
                raise PlatformError(f"config:set {key}: {short}", hint="write the full value")
            if key == "DATABASE_URL":
                done.append(self._database_url(value, env))
            elif key in self.setting_scale:
                scaled = _scaled(key, value, self.setting_scale[key])
                env[key] = scaled
                done.append(f"{key}={value} (applied as {scaled}: the drill's scale)")
            else:
                env[key] = value
                done.append(f"{key}={value}")
        # Heroku restarts the app's running dynos when its config changes; an app scaled
        # to zero only takes the new config for when it starts
        local = self.stack.api_fleet()
        if local is not None and not any(i.is_running() for i in local.api_instances()):
            if env:
                local.api.reconfigure(**env)
            return "set " + ", ".join(done) + "; the app has no running instance to restart"
        self.stack.restart_api(**env)
        return "set " + ", ".join(done) + "; restarted the app"

    def _database_url(self, value: str, env: dict[str, str]) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise PlatformError(f"DATABASE_URL {value!r} is not a postgres:// URL with a host")
        target = self.database_hosts.get(parts.hostname, parts.hostname)
        local = self.stack.api_fleet()
        if local is None:
            raise PlatformError(f"the {self.stack.backend} backend cannot repoint the database")
        try:
            port = local.route_database(target)
        except Exception as exc:
            raise PlatformError(
                f"DATABASE_URL names host {parts.hostname!r}, which is no database here: {exc}",
                hint=f"known hosts: {', '.join(sorted(self.database_hosts)) or 'none'}",
            ) from None
        current = urlsplit(api_settings(self.stack)["DATABASE_URL"])
        name = parts.path.lstrip("/") or current.path.lstrip("/")
        if name != current.path.lstrip("/") or (
            parts.username and parts.username != current.username
        ):
            # the written database or role: the app connects with it (and fails if wrong)
            netloc = current.netloc.rsplit("@", 1)
            user = parts.username or current.username or ""
            password = current.password or ""
            auth = f"{user}:{password}@" if password else f"{user}@"
            env["DATABASE_URL"] = f"{current.scheme}://{auth}{netloc[-1]}/{name}"
        return f"DATABASE_URL -> {parts.hostname} (the stack's {target} on 127.0.0.1:{port})"

    def restart_app(self, app: str | None) -> str:
        self._app(app)
        self.stack.restart_api()
        return "restarted the app"

    # -- npm / git -------------------------------------------------------------------------
    def run_script(self, tool: str, script: str) -> str:
        if script not in SCRIPTS:
            raise PlatformError(
                f'npm ERR! Missing script: "{script}"',
                hint=f"the deployment pipeline's scripts: {', '.join(SCRIPTS)}",
            )
        return rollback(self.stack)

    def checkout(self, revision: str) -> str:
        history = deployed_releases(self.stack) or [
            self.stack.kit.twin.release(api_settings(self.stack))
        ]
        # newest first, like a reflog: main@{0} is what is deployed, main@{1} the one before
        newest_first = list(reversed(history))
        base, _, rest = revision.partition("@{")
        if rest.endswith("}") and rest[:-1].isdigit():
            back = int(rest[:-1])
            if back >= len(newest_first):
                raise PlatformError(
                    f"fatal: log for '{base}' only has {len(newest_first)} entries",
                    exit_code=128,
                )
            self.checked_out = newest_first[back]
        elif revision in history:
            self.checked_out = revision
        else:
            raise PlatformError(
                f"error: pathspec '{revision}' did not match any file(s) known to git",
                exit_code=1,
                hint=f"releases: {', '.join(history)}",
            )
        return f"checked out {revision} = release {self.checked_out}"


def _scaled(key: str, value: str, factor: float) -> str:
    try:
        number = float(value)
    except ValueError:
        raise PlatformError(f"config:set {key}: {value!r} is not a number") from None
    return str(max(1, round(number * factor)))
