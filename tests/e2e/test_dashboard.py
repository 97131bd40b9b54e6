"""frps dashboard, API and Prometheus metrics end to end: our frps + our frpc as real processes.

Every route with and without auth, online and offline proxies, traffic numbers after a known
transfer (and of a connection still open), client entries and their filters, DELETE of offline
proxies, /metrics values after known events, TLS, the command-line flags, the safe defaults
(refused non-loopback dashboard without a password, wrong passwords slowed down and refused per
address) and bad input (unknown routes, wrong methods, a huge body).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.procs import (
    LOCALHOST,
    EchoServer,
    FrpLauncher,
    FrpProcess,
    UdpEchoServer,
    free_port,
    frpc_config,
    frps_config,
    ours_cmd,
    tcp_proxy,
    udp_proxy,
)
from support.waits import poll

pytestmark = pytest.mark.timeout(120)

USER, PASSWORD = "admin", "dash-s3cret"
TOKEN = "dash-token"
ANNOTATION: dict[str, Any] = {"annotations.team": "a"}


# -- helpers ---------------------------------------------------------------------------------------


class Resp:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, path: str, *, method: str = "GET", auth: tuple[str, str] | None = (USER, PASSWORD),
            body: bytes | None = None, headers: dict[str, str] | None = None, source: str | None = None,
            tls: bool = False, timeout: float = 10.0) -> Resp:
    """One HTTP request to the dashboard on 127.0.0.1 (``source``: the local address to use)."""
    hdrs = dict(headers or {})
    if auth is not None:
        hdrs["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    src = (source, 0) if source else None
    conn: http.client.HTTPConnection
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(LOCALHOST, port, timeout=timeout, source_address=src, context=ctx)
    else:
        conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout, source_address=src)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def dash_keys(port: int, **extra: object) -> dict[str, Any]:
    return {"webServer.addr": LOCALHOST, "webServer.port": port, "webServer.user": USER,
            "webServer.password": PASSWORD, **extra}


def start_frps(frp, **keys: object) -> tuple[FrpProcess, int, int]:
    bind, dash = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, **dash_keys(dash, **keys)))
    frps.wait_for_log(r"frps started successfully", 20)
    return frps, bind, dash


def metric(port: int, series: str, **labels: str) -> float | None:
    """The value of one series in /metrics (None if absent)."""
    text = request(port, "/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sname, _, rest = head.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if sname == series and got == want:
            return float(value)
    return None


def echo_through(port: int, payload: bytes) -> None:
    """Send ``payload`` through a proxy to the echo server, read it back, close."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            assert chunk, f"echo closed after {len(got)} bytes"
            got += chunk
        assert got == payload


# -- the API -----------------------------------------------------------------------------------------


def test_api_routes_traffic_clients_and_metrics(frp: FrpLauncher) -> None:
    echo = EchoServer().start()
    uecho = UdpEchoServer().start()
    try:
        frps, bind, dash = start_frps(frp, enablePrometheus=True)
        remote, uremote = free_port(), free_port()
        frpc = frp.ours_frpc(frpc_config(
            bind, tcp_proxy("t", echo.port, remote, **ANNOTATION),
            udp_proxy("u", uecho.port, uremote),
            token=TOKEN, user="alice", clientID="box1"))
        frpc.wait_for_log(r"\[alice\.t\] start proxy success", 20)
        frpc.wait_for_log(r"\[alice\.u\] start proxy success", 20)

        # -- no auth: /healthz only; everything else 401 with Go's challenge ---------------------
        r = request(dash, "/healthz", auth=None)
        assert (r.status, r.body) == (200, b"")
        for path in ("/api/serverinfo", "/api/proxy/tcp", "/api/proxy/tcp/alice.t", "/api/proxies/alice.t",
                     "/api/traffic/alice.t", "/api/clients", "/api/clients/alice.box1", "/metrics", "/static/",
                     "/"):
            r = request(dash, path, auth=None)
            assert r.status == 401, path
            assert r.headers["www-authenticate"] == 'Basic realm="Restricted"'
            assert r.text == "Unauthorized\n"
        assert request(dash, "/api/proxies?status=offline", method="DELETE", auth=None).status == 401

        # -- serverinfo -------------------------------------------------------------------------
        r = request(dash, "/")
        assert (r.status, r.headers["location"]) == (301, "/static/")
        info = request(dash, "/api/serverinfo").json()
        assert info["version"] == "0.65.0" and info["bindPort"] == bind
        assert info["clientCounts"] == 1 and info["proxyTypeCount"] == {"tcp": 1, "udp": 1}
        assert info["heartbeatTimeout"] == -1 and "allowPortsStr" not in info
        assert list(info)[:3] == ["version", "bindPort", "vhostHTTPPort"]

        # -- online proxies -----------------------------------------------------------------------
        lst = request(dash, "/api/proxy/tcp").json()["proxies"]
        assert [p["name"] for p in lst] == ["alice.t"]
        p = lst[0]
        assert p["status"] == "online" and p["clientVersion"] == "0.65.0" and p["curConns"] == 0
        assert p["user"] == "alice" and p["clientID"] == "box1"
        assert p["conf"]["remotePort"] == remote and p["conf"]["annotations"] == {"team": "a"}
        assert p["conf"]["type"] == "tcp" and p["conf"]["localIP"] == "127.0.0.1"
        assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d", p["lastStartTime"]) and p["lastCloseTime"] == ""
        one = request(dash, "/api/proxy/tcp/alice.t").json()
        assert one["name"] == "alice.t" and one["status"] == "online" and "clientVersion" not in one
        assert request(dash, "/api/proxy/udp/alice.t").status == 404  # wrong type
        r = request(dash, "/api/proxy/tcp/nope")
        assert (r.status, r.text) == (404, "no proxy info found")
        assert request(dash, "/api/proxies/alice.u").json()["conf"]["remotePort"] == uremote
        assert request(dash, "/api/proxy/http").json() == {"proxies": []}

        # as in Go, a proxy's connection and traffic series appear with its first connection
        assert metric(dash, "frp_server_proxy_counts_detailed", type="tcp", name="alice.t") == 1
        assert metric(dash, "frp_server_connection_counts", name="alice.t", type="tcp") is None
        assert metric(dash, "frp_server_traffic_in", name="alice.t", type="tcp") is None

        # -- traffic after a known transfer ----------------------------------------------------------
        payload = bytes(range(256)) * 400  # 102,400 bytes each way
        echo_through(remote, payload)
        n = len(payload)
        poll(lambda: request(dash, "/api/proxy/tcp/alice.t").json()["curConns"] == 0, 10, "connection closed")
        one = request(dash, "/api/proxy/tcp/alice.t").json()
        assert (one["todayTrafficIn"], one["todayTrafficOut"]) == (n, n)
        tr = request(dash, "/api/traffic/alice.t").json()
        assert tr == {"name": "alice.t", "trafficIn": [n, 0, 0, 0, 0, 0, 0], "trafficOut": [n, 0, 0, 0, 0, 0, 0]}
        assert request(dash, "/api/traffic/nope").status == 404
        info = request(dash, "/api/serverinfo").json()
        assert (info["totalTrafficIn"], info["totalTrafficOut"]) == (n, n)
        assert metric(dash, "frp_server_traffic_in", name="alice.t", type="tcp") == n
        assert metric(dash, "frp_server_traffic_out", name="alice.t", type="tcp") == n

        # -- a connection still open: counted live ---------------------------------------------------
        with socket.create_connection((LOCALHOST, remote), timeout=10) as s:
            s.sendall(b"x" * 1000)
            got = b""
            while len(got) < 1000:
                got += s.recv(4096)
            poll(lambda: request(dash, "/api/proxy/tcp/alice.t").json()["curConns"] == 1, 10, "1 connection")
            one = request(dash, "/api/proxy/tcp/alice.t").json()
            assert one["todayTrafficIn"] == n + 1000 and one["todayTrafficOut"] == n + 1000
            assert request(dash, "/api/serverinfo").json()["curConns"] == 1
            assert metric(dash, "frp_server_connection_counts", name="alice.t", type="tcp") == 1
            assert metric(dash, "frp_server_traffic_in", name="alice.t", type="tcp") == n + 1000
        poll(lambda: metric(dash, "frp_server_connection_counts", name="alice.t", type="tcp") == 0, 10,
             "connection count back to 0")
        assert metric(dash, "frp_server_traffic_in", name="alice.t", type="tcp") == n + 1000

        # -- udp: counted per datagram ----------------------------------------------------------------
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(1)

            def udp_echo() -> bool:
                u.sendto(b"d" * 100, (LOCALHOST, uremote))
                try:
                    return u.recv(2048) == b"d" * 100
                except TimeoutError:
                    return False

            poll(udp_echo, 15, "udp echo through the proxy")
        ustats = request(dash, "/api/proxy/udp/alice.u").json()
        # deliberate (README): the datagrams' payload bytes, 100 each (Go 0.65 counts their base64, 136)
        assert ustats["todayTrafficIn"] >= 100 and ustats["todayTrafficIn"] % 100 == 0
        assert ustats["todayTrafficOut"] >= 100 and ustats["todayTrafficOut"] % 100 == 0
        assert metric(dash, "frp_server_traffic_in", name="alice.u", type="udp") == ustats["todayTrafficIn"]

        # -- metrics after known events --------------------------------------------------------------
        assert metric(dash, "frp_server_client_counts") == 1
        assert metric(dash, "frp_server_proxy_counts", type="tcp") == 1
        assert metric(dash, "frp_server_proxy_counts", type="udp") == 1
        assert metric(dash, "frp_server_proxy_counts_detailed", type="tcp", name="alice.t") == 1
        assert (metric(dash, "aiofrp_server_relayed_bytes_total", direction="in") or 0) >= n + 1000 + 100
        assert metric(dash, "aiofrp_server_work_conns_pooled") is not None
        assert metric(dash, "aiofrp_event_loop_lag_seconds") is not None
        text = request(dash, "/metrics").text
        assert "# TYPE frp_server_traffic_in counter" in text and "frp_server_traffic_in_total" not in text
        assert "process_resident_memory_bytes" in text

        # -- clients ------------------------------------------------------------------------------
        clients = request(dash, "/api/clients").json()
        assert len(clients) == 1
        c = clients[0]
        assert c["key"] == "alice.box1" and c["user"] == "alice" and c["clientID"] == "box1"
        assert c["version"] == "0.65.0" and c["clientIP"] == "127.0.0.1" and c["online"] is True
        assert c["runID"] and c["firstConnectedAt"] <= c["lastConnectedAt"] <= time.time() + 1
        assert "disconnectedAt" not in c
        assert request(dash, "/api/clients?user=alice").json() == clients
        assert request(dash, "/api/clients?user=bob").json() == []
        assert request(dash, "/api/clients?clientId=box1&status=online").json() == clients
        assert request(dash, "/api/clients?status=offline").json() == []
        assert request(dash, f"/api/clients?runId={c['runID']}").json() == clients
        assert request(dash, "/api/clients/alice.box1").json() == c
        r = request(dash, "/api/clients/nobody")
        assert (r.status, r.text) == (404, "client nobody not found")

        # -- the client goes: offline proxies and client -----------------------------------------------
        frpc.kill()
        poll(lambda: request(dash, "/api/serverinfo").json()["clientCounts"] == 0, 20, "client gone")
        one = request(dash, "/api/proxy/tcp/alice.t").json()
        assert one["status"] == "offline" and one["conf"] is None and one["lastCloseTime"]
        assert one["todayTrafficIn"] == n + 1000  # statistics survive the proxy
        assert request(dash, "/api/serverinfo").json()["proxyTypeCount"] == {"tcp": 0, "udp": 0}
        assert metric(dash, "frp_server_proxy_counts_detailed", type="tcp", name="alice.t") == 0
        c2 = request(dash, "/api/clients/alice.box1").json()
        assert c2["online"] is False and c2["disconnectedAt"] >= c2["lastConnectedAt"] and c2["runID"] == ""
        assert request(dash, "/api/clients?status=offline").json() == [c2]

        assert metric(dash, "frp_server_traffic_in", name="alice.t", type="tcp") == n + 1000  # offline: kept
        assert metric(dash, "frp_server_proxy_counts_detailed", type="udp", name="alice.u") == 0

        # -- DELETE offline -----------------------------------------------------------------------
        r = request(dash, "/api/proxies?status=online", method="DELETE")
        assert (r.status, r.text) == (400, "status only support offline")
        assert request(dash, "/api/proxies", method="DELETE").status == 400
        r = request(dash, "/api/proxies?status=offline", method="DELETE")
        assert (r.status, r.body) == (200, b"")
        assert request(dash, "/api/proxy/tcp").json() == {"proxies": []}
        assert request(dash, "/api/traffic/alice.t").status == 404
        frps.wait_for_log(r"cleared \[2\] offline proxies, total \[2\] proxies", 5)
        # deliberate (README): their /metrics series go with them (Go 0.65 keeps them until frps restarts)
        text = request(dash, "/metrics").text
        assert 'name="alice.t"' not in text and 'name="alice.u"' not in text, text
    finally:
        echo.stop()
        uecho.stop()


def test_http_proxy_traffic_counts_requests(frp: FrpLauncher, http_server) -> None:
    """An http proxy's bytes are counted per work connection (requests in, responses out)."""
    vhost = free_port()
    _frps, bind, dash = start_frps(frp, vhostHTTPPort=vhost)
    frpc = frp.ours_frpc(frpc_config(
        bind, f'\n[[proxies]]\nname = "web"\ntype = "http"\nlocalPort = {http_server.port}\n'
              'customDomains = ["web.example"]\n', token=TOKEN))
    frpc.wait_for_log(r"\[web\] start proxy success", 20)
    conn = http.client.HTTPConnection(LOCALHOST, vhost, timeout=10)
    conn.request("GET", "/", headers={"Host": "web.example"})
    body = conn.getresponse().read()
    conn.close()
    assert body
    conf = request(dash, "/api/proxy/http").json()["proxies"][0]["conf"]
    assert conf["customDomains"] == ["web.example"] and conf["locations"] is None
    assert conf["hostHeaderRewrite"] == ""

    def counted() -> bool:
        p = request(dash, "/api/proxy/http/web").json()
        return p["todayTrafficIn"] > 30 and p["todayTrafficOut"] > len(body)

    poll(counted, 10, "http traffic counted")


# -- safe defaults, auth, bad input -------------------------------------------------------------------


def test_wrong_password_100_times_is_refused_per_address(frp: FrpLauncher) -> None:
    frps, _bind, dash = start_frps(frp, enablePrometheus=True)
    codes = []
    t0 = time.monotonic()
    for _ in range(100):
        codes.append(request(dash, "/api/serverinfo", auth=(USER, "guess")).status)
    elapsed = time.monotonic() - t0
    assert codes[:10] == [401] * 10 and codes[10:] == [429] * 90, codes
    assert elapsed >= 10 * 0.2  # each wrong password waits (Go: 200 ms)
    # the right password from the guessing address is refused too while it is blocked ...
    r = request(dash, "/api/serverinfo")
    assert r.status == 429 and int(r.headers["retry-after"]) > 0
    # ... but nothing else is disturbed: another address, and the unauthenticated health check
    r = request(dash, "/api/serverinfo", source="127.0.0.2")
    assert r.status == 200 and r.json()["version"] == "0.65.0"
    assert request(dash, "/healthz", auth=None).status == 200
    frps.wait_for_log(r"dashboard: login failed from 127\.0\.0\.1", 5)
    frps.wait_for_log(r"dashboard: 10 failed logins from 127\.0\.0\.1, refusing it for 60s", 5)
    assert metric_from(dash, "127.0.0.2", "aiofrp_server_dashboard_auth_failures_total") == 10


def metric_from(port: int, source: str, name: str) -> float | None:
    text = request(port, "/metrics", source=source).text
    m = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


def test_bad_input(frp: FrpLauncher) -> None:
    frps, _bind, dash = start_frps(frp)
    r = request(dash, "/api/nope")
    assert (r.status, r.text) == (404, "404 page not found\n")
    assert request(dash, "/api/serverinfo", method="POST").status == 405
    assert request(dash, "/api/proxies?status=offline", method="PUT").status == 405
    assert request(dash, "/metrics").status == 404  # enablePrometheus is off
    r = request(dash, "/api/proxies?status=offline", method="DELETE", body=b"x" * (8 * 1024 * 1024))
    assert r.status == 413
    for path in ("/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc/passwd"):
        r = request(dash, path)  # Go's router cleans the path first: a redirect, which leads nowhere
        assert (r.status, r.headers.get("location")) == (301, "/etc/passwd"), path
    for path in ("/etc/passwd", "/static/nope.js", "/static/a%2fb"):
        assert request(dash, path).status == 404, path
    # malformed: a broken Authorization header, a non-HTTP request line
    assert request(dash, "/api/serverinfo", auth=None, headers={"Authorization": "Basic %%%"}).status == 401
    with socket.create_connection((LOCALHOST, dash), timeout=5) as s:
        s.sendall(b"\x16\x03\x01garbage\r\n\r\n")
        s.recv(4096)
    # still serving, and no traceback in the log
    assert request(dash, "/api/serverinfo").status == 200
    assert "Traceback" not in frps.log_text()


BAD_PASSWORD = (USER, "wrong")
GO_REDIRECT_BODY = b'<a href="/static/">Moved Permanently</a>.\n\n'
# (method, path, credentials, status, Location, body or None: not compared), as Go 0.65's router
# answers them (checked side by side in tests/compat/test_go_web_routes.py): a path no route serves
# gets 404 and a known one another method 405 whatever the credentials (routes are matched before the
# auth middleware); /, /healthz and /metrics take any method, the others GET only (not HEAD); a path
# that is not clean is redirected before anything else; http.FileServer's redirects under /static/
NO_AUTH: tuple[str, str] | None = None
ROUTER_CASES: list[tuple[str, str, tuple[str, str] | None, int, str | None, bytes | None]] = [
    ("GET", "/api/nothing", NO_AUTH, 404, None, b"404 page not found\n"),
    ("GET", "/api/nothing", BAD_PASSWORD, 404, None, b"404 page not found\n"),
    ("DELETE", "/nothing/at/all", BAD_PASSWORD, 404, None, b"404 page not found\n"),
    ("HEAD", "/api/serverinfo", NO_AUTH, 405, None, b""),
    ("POST", "/api/serverinfo", BAD_PASSWORD, 405, None, b""),
    ("HEAD", "/static/", (USER, PASSWORD), 405, None, b""),
    ("GET", "//", NO_AUTH, 301, "/", b""),
    ("POST", "/api/../api/serverinfo?x=1", NO_AUTH, 301, "/api/serverinfo?x=1", b""),
    ("POST", "/healthz", NO_AUTH, 200, None, b""),
    ("HEAD", "/healthz", NO_AUTH, 200, None, b""),
    ("GET", "/", NO_AUTH, 401, None, b"Unauthorized\n"),
    ("POST", "/", BAD_PASSWORD, 401, None, b"Unauthorized\n"),
    ("GET", "/static/", NO_AUTH, 401, None, b"Unauthorized\n"),
    ("GET", "/static/index.html", NO_AUTH, 401, None, b"Unauthorized\n"),
    ("GET", "/favicon.ico", NO_AUTH, 401, None, b"Unauthorized\n"),
    ("GET", "/metrics", NO_AUTH, 401, None, b"Unauthorized\n"),
    ("GET", "/", (USER, PASSWORD), 301, "/static/", GO_REDIRECT_BODY),
    ("POST", "/", (USER, PASSWORD), 301, "/static/", b""),
    ("HEAD", "/", (USER, PASSWORD), 301, "/static/", b""),
    ("GET", "/static/index.html", (USER, PASSWORD), 301, "./", b""),
    ("GET", "/static/app.js/?v=1", (USER, PASSWORD), 301, "../app.js?v=1", b""),
    ("GET", "/static/", (USER, PASSWORD), 200, None, None),
    ("POST", "/metrics", (USER, PASSWORD), 200, None, None),
]


@pytest.mark.parametrize("workers", [1, 2])
def test_routes_methods_and_redirects_as_gos_router(frp: FrpLauncher, workers: int) -> None:
    """The same answers from one frps and from the supervisor of ``frps --workers 2``, whose
    routes and router are its own (server/workers/dashboard.py)."""
    bind, dash = free_port(), free_port()
    args = ["--workers", str(workers)] if workers > 1 else []
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, **dash_keys(dash, enablePrometheus=True)), args=args)
    # --workers: the supervisor's line (a worker's "frps started successfully" comes before the supervisor listens)
    frps.wait_for_log(r"frps started successfully" + (f" with {workers} workers" if workers > 1 else ""), 30)
    wrong = []
    for method, path, auth, status, location, body in ROUTER_CASES:
        r = request(dash, path, method=method, auth=auth)
        got = (r.status, r.headers.get("location"), r.body if body is not None else None)
        if got != (status, location, body):
            wrong.append(f"{method} {path} auth={auth}: {r.status} {r.headers.get('location')} {r.body[:60]!r}, "
                         f"want {(status, location, body)}")
        elif status == 401:
            assert r.headers["www-authenticate"] == 'Basic realm="Restricted"'
        elif status in (404, 405) or (status == 301 and path != "/"):
            assert "www-authenticate" not in r.headers
    assert not wrong, "\n".join(wrong)
    # Go's http.Redirect: text/html to a GET (and a HEAD), no Content-Type to other methods
    assert request(dash, "/").headers["content-type"] == "text/html; charset=utf-8"
    assert request(dash, "/", method="HEAD").headers["content-type"] == "text/html; charset=utf-8"
    assert "content-type" not in request(dash, "/", method="POST").headers
    assert "frp_server_client_counts 0" in request(dash, "/metrics", method="POST").text


def test_static_ui_is_served_from_the_package(frp: FrpLauncher) -> None:
    _frps, _bind, dash = start_frps(frp)
    r = request(dash, "/static/")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    assert b'<table id="proxies">' in r.body
    for asset, ctype in (("app.js", "javascript"), ("app.css", "text/css"), ("favicon.svg", "image/svg")):
        r = request(dash, f"/static/{asset}", headers={"Accept-Encoding": "gzip"})
        assert r.status == 200 and ctype in r.headers["content-type"], asset
    r = request(dash, "/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    assert request(dash, "/favicon.ico").status == 200
    # no CDN: every asset the page names is local
    page = request(dash, "/static/").text + request(dash, "/static/app.js").text
    assert not re.search(r"https?://", page.replace("http://www.w3.org", ""))


def test_big_proxy_lists_are_gzipped(frp: FrpLauncher) -> None:
    import gzip

    echo = EchoServer().start()
    try:
        _frps, bind, dash = start_frps(frp)
        names = [f"p{i:03d}" for i in range(150)]
        frpc = frp.ours_frpc(frpc_config(bind, *(tcp_proxy(n, echo.port) for n in names), token=TOKEN))
        frpc.wait_for_log(r"\[p149\] start proxy success", 60)
        poll(lambda: len(request(dash, "/api/proxy/tcp").json()["proxies"]) == 150, 20, "150 proxies")
        plain = request(dash, "/api/proxy/tcp")
        zipped = request(dash, "/api/proxy/tcp", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers and zipped.headers["content-encoding"] == "gzip"
        assert len(zipped.body) * 5 < len(plain.body)
        assert json.loads(gzip.decompress(zipped.body)) == plain.json()
    finally:
        echo.stop()


def test_assets_dir_replaces_the_ui(frp: FrpLauncher, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>mine</p>")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("<p>sub</p>")
    _frps, _bind, dash = start_frps(frp, **{"webServer.assetsDir": str(tmp_path)})
    assert request(dash, "/static/").text == "<p>mine</p>"
    assert request(dash, "/static/sub/").text == "<p>sub</p>"
    r = request(dash, "/static/sub?x=1")  # http.FileServer: a directory without its slash is redirected
    assert (r.status, r.headers.get("location")) == (301, "sub/?x=1")


def test_dashboard_over_tls(frp: FrpLauncher, tmp_path: Path) -> None:
    from aiofrp.net.tls import self_signed_pair

    cert, key = self_signed_pair()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    _frps, _bind, dash = start_frps(frp, **{"webServer.tls.certFile": str(tmp_path / "c.pem"),
                                            "webServer.tls.keyFile": str(tmp_path / "k.pem")})
    r = request(dash, "/api/serverinfo", tls=True)
    assert r.status == 200 and r.json()["version"] == "0.65.0"
    assert request(dash, "/healthz", auth=None, tls=True).status == 200


def test_non_loopback_dashboard_needs_a_password(tmp_path: Path) -> None:
    cfg = tmp_path / "frps.toml"
    cfg.write_text(f'bindAddr = "127.0.0.1"\nbindPort = {free_port()}\nwebServer.addr = "0.0.0.0"\n'
                   f"webServer.port = {free_port()}\n")
    for args in (["-c", str(cfg)], ["verify", "-c", str(cfg)]):
        r = subprocess.run([*ours_cmd("frps"), *args], capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 1, r
        assert "webServer.user: the dashboard on non-loopback address \"0.0.0.0\" needs a user and password" \
            in r.stderr + r.stdout
        assert "Traceback" not in r.stderr
    cfg.write_text(f'bindPort = {free_port()}\nwebServer.addr = "::"\nwebServer.port = 1\nwebServer.user = "u"\n')
    r = subprocess.run([*ours_cmd("frps"), "verify", "-c", str(cfg)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and "webServer.password:" in r.stderr + r.stdout
    # loopback without a password is fine (Go's default address)
    cfg.write_text(f'bindPort = {free_port()}\nwebServer.port = 7500\n')
    r = subprocess.run([*ours_cmd("frps"), "verify", "-c", str(cfg)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r


def test_dashboard_flags(frp: FrpLauncher) -> None:
    bind, dash = free_port(), free_port()
    frps = frp.ours_frps(None, args=["--bind-addr", LOCALHOST, "-p", str(bind), "--dashboard-addr", LOCALHOST,
                                     "--dashboard-port", str(dash), "--dashboard-user", "u",
                                     "--dashboard-pwd", "p", "--enable-prometheus"])
    frps.wait_for_log(r"dashboard listen on 127\.0\.0\.1:\d+", 20)
    assert request(dash, "/api/serverinfo", auth=("u", "p")).json()["bindPort"] == bind
    assert "frp_server_client_counts 0" in request(dash, "/metrics", auth=("u", "p")).text
    assert request(dash, "/api/serverinfo", auth=(USER, PASSWORD)).status == 401


def test_pprof_enable_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "frps.toml"
    cfg.write_text("webServer.port = 7500\nwebServer.pprofEnable = true\n")
    r = subprocess.run([*ours_cmd("frps"), "verify", "-c", str(cfg)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert "webServer.pprofEnable: not supported by aiofrp yet" in r.stderr + r.stdout

