"""Self-check of the e2e harness (tests/support) using only Go frps + Go frpc 0.65.0.

If these fail, the harness (or the Go binaries) is broken, not aiofrp.
"""

from __future__ import annotations

import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.procs import (
    TEST_STRING,
    LogTimeout,
    bulk_download,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
    udp_proxy,
    udp_roundtrip,
    wait_port,
)
from support.waits import frame

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "selfcheck-token"


def _start_pair(frp, *proxies: str, tls: bool | None = None, tcp_mux: bool | None = None):
    server_port = free_port()
    frps = frp.go_frps(frps_config(server_port, token=TOKEN, tcp_mux=tcp_mux))
    wait_port(server_port, 5)
    frpc = frp.go_frpc(frpc_config(server_port, *proxies, token=TOKEN, tls=tls, tcp_mux=tcp_mux))
    return frps, frpc


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "notls"])
def test_tcp_proxy_echo_and_bulk(frp, echo_server, bulk_server, tls: bool, tcp_mux: bool) -> None:
    echo_remote, bulk_remote = free_port(), free_port()
    frps, frpc = _start_pair(
        frp,
        tcp_proxy("echo", echo_server.port, echo_remote),
        tcp_proxy("bulk", bulk_server.port, bulk_remote),
        tls=tls,
        tcp_mux=tcp_mux,
    )
    run_id = frpc.wait_login(10)
    assert run_id
    frpc.wait_for_proxies("echo", "bulk", timeout=10)
    assert frpc.running and frps.running

    # frp-harness style request/expect (length-prefixed TestString) and a plain payload.
    assert tcp_roundtrip(echo_remote, frame(TEST_STRING), 5) == frame(TEST_STRING)
    payload = os.urandom(1 << 20)
    assert tcp_roundtrip(echo_remote, payload, 10) == payload

    # Many concurrent clients through one proxy.
    datas = [os.urandom(4096 + i) for i in range(32)]
    with ThreadPoolExecutor(len(datas)) as pool:
        replies = list(pool.map(lambda d: tcp_roundtrip(echo_remote, d, 10), datas))
    assert replies == datas

    # Bulk both directions, verified end to end by SHA-256.
    for res in (bulk_upload(bulk_remote, 8 << 20, timeout=20), bulk_download(bulk_remote, 8 << 20, timeout=20)):
        assert res.ok, res
        assert res.sha256_sent is not None

    # Harness invariants: configs are files without extension; echo saw our connections.
    assert frpc.config_path is not None and frpc.config_path.suffix == ""
    assert echo_server.connections >= 2 + len(datas)


def test_wrong_token_fails_login(frp, echo_server) -> None:
    server_port, remote = free_port(), free_port()
    frps = frp.go_frps(frps_config(server_port, token="right-token"))
    wait_port(server_port, 5)
    frpc = frp.go_frpc(frpc_config(server_port, tcp_proxy("echo", echo_server.port, remote), token="wrong-token"))

    m = frpc.wait_for_log(r"connect to server error: (.*token.*)$", 10)
    assert "token in login doesn't match token from configuration" in m[1]
    frps.wait_for_log(r"register control error: token in login doesn't match", 5)
    assert "login to server success" not in frpc.log_text()
    assert "start proxy success" not in frpc.log_text()
    assert frpc.running, "loginFailExit = false: frpc keeps retrying"
    with pytest.raises(OSError):
        tcp_roundtrip(remote, b"x", 1)


def test_harness_reports_timeouts_and_exits(frp) -> None:
    dead_port = free_port()  # nobody listens here
    # loginFailExit = false: keeps retrying; the wait must time out with the log tail attached.
    retrying = frp.go_frpc(frpc_config(dead_port, tcp_proxy("p", free_port(), free_port())))
    with pytest.raises(LogTimeout) as exc:
        retrying.wait_for_proxies("p", timeout=0.5)
    assert "start proxy success" in str(exc.value) and "--- frpc" in str(exc.value)
    assert retrying.running
    assert retrying.stop(5) is not None and not retrying.running

    # loginFailExit = true: frpc exits; waiting for a line that never comes fails fast, not at the deadline.
    exiting = frp.go_frpc(frpc_config(dead_port, tcp_proxy("p", free_port(), free_port()), login_fail_exit=True))
    with pytest.raises(LogTimeout, match="exited"):
        exiting.wait_for_log("this line never appears", 20)
    assert exiting.returncode not in (None, 0)
    assert "connect" in exiting.log_text()


def test_udp_and_http_through_default_settings(frp, udp_echo_server, http_server) -> None:
    udp_remote, http_remote = free_port(), free_port()
    _, frpc = _start_pair(
        frp,
        udp_proxy("udp", udp_echo_server.port, udp_remote),
        tcp_proxy("web", http_server.port, http_remote),
    )
    frpc.wait_for_proxies("udp", "web", timeout=10)

    assert udp_roundtrip(udp_remote, TEST_STRING, 5, attempts=5) == TEST_STRING

    with urllib.request.urlopen(f"http://127.0.0.1:{http_remote}/hello", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read() == TEST_STRING
    assert http_server.requests and http_server.requests[-1].path == "/hello"
