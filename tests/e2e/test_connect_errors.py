"""frpc's connection errors name ``serverAddr:serverPort`` and end with a one-line hint; frps's port
errors name the port and the allowed ranges.  Real processes against real (mis)configured peers.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from support.procs import (
    LOCALHOST,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    ours_cmd,
    tcp_proxy,
    wait_port,
)
from support.waits import echo_ok

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-errors"


class _Listener:
    """A loopback TCP server that treats each connection with ``behaviour``:
    ``silent`` (accepts, never answers), ``http400`` (answers any bytes with an HTTP 400 and
    closes), ``banner`` (speaks first, like SSH), or ``full`` (never accepts: the accept queue is
    full, so new connects hang in SYN)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind((LOCALHOST, 0))
        self.sock.listen(0 if behaviour == "full" else 16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        if behaviour == "full":  # fill the one-entry accept queue
            c = socket.create_connection((LOCALHOST, self.port), timeout=2)
            self.conns.append(c)
        else:
            self.sock.settimeout(0.1)
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(c)
            if self.behaviour == "banner":
                c.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n")
            elif self.behaviour == "http400":
                threading.Thread(target=self._http400, args=(c,), daemon=True).start()

    @staticmethod
    def _http400(c: socket.socket) -> None:
        try:
            c.settimeout(10)
            if c.recv(4096):
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[_Listener]:
    srv = _Listener(request.param)
    try:
        yield srv
    finally:
        srv.close()


def start_frpc_once(frp, port: int, **keys: object) -> FrpProcess:
    """Our frpc with loginFailExit = true: it logs the error and exits 1."""
    return frp.ours_frpc(frpc_config(port, tcp_proxy("p", 22, 0), token=TOKEN, login_fail_exit=True, **keys))


def error_line(frpc: FrpProcess, timeout: float = 20) -> str:
    """frpc's ``connect to server error: ...`` line, after checking frpc exited with status 1."""
    m = frpc.wait_for_log(r"connect to server error: (.*)$", timeout)
    assert frpc.wait_exit(10) == 1
    return m[1]


def test_connection_refused_names_the_address(frp) -> None:
    port = free_port()
    line = error_line(start_frpc_once(frp, port))
    assert line == f"dial tcp 127.0.0.1:{port}: connect: connection refused; is frps running there, with bindPort = {port}?"


@pytest.mark.parametrize("listener", ["full"], indirect=True)
def test_dial_timeout_says_what_timed_out(frp, listener) -> None:
    line = error_line(start_frpc_once(frp, listener.port, **{"transport.dialServerTimeout": 2}))
    assert line.startswith(f"dial tcp 127.0.0.1:{listener.port}: i/o timeout (no answer within 2s); ")
    assert "serverAddr and serverPort" in line


@pytest.mark.parametrize("listener", ["http400", "banner"], indirect=True)
def test_tls_to_a_plain_port(frp, listener) -> None:
    line = error_line(start_frpc_once(frp, listener.port))
    assert line == (f"TLS handshake with 127.0.0.1:{listener.port} failed: the server does not speak TLS; "
                    f"is {listener.port} frps's bindPort?")


@pytest.mark.parametrize("listener", ["silent"], indirect=True)
def test_tls_handshake_timeout_says_what_timed_out(frp, listener) -> None:
    line = error_line(start_frpc_once(frp, listener.port, **{"transport.dialServerTimeout": 2}))
    assert line == f"TLS handshake with 127.0.0.1:{listener.port} timed out after 2s; is {listener.port} frps's bindPort?"


@pytest.mark.parametrize("listener", ["banner"], indirect=True)
def test_plaintext_to_a_non_frp_port(frp, listener) -> None:
    line = error_line(start_frpc_once(frp, listener.port, tls=False))
    assert line.startswith(f"127.0.0.1:{listener.port} did not answer the login as frps does (")
    assert line.endswith(f"; is {listener.port} frps's bindPort?")


@pytest.mark.parametrize("listener", ["silent"], indirect=True)
def test_login_timeout_says_what_timed_out(frp, listener) -> None:
    line = error_line(start_frpc_once(frp, listener.port, tls=False, tcp_mux=False), timeout=30)
    assert line == f"no answer to the login from 127.0.0.1:{listener.port} within 10s; is {listener.port} frps's bindPort?"


@pytest.mark.parametrize("tcp_mux", [True, False])
def test_plaintext_to_tls_force_says_frps_requires_tls(frp, tcp_mux: bool) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, **{"transport.tls.force": True}))
    frps.wait_for_log("frps started successfully")
    line = error_line(start_frpc_once(frp, bind, tls=False, tcp_mux=tcp_mux))
    assert line.startswith(f"127.0.0.1:{bind} closed the connection without answering the login; ")
    assert "frps requires TLS" in line and "set transport.tls.enable = true" in line
    frps.wait_for_log(r"connection from 127\.0\.0\.1:\d+ failed: non-TLS connection refused \(transport\.tls\.force\)")


def test_unrecognized_name_when_vhost_https_shares_the_bind_port(frp, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPSPort=bind))
    frps.wait_for_log("frps started successfully")
    line = error_line(start_frpc_once(frp, bind))
    assert line.startswith(f"TLS handshake with 127.0.0.1:{bind} failed: remote error: tls: unrecognized name")
    assert line.endswith("; set transport.tls.disableCustomTLSFirstByte = false")
    # ... and the hint is right: with the 0x17 first byte the same frpc logs in.
    ok = frp.ours_frpc(frpc_config(bind, tcp_proxy("echo", echo_server.port, remote), token=TOKEN,
                                   **{"transport.tls.disableCustomTLSFirstByte": False}))
    ok.wait_for_proxies("echo")
    assert echo_ok(remote)


def test_server_addr_with_a_port_in_the_config_file(frp) -> None:
    port = free_port()
    cfg = frpc_config(port, token=TOKEN, login_fail_exit=True).replace(
        'serverAddr = "127.0.0.1"', 'serverAddr = "127.0.0.1:7000"')
    line = error_line(frp.ours_frpc(cfg))
    assert line.startswith("dial tcp: lookup 127.0.0.1:7000 on ")
    assert line.endswith('; serverAddr must not contain a port: set serverAddr = "127.0.0.1" and serverPort = 7000')


def test_one_shot_server_addr_with_port(frp, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully")
    client = frp.run(ours_cmd("frpc"), None, name="oneshot", args=[
        "tcp", "-s", f"127.0.0.1:{bind}", "-t", TOKEN, "-n", "echo", "-l", str(echo_server.port),
        "-r", str(remote)])
    client.wait_for_proxies("echo")
    assert echo_ok(remote)
    # the same port twice is fine; two different ports are explained
    visitor = frp.run(ours_cmd("frpc"), None, name="visitor", args=[
        "stcp", "visitor", "-s", f"127.0.0.1:{bind}", "-P", str(bind), "-t", TOKEN, "-n", "v", "--server-name", "x",
        "--sk", "k", "--bind-port", str(free_port())])
    visitor.wait_login()
    res = subprocess.run([*ours_cmd("frpc"), "tcp", "-n", "t", "-s", f"127.0.0.1:{bind}", "-P", "7001", "-l", "22"],
                         check=False, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 1
    assert res.stderr.strip() == f"frpc: -s 127.0.0.1:{bind} and -P 7001 name different server ports; give the port once"
    assert "Traceback" not in res.stderr


def test_port_not_allowed_names_the_port_and_the_ranges(frp, echo_server) -> None:
    bind = free_port()
    lo = free_port()
    allow = f'allowPorts = [{{ start = {lo}, end = {lo + 10} }}, {{ single = {lo + 50} }}]\n'
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, extra=allow))
    frps.wait_for_log("frps started successfully")
    bad = lo + 20
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("web", echo_server.port, bad), token=TOKEN))
    want = f"port not allowed: {bad} is not in frps's allowPorts [{lo}-{lo + 10},{lo + 50}]"
    frpc.wait_for_log(rf"\[web\] start error: {re.escape(want)}$")
    frps.wait_for_log(rf"new proxy \[web\] type \[tcp\] error: {re.escape(want)}$")
    wait_port(bind)


def test_refused_login_keeps_the_reason_and_names_the_server(frp) -> None:
    bind = free_port()
    frp.ours_frps(frps_config(bind, token="the-right-one")).wait_for_log("frps started successfully")
    line = error_line(start_frpc_once(frp, bind))
    assert line == (f"token in login doesn't match token from configuration; frps at 127.0.0.1:{bind} refused "
                    "the login: check that auth.token is the same on frpc and frps")
