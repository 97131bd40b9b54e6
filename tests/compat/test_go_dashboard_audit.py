"""frps's dashboard API and /metrics side by side with Go frps 0.65.0, for what
test_go_dashboard.py does not cover: an sudp proxy's ``conf`` (Go has no sudp case and writes the
whole config as a map, keys sorted; we leave its secretKey out), /metrics's Content-Type, and the
series Go keeps for a proxy name that comes back with another type."""

from __future__ import annotations

import base64
import http.client
import json
import re
from typing import Any

import pytest
from support.procs import (
    EchoServer,
    FrpLauncher,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    tcp_roundtrip,
)
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(150)]

TOKEN = "compat-dash-audit"
AUTH = "Basic " + base64.b64encode(b"admin:pw").decode()


def ask(port: int, path: str) -> tuple[int, str, str]:
    """(status, Content-Type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": AUTH})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read().decode()
    finally:
        conn.close()


def info(dash: int) -> dict[str, Any]:
    status, _, body = ask(dash, "/api/serverinfo")
    assert status == 200
    result: dict[str, Any] = json.loads(body)
    return result


def start_frps(frp: FrpLauncher, go: bool) -> tuple[FrpProcess, int, int]:
    bind, dash = free_port(), free_port()
    keys: dict[str, Any] = {"webServer.addr": "127.0.0.1", "webServer.port": dash, "webServer.user": "admin",
                            "webServer.password": "pw", "enablePrometheus": True}
    frps = (frp.go_frps if go else frp.ours_frps)(frps_config(bind, token=TOKEN, **keys))
    frps.wait_for_log("frps started successfully", 20)
    return frps, bind, dash


def masked(body: str) -> Any:
    """Parsed JSON (key order kept) without the times, remote ports and 0.67+'s user/clientID."""
    body = re.sub(r'"(lastStartTime|lastCloseTime)":"[^"]*"', r'"\1":"T"', body)
    body = re.sub(r'"remotePort":\d+', '"remotePort":"PORT"', body)
    obj = json.loads(body)
    for p in obj.get("proxies", [obj]):
        p.pop("user", None)
        p.pop("clientID", None)
    return obj


def frp_lines(dash: int) -> tuple[str, list[str]]:
    status, ctype, body = ask(dash, "/metrics")
    assert status == 200
    return ctype, [line for line in body.splitlines() if re.match(r"(# (HELP|TYPE) )?frp_", line)]


def run(frp: FrpLauncher, go: bool, echo: int) -> dict[str, Any]:
    frps, bind, dash = start_frps(frp, go)
    remote = free_port()
    tcp = f'\n[[proxies]]\nname = "t2"\ntype = "tcp"\nlocalPort = {echo}\nremotePort = {remote}\n'
    sudp = ('\n[[proxies]]\nname = "su"\ntype = "sudp"\nsecretKey = "not-shown"\nallowUsers = ["u1", "u2"]\n'
            f'localPort = {echo}\nannotations.a = "b"\nmetadatas.m = "n"\ntransport.useEncryption = true\n')
    a = frp.go_frpc(frpc_config(bind, tcp, sudp, token=TOKEN))
    a.wait_for_proxies("t2", "su", timeout=20)
    assert tcp_roundtrip(remote, b"x" * 100) == b"x" * 100
    poll(lambda: info(dash)["curConns"] == 0, 10, "connection closed")
    seen: dict[str, Any] = {}
    for path in ("/api/proxy/sudp", "/api/proxy/sudp/su"):
        status, _, body = ask(dash, path)
        assert status == 200
        seen[path] = masked(body)
    seen["ctype"], _ = frp_lines(dash)
    a.kill()
    poll(lambda: info(dash)["clientCounts"] == 0, 20, "client gone")
    # the name t2 comes back as a udp proxy: Go's tcp series of t2 stay (0 proxies, its traffic)
    c = frp.go_frpc(frpc_config(bind, f'\n[[proxies]]\nname = "t2"\ntype = "udp"\nlocalPort = {echo}\n'
                                f"remotePort = {free_port()}\n", token=TOKEN))
    c.wait_for_proxies("t2", timeout=20)
    poll(lambda: info(dash)["proxyTypeCount"].get("udp") == 1, 10, "udp proxy counted")
    _, seen["retyped"] = frp_lines(dash)
    status, _, body = ask(dash, "/api/proxy/udp/t2")
    seen["udp t2"] = (status, masked(body))
    seen["tcp t2"] = ask(dash, "/api/proxy/tcp/t2")[::2]
    c.kill()
    frps.kill()
    return seen


def test_sudp_conf_metrics_type_and_retyped_series_as_gos(frp: FrpLauncher) -> None:
    echo = EchoServer().start()
    try:
        go, ours = run(frp, True, echo.port), run(frp, False, echo.port)
    finally:
        echo.stop()
    # Go writes the sudp proxy's secretKey; we do not (README), all else as Go's, keys in its order
    for path in ("/api/proxy/sudp", "/api/proxy/sudp/su"):
        for p in go[path].get("proxies", [go[path]]):
            assert p["conf"].pop("secretKey") == "not-shown"
    assert "not-shown" not in json.dumps(ours)
    assert ours == go
    conf = ours["/api/proxy/sudp/su"]["conf"]
    assert list(conf) == sorted(conf) and conf["allowUsers"] == ["u1", "u2"]
    assert ours["ctype"] == "text/plain; version=0.0.4; charset=utf-8; escaping=values"
    assert 'frp_server_traffic_in{name="t2",type="tcp"} 100' in ours["retyped"]
    assert 'frp_server_proxy_counts_detailed{name="t2",type="tcp"} 0' in ours["retyped"]
    assert 'frp_server_proxy_counts_detailed{name="t2",type="udp"} 1' in ours["retyped"]
    assert ours["tcp t2"] == (404, "no proxy info found")
