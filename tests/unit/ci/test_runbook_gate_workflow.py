""".github/workflows/runbook-gate.yml: one gate per runbook the change touches.

The workflow is loaded as YAML and its shape checked (the jobs, the matrix fed by the
listing job, pinned actions, no `${{ }}` expanded inside a shell script). Then its own
shell steps run here, as GitHub runs them (`bash --noprofile --norc -eo pipefail`): the
listing step in a scratch git repository with a base branch and a change on top, the gate
and drill steps with a `runbook-checks` on PATH that records its arguments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOW = REPO / ".github" / "workflows" / "runbook-gate.yml"
BASH = shutil.which("bash") or "/bin/bash"
GIT = shutil.which("git")

pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def load() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def step(job: str, step_id: str) -> dict[str, Any]:
    for candidate in load()["jobs"][job]["steps"]:
        if candidate.get("id") == step_id:
            assert isinstance(candidate, dict)
            return candidate
    raise AssertionError(f"job {job} has no step with id {step_id}")


def run_script(
    script: str, cwd: Path, env: dict[str, str], path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A step's `run:` as GitHub's `shell: bash` runs it."""
    file = cwd.parent / f"step-{os.getpid()}.sh"
    file.write_text(script, encoding="utf-8")
    search = os.environ["PATH"] if path is None else f"{path}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", str(file)],
        cwd=cwd,
        env={"PATH": search, "HOME": str(cwd.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- shape ---------------------------------------------------------------------------------


def test_the_workflow_runs_on_runbook_changes_and_by_hand() -> None:
    data = load()
    triggers: dict[str, Any] = data.get("on") or data[True]  # type: ignore[index]
    # (YAML 1.1 reads a bare `on` as true)
    assert triggers["pull_request"]["paths"] == ["runbooks/**"]
    assert "workflow_dispatch" in triggers
    assert data["permissions"] == {"contents": "read"}
    assert data["defaults"]["run"]["shell"] == "bash"


def test_the_gate_is_a_matrix_over_the_listed_runbooks() -> None:
    jobs = load()["jobs"]
    assert set(jobs) == {"runbooks", "gate", "verdict"}
    assert jobs["runbooks"]["outputs"]["runbooks"] == "${{ steps.list.outputs.runbooks }}"
    gate = jobs["gate"]
    assert gate["needs"] == "runbooks"
    assert gate["strategy"]["matrix"]["runbook"] == (
        "${{ fromJSON(needs.runbooks.outputs.runbooks) }}"
    )
    assert gate["strategy"]["fail-fast"] is False
    assert "!= '[]'" in gate["if"]  # nothing listed: no job, and the verdict passes
    assert gate["env"]["RUNBOOK"] == "${{ matrix.runbook.path }}"
    upload = [s for s in gate["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert len(upload) == 1
    assert "matrix.runbook.name" in upload[0]["with"]["name"]  # one artifact per runbook
    verdict = jobs["verdict"]
    assert verdict["name"] == "runbook gate"
    assert verdict["needs"] == ["runbooks", "gate"]
    assert verdict["if"] == "${{ always() }}"


def test_every_action_is_pinned_and_no_expression_is_expanded_in_a_script() -> None:
    for name, job in load()["jobs"].items():
        assert job.get("timeout-minutes"), name
        for each in job["steps"]:
            if "uses" in each:
                assert re.fullmatch(r"actions/[a-z-]+@v\d+", each["uses"]), each["uses"]
            if "run" in each:
                # a file name from a pull request must reach the shell as data (env)
                assert "${{" not in each["run"], f"{name}: {each.get('name')}"
                check = subprocess.run(
                    [BASH, "-n"], input=each["run"], capture_output=True, text=True
                )
                assert check.returncode == 0, check.stderr


def test_the_verdict_fails_when_a_gate_failed() -> None:
    script = load()["jobs"]["verdict"]["steps"][0]["run"]
    cases = {
        ("success", "success"): 0,
        ("success", "skipped"): 0,
        ("success", "failure"): 1,
        ("success", "cancelled"): 1,
        ("failure", "skipped"): 1,
    }
    for (listed, gated), code in cases.items():
        env = {"LISTED": listed, "GATED": gated}
        done = subprocess.run([BASH, "-eo", "pipefail", "-c", script], env=env, text=True)
        assert done.returncode == code, (listed, gated)


# -- which runbooks -------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    assert GIT is not None
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": os.environ["PATH"],
    }
    return subprocess.run(
        [GIT, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


BASE_FILES = {
    "README.md": "x",
    "runbooks/alpha.md": "# Alpha",
    "runbooks/alpha.baseline.toml": "",
    "runbooks/beta.md": "# Beta",
    "runbooks/beta.baseline.toml": "",
    "runbooks/gamma.md": "# Gamma",
    "runbooks/old.md": "# Old",
    "runbooks/notes.txt": "",
    "runbooks/archive/delta.md": "# Delta",
}


def scratch_repo(tmp_path: Path, change: dict[str, str | None]) -> Path:
    """A repository whose origin/main holds BASE_FILES and whose HEAD adds `change` (None:
    the file is deleted)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name, text in BASE_FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    for name, new in change.items():
        if new is None:
            (repo / name).unlink()
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(new)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "change")
    return repo


def listed(tmp_path: Path, change: dict[str, str | None], event: str = "pull_request") -> list[str]:
    repo = scratch_repo(tmp_path, change)
    output = tmp_path / "github_output"
    output.touch()
    env = {"EVENT": event, "BASE_REF": "main", "GITHUB_OUTPUT": str(output)}
    done = run_script(step("runbooks", "list")["run"], repo, env)
    assert done.returncode == 0, done.stderr
    lines = output.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("runbooks="), lines
    runbooks = json.loads(lines[0].removeprefix("runbooks="))
    for runbook in runbooks:
        assert set(runbook) == {"path", "name"}
        assert runbook["name"] == Path(runbook["path"]).stem
        assert f"gating {runbook['path']}" in done.stderr
    return [r["path"] for r in runbooks]


def test_a_pull_request_gates_each_runbook_it_touches(tmp_path: Path) -> None:
    change: dict[str, str | None] = {
        "runbooks/alpha.md": "# Alpha, changed",
        "runbooks/beta.baseline.toml": "# reviewed again",
        "runbooks/gamma.runbook-checks.toml": "[profile]",
        "runbooks/notes.txt": "not a runbook",
        "runbooks/old.md": None,  # deleted: nothing to gate
        "runbooks/archive/delta.md": "# not runbooks/*.md",
        "README.md": "elsewhere",
    }
    assert listed(tmp_path, change) == [
        "runbooks/alpha.md",
        "runbooks/beta.md",
        "runbooks/gamma.md",
    ]


def test_the_shared_profile_touches_every_runbook(tmp_path: Path) -> None:
    change: dict[str, str | None] = {"runbooks/runbook-checks.toml": "[profile]"}
    assert listed(tmp_path, change) == [
        "runbooks/alpha.md",
        "runbooks/beta.md",
        "runbooks/gamma.md",
        "runbooks/old.md",
    ]


def test_a_change_beside_the_runbooks_gates_none(tmp_path: Path) -> None:
    assert listed(tmp_path, {"runbooks/notes.txt": "still notes"}) == []


def test_by_hand_every_runbook_is_gated(tmp_path: Path) -> None:
    assert listed(tmp_path, {}, event="workflow_dispatch") == [
        "runbooks/alpha.md",
        "runbooks/beta.md",
        "runbooks/gamma.md",
        "runbooks/old.md",
    ]


# -- gate and drill of one runbook ---------------------------------------------------------

FAKE_CLI = """#!{bash}
printf '%s\\n' "$*" >>"$CALLS"
"""


def workspace(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path, Path]:
    """A checkout with `files`, a PATH holding a fake runbook-checks (and `python`), and
    the file its calls are recorded in."""
    work = tmp_path / "work"
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    tools = tmp_path / "tools"
    tools.mkdir()
    cli = tools / "runbook-checks"
    cli.write_text(FAKE_CLI.format(bash=BASH))
    cli.chmod(0o755)
    (tools / "python").symlink_to(sys.executable)
    calls = tmp_path / "calls"
    calls.touch()
    return work, tools, calls


def gate_env(runbook: str, calls: Path, base: str = "") -> dict[str, str]:
    files_runbook = load()["env"]["FILES_RUNBOOK"]
    return {"RUNBOOK": runbook, "BASE": base, "CALLS": str(calls), "FILES_RUNBOOK": files_runbook}


@pytest.mark.parametrize(
    ("files", "base", "expected"),
    [
        (
            {"runbooks/a.md": "", "runbooks/a.baseline.toml": ""},
            "origin/main",
            "runbooks/a.md --json gate.json --baseline runbooks/a.baseline.toml --base origin/main",
        ),
        ({"runbooks/a.md": ""}, "", "runbooks/a.md --json gate.json"),
    ],
    ids=["baseline-and-base", "neither"],
)
def test_the_gate_uses_the_baseline_beside_the_runbook(
    tmp_path: Path, files: dict[str, str], base: str, expected: str
) -> None:
    work, tools, calls = workspace(tmp_path, files)
    done = run_script(
        step("gate", "gate")["run"], work, gate_env("runbooks/a.md", calls, base), tools
    )
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [f"gate {expected}"]


DRIFT = json.dumps({"drift": {"k_expression": "sev1_api or sev2_perf"}})
NO_DRIFT = json.dumps({"drift": None})


@pytest.mark.parametrize(
    ("runbook", "files", "drills"),
    [
        ("runbooks/a.md", {}, False),  # no profile: gated only
        ("runbooks/a.md", {"runbooks/a.runbook-checks.toml": ""}, True),
        ("runbooks/a.md", {"runbooks/runbook-checks.toml": ""}, True),
        ("runbooks/a.md", {"runbooks/b.runbook-checks.toml": ""}, False),  # another's
        ("runbooks/files-incident-response.md", {}, True),  # its scenarios ship here
    ],
    ids=["no-profile", "own-profile", "folder-profile", "other-profile", "files-runbook"],
)
def test_the_drill_runs_where_the_runbook_has_drills(
    tmp_path: Path, runbook: str, files: dict[str, str], drills: bool
) -> None:
    work, tools, calls = workspace(tmp_path, {runbook: "", "gate.json": DRIFT, **files})
    done = run_script(step("gate", "drill")["run"], work, gate_env(runbook, calls), tools)
    assert done.returncode == 0, done.stderr
    made = calls.read_text().splitlines()
    if drills:
        assert made == [f"drill --runbook {runbook} -- -k sev1_api or sev2_perf"]
    else:
        assert made == []
        assert f"no profile beside {runbook}: gated only" in done.stdout


def test_no_changed_section_no_drill(tmp_path: Path) -> None:
    runbook = "runbooks/a.md"
    files = {runbook: "", "gate.json": NO_DRIFT, "runbooks/a.runbook-checks.toml": ""}
    work, tools, calls = workspace(tmp_path, files)
    done = run_script(step("gate", "drill")["run"], work, gate_env(runbook, calls), tools)
    assert done.returncode == 0, done.stderr
    assert calls.read_text() == ""
    assert "no scenario section of runbooks/a.md changed" in done.stdout


FAKE_CLI_KEYS = """#!{bash}
key="${{AWS_ACCESS_KEY_ID-unset}}" endpoint="${{AWS_ENDPOINT_URL-unset}}"
printf '%s key=%s endpoint=%s\\n' "$*" "$key" "$endpoint" >>"$CALLS"
"""


@pytest.mark.parametrize("store", ["", "s3://ops-evidence/files"], ids=["artifacts", "store"])
def test_gate_and_drill_upload_to_the_evidence_store_when_one_is_set(
    tmp_path: Path, store: str
) -> None:
    """RUNBOOK_EVIDENCE_STORE set: the gate's report and the drills' evidence go to it,
    signed with the store's keys where given (an unset one stays unset for boto3)."""
    runbook = "runbooks/files-incident-response.md"
    work, tools, calls = workspace(tmp_path, {runbook: "", "gate.json": DRIFT})
    (tools / "runbook-checks").write_text(FAKE_CLI_KEYS.format(bash=BASH))
    env = gate_env(runbook, calls) | {
        "EVIDENCE_STORE": store,
        "STORE_KEY_ID": "AKIAEXAMPLE",
        "STORE_SECRET": "",
        "STORE_ENDPOINT": "",
    }
    for step_id in ("gate", "drill"):
        done = run_script(step("gate", step_id)["run"], work, env, tools)
        assert done.returncode == 0, done.stderr
    gate, drill = calls.read_text().splitlines()
    if store:
        assert (
            gate
            == f"gate {runbook} --json gate.json --store {store} key=AKIAEXAMPLE endpoint=unset"
        )
        assert drill == (
            f"drill --runbook {runbook} --store {store} -- -k sev1_api or sev2_perf "
            "key=AKIAEXAMPLE endpoint=unset"
        )
    else:
        assert gate == f"gate {runbook} --json gate.json key=unset endpoint=unset"
        assert drill.startswith(f"drill --runbook {runbook} -- -k")
