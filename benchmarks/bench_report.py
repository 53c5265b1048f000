"""Time to render report.html from an evidence folder's journal (no servers).

Reads the folder's journal.json and the runbook (for the coverage matrix) once, then
renders report.html `--repeat` times and prints each render's time and the median; the
first render includes compiling the templates (cached by the environment afterwards).
`--out FILE` writes the last render, to compare two versions of the code.

    .venv/bin/python benchmarks/bench_report.py EVIDENCE_FOLDER [--repeat 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook_checks.evidence.coverage import coverage  # noqa: E402
from runbook_checks.evidence.html_report import report_html  # noqa: E402
from runbook_checks.evidence.journal import load_journal  # noqa: E402
from runbook_checks.runbook.parser import parse_runbook  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an evidence folder (or its journal.json)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runbook", default=str(ROOT / "runbooks/files-incident-response.md"))
    parser.add_argument("--out", type=Path, help="write the last render here")
    args = parser.parse_args()
    journal = load_journal(args.folder)
    rows = coverage(parse_runbook(Path(args.runbook)), journal.scenarios, journal.skipped)
    times: list[float] = []
    page = ""
    for run in range(1, args.repeat + 1):
        began = time.perf_counter()
        page = report_html(journal, rows)
        took = time.perf_counter() - began
        times.append(took)
        print(f"render {run}: {took * 1000:.1f} ms")
    print(
        f"{len(journal.scenarios)} scenarios, {len(page) / 1024:.0f} KiB of HTML: median "
        f"{statistics.median(times) * 1000:.1f} ms, first {times[0] * 1000:.1f} ms"
    )
    if args.out:
        args.out.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
