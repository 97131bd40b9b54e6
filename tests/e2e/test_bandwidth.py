"""Per-proxy bandwidth limits end to end (frp §5.13): our frps + our frpc.

``transport.bandwidthLimit = "100KB"`` with mode ``client`` (frpc meters) and ``server`` (frps
meters, from NewProxy.bandwidth_limit_mode); one token bucket per proxy, burst = one second's
worth, so a 400 KiB upload takes ~3 s. The window asserted is generous; an unlimited proxy on
the same pair shows that the time comes from the limit.
"""

from __future__ import annotations

import os
import time

import pytest
from support.procs import (
    block,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    udp_proxy,
    wait_port,
)
from support.waits import udp_burst, udp_exchange

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-bw-token"
SIZE = 400 << 10


def test_bandwidth_limit_client_and_server_mode(frp, bulk_server):
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully", 10)
    ports = {name: free_port() for name in ("bw-client", "bw-server", "bw-none")}
    frpc = frp.ours_frpc(frpc_config(
        bind,
        tcp_proxy("bw-client", bulk_server.port, ports["bw-client"], **{"transport.bandwidthLimit": "100KB"}),
        tcp_proxy("bw-server", bulk_server.port, ports["bw-server"],
                  **{"transport.bandwidthLimit": "100KB", "transport.bandwidthLimitMode": "server"}),
        tcp_proxy("bw-none", bulk_server.port, ports["bw-none"]),
        token=TOKEN,
    ))
    frpc.wait_for_proxies(*ports, timeout=15)
    for port in ports.values():
        wait_port(port, 5)

    t0 = time.monotonic()
    assert bulk_upload(ports["bw-none"], SIZE, timeout=10).ok
    assert time.monotonic() - t0 < 1.5

    for name in ("bw-client", "bw-server"):
        t0 = time.monotonic()
        result = bulk_upload(ports[name], SIZE, timeout=20)
        elapsed = time.monotonic() - t0
        assert result.ok, (name, result)
        # (400 KiB - 100 KiB burst) / 100 KiB/s = 3 s
        assert 2.0 < elapsed < 6.0, (name, elapsed)


UDP_LIMIT = "20KB"
UDP_COUNT = 30  # datagrams of 1,000 bytes: ~1.4 KB each way as a UDPPacket message


def test_udp_bandwidth_limit_client_and_server_mode(frp, udp_echo_server):
    """udp proxies are metered too: in frpc (mode client, the work connection's bytes, as Go's frpc)
    and in frps (mode server, the UDPPacket messages, as Go's frps). The limit holds bytes back
    rather than dropping them, so every datagram of a burst comes back, later."""
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully", 10)
    ports = {name: free_port() for name in ("u-client", "u-server", "u-none")}
    limit = {"transport.bandwidthLimit": UDP_LIMIT}
    frpc = frp.ours_frpc(frpc_config(
        bind,
        udp_proxy("u-client", udp_echo_server.port, ports["u-client"], **limit),
        udp_proxy("u-server", udp_echo_server.port, ports["u-server"],
                  **limit, **{"transport.bandwidthLimitMode": "server"}),
        udp_proxy("u-none", udp_echo_server.port, ports["u-none"]),
        token=TOKEN,
    ))
    frpc.wait_for_proxies(*ports, timeout=15)
    for port in ports.values():
        _, replies = udp_exchange(port, [b"warm-up"])  # the work connection is there
        assert replies == [b"warm-up"]

    def burst(port: int) -> float:
        payloads = [b"%04d" % i + os.urandom(996) for i in range(UDP_COUNT)]
        got, elapsed = udp_burst(port, payloads, timeout=20)
        assert len(got) == UDP_COUNT, (port, len(got))  # held back, not dropped
        return elapsed

    assert burst(ports["u-none"]) < 1.5
    for name in ("u-client", "u-server"):
        elapsed = burst(ports[name])
        # 30 x ~2.8 KB of messages (1.3 KB of base64 and the JSON around it, each way) less
        # the 20 KiB burst, at 20 KiB/s: about 3 s
        assert 2.0 < elapsed < 9.0, (name, elapsed)
    assert frpc.running


def test_sudp_bandwidth_limit_client_and_server_mode(frp, udp_echo_server):
    """sudp: frpc meters the provider's work connection (client), frps the visitor's connection
    (server, as for stcp); a visitor in the same frpc reaches each."""
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully", 10)
    ports = {name: free_port() for name in ("s-client", "s-server", "s-none")}
    modes = {"s-client": {"transport.bandwidthLimit": UDP_LIMIT},
             "s-server": {"transport.bandwidthLimit": UDP_LIMIT, "transport.bandwidthLimitMode": "server"},
             "s-none": {}}
    blocks = []
    for name, keys in modes.items():
        blocks.append(block("proxies", name=name, type="sudp", localIP="127.0.0.1", localPort=udp_echo_server.port,
                            secretKey="sk", **keys))
        blocks.append(block("visitors", name=f"v-{name}", type="sudp", serverName=name, secretKey="sk",
                            bindAddr="127.0.0.1", bindPort=ports[name]))
    frpc = frp.ours_frpc(frpc_config(bind, *blocks, token=TOKEN))
    frpc.wait_for_proxies(*modes, timeout=15)
    for port in ports.values():
        _, replies = udp_exchange(port, [b"warm-up"])
        assert replies == [b"warm-up"]

    def burst(port: int) -> float:
        payloads = [b"%04d" % i + os.urandom(996) for i in range(UDP_COUNT)]
        got, elapsed = udp_burst(port, payloads, timeout=20)
        assert len(got) == UDP_COUNT, (port, len(got))
        return elapsed

    assert burst(ports["s-none"]) < 1.5
    for name in ("s-client", "s-server"):
        elapsed = burst(ports[name])
        assert 2.0 < elapsed < 9.0, (name, elapsed)


def test_http_bandwidth_limit_server_mode(frp):
    """http proxies in mode server: frps meters each work connection its reverse proxy uses (the
    plaintext inside useEncryption, both ways), as Go's frps does. Bodies arrive intact, the
    keep-alive connection stays usable, and a WebSocket upgrade goes on under the same limit."""
    import asyncio
    import hashlib
    import http.client
    import json

    import aiohttp
    from support.httpd import WebBackend, pattern_sha256, proxy_block

    bind, vport = free_port(), free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vport)).wait_for_log("frps started successfully", 10)
    with WebBackend("A") as web:
        limit = {"transport.bandwidthLimit": "100KB", "transport.bandwidthLimitMode": "server",
                 "transport.useEncryption": True}
        frpc = frp.ours_frpc(frpc_config(
            bind,
            proxy_block("http", "h-limited", web.port, customDomains=["slow.example.com"], **limit),
            proxy_block("http", "h-none", web.port, customDomains=["fast.example.com"]),
            token=TOKEN,
        ))
        frpc.wait_for_proxies("h-limited", "h-none", timeout=15)
        size = 300 << 10

        def exchange(host: str) -> tuple[float, float]:
            conn = http.client.HTTPConnection("127.0.0.1", vport, timeout=30)
            try:
                t0 = time.monotonic()
                conn.request("GET", f"/big?size={size}", headers={"Host": host})
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200 and hashlib.sha256(body).hexdigest() == pattern_sha256(size)
                t1 = time.monotonic()
                payload = os.urandom(size)
                conn.request("PUT", "/upload", body=payload, headers={"Host": host})  # same connection
                resp = conn.getresponse()
                assert resp.status == 200
                assert json.loads(resp.read()) == {"size": size, "sha256": hashlib.sha256(payload).hexdigest()}
                return t1 - t0, time.monotonic() - t1
            finally:
                conn.close()

        down, up = exchange("fast.example.com")
        assert down < 1.5 and up < 1.5, (down, up)
        down, up = exchange("slow.example.com")
        # 300 KiB less what the bucket has saved up, at 100 KiB/s
        assert 1.0 < down < 6.0 and 2.0 < up < 6.0, (down, up)

        async def ws() -> tuple[int, float]:
            async with aiohttp.ClientSession() as session, session.ws_connect(
                f"http://127.0.0.1:{vport}/ws", headers={"Host": "slow.example.com"}
            ) as sock:
                t0 = time.monotonic()
                total = 0
                for _ in range(3):
                    await sock.send_bytes(b"\x01" * (100 << 10))
                    total += len((await sock.receive(timeout=15)).data)
                return total, time.monotonic() - t0

        total, elapsed = asyncio.run(ws())
        assert total == 300 << 10 and 3.0 < elapsed < 12.0, (total, elapsed)  # 600 KiB both ways in all
