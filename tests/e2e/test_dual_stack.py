"""Dual-stack listeners: a wildcard address (``"::"``, ``"0.0.0.0"``, ``""``) accepts IPv4 and IPv6
clients, as Go's ``net.Listen`` does; a literal address accepts only its own family.

Every listener kind is reached over both 127.0.0.1 and ::1: frps's bind port (two frpc log in,
one over each family), a tcp proxy's remote port, a udp proxy, an HTTP vhost port, stcp and sudp
visitors' ``bindAddr`` and frpc's admin ``webServer``. IPv4 clients of a dual-stack socket show
up as IPv4-mapped IPv6 addresses inside the process; they must reach the local service (PROXY
protocol header, ``X-Forwarded-For``) in their IPv4 form, as with Go.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest
from support.ppserver import PPTcpServer, PPUdpServer
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_roundtrip,
    udp_roundtrip,
)
from support.waits import poll

pytestmark = pytest.mark.timeout(60)

TOKEN = "dual-stack-token"
SK = "dual-sk"
HOSTS = [LOCALHOST, "::1"]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


if not _ipv6_loopback():  # pragma: no cover - the CI machines have ::1
    pytest.fail("dual-stack tests need an IPv6 loopback (::1)", pytrace=False)


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def http_get(host: str, port: int, path: str, host_header: str | None = None) -> tuple[int, bytes]:
    url_host = f"[{host}]" if ":" in host else host
    req = urllib.request.Request(f"http://{url_host}:{port}{path}")
    if host_header:
        req.add_header("Host", host_header)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, resp.read()


def test_wildcard_listeners_accept_ipv4_and_ipv6(frp, echo_server, udp_echo_server, http_server) -> None:
    bind, vhost = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, bindAddr="::", vhostHTTPPort=vhost))
    frps.wait_for_log(r"frps started successfully", 10)

    ports = {n: free_port() for n in ("tcp", "udp", "stcp", "sudp", "admin")}
    with PPTcpServer("echo") as pp_tcp, PPUdpServer() as pp_udp:
        provider = frp.ours_frpc(frpc_config(
            bind,
            block("proxies", name="t", type="tcp", localIP=LOCALHOST, localPort=pp_tcp.port,
                  remotePort=ports["tcp"], transport__proxyProtocolVersion="v2"),
            block("proxies", name="u", type="udp", localIP=LOCALHOST, localPort=pp_udp.port,
                  remotePort=ports["udp"], transport__proxyProtocolVersion="v2"),
            block("proxies", name="h", type="http", localIP=LOCALHOST, localPort=http_server.port,
                  customDomains=["dual.example"]),
            block("proxies", name="s", type="stcp", localIP=LOCALHOST, localPort=echo_server.port, secretKey=SK),
            block("proxies", name="su", type="sudp", localIP=LOCALHOST, localPort=udp_echo_server.port,
                  secretKey=SK),
            token=TOKEN, **{"webServer.addr": "::", "webServer.port": ports["admin"]},
        ))
        # the visitor's frpc logs in over IPv6, the provider's over IPv4: the bind port takes both
        visitor = frp.ours_frpc(frpc_config(
            bind,
            block("visitors", name="vs", type="stcp", serverName="s", secretKey=SK, bindAddr="::",
                  bindPort=ports["stcp"]),
            block("visitors", name="vsu", type="sudp", serverName="su", secretKey=SK, bindAddr="::",
                  bindPort=ports["sudp"]),
            token=TOKEN, serverAddr="::1",
        ))
        provider.wait_for_proxies("t", "u", "h", "s", "su", timeout=10)
        visitor.wait_login(10)
        frps.wait_for_log(r"client login info: ip \[127\.0\.0\.1:\d+\]", 5)
        frps.wait_for_log(r"client login info: ip \[\[::1\]:\d+\]", 5)

        for host in HOSTS:
            family = "6" if ":" in host else "4"
            # tcp proxy on proxyBindAddr (= bindAddr "::"); the user's address reaches frpc unmapped
            n = len(pp_tcp.headers)
            assert tcp_roundtrip(ports["tcp"], TEST_STRING, 5, host=host) == TEST_STRING, host
            hdr = poll(lambda n=n: pp_tcp.headers[n] if len(pp_tcp.headers) > n else None, 5, "PROXY header")
            assert hdr.family == "TCP" + family and hdr.src is not None and hdr.src[0] == host, hdr
            # udp proxy
            n = len(pp_udp.headers)
            assert udp_roundtrip(ports["udp"], b"dual-udp", 6, attempts=6, host=host) == b"dual-udp", host
            hdr = pp_udp.headers[n]
            assert hdr.family == "UDP" + family and hdr.src is not None and hdr.src[0] == host, hdr
            # HTTP vhost port; X-Forwarded-For carries the client's address in its own family's form
            n = len(http_server.requests)
            status, body = http_get(host, vhost, "/dual", "dual.example")
            assert (status, body) == (200, TEST_STRING), host
            assert http_server.requests[n].headers.get("X-Forwarded-For") == host
            # visitors' bindAddr "::"
            assert tcp_roundtrip(ports["stcp"], TEST_STRING, 10, host=host) == TEST_STRING, host
            assert udp_roundtrip(ports["sudp"], b"dual-sudp", 10, attempts=10, host=host) == b"dual-sudp", host
            # frpc's admin server on webServer.addr "::"
            assert http_get(host, ports["admin"], "/healthz")[0] == 200, host
        assert not pp_tcp.errors and not pp_udp.errors


@pytest.mark.parametrize(("bind_addr", "reachable"), [
    ("0.0.0.0", {LOCALHOST, "::1"}),  # Go listens on [::] with IPV6_V6ONLY=0 for 0.0.0.0 too
    ("", {LOCALHOST, "::1"}),
    ("127.0.0.1", {LOCALHOST}),
    ("::1", {"::1"}),
])
def test_bind_addr_families(frp, echo_server, bind_addr: str, reachable: set[str]) -> None:
    """frps's bind port and a tcp proxy's port (proxyBindAddr defaults to bindAddr) accept exactly
    the families Go's listener would."""
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, bindAddr=bind_addr))
    frps.wait_for_log(r"frps started successfully", 10)
    server = "::1" if reachable == {"::1"} else LOCALHOST
    frpc = frp.ours_frpc(frpc_config(
        bind, block("proxies", name="t", type="tcp", localIP=LOCALHOST, localPort=echo_server.port,
                    remotePort=remote),
        token=TOKEN, serverAddr=server,
    ))
    frpc.wait_for_proxies("t", timeout=10)
    for host in HOSTS:
        assert accepts(host, bind) == (host in reachable), (bind_addr, host, "bind port")
        ok = host in reachable
        if ok:
            assert tcp_roundtrip(remote, TEST_STRING, 5, host=host) == TEST_STRING, (bind_addr, host)
        else:
            assert not accepts(host, remote), (bind_addr, host, "remote port")


def test_visitor_literal_bind_addr_is_single_stack(frp, echo_server) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    provider = frp.ours_frpc(frpc_config(
        bind, block("proxies", name="s", type="stcp", localIP=LOCALHOST, localPort=echo_server.port, secretKey=SK),
        token=TOKEN,
    ))
    v4, v6 = free_port(), free_port()
    visitor = frp.ours_frpc(frpc_config(
        bind,
        block("visitors", name="v4", type="stcp", serverName="s", secretKey=SK, bindAddr=LOCALHOST, bindPort=v4),
        block("visitors", name="v6", type="stcp", serverName="s", secretKey=SK, bindAddr="::1", bindPort=v6),
        token=TOKEN,
    ))
    provider.wait_for_proxies("s", timeout=10)
    visitor.wait_login(10)
    assert tcp_roundtrip(v4, TEST_STRING, 10) == TEST_STRING
    assert tcp_roundtrip(v6, TEST_STRING, 10, host="::1") == TEST_STRING
    assert not accepts("::1", v4)
    assert not accepts(LOCALHOST, v6)


@pytest.mark.parametrize("protocol", ["kcp", "quic"])
def test_udp_bind_ports_are_dual_stack_like_gos(frp, echo_server, protocol: str) -> None:
    """kcpBindPort and quicBindPort with the default bindAddr (0.0.0.0) are one dual-stack socket,
    as Go's net.ListenUDP makes it (``*:port`` in ``ss -ul``): frpc reaches them over 127.0.0.1 and
    ::1, and frps reports an IPv4 client in its IPv4 form."""
    bind, udp_port = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, bindAddr="0.0.0.0", **{f"{protocol}BindPort": udp_port}))
    frps.wait_for_log(r"frps started successfully", 10)
    remotes = {host: free_port() for host in HOSTS}
    clients = [frp.ours_frpc(frpc_config(
        udp_port, block("proxies", name=f"t{i}", type="tcp", localIP=LOCALHOST, localPort=echo_server.port,
                        remotePort=remotes[host]),
        token=TOKEN, serverAddr=host, **{"transport.protocol": protocol},
    )) for i, host in enumerate(HOSTS)]
    for i, c in enumerate(clients):
        c.wait_for_proxies(f"t{i}", timeout=15)
    frps.wait_for_log(r"client login info: ip \[127\.0\.0\.1:\d+\]", 5)
    frps.wait_for_log(r"client login info: ip \[\[::1\]:\d+\]", 5)
    for host, remote in remotes.items():
        assert tcp_roundtrip(remote, TEST_STRING, 10) == TEST_STRING, (protocol, host)
