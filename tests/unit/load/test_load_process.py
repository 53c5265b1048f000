"""Locust's command lines (pure): roles, bounds, no secret on the command line; and the
`load` subcommand's options and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.cli import build_parser, main
from runbook_checks.errors import UsageError
from runbook_checks.load.locust_process import LocustPlan, LocustRun, locust_argv, locust_env
from runbook_checks.load.runner import LoadSpec, new_run_folder

TOKEN = "s3cr3t-admin-token"


def plan(**changes: object) -> LocustPlan:
    values: dict[str, object] = {
        "host": "http://127.0.0.1:5000",
        "users": 20,
        "run_time_s": 60.0,
        "work_dir": Path("/tmp/run"),
        "locustfile": Path("/srv/service/loadtests/locustfile.py"),
        "shape": "step",
    }
    values.update(changes)
    return LocustPlan(**values)  # type: ignore[arg-type]


def test_standalone_with_a_shape() -> None:
    argv = locust_argv(plan(), "standalone")
    files = argv[argv.index("-f") + 1].split(",")
    assert files[0] == "/srv/service/loadtests/locustfile.py"  # the service's
    shapes = Path(files[1])  # the engine's, inside the package (an installed copy has it)
    assert shapes.is_file()
    assert shapes.parent == Path(locust_argv.__code__.co_filename).parent
    assert "class RunbookChecksShape(LoadTestShape)" in shapes.read_text(encoding="utf-8")
    assert argv[argv.index("--shape") + 1] == "step"
    assert argv[argv.index("--run-time") + 1] == "60s"
    assert "--headless" in argv
    assert argv[argv.index("--csv") + 1] == "/tmp/run/locust"
    assert "--csv-full-history" in argv
    assert argv[argv.index("--html") + 1] == "/tmp/run/locust.html"
    assert "--spawn-rate" not in argv  # the shape sets it


def test_fixed_users_without_a_shape() -> None:
    argv = locust_argv(plan(shape=None, spawn_rate=5.0, html=False), "standalone")
    assert len(argv[argv.index("-f") + 1].split(",")) == 1
    assert argv[argv.index("--spawn-rate") + 1] == "5"
    assert "--html" not in argv


def test_master_and_workers_on_loopback() -> None:
    p = plan(workers=2)
    master = locust_argv(p, "master", 5599)
    assert master[master.index("--expect-workers") + 1] == "2"
    assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"
    worker = locust_argv(p, "worker", 5599)
    assert worker[worker.index("--master-port") + 1] == "5599"
    assert "--csv" not in worker
    assert "--host" not in worker
    assert "--shape" not in worker
    assert p.deadline_s > p.run_time_s


def test_a_master_for_workers_on_other_machines() -> None:
    p = plan(workers=1, remote_workers=3, master_bind="10.0.0.5", master_port=5557)
    master = locust_argv(p, "master", 5557)
    assert master[master.index("--expect-workers") + 1] == "4"  # local and remote
    assert master[master.index("--master-bind-host") + 1] == "10.0.0.5"
    assert float(master[master.index("--expect-workers-max-wait") + 1]) >= 300
    run = LocustRun(p, TOKEN, run_id="r1")
    assert run.master_port == 5557
    assert run.worker_command().endswith(
        "-f /srv/service/loadtests/locustfile.py --worker --master-host 10.0.0.5 --master-port 5557"
    )
    assert TOKEN not in run.worker_command()


def test_the_admin_token_travels_in_the_environment_only() -> None:
    p = plan(wait_s=(0.1, 0.5))
    for role in ("standalone", "master", "worker"):
        assert all(TOKEN not in arg for arg in locust_argv(p, role, 1234))  # type: ignore[arg-type]
    env = locust_env(p, TOKEN, "run1")
    assert env["ADMIN_TOKEN"] == TOKEN
    assert env["LOAD_WAIT_S"] == "0.1,0.5"
    assert env["LOAD_TIMELINE_DIR"] == "/tmp/run/per-second"


def test_the_load_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["load", "--shape", "spike", "--users", "5"])
    assert (args.shape, args.users, args.workers, args.pool_size) == ("spike", 5, 0, "20")
    monkeypatch.setenv("RUNBOOK_CHECKS_POOL_SIZE", "50")
    assert build_parser().parse_args(["load"]).pool_size == "50"  # from the environment
    assert build_parser().parse_args(["load", "--pool-size", "2"]).pool_size == "2"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (LoadSpec(workers=40), "--workers 40"),
        (LoadSpec(host="http://staging:5000"), "--host needs --admin-token"),
        (LoadSpec(host="staging:5000", admin_token="t"), "expected an http"),
        (LoadSpec(host="http://s:1", admin_token="t", db_latency_ms=5), "embedded stack"),
        (LoadSpec(users=3000, shape="step"), "peaks at 6000"),
        (LoadSpec(pool_size=0), "--pool-size 0"),
        (LoadSpec(remote_workers=2), "cannot reach a master on 127.0.0.1"),
        (LoadSpec(), "no locustfile"),
        (LoadSpec(locustfile=Path("/nowhere/locustfile.py")), "no locustfile at /nowhere/"),
    ],
)
def test_specs_that_cannot_run_are_refused_before_anything_starts(
    spec: LoadSpec, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        spec.check()


def test_run_folders_are_named_by_utc_time_and_shape(tmp_path: Path) -> None:
    folder = new_run_folder(tmp_path, "step")
    stamp, rest = folder.name.split("-load-")
    assert len(stamp) == 16
    assert stamp.endswith("Z")
    assert rest.startswith("step-")


def test_load_without_a_locustfile_says_so_once_before_any_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The locustfile is the service's: a runbook whose profile names none, and no
    --locustfile, is one error (exit 2) and no evidence folder."""
    runbook = tmp_path / "runbook.md"
    runbook.write_text("# Payments\n\n## SEV-2: slow\n\np95 above 2 seconds\n")
    (tmp_path / "runbook.runbook-checks.toml").write_text('[profile]\nname = "payments"\n')
    evidence = tmp_path / "evidence"
    argv = ["load", "--runbook", str(runbook), "--evidence-dir", str(evidence)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert f"{runbook}: no locustfile" in err
    assert "--locustfile" in err
    assert not evidence.exists()
    assert main([*argv, "--locustfile", str(tmp_path / "gone.py")]) == 2
    assert "--locustfile " + str(tmp_path / "gone.py") + ": no such file" in capsys.readouterr().err
