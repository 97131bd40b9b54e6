"""Details Go users see: the Login's hostname and clientID in frps's log, IPv6 addresses written
``[::1]:port`` in logs, ``/api/status`` and ``frpc status``, ``remote_addr`` kept whenever ``err`` is
empty, and aiofrp's own version at start-up while the wire keeps frp's."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from support.procs import (
    TEST_STRING,
    EchoServer,
    free_port,
    frpc_config,
    frps_config,
    ours_cmd,
    tcp_proxy,
    tcp_roundtrip,
)
from support.waits import poll

from aiofrp import __version__

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-wire"
VERSION_TEXT = f"aiofrp {__version__} (frp 0.65.0 compatible)"


def api_status(host: str, port: int) -> dict:
    req = urllib.request.Request(f"http://{host}:{port}/api/status")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:pw").decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def by_name(status: dict) -> dict[str, dict]:
    return {p["name"]: p for ps in status.values() for p in ps}


ADMIN = {"webServer.user": "admin", "webServer.password": "pw"}


def test_login_carries_hostname_and_client_id_and_frp_version(frp, echo_server) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log("frps started successfully")
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("echo", echo_server.port, free_port()), token=TOKEN,
                                     clientID="edge-7"))
    frpc.wait_for_proxies("echo")
    host = re.escape(socket.gethostname())
    frps.wait_for_log(rf"\[[0-9a-f]{{16}}\] client login info: ip \[127\.0\.0\.1:\d+\] version \[0\.65\.0\] "
                      rf"hostname \[{host}\] os \[linux\] arch \[\w+\] client_id \[edge-7\]$")
    # our own version is in the start-up lines of both sides, never on the wire
    frps.wait_for_log(rf"^.*\[I\] \[server\] frps starting: {re.escape(VERSION_TEXT)}$")
    frpc.wait_for_log(rf"^.*\[I\] \[client\] frpc starting: {re.escape(VERSION_TEXT)}$")
    assert re.findall(r"version \[([^\]]*)\]", frps.log_text()) == ["0.65.0"]


def test_without_client_id_the_line_is_gos(frp, echo_server) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log("frps started successfully")
    frp.ours_frpc(frpc_config(bind, token=TOKEN)).wait_login()
    frps.wait_for_log(r"client login info: ip \[127\.0\.0\.1:\d+\] version \[0\.65\.0\] hostname \[[^\]]+\] "
                      r"os \[linux\] arch \[\w+\]$")


# -- IPv6 ---------------------------------------------------------------------------------------


class _V6Echo:
    """A TCP echo service on [::1] (thread per connection)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("::1", 0), family=socket.AF_INET6)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c: socket.socket) -> None:
        with c:
            c.settimeout(10)
            try:
                while data := c.recv(65536):
                    c.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def v6_echo() -> Iterator[_V6Echo]:
    s = _V6Echo()
    yield s
    s.close()


def test_ipv6_addresses_are_bracketed(frp, v6_echo) -> None:
    bind, remote, admin, vport = free_port(), free_port(), free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, bindAddr="::1", proxyBindAddr="::1"))
    frps.wait_for_log(rf"frps tcp listen on \[::1\]:{bind}$")
    frps.wait_for_log("frps started successfully")
    cfg = frpc_config(
        bind, tcp_proxy("echo", v6_echo.port, remote, localIP="::1"), tcp_proxy("rnd", v6_echo.port, 0, localIP="::1"),
        token=TOKEN, serverAddr="::1", **{"webServer.addr": "::1", "webServer.port": admin}, **ADMIN,
        extra=f'\n[[proxies]]\nname = "secret"\ntype = "stcp"\nsecretKey = "k"\nlocalIP = "::1"\n'
              f"localPort = {v6_echo.port}\n")
    frpc = frp.ours_frpc(cfg)
    frpc.wait_for_proxies("echo", "rnd", "secret")
    frpc.wait_for_log(rf"admin server listen on \[::1\]:{admin}$")
    frpc.wait_for_log(rf"\[echo\] remote address \[\[::1\]:{remote}\]$")
    rnd = int(frpc.wait_for_log(r"\[rnd\] remote address \[\[::1\]:(\d+)\]$")[1])
    frps.wait_for_log(r"client login info: ip \[\[::1\]:\d+\]")
    assert tcp_roundtrip(remote, TEST_STRING, host="::1") == TEST_STRING

    status = by_name(api_status("[::1]", admin))
    assert status["echo"]["local_addr"] == f"[::1]:{v6_echo.port}"
    assert status["echo"]["remote_addr"] == f"[::1]:{remote}"
    assert status["rnd"]["remote_addr"] == f"[::1]:{rnd}"
    assert status["secret"]["local_addr"] == f"[::1]:{v6_echo.port}"
    res = subprocess.run([*ours_cmd("frpc"), "status", "-c", str(frpc.config_path)], capture_output=True, text=True,
                         timeout=30, check=False, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res
    row = rf"^echo\s+running\s+\[::1\]:{v6_echo.port}\s+\[::1\]:{remote}\s*$"
    assert re.search(row, res.stdout, re.MULTILINE), res.stdout

    # a visitor listening on [::1]
    visitor = frp.ours_frpc(frpc_config(
        bind, token=TOKEN, serverAddr="::1",
        extra=f'\n[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "secret"\nsecretKey = "k"\n'
              f'bindAddr = "::1"\nbindPort = {vport}\n'))
    visitor.wait_for_log(rf"\[v\] stcp visitor listen on \[::1\]:{vport}$")
    visitor.wait_login()
    poll(lambda: tcp_roundtrip(vport, TEST_STRING, host="::1") == TEST_STRING, 10, "stcp over [::1]")


def test_ipv6_connect_error_is_bracketed(frp) -> None:
    port = free_port()
    frpc = frp.ours_frpc(frpc_config(port, token=TOKEN, login_fail_exit=True, serverAddr="::1"))
    frpc.wait_for_log(rf"connect to server error: dial tcp \[::1\]:{port}: connect: connection refused; "
                      rf"is frps running there, with bindPort = {port}\?$")


# -- /api/status --------------------------------------------------------------------------------


def test_api_status_keeps_remote_addr_whenever_err_is_empty(frp, echo_server) -> None:
    bind, admin, lo = free_port(), free_port(), free_port()
    allow = f"allowPorts = [{{ start = {lo}, end = {lo + 5} }}]\n"
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, extra=allow))
    frps.wait_for_log("frps started successfully")
    checked = EchoServer().start()
    try:
        frpc = frp.ours_frpc(frpc_config(
            bind,
            tcp_proxy("hc", checked.port, lo, **{"healthCheck.type": "tcp", "healthCheck.intervalSeconds": 1}),
            tcp_proxy("bad", echo_server.port, lo + 10),
            token=TOKEN, user="alice", **{"webServer.addr": "127.0.0.1", "webServer.port": admin}, **ADMIN))
        frpc.wait_for_proxies("alice.hc")
        frpc.wait_for_log(r"\[alice\.bad\] start error: port not allowed")
        status = by_name(api_status("127.0.0.1", admin))
        # names carry the user prefix, as Go's do
        assert set(status) == {"alice.hc", "alice.bad"}, status
        assert status["alice.hc"]["remote_addr"] == f"127.0.0.1:{lo}"
        assert status["alice.bad"] == {
            "name": "alice.bad", "type": "tcp", "status": "start error",
            "err": f"port not allowed: {lo + 10} is not in frps's allowPorts [{lo}-{lo + 5}]",
            "local_addr": f"127.0.0.1:{echo_server.port}", "plugin": "", "remote_addr": ""}
    finally:
        checked.stop()
    # the health check fails: the proxy is taken off frps, its last remote address stays (err is empty)
    frpc.wait_for_log(r"\[alice\.hc\] health check failed")

    def check_failed() -> dict | None:
        e = by_name(api_status("127.0.0.1", admin))["alice.hc"]
        return e if e["status"] == "check failed" else None

    entry = poll(check_failed, 10, "status check failed")
    assert entry["err"] == "" and entry["remote_addr"] == f"127.0.0.1:{lo}", entry
    frps.wait_for_log(r"close proxy \[alice\.hc\] success")
