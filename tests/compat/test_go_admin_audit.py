"""frpc's admin API (``webServer``) answer by answer against Go frpc 0.65.0: the same config file
runs under Go frpc, then under ours (same admin port, same proxies, one Go frps), and the same
requests go to both; status, headers (``Date`` masked, names case-folded, order ignored) and bodies
must match. What differs on purpose is left out and named: ``/api/status``'s Content-Type (ours says
``application/json``, Go's is sniffed ``text/plain``), reload error texts (ours name file and key),
the 1 MiB body limit (413) and aiofrp's own routes.

Also the ``frpc status|stop`` CLI's words for an admin address that is unspecified (``0.0.0.0``,
``::``): Go's http.Client names it as configured (ours print on stderr, Go on stdout)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.procs import (
    FrpLauncher,
    FrpProcess,
    block,
    free_port,
    frpc_config,
    frps_config,
    go_cmd,
    tcp_proxy,
)
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

TOKEN = "compat-admin-audit"
GOOD = "Basic " + base64.b64encode(b"admin:pw").decode()
BAD = "Basic " + base64.b64encode(b"admin:nope").decode()

Answer = tuple[int, list[tuple[str, str]], bytes]


def ask(port: int, method: str, path: str, auth: str | None = GOOD, body: bytes | None = None) -> Answer:
    """(status, headers with Date masked, sorted, names lower-cased; body) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers={"Authorization": auth} if auth else {})
        r = conn.getresponse()
        headers = sorted((k.lower(), "DATE" if k.lower() == "date" else v) for k, v in r.getheaders())
        return r.status, headers, r.read()
    finally:
        conn.close()


def port_free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _status(port: int, auth: str | None) -> dict[str, list[dict[str, Any]]]:
    code, _, body = ask(port, "GET", "/api/status", auth)
    assert code == 200
    out: dict[str, list[dict[str, Any]]] = json.loads(body)
    return out


def _settled(port: int, auth: str | None) -> dict[str, str] | None:
    """The phases by name once every proxy has reached the one it keeps (the health-checked
    proxy's local service is closed: it stays ``new``)."""
    phases = {e["name"]: e["status"] for es in _status(port, auth).values() for e in es}
    want = {"t": "running", "bad": "start error", "u": "running", "h": "running", "st": "running",
            "su": "running", "plug": "running", "plug2": "running", "hc": "new"}
    return phases if phases == want else None


def _exchange(p: FrpProcess, admin: int, auth: str | None, new_text: str) -> dict[str, Any]:
    """The requests, in order, to one frpc; what each got (paths of this side's file masked)."""
    assert p.config_path is not None
    path = Path(p.config_path)
    out: dict[str, Any] = {}

    def rec(label: str, method: str, url: str, who: str | None = auth, body: bytes | None = None) -> None:
        code, headers, answer = ask(admin, method, url, who, body)
        out[label] = (code, headers, answer.replace(str(path).encode(), b"CONFIG"))

    poll(lambda: _settled(admin, auth), 30, f"{p.name}'s proxies settled")
    status = ask(admin, "GET", "/api/status", auth)
    out["status"] = (status[0], [h for h in status[1] if h[0] != "content-type"], json.loads(status[2]),
                     list(json.loads(status[2])))  # parsed, and the type keys' order
    rec("healthz", "GET", "/healthz", None)
    rec("healthz-post", "POST", "/healthz", None)
    rec("no-route", "GET", "/api/nothing")
    rec("no-route-bad", "GET", "/api/proxy/t/status", BAD)
    rec("wrong-method", "POST", "/api/status")
    rec("wrong-method-stop", "GET", "/api/stop")
    rec("head", "HEAD", "/api/config")
    if auth:
        rec("no-credentials", "GET", "/api/status", None)
        rec("wrong-credentials", "GET", "/api/config", BAD)
        rec("wrong-credentials-stop", "POST", "/api/stop", BAD)
    rec("config", "GET", "/api/config")
    rec("put-empty", "PUT", "/api/config", body=b"")
    original = path.read_bytes()
    # the file's bytes as they are: CRLF kept, not UTF-8 served, an empty file without Content-Type
    rec("put-crlf", "PUT", "/api/config", body=original.replace(b"\n", b"\r\n"))
    out["written-crlf"] = path.read_bytes() == original.replace(b"\n", b"\r\n")
    rec("config-crlf", "GET", "/api/config")
    rec("put-latin1", "PUT", "/api/config", body=b"# caf\xe9\n" + original)
    rec("config-latin1", "GET", "/api/config")
    out["reload-latin1"] = ask(admin, "GET", "/api/reload", auth)[0]  # 400, each in its own words
    rec("put-invalid", "PUT", "/api/config", body=b"serverPort = [\n")
    rec("config-invalid", "GET", "/api/config")
    out["reload-invalid"] = ask(admin, "GET", "/api/reload?strictConfig=true", auth)[0]
    path.write_bytes(b"")
    rec("config-empty", "GET", "/api/config")
    path.unlink()
    rec("config-missing", "GET", "/api/config")
    path.mkdir()
    rec("config-directory", "GET", "/api/config")
    rec("put-directory", "PUT", "/api/config", body=original)
    path.rmdir()
    rec("put-create", "PUT", "/api/config", body=original + b"unknownKey = 1\n")
    out["mode"] = oct(os.stat(path).st_mode)
    rec("reload-unknown-lenient", "GET", "/api/reload")
    rec("reload-unknown-lenient-yes", "GET", "/api/reload?strictConfig=yes")  # ParseBool fails: lenient
    out["reload-unknown-strict"] = ask(admin, "GET", "/api/reload?strictConfig=true", auth)[0]
    # the proxies change: removed ones go, the added one runs, the rest keep their state
    rec("put-new", "PUT", "/api/config", body=new_text.encode())
    rec("reload-new", "GET", "/api/reload?strictConfig=true")
    poll(lambda: {e["name"]: e["status"] for es in _status(admin, auth).values() for e in es}
         == {"t": "running", "bad": "start error", "added": "running"}, 15, f"{p.name} after the reload")
    out["status-new"] = _status(admin, auth)
    rec("stop", "POST", "/api/stop")
    out["exit"] = p.wait_exit(10)
    return out


@pytest.mark.parametrize("auth", [True, False], ids=["credentials", "open"])
def test_admin_api_answers_as_gos(frp: FrpLauncher, auth: bool) -> None:
    bind, vhost = free_port(), free_port()
    frp.go_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vhost)).wait_for_log("frps started successfully", 10)
    admin, r_tcp, r_udp, r_plug, r_hc, r_added = (free_port() for _ in range(6))
    web: dict[str, Any] = {"webServer.addr": "127.0.0.1", "webServer.port": admin}
    if auth:
        web |= {"webServer.user": "admin", "webServer.password": "pw"}
    closed = free_port()  # nothing listens: the health check never passes
    proxies = [
        tcp_proxy("t", 22, r_tcp),
        tcp_proxy("bad", 22, bind),  # frps's own port: start error, "port unavailable"
        block("proxies", name="u", type="udp", localPort=53, remotePort=r_udp),
        block("proxies", name="h", type="http", localPort=80, customDomains=["a.example.org"]),
        block("proxies", name="st", type="stcp", secretKey="k", localPort=22),
        block("proxies", name="su", type="sudp", secretKey="k", localPort=53),
        block("proxies", name="plug", type="tcp", remotePort=r_plug, **{"plugin.type": "http_proxy"}),
        block("proxies", name="plug2", type="http", customDomains=["p.example.org"],
              **{"plugin.type": "static_file", "plugin.localPath": "/tmp"}),
        block("proxies", name="hc", type="tcp", localPort=closed, remotePort=r_hc,
              **{"healthCheck.type": "tcp", "healthCheck.intervalSeconds": 1}),
    ]
    text = frpc_config(bind, *proxies, token=TOKEN, **web)
    new_text = frpc_config(bind, *proxies[:2], tcp_proxy("added", 22, r_added), token=TOKEN, **web)
    who = GOOD if auth else None
    seen = {}
    for impl in ("go", "ours"):
        # the same file, port for port: the other side's ports must be free again
        poll(lambda: port_free(admin) and port_free(r_tcp) and port_free(r_plug) and port_free(r_added)
             and port_free(r_udp, socket.SOCK_DGRAM), 15, "the ports free")
        p = (frp.go_frpc if impl == "go" else frp.ours_frpc)(text)
        seen[impl] = _exchange(p, admin, who, new_text)
    go, ours = seen["go"], seen["ours"]
    differences = [f"{k}:\n  go   {go[k]!r}\n  ours {ours.get(k)!r}" for k in go if go[k] != ours.get(k)]
    assert not differences, "\n".join(differences)
    # what the cases are about, in Go's words
    assert next(e for e in go["status"][2]["tcp"] if e["name"] == "plug") == {"name": "plug", "type": "tcp", "status": "running", "err": "",
                                         "local_addr": "", "plugin": "http_proxy",
                                         "remote_addr": f"127.0.0.1:{r_plug}"}
    assert not any(h[0] == "server" for h in go["healthz"][1])
    if auth:
        assert ("x-content-type-options", "nosniff") in go["no-credentials"][1]
    assert go["config-crlf"][2] == ours["config-crlf"][2] and b"\r\n" in ours["config-crlf"][2]
    assert go["config-latin1"][0] == 200 and ours["config-latin1"][2].startswith(b"# caf\xe9\n")
    assert ours["config-missing"][:1] == (400,) and ours["config-missing"][2] == (
        b"open CONFIG: no such file or directory")
    assert ours["config-directory"][2] == b"read CONFIG: is a directory"
    assert ours["put-directory"][:1] == (500,) and ours["put-directory"][2] == (
        b"write content to frpc config file error: open CONFIG: is a directory")
    assert not any(h[0] == "content-type" for h in ours["config-empty"][1])
    assert ours["exit"] == 0 and ours["reload-unknown-strict"] == 400


def _cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)


CLIS: dict[str, Callable[..., subprocess.CompletedProcess[str]]] = {
    "go": lambda *a: _cli([*go_cmd("frpc"), *a]),
    "ours": lambda *a: _cli([sys.executable, "-m", "aiofrp.cli.frpc", *a]),
}


@pytest.mark.parametrize("addr", ["0.0.0.0", "::"])
def test_cli_names_an_unspecified_admin_address_as_gos(tmp_path: Path, gofrp_bins: object, addr: str) -> None:
    """Nothing listens on the admin port: Go's ``frpc status|stop|reload`` say
    ``Get "http://0.0.0.0:PORT/api/status": dial tcp 0.0.0.0:PORT: ...`` with the address as
    configured (``[::]`` for ``::``); ours the same words (on stderr)."""
    admin = free_port()
    path = tmp_path / "frpc.toml"
    web: dict[str, Any] = {"webServer.addr": addr, "webServer.port": admin}
    path.write_text(frpc_config(free_port(), **web))
    shown = f"[{addr}]" if ":" in addr else addr
    for cmd, verb in (("status", "Get"), ("stop", "Post"), ("reload", "Get")):
        go, ours = CLIS["go"](cmd, "-c", str(path)), CLIS["ours"](cmd, "-c", str(path))
        assert go.returncode == ours.returncode == 1, (go, ours)
        assert ours.stderr == go.stdout, (go, ours)
        query = "?strictConfig=true" if cmd == "reload" else ""
        assert go.stdout == (f'{verb} "http://{shown}:{admin}/api/{cmd}{query}": dial tcp {shown}:{admin}: '
                             "connect: connection refused\n")
