"""Small helpers shared by the end-to-end and compat tests: polling with a deadline, port and echo
checks, frp's echo framing."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest

from .ports import LOCALHOST
from .services import TEST_STRING, tcp_roundtrip


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


# -- the first contact with a port that is just opening (visitors: tests/*/test_*visitor_early.py) --


def first_connect(port: int, timeout: float) -> socket.socket:
    """The first TCP connection the port accepts (polling while it is not listening yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection((LOCALHOST, port), timeout=2)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def read_exactly(sock: socket.socket, n: int, timeout: float) -> bytes:
    """Read until ``n`` bytes came (or EOF / timeout); return what came."""
    deadline = time.monotonic() + timeout
    got = b""
    while len(got) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        got += chunk
    return got


def echo_on(sock: socket.socket, payload: bytes, timeout: float) -> bytes:
    sock.sendall(payload)
    return read_exactly(sock, len(payload), timeout)


def udp_bound(port: int) -> bool:
    hexport = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        if any(hexport in line.split(None, 3)[1] + " " for line in Path(table).read_text().splitlines()[1:]):
            return True
    return False


def first_datagram(port: int, payload: bytes, timeout: float) -> bytes:
    """One datagram to the port as soon as it is bound; no resend: it must be held, not dropped."""
    deadline = time.monotonic() + 10
    while not udp_bound(port):
        assert time.monotonic() < deadline, f"udp port {port} not bound"
        time.sleep(0.005)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (LOCALHOST, port))
        try:
            return s.recv(65536)
        except TimeoutError:
            return b""


def udp_exchange(port: int, payloads: list[bytes], timeout: float = 10.0) -> tuple[tuple[str, int], list[bytes]]:
    """Send each payload in turn, resending it until its echo returns (the first may arrive before
    the work connection). A late echo of an earlier resend is skipped, so the replies are the
    distinct echoes in order; a payload never echoed leaves the list short."""
    replies: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((LOCALHOST, port))
        s.settimeout(0.5)
        for p in payloads:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s.send(p)
                try:
                    reply = s.recv(65536)
                    while reply != p and reply in replies:  # a stale echo of an earlier resend
                        reply = s.recv(65536)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                replies.append(reply)
                break
        return s.getsockname(), replies


def udp_burst(port: int, payloads: list[bytes], timeout: float = 15.0) -> tuple[set[bytes], float]:
    """Send every payload at once, then collect echoes until each has come back or ``timeout``
    passed: (the payloads echoed, seconds from the first send to the last echo)."""
    want = set(payloads)
    got: set[bytes] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect((LOCALHOST, port))
        t0 = time.monotonic()
        for p in payloads:
            s.send(p)
        last = t0
        deadline = t0 + timeout
        while got != want and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                reply = s.recv(65536)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if reply in want:
                got.add(reply)
                last = time.monotonic()
        return got, last - t0


def check_first(kind: str, port: int, timeout: float = 20.0) -> None:
    if kind == "sudp":
        assert first_datagram(port, b"first-datagram", timeout) == b"first-datagram"
        return
    with first_connect(port, 10) as s:
        assert echo_on(s, frame(TEST_STRING), timeout) == frame(TEST_STRING)
