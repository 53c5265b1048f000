"""The Files API under realistic use: free and pro users listing, uploading, downloading,
sharing, and the people they share with opening the links.

The Files runbook's profile names this folder (`[profile] load = "../loadtests"`). Run it
with the suite's runner (`runbook-checks load ...`, which adds a load shape, the pool
sampler and the runbook's thresholds), or with locust directly (the shapes are the
engine's: runbook_checks/load/locust_shapes.py of the installed package):

    SHAPES=$(python -c 'import runbook_checks.load as m; print(m.__path__[0])')/locust_shapes.py
    ADMIN_TOKEN=... locust -f loadtests/locustfile.py,$SHAPES \
        --host http://127.0.0.1:5000 --headless --shape step --users 20 --run-time 60s

Environment:
    ADMIN_TOKEN        the API's admin token; each simulated user signs up through
                       POST /admin/users on start and gets its own bearer token (required)
    LOAD_RUN_ID        tags the e-mail addresses of the users created (default: random)
    LOAD_WAIT_S        think time between two actions, "min,max" seconds (default 0.5,2.5)
    LOAD_TIMELINE_DIR  when set, per-second request records go to timeline-<pid>.jsonl
                       there (see per_second.py)
    LOAD_ONLY          one task of the mix only (list, download, open_share, upload,
                       share, health): what the benchmark uses to measure one endpoint

A user past MAX_FILES files deletes its oldest one, so a long run keeps the store bounded.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner
from per_second import PerSecondWriter
from user_mix import (
    MAX_FILES,
    PLAN_WEIGHTS,
    TASK_WEIGHTS,
    file_name,
    multipart,
    payload,
    upload_size,
    wait_range,
)

log = logging.getLogger("loadtests")

RUN_ID = os.environ.get("LOAD_RUN_ID") or uuid.uuid4().hex[:8]
WAIT_S = wait_range(os.environ.get("LOAD_WAIT_S"))
MAX_SHARES = 20


class _Counters:
    ready_users = 0  # users that signed up and hold a token, in this process


class FilesUser(FastHttpUser):
    """One person with an account: signs up through the admin API, then uses the app."""

    abstract = True
    plan = "free"
    wait_time = between(*WAIT_S)
    connection_timeout = 10.0
    network_timeout = 60.0

    def on_start(self) -> None:
        self.rng = random.Random()
        self.token: str | None = None
        self.files: list[str] = []  # ids, oldest first
        self.shares: list[tuple[str, str]] = []  # (token, file id)
        self._sign_up()

    def on_stop(self) -> None:
        if self.token is not None:
            _Counters.ready_users -= 1
            self.token = None

    # ------------------------------------------------------------------ helpers

    def _sign_up(self) -> None:
        email = f"load-{RUN_ID}-{uuid.uuid4().hex[:12]}@loadtest.invalid"
        response = self.client.post(
            "/admin/users",
            json={"email": email, "subscription_tier": self.plan},
            headers={"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"},
            name="/admin/users",
        )
        if response.status_code == 201:
            self.token = response.json()["token"]
            _Counters.ready_users += 1

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _ready(self) -> bool:
        """Signed up; a user whose sign-up failed (the API was down) tries again instead."""
        if self.token is None:
            self._sign_up()
        return self.token is not None

    # ------------------------------------------------------------------ the mix

    @task(TASK_WEIGHTS["list"])
    def list_files(self) -> None:
        if self._ready():
            self.client.get("/api/storage/files", headers=self.auth, name="/api/storage/files")

    @task(TASK_WEIGHTS["upload"])
    def upload(self) -> None:
        if not self._ready():
            return
        name, content_type = file_name(self.rng)
        body, header = multipart(
            "file", name, content_type, payload(upload_size(self.rng, self.plan))
        )
        response = self.client.post(
            "/api/storage/files/upload",
            data=body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers={**self.auth, "Content-Type": header},
            name="/api/storage/files/upload",
        )
        if response.status_code in (201, 202):
            self.files.append(response.json()["id"])
        if len(self.files) > MAX_FILES:
            self._delete_oldest()

    def _delete_oldest(self) -> None:
        file_id = self.files.pop(0)
        self.shares = [s for s in self.shares if s[1] != file_id]
        self.client.delete(
            f"/api/storage/files/{file_id}", headers=self.auth, name="/api/storage/files/[id]"
        )

    @task(TASK_WEIGHTS["download"])
    def download(self) -> None:
        if not self._ready():
            return
        if not self.files:
            self.upload()
            return
        file_id = self.rng.choice(self.files)
        self.client.get(
            f"/api/storage/files/{file_id}/download",
            headers=self.auth,
            name="/api/storage/files/[id]/download",
        )

    @task(TASK_WEIGHTS["share"])
    def share(self) -> None:
        if not self._ready():
            return
        if not self.files:
            self.upload()
            return
        file_id = self.rng.choice(self.files)
        permission = self.rng.choice(("view", "download"))
        response = self.client.post(
            f"/api/storage/files/{file_id}/shares",
            json={"permission": permission},
            headers=self.auth,
            name="/api/storage/files/[id]/shares",
        )
        if response.status_code == 201:
            self.shares.append((response.json()["token"], file_id))
            del self.shares[:-MAX_SHARES]

    @task(TASK_WEIGHTS["open_share"])
    def open_share(self) -> None:
        """Someone the user sent a link to opens it: no account, no token."""
        if not self.shares:
            self.share()
            return
        token, _ = self.rng.choice(self.shares)
        self.client.get(f"/share/{token}", name="/share/[token]")

    @task(TASK_WEIGHTS["health"])
    def health(self) -> None:
        self.client.get("/health", name="/health")


# LOAD_ONLY=<task> keeps one task of the mix (benchmarks measure one endpoint at a time).
_ONLY = os.environ.get("LOAD_ONLY")
if _ONLY:
    _METHODS = {"list": "list_files", "download": "download", "open_share": "open_share",
                "upload": "upload", "share": "share", "health": "health"}  # fmt: skip
    if _ONLY not in _METHODS:
        raise SystemExit(f"LOAD_ONLY={_ONLY!r}: expected one of {', '.join(_METHODS)}")
    FilesUser.tasks = [getattr(FilesUser, _METHODS[_ONLY])]


class FreeUser(FilesUser):
    plan = "free"
    weight = PLAN_WEIGHTS["free"]


class ProUser(FilesUser):
    plan = "pro"
    weight = PLAN_WEIGHTS["pro"]


# ---------------------------------------------------------------------- per-second records


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return  # requests happen on the workers
    if not os.environ.get("ADMIN_TOKEN"):
        log.error(
            "ADMIN_TOKEN is not set: users sign up through POST /admin/users with it; "
            "export ADMIN_TOKEN=<the API's admin token> and run again"
        )
        sys.exit(2)
    folder = os.environ.get("LOAD_TIMELINE_DIR")
    if not folder:
        return
    writer = PerSecondWriter(Path(folder) / f"timeline-{os.getpid()}.jsonl")

    def on_request(
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None,
        start_time: float | None = None,
        **__: Any,
    ) -> None:
        elapsed_ms = response_time or 0.0
        done_at = (start_time or time.time() - elapsed_ms / 1000) + elapsed_ms / 1000
        writer.record(done_at, request_type, name, elapsed_ms, exception is not None)

    def every_second() -> None:
        while True:
            now = time.time()
            runner = environment.runner
            writer.users(now, runner.user_count if runner else 0, _Counters.ready_users)
            writer.flush(before_s=now - 1)
            gevent.sleep(1.0 - now % 1.0)

    def on_quitting(**__: Any) -> None:
        loop.kill(block=False)
        writer.close()

    environment.events.request.add_listener(on_request)
    environment.events.quitting.add_listener(on_quitting)
    loop = gevent.spawn(every_second)
