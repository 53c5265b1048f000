"""A SIGTERM to a parallel drill's controlling process reaches its workers at once (each
unwinds its own drill and stack); nothing else is signalled, a worker that is gone is
forgotten, and what a worker cut short left is released by the controlling process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_checks import interrupts
from runbook_checks.stack.leftovers import StateFile, _stat, work_root


@pytest.fixture
def handlers() -> object:
    saved = {sig: signal.getsignal(sig) for sig in interrupts.HANDLED}
    received, forward = list(interrupts._SIGNALS.received), set(interrupts._SIGNALS.forward)
    interrupts._SIGNALS.received.clear()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    interrupts._SIGNALS.received[:] = received
    interrupts._SIGNALS.forward = forward


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_sigterm_is_forwarded_to_the_workers(handlers: object) -> None:
    interrupts.install(persistent=False)
    worker, bystander = _sleeper(), _sleeper()
    try:
        interrupts.forward_to(worker.pid)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
        assert worker.wait(10) == -signal.SIGTERM
        assert bystander.poll() is None  # never registered: left alone
    finally:
        for proc in (worker, bystander):
            proc.kill()
            proc.wait()


def test_a_worker_that_is_gone_is_not_signalled(handlers: object) -> None:
    interrupts.install(persistent=False)
    worker = _sleeper()
    try:
        interrupts.forward_to(worker.pid)
        interrupts.forward_to(worker.pid, stop=True)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait()


def test_one_acknowledgement_silences_every_pending_redelivery(
    handlers: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt delivered again before anyone took it (then taken once) must not come
    back a third time from the first delivery's timer, in the middle of the cleanup."""
    monkeypatch.setattr(interrupts, "REDELIVER_AFTER_S", 0.2)
    interrupts.install(persistent=True)
    try:
        for _ in range(2):  # the interrupt, then its redelivery, neither taken yet
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
        interrupts.acknowledge()  # taken once
        time.sleep(0.6)  # both timers' time: a third delivery would raise here
        assert len(interrupts.received()) == 2
    finally:
        interrupts.install(persistent=False)


@pytest.fixture
def adoptions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A work root of its own, no worker adopted yet, a short wait for one still running."""
    monkeypatch.setenv("RUNBOOK_CHECKS_WORK_ROOT", str(tmp_path))
    monkeypatch.setattr(interrupts._SIGNALS, "adopted", {})
    monkeypatch.setattr(interrupts, "ADOPTED_UNWIND_S", 2.0)


def _stack_folder(root: Path, name: str, owner: int, pids: tuple[int, ...] = ()) -> Path:
    folder = root / name
    folder.mkdir()
    state = StateFile(folder, owner_pid=owner)
    for pid in pids:
        state.add_pid("server", pid)
    state.write()
    return folder


def _unwinding(folder: Path, after_s: float) -> subprocess.Popen[bytes]:
    """A worker that releases its stack folder itself `after_s` from now, then idles (as
    an xdist worker waits for its controller)."""
    code = (
        "import shutil, sys, time; time.sleep(float(sys.argv[2])); "
        "shutil.rmtree(sys.argv[1]); time.sleep(60)"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(folder), str(after_s)])


def test_the_folders_of_an_adopted_worker_that_died_are_released(adoptions: None) -> None:
    """xdist kills a worker that does not unwind in seconds: what its stack held (here a
    server it started) is released by the process that adopted it, and by nobody else.
    A worker that finishes its own cleanup meanwhile is left to it."""
    root = work_root()
    killed, stranger, server = _sleeper(), _sleeper(), _sleeper()
    own_cleanup = root / "stack-unwinding"
    unwinding = _unwinding(own_cleanup, 0.5)
    try:
        for worker in (killed, unwinding):
            interrupts.adopt(worker.pid)
        cut_short = _stack_folder(root, "stack-killed", killed.pid, (server.pid,))
        _stack_folder(root, own_cleanup.name, unwinding.pid)
        not_ours = _stack_folder(root, "stack-stranger", stranger.pid)
        for proc in (killed, stranger):
            proc.kill()
            proc.wait()
        report = interrupts.release_own(own=False)
        assert report.folders == (str(cut_short),)
        assert not cut_short.exists()
        assert server.wait(10) == -signal.SIGKILL
        assert not own_cleanup.exists()
        assert unwinding.poll() is None  # it cleaned up after itself: not killed
        assert not_ours.exists()  # another drill's: the sweep's business
    finally:
        for proc in (killed, unwinding, stranger, server):
            proc.kill()
            proc.wait()


def test_an_adopted_worker_still_holding_its_stack_after_the_wait_is_killed_and_released(
    adoptions: None,
) -> None:
    """The controller does not exit while a worker holds a stack: execnet would cut the
    worker off with its cleanup half done (a fresh-clone run: a SIGTERMed drill left a
    worker's mount and folder). After the wait, the worker is killed and its stack
    released by the controller."""
    worker, server = _sleeper(), _sleeper()
    try:
        interrupts.adopt(worker.pid)
        folder = _stack_folder(work_root(), "stack-stuck", worker.pid, (server.pid,))
        report = interrupts.release_own(own=False)
        assert report.folders == (str(folder),)
        assert worker.wait(10) == -signal.SIGKILL
        assert server.wait(10) == -signal.SIGKILL
    finally:
        for proc in (worker, server):
            proc.kill()
            proc.wait()


def test_an_adopted_worker_killed_and_not_yet_reaped_counts_as_gone(adoptions: None) -> None:
    """xdist kills a worker that does not unwind in time and may not have reaped it yet
    when the final cleanup runs: a zombie holds nothing, its folder is released."""
    worker = _sleeper()
    try:
        interrupts.adopt(worker.pid)
        folder = _stack_folder(work_root(), "stack-zombie", worker.pid)
        os.kill(worker.pid, signal.SIGKILL)  # not waited for: a zombie until reaped
        deadline = time.monotonic() + 10
        while (_stat(worker.pid) or ["gone"])[0] != "Z":
            assert time.monotonic() < deadline, "the killed worker never became a zombie"
            time.sleep(0.01)
        assert interrupts.release_own(own=False).folders == (str(folder),)
    finally:
        worker.kill()
        worker.wait()
