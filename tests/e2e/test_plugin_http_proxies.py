"""The ``http2http``, ``http2https``, ``https2http`` and ``https2https`` client plugins end to end:
our frps + our frpc as processes, real curl over HTTP/1.1 and HTTP/2, aiohttp WebSocket clients,
local HTTP and HTTPS backends.

Covers X-Forwarded-* as each Go plugin sets them, ``hostHeaderRewrite``, ``requestHeaders.set``,
``enableHTTP2 = false``, ``crtPath``/``keyPath`` (and the generated certificate without them),
Go's 421 when the TLS server name is not the Host, bodies streamed both ways (HTTP/1.1 and h2),
WebSocket pass-through, an unreachable ``localAddr`` (502 and Go's log line), and a proxy with
encryption + compression.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.httpd import WebBackend, pattern_sha256, tls_server_context
from support.processes import FrpLauncher, FrpProcess
from support.procs import LOCALHOST, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = pytest.mark.timeout(120)

TOKEN = "e2e-httpplugins-token"


def curl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "-k", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 5, check=False)


def get(url: str, *args: str) -> tuple[int, str, bytes]:
    """(status, HTTP version curl used, body)."""
    r = curl("-w", "\n%{http_code} %{http_version}", url, *args)
    assert r.returncode == 0, r.stderr.decode()
    body, _, tail = r.stdout.rpartition(b"\n")
    code, version = tail.decode().split()
    return int(code), version, body


def echo(url: str, *args: str) -> dict[str, Any]:
    status, version, body = get(url, *args)
    assert status == 200, (status, body)
    info: dict[str, Any] = json.loads(body)
    info["curl_version"] = version
    return info


def header(info: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in info["headers"] if k.lower() == name.lower()]


def plugin_proxy(name: str, remote: int, plugin: str, proxy_keys: str = "", **keys: object) -> str:
    text = f'\n[[proxies]]\nname = "{name}"\ntype = "tcp"\nremotePort = {remote}\n{proxy_keys}'
    text += f'[proxies.plugin]\ntype = "{plugin}"\n'
    for k, v in keys.items():
        val = f'"{v}"' if isinstance(v, str) else str(v).lower()
        text += f"{k.replace('__', '.')} = {val}\n"
    return text


def _cut_short(server: socket.socket) -> None:
    """A backend that promises 100000 bytes, sends 1000 (the head included: within what Go's
    server holds) and hangs up."""
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                while b"\r\n\r\n" not in conn.recv(65536):
                    pass
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            except OSError:
                pass


class Env:
    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.frpc: FrpProcess
        self.cert_der = b""

    def url(self, name: str, path: str = "/", scheme: str | None = None) -> str:
        scheme = scheme or ("https" if name.startswith("https") else "http")
        return f"{scheme}://{LOCALHOST}:{self.ports[name]}{path}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("httpplugins")
    plain = WebBackend("plain").start()
    tls_ctx, _ = tls_server_context(str(base), "backend")
    secure = WebBackend("secure", ssl_context=tls_ctx).start()
    _, cert_der = tls_server_context(str(base), "plugin")  # writes plugin.crt / plugin.key
    e = Env()
    e.cert_der = cert_der
    names = ["https2http", "https2http_h1", "https2http_cert", "https2http_enc", "https2http_down",
             "https2http_cut", "http2http", "http2https", "https2https"]
    cutter = socket.create_server((LOCALHOST, 0))
    threading.Thread(target=_cut_short, args=(cutter,), daemon=True).start()
    e.ports = {n: free_port() for n in names}
    bind = free_port()
    p_addr = f"{LOCALHOST}:{plain.port}"
    s_addr = f"{LOCALHOST}:{secure.port}"
    dead = free_port()
    launcher = FrpLauncher(base / "frp")
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN))
        frps.wait_for_log(r"frps started successfully", 15)
        e.frpc = launcher.ours_frpc(frpc_config(
            bind,
            plugin_proxy("https2http", e.ports["https2http"], "https2http", localAddr=p_addr,
                         requestHeaders__set__x_from_where="frp"),
            plugin_proxy("https2http_h1", e.ports["https2http_h1"], "https2http", localAddr=p_addr,
                         enableHTTP2=False, hostHeaderRewrite="backend.example"),
            plugin_proxy("https2http_cert", e.ports["https2http_cert"], "https2http", localAddr=p_addr,
                         crtPath=str(base / "plugin.crt"), keyPath=str(base / "plugin.key")),
            plugin_proxy("https2http_enc", e.ports["https2http_enc"], "https2http",
                         "transport.useEncryption = true\ntransport.useCompression = true\n", localAddr=p_addr),
            plugin_proxy("https2http_down", e.ports["https2http_down"], "https2http", localAddr=f"{LOCALHOST}:{dead}"),
            plugin_proxy("https2http_cut", e.ports["https2http_cut"], "https2http",
                         localAddr=f"{LOCALHOST}:{cutter.getsockname()[1]}"),
            plugin_proxy("http2http", e.ports["http2http"], "http2http", localAddr=p_addr,
                         hostHeaderRewrite="rewritten.example"),
            plugin_proxy("http2https", e.ports["http2https"], "http2https", localAddr=s_addr,
                         requestHeaders__set__x_from_where="frp"),
            plugin_proxy("https2https", e.ports["https2https"], "https2https", localAddr=s_addr),
            token=TOKEN,
        ).replace("x_from_where", "x-from-where"))
        for n in names:
            if n != "https2http_cut":
                poll(lambda n=n: curl(e.url(n, "/ping")).returncode == 0, 30, f"{n} answering")
        yield e
    finally:
        launcher.kill_all()
        cutter.close()
        plain.stop()
        secure.stop()


def test_https2http_http1(env: Env) -> None:
    info = echo(env.url("https2http", "/a/b?x=1"), "--http1.1", "-H", "X-Forwarded-For: 10.9.8.7")
    assert info["curl_version"] == "1.1" and info["backend"] == "plain"
    assert info["path"] == "/a/b?x=1"
    assert header(info, "Host") == [f"{LOCALHOST}:{env.ports['https2http']}"]
    # Go: r.Out.Header["X-Forwarded-For"] = r.In...; r.SetXForwarded() appends the client IP
    assert header(info, "X-Forwarded-For") == [f"10.9.8.7, {LOCALHOST}"]
    assert header(info, "X-Forwarded-Host") == [f"{LOCALHOST}:{env.ports['https2http']}"]
    assert header(info, "X-Forwarded-Proto") == ["https"]
    assert header(info, "X-From-Where") == ["frp"]


def test_https2http_http2(env: Env, tmp_path: Path) -> None:
    info = echo(env.url("https2http", "/h2?y=2"), "--http2", "-H", "Cookie: a=1", "-H", "Cookie: b=2")
    assert info["curl_version"] == "2"
    assert info["version"] == "1.1"  # the upstream is still spoken to in HTTP/1.1, as Go
    assert header(info, "X-Forwarded-For") == [LOCALHOST]
    assert header(info, "Host") == [f"{LOCALHOST}:{env.ports['https2http']}"]
    # a large download and upload over h2, both streamed
    size = 20 * 1024 * 1024 + 17
    out = tmp_path / "big"
    r = curl("--http2", "-o", str(out), "-w", "%{http_code} %{http_version}",
             env.url("https2http", f"/big?size={size}"), timeout=90)
    assert r.returncode == 0 and r.stdout == b"200 2", (r.stdout, r.stderr)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(size)
    up = tmp_path / "up"
    data = os.urandom(6 * 1024 * 1024)
    up.write_bytes(data)
    for version in ("--http2", "--http1.1"):
        status, got_version, body = get(env.url("https2http", "/upload"), version, "--data-binary", f"@{up}")
        assert status == 200 and got_version == version[6:]
        assert json.loads(body) == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # several requests at once on one h2 connection
    urls = [env.url("https2http", f"/many/{i}") for i in range(8)]
    r = curl("--http2", "-Z", *[a for u in urls for a in (u, "-o", os.devnull)], "-w", "%{http_code}\n")
    assert r.returncode == 0 and r.stdout.split() == [b"200"] * 8, r.stdout
    # a streamed (chunked) response arrives chunk by chunk over h2 as well
    status, _, body = get(env.url("https2http", "/stream?n=3&delay=0.05"), "--http2")
    assert (status, body) == (200, b"chunk-0\nchunk-1\nchunk-2\n")


def test_enable_http2_false_and_host_rewrite(env: Env) -> None:
    info = echo(env.url("https2http_h1", "/"), "--http2")
    assert info["curl_version"] == "1.1"  # h2 not offered by ALPN
    assert header(info, "Host") == ["backend.example"]
    assert header(info, "X-Forwarded-Host") == [f"{LOCALHOST}:{env.ports['https2http_h1']}"]


def test_misdirected_request(env: Env) -> None:
    port = env.ports["https2http"]
    # SNI a.example, Host b.example: Go answers 421
    status, _, _ = get(f"https://a.example:{port}/", "--connect-to", f"a.example:{port}:{LOCALHOST}:{port}",
                       "-H", "Host: b.example", "--http1.1")
    assert status == 421
    status, _, _ = get(f"https://a.example:{port}/", "--connect-to", f"a.example:{port}:{LOCALHOST}:{port}",
                       "-H", "Host: b.example", "--http2")
    assert status == 421
    info = echo(f"https://a.example:{port}/", "--connect-to", f"a.example:{port}:{LOCALHOST}:{port}")
    assert header(info, "Host") == [f"a.example:{port}"]


def test_certificate_files_and_generated(env: Env) -> None:
    def served(port: int) -> bytes:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((LOCALHOST, port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
        assert der is not None
        return der

    assert served(env.ports["https2http_cert"]) == env.cert_der
    generated = served(env.ports["https2http"])
    assert generated != env.cert_der and generated == served(env.ports["https2http"])


def test_websocket_passes_through(env: Env) -> None:
    async def run(url: str) -> None:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, ssl=False, timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
            for i in range(5):
                await ws.send_str(f"hello {i}")
                assert (await ws.receive(timeout=10)).data == f"hello {i}"
            blob = os.urandom(300_000)
            await ws.send_bytes(blob)
            assert (await ws.receive(timeout=10)).data == blob

    for name in ("https2http", "https2http_h1", "http2http", "http2https", "https2https"):
        asyncio.run(run(env.url(name, "/ws")))


def test_http2http_drops_forwarded_headers(env: Env) -> None:
    info = echo(env.url("http2http", "/p"), "-H", "X-Forwarded-For: 10.0.0.1", "-H", "X-Forwarded-Proto: ftp")
    assert header(info, "Host") == ["rewritten.example"]
    assert header(info, "X-Forwarded-For") == [] and header(info, "X-Forwarded-Proto") == []


def test_http2https_and_https2https(env: Env) -> None:
    info = echo(env.url("http2https", "/s"), "-H", "X-Forwarded-For: 10.0.0.1")
    assert info["backend"] == "secure"
    assert header(info, "X-Forwarded-For") == ["10.0.0.1"]  # Go copies the browser's, adds nothing
    assert header(info, "X-From-Where") == ["frp"]
    for version in ("--http1.1", "--http2"):
        info = echo(env.url("https2https", "/s"), version)
        assert info["backend"] == "secure" and info["curl_version"] == version[6:]
        assert header(info, "X-Forwarded-Proto") == ["https"]
        assert header(info, "X-Forwarded-For") == [LOCALHOST]


def test_encrypted_compressed_proxy(env: Env, tmp_path: Path) -> None:
    size = 8 * 1024 * 1024
    out = tmp_path / "enc"
    for version in ("--http1.1", "--http2"):
        r = curl(version, "-o", str(out), env.url("https2http_enc", f"/big?size={size}"), timeout=90)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(size)


def test_unreachable_local_addr(env: Env) -> None:
    for version in ("--http1.1", "--http2"):
        status, _, body = get(env.url("https2http_down", "/"), version)
        assert (status, body) == (502, b"")
    env.frpc.wait_for_log(r"\[W\] .*\[https2http_down\] http: proxy error: ", 10)


def test_garbage_fails_alone_and_logs_stay_clean(env: Env) -> None:
    """Junk on the plugin's port (plain and TLS) and an upstream that hangs up mid-body fail only
    that connection or stream; no traceback anywhere."""
    # the body breaks off within the 2 KiB (4 KiB over HTTP/2) Go's server holds before the head:
    # nothing reaches the client but the close (curl: empty reply) or the stream's reset
    for version, code in (("--http1.1", 52), ("--http2", 92)):
        r = curl(version, env.url("https2http_cut", "/"), "-o", os.devnull)
        assert r.returncode == code, (version, r.returncode, r.stderr)
    env.frpc.wait_for_log(r"\[W\] .*\[https2http_cut\] http: proxy error: ", 10)
    for name in ("http2http", "https2http"):
        with socket.create_connection((LOCALHOST, env.ports[name]), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello" if name == "http2http" else b"GET / HTTP/1.1\r\n\r\n")
            s.settimeout(10)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
    assert echo(env.url("https2http", "/after"))["path"] == "/after"
    env.frpc.wait_for_log(r"\[I\] .*\[https2http\] http: TLS handshake error from 127\.0\.0\.1: ", 10)
    log = env.frpc.log_text()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


def test_https_vhost_proxy_with_https2http(frp) -> None:
    """frp's own recipe: an ``https`` proxy (frps routes by SNI) whose plugin terminates TLS."""
    bind, vhost = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPSPort=vhost))
    frps.wait_for_log(r"frps started successfully", 15)
    with WebBackend("plain") as backend:
        frpc = frp.ours_frpc(frpc_config(
            bind,
            '\n[[proxies]]\nname = "secure"\ntype = "https"\ncustomDomains = ["secure.example"]\n'
            f'[proxies.plugin]\ntype = "https2http"\nlocalAddr = "{LOCALHOST}:{backend.port}"\n',
            token=TOKEN,
        ))
        frpc.wait_for_proxies("secure", timeout=20)
        url = f"https://secure.example:{vhost}/via-sni"
        for version in ("--http1.1", "--http2"):
            info = echo(url, version, "--resolve", f"secure.example:{vhost}:{LOCALHOST}")
            assert info["curl_version"] == version[6:] and info["path"] == "/via-sni"
            assert header(info, "Host") == [f"secure.example:{vhost}"]
            assert header(info, "X-Forwarded-For") == [LOCALHOST]
