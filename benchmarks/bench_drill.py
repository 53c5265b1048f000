"""The whole drill's wall time, whether repeated drills give the same verdicts, and each
scenario's time to alert, detect and recover (printed, never asserted).

    .venv/bin/python benchmarks/bench_drill.py [--runs 1] [--workers auto] [--serial]
        [--compare EXPR] [-- extra pytest args]

Drills run in parallel (`--workers`, as `runbook-checks drill` does); `--serial` first
runs one drill with one worker and prints the parallel runs' wall time against it.
`--compare EXPR` first drills the scenarios `-k EXPR` selects twice, with one worker and
with `--workers`, and prints the two side by side (`make bench` compares the share-link
section's scenarios: the whole drill with one worker alone takes five minutes).
`--runs 10`: ten drills in a row, and whether their verdicts and findings are identical.
The first run also says how much of the drills' timelines was watched before anyone
acted (the alert window and wait) and how much was mitigating and recovering.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _journal(folder: Path) -> Any:
    """A drill's journal, read once (every figure below comes from it)."""
    return json.loads((folder / "journal.json").read_text())


def verdicts(folder: Path) -> dict[str, str]:
    journal = _journal(folder)
    return {s["scenario"]: s["verdict"] for s in journal.get("scenarios", [])}


def fingerprints(folder: Path) -> dict[str, tuple[str, ...]]:
    """Per scenario, the (kind, cause) of each ERROR finding: what the baseline matches."""
    journal = _journal(folder)
    return {
        s["scenario"]: tuple(
            sorted(
                f"{f['kind']}[{f.get('cause', '')}]"
                for f in s.get("findings", [])
                if f.get("level") == "error"
            )
        )
        for s in journal.get("scenarios", [])
    }


def stage_times(folder: Path) -> list[str]:
    """One line per scenario: time to alert (and the section the first alert points to),
    to detect, to recover."""
    journal = _journal(folder)

    def cell(value: object) -> str:
        return f"{value:6.2f}s" if isinstance(value, int | float) else "      -"

    lines = []
    for s in journal.get("scenarios", []):
        alerting = s.get("alerting") or {}
        if not alerting.get("measured"):
            alert = "not measured"
        elif alerting.get("time_to_alert_s") is None:
            alert = "  none "
        else:
            first = (alerting.get("alerts") or [{}])[0]
            own = "own" if first.get("section_id") == s["section_id"] else "other"
            alert = f"{cell(alerting['time_to_alert_s'])} ({own} section)"
        lines.append(
            f"  {s['scenario'].rpartition('::')[2][:60]:60} alert {alert:22} detect "
            f"{cell(s.get('time_to_detect_s'))}  recover {cell(s.get('time_to_recover_s'))}"
        )
    return lines


def where_time_went(folder: Path) -> str:
    """The drills' timelines added up (injection to revert): how much of it was watched
    before anyone acted (the alert window and the alert wait: `alert_window_s`,
    `alert_wait_s`) and how much mitigating and recovering; the longest timelines."""
    journal = _journal(folder)
    watched = acting = 0.0
    spans: list[tuple[float, str]] = []
    for s in journal.get("scenarios", []):
        at = {e["name"]: e["at_s"] for e in s.get("events", [])}
        if "injected" not in at or "reverted" not in at:
            continue
        acted = at.get("mitigating", at["reverted"])
        watched += acted - at["injected"]
        acting += at["reverted"] - acted
        spans.append((at["reverted"] - at["injected"], s["scenario"].rpartition("::")[2]))
    total = watched + acting
    if not total:
        return "no drill reached its revert"
    top = sorted(spans, reverse=True)[:4]
    longest = ", ".join(f"{name[:40]} {span:.0f} s" for span, name in top)
    return (
        f"the {len(spans)} drills' timelines add up to {total:.0f} s: {watched:.0f} s "
        f"({watched / total:.0%}) watched before anyone acted, {acting:.0f} s mitigating and "
        f"recovering; longest: {longest}"
    )


def stale(folder: Path) -> int:
    journal = _journal(folder)
    return len(journal.get("stale_baseline", []))


def drill(workers: str, pytest_args: list[str]) -> tuple[float, int, Path | None]:
    """One `runbook-checks drill`: its wall time, exit code and evidence folder."""
    evidence = ROOT / "evidence"
    before = set(evidence.iterdir()) if evidence.exists() else set()
    begin = time.monotonic()
    done = subprocess.run(
        [
            str(ROOT / ".venv/bin/runbook-checks"),
            "drill",
            "--workers",
            workers,
            "--",
            "-q",
            "-p",
            "no:randomly",
            *pytest_args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - begin
    new = sorted(p for p in set(evidence.iterdir()) - before if (p / "journal.json").exists())
    return took, done.returncode, new[-1] if new else None


def compare(expression: str, workers: str) -> None:
    """The same scenarios drilled with one worker, then with `workers`, side by side."""
    serial_s, serial_exit, serial_folder = drill("1", ["-k", expression])
    parallel_s, parallel_exit, parallel_folder = drill(workers, ["-k", expression])
    serial = verdicts(serial_folder) if serial_folder else {}
    parallel = verdicts(parallel_folder) if parallel_folder else {}
    print(
        f"parallel ({workers} workers) vs serial, the same {len(parallel)} scenarios "
        f"(-k {expression}) side by side: {parallel_s:.0f} s vs {serial_s:.0f} s, "
        f"{serial_s / parallel_s:.2f}x faster; exits {parallel_exit} and {serial_exit}, "
        f"verdicts {'identical' if serial == parallel else 'DIFFER'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--serial", action="store_true", help="also one drill, one worker")
    parser.add_argument("--compare", metavar="EXPR", help="-k EXPR drilled serial and parallel")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.workers)
    runs: list[dict[str, str]] = []
    prints: list[dict[str, tuple[str, ...]]] = []
    serial_s: float | None = None
    plan = (["1"] if args.serial else []) + [args.workers] * args.runs
    for n, workers in enumerate(plan):
        took, returncode, folder = drill(workers, args.pytest_args)
        found = verdicts(folder) if folder else {}
        runs.append(found)
        prints.append(fingerprints(folder) if folder else {})
        if args.serial and n == 0:
            serial_s = took
        elif serial_s:
            print(
                f"parallel ({workers} workers) vs serial: {took:.0f} s vs {serial_s:.0f} s, "
                f"{serial_s / took:.2f}x faster"
            )
        print(
            f"drill {n + 1} ({workers} worker(s)): {took:.0f} s wall (target < 60 s), "
            f"exit {returncode}, "
            f"{len(found)} scenarios: "
            + ", ".join(f"{v}={list(found.values()).count(v)}" for v in sorted(set(found.values())))
            + f"; stale baseline entries: {stale(folder) if folder else '?'}"
        )
        if folder and n == 0:
            print("time to alert / detect / recover per scenario (first run):")
            print("\n".join(stage_times(folder)))
            print(where_time_went(folder))
    if len(runs) > 1:
        differing = {k for r in runs for k in r if len({x.get(k) for x in runs}) > 1}
        print(
            f"verdicts identical across {len(runs)} runs: {not differing}"
            + (f"; differ: {sorted(differing)}" if differing else "")
        )
        moved = {k for r in prints for k in r if len({x.get(k) for x in prints}) > 1}
        print(
            f"error findings (kind and cause) identical across {len(prints)} runs: {not moved}"
            + (f"; differ: {sorted(moved)}" if moved else "")
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
