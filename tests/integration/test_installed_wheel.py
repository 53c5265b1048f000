"""The built wheel, installed into an empty venv, works from a user's own folder.

The wheel is built from a copy of the checkout (what `pip wheel .` packs: pyproject.toml,
README.md and the packages setuptools finds), installed with its runtime extras
(`[load,docker]`, never `dev`) into a venv without system site-packages, from a local
wheelhouse only (`--no-index`). The wheelhouse holds this venv's own versions of the
runtime requirements (`pip freeze` as constraints); it is made once per lock, under
~/.cache/runbook-checks/wheelhouse/<hash of the freeze>/, so only its first fill reaches
the package index. Then, from another folder holding a copy of the runbook and its
baseline, the installed `runbook-checks` runs the commands that need no stack and no
scenarios (gate --offline, faults, alerts, verify-evidence) and must answer as the
checkout does, with no traceback. `drill` needs scenario modules, which the wheel does not
carry: from the user's folder without a profile it must say so once and exit 2; with the
Files profile naming the checkout's scenarios it collects every one of them (collection
only: no stack), as the checkout does.

Then the folder a team keeps (a copy of the runbook, its baseline, its profile, its
scenarios folder and its loadtests folder, the profile naming the copies): the installed
copy drills one share-link scenario for real on the embedded stack, runs a bounded load
(3 users, 5 s) with the copied locustfile and the runbook's thresholds, reviews that
drill's evidence (`report`) and lists the game day's scenarios, as the checkout does.
The docker backend's scripts are a checkout's: from the wheel, its messages say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbook_checks.evidence.manifest import write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "runbooks" / "files-incident-response.md"
BASELINE = RUNBOOK.with_name("files-incident-response.baseline.toml")
PROFILE = RUNBOOK.with_name("files-incident-response.runbook-checks.toml")
RUNTIME_EXTRAS = "load,docker"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    timings: dict[str, float]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _run(argv: list[str], *, cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    return done.stdout


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runbook-checks" / "wheelhouse"


def _source_copy(dest: Path) -> Path:
    """What `pip wheel .` packs, without the checkout's build/ and egg-info."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    packages = [p for p in REPO.iterdir() if p.is_dir() and any(p.match(pat) for pat in patterns)]
    assert {p.name for p in packages} >= {"runbook_checks", "files_api", "files_profile"}
    for package in packages:
        shutil.copytree(
            package, dest / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return dest


def _build_wheel(root: Path) -> Path:
    dist = root / "dist"
    _run([*PIP, "wheel", "-q", "--no-deps", "-w", str(dist), str(_source_copy(root / "src"))])
    (wheel,) = dist.glob("runbook_checks-*.whl")
    return wheel


def _wheelhouse(wheel: Path) -> Path:
    """Wheels of the runtime requirements at this venv's versions, cached per lock and
    runtime requirements."""
    freeze = _run([*PIP, "freeze", "--exclude-editable"])
    lock = "\n".join(
        line
        for line in freeze.splitlines()
        if not re.match(r"runbook[-_]checks\b", line) and " @ " not in line  # no direct URLs
    )
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"]]
    for extra in RUNTIME_EXTRAS.split(","):
        wanted += project["optional-dependencies"][extra]
    # the lock and what the wheel asks for: a new requirement means a new wheelhouse
    key = hashlib.sha256(
        f"{sys.version}\n{sys.platform}\n{sorted(wanted)}\n{lock}".encode()
    ).hexdigest()[:16]
    house = _cache_root() / key
    if (house / ".complete").exists():
        (house / ".complete").touch()  # in use: kept by the pruning below
        return house
    house.parent.mkdir(parents=True, exist_ok=True)
    filling = Path(f"{house}.{os.getpid()}.partial")
    constraints = Path(f"{house}.{os.getpid()}.txt")
    constraints.write_text(lock + "\n", encoding="utf-8")
    try:
        target = f"{wheel}[{RUNTIME_EXTRAS}]"
        _run([*PIP, "wheel", "-q", "-w", str(filling), "-c", str(constraints), target])
        for own in filling.glob("runbook_checks-*.whl"):
            own.unlink()  # the wheel under test is always the fresh one
        (filling / ".complete").write_text(lock + "\n", encoding="utf-8")
        filling.rename(house)
    except OSError:
        if not (house / ".complete").exists():
            raise
        shutil.rmtree(filling, ignore_errors=True)  # another run filled it first
    finally:
        constraints.unlink(missing_ok=True)
        shutil.rmtree(filling, ignore_errors=True)  # a failed fill leaves nothing half-made
    _prune(house)
    return house


def _prune(keep: Path, days: float = 14) -> None:
    """Wheelhouses of older locks, unused for `days`, go (each is ~100 MB)."""
    for other in keep.parent.iterdir():
        marker = other / ".complete"
        if (
            other != keep
            and marker.exists()
            and time.time() - marker.stat().st_mtime > days * 86400
        ):
            shutil.rmtree(other, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    timings: dict[str, float] = {}
    started = time.monotonic()
    wheel = _build_wheel(root)
    timings["build"] = time.monotonic() - started
    started = time.monotonic()
    house = _wheelhouse(wheel)
    timings["wheelhouse"] = time.monotonic() - started
    started = time.monotonic()
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    _run(
        [
            *PIP,
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-compile",
            "--no-index",
            "--find-links",
            str(house),
            f"{wheel}[{RUNTIME_EXTRAS}]",
        ]
    )
    timings["install"] = time.monotonic() - started
    print(
        "installed wheel: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()),
        file=sys.stderr,
    )
    return Installed(venv, wheel, timings)


@pytest.fixture
def userdir(tmp_path: Path) -> Path:
    """A user's own folder: a copy of the runbook and its baseline, nothing else."""
    folder = tmp_path / "userdir"
    folder.mkdir()
    shutil.copy2(RUNBOOK, folder / "runbook.md")
    shutil.copy2(BASELINE, folder / "runbook.baseline.toml")
    return folder


def _clean_env(bin_dir: Path) -> dict[str, str]:
    """The user's shell: this venv on PATH, nothing of the checkout's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
        and not key.startswith(("PYTEST_", "RUNBOOK_CHECKS_"))
    }
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    return env


@dataclass(frozen=True)
class Answer:
    code: int
    out: str
    err: str


def as_user(
    installed: Installed, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> Answer:
    """`runbook-checks ARGS` of the installed wheel, run in the user's folder."""
    done = subprocess.run(
        [str(installed.bin / "runbook-checks"), *args],
        cwd=cwd,
        env={**_clean_env(installed.bin), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return Answer(done.returncode, done.stdout, done.stderr)


def from_checkout(cwd: Path, *args: str) -> Answer:
    """The same command run by the checkout's code (the dev venv), in the same folder."""
    done = subprocess.run(
        [sys.executable, "-m", "runbook_checks.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Answer(done.returncode, done.stdout, done.stderr)


# -- the install itself ---------------------------------------------------------------------


def test_the_installed_copy_is_the_wheel_and_has_no_dev_extra(installed: Installed) -> None:
    probe = (
        "import importlib.util, runbook_checks, files_api;"
        "print(runbook_checks.__file__); print(files_api.__file__);"
        "print([m for m in ('respx', 'mypy', 'mypy_boto3_s3', 'schemathesis', 'ruff') "
        "if importlib.util.find_spec(m)]);"
        "import files_profile; print(files_profile.__file__); print(files_profile.TWIN.migrations)"
    )
    out = _run([str(installed.bin / "python"), "-c", probe], cwd=installed.venv.parent)
    lines = out.splitlines()
    site = installed.venv / "lib"
    assert Path(lines[0]).is_relative_to(site), lines[0]
    assert Path(lines[1]).is_relative_to(site), lines[1]
    assert lines[2] == "[]", f"dev-only packages in a runtime install: {lines[2]}"
    migrations = Path(lines[1]).parent / "migrations"
    assert sorted(migrations.glob("*.sql")), "the Files twin's migrations are not packaged"
    # the Files kit is in the wheel, and its twin migrates from the installed package
    assert Path(lines[3]).is_relative_to(site), lines[3]
    assert Path(lines[4]) == migrations


def test_version_and_the_pytest_plugin(installed: Installed, userdir: Path) -> None:
    version = as_user(installed, userdir, "--version")
    assert version.code == 0
    assert re.fullmatch(r"runbook-checks \S+\n", version.out)
    done = subprocess.run(
        [str(installed.bin / "python"), "-m", "pytest", "--help"],
        cwd=userdir,
        env=_clean_env(installed.bin),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--runbook" in done.stdout  # the pytest11 entry point registered the plugin


# -- the commands, from the user's folder ---------------------------------------------------


def _finding_keys(document: dict[str, object]) -> list[tuple[object, ...]]:
    findings = document["findings"]
    assert isinstance(findings, list)
    return sorted(
        (f["kind"], f["section_id"], f["line"], f["level"], f["acknowledged"]) for f in findings
    )


def test_gate_offline_answers_as_the_checkout_does(installed: Installed, userdir: Path) -> None:
    gate = as_user(installed, userdir, "gate", "runbook.md", "--offline", "--json", "gate.json")
    # the shipped runbook's errors are all acknowledged in its baseline: the gate passes
    assert gate.code == 0, gate.out[-2000:] + gate.err[-2000:]
    assert "PASSED: no new errors (exit 0)" in gate.out
    document = json.loads((userdir / "gate.json").read_text(encoding="utf-8"))
    assert document["exit_code"] == 0
    assert document["mode"] == "offline"
    assert Path(document["runbook"]).name == "runbook.md"
    assert document["findings"], "the shipped runbook has findings; none were reported"
    (userdir / "gate.json").rename(userdir / "installed.json")
    checkout = from_checkout(userdir, "gate", "runbook.md", "--offline", "--json", "gate.json")
    assert checkout.code == gate.code
    expected = json.loads((userdir / "gate.json").read_text(encoding="utf-8"))
    assert _finding_keys(document) == _finding_keys(expected)


def test_gate_without_the_baseline_fails_on_the_new_errors(
    installed: Installed, userdir: Path
) -> None:
    (userdir / "runbook.baseline.toml").unlink()
    gate = as_user(installed, userdir, "gate", "runbook.md", "--offline", "--json", "gate.json")
    assert gate.code == 1
    document = json.loads((userdir / "gate.json").read_text(encoding="utf-8"))
    assert document["exit_code"] == 1
    assert any(f["new"] and f["level"] == "error" for f in document["findings"])


def test_gate_of_a_missing_runbook_exits_2_with_one_message(
    installed: Installed, userdir: Path
) -> None:
    gate = as_user(installed, userdir, "gate", "nowhere.md", "--offline")
    assert gate.code == 2
    assert "nowhere.md" in gate.err


def test_faults_lists_the_catalogue(installed: Installed, userdir: Path) -> None:
    listed = as_user(installed, userdir, "faults")
    assert listed.code == 0
    assert "process-kill" in listed.out
    assert listed.out == from_checkout(userdir, "faults").out


def test_alerts_writes_the_rules(installed: Installed, userdir: Path) -> None:
    refused = as_user(installed, userdir, "alerts", "runbook.md")
    assert refused.code == 2  # which metrics? only the service's kit knows
    assert "the runbook has no profile" in refused.err
    (userdir / "runbook.runbook-checks.toml").write_text(
        '[profile]\nkit = "files_profile"  # installed with the wheel\n', encoding="utf-8"
    )
    made = as_user(installed, userdir, "alerts", "runbook.md", "--out", "rules.yml")
    assert made.code == 0, made.err
    rules = yaml.safe_load((userdir / "rules.yml").read_text(encoding="utf-8"))
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert names, "no alert rule derived from the runbook's symptoms"
    checkout = from_checkout(userdir, "alerts", "runbook.md")
    assert checkout.code == 0
    assert yaml.safe_load(checkout.out) == rules


@pytest.fixture
def evidence(userdir: Path) -> Path:
    folder = userdir / "evidence" / "20261205T000000Z-abcdef"
    folder.mkdir(parents=True)
    (folder / "report.md").write_text("# a drill\n", encoding="utf-8")
    (folder / "journal.json").write_text('{"runs": []}\n', encoding="utf-8")
    write_manifest(folder)
    return folder


def test_verify_evidence(installed: Installed, userdir: Path, evidence: Path) -> None:
    intact = as_user(installed, userdir, "verify-evidence", str(evidence))
    assert intact.code == 0, intact.out
    assert "2 file(s) match manifest.json; unaltered." in intact.out
    (evidence / "report.md").write_text("# a drill, edited\n", encoding="utf-8")
    altered = as_user(installed, userdir, "verify-evidence", str(evidence))
    assert altered.code == 1
    assert "altered: report.md" in altered.out


def test_drill_without_scenarios_says_so_once(installed: Installed, userdir: Path) -> None:
    """The wheel carries no scenario modules (they are found beside the runbook, through its
    profile): from a folder without one, drill stops before any stack, with one message."""
    drill = as_user(installed, userdir, "drill", "--runbook", "runbook.md")
    assert drill.code == 2, drill.out[-2000:] + drill.err[-2000:]
    assert "scenarios" in drill.out + drill.err
    assert not list((userdir).glob("evidence*")), "a drill that could not run left evidence"


def test_drill_collects_the_scenarios_its_profile_names(
    installed: Installed, userdir: Path
) -> None:
    """Every scenario module imports in a runtime install (no dev-only package), and the
    installed drill finds them through the profile beside the user's runbook."""
    text = PROFILE.read_text(encoding="utf-8")
    pointed = re.sub(
        r'^scenarios = "[^"]*"', f'scenarios = "{REPO / "scenarios"}"', text, flags=re.M
    )
    assert pointed != text, "the Files profile no longer names its scenarios folder"
    pointed = pointed.replace('load = "../loadtests"', f'load = "{REPO / "loadtests"}"')
    (userdir / "runbook.runbook-checks.toml").write_text(pointed, encoding="utf-8")
    args = ("drill", "--runbook", "runbook.md", "--", "--collect-only", "-q")
    drill = as_user(installed, userdir, *args)
    assert drill.code == 0, drill.out[-3000:] + drill.err[-3000:]
    collected = re.findall(r"^(scenarios/\S+\.py): (\d+)$", drill.out, flags=re.M)
    assert collected, drill.out[-3000:]
    assert collected == re.findall(
        r"^(scenarios/\S+\.py): (\d+)$", from_checkout(userdir, *args).out, flags=re.M
    )


# -- a team's own folder: runbook, baseline, profile, scenarios, locustfile -----------------

SHARE_DRILL = "test_cause_2_a_used_up_share_gets_more_downloads"  # ~20 s, no root needed


def _team_folder(folder: Path) -> Path:
    """Copies of what a team keeps beside its runbook; the profile names the copies."""
    folder.mkdir()
    shutil.copy2(RUNBOOK, folder / "runbook.md")
    shutil.copy2(BASELINE, folder / "runbook.baseline.toml")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "scenarios", folder / "scenarios", ignore=skip)
    shutil.copytree(REPO / "loadtests", folder / "loadtests", ignore=skip)
    text = PROFILE.read_text(encoding="utf-8")
    profile = text.replace('scenarios = "../scenarios"', 'scenarios = "scenarios"').replace(
        'load = "../loadtests"', 'load = "loadtests"'
    )
    assert profile.count('= "scenarios"') == 1, "the Files profile's scenarios line changed"
    assert profile.count('= "loadtests"') == 1, "the Files profile's load line changed"
    (folder / "runbook.runbook-checks.toml").write_text(profile, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _team_folder(tmp_path_factory.mktemp("team") / "oncall")


@pytest.fixture(scope="module")
def drilled(installed: Installed, team: Path) -> tuple[Answer, Path]:
    """One real drill of a share-link scenario by the installed copy, in the team's folder:
    its answer and its evidence folder."""
    started = time.monotonic()
    drill = as_user(installed, team, "drill", "--runbook", "runbook.md", "--", "-k", SHARE_DRILL)
    print(f"installed drill: {time.monotonic() - started:.1f} s", file=sys.stderr)
    folders = [p for p in (team / "evidence").glob("*") if (p / "journal.json").is_file()]
    assert len(folders) == 1, drill.out[-3000:] + drill.err[-3000:]
    return drill, folders[0]


def test_a_real_drill_from_the_teams_folder(
    installed: Installed, team: Path, drilled: tuple[Answer, Path]
) -> None:
    """The scenario copied beside the runbook drills the runbook's copy: its own steps, as
    written, detect and recover; the findings the copied baseline acknowledges xfail."""
    drill, evidence = drilled
    assert drill.code == 0, drill.out[-3000:] + drill.err[-3000:]
    journal = json.loads((evidence / "journal.json").read_text(encoding="utf-8"))
    assert journal["environment"]["runbook"]["path"] == "runbook.md"  # the team's copy
    (run,) = journal["scenarios"]
    assert run["scenario"] == f"scenarios/test_sev3_share_links.py::{SHARE_DRILL}"
    assert (run["section_title"], run["option"]) == ("SEV-3: Share Links Not Working", "2")
    assert run["verdict"] != "error", run["error"]
    assert run["recovered_by"] == "runbook"
    assert run["time_to_detect_s"] is not None
    assert run["steps"], "no step of the runbook ran"
    assert all(step["status"] == "ok" for step in run["steps"]), run["steps"]
    assert run["outcome"] in ("passed", "xfailed"), run["outcome_reason"]
    intact = as_user(installed, team, "verify-evidence", str(evidence))
    assert intact.code == 0, intact.out


def test_report_reviews_that_drill(
    installed: Installed, team: Path, drilled: tuple[Answer, Path]
) -> None:
    review = as_user(installed, team, "report", "--runbook", "runbook.md", "--since", "2020-01-01")
    assert review.code == 0, review.out + review.err
    # the drill ran one scenario (-k): drilled, but set apart from the pass rates
    assert "1 evidence bundle(s) since 2020-01-01 from " in review.out
    assert ": 0 scenario run(s) of the reviewed text" in review.out
    assert "1 run(s) set apart" in review.out
    (md,) = (team / "evidence").glob("review-*/review.md")
    text = md.read_text(encoding="utf-8")
    apart = text.split("## Runs set apart", 1)[1].split("##", 1)[0]
    assert "- subset: SEV-3: Share Links Not Working / option 2 in" in apart
    assert SHARE_DRILL in apart  # the -k expression
    never = text.split("## Never drilled", 1)[1]
    assert "SEV-1: API Server Down: Option A: Restart API Server" in never  # from runbook.md
    assert "SEV-3: Share Links Not Working: 1. Share Expired" in never
    assert "Share Links Not Working: 2." not in never  # drilled, so not listed


def test_load_runs_the_teams_locustfile_with_the_runbooks_thresholds(
    installed: Installed, team: Path
) -> None:
    args = ("--shape", "baseline", "--users", "3", "--duration", "5", "--wait", "0.2,0.5")
    load = as_user(installed, team, "load", "--runbook", "runbook.md", *args,
                   "--evidence-dir", "load-evidence")  # fmt: skip
    assert load.code == 0, load.out[-3000:] + load.err[-3000:]
    (folder,) = (team / "load-evidence").glob("*-load-baseline-*")
    verdict = json.loads((folder / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["run"]["locustfile"] == str(team / "loadtests" / "locustfile.py")
    assert verdict["passed"] is True
    thresholds = verdict["thresholds"]
    assert [s.split(": ", 1)[1].split(" ")[0] for s in thresholds["sources"]] == [
        "runbook",
        "runbook",
    ], thresholds["sources"]  # both limits read from the runbook's own lines
    requests = {e["endpoint"]: e["requests"] for e in verdict["endpoints"]}
    assert sum(requests.values()) > 10, requests  # the team's user mix ran
    assert requests.get("POST /admin/users", 0) == 3, requests  # each user signed up once


def test_load_without_a_locustfile_says_how_to_name_one(
    installed: Installed, userdir: Path
) -> None:
    load = as_user(installed, userdir, "load", "--runbook", "runbook.md", "--duration", "5")
    assert load.code == 2
    assert "runbook.md: no locustfile" in load.err
    assert "--locustfile" in load.err
    assert not (userdir / "evidence").exists()


def test_gameday_lists_the_profiles_scenarios(installed: Installed, team: Path) -> None:
    listed = as_user(installed, team, "gameday", "--runbook", "runbook.md", "--list")
    assert listed.code == 0, listed.err
    names = re.findall(r"^  (\S+:\S+) ", listed.out, flags=re.M)
    assert "sev3_share_links:limit_reached" in names, listed.out  # from the team's copy
    assert "not loaded" not in listed.out
    assert listed.out == from_checkout(team, "gameday", "--runbook", "runbook.md", "--list").out


def test_gameday_without_scenarios_says_so_once(installed: Installed, userdir: Path) -> None:
    listed = as_user(installed, userdir, "gameday", "--runbook", "runbook.md", "--list")
    assert listed.code == 2
    assert "runbook.md: no scenarios" in listed.err


def test_the_docker_backends_scripts_are_a_checkouts(
    installed: Installed, team: Path, tmp_path: Path
) -> None:
    """No engine answers: the hint says how to start one from a checkout, naming no
    script path the installed copy does not have (the team's runbook and profile name
    the service, so the stack gets as far as the engine)."""
    dead = f"unix://{tmp_path / 'no-engine.sock'}"
    up = as_user(
        installed,
        team,
        *("up", "--runbook", "runbook.md", "--backend", "docker"),
        env={"DOCKER_HOST": dead},
    )
    assert up.code == 2, up.out + up.err
    assert "no Docker engine answers" in up.err
    assert "`scripts/dockerd.sh start` from a source checkout of runbook-checks" in up.err
    assert str(installed.venv) not in up.err
