"""Which engine the docker backend's tests use: $DOCKER_HOST naming the project's own
socket (as `connect()` records it) is the project's engine, to be started again when a
module before stopped it; any other $DOCKER_HOST is someone else's, used as it is. And
the test session's background preparation of the engine and images: `prepare()` waits
for it while it runs, and the session's end stops what of it still runs."""

from __future__ import annotations

import functools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_checks.stack.docker import testing
from runbook_checks.stack.docker.engine import project_socket
from runbook_checks.stack.docker.testing import BACKGROUND_ENV, foreign_engine


def test_the_projects_own_socket_is_not_a_foreign_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{project_socket()}")
    assert foreign_engine() is None


def test_another_engine_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert foreign_engine() == "tcp://127.0.0.1:2375"
    monkeypatch.delenv("DOCKER_HOST")
    assert foreign_engine() is None


@pytest.fixture
def owner() -> Iterator[int]:
    """The PID of a live process standing in for the session that prepares."""
    with subprocess.Popen(["sleep", "300"]) as process:
        try:
            yield process.pid
        finally:
            process.kill()


def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    state = tmp_path / "engine.state"
    state.write_text(text, encoding="utf-8")
    monkeypatch.setenv(BACKGROUND_ENV, str(state))
    return state


def test_prepare_waits_for_the_sessions_background_preparation_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: int
) -> None:
    state = _state(tmp_path, monkeypatch, f"preparing {owner}")
    polled: list[str] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:  # the third look finds it ready
        polled.append(state.read_text(encoding="utf-8"))
        if len(polled) == 2:
            state.write_text("ready\n", encoding="utf-8")
        real_sleep(0)

    monkeypatch.setattr(testing.time, "sleep", sleep)
    assert testing.await_background(timeout_s=60) >= 0
    assert polled == [f"preparing {owner}"] * 2


def test_prepare_itself_waits_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: int
) -> None:
    state = _state(tmp_path, monkeypatch, f"preparing {owner}")
    monkeypatch.setattr(testing, "cannot_run_here", lambda: None)
    monkeypatch.setattr(testing, "foreign_engine", lambda: "tcp://127.0.0.1:2375")  # no start
    monkeypatch.setattr(testing.time, "sleep", lambda _s: state.write_text("ready\n"))
    ready = testing.prepare(build_images=False)
    assert isinstance(ready, testing.ReadyEngine)
    assert "waiting for the session's background preparation" in ready.timings


def test_a_preparation_whose_owner_is_gone_or_that_ended_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: int
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    for text in (f"preparing {dead.pid}", "ready", "failed: EngineError: no engine"):
        _state(tmp_path, monkeypatch, text)
        testing.await_background(timeout_s=0)  # would raise if it waited
    _state(tmp_path, monkeypatch, f"preparing {owner}")
    with pytest.raises(testing.EngineError, match="did not end within 0 s"):
        testing.await_background(timeout_s=0)


def test_the_session_end_stops_a_preparation_still_running(tmp_path: Path) -> None:
    """finish() ends the script's whole session (what it started in its background too),
    says so, and removes the state file."""
    processes: list[subprocess.Popen[str]] = []

    def slow(*, spawned: testing.Spawned) -> str:
        def seen(process: subprocess.Popen[str]) -> None:
            processes.append(process)
            spawned(process)

        script = "sleep 120 & sleep 120; wait"  # outlives finish()'s wait if left running
        testing._run(["bash", "-c", script], 300, "a slow build", seen)
        return "not stopped"

    state = tmp_path / "engine.state"
    background = testing.Background(state, run=slow, engine_running=lambda: True)
    background.start()  # (the engine "ran before": this test never stops an engine)
    assert state.read_text(encoding="utf-8").split() == ["preparing", str(os.getpid())]
    while not processes:
        time.sleep(0.05)
    assert background.preparing
    assert background.finish() == "stopped before it ended"
    assert not background.preparing
    assert not state.exists()
    assert _group_ends(processes[0].pid)  # the background sleep too: the whole session


def _group_ends(group: int) -> bool:
    """Whether process group `group` is empty within 10 s (SIGTERM'd members that init
    has yet to reap linger for a moment)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_preparation_does_not_wait_for_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's own process names the state file too: the background's prepare()
    must not wait for the preparation it is."""
    state = _state(tmp_path, monkeypatch, "")
    monkeypatch.setattr(testing, "cannot_run_here", lambda: None)
    monkeypatch.setattr(testing, "foreign_engine", lambda: "tcp://127.0.0.1:2375")  # no start
    background = testing.Background(
        state,
        run=functools.partial(testing.prepare, build_images=False),
        engine_running=lambda: True,
    )
    background.start()
    try:
        deadline = time.monotonic() + 30
        while background.preparing and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not background.preparing
        assert state.read_text(encoding="utf-8") == "ready\n"
    finally:
        background.finish()


def test_a_finished_preparation_says_how_it_ended(tmp_path: Path) -> None:
    state = tmp_path / "engine.state"
    background = testing.Background(
        state, run=lambda **_: "no engine here: needs root", engine_running=lambda: True
    )
    background.start()
    while background.preparing:
        time.sleep(0.01)
    assert state.read_text(encoding="utf-8") == "no engine here: needs root\n"
    assert background.finish() == "no engine here: needs root"
