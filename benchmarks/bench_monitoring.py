"""Monitoring figures (printed, never asserted), on the embedded (local) backend:

- Prometheus' and Alertmanager's own time to ready (spawn -> GET /-/ready 200), each
  started alone in a scratch folder;
- Prometheus' first scrape after its start (its discovery hands targets over every 5 s);
- the stack's start with and without monitoring, alternated in one run (the second is
  what `RUNBOOK_CHECKS_MONITORING=off` or `LocalStack(monitoring=False)` gives);
- the CPU an idle stack's servers take with and without monitoring (1 s scrapes);
- on a monitored stack: time from killing the API to the FilesApiDown notification in
  the inbox, and from starting it again to the resolved one.

    .venv/bin/python benchmarks/bench_monitoring.py [--starts 3] [--servers 5] [--idle-s 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from files_profile import KIT
from runbook_checks.stack import start_with_retry
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.monitoring import (
    Monitoring,
    MonitoringBinaries,
    Notification,
    find_monitoring,
)
from runbook_checks.stack.postgres import ensure_template, find_postgres

RULES = Path(__file__).resolve().parents[1] / "tests/fixtures/monitoring/files-api-down.rules.yml"


@contextlib.contextmanager
def _started(*, monitoring: bool) -> Iterator[LocalStack]:
    """A started local stack (one whose start lost a port race is started again)."""
    stack = start_with_retry(lambda: LocalStack(monitoring=monitoring, kit=KIT))
    assert isinstance(stack, LocalStack)
    try:
        yield stack
    finally:
        stack.stop()


def _figure(values: list[float]) -> str:
    median = statistics.median(values)
    return f"median {median:.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def servers_ready(binaries: MonitoringBinaries, rounds: int) -> None:
    ready: dict[str, list[float]] = {"prometheus": [], "alertmanager": []}
    first_scrape: list[float] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as folder:
            monitoring = Monitoring(
                Path(folder),
                binaries,
                postgres_url=None,
                redis_url=None,
                api_urls=[],
                api_job=KIT.vocabulary.api_job,
            )
            try:
                for name in ready:
                    server = monitoring.component(name)
                    begin = time.monotonic()
                    server.start()
                    ready[name].append(time.monotonic() - begin)
                # Prometheus scrapes its own /metrics as the one API target here
                prometheus = monitoring.component("prometheus")
                monitoring.set_api_targets([prometheus.url])
                spawned = time.monotonic() - ready["prometheus"][-1] - ready["alertmanager"][-1]
                monitoring.wait_fresh(time.time(), timeout_s=15)
                first_scrape.append(time.monotonic() - spawned)
            finally:
                for server in monitoring.components:
                    server.stop()
                monitoring.close()
    for name, values in ready.items():
        print(f"{name} ready (spawn -> /-/ready 200): {_figure(values)} over {rounds}")
    print(
        f"prometheus' first scrape after its spawn: {_figure(first_scrape)} "
        "(its discovery hands targets over every 5 s)"
    )


def stack_starts(rounds: int) -> None:
    with_monitoring: list[float] = []
    without: list[float] = []
    for _ in range(rounds):
        for monitored, into in ((True, with_monitoring), (False, without)):
            begin = time.monotonic()
            with _started(monitoring=monitored):
                into.append(time.monotonic() - begin)
    print(f"stack start with monitoring:    {_figure(with_monitoring)}")
    print(f"stack start without monitoring: {_figure(without)} (RUNBOOK_CHECKS_MONITORING=off)")


def _cpu_s(pids: list[int]) -> float:
    """utime + stime of the processes and their waited-for children, in seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def idle_cost(seconds: float) -> None:
    """CPU the monitoring processes (and PostgreSQL, Redis and the API, which they
    scrape) take on an idle stack, against the same servers of a stack without it."""
    for monitored in (True, False):
        with _started(monitoring=monitored) as stack:
            time.sleep(6)  # past Prometheus' first scrape
            servers = [stack.components[n].pid for n in ("postgres", "redis", "api")]
            extra = [c.pid for c in stack.monitoring.components] if stack.monitoring else []
            pids = [p for p in (*servers, *extra) if p is not None]
            children = _children(pids)
            before = _cpu_s(children)
            time.sleep(seconds)
            used = _cpu_s(children) - before
            label = "with" if monitored else "without"
            print(
                f"idle CPU, {label} monitoring (postgres, redis, api{', monitoring' * monitored}): "
                f"{used / seconds * 100:.1f}% of one core over {seconds:.0f} s"
            )


def _children(pids: list[int]) -> list[int]:
    """The processes and every process of their groups (PostgreSQL's backends)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) in pids:
                    found.append(int(entry.name))
    return found


def alert_times(rules: Path) -> None:
    with _started(monitoring=True) as stack:
        monitoring = stack.monitoring
        assert monitoring is not None
        begin = time.monotonic()
        monitoring.set_rules([rules])
        print(f"set_rules (promtool, copy, reload, listed): {time.monotonic() - begin:.3f} s")
        monitoring.wait_fresh(time.time(), timeout_s=15)
        begin = time.monotonic()
        monitoring.wait_fresh(time.time())
        print(f"wait_fresh on a settled stack: {time.monotonic() - begin:.3f} s")
        resets = []
        for _ in range(10):
            begin = time.monotonic()
            stack.reset_data()
            resets.append(time.monotonic() - begin)
        print(f"reset_data with monitoring: {_figure(resets)} over 10")
        api = stack.component("api")
        times = {}
        for act, status in ((api.kill, "firing"), (api.start, "resolved")):

            def api_down(n: Notification, status: str = status) -> bool:
                return n.alertname == "FilesApiDown" and n.status == status

            begin = time.monotonic()
            act()
            times[status] = (
                monitoring.inbox.wait_for(api_down, after_mono=begin, timeout_s=30),
                begin,
            )
        (firing, killed), (resolved, started) = times["firing"], times["resolved"]
        if firing is None or resolved is None:
            print(f"an alert did not arrive: firing {firing}, resolved {resolved}")
            return
        print(
            f"API killed -> FilesApiDown firing in the inbox: {firing.received_mono - killed:.3f} s"
        )
        print(
            f"API started -> FilesApiDown resolved in the inbox: "
            f"{resolved.received_mono - started:.3f} s (includes the API's own start)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3, help="stack starts of each kind")
    parser.add_argument("--servers", type=int, default=5, help="lone server starts")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU sampling time")
    args = parser.parse_args()
    binaries = find_monitoring()
    if isinstance(binaries, str):
        print(f"no monitoring figures: {binaries}")
        return
    ensure_template(find_postgres(), KIT.twin)
    servers_ready(binaries, args.servers)
    stack_starts(args.starts)
    idle_cost(args.idle_s)
    alert_times(RULES)


if __name__ == "__main__":
    main()
