"""udp proxy and sudp proxy+visitor, side by side with the real Go frp 0.65.0 (frp §5.7, §5.9).

The same traffic goes through each of the four pairings (Go frps + Go frpc, ours + ours, Go frps
+ our frpc, our frps + Go frpc; the sudp visitor runs in a frpc of the provider's kind), and each
must give the same observable outcome:

* datagram sizes: up to ``udpPacketSize`` (1500) whole, longer ones cut to 1500 bytes (Go reads
  into a 1500-byte buffer on frps, on the visitor and on frpc's local sockets), both ways;
* zero-length datagrams reach the local service and its zero-length answers reach the user
  (asyncio's and uvloop's ``sendto`` skip empty datagrams: ours used to lose them);
* 50 user addresses at once: each gets its own answers, the local service sees one source
  address per user;
* an sudp visitor with a wrong ``secretKey``: nothing gets through, and the visitor's frpc logs
  Go's line ``newVisitorConn to frps error: ..., try to reconnect``.
"""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest
from support.procs import (
    LOCALHOST,
    PAIRINGS,
    FrpProcess,
    block,
    free_port,
    frpc_config,
    frps_config,
    udp_proxy,
    wait_port,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "compat-udp-audit"
SK = "audit-sk"

class RecordingEcho:
    """A UDP echo service that records the source address and size of every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((LOCALHOST, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[tuple[str, int], int]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(70000)
            except TimeoutError:
                continue
            except OSError:
                return
            self.seen.append((addr, len(data)))
            try:
                self.sock.sendto(data, addr)
            except OSError:
                pass

    def sizes_since(self, mark: int) -> list[int]:
        return [n for _, n in self.seen[mark:]]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def service():
    svc = RecordingEcho()
    yield svc
    svc.close()


def roundtrip(port: int, data: bytes, timeout: float = 1.0, sock: socket.socket | None = None) -> bytes | None:
    """Send one datagram, return the first reply (None if none within ``timeout``)."""
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(data, (LOCALHOST, port))
        try:
            return s.recvfrom(70000)[0]
        except (TimeoutError, ConnectionRefusedError):
            return None
    finally:
        if sock is None:
            s.close()


def wait_ready(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if roundtrip(port, b"ready", 0.5) == b"ready":
            return
    raise TimeoutError(f"no echo through 127.0.0.1:{port} within {timeout}s")


def setup(frp, frps_impl: str, frpc_impl: str, local_port: int) -> tuple[dict[str, int], FrpProcess]:
    """frps, a provider frpc (udp ``u`` and sudp ``su`` to the local service) and a visitor frpc
    (``v`` with the right key, ``vbad`` with a wrong one); returns the user-facing ports and the
    visitor's process."""
    bind = free_port()
    frp.start(frps_impl, "frps", frps_config(bind, token=TOKEN))
    wait_port(bind, 10)
    ports = {"u": free_port(), "v": free_port(), "vbad": free_port()}
    provider = frp.start(frpc_impl, "frpc", frpc_config(
        bind, udp_proxy("u", local_port, ports["u"]), token=TOKEN, user="alice",
        extra=block("proxies", name="su", type="sudp", localIP=LOCALHOST, localPort=local_port,
                    secretKey=SK, allowUsers=["*"]),
    ))
    provider.wait_for_proxies("alice.u", "alice.su", timeout=10)
    common = {"type": "sudp", "serverUser": "alice", "serverName": "su", "bindAddr": LOCALHOST}
    visitor = frp.start(frpc_impl, "frpc", frpc_config(
        bind, token=TOKEN, user="bob",
        extra=block("visitors", name="v", secretKey=SK, bindPort=ports["v"], **common)
        + block("visitors", name="vbad", secretKey="wrong", bindPort=ports["vbad"], **common),
    ))
    visitor.wait_login(10)
    wait_ready(ports["u"])
    wait_ready(ports["v"])
    return ports, visitor


def settle(svc: RecordingEcho, mark: int, count: int, timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while len(svc.seen) - mark < count and time.monotonic() < deadline:
        time.sleep(0.01)


def check_sizes(service: RecordingEcho, port: int, kind: str) -> None:
    """Whole up to udpPacketSize (1500), cut to 1500 beyond, toward the service and back."""
    for size, expect in ((1, 1), (1400, 1400), (1472, 1472), (1500, 1500), (1501, 1500),
                         (8192, 1500), (65507, 1500)):
        mark = len(service.seen)
        reply = roundtrip(port, b"s" * size)
        settle(service, mark, 1)
        assert service.sizes_since(mark) == [expect], (kind, size)
        assert reply == b"s" * expect, (kind, size, None if reply is None else len(reply))


def check_many_users(service: RecordingEcho, port: int, kind: str, users: int = 50) -> None:
    """Each user address gets its own answers; the service sees one source per user."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(users)]
    try:
        for s in socks:
            s.bind((LOCALHOST, 0))
            s.setblocking(False)
        mark = len(service.seen)
        for rnd in range(3):
            for i, s in enumerate(socks):
                s.sendto(f"{i}:{rnd}".encode(), (LOCALHOST, port))
        got: list[set[str]] = [set() for _ in socks]
        deadline = time.monotonic() + 5
        while sum(map(len, got)) < 3 * users and time.monotonic() < deadline:
            for s in select.select(socks, [], [], 0.2)[0]:
                got[socks.index(s)].add(s.recv(100).decode())
        for i, answers in enumerate(got):
            assert answers == {f"{i}:{r}" for r in range(3)}, (kind, i, answers)
        assert len({addr for addr, _ in service.seen[mark:]}) == users, kind
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_sizes_and_many_users(frp, service: RecordingEcho, frps_impl: str, frpc_impl: str) -> None:
    ports, _ = setup(frp, frps_impl, frpc_impl, service.port)
    for kind in ("u", "v"):
        check_sizes(service, ports[kind], kind)
        check_many_users(service, ports[kind], kind)


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_zero_length_datagrams(frp, service: RecordingEcho, frps_impl: str, frpc_impl: str) -> None:
    """Go forwards an empty datagram like any other, both ways (ours dropped it on frpc's local
    socket, on frps's and on the visitor's user-facing socket)."""
    ports, _ = setup(frp, frps_impl, frpc_impl, service.port)
    for kind in ("u", "v"):
        port = ports[kind]
        mark = len(service.seen)
        reply = roundtrip(port, b"", 2.0)
        settle(service, mark, 1)
        assert service.sizes_since(mark) == [0], kind
        assert reply == b"", kind
        assert roundtrip(port, b"after") == b"after", kind


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_sudp_wrong_secret_key(frp, service: RecordingEcho, frps_impl: str, frpc_impl: str) -> None:
    """Nothing gets through; the visitor's frpc logs Go's line (client/visitor/sudp.go) on each try."""
    ports, visitor = setup(frp, frps_impl, frpc_impl, service.port)
    line = (r"\[bob\.vbad\] newVisitorConn to frps error: start new visitor connection error: "
            r"visitor connection of \[alice\.su\] auth failed, try to reconnect")
    for _ in range(2):
        mark = visitor.mark()
        assert roundtrip(ports["vbad"], b"x", 0.5) is None
        visitor.wait_for_log(line, 5, since=mark)
    assert roundtrip(ports["v"], b"still") == b"still"
