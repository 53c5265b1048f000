"""A server's port is picked outside the ephemeral range (where outgoing connections take
their local ports from), is free when picked, and is not handed out twice in a row."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from runbook_checks.stack import ports


def test_server_ports_lie_outside_the_ephemeral_range() -> None:
    ranges = ports.server_ports((32_768, 60_999))
    assert ranges == [range(10_000, 32_768), range(61_000, 65_536)]
    # a range reaching down to the floor leaves only the top
    assert ports.server_ports((1_024, 60_999)) == [range(61_000, 65_536)]


def test_the_ephemeral_range_is_read_from_the_os(tmp_path: Path) -> None:
    proc = tmp_path / "ip_local_port_range"
    proc.write_text("40000\t50000\n")
    assert ports.ephemeral_range(proc) == (40_000, 50_000)
    assert ports.ephemeral_range(tmp_path / "missing") == (32_768, 60_999)


def test_picked_ports_are_outside_the_ephemeral_range_and_distinct() -> None:
    low, high = ports.ephemeral_range()
    picked = [ports.free_port() for _ in range(300)]
    assert len(set(picked)) == len(picked)
    assert not [p for p in picked if low <= p <= high or p < ports.LOWEST]


def test_a_port_in_use_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        busy = held.getsockname()[1]
        # the only candidate is the busy port: after its tries, the OS picks one
        monkeypatch.setattr(ports, "server_ports", lambda _: [range(busy, busy + 1)])
        monkeypatch.setattr(ports, "MIN_POOL", 1)
        monkeypatch.setattr(ports, "_recent", ports.deque(maxlen=ports.RECENT))
        assert ports.free_port() != busy


def test_too_few_ports_outside_the_range_lets_the_os_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = ports.ephemeral_range()  # the OS's own
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (1_024, 65_000))  # 535 left
    assert all(low <= ports.free_port() <= high for _ in range(20))
