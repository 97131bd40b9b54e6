"""What Go frp users see, checked against the real Go frp 0.65.0 binaries: Go frps logs our Login's
hostname and frp version; Go frpc and ours report the same ``/api/status`` for the same proxies in
the same states; our frpc's connection hints are right against a misconfigured Go frps."""

from __future__ import annotations

import base64
import json
import re
import socket
import urllib.request

import pytest
from support.procs import EchoServer, FrpProcess, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "compat-ux"


def _go_frps(frp, bind: int, **keys: object) -> FrpProcess:
    frps = frp.go_frps(frps_config(bind, token=TOKEN, **keys))
    frps.wait_for_log("frps started successfully")
    return frps


def test_go_frps_logs_our_hostname_and_the_frp_version(frp) -> None:
    bind = free_port()
    frps = _go_frps(frp, bind)
    frp.ours_frpc(frpc_config(bind, token=TOKEN, clientID="edge-7")).wait_login()
    frps.wait_for_log(rf"client login info: ip \[127\.0\.0\.1:\d+\] version \[0\.65\.0\] "
                      rf"hostname \[{re.escape(socket.gethostname())}\] os \[linux\] arch \[\w+\]")


# -- /api/status --------------------------------------------------------------------------------


def _proxies(user: str, echo: int, hc: int, ports: list[int]) -> str:
    def block(name: str, kind: str, **keys: object) -> str:
        lines = [f'name = "{name}"', f'type = "{kind}"']
        for k, v in keys.items():
            lines.append(f"{k} = {json.dumps(v)}")
        return "\n[[proxies]]\n" + "\n".join(lines) + "\n"

    return "".join([
        block("tcp-fixed", "tcp", localPort=echo, remotePort=ports[0]),
        block("tcp-random", "tcp", localIP="::1", localPort=echo, remotePort=0),
        block("tcp-bad", "tcp", localPort=echo, remotePort=ports[3]),  # frps's own bind port: refused
        block("udp", "udp", localPort=echo, remotePort=ports[1]),
        block("web", "http", localPort=echo, customDomains=[f"{user}-a.example.org", f"{user}-b.example.org"],
              subdomain=f"{user}-w", locations=["/", "/api"]),
        block("secure", "https", localPort=echo, customDomains=[f"{user}-s.example.org"]),
        block("mux", "tcpmux", multiplexer="httpconnect", localPort=echo, customDomains=[f"{user}-m.example.org"]),
        block("secret", "stcp", secretKey="k", localPort=echo),
        block("p2p", "xtcp", secretKey="k", localPort=echo),
        block("hc", "tcp", localPort=hc, remotePort=ports[2],
              **{"healthCheck.type": "tcp", "healthCheck.intervalSeconds": 1}),
    ])


def _status(admin: int) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/api/status")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:pw").decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _normalised(status: dict, user: str, ports: list[int]) -> dict:
    """The user and this side's remote ports replaced by placeholders; Go's random port too."""
    text = json.dumps(status, sort_keys=True).replace(user, "USER")
    for i, p in enumerate(ports):
        text = text.replace(f":{p}\"", f":PORT{i}\"")
    out = json.loads(text)
    for entry in out.get("tcp", []):
        if entry["name"] == "USER.tcp-random":
            entry["remote_addr"] = re.sub(r":\d+$", ":RANDOM", entry["remote_addr"])
    return out


def test_api_status_matches_go_frpc(frp, echo_server) -> None:
    bind, vhttp, vhttps, vmux = free_port(), free_port(), free_port(), free_port()
    _go_frps(frp, bind, vhostHTTPPort=vhttp, vhostHTTPSPort=vhttps, tcpmuxHTTPConnectPort=vmux,
             subDomainHost="example.com")
    checked = EchoServer().start()
    sides: dict[str, tuple[int, list[int]]] = {
        user: (free_port(), [free_port(), free_port(), free_port(), bind]) for user in ("gouser", "ouruser")}
    for user, (admin, ports) in sides.items():
        text = frpc_config(bind, token=TOKEN, user=user, **{"webServer.addr": "127.0.0.1", "webServer.port": admin,
                                                             "webServer.user": "admin", "webServer.password": "pw"},
                           extra=_proxies(user, echo_server.port, checked.port, ports))
        (frp.go_frpc if user == "gouser" else frp.ours_frpc)(text)

    def settled(user: str) -> dict | None:
        admin, ports = sides[user]
        st = _status(admin)
        entries = [e for es in st.values() for e in es]
        ok = len(entries) == 10 and all(e["status"] in ("running", "start error") for e in entries)
        return _normalised(st, user, ports) if ok else None

    try:
        go = poll(lambda: settled("gouser"), 20, "Go frpc's proxies settled")
        ours = poll(lambda: settled("ouruser"), 20, "our frpc's proxies settled")
        assert ours == go
        bad = next(e for e in go["tcp"] if e["name"] == "USER.tcp-bad")
        assert bad["status"] == "start error" and bad["err"] == "port unavailable" and bad["remote_addr"] == ""
        assert next(e for e in go["tcp"] if e["name"] == "USER.tcp-random")["local_addr"].startswith("[::1]:")
    finally:
        checked.stop()

    # the checked service goes away: "check failed", and remote_addr stays (err is empty)
    def check_failed(user: str) -> dict | None:
        admin, ports = sides[user]
        st = _normalised(_status(admin), user, ports)
        hc = next(e for e in st["tcp"] if e["name"] == "USER.hc")
        return st if hc["status"] == "check failed" else None

    go = poll(lambda: check_failed("gouser"), 20, "Go frpc's hc proxy check failed")
    ours = poll(lambda: check_failed("ouruser"), 20, "our hc proxy check failed")
    assert ours == go
    hc = next(e for e in go["tcp"] if e["name"] == "USER.hc")
    assert hc["remote_addr"] == "127.0.0.1:PORT2" and hc["err"] == ""


# -- our hints against a Go frps ------------------------------------------------------------------


def test_hints_against_go_frps(frp) -> None:
    shared = free_port()
    _go_frps(frp, shared, vhostHTTPSPort=shared)
    frpc = frp.ours_frpc(frpc_config(shared, token=TOKEN, login_fail_exit=True))
    frpc.wait_for_log(rf"connect to server error: TLS handshake with 127\.0\.0\.1:{shared} failed: remote error: "
                      r"tls: unrecognized name .*; set transport\.tls\.disableCustomTLSFirstByte = false$")
    assert frpc.wait_exit(10) == 1
    ok = frp.ours_frpc(frpc_config(shared, token=TOKEN, **{"transport.tls.disableCustomTLSFirstByte": False}))
    ok.wait_login()

    forced = free_port()
    _go_frps(frp, forced, **{"transport.tls.force": True})
    frpc = frp.ours_frpc(frpc_config(forced, token=TOKEN, tls=False, login_fail_exit=True))
    frpc.wait_for_log(rf"connect to server error: 127\.0\.0\.1:{forced} closed the connection without answering "
                      r"the login; frps requires TLS .*set transport\.tls\.enable = true")
    assert frpc.wait_exit(10) == 1
