"""The harness's boto3 clients come from its own session, made one at a time."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from runbook_checks.stack import aws_clients, balancer
from tests.fake_stack import offline_stack

KEYS = {"aws_access_key_id": "unused", "aws_secret_access_key": "unused"}


class _Recorder:
    """Stands in for the session's `client`: records the calls and how many were inside
    at once (each stays a moment, as making a real client does)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.inside = 0
        self.most_inside = 0
        self._count = threading.Lock()

    def __call__(self, service: str, **kwargs: Any) -> str:
        with self._count:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.02)
        with self._count:
            self.inside -= 1
            self.calls.append((service, kwargs))
        return f"client of {service}"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    made = _Recorder()
    monkeypatch.setattr(aws_clients._session(), "client", made)
    return made


def test_clients_made_from_many_threads_are_made_one_at_a_time(recorder: _Recorder) -> None:
    barrier = threading.Barrier(8)

    def make(n: int) -> Any:
        barrier.wait()
        return aws_clients.client("elbv2", region_name="us-east-1", endpoint_url=f"http://{n}")

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(make, range(8)))
    assert made == ["client of elbv2"] * 8
    assert len(recorder.calls) == 8
    assert recorder.most_inside == 1


def test_the_harness_does_not_use_boto3s_default_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setattr(aws_clients, "_SESSION", [])  # as in a process that made none yet
    client = aws_clients.client("s3", region_name="us-east-1", **KEYS)
    assert boto3.DEFAULT_SESSION is None
    assert client.meta.region_name == "us-east-1"
    assert aws_clients.client("s3", region_name="us-east-1", **KEYS) is not client


def test_the_stacks_and_the_balancers_clients_come_from_the_harness_session(
    recorder: _Recorder, tmp_path: Path
) -> None:
    endpoints = dataclasses.replace(
        offline_stack(tmp_path).endpoints,
        s3_endpoint="http://127.0.0.1:2",
        aws_endpoint="http://127.0.0.1:4",
        s3_access_key="s3-key",
        s3_secret_key="s3-secret",
    )
    endpoints.boto3_client("s3")
    endpoints.boto3_client("rds")
    balancer._client.cache_clear()
    balancer._client("elbv2", "http://127.0.0.1:5", "us-east-1")
    balancer._client.cache_clear()
    made = [(service, kwargs["endpoint_url"]) for service, kwargs in recorder.calls]
    assert made == [
        ("s3", "http://127.0.0.1:2"),
        ("rds", "http://127.0.0.1:4"),
        ("elbv2", "http://127.0.0.1:5"),
    ]
    assert recorder.calls[0][1]["aws_access_key_id"] == "s3-key"


def test_a_balancer_started_with_known_targets_makes_its_client_at_its_first_read(
    recorder: _Recorder,
) -> None:
    """A stack starts its balancer with the API it will register, before the control
    plane is up: making the ELBv2 client (~0.25 s of CPU) waits for the first read."""
    balancer._client.cache_clear()
    front = balancer.TargetGroupBalancer(
        "balancer-under-test", "http://127.0.0.1:6", balancer.TargetGroups(("a", "b"))
    )
    front.start(known=(("127.0.0.1", 7),))
    try:
        assert recorder.calls == []
        assert front._elb == "client of elbv2"
        assert front._elb == "client of elbv2"  # one client, made once
        assert [(s, k["endpoint_url"]) for s, k in recorder.calls] == [
            ("elbv2", "http://127.0.0.1:6")
        ]
    finally:
        front.stop()
        balancer._client.cache_clear()
