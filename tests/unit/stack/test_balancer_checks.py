"""The balancer checks its targets' health at once, each on its own, as a load balancer
does: one slow target does not hold up the others' checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runbook_checks.stack.balancer import TargetGroupBalancer, TargetGroups, _check


class _Target(ThreadingHTTPServer):
    """Answers /health after `delay_s` (200, or 503 when `ok` is False) and records
    when each check began and ended."""

    def __init__(self, delay_s: float, ok: bool) -> None:
        self.delay_s, self.ok = delay_s, ok
        self.checks: list[tuple[float, float]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:  # `self`: the server
                began = time.monotonic()
                time.sleep(self.delay_s)
                handler.send_response(200 if self.ok else 503)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                self.checks.append((began, time.monotonic()))

            def log_message(handler, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server_address[1])


@pytest.fixture
def targets() -> Iterator[list[_Target]]:
    made = [_Target(0.3, ok) for ok in (True, False, True)]
    for target in made:
        threading.Thread(target=target.serve_forever, args=(0.05,), daemon=True).start()
    yield made
    for target in made:
        target.shutdown()
        target.server_close()


def test_every_target_is_checked_at_once_and_each_answer_kept(targets: list[_Target]) -> None:
    assert _check(tuple(t.address for t in targets)) == [True, False, True]
    checks = [t.checks[0] for t in targets]
    # every check had begun before any ended: they overlapped, none waited for another
    assert max(began for began, _ in checks) < min(ended for _, ended in checks)


def test_a_lone_target_and_none(targets: list[_Target]) -> None:
    assert _check((targets[1].address,)) == [False]
    assert _check(()) == []


class _Elb:
    """The control plane as the balancer reads it: `describe_target_groups` raises."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def describe_target_groups(self, **_: object) -> dict[str, object]:
        raise self.error


def test_the_targets_stay_while_the_control_plane_does_not_answer() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    balancer = TargetGroupBalancer("balancer", "http://127.0.0.1:1", TargetGroups())
    balancer._registered = (("127.0.0.1", 8080),)
    for silent in (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TimeoutError()):
        balancer._elb = _Elb(silent)
        assert balancer._read_registered() == (("127.0.0.1", 8080),)
    throttled = ClientError({"Error": {"Code": "Throttling"}}, "DescribeTargetGroups")
    balancer._elb = _Elb(throttled)
    assert balancer._read_registered() == (("127.0.0.1", 8080),)
    # groups the control plane does not have (reset, not seeded yet) hold no target
    missing = ClientError({"Error": {"Code": "TargetGroupNotFound"}}, "DescribeTargetGroups")
    balancer._elb = _Elb(missing)
    assert balancer._read_registered() == ()
