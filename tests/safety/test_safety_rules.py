"""The safety rules without servers: production-likeness, the fault policy, the external
environment's config, stop-condition metrics, the audit log, deferred signals, and the
state file's record of live faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from files_profile import KIT
from runbook_checks import interrupts
from runbook_checks.clock import wait_until
from runbook_checks.errors import UsageError
from runbook_checks.faults.base import ACTIVE, AllOf, Fault, FaultHandle
from runbook_checks.faults.catalogue import CATALOGUE
from runbook_checks.faults.database import LongRunningQuery
from runbook_checks.faults.network import NetworkDown
from runbook_checks.faults.traffic import LoadIncrease
from runbook_checks.safety.audit import AuditLog
from runbook_checks.safety.guard import (
    Guard,
    Sample,
    StopCondition,
    Trip,
    evaluate,
    metric_value,
)
from runbook_checks.safety.policy import FAULT_RISK, Risk, production_signs, risk_of
from runbook_checks.stack import leftovers
from runbook_checks.stack.base import DUMMY_KEY
from runbook_checks.stack.external import EnvironmentConfig, ExternalStack
from tests.fake_stack import NoStackExtras

LOCAL = {"API": "http://127.0.0.1:8000", "database": "postgresql://u:pw@127.0.0.1:5432/f"}


# ------------------------------------------------------------------ production-likeness


@pytest.mark.parametrize(
    ("name", "addresses", "expected"),
    [
        ("staging", LOCAL, None),
        ("files-prod-eu", LOCAL, "its name 'files-prod-eu' says 'prod'"),
        ("production", LOCAL, "says 'production'"),
        ("live", LOCAL, "says 'live'"),
        ("delivery-staging", LOCAL, None),  # 'live' inside a word is not the word
        ("product-demo", LOCAL, None),
        ("qa", {"API": "https://api.prod.internal"}, "API host api.prod.internal says 'prod'"),
        ("qa", {"database": "postgresql://u:p@db-prd-1:5432/x"}, "says 'prd'"),
        ("staging", {"API": "https://files.acme-corp.com"}, "files.acme-corp.com is a public"),
        ("staging", {"API": "http://8.8.8.8:80"}, "8.8.8.8 is a public address"),
        ("staging", {"API": "https://files.staging.acme-corp.com"}, None),
        ("staging", {"database": "postgresql://u:p@10.1.2.3:5432/files"}, None),
        ("staging", {"database": "postgresql://u:p@192.168.1.9/files"}, None),
        ("staging", {"API": "http://files-api:8080"}, None),  # a docker network name
        ("staging", {"API": "http://files.internal"}, None),
        ("staging", {"API": "http://[::1]:8080"}, None),
        ("staging", {"API": "https://api.example.com"}, None),
    ],
)
def test_what_looks_like_production(
    name: str, addresses: dict[str, str], expected: str | None
) -> None:
    signs = production_signs(name, addresses)
    if expected is None:
        assert signs == []
    else:
        assert any(expected in sign for sign in signs), signs


# ------------------------------------------------------------------ the fault policy


def test_every_fault_of_the_catalogue_has_a_risk_on_shared_environments() -> None:
    assert set(CATALOGUE) <= set(FAULT_RISK), set(CATALOGUE) - set(FAULT_RISK)


def test_an_unknown_fault_kind_is_destructive() -> None:
    assert risk_of("something-new") is Risk.DESTRUCTIVE


def _config(tmp_path: Path, extra: str = "", name: str = "staging") -> EnvironmentConfig:
    path = tmp_path / "environment.toml"
    path.write_text(
        f'name = "{name}"\napi_url = "http://127.0.0.1:9"\n'
        'database_url = "postgresql://ops:s3cret-pw@127.0.0.1:9/files"\n'
        'admin_token = "admin-token-123456"\n' + extra
    )
    return EnvironmentConfig.load(path)


def test_destructive_faults_need_the_environments_opt_in(tmp_path: Path) -> None:
    fault = LongRunningQuery()
    plain = ExternalStack(_config(tmp_path), evidence_dir=tmp_path, kit=KIT)
    reason = plain.refusal(fault)
    assert reason is not None
    assert "destructive" in reason
    assert "'staging' has not opted in" in reason
    opted = ExternalStack(
        _config(tmp_path, '[safety]\ndestructive_faults = ["long-running-query"]\n'),
        evidence_dir=tmp_path,
        kit=KIT,
    )
    assert opted.refusal(fault) is None
    # a combination is refused when any part is
    assert opted.refusal(AllOf((fault, NetworkDown("redis")))) is None
    assert plain.refusal(AllOf((NetworkDown("redis"), fault))) is not None


def test_load_needs_a_hard_stop(tmp_path: Path) -> None:
    fault = LoadIncrease()
    assert "stop condition" in str(ExternalStack(_config(tmp_path), kit=KIT).refusal(fault))
    guarded = _config(tmp_path, '[[stop_conditions]]\nmetric = "p95_latency_ms"\nlimit = 800\n')
    assert ExternalStack(guarded, evidence_dir=tmp_path, kit=KIT).refusal(fault) is None


def test_capabilities_are_what_is_safe_there(tmp_path: Path) -> None:
    plain = ExternalStack(_config(tmp_path), evidence_dir=tmp_path, kit=KIT)
    assert {c.value for c in plain.capabilities} == {"data"}
    routed = ExternalStack(
        _config(tmp_path, '[proxy.postgres]\nlisten = "127.0.0.1:1"\nupstream = "db:5432"\n'),
        evidence_dir=tmp_path,
        kit=KIT,
    )
    assert {c.value for c in routed.capabilities} == {"data", "proxy"}
    for kind in ("process-kill", "disk-full", "bad-release"):
        fault = CATALOGUE[kind]
        assert not fault.requires <= routed.capabilities, kind


# ------------------------------------------------------------------ the config file


def test_config_values_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILES_ADMIN", "from-the-env-123")
    path = tmp_path / "e.toml"
    path.write_text(
        'name = "s"\napi_url = "http://127.0.0.1:1/"\ndatabase_url = "postgresql://x"\n'
        'admin_token = "${FILES_ADMIN}"\n'
    )
    config = EnvironmentConfig.load(path)
    assert config.admin_token == "from-the-env-123"
    assert config.api_url == "http://127.0.0.1:1"
    monkeypatch.delenv("FILES_ADMIN")
    with pytest.raises(UsageError, match=r"e\.toml: `admin_token` uses \$\{FILES_ADMIN\}"):
        EnvironmentConfig.load(path)


def test_s3_and_aws_keys_are_carried_to_the_endpoints_and_kept_out_of_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_SECRET", "s3-secret-from-the-env")
    path = tmp_path / "e.toml"
    path.write_text(
        'name = "s"\napi_url = "http://127.0.0.1:1"\ndatabase_url = "postgresql://x"\n'
        'admin_token = "admin-token-123"\ns3_access_key = "files-api"\n'
        's3_secret_key = "${S3_SECRET}"\n'
    )
    config = EnvironmentConfig.load(path)
    assert (config.s3_access_key, config.s3_secret_key) == ("files-api", "s3-secret-from-the-env")
    assert config.aws_secret_key == DUMMY_KEY  # not given: moto's dummy, and no secret
    redactor = config.redactor()
    assert "s3-secret-from-the-env" in redactor.secrets
    assert DUMMY_KEY not in redactor.secrets
    assert "s3-secret-from-the-env" not in redactor.text("signed with s3-secret-from-the-env")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "s"\n', "`api_url` is required"),
        ("name = [\n", "not a readable TOML"),
        (
            'name="s"\napi_url="x"\ndatabase_url="x"\nadmin_token="x"\n'
            '[safety]\ndestructive_faults = "all"\n',
            "must be a list of fault kinds",
        ),
        (
            'name="s"\napi_url="x"\ndatabase_url="x"\nadmin_token="x"\n'
            '[[stop_conditions]]\nmetric = "cpu"\nlimit = 1\n',
            "unknown metric 'cpu'",
        ),
        (
            'name="s"\napi_url="x"\ndatabase_url="x"\nadmin_token="x"\n'
            '[proxy.postgres]\nlisten = "nowhere"\n',
            "proxy.postgres.listen must be 'host:port'",
        ),
    ],
)
def test_a_bad_config_says_which_file_and_what(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        EnvironmentConfig.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_a_production_environment_is_refused_and_the_refusal_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_CHECKS_ALLOW_PRODUCTION", raising=False)
    stack = ExternalStack(
        _config(tmp_path, name="files-production"), evidence_dir=tmp_path, kit=KIT
    )
    with pytest.raises(UsageError, match="looks like production") as caught:
        stack.check_not_production()
    assert "production_override = 'files-production'" in str(caught.value)
    [entry] = stack.audit.entries()
    assert (entry.phase, entry.action) == ("refused", "start")
    # the explicit override: in the file, or in the environment
    overridden = _config(
        tmp_path, '[safety]\nproduction_override = "files-production"\n', "files-production"
    )
    ExternalStack(overridden, evidence_dir=tmp_path, kit=KIT).check_not_production()
    monkeypatch.setenv("RUNBOOK_CHECKS_ALLOW_PRODUCTION", "files-production")
    ExternalStack(_config(tmp_path, name="files-production"), kit=KIT).check_not_production()
    # an override names one environment: it does not carry over to another
    monkeypatch.setenv("RUNBOOK_CHECKS_ALLOW_PRODUCTION", "files-production")
    with pytest.raises(UsageError):
        ExternalStack(_config(tmp_path, name="prod-us"), kit=KIT).check_not_production()


# ------------------------------------------------------------------ stop conditions


def test_stop_condition_metrics() -> None:
    rate = StopCondition("health_error_rate", limit=0.5, window=4)
    ok, bad = Sample(True, 10.0), Sample(False, 5.0)
    assert metric_value(rate, [ok, ok]) is None  # too few samples for a verdict
    assert metric_value(rate, [bad, bad, ok, ok, ok, bad]) == 0.25  # the last 4 only
    assert evaluate([rate], {"/health": [ok, bad, bad, bad]}) is not None
    assert evaluate([rate], {"/health": [ok, bad, ok, bad]}) is None  # 0.5 is not > 0.5
    p95 = StopCondition("p95_latency_ms", limit=100, window=20, timeout_s=2)
    fast = [Sample(True, 10.0)] * 19
    assert metric_value(p95, [*fast, Sample(True, 500.0)]) == 10.0  # p95 of 20: the 19th
    assert metric_value(p95, [*fast[:17], Sample(False, 1.0)] * 1 + fast[:2]) == 10.0
    trip = evaluate([p95], {"/health": fast[:10] + [Sample(False, 3.0)] * 10})
    assert trip is not None
    assert trip.value == 2000.0  # a failed sample counts as its timeout
    assert "p95_latency_ms = 2e+03 crossed its limit 100" in trip.describe()


def test_a_guard_whose_requests_fail_oddly_still_trips() -> None:
    # any failure to get an answer is a failed sample, never the guard thread's end (a
    # dead guard would leave the faults it guards unguarded)
    tripped: list[Trip] = []
    guard = Guard(
        "http://[::1",  # httpx refuses this URL with InvalidURL, not an HTTPError
        [StopCondition("health_error_rate", limit=0.5, window=3, interval_s=0.01)],
        tripped.append,
    )
    guard.start()
    wait_until(lambda: bool(tripped), what="the guard to trip", timeout_s=10, interval_s=0.02)
    guard.stop()
    assert guard.tripped is tripped[0]
    assert "health_error_rate" in tripped[0].describe()


# ------------------------------------------------------------------ audit log


def test_audit_lines_are_redacted_and_durable(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = AuditLog(tmp_path / "audit" / "staging.jsonl", "staging", config.redactor())
    log.before("run", "psql postgresql://ops:s3cret-pw@db/files", "token admin-token-123456")
    log.refused("inject", "long-running-query", "not opted in")
    text = log.path.read_text()
    assert "s3cret-pw" not in text
    assert "admin-token-123456" not in text
    entries = log.entries()
    assert [(e.phase, e.action) for e in entries] == [("before", "run"), ("refused", "inject")]
    assert entries[0].pid == os.getpid()


# ------------------------------------------------------------------ signals


@pytest.fixture
def own_signals() -> Iterator[None]:
    """This process's interrupt state as it was (the plugin's handlers, no re-delivery of
    the signals this test sends itself, the session not marked interrupted)."""
    state = interrupts._SIGNALS
    previous = {s: signal.getsignal(s) for s in interrupts.HANDLED}
    received, persistent = list(state.received), state.persistent
    interrupts.install(persistent=False)
    try:
        yield
    finally:
        interrupts.acknowledge()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        state.received[:] = received
        state.deferred.clear()
        state.persistent = persistent


@pytest.mark.usefixtures("own_signals")
def test_signals_inside_a_shielded_block_wait_for_its_end() -> None:
    reached_end: list[bool] = []

    def shielded_block() -> None:
        with interrupts.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            reached_end.append(True)  # the block was not cut short

    with pytest.raises(KeyboardInterrupt):
        shielded_block()
    assert reached_end == [True]
    with interrupts.shielded(reraise=False):
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)


def test_the_cli_turns_sigterm_into_a_clean_exit(tmp_path: Path) -> None:
    """`runbook-checks` itself (no stack): SIGTERM while it runs exits 130, not -15."""
    script = (
        "import os, signal, sys\n"
        "from runbook_checks.interrupts import run_guarded\n"
        "def main():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    signal.sigtimedwait([], 1)\n"
        "    return 0\n"
        "sys.exit(run_guarded(main))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RUNBOOK_CHECKS_WORK_ROOT": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert "interrupted (SIGTERM); every fault reverted" in done.stderr


# ------------------------------------------------------------------ the state file


class _Recorded(Fault):
    kind = "recorded"

    def _inject(self, stack: object, handle: FaultHandle) -> None:
        state = stack.state  # type: ignore[attr-defined]
        handle.scratch["seen"] = json.loads(state.path.read_text())["faults"]


class _FakeStack(NoStackExtras):
    backend = "fake"
    capabilities: frozenset[object] = frozenset()

    def __init__(self, folder: Path) -> None:
        self.state = leftovers.StateFile(folder)
        self.state.write()


def test_a_fault_is_in_the_state_file_before_it_acts_and_gone_after_revert(
    tmp_path: Path,
) -> None:
    stack = _FakeStack(tmp_path)
    handle = _Recorded().inject(stack)  # type: ignore[arg-type]
    seen = handle.scratch["seen"]
    assert isinstance(seen, dict)
    assert [r["kind"] for r in seen.values()] == ["recorded"]
    assert handle in ACTIVE.handles
    handle.revert()
    assert json.loads(stack.state.path.read_text())["faults"] == {}
    assert handle not in ACTIVE.handles


def test_a_stopped_stack_abandons_its_faults_without_undoing_them(tmp_path: Path) -> None:
    stack = _FakeStack(tmp_path)
    undone: list[str] = []
    handle = _Recorded().inject(stack)  # type: ignore[arg-type]
    handle.did("something", lambda: undone.append("undo"))
    assert ACTIVE.abandon_stack(stack) == 1
    assert not handle.active
    assert undone == []
    handle.revert()  # a later revert is a no-op
    assert undone == []


def test_an_interrupted_revert_keeps_what_is_left_for_revert_all(tmp_path: Path) -> None:
    stack = _FakeStack(tmp_path)
    order: list[str] = []
    handle = _Recorded().inject(stack)  # type: ignore[arg-type]
    handle.did("first", lambda: order.append("first"))

    def interrupted() -> None:
        order.append("second (interrupted)")
        raise KeyboardInterrupt

    handle.did("second", interrupted)
    with pytest.raises(KeyboardInterrupt):
        handle.revert()
    assert handle.active  # not marked reverted: both steps are still to do
    handle._undo[-1] = ("second", lambda: order.append("second"))
    assert ACTIVE.revert_all() == []
    assert order == ["second (interrupted)", "second", "first"]


def test_cleanup_keeps_an_external_folder_whose_faults_it_cannot_revert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_CHECKS_WORK_ROOT", str(tmp_path))
    folder = leftovers.work_root() / "external-gone"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = leftovers.StateFile(folder, owner_pid=dead.pid, environment=str(tmp_path / "no.toml"))
    state.add_fault("1", {"kind": "long-running-query", "what": "a lock on storage_files"})
    report = leftovers.sweep()
    assert report.faults == ("a lock on storage_files",)
    assert report.problems
    assert "no such environment file" in report.problems[0]
    assert folder.exists()  # kept: the next cleanup tries again
