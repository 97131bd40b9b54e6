"""Groups, PROXY protocol and server-mode bandwidth limits across implementations (frp §5.11-5.13).

tcp group: one member in a Go frpc and one in ours, behind our frps and behind Go frps; both
members get connections, and a member with the wrong groupKey (in the frpc of the other
implementation) is refused with ``group auth failed``.

PROXY protocol and ``bandwidthLimitMode = "server"``: Go frpc -> our frps and our frpc -> Go frps;
tcp v1/v2 headers carry the user's address and the frps listener, udp v2 a header per datagram;
the frps meters the server-mode proxy.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from support.ppserver import PPHeader, PPTcpServer, PPUdpServer
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    BulkServer,
    EchoServer,
    UdpEchoServer,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
    udp_proxy,
    wait_port,
)
from support.waits import udp_burst, udp_exchange

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "compat-group-token"


def start_frps(frp, impl: str) -> int:
    bind = free_port()
    getattr(frp, f"{impl}_frps")(frps_config(bind, token=TOKEN))
    wait_port(bind, 10)
    return bind


def member(name: str, local: int, remote: int, key: str = "gk") -> str:
    return tcp_proxy(name, local, remote, **{"loadBalancer.group": "cg", "loadBalancer.groupKey": key})


@pytest.mark.parametrize("server", ["ours", "go"])
def test_tcp_group_with_go_and_ours_members(frp, server: str):
    bind = start_frps(frp, server)
    port = free_port()
    other = "go" if server == "ours" else "ours"
    with EchoServer() as a, EchoServer() as b:
        fa = frp.ours_frpc(frpc_config(bind, member("ours-m", a.port, port), token=TOKEN))
        fa.wait_for_proxies("ours-m", timeout=15)
        fb = frp.go_frpc(frpc_config(bind, member("go-m", b.port, port), token=TOKEN))
        fb.wait_for_proxies("go-m", timeout=15)
        bad = getattr(frp, f"{other}_frpc")(frpc_config(bind, member("bad", a.port, port, key="x"), token=TOKEN))
        bad.wait_for_log(r"\[bad\] start error: .*group auth failed", 15)
        for _ in range(10):
            assert tcp_roundtrip(port, TEST_STRING, 5) == TEST_STRING
        assert a.connections >= 2 and b.connections >= 2, (a.connections, b.connections)


@pytest.mark.parametrize("direction", ["go_frpc-ours_frps", "ours_frpc-go_frps"])
def test_proxy_protocol_and_server_bandwidth(frp, direction: str):
    client, server = (d.split("_")[0] for d in direction.split("-"))
    bind = start_frps(frp, server)
    ports = {n: free_port() for n in ("pp1", "pp2", "ppu", "bw", "bwu")}
    with PPTcpServer() as s1, PPTcpServer() as s2, PPUdpServer() as su, BulkServer() as bulk, \
            UdpEchoServer() as uecho:
        frpc = getattr(frp, f"{client}_frpc")(frpc_config(
            bind,
            tcp_proxy("pp1", s1.port, ports["pp1"], **{"transport.proxyProtocolVersion": "v1"}),
            tcp_proxy("pp2", s2.port, ports["pp2"], **{"transport.proxyProtocolVersion": "v2"}),
            udp_proxy("ppu", su.port, ports["ppu"], **{"transport.proxyProtocolVersion": "v2"}),
            tcp_proxy("bw", bulk.port, ports["bw"],
                      **{"transport.bandwidthLimit": "100KB", "transport.bandwidthLimitMode": "server"}),
            udp_proxy("bwu", uecho.port, ports["bwu"],
                      **{"transport.bandwidthLimit": "20KB", "transport.bandwidthLimitMode": "server"}),
            token=TOKEN,
        ))
        frpc.wait_for_proxies(*ports, timeout=15)

        for name, svc, version in (("pp1", s1, 1), ("pp2", s2, 2)):
            with socket.create_connection((LOCALHOST, ports[name]), timeout=5) as c:
                me = c.getsockname()
                c.sendall(b"ping")
                assert c.recv(16) == b"ping"
            assert PPHeader(version, "TCP4", me, (LOCALHOST, ports[name])) in svc.headers, svc.headers

        me, replies = udp_exchange(ports["ppu"], [b"d1", b"d2"])
        assert replies == [b"d1", b"d2"]
        mine = [h for h in su.headers if h.src == me]
        assert len(mine) >= 2 and set(mine) == {PPHeader(2, "UDP4", me, (LOCALHOST, su.port))}

        wait_port(ports["bw"], 5)
        t0 = time.monotonic()
        assert bulk_upload(ports["bw"], 300 << 10, timeout=20).ok
        elapsed = time.monotonic() - t0  # (300 - 100 burst) KiB at 100 KiB/s = 2 s
        assert 1.3 < elapsed < 6.0, elapsed

        # frps meters a udp proxy's work connection too (the UDPPacket messages, both ways):
        # 30 x 1,000-byte datagrams echoed are ~84 KB of messages, less the 20 KiB burst: ~3 s
        assert udp_exchange(ports["bwu"], [b"warm-up"])[1] == [b"warm-up"]
        payloads = [b"%04d" % i + os.urandom(996) for i in range(30)]
        got, elapsed = udp_burst(ports["bwu"], payloads, timeout=20)
        assert len(got) == 30 and 2.0 < elapsed < 9.0, (len(got), elapsed)
