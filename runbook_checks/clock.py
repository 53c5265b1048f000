"""Time, injected: a Clock protocol, the real clock, a fake one, and poll-until-true waits.

Nothing in the product sleeps for a fixed time to "let things settle": it polls a
condition until a deadline, naming the transient errors it tolerates on the way. Unit
tests pass a `FakeClock` and never sleep for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wall(self) -> float:
        """Seconds since the epoch (for evidence timestamps)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wall(self) -> float:
        return time.time()


@dataclass
class FakeClock:
    """A clock that advances only when slept on (or when `advance` is called)."""

    now: float = 0.0
    epoch: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)

    def wall(self) -> float:
        return self.epoch + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


SYSTEM_CLOCK: Clock = SystemClock()


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline; says what was awaited and last seen."""

    def __init__(self, what: str, timeout_s: float, last: object, attempts: int) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.last = last
        self.attempts = attempts
        super().__init__(
            f"waited {timeout_s:.1f}s for {what}: still not true after {attempts} checks; "
            f"last observed: {last!r}"
        )


def wait_until(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout_s: float,
    interval_s: float = 0.05,
    transient: tuple[type[BaseException], ...] = (),
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Call `check` until it returns a truthy value; return that value.

    Exceptions listed in `transient` count as "not yet" (the last one is reported on
    timeout); any other exception propagates at once. Raises `WaitTimeout`.
    """
    deadline = clock.monotonic() + timeout_s
    attempts = 0
    last: object = None
    while True:
        attempts += 1
        try:
            value = check()
        except transient as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if clock.monotonic() >= deadline:
            raise WaitTimeout(what, timeout_s, last, attempts)
        clock.sleep(min(interval_s, max(deadline - clock.monotonic(), 0.0)))
