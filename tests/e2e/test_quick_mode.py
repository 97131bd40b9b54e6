"""Quick mode (`frp -m server|client`): one public port carries the tunnel and the public users."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from support.procs import free_port, wait_port

from aiofrp.cli import frp as quick
from aiofrp.net.tls import self_signed_pair

FRP = [sys.executable, "-m", "aiofrp.cli.frp"]


class _Service:
    """A local service in a thread: TLS echo (client speaks first) or an SMTP-like banner."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ctx: ssl.SSLContext | None = None
        if kind == "tls":
            cert, key = self_signed_pair()
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory(prefix="aiofrp-quick-") as d:  # only while loading
                for name, data in (("c.pem", cert), ("k.pem", key)):
                    with open(os.path.join(d, name), "wb") as f:
                        f.write(data)
                self.ctx.load_cert_chain(os.path.join(d, "c.pem"), os.path.join(d, "k.pem"))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.ctx is not None:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    data = tls.recv(1024)
                    tls.sendall(b"tls echo: " + data)
            else:
                conn.sendall(b"220 banner ready\r\n")
                data = conn.recv(1024)
                conn.sendall(b"250 " + data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_service() -> Iterator[_Service]:
    s = _Service("tls")
    yield s
    s.close()


@pytest.fixture
def banner_service() -> Iterator[_Service]:
    s = _Service("banner")
    yield s
    s.close()


def _start_pair(frp, port: int, local_port: int, password: str = "s3cret"):
    server = frp.run(FRP, None, name="quick-server", args=["-m", "server", "-h", "127.0.0.1", "-p", str(port),
                                                           "-pwd", password])
    wait_port(port, 10)
    client = frp.run(FRP, None, name="quick-client", args=["-m", "client", "-h", "127.0.0.1", "-p", str(port),
                                                           "-lh", "127.0.0.1", "-lp", str(local_port),
                                                           "-pwd", password])
    client.wait_for_log(r"\[quick\] start proxy success", timeout=15)
    return server, client


def _https_exchange(port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="example.test") as tls,
    ):
        tls.sendall(b"hello")
        return tls.recv(1024)


def _banner_exchange(port: int) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        banner = s.recv(1024)  # the public client sends nothing first
        s.sendall(b"HELO test\r\n")
        return banner, s.recv(1024)


def test_https_service_through_the_shared_port(frp, tls_service: _Service) -> None:
    port = free_port()
    _start_pair(frp, port, tls_service.port)
    # the 0x16 ClientHello reaches the local HTTPS service untouched: end-to-end TLS works
    assert _https_exchange(port) == b"tls echo: hello"
    assert _https_exchange(port) == b"tls echo: hello"


def test_server_speaks_first_service(frp, banner_service: _Service) -> None:
    port = free_port()
    _start_pair(frp, port, banner_service.port)
    assert _banner_exchange(port) == (b"220 banner ready\r\n", b"250 HELO test\r\n")


def test_wrong_password_is_refused(frp, banner_service: _Service) -> None:
    port = free_port()
    server, _ = _start_pair(frp, port, banner_service.port)
    intruder = frp.run(FRP, None, name="intruder", args=["-m", "client", "-h", "127.0.0.1", "-p", str(port),
                                                         "-lp", str(banner_service.port), "-pwd", "wrong"])
    assert intruder.wait_exit(15) == 1
    assert "token in login doesn't match token from configuration" in intruder.log_text()
    server.wait_for_log(r"login from .* failed: token in login doesn't match")
    # the legitimate tunnel is undisturbed
    assert _banner_exchange(port)[0] == b"220 banner ready\r\n"


def test_second_client_exits_with_a_clear_message(frp, banner_service: _Service) -> None:
    port = free_port()
    server, first = _start_pair(frp, port, banner_service.port)
    second = frp.run(FRP, None, name="second", args=["-m", "client", "-h", "127.0.0.1", "-p", str(port),
                                                     "-lh", "127.0.0.1", "-lp", str(banner_service.port),
                                                     "-pwd", "s3cret"])
    assert second.wait_exit(15) == 1
    second.wait_for_log(rf"\[E\] \[quick\] another quick mode client is already published on 127\.0\.0\.1:{port} "
                        r"\(proxy \[quick\] already exists\): stop it first, or use another server port; exiting$")
    assert "Traceback" not in second.log_text()
    server.wait_for_log(r"new proxy \[quick\] type \[tcp\] error: proxy \[quick\] already exists")
    # the first tunnel is undisturbed
    assert first.running
    assert _banner_exchange(port) == (b"220 banner ready\r\n", b"250 HELO test\r\n")


def test_tunnel_survives_server_restart(frp, banner_service: _Service) -> None:
    port = free_port()
    server, client = _start_pair(frp, port, banner_service.port)
    mark = client.mark()
    server.kill()
    server2 = frp.run(FRP, None, name="quick-server2", args=["-m", "server", "-h", "127.0.0.1", "-p", str(port),
                                                             "-pwd", "s3cret"])
    wait_port(port, 10)
    client.wait_for_log(r"\[quick\] start proxy success", timeout=10, since=mark)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert _banner_exchange(port)[0] == b"220 banner ready\r\n"
            break
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert server2.running


def test_default_password_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aiofrp.quick"):
        quick._warn_default_password("203.0.113.7", quick.DEFAULT_PASSWORD)
    assert "default password" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aiofrp.quick"):
        quick._warn_default_password("127.0.0.1", quick.DEFAULT_PASSWORD)
        quick._warn_default_password("203.0.113.7", "my-own-secret")
    assert caplog.text == ""
