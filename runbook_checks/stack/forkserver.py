"""Python servers forked from a warm process instead of started cold.

A drill starts the service's API twin ~30 times (restarts, deploys, scale-outs, a stack
per worker), and each cold `python -m TWIN serve` of the Files twin cost 0.9-1.0 s of CPU,
most of it importing FastAPI, pydantic, psycopg, uvicorn and botocore, before it served
(forked: ~0.3 s): a restart under load waited for those imports on a busy CPU. A fork
server imports those modules once (its `preload`), then forks a child for each start: the
child is the same server, started as `python -m MODULE ARGS` would start it (its own
session, its own environment, working folder, log and `ps` command line), with the
imports already done.

One fork server per (preload, environment) in a process, started at the second start
of a module it preloads for (see `fork_server`), or by `warm`. It lives as
long as the process that made it: it reads its control socket until that closes (on any
exit of its owner, SIGKILL included), then kills the children still running and ends.
Each child also dies with the fork server (a parent death signal), as a server spawned
directly dies with the thread that spawned it.

The owner sees a child as it sees a `subprocess.Popen`: `pid`, `poll()`, `wait()`. The
fork server reaps its children and sends each one's exit status (Popen's convention:
-N for a signal) on a socket of that child's; a closed socket with no status means the
fork server died, and its children with it (SIGKILL).

Where no fork server was warmed, or one cannot start (a preloaded module fails to
import, `setproctitle` is missing), `fork_server` returns None and the caller starts the
server cold, as before.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 30.0  # the preload's imports (a cold cache on a busy machine)
MAX_MESSAGE = 1 << 20  # a request: argv, environment, folders (an environment is a few KB)
TITLE = "runbook-checks fork server"  # its `ps` line: never a served module's name
SWITCH = "RUNBOOK_CHECKS_FORK_SERVER"  # "off": every server starts cold (to compare, or debug)


def die_with_parent() -> None:
    """SIGKILL this process when the thread that made it ends (Linux's parent-death
    signal; elsewhere nothing: the state file and `cleanup` still cover it). Run in a
    child: between fork and exec, or in a fork server's child."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _switched_off() -> bool:
    return os.environ.get(SWITCH, "").lower() in ("off", "0", "no")


def _key(preload: Sequence[str], env: Mapping[str, str] | None) -> tuple[object, ...]:
    """A fork server's identity: its preload and, where asked, its environment."""
    return (tuple(preload), None if env is None else tuple(sorted(env.items())))


class ForkedChild:
    """A child of the fork server, as a `subprocess.Popen` is seen: pid, poll, wait."""

    def __init__(self, args: Sequence[str], pid: int, status: socket.socket) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        # no status came: the fork server ended, and this child with it (its parent-death
        # signal), not anything aimed at the child itself
        self.server_gone = False
        self._status = status
        self._lock = threading.Lock()

    def _read(self, timeout_s: float | None) -> None:
        with self._lock:
            if self.returncode is not None:
                return
            ready, _, _ = select.select([self._status], [], [], timeout_s)
            if not ready:
                return
            try:
                data = self._status.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            # no status: the fork server is gone, and its children with it (SIGKILL)
            self.server_gone = not data
            self.returncode = int(json.loads(data)["status"]) if data else -signal.SIGKILL
            self._status.close()

    def poll(self) -> int | None:
        self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._read(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return self.returncode


class ForkServer:
    """The owner's side: starts the fork server, asks it for children."""

    def __init__(self, preload: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
        self.preload = tuple(preload)
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), *self.preload],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=dict(env) if env is not None else None,
                # Ctrl-C reaches the terminal's process group, not the fork server: the
                # drill stops its servers in order, the fork server ends after it
                start_new_session=True,
            )
        finally:
            theirs.close()
        ready, _, _ = select.select([ours], [], [], READY_TIMEOUT_S)
        answer = ours.recv(MAX_MESSAGE) if ready else b""
        if answer != b"ready":
            self.close()
            said = answer.decode(errors="replace") or "no answer"
            raise OSError(f"the fork server did not start: {said}")

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None, log_path: Path
    ) -> ForkedChild:
        """A child running `argv` (`[python, "-m", MODULE, ARGS...]`) as that command."""
        if len(argv) < 3 or argv[1] != "-m":
            raise ValueError(f"the fork server runs `python -m MODULE ...` only, not {argv}")
        request = {
            "argv": list(argv),
            "env": dict(env),
            "cwd": str(cwd) if cwd is not None else os.getcwd(),
            "log": str(log_path),
        }
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self._lock:
                socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ready, _, _ = select.select([ours], [], [], READY_TIMEOUT_S)
        answer = ours.recv(MAX_MESSAGE) if ready else b""
        reply = json.loads(answer) if answer else {"error": "no answer from the fork server"}
        if "pid" not in reply:
            ours.close()
            raise OSError(f"could not fork {argv[2]}: {reply.get('error')}")
        return ForkedChild(argv, int(reply["pid"]), ours)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        """End the fork server (it kills the children still running) and reap it."""
        with contextlib.suppress(OSError):
            self._control.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class _Slot:
    """One fork server of this process: being started, started, or failed to start."""

    def __init__(self, preload: tuple[str, ...], env: Mapping[str, str] | None) -> None:
        self.preload = preload
        self.env = env
        self.server: ForkServer | None = None
        self.done = threading.Event()

    def start(self) -> None:
        try:
            self.server = ForkServer(self.preload, env=self.env)
        except OSError:
            self.server = None  # the servers start cold
        finally:
            self.done.set()


_SLOTS: dict[tuple[object, ...], _Slot] = {}
_STARTS: collections.Counter[tuple[object, ...]] = collections.Counter()  # (key, module)
_SLOTS_LOCK = threading.Lock()
_OWNER = os.getpid()


def _slot(preload: Sequence[str], env: Mapping[str, str] | None) -> tuple[_Slot, bool]:
    """This process's slot for `preload` (and `env`), and whether the caller must start
    it (a new one, or one whose fork server died)."""
    key = _key(preload, env)
    with _SLOTS_LOCK:
        if _switched_off():
            off = _Slot(tuple(preload), env)  # no fork server: the servers start cold
            off.done.set()
            return off, False
        known = _SLOTS.get(key)
        if known is not None and (
            not known.done.is_set() or known.server is None or known.server.alive()
        ):
            return known, False
        fresh = _SLOTS[key] = _Slot(tuple(preload), None if env is None else dict(env))
        return fresh, True


def warm(preload: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Start this process's fork server for `preload` (and `env`, see `fork_server`) on a
    thread: its imports (~1 s of CPU) run in the background, and from when it is up the
    servers it preloads for are forked from it."""
    slot, mine = _slot(preload, env)
    if mine:
        threading.Thread(target=slot.start, name="fork-server", daemon=True).start()


def fork_server(
    preload: Sequence[str], env: Mapping[str, str] | None = None, *, module: str = ""
) -> ForkServer | None:
    """The fork server to fork a start of `module` from, or None: start it cold.

    Started on demand, at the second start of a module in a process (a restart, a second
    stack): a process whose servers start once (the gate, a short drill) forks nothing
    and pays no imports twice; one that restarts them (a drill's worker restarts the API
    ~8 times) pays one cold start more, then forks. That second start is cold itself,
    the fork server's imports running beside it; later starts wait for it if it is still
    coming up. `warm` starts one now.

    A child's environment is its own, but what a preloaded module read from the
    environment as it was imported is the fork server's: a server whose modules read
    settings at import (moto's `settings`) asks for a fork server with its own `env`
    (one per distinct environment); None shares one that runs with this process's."""
    if _switched_off():
        return None
    key = _key(preload, env)
    with _SLOTS_LOCK:
        _STARTS[(key, module)] += 1
        again = _STARTS[(key, module)] > 1
        slot = _SLOTS.get(key)
    if slot is None:
        if again:
            warm(preload, env)
        return None
    slot.done.wait(READY_TIMEOUT_S + 5)
    server = slot.server
    return server if server is not None and server.alive() else None


def wait_warm(timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until every fork server `warm` started is up (or failed to start)."""
    with _SLOTS_LOCK:
        slots = list(_SLOTS.values())
    for slot in slots:
        slot.done.wait(timeout_s)


@atexit.register
def close_all() -> None:
    """End this process's fork servers (at its exit; their children die with them)."""
    if os.getpid() != _OWNER:  # a forked copy of the owner: the servers are not its
        return
    with _SLOTS_LOCK:
        for slot in _SLOTS.values():
            # one still coming up ends by itself: its control socket closes with us
            if slot.done.is_set() and slot.server is not None:
                slot.server.close()
        _SLOTS.clear()


# -- the fork server's side --------------------------------------------------------------


def _serve(control: socket.socket) -> dict[str, str | list[str]] | None:
    """The fork server's loop. Returns only in a child just forked: its request."""
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            sock = children.pop(pid, None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.send(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode())
                sock.close()

    while True:
        for key, _ in selector.select():
            if key.fileobj is wake_r:
                with contextlib.suppress(BlockingIOError):
                    while wake_r.recv(4096):
                        pass
                reap()
                continue
            try:
                data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
            except OSError:
                data, fds = b"", []
            if not data:  # the owner is gone: so are its servers
                for pid in children:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
                return None
            status = socket.socket(fileno=fds[0]) if fds else None
            if status is None:
                continue
            request = json.loads(data)
            try:
                pid = os.fork()
            except OSError as exc:
                with contextlib.suppress(OSError):
                    status.send(json.dumps({"error": str(exc)}).encode())
                status.close()
                continue
            if pid == 0:  # the child: leave the loop, let go of everything of the server
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                selector.close()
                for sock in (control, wake_r, wake_w, status, *children.values()):
                    sock.close()
                return request  # type: ignore[no-any-return]
            children[pid] = status
            with contextlib.suppress(OSError):
                status.send(json.dumps({"pid": pid}).encode())


def _become(request: Mapping[str, str | list[str]]) -> None:
    """In a fresh child: become `python -m MODULE ARGS` as the request says, and run it
    (the interpreter then exits as that command would: atexit, logs flushed, its status)."""
    import runpy

    argv = list(request["argv"])
    os.setsid()
    die_with_parent()
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(dict(request["env"]))  # type: ignore[arg-type]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import setproctitle

    setproctitle.setproctitle(" ".join(argv))
    # and the short name `top` shows: the program's, as exec gives it (setproctitle sets
    # it to the title's first 15 characters)
    setproctitle.setthreadtitle(os.path.basename(argv[0]))
    sys.argv = [argv[0], *argv[3:]]  # run_module sets [0] to the module's file
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    preload = sys.argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its owner's interrupt is not for it
    try:
        import importlib

        import setproctitle

        setproctitle.setproctitle(TITLE)
        for module in preload:
            # a module missing here is the child's to miss (it imports what it needs)
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    except BaseException:
        control.send(traceback.format_exc(limit=3).encode()[-4000:])
        raise SystemExit(1) from None
    control.send(b"ready")
    request = _serve(control)
    if request is not None:
        _become(request)


if __name__ == "__main__":
    main()
