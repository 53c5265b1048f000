"""Drilling a "staging" that is not loopback, through the runbook's profile.

The test makes a network namespace of its own (stack/staging.py: a veth pair and a /29),
runs `runbook-checks up --host ADDR` inside it (PostgreSQL, the S3 server, Redis, the AWS
control plane and the Files API twin, published on the namespace's address), and writes
a profile that describes that environment as external staging (`[profile] environment`,
its hosts allowed). The share-link drills then run with `--backend external` through that
profile: the runbook's own curl and psql lines reach the namespace's address (the step
records and the audit log say which host and how it ended), and hosts the profile does
not allow (the namespace's second address, another staging name) are refused before any
traffic. Needs root; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import httpx
import pytest

from runbook_checks.clock import FakeClock
from runbook_checks.profile import load_profile
from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.stack.external import ExternalStack
from runbook_checks.stack.forkserver import die_with_parent
from runbook_checks.stack.staging import (
    PREFIX,
    Namespace,
    cannot_make_namespaces,
    own_namespace,
    remove_namespace,
    sweep_namespaces,
)
from runbook_checks.steps.base import ExecContext, StepStatus
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.run import run_step

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        cannot_make_namespaces() is not None,
        reason=f"staging in a network namespace: {cannot_make_namespaces()}",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
CompletedText: TypeAlias = "subprocess.CompletedProcess[str]"
FILES_PROFILE = ROOT / "runbooks" / "files-incident-response.runbook-checks.toml"
UP_TIMEOUT_S = 90.0
SHARE_DRILLS = "test_sev3_share_links"  # every share-link scenario (its module)


CLI = [sys.executable, "-m", "runbook_checks.cli"]


def cli(*args: str, timeout_s: float = 60, env: dict[str, str] | None = None) -> CompletedText:
    """`runbook-checks ARGS` from the checkout, as a user runs it."""
    return subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env,
    )


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@dataclass(frozen=True)
class Staging:
    namespace: Namespace
    env: dict[str, str]  # what `up` printed as `export KEY='value'`


def _read_exports(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The `export` lines `up` prints once the stack is ready (a thread reads, so that a
    hung start fails at the deadline)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    env: dict[str, str] = {}
    while "ADMIN_TOKEN" not in env:
        try:
            line = lines.get(timeout=UP_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(
                "`up --host` printed nothing for 90 s:\n" + "".join(seen)
            ) from None
        if line is None:
            raise AssertionError("`up --host` ended before the stack was up:\n" + "".join(seen))
        seen.append(line)
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            env[key] = value.strip("'")
    return env


@pytest.fixture(scope="module")
def staging() -> Iterator[Staging]:
    sweep_namespaces()  # those of killed sessions
    namespace = Namespace.create()
    proc: subprocess.Popen[str] | None = None
    try:
        proc = subprocess.Popen(
            namespace.command([*CLI, "up", "--host", namespace.address]),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "RUNBOOK_CHECKS_MONITORING": "off"},
            preexec_fn=die_with_parent,  # a SIGKILLed session takes the stack along
        )
        yield Staging(namespace, _read_exports(proc))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        namespace.remove()
    assert namespace.name not in namespaces()


def write_staging_profile(folder: Path, staging: Staging) -> Path:
    """The environment file (external backend's format) and the Files profile naming it."""
    env = staging.env
    (folder / "staging.environment.toml").write_text(
        'name = "staging-netns"\n'
        f'api_url = "{env["API_URL"]}"\n'
        f'database_url = "{env["DATABASE_URL"]}"\n'
        f'admin_token = "{env["ADMIN_TOKEN"]}"\n'
        f's3_endpoint = "{env["S3_ENDPOINT_URL"]}"\n'
        f'redis_url = "{env["REDIS_URL"]}"\n'
        f'aws_endpoint = "{env["AWS_ENDPOINT_URL"]}"\n'
    )
    text = FILES_PROFILE.read_text()
    text = text.replace(
        'scenarios = "../scenarios"',
        f'scenarios = "{ROOT / "scenarios"}"\nenvironment = "staging.environment.toml"',
    ).replace('load = "../loadtests"', f'load = "{ROOT / "loadtests"}"')
    assert "environment = " in text
    assert str(ROOT / "loadtests") in text
    path = folder / "files-incident-response.runbook-checks.toml"
    path.write_text(text)
    return path


def test_the_stack_listens_on_the_namespace_address_not_loopback(staging: Staging) -> None:
    address = staging.namespace.address
    for key in ("API_URL", "DATABASE_URL", "S3_ENDPOINT_URL", "REDIS_URL", "AWS_ENDPOINT_URL"):
        assert f"@{address}:" in staging.env[key] or f"//{address}:" in staging.env[key], key
    assert httpx.get(staging.env["API_URL"] + "/health", timeout=5).json()["status"] == "ok"
    # this process is not in the namespace: `up --host` here is refused before it starts
    assert own_namespace() is None
    done = cli("up", "--host", address)
    assert done.returncode != 0
    assert "only inside a network namespace runbook-checks made" in done.stderr


def test_share_link_drills_reach_staging_through_the_profile(
    staging: Staging, tmp_path: Path
) -> None:
    profile = write_staging_profile(tmp_path, staging)
    evidence = tmp_path / "evidence"
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_CHECKS_ENVIRONMENT"}
    done = cli(
        *("drill", "--backend", "external", "--profile", str(profile)),
        *("--evidence-dir", str(evidence), "--", "-k", SHARE_DRILLS),
        timeout_s=300,
        env={**env, "RUNBOOK_CHECKS_MONITORING": "off"},
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    [bundle] = [p for p in evidence.iterdir() if (p / "journal.json").exists()]
    scenarios = json.loads((bundle / "journal.json").read_text())["scenarios"]
    assert len(scenarios) == 5
    outcomes = {s["outcome"] for s in scenarios}
    assert outcomes <= {"passed", "xfailed"}, outcomes  # verdicts the baseline accepts
    address = staging.namespace.address
    for scenario in scenarios:
        steps = [s for s in scenario["steps"] if s["phase"] == "investigation"]
        curl = [s for s in steps if s["written"].startswith("curl https://rolerabbit.com/share/")]
        psql = [s for s in steps if s["executed"].startswith("psql postgresql://")]
        assert curl, steps
        assert len(psql) == 2, steps  # the runbook's two psql lines
        for record in [*curl, *psql]:
            assert record["status"] == "ok", record
        assert all(f"@{address}:" in s["executed"] for s in psql), psql
    # the audit log: every runbook line before it ran, and after it what it reached
    audit = [json.loads(line) for line in (evidence / "audit" / "staging-netns.jsonl").open()]
    reached = [e for e in audit if (e["phase"], e["action"]) == ("after", "run step")]
    assert any(
        e["detail"].startswith("ok: curl") and f"-> http://{address}:" in e["detail"]
        for e in reached
    ), reached
    assert any(
        e["detail"].startswith("ok: psql") and f"@{address}:" in e["detail"] for e in reached
    )
    before = [e for e in audit if (e["phase"], e["action"]) == ("before", "run step")]
    assert len(before) >= len(reached) > 0
    assert [e for e in audit if e["phase"] == "refused"] == []
    injected = [e["target"] for e in audit if (e["phase"], e["action"]) == ("before", "inject")]
    assert sorted(injected) == [
        "file-purged",
        "file-soft-deleted",
        "share-download-limit",
        "share-expired",
        "share-expired",
    ]


def _step(text: str, kind: StepKind) -> Step:
    return Step(text=text, raw=text, line=9, language="bash", kind=kind, phase=Phase.INVESTIGATION)


def test_hosts_the_profile_does_not_allow_are_refused_and_audited(
    staging: Staging, tmp_path: Path
) -> None:
    """The namespace's second address serves nothing the profile names: curl, psql,
    pg_isready and redis-cli to it are refused before any traffic, and audited."""
    profile = load_profile(write_staging_profile(tmp_path, staging))
    assert profile.environment is not None
    spare = staging.namespace.spare_address
    port = staging.env["DB_PORT"]
    kit = profile.service_kit()
    with ExternalStack.from_file(
        profile.environment, kit=kit, evidence_dir=tmp_path / "ev"
    ) as stack:
        bindings = Bindings.from_stack(stack, tmp_path / "work", profile)
        ctx = ExecContext(stack, bindings, clock=FakeClock())
        allowed = run_step(_step("curl https://rolerabbit.com/health", StepKind.HTTP), ctx)
        assert allowed.status is StepStatus.OK, allowed.error
        assert allowed.http_status == 200
        refused = [
            run_step(_step(f"curl http://{spare}:{port}/health", StepKind.HTTP), ctx),
            run_step(
                _step(
                    f'psql "postgresql://files_app@{spare}:{port}/files" -c "SELECT 1"',
                    StepKind.SQL,
                ),
                ctx,
            ),
        ]
        for result in refused:
            assert result.status is StepStatus.ERROR
            assert f"host {spare} is not one the profile allows" in result.error
            assert f"add it to [hosts] in {profile.source}" in result.error
        elsewhere = Bindings.from_stack(stack, tmp_path / "work")  # no profile: loopback only
        bare = ExecContext(stack, elsewhere, clock=FakeClock())
        for text in ("pg_isready -h $DB_HOST -p 5432", "redis-cli PING"):
            result = run_step(_step(text, StepKind.SHELL), bare)
            assert result.status is StepStatus.ERROR
            assert f"host {staging.namespace.address} is not one the profile allows" in result.error
        entries = [e for e in stack.audit.entries() if e.phase == "refused"]
        assert len(entries) == 4
        assert all(
            e.action == "run step" and "is not one the profile allows" in e.detail for e in entries
        )


def test_cleanup_removes_the_namespace_of_a_dead_creator(tmp_path: Path) -> None:
    """A session killed before its teardown leaves its namespace (and whatever runs in
    it); `runbook-checks cleanup` removes it, and leaves a live creator's alone."""
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, subprocess\n"
            "from runbook_checks.stack.staging import Namespace\n"
            "ns = Namespace.create()\n"
            "subprocess.Popen(ns.command(['sleep', '300']), start_new_session=True,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(ns.name, flush=True)\n"
            "os._exit(0)\n",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    left = made.stdout.strip()
    mine = Namespace.create()  # this process is alive: not swept
    try:
        listed = namespaces()
        assert left in listed
        inside = subprocess.run(["ip", "netns", "pids", left], capture_output=True, text=True)
        assert inside.stdout.split(), "the sleeper runs inside the dead creator's namespace"
        done = cli("cleanup")
        assert f"network namespace(s): {left}" in done.stdout, done.stdout + done.stderr
        listed = namespaces()
        assert left not in listed
        assert mine.name in listed
    finally:
        mine.remove()
        if left.startswith(PREFIX) and left in namespaces():
            remove_namespace(left)  # what runs inside too
