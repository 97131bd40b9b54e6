"""Which address families a listener accepts, side by side with Go frp 0.65.0.

Go's ``net.Listen`` opens one IPv6 socket with ``IPV6_V6ONLY = 0`` for a wildcard host (``0.0.0.0``
as well as ``::``), and a single-family socket for a literal address. For each ``bindAddr`` Go frps
and our frps run with the same config; their bind port, vhost HTTP port and a udp proxy's port
(``proxyBindAddr`` defaults to ``bindAddr``) must accept the same families (127.0.0.1, ::1).
A host name (``localhost``) listens on its first IPv4 address only, in Go as in ours.
"""

from __future__ import annotations

import socket

import pytest
from support.procs import (
    LOCALHOST,
    block,
    free_port,
    frpc_config,
    frps_config,
    udp_roundtrip,
    wait_port,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "compat-dual-token"
HOSTS = (LOCALHOST, "::1")


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def udp_answers(host: str, port: int) -> bool:
    try:
        return udp_roundtrip(port, b"fam", 3, attempts=6, host=host) == b"fam"
    except (TimeoutError, OSError):
        return False


def families(frp, impl: str, bind_addr: str, udp_echo_port: int) -> dict[str, set[str]]:
    bind, vhost, udp = free_port(), free_port(), free_port()
    getattr(frp, f"{impl}_frps")(frps_config(bind, token=TOKEN, bindAddr=bind_addr, vhostHTTPPort=vhost))
    server = "::1" if bind_addr == "::1" else LOCALHOST
    wait_port(bind, 10, host=server)
    frpc = frp.ours_frpc(frpc_config(
        bind, block("proxies", name="u", type="udp", localIP=LOCALHOST, localPort=udp_echo_port, remotePort=udp),
        token=TOKEN, serverAddr=server,
    ))
    frpc.wait_for_proxies("u", timeout=10)
    return {
        "bind": {h for h in HOSTS if accepts(h, bind)},
        "vhost": {h for h in HOSTS if accepts(h, vhost)},
        "udp": {h for h in HOSTS if udp_answers(h, udp)},
    }


@pytest.mark.parametrize("bind_addr", ["0.0.0.0", "::", "127.0.0.1", "::1", "localhost"])
def test_listener_families_match_go(frp, udp_echo_server, bind_addr: str) -> None:
    go = families(frp, "go", bind_addr, udp_echo_server.port)
    ours = families(frp, "ours", bind_addr, udp_echo_server.port)
    assert ours == go, f"bindAddr {bind_addr!r}: ours {ours} vs Go {go}"
    wildcard = bind_addr in ("0.0.0.0", "::")
    # a host name: its first IPv4 address
    assert go["bind"] == (set(HOSTS) if wildcard else {"::1" if ":" in bind_addr else LOCALHOST})
