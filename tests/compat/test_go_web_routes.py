"""frps's dashboard and frpc's admin API against Go 0.65's, request by request: what a path no
route serves answers with or without credentials, the redirect of ``/``, the challenge of a known
route, methods, unclean paths, the UI's file server, and the key order of frpc's ``/api/status``;
and the error a proxy whose remote port is taken gets from our frps and Go's."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
from typing import Any

import pytest
from support.procs import (
    EchoServer,
    FrpLauncher,
    block,
    free_port,
    frpc_config,
    frps_config,
    go_cmd,
    tcp_proxy,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "compat-web-routes"
GOOD = "Basic " + base64.b64encode(b"admin:pw").decode()
BAD = "Basic " + base64.b64encode(b"admin:nope").decode()


def ask(port: int, method: str, path: str, auth: str | None) -> tuple[int, str, str, str, tuple[bool, str]]:
    """(status, Content-Type, Location, body, (a Server header?, X-Content-Type-Options)) of one
    request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Authorization": auth} if auth else {})
        r = conn.getresponse()
        extra = (r.getheader("Server") is not None, r.getheader("X-Content-Type-Options") or "")
        return r.status, r.getheader("Content-Type") or "", r.getheader("Location") or "", r.read().decode(), extra
    finally:
        conn.close()


# (method, path, credentials); the dashboard's and the admin API's own routes
CASES = [
    ("GET", "/api/nothing", None), ("GET", "/api/nothing", BAD), ("GET", "/api/nothing", GOOD),
    ("GET", "/nothing/at/all", BAD),
    ("GET", "/", GOOD), ("GET", "/", None), ("POST", "/", GOOD), ("HEAD", "/", GOOD), ("POST", "/", BAD),
    ("GET", "/healthz", None), ("POST", "/healthz", BAD), ("HEAD", "/healthz", None),
    ("GET", "//", None), ("GET", "/x/../healthz?a=1", BAD), ("GET", "/static/%2e%2e/x", None),
    ("GET", "/static/", None), ("HEAD", "/static/", GOOD), ("GET", "/static/index.html", None),
    ("GET", "/static/index.html?v=1", GOOD), ("GET", "/favicon.ico", None), ("HEAD", "/favicon.ico", GOOD),
    ("GET", "/static/nope.js", GOOD), ("GET", "/static/nope.js", None),
]
DASHBOARD = [("GET", "/api/serverinfo", None), ("GET", "/api/serverinfo", BAD), ("POST", "/api/serverinfo", BAD),
             ("HEAD", "/api/serverinfo", None), ("DELETE", "/api/proxies", None), ("GET", "/metrics", None)]
ADMIN = [("GET", "/api/status", None), ("GET", "/api/config", BAD), ("POST", "/api/status", BAD),
         ("HEAD", "/api/status", None), ("HEAD", "/api/config", GOOD), ("GET", "/api/stop", BAD)]


def compare(go_port: int, ours_port: int, cases: list[tuple[str, str, str | None]]) -> None:
    differences = []
    for method, path, auth in cases:
        go, ours = ask(go_port, method, path, auth), ask(ours_port, method, path, auth)
        # Content-Type of JSON and plain answers is a documented difference; compare the rest
        if (go[0], go[2], go[3], go[4]) != (ours[0], ours[2], ours[3], ours[4]) or ("html" in go[1]) != ("html" in ours[1]):
            differences.append(f"{method} {path} auth={auth is not None}: go {go} ours {ours}")
    assert not differences, "\n".join(differences)


def test_dashboard_routes_as_gos(frp: FrpLauncher) -> None:
    ports = []
    for go in (True, False):
        bind, dash = free_port(), free_port()
        keys: dict[str, Any] = {"webServer.addr": "127.0.0.1", "webServer.port": dash, "webServer.user": "admin",
                                "webServer.password": "pw", "enablePrometheus": True}
        text = frps_config(bind, token=TOKEN, **keys)
        (frp.go_frps if go else frp.ours_frps)(text).wait_for_log("frps started successfully", 10)
        ports.append(dash)
    compare(ports[0], ports[1], CASES + DASHBOARD)
    # what the cases are about
    assert ask(ports[1], "GET", "/api/nothing", BAD)[0] == 404
    status, ctype, location, body, _ = ask(ports[1], "GET", "/", GOOD)
    assert (status, location, body) == (301, "/static/", '<a href="/static/">Moved Permanently</a>.\n\n')
    assert ctype.startswith("text/html")


def test_admin_api_routes_and_status_keys_as_gos(frp: FrpLauncher) -> None:
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=free_port())).wait_for_log(
        "frps started successfully", 10)
    with EchoServer() as echo:
        ports, keys_seen = [], []
        for go in (True, False):
            admin = free_port()
            user = "g" if go else "o"
            web: dict[str, Any] = {"webServer.addr": "127.0.0.1", "webServer.port": admin,
                                   "webServer.user": "admin", "webServer.password": "pw", "user": user}
            blocks = [
                tcp_proxy("t", echo.port, free_port()),
                '\n[[proxies]]\nname = "h"\ntype = "http"\nlocalPort = 80\ncustomDomains = ["' + user + '.example.com"]\n',
                f'\n[[proxies]]\nname = "u"\ntype = "udp"\nlocalPort = 53\nremotePort = {free_port()}\n',
                '\n[[proxies]]\nname = "s"\ntype = "stcp"\nsecretKey = "k"\nlocalPort = 22\n',
            ]
            text = frpc_config(bind, *blocks, token=TOKEN, **web)
            frpc = (frp.go_frpc if go else frp.ours_frpc)(text)
            frpc.wait_for_proxies(*(f"{user}.{n}" for n in "thus"), timeout=15)
            ports.append(admin)
            status, _, _, body, _ = ask(admin, "GET", "/api/status", GOOD)
            assert status == 200
            keys_seen.append(list(json.loads(body)))
        compare(ports[0], ports[1], CASES + ADMIN)
        assert keys_seen[1] == keys_seen[0] == ["http", "stcp", "tcp", "udp"]


def test_taken_remote_port_reads_as_gos(frp: FrpLauncher) -> None:
    """A tcp and a udp proxy whose remote ports another socket holds: Go frpc shows the same error
    from our frps as from Go's (tcp ``port unavailable``, udp ``acquire port N error: port unavailable``),
    in /api/status and in ``frpc status``."""
    seen = []
    with socket.socket() as tcp_taken, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_taken:
        tcp_taken.bind(("127.0.0.1", 0))
        tcp_taken.listen()
        udp_taken.bind(("127.0.0.1", 0))
        ports = (tcp_taken.getsockname()[1], udp_taken.getsockname()[1])
        for go in (True, False):
            bind, admin = free_port(), free_port()
            (frp.go_frps if go else frp.ours_frps)(frps_config(bind, token=TOKEN)).wait_for_log(
                "frps started successfully", 10)
            web: dict[str, Any] = {"webServer.addr": "127.0.0.1", "webServer.port": admin, "webServer.user": "admin",
                                   "webServer.password": "pw"}
            frpc = frp.go_frpc(frpc_config(bind, tcp_proxy("t", 22, ports[0]),
                                           block("proxies", name="u", type="udp", localPort=53, remotePort=ports[1]),
                                           token=TOKEN, **web))
            frpc.wait_for_log(r"\[t\] start error", 15)
            frpc.wait_for_log(r"\[u\] start error", 15)
            status, _, _, body, _ = ask(admin, "GET", "/api/status", GOOD)
            assert status == 200
            entries = {e["name"]: e for es in json.loads(body).values() for e in es}
            cli = subprocess.run([*go_cmd("frpc"), "status", "-c", str(frpc.config_path)], capture_output=True,
                                 text=True, timeout=30, check=False)
            seen.append((entries, cli.stdout, cli.returncode))
    assert seen[1] == seen[0]
    entries = seen[1][0]
    assert (entries["t"]["err"], entries["u"]["err"]) == ("port unavailable",
                                                          f"acquire port {ports[1]} error: port unavailable")
