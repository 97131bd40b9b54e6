"""Small helpers shared by the end-to-end and compat tests: polling with a deadline, port and echo
checks, frp's echo framing."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from .procs import LOCALHOST, TEST_STRING, tcp_roundtrip


def poll(fn, timeout: float, what: str, interval: float = 0.05):
    """Call ``fn`` until it returns a truthy value (exceptions count as falsy); fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last = e
        if time.monotonic() >= deadline:
            pytest.fail(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(interval)


def refused(port: int) -> bool:
    """True if nothing accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def echo_ok(port: int) -> bool:
    """One TestString round trip through 127.0.0.1:port (5 s)."""
    return tcp_roundtrip(port, TEST_STRING, 5) == TEST_STRING


def frame(payload: bytes) -> bytes:
    """frp's e2e echo framing: int64 big-endian length + bytes."""
    return struct.pack(">q", len(payload)) + payload
