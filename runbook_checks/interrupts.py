"""Ctrl-C and SIGTERM during a drill: unwind, revert, stop, and make sure of it.

The first SIGINT or SIGTERM raises `KeyboardInterrupt` in the main thread, so every
`finally`, context manager and pytest fixture teardown on the way out runs: fault handles
revert, stacks stop. Then `final_cleanup()` makes sure, with further signals deferred
(`shielded()`): every fault still in `faults.base.ACTIVE` is reverted and every stack
folder this process owns is released (processes killed, mounts unmounted, the external
environment's fault sessions ended, folders removed).

SIGKILL runs none of this; `stack.leftovers` covers it (parent-death signal, sweep).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from runbook_checks.stack.leftovers import STATE_FILE, SweepReport, release, work_root

HANDLED = (signal.SIGINT, signal.SIGTERM)


REDELIVER_AFTER_S = 1.0
MAX_DELIVERIES = 5


@dataclass
class _Signals:
    received: list[int]
    deferred: list[int]
    shield_depth: int = 0
    persistent: bool = False  # deliver again until someone acknowledges the interrupt
    ack: threading.Event = field(default_factory=threading.Event)
    # processes that unwind with this one: parallel drills' workers (`forward_to`)
    forward: set[int] = field(default_factory=set)
    # every worker this process ran, with its start time: whose stack folders it releases
    # once the worker is gone (`adopt`)
    adopted: dict[int, str | None] = field(default_factory=dict)


_SIGNALS = _Signals([], [])


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGTERM and not _SIGNALS.received:
        _forward(signum)
    _SIGNALS.received.append(signum)
    if _SIGNALS.persistent:
        _redeliver_unless_acknowledged(signum)
    raise KeyboardInterrupt(f"{signal.Signals(signum).name}")


def _redeliver_unless_acknowledged(signum: int) -> None:
    """A `KeyboardInterrupt` raised inside a finalizer or a weakref callback is printed
    and dropped by Python; an interrupt must not be lost that way. Until the unwinding
    code acknowledges it (`acknowledge()`), the signal is delivered again."""
    ack = _SIGNALS.ack
    if ack.is_set():  # a new interrupt; else one not taken yet, delivered again: one
        ack = _SIGNALS.ack = threading.Event()  # acknowledgement silences every timer
    if len(_SIGNALS.received) >= MAX_DELIVERIES:
        return
    main = threading.main_thread().ident

    def later() -> None:
        lost = not ack.wait(REDELIVER_AFTER_S) and _SIGNALS.persistent
        if lost and main is not None and _SIGNALS.shield_depth == 0:
            signal.pthread_kill(main, signum)

    threading.Thread(target=later, daemon=True, name="interrupt-redelivery").start()


REDELIVER_DROPPED_AFTER_S = 0.05  # out of the callback that dropped it, into plain code


def _dropped(unraisable: Any) -> None:
    """`sys.unraisablehook`: Python drops an exception raised where it cannot propagate (an
    at-fork callback while a subprocess starts, a finalizer, a weakref callback) and
    reports it here. An interrupt of ours dropped that way is delivered again a moment
    later, in plain code; anything else goes to the hook that was there before."""
    value = unraisable.exc_value
    if not (isinstance(value, KeyboardInterrupt) and _SIGNALS.received):
        _PREVIOUS_UNRAISABLE_HOOK(unraisable)
        return
    signum = _SIGNALS.received[-1]
    main = threading.main_thread().ident
    if main is None or len(_SIGNALS.received) >= MAX_DELIVERIES:
        return

    def later() -> None:
        time.sleep(REDELIVER_DROPPED_AFTER_S)
        signal.pthread_kill(main, signum)

    threading.Thread(target=later, daemon=True, name="interrupt-redelivery").start()


_PREVIOUS_UNRAISABLE_HOOK: Callable[[Any], object] = sys.unraisablehook


def forward_to(pid: int, *, stop: bool = False) -> None:
    """A SIGTERM to this process reaches `pid` too, at once (parallel drills' workers: each
    unwinds its own drill and stack). Ctrl-C reaches them without help: a terminal
    signals the whole foreground process group, and a second SIGINT would cut their
    cleanup short. `stop`: no longer (the worker is gone)."""
    if stop:
        _SIGNALS.forward.discard(pid)
    else:
        _SIGNALS.forward.add(pid)


def _forward(signum: int) -> None:
    for pid in sorted(_SIGNALS.forward):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def adopt(pid: int) -> None:
    """This process outlives worker `pid` and answers for what it leaves: at the final
    cleanup, the stack folders of an adopted worker that is gone are released with this
    process's own. An interrupted parallel drill's workers can be cut short (xdist gives a
    worker seconds to unwind, then kills it), and no sweep may wait for the next drill."""
    from runbook_checks.stack.leftovers import _start_time

    _SIGNALS.adopted[pid] = _start_time(pid)


def acknowledge() -> None:
    """The interrupt arrived where it is handled (no need to deliver it again)."""
    _SIGNALS.ack.set()


def _defer(signum: int, frame: FrameType | None) -> None:
    _SIGNALS.received.append(signum)
    if not _SIGNALS.deferred:
        print(
            f"runbook-checks: {signal.Signals(signum).name} received while cleaning up; "
            "finishing the cleanup first (kill -9 forces it; then run "
            "`runbook-checks cleanup`)",
            file=sys.stderr,
            flush=True,
        )
    _SIGNALS.deferred.append(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install(*, only_if_default: bool = False, persistent: bool | None = None) -> bool:
    """SIGTERM (and SIGINT) raise `KeyboardInterrupt` in the main thread. With
    `only_if_default`, a handler someone else installed is left alone. `persistent`:
    deliver again until `acknowledge()` (for code like pytest that has one place where it
    takes the interrupt). Returns whether SIGTERM is now handled here."""
    if not _main_thread():
        return False
    if persistent is not None:
        _SIGNALS.persistent = persistent
    if sys.unraisablehook is not _dropped:  # an interrupt Python drops is not lost
        global _PREVIOUS_UNRAISABLE_HOOK
        _PREVIOUS_UNRAISABLE_HOOK = sys.unraisablehook
        sys.unraisablehook = _dropped
    installed = False
    for sig in HANDLED:
        current = signal.getsignal(sig)
        default = signal.SIG_DFL if sig is signal.SIGTERM else signal.default_int_handler
        if only_if_default and current not in (default, _interrupt):
            continue
        signal.signal(sig, _interrupt)
        installed = installed or sig is signal.SIGTERM
    return installed


def received() -> tuple[int, ...]:
    """The signals this process was interrupted by (for messages and the plugin)."""
    return tuple(_SIGNALS.received)


@contextlib.contextmanager
def shielded(*, reraise: bool = True) -> Iterator[None]:
    """SIGINT/SIGTERM arriving inside the block are held back; with `reraise`, the block's
    end raises `KeyboardInterrupt` for them. Outside the main thread: no effect."""
    if not _main_thread():
        yield
        return
    acknowledge()
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    _SIGNALS.shield_depth += 1
    for sig in HANDLED:
        signal.signal(sig, _defer)
    try:
        yield
    finally:
        _SIGNALS.shield_depth -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if _SIGNALS.shield_depth == 0 and _SIGNALS.deferred:
            pending = _SIGNALS.deferred[-1]
            _SIGNALS.deferred.clear()
            if reraise:
                raise KeyboardInterrupt(signal.Signals(pending).name)


# An adopted worker still holding a stack folder at the final cleanup is unwinding (its
# fault reverted, its stack stopping): waited for this long, then killed and its folder
# released here. The controller must not exit first: execnet cuts a worker off ~15 s
# after its controller is gone (SIGINT, then os._exit), its cleanup half done, and an
# interrupt that cut the controller's own teardown short never let xdist reap it.
ADOPTED_UNWIND_S = 20.0
KILLED_GONE_S = 5.0  # a SIGKILLed worker is dead (or a zombie) within this


def _answered_for(
    folder: Path, folder_state: dict[str, object], *, own: bool, deadline: float
) -> bool:
    """The folder is this process's own (with `own`), or an adopted worker's that is gone
    or made gone (see ADOPTED_UNWIND_S; `deadline` on the monotonic clock)."""
    from runbook_checks.stack.leftovers import _alive, _start_time

    pid, start = folder_state.get("owner_pid"), folder_state.get("owner_start")
    if pid == os.getpid():
        return own and start in (None, _start_time(pid))
    if not isinstance(pid, int) or pid not in _SIGNALS.adopted:
        return False
    known = _SIGNALS.adopted[pid]
    if start not in (None, known):
        return False  # the pid of another process since
    while _alive(pid, known):
        if not (folder / STATE_FILE).exists():
            return False  # the worker released it itself
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            gone = time.monotonic() + KILLED_GONE_S
            while _alive(pid, known) and time.monotonic() < gone:
                time.sleep(0.02)
            break
        time.sleep(0.05)
    return True


def release_own(*, own: bool = True) -> SweepReport:
    """Release every stack folder this process owns, and those of its adopted workers
    once they are gone (a last resort: only call it when no stack of this process is in
    use any more). Not `own`: only the workers' (a worker that crashed in a run that was
    not interrupted)."""
    reports: list[SweepReport] = []
    deadline = time.monotonic() + ADOPTED_UNWIND_S  # one wait for all the workers
    for folder in sorted(work_root().iterdir()):
        try:
            data = json.loads((folder / STATE_FILE).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and _answered_for(folder, data, own=own, deadline=deadline):
            reports.append(release(folder))
    return SweepReport(
        tuple(f for r in reports for f in r.folders),
        tuple(p for r in reports for p in r.killed),
        tuple(m for r in reports for m in r.unmounted),
        tuple(f for r in reports for f in r.faults),
        tuple(p for r in reports for p in r.problems),
    )


@dataclass(frozen=True)
class CleanupReport:
    revert_errors: tuple[str, ...]
    released: SweepReport

    def lines(self) -> list[str]:
        out = [f"could not revert: {e}" for e in self.revert_errors]
        r = self.released
        if r.folders or r.killed or r.unmounted:
            out.append(
                f"released {len(r.folders)} stack folder(s): killed {len(r.killed)} "
                f"process(es), unmounted {len(r.unmounted)} mount(s)"
            )
        out += [f"fault left by the interrupted drill, reverted: {f}" for f in r.faults]
        out += [f"NOT cleaned: {p}" for p in r.problems]
        return out


def final_cleanup() -> CleanupReport:
    """Revert every live fault and release this process's stack folders; further signals
    are held back until it is done. Never raises."""
    from runbook_checks.faults.base import ACTIVE

    errors: list[str] = []
    released = SweepReport((), (), ())
    with shielded(reraise=False):
        try:
            errors = ACTIVE.revert_all()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        try:
            released = release_own()
        except Exception as exc:
            errors.append(f"releasing stack folders: {type(exc).__name__}: {exc}")
    return CleanupReport(tuple(errors), released)


def run_guarded(main: Callable[[], int], *, interrupted_code: int = 130) -> int:
    """Run `main` with SIGTERM/SIGINT as `KeyboardInterrupt`. After an interrupt (raised
    out of `main`, or swallowed inside it, as pytest does): the final cleanup, its report
    on stderr, and `interrupted_code` (or 0 where `main` took the interrupt as its normal
    end and said so by returning 0, as `runbook-checks up` does)."""
    install()
    already = len(_SIGNALS.received)
    try:
        code = main()
    except KeyboardInterrupt as exc:
        acknowledge()
        return _after_interrupt(str(exc) or "Ctrl-C", interrupted_code)
    if len(_SIGNALS.received) > already:
        name = signal.Signals(_SIGNALS.received[-1]).name
        return _after_interrupt(name, interrupted_code, quiet=code == 0)
    return code


def _after_interrupt(what: str, code: int, *, quiet: bool = False) -> int:
    report = final_cleanup()
    for line in report.lines():
        print(f"runbook-checks: {line}", file=sys.stderr)
    if quiet and not report.lines():
        return 0
    if report.revert_errors or report.released.problems:
        print(
            f"runbook-checks: interrupted ({what}); NOT everything could be cleaned up "
            "(see above); run `runbook-checks cleanup`.",
            file=sys.stderr,
            flush=True,
        )
        return code
    print(
        f"runbook-checks: interrupted ({what}); every fault reverted and everything "
        "started stopped.",
        file=sys.stderr,
        flush=True,
    )
    return code
