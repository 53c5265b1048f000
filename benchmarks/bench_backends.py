"""Stack start on each backend, side by side (printed, never asserted).

    .venv/bin/python benchmarks/bench_backends.py [--warm 3] [--backends local,docker]

For each backend, in a fresh Python process (so imports and clients count, as in a
drill's first start):
- cold: the first start (all components ready, /health 200) with the backend's caches
  empty where it has one: the local backend's template cluster (initdb and migrations)
  is built into an empty cache folder; the docker backend's images are present (`make
  images` measures their build), its containers do not exist yet;
- warm: the next starts in the same process (caches filled, images in the page cache);
- stop and reset_data, for scale.

The docker backend needs its engine (scripts/dockerd.sh start) and images (make images);
without them its row says why it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(backend: str, warm: int) -> dict[str, object]:
    """Runs in the child: start/stop `1 + warm` times, reset a few times."""
    begin = time.monotonic()
    from files_profile import KIT

    if backend == "docker":
        from runbook_checks.stack.docker.stack import DockerStack as Stack
    else:
        from runbook_checks.stack.local import LocalStack as Stack  # type: ignore[assignment]
    imports = time.monotonic() - begin
    starts: list[float] = []
    stops: list[float] = []
    resets: list[float] = []
    versions: dict[str, str] = {}
    for n in range(1 + warm):
        stack = Stack(kit=KIT)
        begin = time.monotonic()
        stack.start()
        starts.append(time.monotonic() - begin)
        try:
            if n == 0:
                versions = stack.versions()
            for _ in range(5):
                begin = time.monotonic()
                stack.reset_data()
                resets.append(time.monotonic() - begin)
        finally:
            begin = time.monotonic()
            stack.stop()
            stops.append(time.monotonic() - begin)
    return {
        "imports": imports,
        "starts": starts,
        "stops": stops,
        "resets": resets,
        "versions": versions,
    }


def run_child(backend: str, warm: int) -> dict[str, object]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
        if backend == "local":
            env["XDG_CACHE_HOME"] = cache  # an empty template cache: a cold first start
        done = subprocess.run(
            [sys.executable, __file__, "--child", backend, "--warm", str(warm)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {done.returncode}"}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _seconds(values: object) -> list[float]:
    assert isinstance(values, list)
    return [float(v) for v in values]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm", type=int, default=3, help="warm starts after the cold one")
    parser.add_argument("--backends", default="local,docker")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.warm)))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results = {backend: run_child(backend, args.warm) for backend in backends}
    width = 14
    print(f"{'':28}" + "".join(f"{b:>{width}}" for b in backends))

    def row(label: str, pick: str) -> None:
        cells = []
        for backend in backends:
            result = results[backend]
            if "error" in result:
                cells.append(f"{'-':>{width}}")
                continue
            starts = _seconds(result["starts"])
            value = {
                "imports": float(result["imports"]),  # type: ignore[arg-type]
                "cold": starts[0],
                "warm": statistics.median(starts[1:]) if len(starts) > 1 else float("nan"),
                "stop": statistics.median(_seconds(result["stops"])),
                "reset": statistics.median(_seconds(result["resets"])),
            }[pick]
            cells.append(f"{value:>{width - 2}.2f} s")
        print(f"{label:28}" + "".join(cells))

    row("imports (first time)", "imports")
    row("cold start (first stack)", "cold")
    row(f"warm start (median of {args.warm})", "warm")
    row("stop (median)", "stop")
    row("reset_data (median)", "reset")
    for backend, result in results.items():
        if "error" in result:
            print(f"\n{backend}: not measured: {result['error']}")
        else:
            versions = result.get("versions")
            if isinstance(versions, dict):
                print(f"\n{backend}:")
                for name, version in versions.items():
                    print(f"  {name:13} {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
