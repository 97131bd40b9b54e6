"""Hot reload, health checks and load-balancing groups, Go frp 0.65.0 and ours on the same input:

* health checks (frpc): the ``http`` check as Go's ``http.DefaultClient`` sends it (a ``Host`` in
  ``httpHeaders`` is the Host header, ``Accept-Encoding: gzip``, redirects followed, so a 302 to a
  2xx page is healthy), and the log lines of a check that fails and of the status changes, in Go's
  words (``dial tcp ...: connect: connection refused``, ``Get "...": context deadline exceeded``,
  ``health check status change to success|failed``);
* tcp groups (frps): connections go to the members in the order they joined, the first member first,
  and on after one leaves; every member logs ``tcp proxy listen port [P] in group [G]``;
* hot reload (frpc): visitors are updated before proxies (the order of ``visitor removed|added`` and
  ``proxy removed|added``), and the admin API logs its calls (``http get request [/api/config]``, ...).
"""

from __future__ import annotations

import base64
import http.server
import re
import socket
import socketserver
import threading
import urllib.request
from typing import Any

import pytest
from support.configs import block
from support.procs import (
    LOCALHOST,
    EchoServer,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-rhg"
IMPLS = ("go", "ours")


def _k(keys: dict[str, Any]) -> dict[str, Any]:
    """Dotted config keys for the builders' ``**keys``."""
    return keys


def start_frps(frp, impl: str, **keys: Any):
    bind = free_port()
    frps = getattr(frp, f"{impl}_frps")(frps_config(bind, token=TOKEN, **keys))
    frps.wait_for_log("frps started successfully", 10)
    return bind, frps


def messages(proc, name: str, since: int = 0) -> list[str]:
    """The text after ``[name] `` of each log line about proxy ``name``, without time, level, source
    and run id (they differ between Go and ours)."""
    rx = re.compile(rf"\[{re.escape(name)}\] (.*)$")
    out = []
    for line in proc.log_text()[since:].splitlines():
        m = rx.search(line)
        if m:
            out.append(m.group(1))
    return out


def first_seen(lines: list[str]) -> list[str]:
    seen: list[str] = []
    for line in lines:
        if line not in seen:
            seen.append(line)
    return seen


class _Recorder(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class CheckedService:
    """The service behind a health-checked proxy: ``/health`` redirects (302) to ``/ok`` (200);
    every request's path and headers are recorded."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path == "/health":
                    self.send_response(302)
                    self.send_header("Location", "/ok")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Recorder((LOCALHOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingService:
    """Accepts connections and never answers (an http check times out)."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_http_health_check_request_like_go(frp) -> None:
    """A 302 from the health path to a 200 page is healthy (Go follows redirects); the Host of
    ``httpHeaders`` is the request's Host; Accept-Encoding: gzip; the status-change log lines."""
    bind, _ = start_frps(frp, "go")
    seen: dict[str, Any] = {}
    for impl in IMPLS:
        svc = CheckedService()
        try:
            px = tcp_proxy("hc", svc.port, free_port(), **_k({
                "healthCheck.type": "http", "healthCheck.path": "/health", "healthCheck.intervalSeconds": 1}))
            px += ('\n[[proxies.healthCheck.httpHeaders]]\nname = "Host"\nvalue = "check.example"\n'
                   '[[proxies.healthCheck.httpHeaders]]\nname = "x-probe"\nvalue = "yes"\n')
            frpc = getattr(frp, f"{impl}_frpc")(frpc_config(bind, px, token=TOKEN))
            frpc.wait_for_proxies("hc", timeout=15)
            first = svc.requests[0][1]
            seen[impl] = {
                "paths": [p for p, _ in svc.requests[:2]],
                "host": [h.get("host") for _, h in svc.requests[:2]],
                "probe": first.get("x-probe"),
                "gzip": first.get("accept-encoding"),
                "log": [m for m in first_seen(messages(frpc, "hc")) if "health check" in m],
            }
            frpc.stop()
        finally:
            svc.close()
    assert seen["ours"] == seen["go"], seen
    assert seen["go"]["paths"] == ["/health", "/ok"] and seen["go"]["host"] == ["check.example"] * 2
    assert seen["go"]["log"] == ["health check status change to success", "health check success"]


def _normalize(msg: str, ports: dict[int, str]) -> str:
    for port, label in ports.items():
        msg = msg.replace(f":{port}", f":{label}")
    return msg


def test_health_check_failure_log_lines_like_go(frp) -> None:
    """What frpc logs while a check fails (tcp: refused; http: no answer within timeoutSeconds),
    and when a healthy service goes down."""
    bind, _ = start_frps(frp, "go")
    seen: dict[str, Any] = {}
    for impl in IMPLS:
        hang = HangingService()
        refused = free_port()
        with EchoServer() as echo:
            proxies = (
                tcp_proxy("tc", refused, free_port(), **_k({"healthCheck.type": "tcp", "healthCheck.intervalSeconds": 1}))
                + tcp_proxy("hh", hang.port, free_port(), **_k({
                    "healthCheck.type": "http", "healthCheck.path": "/h", "healthCheck.intervalSeconds": 1,
                    "healthCheck.timeoutSeconds": 1}))
                + tcp_proxy("up", echo.port, free_port(), **_k({"healthCheck.type": "tcp", "healthCheck.intervalSeconds": 1}))
            )
            try:
                frpc = getattr(frp, f"{impl}_frpc")(frpc_config(bind, proxies, token=TOKEN))
                frpc.wait_for_proxies("up", timeout=15)
                frpc.wait_for_log(r"\[hh\] do one health check failed", 10)
                frpc.wait_for_log(r"\[tc\] do one health check failed", 10)
                echo.stop()
                frpc.wait_for_log(r"\[up\] health check failed", 10)
                ports = {refused: "REFUSED", hang.port: "HANG", echo.port: "ECHO"}
                seen[impl] = {name: [_normalize(m, ports) for m in first_seen(messages(frpc, name))
                                     if "health check" in m]
                              for name in ("tc", "hh", "up")}
                frpc.stop()
            finally:
                hang.close()
    assert seen["ours"] == seen["go"], seen
    assert seen["go"]["tc"] == ["do one health check failed: dial tcp 127.0.0.1:REFUSED: connect: connection refused"]
    assert seen["go"]["hh"] == ['do one health check failed: Get "http://127.0.0.1:HANG/h": context deadline exceeded']
    assert seen["go"]["up"][-3:] == [
        "do one health check failed: dial tcp 127.0.0.1:ECHO: connect: connection refused",
        "health check status change to failed", "health check failed"]


class IdServer:
    """Sends its one-letter id to every connection, then closes it."""

    def __init__(self, ident: str) -> None:
        self.ident = ident.encode()
        self.sock = socket.create_server((LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.ident)

    def close(self) -> None:
        self.sock.close()


def _who(port: int) -> str:
    with socket.create_connection((LOCALHOST, port), timeout=5) as s:
        s.settimeout(5)
        return s.recv(8).decode() or "-"


def test_tcp_group_rotation_and_log_like_go(frp) -> None:
    """Three Go frpc members join a tcp group in turn: the frps hands connections to them in that
    order, the first member first, and on in order after the second leaves."""
    servers = {n: IdServer(n) for n in "ABC"}
    seen: dict[str, Any] = {}
    try:
        for impl in IMPLS:
            bind, frps = start_frps(frp, impl)
            port = free_port()
            members = {}
            for n, srv in servers.items():
                members[n] = frp.go_frpc(frpc_config(bind, tcp_proxy(f"m{n}", srv.port, port, **_k({
                    "loadBalancer.group": "g", "loadBalancer.groupKey": "k"})), token=TOKEN))
                members[n].wait_for_proxies(f"m{n}", timeout=15)
            first = "".join(_who(port) for _ in range(6))
            members["B"].stop()
            frps.wait_for_log(r"\[mB\] proxy closing", 10)
            after = "".join(_who(port) for _ in range(4))
            seen[impl] = {
                "first": first, "after": after,  # the port differs between the runs
                "log": [re.sub(r"\[\d+\]", "[P]", m) for n in "ABC" for m in messages(frps, f"m{n}")
                        if "listen port" in m],
            }
            for p in members.values():
                p.stop()
            frps.stop()
    finally:
        for srv in servers.values():
            srv.close()
    assert seen["ours"] == seen["go"], seen
    assert seen["go"]["first"] == "ABCABC" and seen["go"]["after"] == "ACAC"
    assert seen["go"]["log"] == ["tcp proxy listen port [P] in group [g]"] * 3


def _who_mux(port: int, host: str) -> str:
    with socket.create_connection((LOCALHOST, port), timeout=5) as s:
        s.settimeout(5)
        s.sendall(f"CONNECT {host}:80 HTTP/1.1\r\nHost: {host}:80\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(1024)
            if not chunk:
                return "-"
            got += chunk
        rest = got.split(b"\r\n\r\n", 1)[1]
        return (rest or s.recv(8)).decode() or "-"


def test_tcpmux_group_rotation_like_go(frp) -> None:
    """A tcpmux group hands connections to its members as Go's does (the members' accept loops
    wait on the group's channel): the first member first, then in turn."""
    servers = {n: IdServer(n) for n in "ABC"}
    seen: dict[str, str] = {}
    try:
        for impl in IMPLS:
            mux = free_port()
            bind, frps = start_frps(frp, impl, tcpmuxHTTPConnectPort=mux)
            members = []
            for n, srv in servers.items():
                members.append(frp.go_frpc(frpc_config(bind, block(
                    "proxies", name=f"x{n}", type="tcpmux", multiplexer="httpconnect", localIP=LOCALHOST,
                    localPort=srv.port, customDomains=["mux.example"], **_k({
                        "loadBalancer.group": "g", "loadBalancer.groupKey": "k"})), token=TOKEN)))
                members[-1].wait_for_proxies(f"x{n}", timeout=15)
            seen[impl] = "".join(_who_mux(mux, "mux.example") for _ in range(6))
            for p in members:
                p.stop()
            frps.stop()
    finally:
        for srv in servers.values():
            srv.close()
    assert seen["ours"] == seen["go"] == "ABCABC", seen


def _admin(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(f"http://{LOCALHOST}:{port}{path}", data=body, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"adm:pw").decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


_API_LINE = re.compile(r"(api request \[[^\]]+\]|api response \[[^\]]+\], code \[\d+\]|http (?:get |put )?request "
                       r"\[[^\]]+\]|http (?:get |put )?response \[[^\]]+\](?:, code \[\d+\])?|"
                       r"(?:visitor|proxy) (?:removed|added): \[[^\]]*\]|success reload conf)$")


def _reload_config(bind: int, echo: int, admin: int, keep: int) -> str:
    """proxies keep (same each time), chg (a new remotePort each time), stcp sec; visitor vis (a new
    bindPort each time); admin API with Basic auth."""
    return frpc_config(
        bind,
        tcp_proxy("keep", echo, keep),
        tcp_proxy("chg", echo, free_port()),
        block("proxies", name="sec", type="stcp", localIP=LOCALHOST, localPort=echo, secretKey="k"),
        block("visitors", name="vis", type="stcp", serverName="sec", secretKey="k", bindAddr=LOCALHOST,
              bindPort=free_port()),
        token=TOKEN, **_k({"webServer.addr": LOCALHOST, "webServer.port": admin,
                        "webServer.user": "adm", "webServer.password": "pw"}))


def test_reload_and_admin_api_log_lines_like_go(frp) -> None:
    """GET/PUT /api/config, GET /api/status and a reload that changes a visitor and a proxy: the
    admin API's log lines, and visitors updated before proxies."""
    bind, _ = start_frps(frp, "go")
    seen: dict[str, list[str]] = {}
    with EchoServer() as echo:
        for impl in IMPLS:
            admin, keep_port = free_port(), free_port()
            frpc = getattr(frp, f"{impl}_frpc")(_reload_config(bind, echo.port, admin, keep_port))
            frpc.wait_for_proxies("keep", "chg", "sec", timeout=15)
            mark = frpc.mark()
            assert _admin(admin, "GET", "/api/status")[0] == 200
            assert _admin(admin, "GET", "/api/config")[0] == 200
            assert _admin(admin, "PUT", "/api/config", _reload_config(bind, echo.port, admin, keep_port).encode())[0] == 200
            assert _admin(admin, "GET", "/api/reload") == (200, "")
            frpc.wait_for_proxies("chg", timeout=15, since=mark)
            lines = [m.group(1) for line in frpc.log_text()[mark:].splitlines() if (m := _API_LINE.search(line))]
            seen[impl] = lines
            frpc.stop()
    assert seen["ours"] == seen["go"], seen
    assert seen["go"] == [
        "http request [/api/status]", "http response [/api/status]",
        "http get request [/api/config]", "http get response [/api/config], code [200]",
        "http put request [/api/config]", "http put response [/api/config], code [200]",
        "api request [/api/reload]", "visitor removed: [vis]", "visitor added: [vis]",
        "proxy removed: [chg]", "proxy added: [chg]", "success reload conf", "api response [/api/reload], code [200]",
    ]

