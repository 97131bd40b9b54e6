"""tcpmux (httpconnect) proxies on frps's tcpmuxHTTPConnectPort, end to end.

Covered: CONNECT routing by host (port stripped, wildcard, subdomain), the exact ``200 OK`` frps
writes, bytes pipelined right behind the CONNECT request, Proxy-Authorization (407 with
``Proxy-Authenticate``, answered directly), routeByHTTPUser, raw 404 for unknown hosts,
non-CONNECT requests closed, and ``tcpmuxPassthrough`` (the CONNECT request reaches the service).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import pytest
from support.httpd import RawClient, WebBackend, proxy_block
from support.procs import EchoServer, FrpLauncher, free_port, frpc_config, frps_config

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-tcpmux-token"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def basic(user: str, pwd: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pwd}".encode()).decode()


@dataclass
class Env:
    port: int


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    launcher = FrpLauncher(tmp_path_factory.mktemp("tcpmux"))
    a = WebBackend("A").start()
    b = WebBackend("B").start()
    bind, mport = free_port(), free_port()
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN, tcpmuxHTTPConnectPort=mport,
                                              subDomainHost="frps.test"))
        frps.wait_for_log("frps started successfully", 10)
        frpc = launcher.ours_frpc(frpc_config(
            bind,
            proxy_block("tcpmux", "mux-a", a.port, customDomains=["a.example.com"], multiplexer="httpconnect"),
            proxy_block("tcpmux", "mux-wild", b.port, customDomains=["*.wild.example.com"]),
            proxy_block("tcpmux", "mux-sub", b.port, subdomain="app"),
            proxy_block("tcpmux", "mux-auth", a.port, customDomains=["auth.example.com"], httpUser="alice",
                        httpPassword="wonder"),
            proxy_block("tcpmux", "mux-bob", b.port, customDomains=["ru.example.com"], routeByHTTPUser="bob"),
            proxy_block("tcpmux", "mux-any", a.port, customDomains=["ru.example.com"],
                        **{"transport.useEncryption": True}),
            token=TOKEN))
        frpc.wait_for_proxies("mux-a", "mux-wild", "mux-sub", "mux-auth", "mux-bob", "mux-any", timeout=15)
        yield Env(mport)
    finally:
        launcher.kill_all()
        a.stop()
        b.stop()


def connect(port: int, target: str, headers: dict[str, str] | None = None, tail: bytes = b"") -> RawClient:
    c = RawClient(port)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    c.send(("\r\n".join(lines) + "\r\n\r\n").encode() + tail)
    return c


def through(c: RawClient) -> str | None:
    """After the 200: one HTTP request through the tunnel, returns the service's X-Backend."""
    r = c.request("GET", "/t", "tunnel")
    return r.header("X-Backend")


def test_connect_routes_by_host(env: Env):
    for target, name in [("a.example.com:443", "A"), ("A.Example.com:80", "A"), ("a.example.com", "A"),
                         ("x.wild.example.com:443", "B"), ("app.frps.test:22", "B")]:
        with connect(env.port, target) as c:
            r = c.read_response()
            assert r.raw_head == OK, target
            assert through(c) == name, target


def test_bytes_pipelined_behind_connect_are_kept(env: Env):
    with connect(env.port, "a.example.com:443", tail=b"GET /early HTTP/1.1\r\nHost: t\r\n\r\n") as c:
        assert c.read_response().raw_head == OK
        r = c.read_response()
        assert r.header("X-Backend") == "A" and r.json()["path"] == "/early"


def test_proxy_authorization(env: Env):
    for headers in ({}, {"Proxy-Authorization": basic("alice", "nope")}, {"Proxy-Authorization": basic("eve", "x")}):
        with connect(env.port, "auth.example.com:443", headers) as c:
            r = c.read_response()
            assert r.status == 407  # directly; Go 0.65 writes 200 first
            assert r.header("Proxy-Authenticate") == 'Basic realm="Restricted"'
            assert c.closed_by_peer(3)
    with connect(env.port, "auth.example.com:443", {"Proxy-Authorization": basic("alice", "wonder")}) as c:
        assert c.read_response().raw_head == OK
        assert through(c) == "A"


def test_route_by_http_user(env: Env):
    with connect(env.port, "ru.example.com:1", {"Proxy-Authorization": basic("bob", "pw")}) as c:
        assert c.read_response().status == 200 and through(c) == "B"
    with connect(env.port, "ru.example.com:1", {"Proxy-Authorization": basic("carol", "pw")}) as c:
        assert c.read_response().status == 200 and through(c) == "A"
    with connect(env.port, "ru.example.com:1") as c:
        assert c.read_response().status == 200 and through(c) == "A"


def test_unknown_host_raw_404(env: Env):
    with connect(env.port, "nobody.example.com:443") as c:
        r = c.read_response()
        assert r.status == 404
        assert r.header("Server") == "frp/0.65.0" and r.header("Content-Type") == "text/html"
        assert b"The page you requested was not found." in r.body
        assert c.closed_by_peer(3)


@pytest.mark.parametrize("raw", [b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n"])
def test_non_connect_is_closed(env: Env, raw: bytes):
    with RawClient(env.port) as c:
        c.send(raw)
        assert c.closed_by_peer(3)
        assert c.buf == b""


def test_passthrough(frp, echo_server: EchoServer):
    bind, mport = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, tcpmuxHTTPConnectPort=mport, tcpmuxPassthrough=True))
    frps.wait_for_log("frps started successfully", 10)
    frpc = frp.ours_frpc(frpc_config(bind, proxy_block("tcpmux", "pass", echo_server.port,
                                                       customDomains=["p.example.com"]), token=TOKEN))
    frpc.wait_for_proxies("pass", timeout=10)
    request = b"CONNECT p.example.com:443 HTTP/1.1\r\nHost: p.example.com:443\r\n\r\n"
    with RawClient(mport) as c:
        c.send(request + b"payload")
        deadline = time.monotonic() + 5
        while len(c.buf) < len(request) + 7:
            assert c._fill(deadline)
        assert c.buf == request + b"payload"  # the service saw the CONNECT request itself
