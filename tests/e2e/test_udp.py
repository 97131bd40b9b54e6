"""udp proxies end to end: our frps + our frpc as real processes on 127.0.0.1 (frp §5.7).

Covers plain / encrypted / compressed work connections, fixed and random remote ports, many
user addresses at once (one local socket each on frpc), a 10 000-datagram burst with measured
loss, datagrams of exactly ``udpPacketSize`` (and longer ones, truncated as Go does), and a UDP
flood that must not stall a tcp proxy of the same client.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import threading
import time

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
    udp_proxy,
    udp_roundtrip,
)

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-udp-token"


def start_frps(frp, **kw) -> tuple[FrpProcess, int]:
    port = free_port()
    frps = frp.ours_frps(frps_config(port, token=TOKEN, **kw))
    frps.wait_for_log(r"frps started successfully", 10)
    return frps, port


def remote_port(frpc: FrpProcess, name: str) -> int:
    return int(frpc.wait_for_log(rf"\[{name}\] remote address \[127\.0\.0\.1:(\d+)\]", 5)[1])


def wait_udp_ready(port: int, timeout: float = 5.0) -> None:
    """The first datagram can race the work connection (frps asks for it 500 ms after start)."""
    assert udp_roundtrip(port, b"ready?", timeout, attempts=int(timeout / 0.25)) == b"ready?"


ECHO_CODE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("udp echo ready", flush=True)
while True:
    data, addr = s.recvfrom(65536)
    s.sendto(data, addr)
"""


def echo_process(frp) -> int:
    """A UDP echo service in its own process (the in-process one shares the GIL with the client
    and drops bursts at its own socket, which is not what the burst test measures)."""
    port = free_port()
    proc = frp.run([sys.executable, "-c", ECHO_CODE], name="udpecho", args=[str(port)])
    proc.wait_for_log("udp echo ready", 10)
    return port


def udp_burst(port: int, count: int, size: int = 64, window: int = 256, timeout: float = 20.0) -> tuple[int, float]:
    """Send ``count`` numbered datagrams keeping at most ``window`` unanswered; return (replies, seconds)."""
    pad = b"\xa5" * max(0, size - 4)
    got: set[int] = set()
    sent = lost_floor = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.connect((LOCALHOST, port))
        s.setblocking(False)
        start = time.monotonic()
        deadline = start + timeout
        last_rx = start
        while len(got) + lost_floor < count and time.monotonic() < deadline:
            while sent < count and sent - len(got) - lost_floor < window:
                s.send(struct.pack(">I", sent) + pad)
                sent += 1
            r, _, _ = select.select([s], [], [], 0.05)
            if r:
                while True:
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        break
                    got.add(struct.unpack_from(">I", data)[0])
                last_rx = time.monotonic()
            elif time.monotonic() - last_rx > 0.5:
                lost_floor = sent - len(got)  # give up on what is outstanding, keep sending
                last_rx = time.monotonic()
        return len(got), time.monotonic() - start


# --------------------------------------------------------------------------------------------------


def test_udp_variants_and_ports(frp, udp_echo_server) -> None:
    """Plain, encrypted, compressed and both; fixed and random remote ports; one frpc."""
    fixed_plain, fixed_enc = free_port(), free_port()
    _, port = start_frps(frp)
    frpc = frp.ours_frpc(frpc_config(
        port,
        udp_proxy("plain", udp_echo_server.port, fixed_plain),
        udp_proxy("enc", udp_echo_server.port, fixed_enc, **{"transport.useEncryption": True}),
        udp_proxy("comp", udp_echo_server.port, 0, **{"transport.useCompression": True}),
        udp_proxy("both", udp_echo_server.port, 0,
                  **{"transport.useEncryption": True, "transport.useCompression": True}),
        token=TOKEN,
    ))
    frpc.wait_for_proxies("plain", "enc", "comp", "both", timeout=10)
    ports = {"plain": fixed_plain, "enc": fixed_enc, "comp": remote_port(frpc, "comp"),
             "both": remote_port(frpc, "both")}
    assert remote_port(frpc, "plain") == fixed_plain
    assert len(set(ports.values())) == 4
    for name, p in ports.items():
        wait_udp_ready(p)
        for payload in (TEST_STRING, os.urandom(1200), b"\x00" * 1000, b"x"):
            assert udp_roundtrip(p, payload, 2, attempts=2) == payload, name


def test_many_user_addresses(frp, udp_echo_server) -> None:
    """20 user sockets at once: every reply reaches the socket that asked (frpc keeps one local
    socket per user address)."""
    remote = free_port()
    _, port = start_frps(frp)
    frpc = frp.ours_frpc(frpc_config(port, udp_proxy("many", udp_echo_server.port, remote), token=TOKEN))
    frpc.wait_for_proxies("many", timeout=10)
    wait_udp_ready(remote)

    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    try:
        for s in socks:
            s.connect((LOCALHOST, remote))
            s.setblocking(False)
        want = {i: {f"sock {i} msg {k}".encode() for k in range(5)} for i in range(len(socks))}
        got: dict[int, set[bytes]] = {i: set() for i in range(len(socks))}
        deadline = time.monotonic() + 10
        while any(got[i] != want[i] for i in want) and time.monotonic() < deadline:
            for i, s in enumerate(socks):  # (re)send what is missing; UDP may drop
                for msg in want[i] - got[i]:
                    s.send(msg)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                ready, _, _ = select.select(socks, [], [], 0.05)
                for s in ready:
                    i = socks.index(s)
                    try:
                        got[i].add(s.recv(2048))
                    except BlockingIOError:
                        pass
        assert got == want
    finally:
        for s in socks:
            s.close()
    # the echo server saw 20 distinct sources: frpc's per-user sockets
    assert udp_echo_server.datagrams >= 100


def test_burst_loss(frp, echo_server) -> None:
    """10 000 datagrams as fast as a 256-datagram window allows; loss is printed (expect 0 on
    loopback) and must stay <= 1 %. Meanwhile a fire-and-forget flood must not stall a tcp proxy
    of the same frpc."""
    remote, tcp_remote = free_port(), free_port()
    udp_echo = echo_process(frp)
    _, port = start_frps(frp)
    frpc = frp.ours_frpc(frpc_config(
        port, udp_proxy("burst", udp_echo, remote), tcp_proxy("tcp", echo_server.port, tcp_remote),
        token=TOKEN,
    ))
    frpc.wait_for_proxies("burst", "tcp", timeout=10)
    wait_udp_ready(remote)

    count = 10_000
    replies, secs = udp_burst(remote, count)
    loss = 1 - replies / count
    print(f"\nudp burst: {count} datagrams of 64 bytes, {replies} echoed in {secs:.2f}s "
          f"({replies / secs:.0f} pkt/s), loss {loss:.2%}")
    assert loss <= 0.01, f"loss {loss:.2%}"

    # Flood without waiting for replies while a tcp echo runs through the same yamux session.
    stop = threading.Event()

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((LOCALHOST, remote))
            pkt = b"f" * 1400
            while not stop.is_set():
                for _ in range(200):
                    try:
                        s.send(pkt)
                    except OSError:
                        pass
                time.sleep(0.001)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        for _ in range(5):  # a stall would run into the round trip's own deadline (no timed assertion)
            assert tcp_roundtrip(tcp_remote, TEST_STRING * 100, 10) == TEST_STRING * 100
    finally:
        stop.set()
        t.join(5)
    # and UDP still works afterwards
    wait_udp_ready(remote)


def test_packet_size(frp, udp_echo_server) -> None:
    """Datagrams of exactly udpPacketSize pass whole; longer ones are cut to it (as Go reads them
    into a udpPacketSize buffer)."""
    default_remote, big_remote = free_port(), free_port()
    _, port = start_frps(frp, udpPacketSize=4096)
    frpc = frp.ours_frpc(frpc_config(port, udp_proxy("d", udp_echo_server.port, default_remote), token=TOKEN))
    big = frp.ours_frpc(frpc_config(port, udp_proxy("big", udp_echo_server.port, big_remote,
                                                    **{"transport.useEncryption": True}),
                                    token=TOKEN, udpPacketSize=4096))
    frpc.wait_for_proxies("d", timeout=10)
    big.wait_for_proxies("big", timeout=10)
    wait_udp_ready(default_remote)
    wait_udp_ready(big_remote)

    # frps reads 4096, frpc (default 1500) reads the local reply into 1500 bytes
    p1500 = os.urandom(1500)
    assert udp_roundtrip(default_remote, p1500, 2, attempts=2) == p1500
    p2000 = os.urandom(2000)
    assert udp_roundtrip(default_remote, p2000, 2, attempts=2) == p2000[:1500]
    p4096 = os.urandom(4096)
    assert udp_roundtrip(big_remote, p4096, 2, attempts=2) == p4096
    long = os.urandom(5000)
    assert udp_roundtrip(big_remote, long, 2, attempts=2) == long[:4096]

