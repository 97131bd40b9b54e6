"""https proxies on frps's vhost HTTPS port, end to end: routing by SNI, TLS untouched by frps.

Covered: custom domains, wildcard, subdomain, case-insensitive SNI; the certificate the client sees
is the local service's (TLS is end to end); keep-alive and bulk transfer over the TLS stream
(with useEncryption/useCompression); a ClientHello arriving in pieces; unknown or missing SNI
answered with the ``unrecognized_name`` alert; non-TLS bytes closed; vhostHTTPSPort == bindPort
(frpc then needs the 0x17 first byte).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from dataclasses import dataclass

import pytest
from support.httpd import (
    RawClient,
    WebBackend,
    client_tls_context,
    pattern_sha256,
    proxy_block,
    tls_server_context,
)
from support.procs import LOCALHOST, FrpLauncher, free_port, frpc_config, frps_config

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-https-token"


@dataclass
class Env:
    port: int
    a: WebBackend
    b: WebBackend
    a_der: bytes
    b_der: bytes


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    tmp = tmp_path_factory.mktemp("https-vhost")
    launcher = FrpLauncher(tmp)
    a_ctx, a_der = tls_server_context(str(tmp), "a")
    b_ctx, b_der = tls_server_context(str(tmp), "b")
    a = WebBackend("A", ssl_context=a_ctx).start()
    b = WebBackend("B", ssl_context=b_ctx).start()
    bind, sport = free_port(), free_port()
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPSPort=sport, subDomainHost="frps.test"))
        frps.wait_for_log("frps started successfully", 10)
        frpc = launcher.ours_frpc(frpc_config(
            bind,
            proxy_block("https", "tls-a", a.port, customDomains=["a.example.com"]),
            proxy_block("https", "tls-wild", b.port, customDomains=["*.wild.example.com"]),
            proxy_block("https", "tls-sub", b.port, subdomain="app"),
            proxy_block("https", "tls-enc", a.port, customDomains=["enc.example.com"],
                        **{"transport.useEncryption": True, "transport.useCompression": True}),
            token=TOKEN))
        frpc.wait_for_proxies("tls-a", "tls-wild", "tls-sub", "tls-enc", timeout=15)
        yield Env(sport, a, b, a_der, b_der)
    finally:
        launcher.kill_all()
        a.stop()
        b.stop()


def tls_get(port: int, sni: str | None, path: str = "/", host: str = "x") -> tuple[object, bytes]:
    with RawClient(port, tls=True, server_name=sni) as c:
        der = c.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
        return c.request("GET", path, host, {"Connection": "close"}), der


def test_sni_routing(env: Env):
    for sni, name, der in [
        ("a.example.com", "A", env.a_der),
        ("A.Example.COM", "A", env.a_der),
        ("x.wild.example.com", "B", env.b_der),
        ("y.x.wild.example.com", "B", env.b_der),
        ("app.frps.test", "B", env.b_der),
    ]:
        resp, cert = tls_get(env.port, sni)
        assert resp.status == 200 and resp.header("X-Backend") == name, sni
        assert cert == der, f"{sni}: TLS must be terminated by the local service, not by frps"


@pytest.mark.parametrize("sni", ["unknown.example.com", "wild.example.com", None])
def test_unknown_or_missing_sni_gets_unrecognized_name(env: Env, sni: str | None):
    with pytest.raises(ssl.SSLError, match="(?i)unrecognized.name"):
        RawClient(env.port, tls=True, server_name=sni)


def test_non_tls_bytes_are_closed(env: Env):
    with RawClient(env.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
        assert c.closed_by_peer(3)
        assert c.buf == b""


def test_keepalive_and_bulk_over_tls(env: Env):
    size = 8 << 20
    for sni in ("a.example.com", "enc.example.com"):
        with RawClient(env.port, tls=True, server_name=sni, timeout=30) as c:
            for i in range(3):
                r = c.request("GET", f"/k{i}", sni)
                assert r.status == 200 and r.json()["path"] == f"/k{i}"
            r = c.request("GET", f"/big?size={size}", sni)
            assert len(r.body) == size and hashlib.sha256(r.body).hexdigest() == pattern_sha256(size)


def test_client_hello_in_pieces(env: Env):
    """The ClientHello trickles in (three writes); routing still works and no byte is lost."""
    ctx = client_tls_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.example.com")
    with socket.create_connection((LOCALHOST, env.port), timeout=10) as s:
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = out.read()
        for piece in (hello[:3], hello[3:50], hello[50:]):
            s.sendall(piece)
            time.sleep(0.15)
        while True:
            data = s.recv(65536)
            assert data, "closed during the handshake"
            inc.write(data)
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
        s.sendall(out.read())
        obj.write(b"GET /pieces HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        s.sendall(out.read())
        body = b""
        deadline = time.monotonic() + 5
        while b"/pieces" not in body and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            inc.write(data)
            try:
                body += obj.read(65536)
            except ssl.SSLWantReadError:
                continue
    assert b"HTTP/1.1 200" in body and b'"/pieces"' in body


def test_https_on_the_bind_port(frp, tmp_path):
    """vhostHTTPSPort == bindPort: 0x16 goes to the HTTPS vhost, frpc logs in with the 0x17 prefix."""
    ctx, der = tls_server_context(str(tmp_path))
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPSPort=bind, vhostHTTPPort=bind))
    frps.wait_for_log("frps started successfully", 10)
    with WebBackend("S", ssl_context=ctx) as s, WebBackend("P") as p:
        frpc = frp.ours_frpc(frpc_config(
            bind,
            proxy_block("https", "shared-tls", s.port, customDomains=["s.example.com"]),
            proxy_block("http", "shared-http", p.port, customDomains=["p.example.com"]),
            token=TOKEN, **{"transport.tls.disableCustomTLSFirstByte": False}))
        frpc.wait_for_proxies("shared-tls", "shared-http", timeout=10)
        resp, cert = tls_get(bind, "s.example.com")
        assert resp.header("X-Backend") == "S" and cert == der
        with RawClient(bind) as c:
            assert c.request("GET", "/", "p.example.com").header("X-Backend") == "P"
        with pytest.raises(ssl.SSLError, match="(?i)unrecognized.name"):
            RawClient(bind, tls=True, server_name="nobody.example.com")
