"""Load shapes for any locustfile: baseline, step (+25%, +50%, +100%), spike, soak.

The engine's, not the service's: `runbook-checks load` hands this file to locust next
to the service's locustfile (the profile's `load`), and a shape is picked with
`--shape`; `--users` is the baseline user count and `--run-time` the duration (the
shape reads both). By hand (SHAPES: this file's path):

    locust -f loadtests/locustfile.py,$SHAPES --headless \
        --shape step --users 20 --run-time 60s --host http://127.0.0.1:5000

The stages themselves are plain data in `runbook_checks.load.shapes` (unit-tested
without locust); this class only hands them to locust. It runs on the master only.
Never imported by the engine itself (locust patches the interpreter with gevent).
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

from runbook_checks.load.shapes import SHAPES, Stage, plan, tick


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _add_shape_option(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="baseline",
        help="load shape: " + ", ".join(SHAPES) + " (default baseline)",
    )


class RunbookChecksShape(LoadTestShape):
    """The shape named by --shape, over --users and --run-time."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._stages: tuple[Stage, ...] | None = None

    def stages(self) -> tuple[Stage, ...]:
        if self._stages is None:
            assert self.runner is not None
            options: Any = self.runner.environment.parsed_options
            if options is None or not options.run_time:
                raise SystemExit("the load shapes need --run-time (the duration of the run)")
            self._stages = plan(options.shape, int(options.num_users or 1), float(options.run_time))
        return self._stages

    def tick(self) -> tuple[int, float] | None:
        run_time: float = self.get_run_time()  # type: ignore[no-untyped-call]
        return tick(self.stages(), run_time)
