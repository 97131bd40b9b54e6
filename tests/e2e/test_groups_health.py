"""Load-balancing groups and health checks end to end (frp §5.12): our frps + our frpc processes.

Groups: a tcp group of two frpc processes shares one remote port and both members get
connections; a wrong groupKey / another remote port are refused with Go's messages; when a
member leaves the other keeps serving and the port closes with the last one. http, https and
tcpmux groups rotate requests / connections over their members.

Health checks (intervalSeconds = 1): stopping the local service logs ``[NAME] health check
failed`` and takes the proxy off frps (port refused, route 404, ``check failed`` in
/api/status); restarting it logs ``[NAME] health check success`` and the proxy works again.
"""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from support.httpd import RawClient, WebBackend, proxy_block, tls_server_context
from support.procs import (
    LOCALHOST,
    EchoServer,
    HttpServer,
    free_port,
    frpc_config,
    frps_config,
    wait_port,
)
from support.waits import echo_ok, poll, refused

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-group-token"


def start_frps(frp, **keys: object) -> int:
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN, **keys)).wait_for_log("frps started successfully", 10)
    return bind


def member(name: str, local_port: int, remote_port: int, key: str = "k1", group: str = "g1") -> str:
    return proxy_block("tcp", name, local_port, remotePort=remote_port,
                       **{"loadBalancer.group": group, "loadBalancer.groupKey": key})


def test_tcp_group(frp):
    bind = start_frps(frp)
    port = free_port()
    with EchoServer() as a, EchoServer() as b, EchoServer() as c:
        fa = frp.ours_frpc(frpc_config(bind, member("m-a", a.port, port), token=TOKEN))
        fb = frp.ours_frpc(frpc_config(bind, member("m-b", b.port, port), token=TOKEN))
        fa.wait_for_proxies("m-a")
        fb.wait_for_proxies("m-b")
        # refused members: Go's messages (detailedErrorsToClient defaults to true)
        fc = frp.ours_frpc(frpc_config(bind, member("bad-key", c.port, port, key="other"),
                                       member("bad-port", c.port, free_port()), token=TOKEN))
        fc.wait_for_log(r"\[bad-key\] start error: group auth failed", 10)
        fc.wait_for_log(r"\[bad-port\] start error: group should have same remote port", 10)

        for _ in range(10):
            assert echo_ok(port)
        assert a.connections >= 3 and b.connections >= 3 and c.connections == 0, (a.connections, b.connections)

        # a member leaves: the other one serves every connection, the port stays open
        fa.kill()
        served_by_b = b.connections
        poll(lambda: all(echo_ok(port) for _ in range(3)), 10, "the remaining member serves")
        for _ in range(5):
            assert echo_ok(port)
        assert b.connections >= served_by_b + 5
        # the last member leaves: the shared listener goes away
        fb.kill()
        poll(lambda: refused(port), 10, "group port closed")


def test_vhost_groups_rotate(frp, tmp_path):
    """http per request, https and tcpmux per connection; the group survives a member leaving."""
    hport, sport, mport = free_port(), free_port(), free_port()
    bind = start_frps(frp, vhostHTTPPort=hport, vhostHTTPSPort=sport, tcpmuxHTTPConnectPort=mport)
    ctx, _ = tls_server_context(str(tmp_path))
    with WebBackend("A") as a, WebBackend("B") as b, WebBackend("TA", ssl_context=ctx) as ta, \
            WebBackend("TB", ssl_context=ctx) as tb:
        def grp(kind: str, name: str, port: int, group: str, domain: str, key: str = "hk") -> str:
            return proxy_block(kind, name, port, customDomains=[domain],
                               **{"loadBalancer.group": group, "loadBalancer.groupKey": key})

        proxies = [
            grp("http", "web-a", a.port, "web", "lb.example.com"),
            grp("http", "web-b", b.port, "web", "lb.example.com"),
            grp("https", "tls-a", ta.port, "tls", "tls.example.com"),
            grp("https", "tls-b", tb.port, "tls", "tls.example.com"),
            grp("tcpmux", "mux-a", a.port, "mux", "mux.example.com"),
            grp("tcpmux", "mux-b", b.port, "mux", "mux.example.com"),
            grp("http", "web-badkey", a.port, "web", "lb.example.com", key="nope"),
            grp("http", "web-otherdomain", a.port, "web", "x.example.com"),
        ]
        frpc = frp.ours_frpc(frpc_config(bind, *proxies, token=TOKEN))
        frpc.wait_for_proxies("web-a", "web-b", "tls-a", "tls-b", "mux-a", "mux-b", timeout=15)
        frpc.wait_for_log(r"\[web-badkey\] start error: group auth failed", 10)
        frpc.wait_for_log(r"\[web-otherdomain\] start error: group params invalid", 10)

        with RawClient(hport) as c:  # one keep-alive connection, the group rotates per request
            seen = [c.request("GET", "/", "lb.example.com").header("X-Backend") for _ in range(10)]
        assert set(seen) == {"A", "B"} and seen.count("A") == 5, seen

        seen = []
        for _ in range(6):
            with RawClient(sport, tls=True, server_name="tls.example.com") as c:
                seen.append(c.request("GET", "/", "tls.example.com").header("X-Backend"))
        assert set(seen) == {"TA", "TB"}, seen

        seen = []
        for _ in range(6):
            with RawClient(mport) as c:
                c.send(b"CONNECT mux.example.com:80 HTTP/1.1\r\nHost: mux.example.com:80\r\n\r\n")
                assert c.read_response(method="CONNECT").status == 200
                seen.append(c.request("GET", "/", "mux.example.com").header("X-Backend"))
        assert set(seen) == {"A", "B"}, seen


def admin_status(port: int) -> dict:
    req = urllib.request.Request(f"http://{LOCALHOST}:{port}/api/status")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:admin").decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def proxy_status(admin: int, name: str) -> str:
    for items in admin_status(admin).values():
        for p in items:
            if p["name"] == name:
                return p["status"]
    return ""


def test_health_checks_take_proxies_off_and_back(frp):
    hport = free_port()
    bind = start_frps(frp, vhostHTTPPort=hport)
    remote, admin = free_port(), free_port()
    echo = EchoServer().start()
    web = HttpServer().start()
    echo_port, web_port = echo.port, web.port
    try:
        checks = {"healthCheck.intervalSeconds": 1, "healthCheck.timeoutSeconds": 1, "healthCheck.maxFailed": 1}
        text = frpc_config(
            bind,
            proxy_block("tcp", "hc-tcp", echo_port, remotePort=remote, **{"healthCheck.type": "tcp", **checks}),
            proxy_block("http", "hc-http", web_port, customDomains=["hc.example.com"],
                        **{"healthCheck.type": "http", "healthCheck.path": "/health", **checks}),
            token=TOKEN,
            **{"webServer.addr": LOCALHOST, "webServer.port": admin, "webServer.user": "admin",
               "webServer.password": "admin"},
        )
        frpc = frp.ours_frpc(text)
        frpc.wait_for_log(r"\[hc-tcp\] health check success", 10)
        frpc.wait_for_log(r"\[hc-http\] health check success", 10)
        frpc.wait_for_proxies("hc-tcp", "hc-http")
        wait_port(remote, 5)
        assert echo_ok(remote)

        def http_status() -> int:
            with RawClient(hport, timeout=5) as c:
                return c.request("GET", "/", "hc.example.com", {"Connection": "close"}).status

        assert http_status() == 200
        assert any(r.path == "/health" for r in web.requests)

        mark = frpc.mark()
        echo.stop()
        web.stop()
        frpc.wait_for_log(r"\[hc-tcp\] health check failed", 10, since=mark)
        frpc.wait_for_log(r"\[hc-http\] health check failed", 10, since=mark)
        poll(lambda: refused(remote), 10, "tcp proxy closed on frps")
        poll(lambda: http_status() == 404, 10, "http route removed")
        assert proxy_status(admin, "hc-tcp") == "check failed"

        mark = frpc.mark()
        echo = EchoServer(echo_port).start()
        web = HttpServer(web_port).start()
        frpc.wait_for_log(r"\[hc-tcp\] health check success", 10, since=mark)
        frpc.wait_for_log(r"\[hc-http\] health check success", 10, since=mark)
        frpc.wait_for_proxies("hc-tcp", "hc-http", since=mark)
        poll(lambda: echo_ok(remote), 10, "tcp proxy back")
        poll(lambda: http_status() == 200, 10, "http route back")
        assert proxy_status(admin, "hc-tcp") == "running"
    finally:
        echo.stop()
        web.stop()
