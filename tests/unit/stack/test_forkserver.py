"""The fork server: a child forked from it is the command it stands for (its own session,
environment, folder, log, `ps` line, exit status), with the preloaded imports done; it
dies with its owner; where it cannot start, servers start cold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_checks.stack import forkserver
from runbook_checks.stack.forkserver import ForkServer
from runbook_checks.stack.process import ManagedProcess

# `python -m svc ARGS`: says what it was started as, then exits with ARGS[0] or sleeps
SERVICE = textwrap.dedent(
    """
    import json, os, sys, time
    import heavy
    print(json.dumps({
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "setting": os.environ.get("SETTING"),
        "leaked": os.environ.get("OWNER_ONLY"),
        "heavy_done_before": heavy.IMPORTED_AT < START,
        "read_at_import": heavy.READ_AT_IMPORT,
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
    }), flush=True)
    if sys.argv[1] == "sleep":
        time.sleep(60)
    sys.exit(int(sys.argv[1]))
    """
)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A service module (`svc`) and a module it imports (`heavy`), importable by the fork
    server (it inherits this environment)."""
    code = tmp_path / "code"
    (code / "svc").mkdir(parents=True)
    (code / "svc" / "__init__.py").write_text("")
    # START: when the service's own code began (after its imports had run, or not)
    (code / "svc" / "__main__.py").write_text("import time\nSTART = time.time()\n" + SERVICE)
    (code / "heavy.py").write_text(
        "import os, time\nIMPORTED_AT = time.time()\nREAD_AT_IMPORT = os.environ.get('AT_IMPORT')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(code))
    monkeypatch.setenv("OWNER_ONLY", "not for the child")
    yield code
    forkserver.close_all()  # this process's fork servers knew this folder's modules only


def _said(log: Path) -> dict[str, object]:
    import json

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.strip():
            return dict(json.loads(text.splitlines()[0]))
        time.sleep(0.02)
    raise AssertionError(f"{log} stayed empty")


def test_a_forked_child_is_the_command_it_stands_for(package: Path, tmp_path: Path) -> None:
    server = ForkServer(["heavy"])
    try:
        folder = tmp_path / "work"
        folder.mkdir()
        env = {"PYTHONPATH": str(package), "SETTING": "42"}
        argv = [sys.executable, "-m", "svc", "sleep", "--instance", "api@here"]
        child = server.spawn(argv, env=env, cwd=folder, log_path=tmp_path / "svc.log")
        said = _said(tmp_path / "svc.log")
        assert said["argv"] == ["sleep", "--instance", "api@here"]
        assert said["cwd"] == str(folder)
        assert said["setting"] == "42"
        assert said["leaked"] is None  # exactly its own environment
        assert said["heavy_done_before"] is True  # imported by the fork server, once
        assert said["pid"] == child.pid
        assert said["pgid"] == said["sid"] == child.pid  # a session of its own
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert b"-m svc sleep --instance api@here" in cmdline  # what `ps aux` shows
        comm = Path(f"/proc/{child.pid}/comm").read_text().strip()
        assert comm == Path(sys.executable).name[:15]  # what `top` shows
        assert child.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(0.05)
        os.killpg(child.pid, signal.SIGTERM)
        assert child.wait(10) == -signal.SIGTERM  # Popen's convention for a signal
        done = server.spawn(
            [sys.executable, "-m", "svc", "3"], env=env, cwd=None, log_path=tmp_path / "x.log"
        )
        assert done.wait(20) == 3
        assert _said(tmp_path / "x.log")["cwd"] == os.getcwd()  # the caller's, as Popen
    finally:
        server.close()


# owns a fork server, forks a sleeping child, prints its pid, then waits to be killed
OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from runbook_checks.stack.forkserver import ForkServer
    server = ForkServer(["heavy"])
    child = server.spawn(
        [sys.executable, "-m", "svc", "sleep"], env={}, cwd=None, log_path=Path(sys.argv[1])
    )
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True  # dead, its parent not yet reaping it
        time.sleep(0.02)
    return False


def test_the_children_die_with_the_owner_killed(package: Path, tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "svc.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert not _gone(pid, 0.2)
        owner.kill()  # SIGKILL: no cleanup of its own
        owner.wait()
        assert _gone(pid, 10), f"child {pid} outlived the fork server's owner"
    finally:
        owner.kill()
        owner.wait()


def test_a_fork_server_that_cannot_start_says_why(package: Path) -> None:
    (package / "broken.py").write_text("raise RuntimeError('no good')\n")
    with pytest.raises(OSError, match="no good"):
        ForkServer(["broken"])


def test_a_process_with_a_preload_is_forked_and_managed_as_any(
    package: Path, tmp_path: Path
) -> None:
    process = ManagedProcess(
        "svc",
        [sys.executable, "-m", "svc", "sleep"],
        log_path=tmp_path / "svc.log",
        env={"PYTHONPATH": str(package)},
        preload=("heavy",),
    )
    for start in ("first", "second"):  # both cold; the second starts the fork server
        process.spawn()
        assert _said(tmp_path / "svc.log")["heavy_done_before"] is False, start
        process.kill()
        (tmp_path / "svc.log").unlink()
    forkserver.wait_warm()
    process.spawn()  # the third: forked
    said = _said(tmp_path / "svc.log")
    assert said["heavy_done_before"] is True
    assert process.pid is not None
    assert Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[1] != str(
        os.getpid()
    )  # not our child: the fork server's
    assert process.is_running()
    process.stop(timeout_s=10)
    assert not process.is_alive()
    assert process.returncode == -signal.SIGTERM
    assert "fork server" not in process.how_it_ended()  # its status came from the server


def test_a_child_whose_fork_server_ended_says_so(package: Path, tmp_path: Path) -> None:
    """The fork server's end takes its children (their parent-death signal): a child's
    end then names its fork server, not a kill aimed at the child."""
    server = ForkServer(["heavy"])
    try:
        child = server.spawn(
            [sys.executable, "-m", "svc", "sleep"],
            env={"PYTHONPATH": str(package)},
            cwd=None,
            log_path=tmp_path / "svc.log",
        )
        _said(tmp_path / "svc.log")
        server._proc.kill()  # the fork server, killed from outside
        assert child.wait(10) == -signal.SIGKILL
        assert child.server_gone
        assert _gone(child.pid, 10)
    finally:
        server.close()


@pytest.mark.parametrize("why", ["switched off", "cannot start"])
def test_without_a_fork_server_the_process_starts_cold(
    why: str, package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preload = ("heavy",)
    if why == "switched off":
        monkeypatch.setenv(forkserver.SWITCH, "off")
    else:
        (package / "broken.py").write_text("raise RuntimeError('no good')\n")
        preload = ("broken",)
    process = ManagedProcess(
        "svc",
        [sys.executable, "-m", "svc", "7"],
        log_path=tmp_path / "svc.log",
        env={"PYTHONPATH": str(package)},
        preload=preload,
    )
    process.warm()
    process.spawn()
    try:
        said = _said(tmp_path / "svc.log")
        assert said["heavy_done_before"] is False  # imported by the command itself
        deadline = time.monotonic() + 20
        while process.returncode is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.returncode == 7
    finally:
        process.kill()


def test_modules_that_read_settings_at_import_get_a_fork_server_per_environment(
    package: Path, tmp_path: Path
) -> None:
    """A preloaded module's import-time reads are the fork server's: a process whose
    modules read settings so runs from a fork server with its own environment."""
    said = {}
    for value in ("a", "b"):
        process = ManagedProcess(
            "svc",
            [sys.executable, "-m", "svc", "0"],
            log_path=tmp_path / f"{value}.log",
            env={"PYTHONPATH": str(package), "AT_IMPORT": value},
            preload=("heavy",),
            preload_reads_env=True,
        )
        process.warm()
        process.spawn()
        said[value] = _said(tmp_path / f"{value}.log")
        process.kill()
    assert said["a"]["read_at_import"] == "a"
    assert said["b"]["read_at_import"] == "b"
    assert said["b"]["heavy_done_before"] is True  # forked warm all the same
