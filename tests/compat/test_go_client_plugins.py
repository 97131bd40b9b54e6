"""Client plugins against the real Go frp 0.65.0: Go frps with our frpc's plugins, and our frpc
beside Go frpc with the same plugin configs, answering the same bytes.

Go frps serves an ``unix_domain_socket`` (tcp), an ``http_proxy`` and a ``socks5`` (with
credentials, tcp, encrypted+compressed) and a ``tls2raw`` (https, routed by SNI) of our frpc; each
is used by a real client (curl, python-socks, Python's TLS). Then the same plugin proxies run on
Go frpc and on our frpc, side by side behind Go frps, and each gets the same requests, refusals
and junk: the answers must be byte-identical (the 407/400 of a CONNECT, go-socks5's replies).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from python_socks.sync import Proxy
from support.plugin_services import (
    UnixHttpServer,
    curl,
    http_connect,
    make_cert,
    plugin_proxy,
    raw_exchange,
    tls_roundtrip,
)
from support.procs import TEST_STRING, HttpServer, free_port, frpc_config, frps_config

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "compat-plugins-token"


@pytest.fixture
def sock_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="frp-uds-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def socks_get(port: int, host: str, dest_port: int, user: str, password: str) -> bytes:
    proxy = Proxy.from_url(f"socks5://{user}:{password}@127.0.0.1:{port}", rdns=True)
    with proxy.connect(dest_host=host, dest_port=dest_port, timeout=10) as s:
        s.settimeout(10)
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        got = b""  # up to the body: go-socks5 does not pass the server's close on (ours does)
        while not got.endswith(TEST_STRING) and (chunk := s.recv(65536)):
            got += chunk
        return got


def test_go_frps_with_our_plugins(frp, echo_server, sock_dir) -> None:
    bind, vhs = free_port(), free_port()
    frp.go_frps(frps_config(bind, token=TOKEN, vhostHTTPSPort=vhs)).wait_for_log(r"frps started successfully", 10)
    p = {n: free_port() for n in ("uds", "hp", "s5")}
    sock = os.path.join(sock_dir, "api.sock")
    crt, key = make_cert(sock_dir, "tls.example.com")
    with UnixHttpServer(sock), HttpServer() as web:
        ours = frp.ours_frpc(frpc_config(
            bind,
            plugin_proxy("uds", "tcp", {"type": "unix_domain_socket", "unixPath": sock}, remotePort=p["uds"]),
            plugin_proxy("hp", "tcp", {"type": "http_proxy", "httpUser": "u", "httpPassword": "p"},
                         remotePort=p["hp"], transport__useEncryption=True, transport__useCompression=True),
            plugin_proxy("s5", "tcp", {"type": "socks5", "username": "u", "password": "p"}, remotePort=p["s5"],
                         transport__useEncryption=True),
            plugin_proxy("tls", "https", {"type": "tls2raw", "localAddr": f"127.0.0.1:{echo_server.port}",
                                          "crtPath": crt, "keyPath": key}, customDomains=["tls.example.com"]),
            token=TOKEN,
        ))
        ours.wait_for_proxies("uds", "hp", "s5", "tls", timeout=15)
        r = curl(f"http://127.0.0.1:{p['uds']}/containers/json")
        assert r.stdout == "unix says hello to /containers/json\n", r
        url = f"http://127.0.0.1:{web.port}/"
        for tunnel in ((), ("-p",)):
            r = curl(url, *tunnel, "-x", f"http://u:p@127.0.0.1:{p['hp']}")
            assert r.stdout.encode() == TEST_STRING, r
        assert socks_get(p["s5"], "localhost", web.port, "u", "p").endswith(TEST_STRING)
        big = os.urandom(1 << 20)
        got, cert = tls_roundtrip(vhs, big, "tls.example.com", cafile=crt)
        assert got == big and cert is not None


def test_same_answers_as_go_frpc(frp, echo_server) -> None:
    """Go frpc and our frpc run the same plugins behind Go frps: same bytes for the same inputs."""
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 10)
    ports: dict[str, dict[str, int]] = {}
    for impl in ("go", "ours"):
        ports[impl] = q = {n: free_port() for n in ("hp", "s5", "s5open")}
        text = frpc_config(
            bind,
            plugin_proxy(f"{impl}-hp", "tcp", {"type": "http_proxy", "httpUser": "u", "httpPassword": "p"},
                         remotePort=q["hp"]),
            plugin_proxy(f"{impl}-s5", "tcp", {"type": "socks5", "username": "u", "password": "p"},
                         remotePort=q["s5"]),
            plugin_proxy(f"{impl}-s5open", "tcp", {"type": "socks5"}, remotePort=q["s5open"]),
            token=TOKEN,
        )
        proc = frp.go_frpc(text) if impl == "go" else frp.ours_frpc(text)
        proc.wait_for_proxies(f"{impl}-hp", f"{impl}-s5", f"{impl}-s5open", timeout=15)

    dead = free_port()
    echo = echo_server.port.to_bytes(2, "big")
    cases: list[tuple[str, bytes]] = [
        ("s5", b"\x05\x01\x00"),                                        # no acceptable method
        ("s5", b"\x05\x01\x02\x01\x01u\x01x"),                          # wrong password
        ("s5open", b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00"),            # SOCKS4
        ("s5open", b"GET / HTTP/1.1\r\n\r\n"),                          # not SOCKS
        ("s5open", b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01" + echo),        # BIND
        ("s5open", b"\x05\x01\x00\x05\x01\x00\x09\x7f\x00\x00\x01\x00\x50"),      # address type 9
        ("s5open", b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + dead.to_bytes(2, "big")),  # refused
        ("s5open", b"\x05\x01\x00\x05\x01\x00\x03\x0bno.invalid.\x00\x50"),       # unresolvable
    ]
    for which, data in cases:
        answers = {impl: raw_exchange(ports[impl][which], data, 10) for impl in ("go", "ours")}
        assert answers["ours"] == answers["go"], (which, data, answers)
    # a successful CONNECT: same reply shape (the bound port differs), then the echo
    for impl in ("go", "ours"):
        proxy = Proxy.from_url(f"socks5://127.0.0.1:{ports[impl]['s5open']}")
        with proxy.connect(dest_host="127.0.0.1", dest_port=echo_server.port, timeout=10) as s:
            s.sendall(TEST_STRING)
            assert s.recv(len(TEST_STRING)) == TEST_STRING

    # http_proxy CONNECT: no credentials, a dead target, then a tunnel
    for target, headers in ((f"127.0.0.1:{echo_server.port}", ""),
                            (f"127.0.0.1:{dead}", "Proxy-Authorization: Basic dTpw\r\n")):
        heads = {}
        for impl in ("go", "ours"):
            head, s = http_connect(ports[impl]["hp"], target, headers)
            s.close()
            heads[impl] = head
        assert heads["ours"] == heads["go"], heads
    for impl in ("go", "ours"):
        head, s = http_connect(ports[impl]["hp"], f"127.0.0.1:{echo_server.port}", "Proxy-Authorization: Basic dTpw\r\n")
        with s:
            assert head == b"HTTP/1.1 200 OK\r\n\r\n"
            s.sendall(TEST_STRING)
            assert s.recv(len(TEST_STRING)) == TEST_STRING
    # a plain request without credentials: 407 Proxy Authentication Required with Basic, both
    for impl in ("go", "ours"):
        r = curl(f"http://127.0.0.1:{echo_server.port}/", "-x", f"127.0.0.1:{ports[impl]['hp']}", "-D", "-",
                 "-o", "/dev/null")
        assert r.stdout.startswith("HTTP/1.1 407 Proxy Authentication Required\n"), (impl, r)
        assert "Proxy-Authenticate: Basic\n" in r.stdout, (impl, r)
