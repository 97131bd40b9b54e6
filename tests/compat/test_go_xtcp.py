"""xtcp with the real Go frp 0.65.0 on one or more sides, on 127.0.0.1.

Each case is (frps, provider frpc, visitor frpc, tunnel protocol); every frpc uses the local STUN
responder of tests/support/stun.py (Go's STUN client needs OTHER-ADDRESS/CHANGED-ADDRESS in the
reply to query a second time). What crosses implementations:

* our frps' NAT-hole controller driving Go clients (NatHoleVisitor/NatHoleClient/NatHoleResp,
  the NatHoleSid work connection, NatHoleReport);
* our frpc's messages against Go's controller;
* the encrypted NatHoleSid probes (AES-CFB keyed by sk) in both punching roles;
* the tunnel itself: qh3 <-> quic-go (ALPN ``frp``), and our KCP (no FEC parity) + yamux
  <-> kcp-go (10+3 FEC) + hashicorp yamux.
"""

from __future__ import annotations

import os
import re

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_roundtrip,
    wait_port,
)
from support.waits import frame

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "interop-xtcp-token"
SK = "interop-xtcp-secret"
PUNCHED = r"establishing nat hole connection successful, sid \[\d+[0-9a-f]{16}\], remoteAddr \["


CASES = [
    # (frps, provider, visitor, protocol)
    pytest.param("ours", "go", "ours", "quic", id="ours_frps-go_provider-ours_visitor-quic"),
    pytest.param("ours", "ours", "go", "quic", id="ours_frps-ours_provider-go_visitor-quic"),
    pytest.param("ours", "go", "go", "quic", id="ours_frps-go_provider-go_visitor-quic"),
    pytest.param("go", "go", "ours", "quic", id="go_frps-go_provider-ours_visitor-quic"),
    pytest.param("go", "ours", "go", "quic", id="go_frps-ours_provider-go_visitor-quic"),
    pytest.param("ours", "go", "ours", "kcp", id="ours_frps-go_provider-ours_visitor-kcp"),
    pytest.param("go", "ours", "go", "kcp", id="go_frps-ours_provider-go_visitor-kcp"),
]


@pytest.mark.parametrize(("server", "provider_impl", "visitor_impl", "protocol"), CASES)
def test_xtcp_interop(frp, stun_server, echo_server, server, provider_impl, visitor_impl, protocol) -> None:
    server_port = free_port()
    frps_text = frps_config(server_port, token=TOKEN, log_level="debug")
    frps = frp.ours_frps(frps_text) if server == "ours" else frp.go_frps(frps_text)
    wait_port(server_port, 10)

    def frpc(impl: str, *blocks: str):  # type: ignore[no-untyped-def]
        text = frpc_config(server_port, *blocks, token=TOKEN, log_level="debug",
                           natHoleStunServer=stun_server.address)
        return frp.ours_frpc(text) if impl == "ours" else frp.go_frpc(text)

    provider = frpc(provider_impl, block("proxies", name="p2p", type="xtcp", secretKey=SK, localIP=LOCALHOST,
                                          localPort=echo_server.port, **{"transport.useEncryption": True}))
    provider.wait_for_proxies("p2p", timeout=15)
    bind_port = free_port()
    visitor = frpc(visitor_impl, block("visitors", name="p2p-visitor", type="xtcp", serverName="p2p",
                                        secretKey=SK, bindPort=bind_port, protocol=protocol,
                                        **{"transport.useEncryption": True}))
    visitor.wait_login(15)
    wait_port(bind_port, 10)

    assert tcp_roundtrip(bind_port, frame(TEST_STRING), 20) == frame(TEST_STRING)
    payload = os.urandom(512 << 10)
    assert tcp_roundtrip(bind_port, payload, 15) == payload

    visitor.wait_for_log(PUNCHED, 5)
    provider.wait_for_log(PUNCHED, 5)
    assert re.search(rf"get natHoleRespMsg, sid \[\S+\], protocol \[{protocol}\]", visitor.log_text())
    frps.wait_for_log(r"report make hole success: true", 5)
    assert len(re.findall(PUNCHED, visitor.log_text())) == 1
