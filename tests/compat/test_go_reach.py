"""Go frp 0.65.0 and ours through forward proxies, and our wire v2 frpc against Go 0.65 frps.

* our frpc -> Go frps with ``transport.proxyURL`` (HTTP CONNECT and SOCKS5, with credentials; tcpMux
  on and off): the proxy records the CONNECTs, the tcp proxy works.
* Go frpc -> our frps through the same proxies: Go's CONNECT request as our proxy saw it (the line
  our frpc must match), and the same SOCKS5 greeting as ours.
* Go frpc with ``$http_proxy`` only, and with ``HTTP_PROXY`` only: Go takes the former, ignores the
  latter (the rule our frpc follows).
* our v2 frpc -> Go 0.65 frps (spec §1.8): Go closes the connection at the magic; our frpc logs a
  clear error with the hint, does not crash, keeps retrying; Go frps stays up for v1 clients.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from support.fwdproxy import HttpConnectProxy, Socks5Proxy
from support.procs import LOCALHOST, TEST_STRING, free_port, frpc_config, frps_config, tcp_proxy
from support.waits import frame, poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-reach"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy",
              "ALL_PROXY")


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    e["PYTHONUNBUFFERED"] = "1"
    e.update(extra)
    return e


def via(url: str) -> dict[str, Any]:
    return {"transport.proxyURL": url}


def echo_ok(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=3) as s:
            s.sendall(frame(TEST_STRING))
            want, got = frame(TEST_STRING), b""
            while len(got) < len(want) and (chunk := s.recv(4096)):
                got += chunk
            return got == want
    except OSError:
        return False


def start_frps(frp, go: bool, **kw: Any) -> int:
    port = free_port()
    text = frps_config(port, token=TOKEN, **kw)
    p = frp.go_frps(text, env=env()) if go else frp.ours_frps(text, env=env())
    p.wait_for_log(r"frps started successfully", 10)
    return port


@pytest.mark.parametrize("kind", ["http", "socks5"])
@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
@pytest.mark.parametrize("direction", ["ours_frpc-go_frps", "go_frpc-ours_frps"])
def test_through_proxy(frp, echo_server, kind: str, tcp_mux: bool, direction: str) -> None:
    go_server = direction == "ours_frpc-go_frps"
    bind, remote = start_frps(frp, go_server, tcp_mux=tcp_mux), free_port()
    proxy_cls = HttpConnectProxy if kind == "http" else Socks5Proxy
    with proxy_cls(auth=("u", "pw")) as proxy:
        text = frpc_config(bind, tcp_proxy("t", echo_server.port, remote), token=TOKEN, tcp_mux=tcp_mux,
                           **via(proxy.url(kind, "u", "pw")))
        frpc = frp.ours_frpc(text, env=env()) if go_server else frp.go_frpc(text, env=env())
        frpc.wait_for_proxies("t", timeout=20)
        poll(lambda: echo_ok(remote), 10, "echo through the proxy")
        assert echo_ok(remote)
        conns = proxy.connected()
        assert conns and all(r.target == f"127.0.0.1:{bind}" and r.credentials == ("u", "pw") for r in conns)
        if not tcp_mux:
            poll(lambda: len(proxy.connected()) >= 2, 10, "work connections through the proxy")
        if kind == "socks5":  # golang.org/x/net/proxy and python-socks greet alike
            assert conns[0].head == ["methods [0, 2]"] and conns[0].atyp == 1


def test_go_frpc_http_connect_request_shape(frp, echo_server) -> None:
    """What Go frpc 0.65 sends to an HTTP proxy, next to what ours sends."""
    bind = start_frps(frp, False)
    with HttpConnectProxy(auth=("u", "pw")) as proxy:
        text = frpc_config(bind, token=TOKEN, **via(proxy.url("http", "u", "pw")))
        go = frp.go_frpc(text, env=env())
        go.wait_login(20)
        ours = frp.ours_frpc(text, env=env())
        ours.wait_login(20)
        go_head, our_head = proxy.connected()[0].head, proxy.connected()[1].head
        assert go_head[0] == our_head[0] == f"CONNECT 127.0.0.1:{bind} HTTP/1.1"
        go_hdrs = {ln.split(":", 1)[0].lower() for ln in go_head[1:]}
        our_hdrs = {ln.split(":", 1)[0].lower() for ln in our_head[1:]}
        assert {"host", "proxy-authorization"} <= go_hdrs & our_hdrs, (go_head, our_head)


@pytest.mark.parametrize("var", ["http_proxy", "HTTP_PROXY"])
def test_go_frpc_environment(frp, echo_server, var: str) -> None:
    """Go frpc 0.65 reads $http_proxy and not $HTTP_PROXY for frps: ours does the same."""
    bind = start_frps(frp, False)
    with HttpConnectProxy() as proxy:
        for start in (frp.go_frpc, frp.ours_frpc):
            start(frpc_config(bind, token=TOKEN), env=env(**{var: proxy.url("http")})).wait_login(20)
        assert len(proxy.connected()) == (2 if var == "http_proxy" else 0)


def test_go_frps_065_refuses_our_v2_frpc(frp, echo_server) -> None:
    bind = start_frps(frp, True)
    frps = frp.processes[-1]
    remote = free_port()
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo_server.port, remote), token=TOKEN,
                                     extra='transport.wireProtocol = "v2"\n'), env=env())
    text = frpc.wait_for_log(r"connect to server error: (.*)", 20)[1]
    assert f"127.0.0.1:{bind} closed the connection without answering the login" in text, text
    assert 'frps older than 0.69 closes a wire protocol v2 connection at once' in text
    assert "Traceback" not in frpc.log_text()
    assert frpc.running  # loginFailExit = false: it retries
    assert "login" not in frps.log_text().split("frps started successfully", 1)[1].lower()
    # Go frps is undisturbed: a v1 client still logs in and works
    remote2 = free_port()
    v1 = frp.ours_frpc(frpc_config(bind, tcp_proxy("t1", echo_server.port, remote2), token=TOKEN), env=env())
    v1.wait_for_proxies("t1", timeout=20)
    poll(lambda: echo_ok(remote2), 10, "v1 client on Go frps")
