"""frps dashboard API v2 (Go frp 0.70's ``/api/v2/...``) end to end: our frps and three of our frpc
as real processes, every route, its envelope, filters, paging, errors, a proxy's spec per type, the
traffic history by date, the prune of offline proxies; and the same routes through
``frps --workers 2``, whose supervisor merges the workers' items."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import quote

import pytest
from e2e.test_dashboard import dash_keys, echo_through, request
from support.configs import block
from support.procs import (
    EchoServer,
    FrpLauncher,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    udp_proxy,
)
from support.waits import poll

pytestmark = pytest.mark.timeout(120)

TOKEN = "v2-token"
ANNOTATED: dict[str, Any] = {"annotations.team": "ops", "metadatas.m": "1"}
GROUPED: dict[str, Any] = {"loadBalancer.group": "grp", "loadBalancer.groupKey": "k"}
LIMITED: dict[str, Any] = {"transport.bandwidthLimit": "1MB", "transport.bandwidthLimitMode": "server"}


def v2(port: int, path: str, *, method: str = "GET", status: int = 200) -> Any:
    """The ``data`` of a v2 answer, after checking Go's envelope and the HTTP status."""
    r = request(port, path, method=method)
    assert r.status == status, (path, r.status, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert r.body.endswith(b"\n")  # Go's json.Encoder
    body = r.json()
    assert set(body) == {"code", "msg", "data"}
    assert body["code"] == status
    if status != 200:
        assert body["data"] is None
        return body["msg"]
    assert body["msg"] == "success"
    return body["data"]


def names(page: dict[str, Any]) -> list[str]:
    return [item.get("name") or item.get("key") or item["user"] for item in page["items"]]


def start(frp: FrpLauncher, extra: str = "") -> tuple[Any, int, int, int]:
    bind, dash, vhost = free_port(), free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vhost, subDomainHost="example.org",
                                     extra=extra, **dash_keys(dash)))
    frps.wait_for_log(r"frps started successfully", 20)
    return frps, bind, dash, vhost


def clients(frp: FrpLauncher, bind: int, echo: int) -> tuple[Any, Any, Any]:
    """alice/box1: tcp (random port, encrypted, annotated), udp, http, stcp; bob (no client id):
    tcp in a group; carol/"a/b": tcp with a server-side bandwidth limit."""
    alice = frp.ours_frpc(frpc_config(
        bind,
        tcp_proxy("ssh", echo, 0, encryption=True, **ANNOTATED),
        udp_proxy("dns", echo, free_port()),
        block("proxies", name="web", type="http", localPort=echo, customDomains=["a.example"],
              subdomain="w", locations=["/x", "/y"], hostHeaderRewrite="in.example"),
        block("proxies", name="sec", type="stcp", localPort=echo, secretKey="hidden"),
        token=TOKEN, user="alice", clientID="box1"))
    bob = frp.ours_frpc(frpc_config(
        bind, tcp_proxy("g1", echo, free_port(), **GROUPED),
        token=TOKEN, user="bob"))
    carol = frp.ours_frpc(frpc_config(
        bind, tcp_proxy("lim", echo, free_port(), **LIMITED),
        token=TOKEN, user="carol", clientID="a/b"))
    for proc, user, proxies in ((alice, "alice", ("ssh", "dns", "web", "sec")), (bob, "bob", ("g1",)),
                                (carol, "carol", ("lim",))):
        for n in proxies:
            proc.wait_for_log(rf"\[{user}\.{n}\] start proxy success", 20)
    return alice, bob, carol


def test_v2_routes(frp: FrpLauncher) -> None:
    echo = EchoServer().start()
    try:
        frps, bind, dash, _vhost = start(frp, extra="allowPorts = [{ start = 1024, end = 65535 }]\n")
        alice, bob, carol = clients(frp, bind, echo.port)

        # -- auth, as every other route -------------------------------------------------------------
        r = request(dash, "/api/v2/proxies", auth=None)
        assert r.status == 401 and r.headers["www-authenticate"] == 'Basic realm="Restricted"'

        # -- system/info --------------------------------------------------------------------------
        info = v2(dash, "/api/v2/system/info")
        assert info["version"] == "0.65.0"
        assert info["config"]["bindPort"] == bind and info["config"]["subdomainHost"] == "example.org"
        assert info["config"]["allowPortsStr"] == "1024-65535" and info["config"]["tlsForce"] is False
        assert list(info["config"]) == ["bindPort", "vhostHTTPPort", "vhostHTTPSPort", "tcpmuxHTTPConnectPort",
                                        "kcpBindPort", "quicBindPort", "subdomainHost", "maxPoolCount",
                                        "maxPortsPerClient", "heartbeatTimeout", "allowPortsStr", "tlsForce"]
        assert info["status"]["clientCounts"] == 3
        assert info["status"]["proxyTypeCount"] == {"http": 1, "stcp": 1, "tcp": 3, "udp": 1}

        # -- proxies: sorted by type then name, each with its spec -----------------------------------
        page = v2(dash, "/api/v2/proxies")
        assert (page["total"], page["page"], page["pageSize"]) == (6, 1, 50)
        # http, stcp, tcp (by name), udp
        assert names(page) == ["alice.web", "alice.sec", "alice.ssh", "bob.g1", "carol.lim", "alice.dns"]
        by_name = {p["name"]: p for p in page["items"]}
        ssh = by_name["alice.ssh"]
        assert (ssh["user"], ssh["clientID"]) == ("alice", "box1")
        port = ssh["spec"]["tcp"]["remotePort"]
        assert port > 0  # remotePort = 0 asked: the port frps bound
        assert ssh["spec"] == {"type": "tcp", "tcp": {
            "annotations": {"team": "ops"}, "metadatas": {"m": "1"},
            "transport": {"useEncryption": True, "useCompression": False, "bandwidthLimit": "",
                          "bandwidthLimitMode": "client"},
            "loadBalancer": {"group": ""}, "remotePort": port}}
        st = ssh["status"]
        assert st["phase"] == "online" and st["curConns"] == 0 and st["todayTrafficIn"] == 0
        assert "lastCloseAt" not in st and abs(st["lastStartAt"] - datetime.datetime.now().timestamp()) < 60
        web = by_name["alice.web"]["spec"]
        assert web == {"type": "http", "http": {
            "transport": {"useEncryption": False, "useCompression": False, "bandwidthLimit": "",
                          "bandwidthLimitMode": "client"},
            "loadBalancer": {"group": ""}, "customDomains": ["a.example"], "subdomain": "w",
            "locations": ["/x", "/y"], "hostHeaderRewrite": "in.example"}}
        assert by_name["alice.sec"]["spec"]["stcp"]["transport"]["useEncryption"] is False
        assert "hidden" not in request(dash, "/api/v2/proxies").text and '"k"' not in request(dash, "/api/v2/proxies").text
        assert by_name["bob.g1"]["spec"]["tcp"]["loadBalancer"] == {"group": "grp"}
        assert by_name["bob.g1"]["clientID"]  # bob has no client id: his run id stands in (Go 0.68+)
        assert by_name["carol.lim"]["spec"]["tcp"]["transport"]["bandwidthLimit"] == "1MB"
        assert by_name["carol.lim"]["spec"]["tcp"]["transport"]["bandwidthLimitMode"] == "server"

        # filters and search
        assert names(v2(dash, "/api/v2/proxies?type=tcp")) == ["alice.ssh", "bob.g1", "carol.lim"]
        assert names(v2(dash, "/api/v2/proxies?type=TCP&user=alice")) == ["alice.ssh"]
        assert names(v2(dash, "/api/v2/proxies?clientID=box1&status=online")) == [
            "alice.web", "alice.sec", "alice.ssh", "alice.dns"]
        assert v2(dash, "/api/v2/proxies?status=offline")["total"] == 0
        assert names(v2(dash, "/api/v2/proxies?q=A.EXAMPLE")) == ["alice.web"]  # a custom domain
        assert names(v2(dash, f"/api/v2/proxies?q={port}")) == ["alice.ssh"]  # a remote port
        assert names(v2(dash, "/api/v2/proxies?q=stcp")) == ["alice.sec"]  # the type
        assert v2(dash, "/api/v2/proxies?user=")["total"] == 0  # present but empty: users named ""

        # paging
        p2 = v2(dash, "/api/v2/proxies?page=2&pageSize=4")
        assert (p2["total"], p2["page"], p2["pageSize"], names(p2)) == (6, 2, 4, ["carol.lim", "alice.dns"])
        assert v2(dash, "/api/v2/proxies?page=9")["items"] == []
        assert v2(dash, "/api/v2/proxies?pageSize=200")["pageSize"] == 200
        for query, msg in (("page=0", "page must be a positive integer"),
                           ("page=x", "page must be a positive integer"),
                           ("pageSize=-3", "pageSize must be a positive integer"),
                           ("pageSize=201", "pageSize must be between 1 and 200"),
                           ("page=99999999999999999999", "page must be a positive integer"),
                           ("page=9223372036854775807&pageSize=2", "page is too large"),
                           ("status=gone", "status must be one of all, online, offline"),
                           ("type=ftp", "type must be one of tcp, udp, http, https, tcpmux, stcp, xtcp, sudp")):
            assert v2(dash, f"/api/v2/proxies?{query}", status=400) == msg, query

        # one proxy
        assert v2(dash, "/api/v2/proxies/alice.ssh") == ssh
        assert v2(dash, "/api/v2/proxies/nope", status=404) == "no proxy info found"

        # -- traffic: 7 dated days, oldest first -------------------------------------------------------
        payload = bytes(range(256)) * 100
        echo_through(port, payload)
        poll(lambda: v2(dash, "/api/v2/proxies/alice.ssh")["status"]["curConns"] == 0
             and v2(dash, "/api/v2/proxies/alice.ssh")["status"]["todayTrafficIn"] == len(payload), 10, "counted")
        tr = v2(dash, "/api/v2/proxies/alice.ssh/traffic")
        today = datetime.date.today()
        assert tr["name"] == "alice.ssh" and tr["unit"] == "bytes" and tr["granularity"] == "day"
        assert [h["date"] for h in tr["history"]] == [(today - datetime.timedelta(days=d)).isoformat()
                                                      for d in range(6, -1, -1)]
        assert [(h["trafficIn"], h["trafficOut"]) for h in tr["history"]] == [(0, 0)] * 6 + [(len(payload),) * 2]
        assert v2(dash, "/api/v2/proxies/nope/traffic", status=404) == "no proxy info found"

        # -- clients -----------------------------------------------------------------------------------
        cl = v2(dash, "/api/v2/clients")
        assert cl["total"] == 3
        keys = [c["key"] for c in cl["items"]]
        assert keys[0] == "alice.box1" and keys[2] == "carol.a/b" and keys[1].startswith("bob.")
        a = cl["items"][0]
        assert (a["user"], a["clientID"], a["wireProtocol"], a["online"], a["clientIP"]) == (
            "alice", "box1", "v1", True, "127.0.0.1")
        assert names(v2(dash, "/api/v2/clients?user=bob")) == [keys[1]]
        assert names(v2(dash, "/api/v2/clients?clientID=a/b")) == ["carol.a/b"]
        assert names(v2(dash, f"/api/v2/clients?runID={a['runID']}")) == ["alice.box1"]
        assert names(v2(dash, "/api/v2/clients?q=CAROL")) == ["carol.a/b"]
        assert v2(dash, "/api/v2/clients?status=offline")["total"] == 0
        assert v2(dash, "/api/v2/clients?status=x", status=400) == "status must be one of all, online, offline"
        # v1's list carries 0.70's wireProtocol too
        assert request(dash, "/api/clients").json()[0]["wireProtocol"] == "v1"

        detail = v2(dash, "/api/v2/clients/alice.box1")
        assert detail["status"] == {"phase": "online", "curConns": 0, "proxyCount": 4}
        assert {k: v for k, v in detail.items() if k != "status"} == a
        assert v2(dash, "/api/v2/clients/" + quote("carol.a/b", safe=""))["key"] == "carol.a/b"
        assert v2(dash, "/api/v2/clients/nobody", status=404) == "client nobody not found"

        # -- users ------------------------------------------------------------------------------------
        users = v2(dash, "/api/v2/users")
        assert users["items"] == [{"user": "alice", "clientCount": 1, "proxyCount": 4},
                                  {"user": "bob", "clientCount": 1, "proxyCount": 1},
                                  {"user": "carol", "clientCount": 1, "proxyCount": 1}]
        assert [u["user"] for u in v2(dash, "/api/v2/users?q=OB")["items"]] == ["bob"]
        assert v2(dash, "/api/v2/users?pageSize=1&page=3")["items"][0]["user"] == "carol"

        # -- a client leaves: offline proxies, spec emptied, then pruned --------------------------------
        alice.kill()
        poll(lambda: v2(dash, "/api/v2/proxies?status=offline")["total"] == 4, 20, "alice's proxies offline")
        off = v2(dash, "/api/v2/proxies/alice.ssh")
        assert off["spec"] == {"type": "tcp", "tcp": {}} and off["status"]["phase"] == "offline"
        assert off["status"]["lastCloseAt"] >= off["status"]["lastStartAt"]
        assert off["status"]["todayTrafficIn"] == len(payload)
        gone = v2(dash, "/api/v2/clients/alice.box1")
        assert gone["online"] is False and gone["status"] == {"phase": "offline", "curConns": 0, "proxyCount": 4}
        assert names(v2(dash, "/api/v2/clients?status=offline")) == ["alice.box1"]

        assert v2(dash, "/api/v2/system/prune", method="POST", status=400) == "type is required"
        assert v2(dash, "/api/v2/system/prune?type=all", method="POST", status=400) == (
            "type must be one of offline_proxies")
        assert request(dash, "/api/v2/system/prune?type=offline_proxies").status == 405  # GET
        assert v2(dash, "/api/v2/system/prune?type=offline_proxies", method="POST") == {
            "type": "offline_proxies", "cleared": 4, "total": 6}
        assert names(v2(dash, "/api/v2/proxies")) == ["bob.g1", "carol.lim"]
        assert v2(dash, "/api/v2/users")["items"][0] == {"user": "alice", "clientCount": 1, "proxyCount": 0}
        bob.kill()
        carol.kill()
        frps.kill()
    finally:
        echo.stop()


def test_v2_routes_through_workers(frp: FrpLauncher) -> None:
    """frps --workers 2: the supervisor's v2 answers hold every worker's clients and proxies."""
    echo = EchoServer().start()
    try:
        bind, dash = free_port(), free_port()
        frps = frp.ours_frps(frps_config(bind, token=TOKEN, **dash_keys(dash)), args=["--workers", "2"])
        frps.wait_for_log(r"frps started successfully", 30)
        procs = []
        for i in range(4):
            procs.append(frp.ours_frpc(frpc_config(bind, tcp_proxy(f"p{i}", echo.port, free_port()),
                                                   token=TOKEN, user=f"u{i}", clientID=f"c{i}")))
        for i, p in enumerate(procs):
            p.wait_for_log(rf"\[u{i}\.p{i}\] start proxy success", 30)
        poll(lambda: v2(dash, "/api/v2/proxies")["total"] == 4, 20, "all four proxies listed")
        page = v2(dash, "/api/v2/proxies?pageSize=3")
        assert names(page) == ["u0.p0", "u1.p1", "u2.p2"] and page["total"] == 4
        assert names(v2(dash, "/api/v2/clients")) == ["u0.c0", "u1.c1", "u2.c2", "u3.c3"]
        assert v2(dash, "/api/v2/system/info")["status"]["clientCounts"] == 4
        assert [u["proxyCount"] for u in v2(dash, "/api/v2/users")["items"]] == [1, 1, 1, 1]
        port = v2(dash, "/api/v2/proxies/u2.p2")["spec"]["tcp"]["remotePort"]
        echo_through(port, b"z" * 5000)
        poll(lambda: v2(dash, "/api/v2/proxies/u2.p2/traffic")["history"][-1]["trafficIn"] == 5000, 10, "traffic")
        assert v2(dash, "/api/v2/clients/u3.c3")["status"]["proxyCount"] == 1
        procs[0].kill()
        poll(lambda: v2(dash, "/api/v2/proxies?status=offline")["total"] == 1, 20, "p0 offline")
        assert v2(dash, "/api/v2/system/prune?type=offline_proxies", method="POST")["cleared"] == 1
        assert names(v2(dash, "/api/v2/proxies")) == ["u1.p1", "u2.p2", "u3.p3"]
        for p in procs[1:]:
            p.kill()
        frps.kill()
    finally:
        echo.stop()
