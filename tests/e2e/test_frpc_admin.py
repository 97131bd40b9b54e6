"""frpc's admin API, hot reload and store, end to end: our frps + our frpc processes (docs/protocol.md
§7.7, README "frpc admin API, UI and hot reload").

* every route with and without auth (401 + WWW-Authenticate without; /healthz open);
* reload: a long-lived connection through an unchanged proxy survives a reload that adds, changes
  and removes others; a broken new config changes nothing and is reported precisely (API + CLI);
* the store: create/read/update/delete through the API, persisted across a restart;
* bad input: malformed JSON, a huge body, unknown routes, a wrong password 100 times;
* webServer.tls, ``frpc --config_dir`` and ``frpc nathole discover``.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from support.admin import AdminClient
from support.httpd import tls_server_context
from support.procs import LOCALHOST, EchoServer, block, free_port, frpc_config, frps_config, tcp_proxy
from support.stun import StunServer
from support.waits import echo_ok, poll, refused

from aiofrp.net.webauth import MAX_FAILURES

pytestmark = pytest.mark.timeout(120)

TOKEN = "admin-e2e-token"
USER, PASSWORD = "admin", "s3cret"


def start_frps(frp) -> int:
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully", 10)
    return bind


def admin_keys(port: int, **more: Any) -> dict[str, Any]:
    return {"webServer.addr": LOCALHOST, "webServer.port": port, "webServer.user": USER,
            "webServer.password": PASSWORD, **more}


def frpc_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiofrp.cli.frpc", *args], check=False, capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def from_other_address(port: int, path: str) -> int:
    """GET with the right password from 127.0.0.2 (another client address on loopback)."""
    c = http.client.HTTPConnection(LOCALHOST, port, timeout=10, source_address=("127.0.0.2", 0))
    try:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        c.request("GET", path, headers={"Authorization": f"Basic {token}"})
        return c.getresponse().status
    finally:
        c.close()


class LongLived:
    """One TCP connection kept open through a proxy; :meth:`echo` proves it still works."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOCALHOST, port), timeout=5)

    def echo(self, payload: bytes) -> bytes:
        self.sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got

    def close(self) -> None:
        self.sock.close()


def test_every_route_with_and_without_auth(frp, tmp_path):
    bind = start_frps(frp)
    admin = free_port()
    store = tmp_path / "store.json"
    with EchoServer() as echo:
        remote = free_port()
        text = frpc_config(bind, tcp_proxy("web", echo.port, remote), token=TOKEN,
                           **admin_keys(admin, **{"store.path": str(store)}))
        text += '\n[[visitors]]\nname = "vis"\ntype = "stcp"\nserverName = "other"\nsecretKey = "k"\nbindPort = -1\n'
        frpc = frp.ours_frpc(text)
        frpc.wait_for_proxies("web")
        api = AdminClient(admin, USER, PASSWORD)
        body = json.dumps({"name": "st", "type": "tcp", "tcp": {"localIP": LOCALHOST, "localPort": echo.port,
                                                               "remotePort": free_port()}})
        routes = [
            ("GET", "/api/status", None, 200),
            ("GET", "/api/config", None, 200),
            ("GET", "/api/reload", None, 200),
            ("GET", "/api/reload?strictConfig=true", None, 200),
            ("GET", "/api/proxy/web/config", None, 200),
            ("GET", "/api/visitor/vis/config", None, 200),
            ("GET", "/api/store/proxies", None, 200),
            ("POST", "/api/store/proxies", body, 200),
            ("GET", "/api/store/proxies/st", None, 200),
            ("PUT", "/api/store/proxies/st", body, 200),
            ("DELETE", "/api/store/proxies/st", None, 200),
            ("GET", "/api/store/visitors", None, 200),
            ("GET", "/api/store/visitors/none", None, 404),
            ("POST", "/api/verify", frpc.config_text, 200),
            ("PUT", "/api/config", frpc.config_text, 200),
            ("GET", "/static/", None, 200),
            ("GET", "/static/app.js", None, 200),
            ("GET", "/favicon.ico", None, 200),
            ("GET", "/", None, 301),
        ]
        for method, path, data, code in routes:
            r = api.request(method, path, data, auth=False)
            assert r.status == 401 and r.headers.get("WWW-Authenticate") == 'Basic realm="Restricted"', (path, r)
            r = api.request(method, path, data, auth=(USER, "wrong"))
            assert r.status == 401, (path, r)
            r = api.request(method, path, data)
            assert r.status == code, (method, path, r)
        assert api.get("/healthz", auth=False).status == 200

        # the shapes, as Go's
        st = api.status()["web"]
        assert st == {"name": "web", "type": "tcp", "status": "running", "err": "",
                      "local_addr": f"{LOCALHOST}:{echo.port}", "plugin": "", "remote_addr": f"{LOCALHOST}:{remote}"}
        assert api.get("/api/config").text == frpc.config_text
        conf = api.get("/api/proxy/web/config").json()
        assert conf["name"] == "web" and conf["type"] == "tcp" and conf["tcp"]["remotePort"] == remote
        assert api.get("/api/visitor/vis/config").json()["stcp"]["serverName"] == "other"
        r = api.get("/api/proxy/nope/config")
        assert r.status == 404 and r.json() == {"Code": 404, "Msg": 'proxy "nope" not found'}
        assert api.get("/").headers["Location"] == "/static/"
        assert "<title>" in api.get("/static/").text

        r = api.request("POST", "/api/stop")
        assert r.status == 200
        assert frpc.wait_exit(10) == 0


def ask(port: int, method: str, path: str, auth: tuple[str, str] | None) -> http.client.HTTPResponse:
    """One request (any method, HEAD too) to the admin API; the answer read."""
    c = http.client.HTTPConnection(LOCALHOST, port, timeout=10)
    try:
        hdrs = {"Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()} if auth else {}
        c.request(method, path, headers=hdrs)
        r = c.getresponse()
        r.body = r.read()  # type: ignore[attr-defined]
        return r
    finally:
        c.close()


GOOD, BAD = (USER, PASSWORD), (USER, "wrong")
GO_REDIRECT_BODY = b'<a href="/static/">Moved Permanently</a>.\n\n'
# (method, path, credentials, status, Location, body or None: not compared) as Go 0.65's admin API
# answers them (its router: routes matched before the auth middleware, so a path no route serves is
# 404 and a wrong method 405 whatever the credentials; / and /healthz take any method, HEAD nothing
# else; a path that is not clean is redirected first; http.FileServer's redirects under /static/)
ROUTER_CASES: list[tuple[str, str, tuple[str, str] | None, int, str | None, bytes | None]] = [
    ("GET", "/api/nothing", None, 404, None, b"404 page not found\n"),
    ("GET", "/api/nothing", BAD, 404, None, b"404 page not found\n"),
    ("PUT", "/nothing/at/all", BAD, 404, None, b"404 page not found\n"),
    ("HEAD", "/api/status", None, 405, None, b""),
    ("POST", "/api/status", BAD, 405, None, b""),
    ("GET", "//", None, 301, "/", b""),
    ("GET", "/api/../api/status?x=1", None, 301, "/api/status?x=1", b""),
    ("POST", "/healthz", None, 200, None, b""),
    ("HEAD", "/healthz", BAD, 200, None, b""),
    ("GET", "/api/status", None, 401, None, b"Unauthorized\n"),
    ("GET", "/", None, 401, None, b"Unauthorized\n"),
    ("HEAD", "/", None, 401, None, b""),
    ("POST", "/", BAD, 401, None, b"Unauthorized\n"),
    ("GET", "/static/", None, 401, None, b"Unauthorized\n"),
    ("GET", "/static/index.html", BAD, 401, None, b"Unauthorized\n"),
    ("GET", "/favicon.ico", None, 401, None, b"Unauthorized\n"),
    ("GET", "/", GOOD, 301, "/static/", GO_REDIRECT_BODY),
    ("POST", "/", GOOD, 301, "/static/", b""),
    ("HEAD", "/", GOOD, 301, "/static/", b""),
    ("GET", "/static/index.html", GOOD, 301, "./", b""),
    ("GET", "/static/app.js/", GOOD, 301, "../app.js", b""),
    ("GET", "/static/", GOOD, 200, None, None),
]

# one proxy of each type, named so that their names' order is not their types' order
EVERY_TYPE = [("a", "udp"), ("b", "xtcp"), ("c", "tcp"), ("d", "https"), ("e", "sudp"), ("f", "http"),
              ("g", "tcpmux"), ("h", "stcp")]


def test_routes_methods_redirects_and_status_keys_as_gos(frp):
    bind = start_frps(frp)
    admin = free_port()
    blocks = []
    for name, kind in EVERY_TYPE:
        keys: dict[str, Any] = {"name": name, "type": kind, "localIP": LOCALHOST, "localPort": 22}
        if kind in ("tcp", "udp"):
            keys["remotePort"] = free_port()
        elif kind in ("http", "https", "tcpmux"):
            keys["customDomains"] = [f"{name}.example.com"]
            keys["multiplexer"] = "httpconnect" if kind == "tcpmux" else None
        else:
            keys["secretKey"] = "k"
        blocks.append(block("proxies", **keys))
    frpc = frp.ours_frpc(frpc_config(bind, *blocks, token=TOKEN, **admin_keys(admin)))
    frpc.wait_for_proxies("c", "a", "h")

    wrong = []
    for method, path, auth, status, location, body in ROUTER_CASES:
        r = ask(admin, method, path, auth)
        got = (r.status, r.getheader("Location"), r.body if body is not None else None)  # type: ignore[attr-defined]
        if got != (status, location, body):
            wrong.append(f"{method} {path} auth={auth}: {got[:2]} {r.body[:60]!r}, "  # type: ignore[attr-defined]
                         f"want {(status, location, body)}")
        elif status == 401:
            assert r.getheader("WWW-Authenticate") == 'Basic realm="Restricted"'
        elif status in (404, 405) or (status == 301 and path != "/"):
            assert r.getheader("WWW-Authenticate") is None
    assert not wrong, "\n".join(wrong)
    # Go's http.Redirect: text/html to a GET and a HEAD, no Content-Type to other methods
    assert ask(admin, "GET", "/", GOOD).getheader("Content-Type") == "text/html; charset=utf-8"
    assert ask(admin, "HEAD", "/", GOOD).getheader("Content-Type") == "text/html; charset=utf-8"
    assert ask(admin, "POST", "/", GOOD).getheader("Content-Type") is None

    # /api/status: Go's map of types, written by encoding/json in key order; only the types present
    r = ask(admin, "GET", "/api/status", GOOD)
    assert r.status == 200
    status = json.loads(r.body)  # type: ignore[attr-defined]
    assert list(status) == ["http", "https", "stcp", "sudp", "tcp", "tcpmux", "udp", "xtcp"]
    assert {k: [p["name"] for p in v] for k, v in status.items()} == {k: [n] for n, k in EVERY_TYPE}
    assert re.match(rb'\{"http":\[\{"name":"f",', r.body)  # type: ignore[attr-defined]


def test_taken_remote_port_is_gos_port_unavailable(frp):
    """A remote port frps cannot bind: frpc shows Go's words (tcp ``port unavailable``, udp
    ``acquire port N error: port unavailable``) in the status API and ``frpc status``; frps logs
    the port and the reason."""
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log("frps started successfully", 10)
    admin = free_port()
    with socket.socket() as taken_tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken_udp:
        taken_tcp.bind((LOCALHOST, 0))
        taken_tcp.listen()
        taken_udp.bind((LOCALHOST, 0))
        tport, uport = taken_tcp.getsockname()[1], taken_udp.getsockname()[1]
        with EchoServer() as echo:
            frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo.port, tport),
                                             block("proxies", name="u", type="udp", localIP=LOCALHOST,
                                                   localPort=echo.port, remotePort=uport),
                                             token=TOKEN, **admin_keys(admin)))
            frpc.wait_for_log(rf"\[u\] start error: acquire port {uport} error: port unavailable$", 15)
            frpc.wait_for_log(r"\[t\] start error: port unavailable$", 15)
            api = AdminClient(admin, USER, PASSWORD)
            st = api.status()
            for name, err in (("t", "port unavailable"), ("u", f"acquire port {uport} error: port unavailable")):
                assert (st[name]["status"], st[name]["err"], st[name]["remote_addr"]) == ("start error", err, ""), st
            res = frpc_cli("status", "-c", str(frpc.config_path))
            assert res.returncode == 0, res
            rows = [line.split() for line in res.stdout.splitlines()]
            assert ["t", "start", "error", "127.0.0.1:" + str(echo.port), "port", "unavailable"] in rows, res.stdout
            frps.wait_for_log(rf"\[t\] tcp port {tport} unavailable: Address already in use", 5)
            frps.wait_for_log(rf"\[u\] udp port {uport} unavailable: Address already in use", 5)
            frps.wait_for_log(r"new proxy \[t\] type \[tcp\] error: port unavailable$", 5)


def test_reload_adds_changes_removes_and_keeps_connections(frp, tmp_path):
    bind = start_frps(frp)
    admin = free_port()
    keep_p, change_p, change_p2, gone_p, new_p = (free_port() for _ in range(5))
    with EchoServer() as echo:
        def config(*proxies: str) -> str:
            return frpc_config(bind, *proxies, token=TOKEN, **admin_keys(admin))

        keep = tcp_proxy("keep", echo.port, keep_p)
        frpc = frp.ours_frpc(config(keep, tcp_proxy("change", echo.port, change_p), tcp_proxy("gone", echo.port, gone_p)))
        frpc.wait_for_proxies("keep", "change", "gone")
        api = AdminClient(admin, USER, PASSWORD)
        conn = LongLived(keep_p)
        assert conn.echo(b"before") == b"before"

        # the file changes: one added, one changed (remote port), one removed; `frpc reload -c`
        assert frpc.config_path is not None
        mark = frpc.mark()
        frpc.config_path.write_text(config(keep, tcp_proxy("change", echo.port, change_p2),
                                           tcp_proxy("added", echo.port, new_p)))
        res = frpc_cli("reload", "-c", str(frpc.config_path))
        assert res.returncode == 0 and res.stdout.strip() == "reload success", res
        frpc.wait_for_proxies("change", "added", since=mark)
        frpc.wait_for_log(r"proxy removed: \[change gone\]", 5, since=mark)
        assert conn.echo(b"after reload") == b"after reload"  # the unchanged proxy kept its connection
        poll(lambda: refused(gone_p) and refused(change_p), 10, "removed/old ports closed")
        assert echo_ok(change_p2) and echo_ok(new_p)
        assert set(api.status()) == {"keep", "change", "added"}
        assert "[keep] start proxy success" not in frpc.log_text()[mark:]

        # a broken new config: reported precisely, nothing changes (CLI and API)
        good = frpc.config_path.read_text()
        frpc.config_path.write_text(good.replace(f"localPort = {echo.port}", 'localPort = "x"', 1))
        res = frpc_cli("reload", "-c", str(frpc.config_path), "--strict-config=false")
        # the CLI itself reads the file first (for webServer): Go does the same and fails there
        assert res.returncode == 1 and f"{frpc.config_path}: proxies[0].localPort" in res.stderr, res
        r = api.get("/api/reload?strictConfig=true")
        assert r.status == 400 and r.text.startswith(f"{frpc.config_path}: proxies[0].localPort:"), r
        frpc.config_path.write_text(good + '\n[[proxies]]\nname = "bad"\ntype = "tcp"\nlocalPort = 1\nremotePrt = 5\n')
        r = api.get("/api/reload?strictConfig=true")
        assert r.status == 400 and "proxies[3].remotePrt" in r.text and "remotePort" in r.text, r
        frpc.config_path.write_text(good + '\n[[proxies]]\nname = "keep"\ntype = "tcp"\nlocalPort = 1\n')
        res = frpc_cli("reload", "-c", str(frpc.config_path))  # loads for the CLI? no: duplicate name fails
        assert res.returncode == 1 and 'duplicate proxy name "keep"' in res.stderr, res
        assert set(api.status()) == {"keep", "change", "added"}
        assert conn.echo(b"after broken") == b"after broken"
        assert echo_ok(change_p2) and echo_ok(new_p)
        conn.close()


def test_reload_visitors(frp):
    """A reload adds, moves (bindPort changed) and removes an stcp visitor."""
    bind = start_frps(frp)
    admin = free_port()
    with EchoServer() as echo:
        frp.ours_frpc(frpc_config(bind, block("proxies", name="secret", type="stcp", secretKey="k",
                                              localIP=LOCALHOST, localPort=echo.port), token=TOKEN)
                      ).wait_for_proxies("secret")
        base = frpc_config(bind, token=TOKEN, **admin_keys(admin))
        frpc = frp.ours_frpc(base)
        frpc.wait_login()
        api = AdminClient(admin, USER, PASSWORD)
        poll(lambda: api.get("/healthz").status == 200, 10, "admin API up")
        assert frpc.config_path is not None
        v1, v2 = free_port(), free_port()

        def visitor(port: int) -> str:
            return block("visitors", name="vis", type="stcp", serverName="secret", secretKey="k",
                         bindAddr=LOCALHOST, bindPort=port)

        for port, gone in ((v1, None), (v2, v1)):
            frpc.config_path.write_text(base + visitor(port))
            assert api.get("/api/reload?strictConfig=true").status == 200
            poll(lambda port=port: echo_ok(port), 10, f"visitor on {port}")
            if gone:
                assert refused(gone)
        assert api.get("/api/visitor/vis/config").json()["stcp"]["bindPort"] == v2
        frpc.config_path.write_text(base)
        assert api.get("/api/reload").status == 200
        poll(lambda: refused(v2), 10, "visitor removed")
        assert api.get("/api/visitor/vis/config").status == 404
        frpc.wait_for_log(r"visitor removed: \[vis\]", 5)


def test_reload_via_put_config_and_includes(frp, tmp_path):
    """PUT /api/config writes the file (empty body: 400), /api/reload follows ``includes``."""
    bind = start_frps(frp)
    admin = free_port()
    with EchoServer() as echo:
        inc = frp.workdir / "conf.d"
        inc.mkdir()
        p1, p2 = free_port(), free_port()
        (inc / "a.toml").write_text(tcp_proxy("inc-a", echo.port, p1))
        main = frpc_config(bind, token=TOKEN, **admin_keys(admin, includes=[str(inc / "*.toml")]))
        frpc = frp.ours_frpc(main)
        frpc.wait_for_proxies("inc-a")
        api = AdminClient(admin, USER, PASSWORD)
        assert api.request("PUT", "/api/config", b"").status == 400
        assert api.request("PUT", "/api/config", b"").text == "body can't be empty"
        (inc / "b.toml").write_text(tcp_proxy("inc-b", echo.port, p2))
        r = api.request("PUT", "/api/config", main + tcp_proxy("direct", echo.port, free_port()))
        assert r.status == 200
        r = api.get("/api/reload")
        assert r.status == 200, r
        frpc.wait_for_proxies("inc-b", "direct")
        assert echo_ok(p1) and echo_ok(p2)
        # /api/verify (aiofrp's): the UI's check before saving
        r = api.request("POST", "/api/verify", main.replace("serverPort", "serverPrt"))
        assert r.status == 400 and "serverPrt" in r.text, r


def test_store_crud_across_restart(frp, tmp_path):
    bind = start_frps(frp)
    admin = free_port()
    store = tmp_path / "state" / "store.json"
    with EchoServer() as echo:
        text = frpc_config(bind, token=TOKEN, **admin_keys(admin, **{"store.path": str(store)}))
        frpc = frp.ours_frpc(text)
        frpc.wait_login()
        api = AdminClient(admin, USER, PASSWORD)
        assert api.get("/api/store/proxies").json() == {"proxies": []}

        def proxy(name: str, port: int) -> str:
            return json.dumps({"name": name, "type": "tcp",
                               "tcp": {"localIP": LOCALHOST, "localPort": echo.port, "remotePort": port}})

        a, b, b2 = free_port(), free_port(), free_port()
        r = api.request("POST", "/api/store/proxies", proxy("sa", a))
        assert r.status == 200 and r.json()["tcp"]["remotePort"] == a, r
        assert api.request("POST", "/api/store/proxies", proxy("sb", b)).status == 200
        r = api.request("POST", "/api/store/proxies", proxy("sb", b))
        assert r.status == 409 and r.json() == {"Code": 409, "Msg": 'conflict: already exists: proxy "sb"'}, r
        frpc.wait_for_proxies("sa", "sb")
        assert echo_ok(a) and echo_ok(b)
        assert api.status()["sa"]["source"] == "store"
        r = api.request("PUT", "/api/store/proxies/sb", proxy("sb", b2))
        assert r.status == 200, r
        poll(lambda: echo_ok(b2) and refused(b), 10, "sb moved to its new port")
        r = api.request("PUT", "/api/store/proxies/other", proxy("sb", b2))
        assert r.status == 400 and r.json()["Msg"] == "proxy name in URL must match name in body", r
        assert api.request("PUT", "/api/store/proxies/nope", proxy("nope", b2)).status == 404
        assert api.request("DELETE", "/api/store/proxies/sa").status == 200
        assert api.request("DELETE", "/api/store/proxies/sa").status == 404
        poll(lambda: refused(a), 10, "sa closed")
        # a visitor too
        vis = {"name": "sv", "type": "stcp", "stcp": {"serverName": "x", "secretKey": "k", "bindPort": -1}}
        assert api.request("POST", "/api/store/visitors", json.dumps(vis)).status == 200
        assert [v["name"] for v in api.get("/api/store/visitors").json()["visitors"]] == ["sv"]
        saved = json.loads(store.read_text())
        assert [p["name"] for p in saved["proxies"]] == ["sb"] and saved["proxies"][0]["remotePort"] == b2
        assert [v["name"] for v in saved["visitors"]] == ["sv"]

        frpc.stop()
        frpc2 = frp.ours_frpc(text)
        frpc2.wait_for_proxies("sb")
        assert echo_ok(b2) and refused(a)
        api2 = AdminClient(admin, USER, PASSWORD)
        poll(lambda: api2.get("/api/store/proxies").status == 200, 10, "admin API up")
        assert [p["name"] for p in api2.get("/api/store/proxies").json()["proxies"]] == ["sb"]
        assert api2.get("/api/visitor/sv/config").status == 200

        # a store file that cannot be used stops frpc with the file, the key and the reason
        frpc2.stop()
        store.write_text('{"proxies": [{"name": "x", "type": "tcp", "localPort": "nope"}]}')
        bad = frp.ours_frpc(text)
        assert bad.wait_exit(15) == 1
        assert f"{store}: proxies[0].localPort" in bad.log_text()


def test_store_disabled_and_bad_input(frp, tmp_path):
    bind = start_frps(frp)
    admin = free_port()
    store = tmp_path / "store.json"
    with EchoServer() as echo:
        remote = free_port()
        text = frpc_config(bind, tcp_proxy("web", echo.port, remote), token=TOKEN,
                           **admin_keys(admin, **{"store.path": str(store)}))
        frpc = frp.ours_frpc(text)
        frpc.wait_for_proxies("web")
        api = AdminClient(admin, USER, PASSWORD)
        conn = LongLived(remote)
        for body, code, msg in [
            (b"{not json", 400, "parse JSON error"),
            (b"[1, 2]", 400, "parse JSON error"),
            (b'{"name": "", "type": "tcp", "tcp": {}}', 400, "proxy name is required"),
            (b'{"name": "x", "type": "tcpx", "tcp": {}}', 400, "invalid proxy type: tcpx"),
            (b'{"name": "x", "type": "tcp"}', 400, "exactly one proxy type block is required"),
            (b'{"name": "x", "type": "tcp", "udp": {}}', 400, 'proxy type block "udp" does not match type "tcp"'),
            (b'{"name": "x", "type": "tcp", "tcp": {"localPort": 70000}}', 400, "localPort"),
            (b'{"name": "x", "type": "tcp", "tcp": {"localPrt": 1}}', 400, 'unknown field "localPrt"'),
        ]:
            r = api.request("POST", "/api/store/proxies", body)
            assert r.status == code and msg in r.json()["Msg"], (body, r)
        assert api.request("PUT", "/api/store/proxies/x", b"\xff\xfe").status == 400
        # a huge body: 413, nothing written
        before = store.read_text() if store.exists() else ""
        huge = b'{"name": "x", "type": "tcp", "tcp": {"localPort": 1, "metadatas": {"a": "' + b"x" * (2 << 20) + b'"}}}'
        assert api.request("POST", "/api/store/proxies", huge).status == 413
        assert api.request("PUT", "/api/config", b"#" * (2 << 20)).status == 413
        assert (store.read_text() if store.exists() else "") == before
        assert api.get("/api/config").text == frpc.config_text
        # unknown routes and methods, as Go's router
        r = api.get("/api/nothing")
        assert r.status == 404 and r.text == "404 page not found\n"
        r = api.get("/static/../../etc/passwd")  # Go's router cleans the path first
        assert (r.status, r.headers.get("Location")) == (301, "/etc/passwd")
        assert api.get("/etc/passwd").status == 404
        assert api.request("DELETE", "/api/status").status == 405
        assert api.request("POST", "/api/reload").status == 405
        # a wrong password 100 times (concurrently), as the frps dashboard (net/webauth.py): 401 after
        # 200 ms for the first MAX_FAILURES, then 429 for that address only; another address, the
        # tunnel and the proxies are not disturbed
        results: list[int] = []

        def wrong(i: int) -> None:
            results.append(api.get("/api/status", auth=(USER, f"bad{i}")).status)

        threads = [threading.Thread(target=wrong, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        assert from_other_address(admin, "/api/status") == 200
        for t in threads:
            t.join(30)
        assert sorted(results) == [401] * MAX_FAILURES + [429] * (100 - MAX_FAILURES), results
        assert frpc.log_text().count("admin API: login failed from 127.0.0.1") >= MAX_FAILURES - 1
        r = api.get("/api/status")  # the right password from the blocked address: still 429
        assert r.status == 429 and int(r.headers["Retry-After"]) > 0, r
        assert from_other_address(admin, "/api/status") == 200
        assert api.get("/healthz", auth=False).status == 200
        assert conn.echo(b"still here") == b"still here"
        conn.close()

    # without store.path the store routes do not exist (Go: 404 page not found)
    admin2 = free_port()
    frpc2 = frp.ours_frpc(frpc_config(bind, token=TOKEN, **admin_keys(admin2)))
    frpc2.wait_login()
    api2 = AdminClient(admin2, USER, PASSWORD)
    poll(lambda: api2.get("/healthz").status == 200, 10, "admin API up")
    r = api2.get("/api/store/proxies")
    assert r.status == 404 and r.text == "404 page not found\n"


def test_admin_tls_and_cli(frp, tmp_path):
    bind = start_frps(frp)
    admin = free_port()
    tls_server_context(str(tmp_path), "admin")
    with EchoServer() as echo:
        remote = free_port()
        text = frpc_config(bind, tcp_proxy("tls-web", echo.port, remote), token=TOKEN, **admin_keys(
            admin, **{"webServer.tls.certFile": str(tmp_path / "admin.crt"),
                      "webServer.tls.keyFile": str(tmp_path / "admin.key")}))
        frpc = frp.ours_frpc(text)
        frpc.wait_for_proxies("tls-web")
        frpc.wait_for_log(r"admin server listen on .* \(https\)", 5)
        api = AdminClient(admin, USER, PASSWORD, https=True)
        assert api.status()["tls-web"]["status"] == "running"
        assert api.get("/api/status", auth=False).status == 401
        with pytest.raises(OSError):  # plain HTTP is not answered as HTTP
            AdminClient(admin, USER, PASSWORD).get("/api/status", timeout=3).status  # noqa: B018
        assert frpc.config_path is not None
        res = frpc_cli("status", "-c", str(frpc.config_path))
        assert res.returncode == 0 and re.search(r"tls-web\s+running", res.stdout), res
        res = frpc_cli("reload", "-c", str(frpc.config_path))
        assert res.returncode == 0 and "reload success" in res.stdout, res


def test_assets_dir(frp, tmp_path):
    """webServer.assetsDir: the UI comes from that directory (as Go's assets.Load)."""
    bind = start_frps(frp)
    admin = free_port()
    ui = tmp_path / "ui"
    (ui / "sub").mkdir(parents=True)
    (ui / "index.html").write_text("<title>custom</title>")
    (ui / "sub" / "x.js").write_text("// x")
    frp.ours_frpc(frpc_config(bind, token=TOKEN, **admin_keys(admin, **{"webServer.assetsDir": str(ui)}))
                  ).wait_login()
    api = AdminClient(admin, USER, PASSWORD)
    poll(lambda: api.get("/healthz").status == 200, 10, "admin API up")
    assert api.get("/static/").text == "<title>custom</title>"
    assert api.get("/static/sub/x.js").text == "// x"
    assert api.get("/static/app.js").status == 404  # the packaged UI is not mixed in
    # Go's router cleans a path first (a redirect to the clean one), then the file server stays inside
    for path, clean in (("/static/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"),
                        ("/static/..%2f..%2fetc/passwd", "/etc/passwd"), ("/static//etc/passwd", "/static/etc/passwd")):
        r = api.get(path)
        assert (r.status, r.headers.get("Location")) == (301, clean) and "root:" not in r.text, (path, r)
        r = api.get(clean)
        assert r.status == 404 and "root:" not in r.text, (clean, r)
    # http.FileServer: a directory without its slash is redirected to it, a file with one to the file
    for path, location in (("/static/sub", "sub/"), ("/static/sub/x.js/", "../x.js"), ("/static/sub/index.html", "./")):
        r = api.get(path)
        assert (r.status, r.headers.get("Location")) == (301, location), (path, r)


def test_admin_tls_bad_cert_fails_start(frp, tmp_path):
    bind = start_frps(frp)
    (tmp_path / "bad.crt").write_text("not a certificate")
    text = frpc_config(bind, token=TOKEN, **admin_keys(free_port(), **{
        "webServer.tls.certFile": str(tmp_path / "bad.crt"), "webServer.tls.keyFile": str(tmp_path / "bad.crt")}))
    frpc = frp.ours_frpc(text)
    assert frpc.wait_exit(15) == 1
    assert "start admin server error" in frpc.log_text() and "Traceback" not in frpc.log_text()


def test_config_dir(frp, tmp_path):
    bind = start_frps(frp)
    d = tmp_path / "confs"
    (d / "sub").mkdir(parents=True)
    with EchoServer() as echo:
        p1, p2 = free_port(), free_port()
        (d / "a.toml").write_text(frpc_config(bind, tcp_proxy("dir-a", echo.port, p1), token=TOKEN))
        (d / "sub" / "b.toml").write_text(frpc_config(bind, tcp_proxy("dir-b", echo.port, p2), token=TOKEN))
        (d / "broken.toml").write_text("serverPort = [\n")
        proc = frp.ours_frpc(None, args=["--config_dir", str(d)])
        proc.wait_for_proxies("dir-a", "dir-b", timeout=15)
        assert echo_ok(p1) and echo_ok(p2)
        assert f"frpc service error for config file [{d / 'broken.toml'}]" in proc.log_text()
        assert proc.log_text().count("login to server success") == 2


def test_nathole_discover(tmp_path):
    with StunServer() as stun:
        res = frpc_cli("nathole", "discover", "--nat_hole_stun_server", stun.address, "-c", str(tmp_path / "none"))
        assert res.returncode == 0, res
        lines = res.stdout.splitlines()
        assert lines[0] == f"STUN server: {stun.address}"
        assert lines[1] == "Your NAT type is: EasyNAT"
        assert lines[2] == "Behavior is: BehaviorNoChange"
        assert re.fullmatch(r"External address is: \[127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+\]", lines[3]), lines
        assert re.fullmatch(r"Local address is: 0\.0\.0\.0:\d+", lines[4]), lines
        assert lines[5] == "Public Network: false"
    with StunServer(silent=True) as stun:
        res = frpc_cli("nathole", "discover", "--nat_hole_stun_server", stun.address, "-c", str(tmp_path / "none"))
        assert res.returncode == 1 and res.stdout.startswith("discover error:"), res
