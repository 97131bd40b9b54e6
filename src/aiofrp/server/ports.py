"""Remote-port allocation for tcp and udp proxies (``allowPorts``, random ports, reuse by name)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import ProxyError

if TYPE_CHECKING:
    from ..config.server import PortsRange

RANDOM_TRIES = 5


def _randint(a: int, b: int) -> int:
    """A port in [a, b] from os.urandom: the random module (0.2 MB resident) stays out of frps."""
    return a + int.from_bytes(os.urandom(8), "big") % (b - a + 1)


class PortManager:
    def __init__(self, allow_ports: list[PortsRange]) -> None:
        ranges: list[tuple[int, int]] = []
        for entry in allow_ports:
            if entry.single:
                ranges.append((entry.single, entry.single))
            else:
                ranges.append((entry.start, entry.end))
        self.ranges = ranges or [(1, 65535)]
        self.used: dict[str, dict[int, str]] = {"tcp": {}, "udp": {}}
        self.last: dict[str, dict[str, int]] = {"tcp": {}, "udp": {}}

    def allowed(self, port: int) -> bool:
        return any(a <= port <= b for a, b in self.ranges)

    def describe(self) -> str:
        """The allowed ports as frp writes them (``2000-3000,3001``)."""
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)

    def candidates(self, proto: str, name: str, requested: int) -> Iterator[int]:
        used = self.used[proto]
        if requested:
            if not self.allowed(requested):
                raise ProxyError(f"port not allowed: {requested} is not in frps's allowPorts [{self.describe()}]")
            if requested in used:
                raise ProxyError(f"port already used: {requested} is taken by another proxy")
            yield requested
            return
        prev = self.last[proto].get(name)
        if prev and prev not in used and self.allowed(prev):
            yield prev
        for _ in range(RANDOM_TRIES):
            a, b = self.ranges[_randint(0, len(self.ranges) - 1)]
            port = _randint(max(a, 1024) if b >= 1024 else a, b)
            if port not in used:
                yield port
        # last resort: let the OS choose, if any port is allowed
        if self.ranges == [(1, 65535)]:
            yield 0

    def mark_used(self, proto: str, name: str, port: int) -> None:
        self.used[proto][port] = name
        self.last[proto][name] = port

    def release(self, proto: str, name: str, port: int) -> None:
        if self.used[proto].get(port) == name:
            del self.used[proto][port]
