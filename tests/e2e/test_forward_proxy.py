"""``transport.proxyURL`` / ``$http_proxy`` end to end (spec §1.1): our frpc reaches our frps through
the recording HTTP CONNECT and SOCKS5 proxies of ``support/fwdproxy.py``.

Checked: the proxy sees the CONNECT to ``serverAddr:serverPort`` (by name: a host name goes to the
proxy unresolved), the credentials of the URL, every work connection when tcpMux is off; wrong
credentials and a dead proxy mean no login and **no connection to frps at all** (a counting
listener stands in for frps); Go's environment rule (``$http_proxy`` only; ``HTTP_PROXY``,
``https_proxy`` and ``no_proxy`` do not change the frps connection).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support.fwdproxy import HttpConnectProxy, HttpsConnectProxy, Socks5Proxy
from support.procs import LOCALHOST, TEST_STRING, EchoServer, free_port, frpc_config, frps_config, tcp_proxy
from support.waits import frame, poll

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-fwdproxy"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy",
              "ALL_PROXY")


def via(url: str) -> dict[str, Any]:
    """The ``transport.proxyURL`` key for :func:`frpc_config`."""
    return {"transport.proxyURL": url}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class CountingListener:
    """Stands in for frps where frpc must not arrive: counts accepted connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            c.close()

    def close(self) -> None:
        self._stop.set()
        self._t.join()
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    s = EchoServer().start()
    try:
        yield s
    finally:
        s.stop()


def start_frps(frp, **kw) -> int:
    port = free_port()
    frps = frp.ours_frps(frps_config(port, token=TOKEN, **kw), env=clean_env())
    frps.wait_for_log(r"frps started successfully", 10)
    return port


def roundtrip(port: int) -> None:
    def ok() -> bool:
        try:
            with socket.create_connection((LOCALHOST, port), timeout=3) as s:
                s.sendall(frame(TEST_STRING))
                got = b""
                while len(got) < len(frame(TEST_STRING)):
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    got += chunk
                return got == frame(TEST_STRING)
        except OSError:
            return False

    poll(ok, 10, f"echo through remote port {port}")


@pytest.mark.parametrize("kind", ["http", "socks5"])
@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
def test_through_proxy(frp, echo: EchoServer, kind: str, tcp_mux: bool) -> None:
    bind = start_frps(frp, tcp_mux=tcp_mux)
    remote = free_port()
    proxy_cls = HttpConnectProxy if kind == "http" else Socks5Proxy
    with proxy_cls() as proxy:
        frpc = frp.ours_frpc(
            frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN, tcp_mux=tcp_mux,
                        **via(proxy.url(kind))),
            env=clean_env(),
        )
        frpc.wait_login()
        assert f"frps is reached through the proxy {kind}://127.0.0.1:{proxy.port} (transport.proxyURL)" in frpc.log_text()
        frpc.wait_for_proxies("t")
        roundtrip(remote)
        roundtrip(remote)
        conns = proxy.connected()
        assert conns and all(r.target == f"127.0.0.1:{bind}" for r in conns), proxy.records
        assert all(r.credentials is None for r in proxy.records)
        if tcp_mux:  # one TCP connection carries everything
            assert len(conns) == 1, proxy.records
        else:  # the control connection and the work connections all go through the proxy
            poll(lambda: len(proxy.connected()) >= 3, 10, "work connections through the proxy")
        if kind == "http":
            assert conns[0].head[0] == f"CONNECT 127.0.0.1:{bind} HTTP/1.1", conns[0].head
        else:
            assert conns[0].atyp == 1 and conns[0].head == ["methods [0]"]  # an IP: ATYP IPv4, no auth offered


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
def test_through_https_proxy(frp, echo: EchoServer, tmp_path, tcp_mux: bool) -> None:
    """``https://`` (frp >= 0.69): TLS to the proxy, its certificate checked against the system's CAs
    for the proxy's host (``SSL_CERT_FILE`` adds the test CA, as for Go), then CONNECT inside it with
    Go's headers and the URL's credentials; frp's own TLS runs inside that."""
    from support.oidc import TestCA

    ca = TestCA(tmp_path / "ca")
    bind = start_frps(frp, tcp_mux=tcp_mux)
    remote = free_port()
    with HttpsConnectProxy(ca.server_context(), auth=("u", "p w")) as proxy:
        frpc = frp.ours_frpc(
            frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN, tcp_mux=tcp_mux,
                        **via(proxy.url("https", "u", "p%20w"))),
            env=clean_env(SSL_CERT_FILE=str(ca.ca_file)),
        )
        frpc.wait_for_proxies("t")
        assert f"frps is reached through the proxy https://127.0.0.1:{proxy.port}" in frpc.log_text()
        roundtrip(remote)
        roundtrip(remote)
        conns = proxy.connected()
        assert conns and all(r.target == f"127.0.0.1:{bind}" and r.credentials == ("u", "p w") for r in conns)
        assert conns[0].head[:3] == [f"CONNECT 127.0.0.1:{bind} HTTP/1.1", f"Host: 127.0.0.1:{bind}",
                                     "User-Agent: Mozilla/5.0"], conns[0].head
        if not tcp_mux:
            poll(lambda: len(proxy.connected()) >= 3, 10, "work connections through the proxy")


def test_https_proxy_certificate_must_be_trusted(frp, tmp_path) -> None:
    """A proxy certificate the system does not trust: no CONNECT is sent, nothing reaches frps, and
    frpc says why."""
    from support.oidc import TestCA

    ca = TestCA(tmp_path / "ca")
    frps = CountingListener()
    try:
        with HttpsConnectProxy(ca.server_context()) as proxy:
            frpc = frp.ours_frpc(frpc_config(frps.port, token=TOKEN, **via(proxy.url("https"))), env=clean_env())
            frpc.wait_for_log(r"TLS handshake with HTTPS proxy: certificate verify failed", 15)
            log = frpc.log_text()
            assert "signed by a CA the system trusts" in log and "Traceback" not in log, log
            assert proxy.connected() == [] and all(r.target == "" for r in proxy.records), proxy.records
    finally:
        frps.close()
    assert frps.accepted == 0


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_host_name_goes_to_the_proxy(frp, echo: EchoServer, kind: str) -> None:
    """serverAddr = "localhost": the proxy gets the name (Go: x/net/proxy ATYP=domain, CONNECT host)."""
    bind = start_frps(frp)
    remote = free_port()
    proxy_cls = HttpConnectProxy if kind == "http" else Socks5Proxy
    with proxy_cls() as proxy:
        frpc = frp.ours_frpc(
            frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN, serverAddr="localhost",
                        **via(proxy.url(kind))),
            env=clean_env(),
        )
        frpc.wait_for_proxies("t")
        roundtrip(remote)
        rec = proxy.connected()[0]
        assert rec.target == f"localhost:{bind}"
        if kind == "socks5":
            assert rec.atyp == 3


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_credentials(frp, echo: EchoServer, kind: str) -> None:
    bind = start_frps(frp)
    remote = free_port()
    proxy_cls = HttpConnectProxy if kind == "http" else Socks5Proxy
    with proxy_cls(auth=("alice", "p@ss:w")) as proxy:
        url = f"{kind}://alice:p%40ss%3Aw@127.0.0.1:{proxy.port}"  # percent-encoded in the URL
        frpc = frp.ours_frpc(
            frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN, **via(url)),
            env=clean_env(),
        )
        frpc.wait_for_proxies("t")
        roundtrip(remote)
        rec = proxy.connected()[0]
        assert rec.credentials == ("alice", "p@ss:w")
        assert "p@ss" not in frpc.log_text() and "%40" not in frpc.log_text()  # never logged
        if kind == "socks5":
            assert rec.head == ["methods [0, 2]"]  # x/net/proxy offers no-auth and user/password


@pytest.mark.parametrize("kind", ["http", "socks5"])
@pytest.mark.parametrize("cred", ["wrong", "none"])
def test_wrong_credentials_no_login_no_direct(frp, kind: str, cred: str) -> None:
    frps = CountingListener()
    proxy_cls = HttpConnectProxy if kind == "http" else Socks5Proxy
    try:
        with proxy_cls(auth=("alice", "secret")) as proxy:
            url = proxy.url(kind, "alice", "nope") if cred == "wrong" else proxy.url(kind)
            frpc = frp.ours_frpc(
                frpc_config(frps.port, token=TOKEN, **via(url)), env=clean_env()
            )
            m = frpc.wait_for_log(r"connect to server error: (.*)", 15)
            text = m[1]
            assert f"refused to connect to 127.0.0.1:{frps.port}" in text, text
            if kind == "http":
                assert "DialTcpByHttpProxy error, StatusCode [407]" in text
            assert "check the user and password" in text
            assert "login to server success" not in frpc.log_text()
            assert "Traceback" not in frpc.log_text()
            outcome = "auth-failed" if cred == "wrong" else "auth-required"
            poll(lambda: proxy.records and proxy.records[0].outcome == outcome, 5, "the proxy's refusal")
    finally:
        frps.close()
    assert frps.accepted == 0  # no connection to frps, through the proxy or directly


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_dead_proxy_no_direct_connection(frp, kind: str) -> None:
    frps = CountingListener()
    dead = free_port()  # nothing listens there
    try:
        frpc = frp.ours_frpc(
            frpc_config(frps.port, token=TOKEN, **via(f"{kind}://127.0.0.1:{dead}")),
            env=clean_env(),
        )
        text = frpc.wait_for_log(r"connect to server error: (.*)", 15)[1]
        assert f"dial tcp 127.0.0.1:{frps.port} through the proxy {kind}://127.0.0.1:{dead}: " in text, text
        assert "connection refused" in text and "never connects directly" in text
    finally:
        frps.close()
    assert frps.accepted == 0


def test_login_fail_exit_with_dead_proxy(frp) -> None:
    frps = CountingListener()
    try:
        frpc = frp.ours_frpc(
            frpc_config(frps.port, token=TOKEN, login_fail_exit=True,
                        **via(f"http://127.0.0.1:{free_port()}")),
            env=clean_env(),
        )
        assert frpc.wait_exit(15) == 1
        assert "connect to server error" in frpc.log_text()
    finally:
        frps.close()
    assert frps.accepted == 0


def test_http_proxy_environment(frp, echo: EchoServer) -> None:
    """Go frpc: ``transport.proxyURL`` empty -> ``$http_proxy`` (lower case only); ``no_proxy`` is not
    consulted for frps."""
    bind = start_frps(frp)
    remote = free_port()
    with HttpConnectProxy() as proxy:
        frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN),
                             env=clean_env(http_proxy=proxy.url("http"), no_proxy="127.0.0.1,localhost,*"))
        frpc.wait_for_proxies("t")
        assert f"frps is reached through the proxy http://127.0.0.1:{proxy.port} ($http_proxy)" in frpc.log_text()
        roundtrip(remote)
        assert len(proxy.connected()) == 1


def test_config_wins_over_environment(frp, echo: EchoServer) -> None:
    bind = start_frps(frp)
    remote = free_port()
    with HttpConnectProxy() as env_proxy, Socks5Proxy() as cfg_proxy:
        frpc = frp.ours_frpc(
            frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN,
                        **via(cfg_proxy.url("socks5"))),
            env=clean_env(http_proxy=env_proxy.url("http")),
        )
        frpc.wait_for_proxies("t")
        roundtrip(remote)
        assert len(cfg_proxy.connected()) == 1 and env_proxy.records == []


def test_other_proxy_variables_are_not_used_for_frps(frp, echo: EchoServer) -> None:
    """``HTTP_PROXY``, ``https_proxy``, ``HTTPS_PROXY``, ``ALL_PROXY``: Go frpc connects directly."""
    bind = start_frps(frp)
    remote = free_port()
    with HttpConnectProxy() as proxy:
        url = proxy.url("http")
        frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo.port, remote), token=TOKEN),
                             env=clean_env(HTTP_PROXY=url, https_proxy=url, HTTPS_PROXY=url, ALL_PROXY=url))
        frpc.wait_for_proxies("t")
        roundtrip(remote)
        assert proxy.records == []
        assert "reached through the proxy" not in frpc.log_text()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ntlm://u:p@127.0.0.1:3128", "NTLM proxy authentication is not supported by aiofrp"),
        ("ftp://127.0.0.1:21", "the proxy URL scheme must be http, https or socks5, not [ftp]"),
        ("http://127.0.0.1", "the proxy URL has no port"),
        ("http://127.0.0.1:99999", "invalid proxy URL"),
    ],
)
def test_bad_proxy_url_refused(frp, url: str, reason: str) -> None:
    frps = CountingListener()
    try:
        frpc = frp.ours_frpc(frpc_config(frps.port, token=TOKEN, **via(url)), env=clean_env())
        assert frpc.wait_exit(15) == 1
        log = frpc.log_text()
        assert "transport.proxyURL: " + reason in log, log
        assert "Traceback" not in log
    finally:
        frps.close()
    assert frps.accepted == 0


# -- OIDC token requests --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_oidc_token_request_through_transport_proxy(frp, echo: EchoServer, tmp_path, kind: str) -> None:
    """With ``transport.proxyURL`` and no ``auth.oidc.proxyURL``, the token request goes through the
    proxy as well (HTTPS provider: a CONNECT to it), then the frps connection."""
    from support.oidc import MockOIDC, TestCA, frpc_oidc, frps_oidc

    ca = TestCA(tmp_path / "ca")
    proxy_cls = HttpConnectProxy if kind == "http" else Socks5Proxy
    with MockOIDC(ca=ca) as idp, proxy_cls() as proxy:
        bind, remote = free_port(), free_port()
        frps = frp.ours_frps(frps_oidc(bind, idp), env=clean_env(SSL_CERT_FILE=str(ca.ca_file)))
        frps.wait_for_log(r"frps started successfully", 10)
        frpc = frp.ours_frpc(frpc_oidc(bind, idp, tcp_proxy("t", echo.port, remote),
                                       extra=f'auth.oidc.trustedCaFile = "{ca.ca_file}"\n'
                                             f'transport.proxyURL = "{proxy.url(kind)}"\n'), env=clean_env())
        frpc.wait_for_proxies("t", timeout=15)
        roundtrip(remote)
        targets = [r.target for r in proxy.connected()]
        assert f"127.0.0.1:{idp.port}" in targets and f"127.0.0.1:{bind}" in targets, targets
        assert idp.token_requests
        assert "OIDC token requests go through transport.proxyURL" in frpc.log_text()


def test_oidc_dead_proxy_no_token_request(frp, tmp_path) -> None:
    from support.oidc import MockOIDC, frpc_oidc

    frps = CountingListener()
    try:
        with MockOIDC() as idp:
            frpc = frp.ours_frpc(frpc_oidc(frps.port, idp, extra=f'transport.proxyURL = "http://127.0.0.1:{free_port()}"\n'),
                                 env=clean_env())
            text = frpc.wait_for_log(r"(connect to server error|login to server failed)[^\n]*", 20)[0]
            assert "proxyconnect" in text or "proxy" in text, text
            assert idp.token_requests == [] and idp.requests == []
    finally:
        frps.close()
    assert frps.accepted == 0
