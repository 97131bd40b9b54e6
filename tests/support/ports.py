"""Loopback ports for tests: free ones that no other test of this run got, and waiting for one
to accept connections. Everything here binds or connects to 127.0.0.1 only."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from pathlib import Path

__all__ = ["LOCALHOST", "free_port", "free_udp_port", "wait_port"]

LOCALHOST = "127.0.0.1"


_PORT_LOCK = threading.Lock()
_HANDED_OUT: set[int] = set()
_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _port_range() -> tuple[int, int] | None:
    """Ports below the kernel's ephemeral range, so no outgoing connection can grab them between our
    check and the server's bind; split per pytest-xdist worker (like frp's per-node allocator)."""
    eph_lo, eph_hi = _ephemeral_range()
    lo, hi = 15000, min(eph_lo - 1, 32000)
    if hi - lo < 2000:
        lo, hi = eph_hi + 1, 65000
        if hi - lo < 2000:
            return None  # odd kernel configuration: fall back to kernel-chosen ports
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        span = (hi - lo) // count
        idx = int(worker[2:]) % count
        lo, hi = lo + idx * span, lo + (idx + 1) * span - 1
    return lo, hi


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((LOCALHOST, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A loopback port that is currently free for both TCP and UDP and was never handed out by this
    process before.  Chosen at random below the ephemeral port range (low collision risk)."""
    rng = _port_range()
    with _PORT_LOCK:
        for _ in range(2000):
            if rng is not None:
                port = _rng.randint(*rng)
            else:
                with socket.socket() as s:
                    s.bind((LOCALHOST, 0))
                    port = s.getsockname()[1]
            if port in _HANDED_OUT or not _bindable(port):
                continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def free_udp_port() -> int:
    """Same as :func:`free_port` (the check covers UDP as well); for readability at call sites."""
    return free_port()


def wait_port(port: int, timeout: float = 20.0, *, host: str = LOCALHOST) -> None:
    """Poll until a TCP connect to ``host:port`` succeeds; raise ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    last: OSError | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{host}:{port} not accepting connections after {timeout}s ({last})")
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 1.0)):
                return
        except OSError as e:
            last = e
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.1)
