"""Ports for the stack's servers on 127.0.0.1.

A port the OS picks (a bind to port 0) comes from the ephemeral range, the range every
outgoing connection takes its local port from: between the pick and the server's own
bind, any connection (a load test opens thousands; the stack's own parts connect to each
other while it starts) can take it, and the server fails with "Address already in use".
So a server's port is picked outside the ephemeral range, at random, checked free, and not
handed out twice by one process while it is recent. What is left (another program binding
the same port in that moment: another drill starting beside this one) is rare, and
`start_with_retry` starts such a stack again on new ports.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import deque
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000  # below this live the well-known and registered servers people run
HIGHEST = 65_535
MIN_POOL = 2_000  # fewer ports outside the ephemeral range than this: let the OS pick
RECENT = 4_096  # ports one process will not hand out again until this many later picks
PICKS = 200  # tries at a free port before letting the OS pick

_lock = threading.Lock()
_recent: deque[int] = deque(maxlen=RECENT)
_random = random.SystemRandom()


def ephemeral_range(path: Path = EPHEMERAL_RANGE) -> tuple[int, int]:
    """The OS's range for outgoing connections' local ports (Linux's default if unknown)."""
    try:
        low, high = (int(v) for v in path.read_text().split()[:2])
    except (OSError, ValueError):
        return 32_768, 60_999
    return low, high


def server_ports(ephemeral: tuple[int, int]) -> list[range]:
    """The ranges a server's port is picked from: above LOWEST, outside `ephemeral`."""
    low, high = ephemeral
    ranges = [range(LOWEST, min(low, HIGHEST + 1)), range(max(high + 1, LOWEST), HIGHEST + 1)]
    return [r for r in ranges if len(r) > 0]


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _os_pick(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A port, free a moment ago, for a server about to bind it (see the module's note)."""
    ranges = server_ports(ephemeral_range())
    if sum(len(r) for r in ranges) < MIN_POOL:
        return _os_pick(host)
    weights = [len(r) for r in ranges]
    with _lock:
        for _ in range(PICKS):
            port = _random.choice(_random.choices(ranges, weights=weights)[0])
            if port not in _recent and _bindable(port, host):
                _recent.append(port)
                return port
    return _os_pick(host)


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
