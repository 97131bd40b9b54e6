"""The frps dashboard against real Go frp 0.65.0: Go frpc shows up in our dashboard as in Go's
(same JSON from /api/serverinfo and /api/proxy/{type} for the same proxies, but for the times),
and our frpc's proxies show up in Go frps's dashboard as Go frpc's do."""

from __future__ import annotations

import base64
import http.client
import json
import re
from typing import Any

import pytest
from support.procs import EchoServer, FrpLauncher, FrpProcess, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-dash"
AUTH = "Basic " + base64.b64encode(b"admin:pw").decode()


def get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": AUTH})
        r = conn.getresponse()
        body = r.read()
        return r.status, json.loads(body) if r.status == 200 else body.decode()
    finally:
        conn.close()


def start_frps(frp: FrpLauncher, go: bool) -> tuple[FrpProcess, int, int]:
    bind, dash, vhost, vhosts, mux = free_port(), free_port(), free_port(), free_port(), free_port()
    keys: dict[str, Any] = {"webServer.addr": "127.0.0.1", "webServer.port": dash, "webServer.user": "admin",
                            "webServer.password": "pw", "enablePrometheus": True, "vhostHTTPSPort": vhosts,
                            "tcpmuxHTTPConnectPort": mux, "subDomainHost": "example.org"}
    text = frps_config(bind, token=TOKEN, vhostHTTPPort=vhost, **keys)
    frps = frp.go_frps(text) if go else frp.ours_frps(text)
    frps.wait_for_log("frps started successfully", 20)
    return frps, bind, dash


def proxies(echo: int, remote: int) -> str:
    return (f'\n[[proxies]]\nname = "ssh"\ntype = "tcp"\nlocalPort = {echo}\nremotePort = {remote}\n'
            'transport.useEncryption = true\nannotations.owner = "ops"\nmetadatas.m = "1"\n'
            f'\n[[proxies]]\nname = "web"\ntype = "http"\nlocalPort = {echo}\ncustomDomains = ["a.example"]\n'
            'locations = ["/x"]\nhttpUser = "u"\nhttpPassword = "p"\n'
            f'\n[[proxies]]\nname = "sec"\ntype = "stcp"\nsecretKey = "not-shown"\nlocalPort = {echo}\n'
            f'\n[[proxies]]\nname = "dns"\ntype = "udp"\nlocalPort = {echo}\nremotePort = 0\n'
            f'\n[[proxies]]\nname = "tls"\ntype = "https"\nlocalPort = {echo}\nsubdomain = "s"\n'
            'customDomains = ["b.example"]\ntransport.useCompression = true\n'
            f'\n[[proxies]]\nname = "mux"\ntype = "tcpmux"\nmultiplexer = "httpconnect"\nlocalPort = {echo}\n'
            'customDomains = ["c.example"]\nrouteByHTTPUser = "bob"\nhttpUser = "bob"\nhttpPassword = "p"\n')

NAMES = ("ssh", "web", "sec", "dns", "tls", "mux")
TYPES = ("tcp", "http", "stcp", "udp", "https", "tcpmux")


def snapshot(dash: int) -> dict[str, Any]:
    """What the dashboard shows, with the times and ports that differ between runs masked."""
    out: dict[str, Any] = {}
    status, info = get(dash, "/api/serverinfo")
    assert status == 200
    for k in ("bindPort", "vhostHTTPPort", "vhostHTTPSPort", "tcpmuxHTTPConnectPort"):
        info[k] = "PORT"
    out["serverinfo"] = info
    for t in TYPES:
        status, lst = get(dash, f"/api/proxy/{t}")
        assert status == 200
        for p in lst["proxies"]:
            p["lastStartTime"] = re.sub(r"\d", "9", p["lastStartTime"])
            if p["conf"] and "remotePort" in p["conf"]:
                # the port bound, also where 0 was asked (udp "dns"): Go writes it into the conf
                p["conf"]["remotePort"] = "PORT" if p["conf"]["remotePort"] else 0
            p.pop("user", None)  # 0.67+ fields aiofrp adds (Go 0.65 has none)
            p.pop("clientID", None)
        out[t] = lst
    status, one = get(dash, "/api/proxy/tcp/alice.ssh")
    one["lastStartTime"] = re.sub(r"\d", "9", one["lastStartTime"])
    one["conf"]["remotePort"] = "PORT"
    one.pop("user", None)
    one.pop("clientID", None)
    out["one"] = one
    out["missing"] = get(dash, "/api/proxy/tcp/nope")
    status, tr = get(dash, "/api/traffic/alice.ssh")
    out["traffic"] = tr
    return out


def test_go_frpc_shows_in_our_dashboard_as_in_gos(frp: FrpLauncher) -> None:
    echo = EchoServer().start()
    try:
        seen = {}
        for go in (True, False):
            frps, bind, dash = start_frps(frp, go)
            frpc = frp.go_frpc(frpc_config(bind, proxies(echo.port, free_port()), token=TOKEN, user="alice"))
            for name in NAMES:
                frpc.wait_for_log(rf"\[alice\.{name}\] start proxy success", 20)
            poll(lambda dash=dash: sum(get(dash, "/api/serverinfo")[1]["proxyTypeCount"].values()) == 6, 10,
                 "proxies registered")
            seen[go] = snapshot(dash)
            frpc.kill()
            frps.kill()
        assert seen[False] == seen[True]
        # and what that means: Go frpc's version, its proxies online, no secret in any conf
        ours = seen[False]
        assert ours["tcp"]["proxies"][0]["clientVersion"] == "0.65.0"
        assert ours["tcp"]["proxies"][0]["status"] == "online"
        assert "not-shown" not in json.dumps(ours) and '"p"' not in json.dumps(ours["http"])
    finally:
        echo.stop()


def test_go_frpc_client_entry(frp: FrpLauncher) -> None:
    """/api/clients (0.68's route) shows Go 0.65 frpc: its version and address. Go 0.65 frpc has
    no clientID setting and sends no hostname in its Login: the run id stands in for the id (as
    0.68 does) and the hostname is empty."""
    _frps, bind, dash = start_frps(frp, go=False)
    frpc = frp.go_frpc(frpc_config(bind, token=TOKEN, user="bob"))
    run_id = frpc.wait_login()
    status, clients = get(dash, "/api/clients")
    assert status == 200 and len(clients) == 1
    c = clients[0]
    assert (c["key"], c["user"], c["clientID"], c["runID"], c["version"], c["clientIP"], c["online"]) == (
        f"bob.{run_id}", "bob", run_id, run_id, "0.65.0", "127.0.0.1", True)
    assert c["hostname"] == ""
    assert get(dash, f"/api/clients/bob.{run_id}")[1] == c
    frpc.kill()
    poll(lambda: get(dash, "/api/clients")[1] == [], 20, "a client without an id forgotten once gone (Go)")


def test_our_frpc_shows_in_go_dashboard(frp: FrpLauncher) -> None:
    echo = EchoServer().start()
    try:
        seen = {}
        for ours in (False, True):
            frps, bind, dash = start_frps(frp, go=True)
            text = frpc_config(bind, proxies(echo.port, free_port()), token=TOKEN, user="alice")
            frpc = frp.ours_frpc(text) if ours else frp.go_frpc(text)
            for name in NAMES:
                frpc.wait_for_log(rf"\[alice\.{name}\] start proxy success", 20)
            poll(lambda dash=dash: sum(get(dash, "/api/serverinfo")[1]["proxyTypeCount"].values()) == 6, 10,
                 "proxies registered")
            seen[ours] = snapshot(dash)
            frpc.kill()
            frps.kill()
        assert seen[True] == seen[False]
    finally:
        echo.stop()


def frp_families(dash: int) -> list[str]:
    """The frp_* lines of /metrics (comments and samples, in order), remote ports masked."""
    conn = http.client.HTTPConnection("127.0.0.1", dash, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": AUTH})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return [line for line in text.splitlines() if re.match(r"(# (HELP|TYPE) )?frp_", line)]


def test_metrics_frp_families_as_gos(frp: FrpLauncher) -> None:
    """/metrics's frp_* families byte for byte as Go frps writes them (names, HELP, TYPE, labels,
    order, integer samples) after known traffic, with one client online and one gone (its proxy
    offline). UDP carries no datagram here: Go counts those differently (README)."""
    from support.services import tcp_roundtrip

    echo = EchoServer().start()
    try:
        seen = {}
        for go in (True, False):
            frps, bind, dash = start_frps(frp, go)
            remote, remote_b = free_port(), free_port()
            a = frp.go_frpc(frpc_config(bind, proxies(echo.port, remote), token=TOKEN, user="alice"))
            b = frp.go_frpc(frpc_config(bind, f'\n[[proxies]]\nname = "t2"\ntype = "tcp"\nlocalPort = {echo.port}\n'
                                        f"remotePort = {remote_b}\n", token=TOKEN))
            for name in NAMES:
                a.wait_for_log(rf"\[alice\.{name}\] start proxy success", 20)
            b.wait_for_log(r"\[t2\] start proxy success", 20)
            assert tcp_roundtrip(remote, b"x" * 1000) == b"x" * 1000
            assert tcp_roundtrip(remote_b, b"y" * 300) == b"y" * 300
            b.kill()
            poll(lambda dash=dash: get(dash, "/api/serverinfo")[1]["clientCounts"] == 1, 20, "client b gone")
            poll(lambda dash=dash: get(dash, "/api/serverinfo")[1]["curConns"] == 0, 10, "connections closed")
            seen[go] = frp_families(dash)
            a.kill()
            frps.kill()
        assert seen[False] == seen[True]
        assert 'frp_server_traffic_in{name="alice.ssh",type="tcp"} 1000' in seen[False]
        assert 'frp_server_proxy_counts_detailed{name="t2",type="tcp"} 0' in seen[False]
        assert "frp_server_client_counts 1" in seen[False]
    finally:
        echo.stop()
