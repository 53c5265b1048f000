"""How much database pool the measured load needs: the post-mortem's 20 -> 50 decision,
made from data instead of a guess.

Inputs are the pool samples (`pool.PoolSample`, a few per second) and locust's history
(the user count and cumulative request count each second). Outputs:

- **saturation**: the first moment the pool was saturated, and the user count then:
  every connection lent out (`in_use == size`), a request waiting for one
  (`waiting > 0`), or a request giving up (the pool's timeouts counter went up);
- **stages**: per stretch of constant user count, requests/s and the pool's mean and
  peak use, so the table shows the step at which it breaks;
- **needed pool**, by Little's law (L = λW) applied to what the pool itself shows, so
  that the figure does not depend on the pool it was measured with:
  - W, how long a request holds a connection: the mean connections lent out over the
    requests per second (`in_use / rps`). Only lent-out connections count, never the
    requests queued for one, so W is the same whether the pool was ample or saturated.
  - the share of users that hold a connection: a closed workload's user (locust's) is
    either thinking, holding a connection, doing other work, or waiting for one. The
    waiting ones (Little's law on the queue: the pool's waiting gauge) would have held one with
    an adequate pool after the same think time, so per user not waiting, `in_use /
    (users - waiting)` connections are busy; at `u` users with an ample pool
    L = u * in_use / (users - waiting). With no queue it is simply in_use / users.
  Busy connections of independent requests are close to Poisson-distributed (an M/G/inf
  system), so the pool that covers 99% of instants is the 0.99 quantile of Poisson(L). A
  margin (default 25%) on top. Only when no stage has a user not waiting is the figure
  the observed peak of in_use + waiting, an upper bound, and the report says so.

Assumptions: W does not grow with load (true while neither the database nor the API's
own CPU is the bottleneck; measured on a quiet 2-core machine, a step to 30 users at
50 ms held a connection 164 ms per request through a pool of 2 and 321 ms through a
pool of 50, where 30 requests at once share the API's event loop while they hold one:
the needed pool came out 15 and 20; the report says so where a stage queued), and a
user's think time does not depend on how long it waited (locust's `wait_time`).
Requests that gave up waiting (the timeouts counter) went back to their users early, so
a stage with timeouts slightly understates the share; the report notes it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runbook_checks.load.locust_csv import HistoryPoint
from runbook_checks.load.pool import PoolSample

DEFAULT_MARGIN = 0.25
DEFAULT_QUANTILE = 0.99
GROWTH = (1.0, 1.25, 1.5, 2.0)  # projections beyond the run's peak: +25%, +50%, +100%


@dataclass(frozen=True)
class StageLoad:
    users: int
    start_t: float
    end_t: float
    samples: int
    rps: float | None
    mean_in_use: float
    mean_waiting: float
    peak_in_use: int
    peak_waiting: int
    timeouts: int
    saturated_share: float  # of this stage's samples
    peak_active: int | None  # pg_stat_activity rows in state 'active'

    @property
    def saturated(self) -> bool:
        return self.saturated_share > 0

    @property
    def queued(self) -> bool:
        """Requests waited for (or gave up on) a connection: their response times, and so
        the request rate of a closed workload, are not what an adequate pool would see."""
        return self.peak_waiting > 0 or self.timeouts > 0


@dataclass(frozen=True)
class Saturation:
    users: int | None  # the user count then (while ramping: the count being ramped to)
    at_s: float  # seconds since the first sample
    reason: str
    users_from: int | None = None  # while ramping: the count being ramped from

    def describe_users(self) -> str:
        if self.users is None:
            return "an unknown number of users"
        if self.users_from is not None and self.users_from != self.users:
            return f"{self.users_from}-{self.users} users (while ramping)"
        return f"{self.users} users"


@dataclass(frozen=True)
class Projection:
    users: int
    busy_connections: float  # L: mean connections busy at this many users, ample pool
    needed: int  # the quantile of Poisson(L)
    recommended: int  # with the margin


@dataclass(frozen=True)
class Headroom:
    pool_size: int | None
    samples: int
    stages: tuple[StageLoad, ...]
    saturation: Saturation | None
    hold_ms_per_request: float | None  # W
    rps_per_user: float | None  # the request rate per user with an ample pool
    peak_users: int | None
    observed_peak_demand: int | None  # max(in_use + waiting)
    needed: int | None
    recommended: int | None
    basis: str
    margin: float
    projections: tuple[Projection, ...]
    notes: tuple[str, ...]

    @property
    def enough(self) -> bool | None:
        """Whether the configured pool covers what the measured peak needs."""
        if self.pool_size is None or self.needed is None:
            return None
        return self.pool_size >= self.needed


def poisson_quantile(mean: float, q: float = DEFAULT_QUANTILE) -> int:
    """The smallest k with P(X <= k) >= q for X ~ Poisson(mean)."""
    if mean <= 0:
        return 0
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    total, k = 0.0, 0
    limit = int(mean + 20 * math.sqrt(mean) + 20)
    while k <= limit:
        total += math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))
        if total >= q:
            return k
        k += 1
    return limit


def _saturated_why(sample: PoolSample, timeouts_before: float | None) -> str:
    reasons = []
    if sample.size is not None and sample.in_use is not None and sample.in_use >= sample.size:
        reasons.append(f"all {sample.size} connections in use")
    if sample.waiting:
        reasons.append(f"{sample.waiting} request(s) waiting for a connection")
    if (
        sample.timeouts_total is not None
        and timeouts_before is not None
        and sample.timeouts_total > timeouts_before
    ):
        reasons.append(
            f"{sample.timeouts_total - timeouts_before:g} request(s) gave up waiting "
            "(the pool's timeouts counter went up)"
        )
    return "; ".join(reasons)


def compute_headroom(
    samples: Sequence[PoolSample],
    history: Sequence[HistoryPoint],
    *,
    margin: float = DEFAULT_MARGIN,
    quantile: float = DEFAULT_QUANTILE,
    min_stage_s: float = 2.0,
) -> Headroom:
    pool = sorted((s for s in samples if s.in_use is not None), key=lambda s: s.t)
    hist = sorted(history, key=lambda h: h.t)
    times = [h.t for h in hist]

    def users_around(t: float) -> tuple[int, int] | None:
        """The user counts of locust's history rows around `t` (a second apart)."""
        i = bisect.bisect_right(times, t)
        around = [h.users for h in hist[max(i - 1, 0) : i + 1]]
        return (min(around), max(around)) if i and around else None

    def users_at(t: float) -> int | None:
        """Users at `t`; while users are being started, the count being ramped to."""
        around = users_around(t)
        return None if around is None else around[1]

    peak_users = max((h.users for h in hist), default=None) or None
    if not pool:
        return Headroom(
            None,
            0,
            (),
            None,
            None,
            None,
            peak_users,
            None,
            None,
            None,
            "no pool data",
            margin,
            (),
            (
                "no pool samples: the API's /metrics was not reachable, so the "
                "pool's headroom is unknown",
            ),
        )
    sizes = [s.size for s in pool if s.size is not None]
    pool_size = max(set(sizes), key=sizes.count) if sizes else None

    # saturation, sample by sample
    flags: list[bool] = []
    saturation: Saturation | None = None
    timeouts_seen = pool[0].timeouts_total
    for sample in pool:
        why = _saturated_why(sample, timeouts_seen)
        flags.append(bool(why))
        if why and saturation is None:
            around = users_around(sample.t)
            saturation = Saturation(around[1] if around else None, sample.t - pool[0].t, why,
                                    around[0] if around else None)  # fmt: skip
        if sample.timeouts_total is not None:
            timeouts_seen = max(timeouts_seen or 0.0, sample.timeouts_total)

    stages = tuple(_stages(pool, flags, users_at, hist, min_stage_s))
    observed_peak = max((s.demand for s in pool if s.demand is not None), default=None)
    notes: list[str] = []

    measured = [s for s in stages if s.rps and s.users > 0 and s.users - s.mean_waiting > 0]
    hold_s = rps_per_user = None
    projections: tuple[Projection, ...] = ()
    needed: int | None = None
    if measured:
        weight = [s.samples for s in measured]
        in_use = sum(s.mean_in_use * w for s, w in zip(measured, weight, strict=True))
        rate = sum((s.rps or 0.0) * w for s, w in zip(measured, weight, strict=True))
        free = sum((s.users - s.mean_waiting) * w for s, w in zip(measured, weight, strict=True))
        hold_s, busy_per_user = in_use / rate, in_use / free
        rps_per_user = busy_per_user / hold_s if hold_s > 0 else None
        top = peak_users or max(s.users for s in stages)
        projections = tuple(
            _project(round(top * g), busy_per_user, quantile, margin) for g in GROWTH
        )
        needed = projections[0].needed
        queued = [s for s in measured if s.queued]
        basis = (
            f"Little's law on the pool's samples from {len(measured)} stage(s): each "
            f"request holds a connection {hold_s * 1000:.1f} ms on average; "
            f"{busy_per_user:.3f} connections busy per user not waiting for one"
            + (
                f" ({len(queued)} of the stages queued for the pool: their waiting "
                "users are counted as they would be with an ample pool)"
                if queued
                else ""
            )
            + f"; at {top} users L = {projections[0].busy_connections:.1f} busy "
            f"connections, p{quantile * 100:g} of Poisson(L) = {needed}"
        )
        if peak_users and max(s.users for s in measured) < peak_users:
            notes.append(
                f"extrapolated from {max(s.users for s in measured)} users to {peak_users}: "
                "assumes the hold time per request stays the same"
            )
        if queued:
            notes.append(
                "the hold time was measured while the pool queued requests, so fewer "
                "requests were inside the API at once than an ample pool lets in: where "
                "the API's own CPU is busy, each holds its connection longer with an "
                "ample pool, which then needs more (on 2 cores: 15 measured through 2 "
                "connections, 20 through 50); confirm with a run on the recommended pool"
            )
        if any(s.timeouts for s in measured):
            notes.append(
                "some requests gave up waiting for a connection (the pool's timeouts counter): "
                "they went back to their users early, so the share of users holding a "
                "connection, and the pool needed, are slightly understated"
            )
    elif observed_peak is not None and observed_peak > 0:
        needed = observed_peak
        basis = (
            "observed peak of in_use + waiting: no stage had a user that was not "
            "waiting for a connection, so the hold time cannot be separated from "
            "queueing; an upper bound"
        )
    else:
        basis = "no database work observed"
    recommended = None if needed is None else max(1, math.ceil(needed * (1 + margin)))
    peak_active = max((s.peak_active for s in stages if s.peak_active is not None), default=None)
    peak_in_use = max((s.in_use or 0 for s in pool), default=0)
    if peak_active is not None and peak_in_use >= 4 and peak_active * 2 < peak_in_use:
        notes.append(
            f"pg_stat_activity (the runbook's query) showed at most {peak_active} 'active' "
            f"while the pool had up to {peak_in_use} connections lent out: the time is spent "
            "outside the database server (network, application), so that query "
            "understates pool pressure; the pool's in-use and waiting gauges show it"
        )
    return Headroom(
        pool_size,
        len(pool),
        stages,
        saturation,
        None if hold_s is None else hold_s * 1000,
        rps_per_user,
        peak_users,
        observed_peak,
        needed,
        recommended,
        basis,
        margin,
        projections,
        tuple(notes),
    )


def _project(users: int, busy_per_user: float, quantile: float, margin: float) -> Projection:
    busy = busy_per_user * users
    needed = poisson_quantile(busy, quantile)
    return Projection(users, busy, needed, max(1, math.ceil(needed * (1 + margin))))


def _stages(
    pool: list[PoolSample],
    flags: list[bool],
    users_at: Callable[[float], int | None],
    history: list[HistoryPoint],
    min_s: float,
) -> list[StageLoad]:
    groups: list[tuple[int, list[int]]] = []
    for i, sample in enumerate(pool):
        users = users_at(sample.t)
        if users is None:
            continue
        if groups and groups[-1][0] == users:
            groups[-1][1].append(i)
        else:
            groups.append((users, [i]))
    stages = []
    for users, idx in groups:
        if users == 0 or len(idx) < 2 or pool[idx[-1]].t - pool[idx[0]].t < min_s:
            continue  # a ramp's passing user counts, or nobody running
        chunk = [pool[i] for i in idx]
        start, end = chunk[0].t, chunk[-1].t
        timeouts = [s.timeouts_total for s in chunk if s.timeouts_total is not None]
        active = [s.activity.get("active") for s in chunk if s.activity]
        stages.append(
            StageLoad(
                users=users,
                start_t=start,
                end_t=end,
                samples=len(chunk),
                rps=_rps(history, start, end),
                mean_in_use=sum(s.in_use or 0 for s in chunk) / len(chunk),
                mean_waiting=sum(s.waiting or 0 for s in chunk) / len(chunk),
                peak_in_use=max(s.in_use or 0 for s in chunk),
                peak_waiting=max(s.waiting or 0 for s in chunk),
                timeouts=int(max(timeouts) - min(timeouts)) if timeouts else 0,
                saturated_share=sum(flags[i] for i in idx) / len(idx),
                peak_active=max((a for a in active if a is not None), default=None),
            )
        )
    return stages


def _rps(history: list[HistoryPoint], start: float, end: float) -> float | None:
    """Requests per second between `start` and `end` from locust's cumulative counts."""
    inside = [h for h in history if start - 0.5 <= h.t <= end + 0.5]
    if len(inside) < 2 or inside[-1].t <= inside[0].t:
        return None
    return (inside[-1].requests_total - inside[0].requests_total) / (inside[-1].t - inside[0].t)
