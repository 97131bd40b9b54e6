"""PROXY protocol headers to the local service (frp §5.11, §5.7), end to end with our frps + frpc.

One frps (vhost HTTP, HTTPS and tcpmux ports) and one frpc whose proxies each point at a local service
that records the header in front of the connection (tcp, http, https, tcpmux, stcp) or of every
datagram (udp, sudp). Checked: v1 text and v2 binary, source = the user's address (the HTTP
client for http, the visitor's user socket for sudp), destination = the frps listener that
accepted it (``127.0.0.1:0`` for http, the local service for udp), one header per datagram.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
from support.httpd import RawClient, proxy_block, tls_server_context
from support.ppserver import PPHeader, PPTcpServer, PPUdpServer
from support.procs import LOCALHOST, FrpLauncher, free_port, frpc_config, frps_config, wait_port
from support.waits import udp_exchange

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-pp-token"
SK = "pp-secret"


@dataclass
class Env:
    bind: int
    hport: int
    sport: int
    mport: int
    ports: dict[str, int]  # remote / visitor ports
    svc: dict[str, PPTcpServer | PPUdpServer]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    tmp = tmp_path_factory.mktemp("pp")
    ctx, _ = tls_server_context(str(tmp))
    svc: dict[str, PPTcpServer | PPUdpServer] = {
        "tcp-v1": PPTcpServer(), "tcp-v2": PPTcpServer(), "http-v1": PPTcpServer("http"),
        "https-v2": PPTcpServer("https", ssl_context=ctx), "stcp-v2": PPTcpServer(), "mux-v2": PPTcpServer("http"),
        "udp-v2": PPUdpServer(), "udp-v1": PPUdpServer(), "sudp-v2": PPUdpServer(),
    }
    for s in svc.values():
        s.start()
    bind, hport, sport, mport = free_port(), free_port(), free_port(), free_port()
    ports = {name: free_port() for name in ("tcp-v1", "tcp-v2", "stcp-v2", "udp-v2", "udp-v1", "sudp-v2")}
    launcher = FrpLauncher(tmp / "frp")
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=hport, vhostHTTPSPort=sport,
                                              tcpmuxHTTPConnectPort=mport))
        frps.wait_for_log("frps started successfully", 10)

        def pp(kind: str, name: str, version: str, **keys: object) -> str:
            return proxy_block(kind, name, svc[name].port, **{"transport.proxyProtocolVersion": version, **keys})

        proxies = [
            pp("tcp", "tcp-v1", "v1", remotePort=ports["tcp-v1"]),
            pp("tcp", "tcp-v2", "v2", remotePort=ports["tcp-v2"]),
            pp("http", "http-v1", "v1", customDomains=["pp.example.com"]),
            pp("https", "https-v2", "v2", customDomains=["tls.example.com"]),
            pp("stcp", "stcp-v2", "v2", secretKey=SK),
            pp("tcpmux", "mux-v2", "v2", customDomains=["mux.example.com"], multiplexer="httpconnect"),
            pp("udp", "udp-v2", "v2", remotePort=ports["udp-v2"]),
            pp("udp", "udp-v1", "v1", remotePort=ports["udp-v1"]),
            pp("sudp", "sudp-v2", "v2", secretKey=SK),
        ]
        visitors = "".join(
            f'\n[[visitors]]\nname = "vis-{kind}"\ntype = "{kind}"\nserverName = "{kind}-v2"\n'
            f'secretKey = "{SK}"\nbindAddr = "{LOCALHOST}"\nbindPort = {ports[f"{kind}-v2"]}\n'
            for kind in ("stcp", "sudp")
        )
        frpc = launcher.ours_frpc(frpc_config(bind, *proxies, token=TOKEN) + visitors)
        frpc.wait_for_proxies(*svc, timeout=15)
        for name in ("tcp-v1", "tcp-v2", "stcp-v2"):
            wait_port(ports[name], 10)
        yield Env(bind, hport, sport, mport, ports, svc)
    finally:
        launcher.kill_all()
        for s in svc.values():
            s.stop()


def tcp_echo(port: int, payload: bytes = b"hello through frp") -> tuple[tuple[str, int], bytes]:
    with socket.create_connection((LOCALHOST, port), timeout=5) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return s.getsockname(), got


@pytest.mark.parametrize("name, version", [("tcp-v1", 1), ("tcp-v2", 2)])
def test_tcp(env: Env, name: str, version: int):
    svc = env.svc[name]
    me, got = tcp_echo(env.ports[name])
    assert got == b"hello through frp"  # the payload follows the header untouched
    assert [h for h in svc.headers if h.src == me] == [PPHeader(version, "TCP4", me, (LOCALHOST, env.ports[name]))]


def test_http_source_is_the_http_client(env: Env):
    with RawClient(env.hport) as c:
        me = c.sock.getsockname()
        r = c.request("GET", "/", "pp.example.com")
    assert r.status == 200 and r.body == b"pp-ok"
    assert env.svc["http-v1"].headers[-1] == PPHeader(1, "TCP4", me, (LOCALHOST, 0))


def test_https(env: Env):
    with RawClient(env.sport, tls=True, server_name="tls.example.com") as c:
        me = c.sock.getsockname()
        r = c.request("GET", "/", "tls.example.com")
    assert r.status == 200 and r.body == b"pp-ok"
    assert env.svc["https-v2"].headers[-1] == PPHeader(2, "TCP4", me, (LOCALHOST, env.sport))
    assert not env.svc["https-v2"].errors


def test_tcpmux(env: Env):
    with RawClient(env.mport) as c:
        me = c.sock.getsockname()
        c.send(b"CONNECT mux.example.com:443 HTTP/1.1\r\nHost: mux.example.com:443\r\n\r\n")
        assert c.read_response(method="CONNECT").status == 200
        r = c.request("GET", "/", "mux.example.com")
    assert r.status == 200 and r.body == b"pp-ok"
    assert env.svc["mux-v2"].headers[-1] == PPHeader(2, "TCP4", me, (LOCALHOST, env.mport))


def test_stcp_source_is_the_visitor_connection(env: Env):
    _, got = tcp_echo(env.ports["stcp-v2"])
    assert got == b"hello through frp"
    h = env.svc["stcp-v2"].headers[-1]
    assert h.version == 2 and h.family == "TCP4" and h.src is not None and h.src[0] == LOCALHOST
    assert h.dst == (LOCALHOST, env.bind)  # the visitor frpc's connection to frps


@pytest.mark.parametrize("name", ["udp-v2", "sudp-v2"])
def test_udp_header_on_every_datagram(env: Env, name: str):
    svc = env.svc[name]
    me, replies = udp_exchange(env.ports[name], [b"one", b"two", b"three"])
    assert replies == [b"one", b"two", b"three"]
    mine = [h for h in svc.headers if h.src == me]
    assert len(mine) >= 3  # resends may add some, never fewer
    assert set(mine) == {PPHeader(2, "UDP4", me, (LOCALHOST, svc.port))}
    assert not svc.errors


def test_udp_v1_is_unknown(env: Env):
    # PROXY v1 has no UDP form: go-proxyproto writes the short "PROXY UNKNOWN" line
    _, replies = udp_exchange(env.ports["udp-v1"], [b"x"])
    assert replies == [b"x"]
    assert env.svc["udp-v1"].headers and set(env.svc["udp-v1"].headers) == {PPHeader(1, "UNKNOWN")}
