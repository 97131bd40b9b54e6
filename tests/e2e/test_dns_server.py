"""``dnsServer`` (and frpc's ``--dns-server`` flag) end to end: our frpc looks ``serverAddr`` up with
the DNS server of ``support/dnsserver.py`` (names no system resolver knows), alone and with a
forward proxy whose host name it resolves too; an unknown name fails the dial with no connection
anywhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from support.dnsserver import DNSServer
from support.fwdproxy import HttpConnectProxy
from support.procs import LOCALHOST, TEST_STRING, EchoServer, free_port, frpc_config, frps_config, tcp_proxy
from support.waits import frame, poll

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-dns"
NAME = "frps.aiofrp-test.invalid"  # .invalid: no real resolver will ever know it


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    e["PYTHONUNBUFFERED"] = "1"
    return e


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    s = EchoServer().start()
    try:
        yield s
    finally:
        s.stop()


def start_frps(frp) -> int:
    port = free_port()
    frp.ours_frps(frps_config(port, token=TOKEN), env=env()).wait_for_log(r"frps started successfully", 10)
    return port


def echo_ok(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=3) as s:
            s.sendall(frame(TEST_STRING))
            want = frame(TEST_STRING)
            got = b""
            while len(got) < len(want) and (chunk := s.recv(4096)):
                got += chunk
            return got == want
    except OSError:
        return False


def test_server_addr_resolved_with_dns_server(frp, echo: EchoServer) -> None:
    bind, remote = start_frps(frp), free_port()
    with DNSServer({NAME: ["127.0.0.1"]}) as dns:
        frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN, serverAddr=NAME,
                                         dnsServer=dns.address), env=env())
        frpc.wait_for_proxies("t")
        poll(lambda: echo_ok(remote), 10, "echo through the proxy")
        assert (NAME, "A") in dns.asked() and (NAME, "AAAA") in dns.asked()


def test_ipv6_answer(frp, echo: EchoServer) -> None:
    """Only an AAAA record: frpc connects to ::1 (frps listens on the IPv6 loopback)."""
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 loopback; the test needs ::1")
    port, remote = free_port(), free_port()
    frp.ours_frps(frps_config(port, token=TOKEN, bindAddr="::1"), env=env()).wait_for_log(r"frps started", 10)
    with DNSServer({NAME: ["::1"]}) as dns:
        frpc = frp.ours_frpc(frpc_config(port, tcp_proxy("t", echo.port, remote), token=TOKEN, serverAddr=NAME,
                                         dnsServer=dns.address), env=env())
        frpc.wait_for_proxies("t")
        assert (NAME, "AAAA") in dns.asked()


def test_unknown_name_fails_cleanly(frp) -> None:
    with DNSServer({}) as dns:
        frpc = frp.ours_frpc(frpc_config(free_port(), token=TOKEN, serverAddr=NAME, dnsServer=dns.address),
                             env=env())
        text = frpc.wait_for_log(r"connect to server error: (.*)", 15)[1]
        assert f"dial tcp: lookup {NAME} on {dns.address}: no such host" in text, text  # Go's words
        assert "Traceback" not in frpc.log_text()


def test_proxy_host_resolved_with_dns_server(frp, echo: EchoServer) -> None:
    """dnsServer + proxyURL: the proxy's host name is looked up with dnsServer; serverAddr goes to the
    proxy by name (the proxy resolves it, as with Go)."""
    bind, remote = start_frps(frp), free_port()
    with DNSServer({"proxy.aiofrp-test.invalid": ["127.0.0.1"]}) as dns, HttpConnectProxy() as proxy:
        frpc = frp.ours_frpc(
            frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN, dnsServer=dns.address,
                        serverAddr="localhost",
                        extra=f'transport.proxyURL = "http://proxy.aiofrp-test.invalid:{proxy.port}"\n'),
            env=env())
        frpc.wait_for_proxies("t")
        assert proxy.connected()[0].target == f"localhost:{bind}"
        assert ("proxy.aiofrp-test.invalid", "A") in dns.asked()
        assert all(name != "localhost" for name, _ in dns.asked())


def test_dns_server_flag(frp, echo: EchoServer) -> None:
    """``frpc tcp --dns-server``: the flag form (Go's ``--dns_server`` spelling works too)."""
    bind, remote = start_frps(frp), free_port()
    with DNSServer({NAME: ["127.0.0.1"]}) as dns:
        frpc = frp.run([sys.executable, "-m", "aiofrp.cli.frpc"], name="frpc", env=env(), args=[
            "tcp", "-s", NAME, "-P", str(bind), "-t", TOKEN, "-l", str(echo.port), "-r", str(remote),
            "-n", "t", "--dns-server", dns.address])
        frpc.wait_for_proxies("t")
        poll(lambda: echo_ok(remote), 10, "echo through the proxy")
        assert (NAME, "A") in dns.asked()


@pytest.mark.parametrize("value", ["dns.example.com", "127.0.0.1:99999", "1.2.3.4:x"])
def test_bad_dns_server_refused(tmp_path, value: str) -> None:
    conf = tmp_path / "frpc.toml"
    conf.write_text(frpc_config(7000, dnsServer=value))
    res = subprocess.run([sys.executable, "-m", "aiofrp.cli.frpc", "verify", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30, env=env(), check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(f"{conf}: dnsServer: "), res.stderr
    assert "Traceback" not in res.stderr
