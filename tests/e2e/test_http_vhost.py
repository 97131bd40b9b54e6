"""http proxies on frps's vhost HTTP port, end to end: our frps + our frpc + aiohttp services.

One frps/frpc pair (module scope) serves most tests; validation, conflicts and bind-port reuse
start their own. Covered: routing by custom domain, wildcard, subdomain, location and
routeByHTTPUser; basic auth (401) and proxy-form auth (407); hostHeaderRewrite, request/response
header sets, X-Forwarded-*; keep-alive connections routed request by request to two proxies;
pipelining; streaming of chunked responses and of uploads; WebSocket; CONNECT; vhostHTTPTimeout
(504); 404 pages; malformed requests (400/431), slowloris; port reuse with bindPort.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from support.httpd import RawClient, WebBackend, http_request, pattern_sha256, proxy_block
from support.procs import (
    LOCALHOST,
    EchoServer,
    FrpLauncher,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    wait_port,
)

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-http-token"
HEADER_TIMEOUT = 2.0  # AIOFRP_VHOST_READ_HEADER_TIMEOUT given to frps
NOT_FOUND_TEXT = b"The page you requested was not found."


def basic(user: str, pwd: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pwd}".encode()).decode()


def frps_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "AIOFRP_VHOST_READ_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}


@dataclass
class Env:
    port: int  # vhostHTTPPort
    bind_port: int
    a: WebBackend
    b: WebBackend
    frps: FrpProcess
    frpc: FrpProcess


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    launcher = FrpLauncher(tmp_path_factory.mktemp("http-vhost"))
    a = WebBackend("A").start()
    b = WebBackend("B").start()
    echo = EchoServer().start()
    bind, vport = free_port(), free_port()
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vport, vhostHTTPTimeout=2,
                                              subDomainHost="frps.test"), env=frps_env())
        frps.wait_for_log(r"frps started successfully", 10)
        proxies = [
            proxy_block("http", "web-a", a.port, customDomains=["a.example.com"]),
            proxy_block("http", "web-b", b.port, customDomains=["b.example.com"]),
            proxy_block("http", "wild", a.port, customDomains=["*.wild.example.com"]),
            proxy_block("http", "wild-deep", b.port, customDomains=["*.x.wild.example.com"]),
            proxy_block("http", "sub", b.port, subdomain="app"),
            proxy_block("http", "loc-root", a.port, customDomains=["loc.example.com"], locations=["/"]),
            proxy_block("http", "loc-api", b.port, customDomains=["loc.example.com"], locations=["/api"]),
            proxy_block("http", "auth", a.port, customDomains=["auth.example.com"], httpUser="alice",
                        httpPassword="wonder"),
            proxy_block("http", "by-user", b.port, customDomains=["ru.example.com"], routeByHTTPUser="bob"),
            proxy_block("http", "by-any", a.port, customDomains=["ru.example.com"]),
            # the routeByHTTPUser auth-bypass class (CVE-2026-40910): a locked route per user beside
            # an open one on the same domain
            proxy_block("http", "ra-alice", b.port, customDomains=["ra.example.com"], routeByHTTPUser="alice",
                        httpUser="alice", httpPassword="secret"),
            proxy_block("http", "ra-bob", a.port, customDomains=["ra.example.com"], routeByHTTPUser="bob",
                        httpUser="bob", httpPassword="bobpwd"),
            proxy_block("http", "ra-open", a.port, customDomains=["ra.example.com"]),
            proxy_block("http", "rewrite", a.port, customDomains=["rw.example.com"],
                        hostHeaderRewrite="backend.internal",
                        **{"requestHeaders.set.X-From-Frp": "yes", "requestHeaders.set.User-Agent": "frp-test",
                           "responseHeaders.set.X-Resp": "set", "responseHeaders.set.Server": "frp-rewritten"}),
            proxy_block("http", "enc", a.port, customDomains=["enc.example.com"],
                        **{"transport.useEncryption": True, "transport.useCompression": True}),
            proxy_block("http", "dead", free_port(), customDomains=["dead.example.com"]),
            proxy_block("http", "connect", echo.port, customDomains=["connect.example.com"]),
        ]
        frpc = launcher.ours_frpc(frpc_config(bind, *proxies, token=TOKEN))
        frpc.wait_for_proxies("web-a", "web-b", "wild", "wild-deep", "sub", "loc-root", "loc-api", "auth",
                              "by-user", "by-any", "ra-alice", "ra-bob", "ra-open", "rewrite", "enc", "dead", "connect", timeout=15)
        yield Env(vport, bind, a, b, frps, frpc)
    finally:
        launcher.kill_all()
        a.stop()
        b.stop()
        echo.stop()


def get(env: Env, host: str, path: str = "/", **kw) -> object:
    return http_request(env.port, "GET", path, host, **kw)


def backend(resp) -> str | None:
    return resp.header("X-Backend")


# -- routing ----------------------------------------------------------------------------------------


def test_custom_domains_and_host_forms(env: Env):
    assert backend(get(env, "a.example.com")) == "A"
    assert backend(get(env, "b.example.com")) == "B"
    assert backend(get(env, f"a.example.com:{env.port}")) == "A"
    assert backend(get(env, "A.EXAMPLE.com")) == "A"
    assert backend(get(env, "a.example.com.")) == "A"
    r = get(env, "a.example.com", "/some/path?q=1")
    assert r.status == 200 and r.json()["path"] == "/some/path?q=1" and r.json()["method"] == "GET"


def test_wildcard_and_subdomain(env: Env):
    assert backend(get(env, "one.wild.example.com")) == "A"
    assert backend(get(env, "deep.x.wild.example.com")) == "B"  # the most specific wildcard wins
    assert backend(get(env, "y.deep.x.wild.example.com")) == "B"
    assert get(env, "wild.example.com").status == 404  # *.wild... does not cover the bare domain
    assert backend(get(env, "app.frps.test")) == "B"


def test_locations(env: Env):
    assert backend(get(env, "loc.example.com", "/api/v1")) == "B"
    assert backend(get(env, "loc.example.com", "/api")) == "B"
    assert backend(get(env, "loc.example.com", "/other")) == "A"
    assert backend(get(env, "loc.example.com", "/")) == "A"


def test_basic_auth_401_and_proxy_form_407(env: Env):
    r = get(env, "auth.example.com")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Restricted"'
    assert r.body == b"Unauthorized\n"
    assert get(env, "auth.example.com", headers={"Authorization": basic("alice", "nope")}).status == 401
    ok = get(env, "auth.example.com", headers={"Authorization": basic("alice", "wonder")})
    assert ok.status == 200 and backend(ok) == "A"
    # proxy-form (absolute URI): 407 with Proxy-Authenticate; Proxy-Authorization (or, as Go 0.65
    # accepted, Authorization) with the right credentials passes
    r = get(env, "auth.example.com", "http://auth.example.com/x")
    assert r.status == 407 and r.header("Proxy-Authenticate") == 'Basic realm="Restricted"'
    r = get(env, "auth.example.com", "http://auth.example.com/x", headers={"Proxy-Authorization": basic("alice", "x")})
    assert r.status == 407
    r = get(env, "auth.example.com", "http://auth.example.com/x", headers={"Authorization": basic("alice", "wonder")})
    assert r.status == 200
    r = get(env, "auth.example.com", "http://auth.example.com/x?y=1",
            headers={"Proxy-Authorization": basic("alice", "wonder")})
    assert r.status == 200 and backend(r) == "A"
    info = r.json()
    assert info["path"].endswith("/x?y=1")
    assert "proxy-authorization" not in {k.lower() for k, _ in info["headers"]}
    # auth is only checked when a route matched: unknown hosts stay 404
    assert get(env, "nothing.example.com").status == 404


def test_route_by_http_user(env: Env):
    assert backend(get(env, "ru.example.com", headers={"Authorization": basic("bob", "x")})) == "B"
    assert backend(get(env, "ru.example.com", headers={"Authorization": basic("carol", "x")})) == "A"
    assert backend(get(env, "ru.example.com")) == "A"
    # proxy-form: the user comes from Proxy-Authorization
    r = get(env, "ru.example.com", "http://ru.example.com/", headers={"Proxy-Authorization": basic("bob", "x")})
    assert backend(r) == "B"


def test_route_by_http_user_cannot_bypass_auth(env: Env):
    """The user a request is routed by must authenticate against that route's credentials: never
    against another route's (Go < 0.68.1 checked the Authorization user's route but routed a
    proxy-form request by its Proxy-Authorization user, CVE-2026-40910)."""
    url = "http://ra.example.com/"
    alice_wrong, bob_right = basic("alice", "wrong"), basic("bob", "bobpwd")
    # proxy-form routed to alice, credentials valid for bob's route / for the open route
    r = get(env, "ra.example.com", url, headers={"Proxy-Authorization": alice_wrong, "Authorization": bob_right})
    assert r.status == 407 and backend(r) is None
    r = get(env, "ra.example.com", url, headers={"Proxy-Authorization": alice_wrong})
    assert r.status == 407 and backend(r) is None
    r = get(env, "ra.example.com", url, headers={"Proxy-Authorization": basic("alice", ""),
                                                 "Authorization": basic("", "")})
    assert r.status == 407 and backend(r) is None
    # origin-form: alice with a wrong password is refused, not served by the open route
    r = get(env, "ra.example.com", headers={"Authorization": alice_wrong})
    assert r.status == 401 and backend(r) is None
    r = get(env, "ra.example.com", headers={"Authorization": basic("alice", "bobpwd")})
    assert r.status == 401
    # the right credentials reach each locked route, no credentials the open one
    assert backend(get(env, "ra.example.com", headers={"Authorization": basic("alice", "secret")})) == "B"
    r = get(env, "ra.example.com", url, headers={"Proxy-Authorization": basic("alice", "secret")})
    assert r.status == 200 and backend(r) == "B"
    assert get(env, "ra.example.com", headers={"Authorization": bob_right}).status == 200
    r = get(env, "ra.example.com")
    assert r.status == 200 and backend(r) == "A"


def test_header_rewrites_and_forwarded_headers(env: Env):
    r = get(env, "rw.example.com", "/h", headers={
        "X-Forwarded-For": "2.2.2.2", "X-Forwarded-Host": "spoofed", "User-Agent": "client-ua",
        "Connection": "close, X-Hop", "X-Hop": "must-go", "Keep-Alive": "timeout=5", "X-Keep": "kept"})
    assert r.status == 200
    assert r.header("X-Resp") == "set"
    assert r.header("Server") == "frp-rewritten"
    headers = {}
    for k, v in r.json()["headers"]:
        headers.setdefault(k.lower(), []).append(v)
    assert headers["host"] == ["backend.internal"]
    assert headers["x-from-frp"] == ["yes"]
    assert headers["user-agent"] == ["frp-test"]  # requestHeaders.set replaces
    assert headers["x-forwarded-for"] == ["2.2.2.2, 127.0.0.1"]
    assert headers["x-forwarded-host"] == ["rw.example.com"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-keep"] == ["kept"]
    for hop in ("x-hop", "keep-alive"):
        assert hop not in headers


def test_not_found_page_and_keepalive_after_it(env: Env):
    with RawClient(env.port) as c:
        r = c.request("GET", "/", "unknown.example.com")
        assert r.status == 404 and NOT_FOUND_TEXT in r.body
        assert "text/html" in (r.header("Content-Type") or "")
        r = c.request("GET", "/", "a.example.com")  # same connection still usable
        assert r.status == 200 and backend(r) == "A"


def test_dead_local_service_gives_404(env: Env):
    r = get(env, "dead.example.com")
    assert r.status == 404 and NOT_FOUND_TEXT in r.body


# -- keep-alive, pipelining, streaming --------------------------------------------------------------


def test_keepalive_connection_routes_each_request(env: Env):
    with RawClient(env.port) as c:
        seen = [backend(c.request("GET", f"/{i}", host)) for i, host in
                enumerate(["a.example.com", "b.example.com", "a.example.com", "b.example.com", "enc.example.com"])]
        assert seen == ["A", "B", "A", "B", "A"]
        # POST with a body on the same connection, then GET again
        r = c.request("POST", "/form", "b.example.com", body=b"x" * 1000)
        assert r.json()["body_len"] == 1000 and backend(r) == "B"
        assert backend(c.request("HEAD", "/", "a.example.com")) == "A"
        assert backend(c.request("GET", "/", "a.example.com")) == "A"


def test_pipelined_requests_answered_in_order(env: Env):
    with RawClient(env.port) as c:
        reqs = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: {h}\r\n\r\n".encode()
                        for i, h in enumerate(["a.example.com", "b.example.com", "nothere.example", "a.example.com"]))
        c.send(reqs)
        out = [c.read_response() for _ in range(4)]
        assert [r.status for r in out] == [200, 200, 404, 200]
        assert [r.json()["path"] for r in (out[0], out[1], out[3])] == ["/p0", "/p1", "/p3"]


def test_chunked_response_streams(env: Env):
    with socket.create_connection((LOCALHOST, env.port), timeout=10) as s:
        s.sendall(b"GET /stream?n=3&delay=0.6 HTTP/1.1\r\nHost: b.example.com\r\n\r\n")
        t0 = time.monotonic()
        got = b""
        first_at = None
        while b"0\r\n\r\n" not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
            if first_at is None and b"chunk-0" in got:
                first_at = time.monotonic() - t0
        total = time.monotonic() - t0
    assert b"Transfer-Encoding: chunked" in got or b"transfer-encoding: chunked" in got.lower()
    assert first_at is not None and first_at < total - 0.8, (first_at, total)
    assert got.count(b"chunk-") == 3


def test_uploads_stream_chunked_and_content_length(env: Env):
    size = 8 << 20
    payload = os.urandom(1 << 20) * 8
    digest = hashlib.sha256(payload).hexdigest()
    conn = http.client.HTTPConnection(LOCALHOST, env.port, timeout=30)
    try:
        conn.request("POST", "/upload", body=iter([payload[i:i + 65536] for i in range(0, size, 65536)]),
                     headers={"Host": "enc.example.com"}, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"size": size, "sha256": digest}
        conn.request("PUT", "/upload", body=payload, headers={"Host": "a.example.com"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"size": size, "sha256": digest}
    finally:
        conn.close()


@pytest.mark.parametrize("host", ["a.example.com", "enc.example.com"])
def test_large_download(env: Env, host: str):
    size = 16 << 20
    conn = http.client.HTTPConnection(LOCALHOST, env.port, timeout=30)
    try:
        conn.request("GET", f"/big?size={size}", headers={"Host": host})
        resp = conn.getresponse()
        h = hashlib.sha256()
        n = 0
        while chunk := resp.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
        assert n == size and h.hexdigest() == pattern_sha256(size)
    finally:
        conn.close()


def test_many_concurrent_clients(env: Env):
    def one(i: int) -> str | None:
        with RawClient(env.port) as c:
            hosts = ["a.example.com", "b.example.com"]
            return "".join(backend(c.request("GET", f"/c{i}/{j}", hosts[(i + j) % 2])) or "?" for j in range(5))

    with ThreadPoolExecutor(16) as ex:
        results = list(ex.map(one, range(48)))
    assert all(len(r) == 5 and "?" not in r for r in results), results


def test_close_delimited_and_http10(env: Env):
    # the service closing its connection after a response does not close the client's (Go)
    with RawClient(env.port) as c:
        r = c.request("GET", "/close", "a.example.com")
        assert r.body == b"until-close-body" and r.header("Connection") is None
        r = c.request("GET", "/next", "a.example.com")
        assert r.status == 200 and r.json()["path"] == "/next"
    # HTTP/1.0: answered in 1.0, closed after; the service is spoken to in 1.1, as Go's Transport does
    with RawClient(env.port) as c:
        c.send(b"GET /ten HTTP/1.0\r\nHost: a.example.com\r\n\r\n")
        r = c.read_response()
        assert r.raw_head.startswith(b"HTTP/1.0 200 OK\r\n") and r.header("Connection") is None
        assert r.status == 200 and r.json()["version"] == "1.1"
        assert c.closed_by_peer(HEADER_TIMEOUT / 2)


def test_websocket_echo(env: Env):
    import aiohttp

    async def run() -> list:
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"http://{LOCALHOST}:{env.port}/ws", headers={"Host": "enc.example.com"}
        ) as ws:
            out = []
            await ws.send_str("hello")
            out.append((await ws.receive(timeout=5)).data)
            await ws.send_bytes(b"\x00\x01" * 40000)
            out.append(len((await ws.receive(timeout=5)).data))
            return out

    assert asyncio.run(run()) == ["hello", 80000]


def test_connect_through_vhost_port(env: Env):
    with socket.create_connection((LOCALHOST, env.port), timeout=10) as s:
        s.sendall(b"CONNECT connect.example.com:443 HTTP/1.1\r\nHost: connect.example.com:443\r\n\r\nping")
        got = b""
        deadline = time.monotonic() + 5
        while not got.endswith(b"ping") and time.monotonic() < deadline:
            got += s.recv(4096)
    # the echo service got the CONNECT request itself, then the bytes behind it
    assert got.startswith(b"CONNECT connect.example.com:443 HTTP/1.1\r\n") and got.endswith(b"\r\n\r\nping")
    with RawClient(env.port) as c:
        c.send(b"CONNECT nowhere.example:443 HTTP/1.1\r\nHost: nowhere.example:443\r\n\r\n")
        r = c.read_response()
        assert r.status == 404 and r.header("Server") is not None and r.header("Server").startswith("frp/")


def test_response_header_timeout_504(env: Env):
    t0 = time.monotonic()
    with RawClient(env.port) as c:
        r = c.request("GET", "/slow?delay=4", "b.example.com")
        elapsed = time.monotonic() - t0
        assert r.status == 504 and r.body == b""
        assert 1.5 < elapsed < 3.8
        assert backend(c.request("GET", "/after", "a.example.com")) == "A"  # connection still usable


# -- malformed input and slow clients -----------------------------------------------------------


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a.example.com\r\nBad Header\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
])
def test_malformed_requests(env: Env, raw: bytes, status: int):
    with RawClient(env.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status
        assert c.closed_by_peer(3)
    assert backend(get(env, "a.example.com")) == "A"


def test_huge_headers_431(env: Env):
    with RawClient(env.port) as c:
        try:
            c.send(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Big: " + b"x" * (2 << 20) + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 431
    assert backend(get(env, "a.example.com")) == "A"


def test_slowloris_is_closed_without_hurting_others(env: Env):
    slow = [RawClient(env.port) for _ in range(5)]
    try:
        t0 = time.monotonic()
        for c in slow:
            c.send(b"GET / HTTP/1.1\r\nHo")
        # others are served while the slow heads hang
        for _ in range(5):
            assert backend(get(env, "a.example.com")) == "A"
        for c in slow:
            try:
                c.send(b"s")
            except OSError:
                pass
        for c in slow:
            assert c.closed_by_peer(HEADER_TIMEOUT + 3)
        assert time.monotonic() - t0 < HEADER_TIMEOUT + 3
    finally:
        for c in slow:
            c.close()


# -- registration errors, conflicts, port reuse -----------------------------------------------------


def test_vhost_types_need_their_ports(frp):
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log("frps started successfully", 10)
    frpc = frp.ours_frpc(frpc_config(
        bind,
        proxy_block("http", "h", 1, customDomains=["h.example.com"]),
        proxy_block("https", "s", 1, customDomains=["s.example.com"]),
        proxy_block("tcpmux", "m", 1, customDomains=["m.example.com"], multiplexer="httpconnect"),
        proxy_block("http", "sd", 1, subdomain="x"),
        token=TOKEN))
    frpc.wait_for_log(r"\[h\] start error: type \[http\] not supported when vhost http port is not set", 10)
    frpc.wait_for_log(r"\[s\] start error: type \[https\] not supported when vhost https port is not set", 10)
    frpc.wait_for_log(r"\[m\] start error: tcpmux with multiplexer httpconnect not supported because this "
                      r"feature is not enabled in server", 10)
    frpc.wait_for_log(r"\[sd\] start error: type \[http\] not supported", 10)


def test_router_conflict_and_subdomain_rules(frp):
    bind, vport = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vport, subDomainHost="frps.test"))
    frps.wait_for_log("frps started successfully", 10)
    admin = free_port()
    with WebBackend("C") as c:
        frpc = frp.ours_frpc(frpc_config(
            bind,
            proxy_block("http", "first", c.port, customDomains=["same.example.com"]),
            proxy_block("http", "multi", c.port, customDomains=["m1.example.com", "m2.example.com"], subdomain="s",
                        locations=["/a", "/b"]),
            proxy_block("http", "second", c.port, customDomains=["other.example.com", "same.example.com"]),
            proxy_block("http", "in-sub", c.port, customDomains=["x.frps.test"]),
            proxy_block("http", "dotted", c.port, subdomain="a.b"),
            token=TOKEN, **{"webServer.addr": LOCALHOST, "webServer.port": admin}))
        frpc.wait_for_proxies("first", "multi", timeout=10)
        with urllib.request.urlopen(f"http://{LOCALHOST}:{admin}/api/status", timeout=5) as resp:
            status = {p["name"]: p for ps in json.loads(resp.read()).values() for p in ps}
        # remote_addr (§5.3): one entry per domain and location, "domain:port" off port 80
        assert status["first"]["remote_addr"] == f"same.example.com:{vport}"
        assert status["multi"]["remote_addr"] == ",".join(
            f"{d}:{vport}" for d in ("m1.example.com", "m2.example.com", "s.frps.test") for _ in range(2))
        assert http_request(vport, "GET", "/b/x", "s.frps.test").status == 200
        assert http_request(vport, "GET", "/c", "s.frps.test").status == 404
        frpc.wait_for_log(r"\[second\] start error: router config conflict", 10)
        frpc.wait_for_log(r"\[in-sub\] start error: custom domain \[x.frps.test\] should not belong to "
                          r"subdomain host \[frps.test\]", 10)
        frpc.wait_for_log(r"\[dotted\] start error: '.' and '\*' are not supported in subdomain", 10)
        # the failed registration left nothing behind
        assert http_request(vport, "GET", "/", "other.example.com").status == 404
        assert http_request(vport, "GET", "/", "same.example.com").status == 200
        frpc.kill()
        deadline = time.monotonic() + 5
        while http_request(vport, "GET", "/", "same.example.com").status != 404:
            assert time.monotonic() < deadline, "route not removed after frpc died"
            time.sleep(0.1)


def test_bind_port_shared_with_http_and_custom_404(frp, tmp_path):
    page = tmp_path / "404.html"
    page.write_text("<h1>custom not found</h1>")
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=bind, custom404Page=str(page)))
    frps.wait_for_log("frps started successfully", 10)
    with WebBackend("R") as r:
        frpc = frp.ours_frpc(frpc_config(bind, proxy_block("http", "reuse", r.port, customDomains=["r.example.com"]),
                                         token=TOKEN))
        frpc.wait_for_proxies("reuse", timeout=10)
        wait_port(bind)
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
            resp = http_request(bind, method, "/m", "r.example.com")
            assert resp.status == 200 and backend(resp) == "R", method
        nf = http_request(bind, "GET", "/", "nope.example.com")
        assert nf.status == 404 and nf.body == b"<h1>custom not found</h1>"
        # a client that sends its first bytes in pieces is still recognised
        with RawClient(bind) as c:
            c.send(b"GE")
            time.sleep(0.3)
            c.send(b"T /x")
            time.sleep(0.3)
            c.send(b" HTTP/1.1\r\nHost: r.example.com\r\n\r\n")
            assert backend(c.read_response()) == "R"
        # frp's websocket path goes to frp's websocket handler, not to the vhost: without the
        # upgrade headers it answers 400 (Go's handshaker too) and closes
        with RawClient(bind) as c:
            c.send(b"GET /~!frp HTTP/1.1\r\nHost: r.example.com\r\n\r\n")
            assert c.closed_by_peer(3)
            assert c.buf.startswith(b"HTTP/1.1 400"), c.buf[:100]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("host", ["a.example.com", "enc.example.com"])
def test_slow_reader_back_pressure(env: Env, host: str):
    """A client that stops reading a big response must not make frps or frpc buffer it."""
    if not os.path.exists(f"/proc/{env.frps.pid}/status"):
        pytest.skip("needs /proc")
    before = {p.pid: _rss_mb(p.pid) for p in (env.frps, env.frpc)}
    with socket.create_connection((LOCALHOST, env.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.sendall(f"GET /big?size={256 << 20} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        got = 0
        while got < (1 << 20):
            got += len(s.recv(65536))
        time.sleep(1.5)  # stalled: everything behind us must stop, not pile up
        grown = {pid: _rss_mb(pid) - mb for pid, mb in before.items()}
    assert all(g < 48 for g in grown.values()), grown
    assert backend(get(env, "a.example.com")) == "A"


def test_expect_100_continue(env: Env):
    with RawClient(env.port) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: a.example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = c.read_response()
        assert interim.status == 100  # frps's own, as Go's server says it when the body is first read
        c.send(b"hello")
        r = c.read_response()
        while r.status == 100:  # the service's own 100 Continue, passed on (Go's ReverseProxy does)
            r = c.read_response()
        assert r.status == 200 and r.json()["size"] == 5
