"""Client plugins end to end with real clients: our frps + our frpc processes, on every proxy type
a plugin serves (tcp, http, https, tcpmux, stcp, xtcp).

* ``unix_domain_socket``: curl to a unix-socket HTTP server through tcp, http (vhost), tcpmux,
  stcp and xtcp proxies; the PROXY protocol header reaches the socket first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest
from python_socks import ProxyError
from python_socks.sync import Proxy
from support.plugin_services import (
    BodyDigestServer,
    TcpEcho,
    UnixEchoServer,
    UnixHttpServer,
    curl,
    http_connect,
    make_cert,
    need_tool,
    plugin_proxy,
    raw_exchange,
    tls_roundtrip,
)
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    FrpProcess,
    HttpServer,
    block,
    free_port,
    frpc_config,
    frps_config,
)
from support.waits import poll

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-plugins-token"
SK = "plugin-secret"


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short directory for unix sockets (their paths are limited to 107 bytes)."""
    d = tempfile.mkdtemp(prefix="frp-uds-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Servers:
    def __init__(self, frps: FrpProcess, bind: int, vhost_http: int, vhost_https: int, tcpmux: int) -> None:
        self.frps, self.bind, self.vhost_http, self.vhost_https, self.tcpmux = frps, bind, vhost_http, vhost_https, tcpmux


@pytest.fixture
def servers(frp) -> Servers:
    bind, vh, vhs, mux = free_port(), free_port(), free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vh, vhostHTTPSPort=vhs,
                                     tcpmuxHTTPConnectPort=mux))
    frps.wait_for_log(r"frps started successfully", 10)
    return Servers(frps, bind, vh, vhs, mux)


def get_ok(url: str, *args: str) -> str:
    r = curl(*args, url)
    assert r.returncode == 0, r.stderr
    return r.stdout


def silent_then_closed(port: int, data: bytes, tls: bool = False) -> bool:
    """Send ``data`` (after a TLS handshake when ``tls``): True if nothing comes back before the
    plugin closes the connection (Go's plugins leave such a connection open, unserved; ours close
    it: README)."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as raw:
        s = raw
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(data)
        got = b""
        try:
            while chunk := s.recv(1 << 16):
                got += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        return got == b""


# -- unix_domain_socket ----------------------------------------------------------------------------


def test_unix_domain_socket_on_every_proxy_type(frp, servers, stun_server, sock_dir) -> None:
    http_sock = os.path.join(sock_dir, "http.sock")
    echo_sock = os.path.join(sock_dir, "echo.sock")
    uds = {"type": "unix_domain_socket", "unixPath": http_sock}
    ports = {n: free_port() for n in ("tcp", "enc", "pp", "stcp", "xtcp", "missing")}
    with UnixHttpServer(http_sock) as web, UnixEchoServer(echo_sock) as echo:
        provider = frp.ours_frpc(frpc_config(
            servers.bind,
            plugin_proxy("uds-tcp", "tcp", uds, remotePort=ports["tcp"]),
            plugin_proxy("uds-enc", "tcp", uds, remotePort=ports["enc"], transport__useEncryption=True,
                         transport__useCompression=True),
            plugin_proxy("uds-pp", "tcp", {"type": "unix_domain_socket", "unixPath": echo_sock},
                         remotePort=ports["pp"], transport__proxyProtocolVersion="v2"),
            plugin_proxy("uds-http", "http", uds, customDomains=["uds.example.com"]),
            plugin_proxy("uds-mux", "tcpmux", uds, customDomains=["mux.example.com"], multiplexer="httpconnect"),
            plugin_proxy("uds-stcp", "stcp", uds, secretKey=SK),
            plugin_proxy("uds-xtcp", "xtcp", uds, secretKey=SK),
            plugin_proxy("uds-missing", "tcp", {"type": "unix_domain_socket",
                                                "unixPath": os.path.join(sock_dir, "none.sock")},
                         remotePort=ports["missing"]),
            token=TOKEN, natHoleStunServer=stun_server.address,
        ))
        provider.wait_for_proxies("uds-tcp", "uds-enc", "uds-pp", "uds-http", "uds-mux", "uds-stcp", "uds-xtcp",
                                  "uds-missing", timeout=15)
        visitor = frp.ours_frpc(frpc_config(
            servers.bind,
            block("visitors", name="v-stcp", type="stcp", serverName="uds-stcp", secretKey=SK,
                  bindAddr=LOCALHOST, bindPort=ports["stcp"]),
            block("visitors", name="v-xtcp", type="xtcp", serverName="uds-xtcp", secretKey=SK,
                  bindAddr=LOCALHOST, bindPort=ports["xtcp"]),
            token=TOKEN, natHoleStunServer=stun_server.address,
        ))
        visitor.wait_login(15)

        for name in ("tcp", "enc"):
            assert get_ok(f"http://127.0.0.1:{ports[name]}/v1.43/info") == "unix says hello to /v1.43/info\n"
        assert get_ok(f"http://127.0.0.1:{servers.vhost_http}/vhost",
                      "-H", "Host: uds.example.com") == "unix says hello to /vhost\n"
        # tcpmux: frps answers the CONNECT and relays the rest to frpc's plugin
        assert get_ok("http://mux.example.com/mux", "-p", "-x", f"127.0.0.1:{servers.tcpmux}") \
            == "unix says hello to /mux\n"
        poll(lambda: curl(f"http://127.0.0.1:{ports['stcp']}/stcp").stdout == "unix says hello to /stcp\n",
             10, "stcp through the uds plugin")
        poll(lambda: curl(f"http://127.0.0.1:{ports['xtcp']}/xtcp", timeout=10).stdout == "unix says hello to /xtcp\n",
             20, "xtcp through the uds plugin")
        assert {"/v1.43/info", "/vhost", "/mux", "/stcp", "/xtcp"} <= set(web.paths)

        # the PROXY protocol header is written to the unix socket before the payload
        with socket.create_connection((LOCALHOST, ports["pp"]), timeout=5) as s:
            s.sendall(TEST_STRING)
            got = b""
            while not got.endswith(TEST_STRING):
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
        assert got.startswith(b"\r\n\r\n\x00\r\nQUIT\n")  # the v2 signature
        poll(lambda: echo.firsts, 5, "the echo socket saw the connection")

        # a missing socket: a warning in Go's words, and that connection only is closed
        assert silent_then_closed(ports["missing"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        provider.wait_for_log(r"\[[0-9a-f]{16}\] \[uds-missing\] dial to uds \S+none\.sock error: "
                              r"dial unix \S+none\.sock: connect: no such file or directory", 5)
        assert get_ok(f"http://127.0.0.1:{ports['tcp']}/after") == "unix says hello to /after\n"



# -- socks5 ----------------------------------------------------------------------------------------


def socks_echo(port: int, host: str, dest_port: int, payload: bytes = TEST_STRING, *, user: str = "",
               password: str = "", rdns: bool = True) -> bytes:
    """python-socks through 127.0.0.1:port to host:dest_port, one echo."""
    cred = f"{user}:{password}@" if user or password else ""
    proxy = Proxy.from_url(f"socks5://{cred}127.0.0.1:{port}", rdns=rdns)
    with proxy.connect(dest_host=host, dest_port=dest_port, timeout=10) as s:
        s.settimeout(10)
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        return got


def test_socks5(frp, servers, echo_server) -> None:
    p = {n: free_port() for n in ("open", "auth", "enc", "stcp")}
    creds = {"type": "socks5", "username": "alice", "password": "s3cret"}
    provider = frp.ours_frpc(frpc_config(
        servers.bind,
        plugin_proxy("s5-open", "tcp", {"type": "socks5"}, remotePort=p["open"]),
        plugin_proxy("s5-auth", "tcp", creds, remotePort=p["auth"]),
        plugin_proxy("s5-enc", "tcp", creds, remotePort=p["enc"], transport__useEncryption=True,
                     transport__useCompression=True),
        plugin_proxy("s5-stcp", "stcp", {"type": "socks5"}, secretKey=SK),
        block("visitors", name="v-s5", type="stcp", serverName="s5-stcp", secretKey=SK, bindAddr=LOCALHOST,
              bindPort=p["stcp"]),
        token=TOKEN,
    ))
    provider.wait_for_proxies("s5-open", "s5-auth", "s5-enc", "s5-stcp", timeout=15)
    with TcpEcho("::1") as echo6:
        big = os.urandom(1 << 20)
        # IPv4, IPv6 and a domain name (resolved by frpc), with and without credentials
        assert socks_echo(p["open"], LOCALHOST, echo_server.port) == TEST_STRING
        assert socks_echo(p["open"], "::1", echo6.port, rdns=False) == TEST_STRING
        assert socks_echo(p["open"], "localhost", echo_server.port) == TEST_STRING
        assert socks_echo(p["auth"], LOCALHOST, echo_server.port, big, user="alice", password="s3cret") == big
        assert socks_echo(p["enc"], "::1", echo6.port, big, user="alice", password="s3cret", rdns=False) == big
        assert socks_echo(p["enc"], "localhost", echo_server.port, user="alice", password="s3cret") == TEST_STRING
        poll(lambda: socks_echo(p["stcp"], LOCALHOST, echo_server.port) == TEST_STRING, 10, "socks5 over stcp")

    # curl: socks5h (the name resolved by frpc) with credentials, to frps's own vhost listener
    r = curl("--socks5-hostname", f"127.0.0.1:{p['auth']}", "--proxy-user", "alice:s3cret",
             f"http://localhost:{servers.vhost_http}/")
    assert r.returncode == 0, r.stderr
    assert "404" in r.stdout or "Not Found" in r.stdout  # frps's vhost page: the request got there

    # refusals, each answered as go-socks5 does, with a log line
    with pytest.raises(ProxyError):
        socks_echo(p["auth"], LOCALHOST, echo_server.port, user="alice", password="wrong")
    provider.wait_for_log(r"\[s5-auth\] socks5: user authentication failed for 'alice' \(from 127\.0\.0\.1:\d+\)", 5)
    with pytest.raises(ProxyError):  # credentials required, none offered
        socks_echo(p["auth"], LOCALHOST, echo_server.port)
    provider.wait_for_log(r"\[s5-auth\] socks5: no supported authentication mechanism", 5)
    assert raw_exchange(p["auth"], b"\x05\x01\x00") == b"\x05\xff"
    assert raw_exchange(p["auth"], b"\x05\x01\x02\x01\x05alice\x01x") == b"\x05\x02\x01\x01"
    assert raw_exchange(p["open"], b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00") == b""  # SOCKS4: closed
    provider.wait_for_log(r"\[s5-open\] socks5: bad request from 127\.0\.0\.1:\d+: unsupported SOCKS version: 4", 5)
    assert raw_exchange(p["open"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    provider.wait_for_log(r"unsupported SOCKS version: 71", 5)
    assert raw_exchange(p["open"], os.urandom(64 << 10)[:1].replace(b"\x05", b"\x06") + os.urandom(64 << 10)) == b""
    # BIND: command not supported (7); address type 9: 8; unreachable: refused (5), unknown host (4)
    greet = b"\x05\x01\x00"
    req = greet + b"\x05\x02\x00\x01\x7f\x00\x00\x01" + echo_server.port.to_bytes(2, "big")
    assert raw_exchange(p["open"], req) == b"\x05\x00\x05\x07\x00\x01" + bytes(6)
    assert raw_exchange(p["open"], greet + b"\x05\x01\x00\x09\x7f\x00\x00\x01\x00\x50") == b"\x05\x00\x05\x08\x00\x01" + bytes(6)
    provider.wait_for_log(r"unrecognized address type: 9", 5)
    closed = free_port()
    req = greet + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + closed.to_bytes(2, "big")
    assert raw_exchange(p["open"], req) == b"\x05\x00\x05\x05\x00\x01" + bytes(6)
    provider.wait_for_log(rf"\[s5-open\] socks5: connect to 127\.0\.0\.1:{closed} failed: ", 5)
    req = greet + b"\x05\x01\x00\x03\x0bno.invalid.\x00\x50"
    assert raw_exchange(p["open"], req) == b"\x05\x00\x05\x04\x00\x01" + bytes(6)
    provider.wait_for_log(r"failed to resolve destination 'no\.invalid\.'", 10)

    # nothing else was disturbed
    assert socks_echo(p["auth"], LOCALHOST, echo_server.port, user="alice", password="s3cret") == TEST_STRING
    assert "Traceback" not in provider.log_text()


# -- tls2raw ---------------------------------------------------------------------------------------


def test_tls2raw(frp, servers, echo_server, sock_dir) -> None:
    crt, key = make_cert(sock_dir, "tls.example.com")
    p = {n: free_port() for n in ("gen", "enc", "dead")}
    dead = free_port()
    provider = frp.ours_frpc(frpc_config(
        servers.bind,
        plugin_proxy("t-https", "https", {"type": "tls2raw", "localAddr": f"127.0.0.1:{echo_server.port}",
                                          "crtPath": crt, "keyPath": key}, customDomains=["tls.example.com"]),
        plugin_proxy("t-gen", "tcp", {"type": "tls2raw", "localAddr": f"127.0.0.1:{echo_server.port}"},
                     remotePort=p["gen"]),
        plugin_proxy("t-enc", "tcp", {"type": "tls2raw", "localAddr": f"127.0.0.1:{echo_server.port}",
                                      "crtPath": crt, "keyPath": key},
                     remotePort=p["enc"], transport__useEncryption=True, transport__useCompression=True),
        plugin_proxy("t-dead", "tcp", {"type": "tls2raw", "localAddr": f"127.0.0.1:{dead}"}, remotePort=p["dead"]),
        token=TOKEN,
    ))
    provider.wait_for_proxies("t-https", "t-gen", "t-enc", "t-dead", timeout=15)
    big = os.urandom(1 << 20)
    # https: frps routes by SNI; the configured certificate verifies for the name
    got, cert = tls_roundtrip(servers.vhost_https, big, "tls.example.com", cafile=crt)
    assert got == big
    assert cert is not None and ("DNS", "tls.example.com") in cert["subjectAltName"]
    got, _ = tls_roundtrip(p["enc"], TEST_STRING, "tls.example.com", cafile=crt)
    assert got == TEST_STRING
    # no crtPath/keyPath: a generated self-signed certificate
    got, _ = tls_roundtrip(p["gen"], big)
    assert got == big
    # openssl s_client as a user would run it
    cmd = [need_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{p['enc']}", "-servername", "tls.example.com",
           "-CAfile", crt, "-verify_return_error", "-quiet"]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as ossl:
        try:
            assert ossl.stdin is not None and ossl.stdout is not None
            ossl.stdin.write(b"hello through tls2raw\n")
            ossl.stdin.flush()
            line = poll_line(ossl.stdout, 15)
        finally:
            ossl.kill()
    assert line == b"hello through tls2raw\n"

    # plain text where TLS is expected, a dead local address: Go's log lines, the connection closed
    # with nothing on it (Go's plugin leaves it open), nothing else disturbed
    assert silent_then_closed(p["gen"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    provider.wait_for_log(r"\[[0-9a-f]{16}\] \[t-gen\] tls handshake error: "
                          r"tls: first record does not look like a TLS handshake", 10)
    assert silent_then_closed(p["dead"], TEST_STRING, tls=True)  # the handshake succeeds, then the close
    provider.wait_for_log(r"\[[0-9a-f]{16}\] \[t-dead\] dial to local addr error: "
                          rf"dial tcp 127\.0\.0\.1:{dead}: connect: connection refused", 5)
    got, _ = tls_roundtrip(p["gen"], TEST_STRING)
    assert got == TEST_STRING
    assert "Traceback" not in provider.log_text()


def test_tls2raw_sends_the_proxy_protocol_header(frp, servers) -> None:
    """``transport.proxyProtocolVersion`` with tls2raw: the header goes to the local service before
    the plaintext (Go 0.70+; Go 0.65 left it out)."""
    from support.ppserver import PPHeader, PPTcpServer

    remote = free_port()
    with PPTcpServer() as svc:
        provider = frp.ours_frpc(frpc_config(
            servers.bind,
            plugin_proxy("t-pp", "tcp", {"type": "tls2raw", "localAddr": f"127.0.0.1:{svc.port}"},
                         remotePort=remote, transport__proxyProtocolVersion="v2"),
            token=TOKEN,
        ))
        provider.wait_for_proxies("t-pp", timeout=15)
        with socket.create_connection((LOCALHOST, remote), timeout=10) as raw, \
                ssl._create_unverified_context().wrap_socket(raw, server_hostname="localhost") as c:
            me = c.getsockname()
            c.sendall(b"ping")
            assert c.recv(16) == b"ping"
        assert svc.headers == [PPHeader(2, "TCP4", me, (LOCALHOST, remote))], (svc.headers, svc.errors)



def poll_line(pipe: IO[bytes], timeout: float) -> bytes:
    """One line from a child's stdout, or b"" after ``timeout`` seconds."""
    out: list[bytes] = []
    t = threading.Thread(target=lambda: out.append(pipe.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else b""


# -- http_proxy ------------------------------------------------------------------------------------


def test_http_proxy(frp, servers, echo_server, tmp_path) -> None:
    p = {n: free_port() for n in ("open", "auth", "enc", "stcp")}
    creds = {"type": "http_proxy", "httpUser": "alice", "httpPassword": "s3cret"}
    provider = frp.ours_frpc(frpc_config(
        servers.bind,
        plugin_proxy("hp-open", "tcp", {"type": "http_proxy"}, remotePort=p["open"]),
        plugin_proxy("hp-auth", "tcp", creds, remotePort=p["auth"]),
        plugin_proxy("hp-enc", "tcp", creds, remotePort=p["enc"], transport__useEncryption=True,
                     transport__useCompression=True),
        plugin_proxy("hp-stcp", "stcp", {"type": "http_proxy"}, secretKey=SK),
        block("visitors", name="v-hp", type="stcp", serverName="hp-stcp", secretKey=SK, bindAddr=LOCALHOST,
              bindPort=p["stcp"]),
        token=TOKEN,
    ))
    provider.wait_for_proxies("hp-open", "hp-auth", "hp-enc", "hp-stcp", timeout=15)
    with HttpServer() as web:
        url = f"http://127.0.0.1:{web.port}/page?q=1"
        user = ("--proxy-user", "alice:s3cret")
        # absolute-form GET and CONNECT (-p), with and without credentials, every transport
        assert get_ok(url, "-x", f"127.0.0.1:{p['open']}") == TEST_STRING.decode()
        assert get_ok(url, "-p", "-x", f"127.0.0.1:{p['open']}") == TEST_STRING.decode()
        for name in ("auth", "enc"):
            assert get_ok(url, "-x", f"127.0.0.1:{p[name]}", *user) == TEST_STRING.decode()
            assert get_ok(url, "-p", "-x", f"127.0.0.1:{p[name]}", *user) == TEST_STRING.decode()
        poll(lambda: curl(url, "-x", f"127.0.0.1:{p['stcp']}").stdout == TEST_STRING.decode(), 10, "over stcp")
        got = web.requests[0]
        assert (got.method, got.path) == ("GET", "/page?q=1")
        assert not any(k.lower().startswith("proxy-") for k in got.headers), got.headers  # removed
        # POST bodies, sized and chunked, reach the target whole
        body = tmp_path / "body.bin"
        body.write_bytes(os.urandom(300_000))
        digest = hashlib.sha256(body.read_bytes()).hexdigest()
        with BodyDigestServer() as dig:
            post = f"http://127.0.0.1:{dig.port}/upload"
            assert get_ok(post, "-x", f"127.0.0.1:{p['auth']}", *user, "--data-binary", f"@{body}") \
                == f"sized 300000 {digest}"
            assert get_ok(post, "-x", f"127.0.0.1:{p['enc']}", *user, "--data-binary", f"@{body}",
                          "-H", "Transfer-Encoding: chunked") == f"chunked 300000 {digest}"
        # keep-alive: two requests on one proxy connection
        r = curl("-v", url, url.replace("page", "again"), "-x", f"127.0.0.1:{p['auth']}", *user)
        assert r.stdout == TEST_STRING.decode() * 2 and "Re-using existing connection" in r.stderr, r.stderr

        # no or wrong credentials: 407 (Go's two forms), the 200 ms delay for a wrong password
        r = curl(url, "-x", f"127.0.0.1:{p['auth']}", "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout == "407"
        head, s = http_connect(p["auth"], f"127.0.0.1:{echo_server.port}")
        s.close()
        assert head == (b"HTTP/1.1 407 Not authorized\r\nConnection: close\r\nProxy-Authenticate: Basic\r\n"
                        b"Content-Length: 0\r\n\r\n")
        r = curl(url, "-x", f"127.0.0.1:{p['auth']}", "--proxy-user", "alice:nope", "-D", "-", "-o", "/dev/null")
        assert r.stdout.startswith("HTTP/1.1 407 Proxy Authentication Required\n")  # (text mode: \r\n read as \n)
        assert "Proxy-Authenticate: Basic\n" in r.stdout

    # CONNECT: the tunnel carries bytes both ways; a dead target is Go's 400
    head, s = http_connect(p["enc"], f"127.0.0.1:{echo_server.port}", "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n")
    with s:
        assert head == b"HTTP/1.1 200 OK\r\n\r\n"
        s.sendall(TEST_STRING)
        assert s.recv(len(TEST_STRING)) == TEST_STRING
    dead = free_port()
    head, s = http_connect(p["open"], f"127.0.0.1:{dead}")
    s.close()
    assert head == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    provider.wait_for_log(rf"\[hp-open\] http_proxy: CONNECT 127\.0\.0\.1:{dead} from 127\.0\.0\.1:\d+: dial error", 5)
    # GET to a dead target or in origin form: Go's http.Error texts
    r = curl(f"http://127.0.0.1:{dead}/", "-x", f"127.0.0.1:{p['open']}", "-D", "-")
    assert r.stdout.startswith("HTTP/1.1 500 Internal Server Error\n")
    assert r.stdout.endswith(f"dial tcp 127.0.0.1:{dead}: connect: connection refused\n"), r.stdout
    got = raw_exchange(p["open"], b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 500 ") and got.endswith(b'unsupported protocol scheme ""\n'), got

    # bad input: a header past Go's 1 MiB (+ 4096), junk; only that connection fails
    got = raw_exchange(p["open"], b"GET http://x/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1100 << 10) + b"\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), got[:200]
    provider.wait_for_log(r"\[hp-open\] http_proxy: request header larger than 1052672 bytes from 127\.0\.0\.1:\d+, "
                          r"connection closed", 5)
    got = raw_exchange(p["open"], b"\x16\x03\x01junk\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got
    provider.wait_for_log(r"\[hp-open\] http_proxy: bad request from 127\.0\.0\.1:\d+: 400 Bad Request", 5)
    # a big header on a later request of a keep-alive connection: aiohttp's 400, one log line
    got = raw_exchange(p["open"], b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET http://x/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1100 << 10) + b"\r\n\r\n")
    assert b" 400 Bad Request\r\n" in got, got[:300]
    provider.wait_for_log(r"\[hp-open\] http_proxy: Error handling request from 127\.0\.0\.1: 400, message: "
                          r"Got more than 1052672 bytes", 5)
    with HttpServer() as web:
        assert get_ok(f"http://127.0.0.1:{web.port}/", "-x", f"127.0.0.1:{p['open']}") == TEST_STRING.decode()
    assert "Traceback" not in provider.log_text()


def test_http_proxy_bandwidth_limit(frp, servers) -> None:
    """transport.bandwidthLimit meters forwarded answers (aiohttp's path) and CONNECT tunnels (the
    relay): 300 KiB at 100 KB/s with one second of burst takes ~2 s; unlimited, well under."""
    p = {n: free_port() for n in ("lim", "free")}
    provider = frp.ours_frpc(frpc_config(
        servers.bind,
        plugin_proxy("hp-lim", "tcp", {"type": "http_proxy"}, remotePort=p["lim"],
                     transport__bandwidthLimit="100KB"),
        plugin_proxy("hp-free", "tcp", {"type": "http_proxy"}, remotePort=p["free"]),
        token=TOKEN,
    ))
    provider.wait_for_proxies("hp-lim", "hp-free", timeout=15)
    body = os.urandom(300 << 10)
    with HttpServer(body=body) as web:
        url = f"http://127.0.0.1:{web.port}/big"
        for tunnel in ((), ("-p",)):
            t0 = time.monotonic()
            r = curl(url, *tunnel, "-x", f"127.0.0.1:{p['lim']}", "-o", "/dev/null", "-w", "%{size_download}")
            elapsed = time.monotonic() - t0
            assert r.stdout == str(len(body)), r
            assert elapsed > 1.5, (tunnel, elapsed)
        t0 = time.monotonic()
        r = curl(url, "-x", f"127.0.0.1:{p['free']}", "-o", "/dev/null", "-w", "%{size_download}")
        assert r.stdout == str(len(body)) and time.monotonic() - t0 < 1.5
