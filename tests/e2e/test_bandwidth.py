"""Per-proxy bandwidth limits end to end (frp §5.13): our frps + our frpc.

``transport.bandwidthLimit = "100KB"`` with mode ``client`` (frpc meters) and ``server`` (frps
meters, from NewProxy.bandwidth_limit_mode); one token bucket per proxy, burst = one second's
worth, so a 400 KiB upload takes ~3 s. The window asserted is generous; an unlimited proxy on
the same pair shows that the time comes from the limit.
"""

from __future__ import annotations

import time

import pytest
from support.procs import bulk_upload, free_port, frpc_config, frps_config, tcp_proxy, wait_port

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
