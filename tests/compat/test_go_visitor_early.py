"""Our visitors against Go frps 0.65.0 and a Go provider (issue 8, item 2): the first stcp
connection and the first sudp datagram right after our visitor's frpc starts, and right after Go
frps was killed and restarted (Go frps refuses a visitor with "custom listener ... doesn't exist"
until the Go provider has registered again; our visitor waits for that)."""

from __future__ import annotations

import pytest
from support.procs import LOCALHOST, block, free_port, frpc_config, frps_config, wait_port
from support.waits import check_first

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "compat-visitor-early-token"
SK = "compat-visitor-early-sk"


@pytest.mark.parametrize("kind", ["stcp", "sudp"])
def test_our_visitor_first_connection_with_go_frps(frp, echo_server, udp_echo_server, kind: str) -> None:
    bind, vport = free_port(), free_port()
    frps_text = frps_config(bind, token=TOKEN)
    frps = frp.go_frps(frps_text)
    wait_port(bind, 10)
    local = udp_echo_server.port if kind == "sudp" else echo_server.port
    provider = frp.go_frpc(frpc_config(bind, block("proxies", name="svc", type=kind, secretKey=SK, localIP=LOCALHOST,
                                                   localPort=local, allowUsers=["*"]), token=TOKEN))
    provider.wait_for_proxies("svc", timeout=10)
    visitor = frp.ours_frpc(frpc_config(bind, block("visitors", name="vis", type=kind, serverName="svc",
                                                    secretKey=SK, bindAddr=LOCALHOST, bindPort=vport), token=TOKEN))
    check_first(kind, vport)
    mark = visitor.mark()
    frps.kill()
    visitor.wait_for_log(r"control connection closed", 10, since=mark)
    frp.go_frps(frps_text)
    check_first(kind, vport)
    assert "not connected to the server" not in visitor.log_text()
