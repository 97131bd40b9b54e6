"""frpc's admin API and hot reload against the real Go frp 0.65.0 binaries:

* our frpc against Go frps: Go's dashboard (``/api/proxy/tcp``) shows our proxies online with their
  config and our version, and follows a hot reload (added online, removed offline), while a
  connection through an unchanged proxy survives;
* Go's ``frpc status`` / ``frpc reload`` CLI against our frpc's admin API, and ours against Go
  frpc's, with Go-style configs (a legacy INI ``admin_port`` file, a TOML ``webServer`` file).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from support.procs import LOCALHOST, EchoServer, free_port, frpc_config, frps_config, go_cmd, tcp_proxy
from support.waits import echo_ok, poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-admin"


def dashboard(port: int, path: str) -> Any:
    req = urllib.request.Request(f"http://{LOCALHOST}:{port}{path}")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"dash:board").decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def go_tcp_proxies(port: int) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in dashboard(port, "/api/proxy/tcp")["proxies"]}


def run_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)


def ours_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli([sys.executable, "-m", "aiofrp.cli.frpc", *args])


def go_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli([*go_cmd("frpc"), *args])


def test_go_dashboard_shows_our_proxies_and_follows_a_reload(frp) -> None:
    bind, dash, admin = free_port(), free_port(), free_port()
    dash_keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": dash, "webServer.user": "dash",
                                 "webServer.password": "board"}
    frp.go_frps(frps_config(bind, token=TOKEN, **dash_keys)).wait_for_log("frps started successfully")
    with EchoServer() as echo:
        pk, pg, pn, pc, pc2 = (free_port() for _ in range(5))
        admin_keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": admin}

        def config(*proxies: str) -> str:
            return frpc_config(bind, *proxies, token=TOKEN, **admin_keys)

        keep = tcp_proxy("keep", echo.port, pk, encryption=True)
        frpc = frp.ours_frpc(config(keep, tcp_proxy("gone", echo.port, pg), tcp_proxy("moved", echo.port, pc)))
        frpc.wait_for_proxies("keep", "gone", "moved")
        seen = go_tcp_proxies(dash)
        assert {n: p["status"] for n, p in seen.items()} == {"keep": "online", "gone": "online", "moved": "online"}
        assert seen["keep"]["conf"]["remotePort"] == pk and seen["keep"]["conf"]["transport"]["useEncryption"]
        assert seen["keep"]["clientVersion"] == "0.65.0"

        sock = socket.create_connection((LOCALHOST, pk), timeout=5)
        sock.sendall(b"one")
        assert sock.recv(16) == b"one"
        assert frpc.config_path is not None
        frpc.config_path.write_text(config(keep, tcp_proxy("new", echo.port, pn), tcp_proxy("moved", echo.port, pc2)))
        res = go_cli("reload", "-c", str(frpc.config_path))  # Go's CLI against our admin API
        assert res.returncode == 0 and "reload success" in res.stdout, res
        poll(lambda: {n: p["status"] for n, p in go_tcp_proxies(dash).items()}
             == {"keep": "online", "gone": "offline", "new": "online", "moved": "online"}, 10,
             "Go's dashboard after the reload")
        sock.sendall(b"two")
        assert sock.recv(16) == b"two"  # the unchanged proxy kept its connection
        sock.close()
        assert echo_ok(pn) and echo_ok(pc2)
        assert go_tcp_proxies(dash)["new"]["conf"]["remotePort"] == pn
        assert go_tcp_proxies(dash)["moved"]["conf"]["remotePort"] == pc2  # re-registered with its new port


INI = """\
[common]
server_addr = 127.0.0.1
server_port = {bind}
token = {token}
login_fail_exit = false
admin_addr = 127.0.0.1
admin_port = {admin}
admin_user = adm
admin_pwd = pw

[ini-tcp]
type = tcp
local_ip = 127.0.0.1
local_port = {echo}
remote_port = {remote}
"""


@pytest.mark.parametrize("who", ["ours", "go"])
def test_status_and_reload_clis_across_implementations(frp, tmp_path, who: str) -> None:
    """Go-style configs (legacy INI, then TOML): the frpc of one implementation runs, the CLI of
    the other asks it for its status and reloads it."""
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully", 10)
    cli = go_cli if who == "ours" else ours_cli  # the other one's CLI
    start = frp.ours_frpc if who == "ours" else frp.go_frpc
    with EchoServer() as echo:
        admin, remote, remote2 = free_port(), free_port(), free_port()
        ini = INI.format(bind=bind, token=TOKEN, admin=admin, echo=echo.port, remote=remote)
        path = tmp_path / "frpc.ini"
        path.write_text(ini)
        frpc = start(None, args=["-c", str(path)])
        frpc.wait_for_log(r"\[ini-tcp\] start proxy success", 15)
        res = cli("status", "-c", str(path))
        assert res.returncode == 0, res
        assert re.search(rf"ini-tcp\s+running\s+127\.0\.0\.1:{echo.port}\s+127\.0\.0\.1:{remote}", res.stdout), res
        path.write_text(ini + f"\n[ini-two]\ntype = tcp\nlocal_ip = 127.0.0.1\nlocal_port = {echo.port}\n"
                              f"remote_port = {remote2}\n")
        res = cli("reload", "-c", str(path))
        assert res.returncode == 0 and "reload success" in res.stdout, res
        poll(lambda: echo_ok(remote2), 10, "the added proxy")
        res = cli("status", "-c", str(path))
        assert re.search(r"ini-two\s+running", res.stdout), res
        frpc.stop()

        # the same in TOML, webServer keys
        toml = tmp_path / "frpc.toml"
        keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": admin, "webServer.user": "adm",
                                "webServer.password": "pw"}
        toml.write_text(frpc_config(bind, tcp_proxy("toml-tcp", echo.port, remote), token=TOKEN, **keys))
        frpc = start(None, args=["-c", str(toml)])
        frpc.wait_for_log(r"\[toml-tcp\] start proxy success", 15)
        res = cli("status", "-c", str(toml))
        assert res.returncode == 0 and re.search(r"toml-tcp\s+running", res.stdout), res
        res = cli("reload", "-c", str(toml))
        assert res.returncode == 0 and "reload success" in res.stdout, res
        res = cli("stop", "-c", str(toml))
        assert res.returncode == 0 and "stop success" in res.stdout, res
        assert frpc.wait_exit(10) == 0


def test_status_table_reads_as_gos(frp, tmp_path) -> None:
    """Go's and our `frpc status` print the same bytes for one frpc with proxies of several
    types, one in `start error`: the blank line, Go's type order, the padded cells."""
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=free_port())).wait_for_log(
        "frps started successfully", 10)
    with EchoServer() as echo:
        admin = free_port()
        blocks = [
            tcp_proxy("ssh", echo.port, free_port()),
            tcp_proxy("busy-one", echo.port, bind),  # frps's own port: start error
            '\n[[proxies]]\nname = "web"\ntype = "http"\nlocalPort = 80\ncustomDomains = ["a.example.com"]\n',
            f'\n[[proxies]]\nname = "u"\ntype = "udp"\nlocalPort = 53\nremotePort = {free_port()}\n',
            '\n[[proxies]]\nname = "sec"\ntype = "stcp"\nsecretKey = "k"\nlocalPort = 22\n',
        ]
        path = tmp_path / "frpc.toml"
        keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": admin}
        path.write_text(frpc_config(bind, *blocks, token=TOKEN, **keys))
        frpc = frp.ours_frpc(None, args=["-c", str(path)])
        frpc.wait_for_proxies("ssh", "web", "u", "sec", timeout=15)
        go, ours = go_cli("status", "-c", str(path)), ours_cli("status", "-c", str(path))
        assert go.returncode == ours.returncode == 0, (go, ours)
        assert ours.stdout == go.stdout, (go.stdout, ours.stdout)
        assert ours.stdout.startswith("Proxy Status...\n\nTCP\n")
        assert ours.stdout.index("\nUDP\n") < ours.stdout.index("\nHTTP\n") < ours.stdout.index("\nSTCP\n")
        # a timeout Go's way, and the failures in Go's words
        res = ours_cli("status", "-c", str(path), "--api-timeout", "5s")
        assert res.returncode == 0, res
        frpc.stop()
        for cmd, verb in (("status", "Get"), ("stop", "Post")):
            go, ours = go_cli(cmd, "-c", str(path)), ours_cli(cmd, "-c", str(path))
            assert go.returncode == ours.returncode == 1, (go, ours)
            want = f'dial tcp 127.0.0.1:{admin}: connect: connection refused'
            assert f'{verb} "http://127.0.0.1:{admin}/api/' in go.stdout and want in go.stdout, go
            assert f'{verb} "http://127.0.0.1:{admin}/api/' in ours.stderr and want in ours.stderr, ours
            assert "urlopen" not in ours.stderr and "Traceback" not in ours.stderr
