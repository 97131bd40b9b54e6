"""The HTTP client plugins against Go frp 0.65.0: Go frps with our frpc's plugins, and our plugins
side by side with Go frpc's on the same files and backend (same requests, same answers).

Go frps carries our frpc's ``static_file``/``https2http``/``http2http`` work connections on tcp
proxies and on an ``http`` (vhost) proxy, with TLS + tcpMux to frps and with encryption +
compression; HTTP/2 and WebSocket pass. The side-by-side part sends the same requests to Go
frpc's plugin and to ours and compares status, the headers that carry meaning, and bodies.
Known, deliberate differences are listed where they are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.httpd import WebBackend
from support.procs import LOCALHOST, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-plugins-token"
COMPARED = ("content-type", "content-range", "content-length", "location", "www-authenticate",
            "accept-ranges", "last-modified", "content-encoding", "x-content-type-options", "server")


def curl(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "-k", "--path-as-is", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 5, check=False)


def fetch(url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    r = curl("-D", "-", url, *args)
    assert r.returncode == 0, (url, r.stderr)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def plugin_proxy(name: str, remote: int, plugin: str, proxy_keys: str = "", **keys: object) -> str:
    text = f'\n[[proxies]]\nname = "{name}"\ntype = "tcp"\nremotePort = {remote}\n{proxy_keys}'
    text += f'[proxies.plugin]\ntype = "{plugin}"\n'
    for k, v in keys.items():
        val = f'"{v}"' if isinstance(v, str) else str(v).lower()
        text += f"{k} = {val}\n"
    return text


def make_site(root: Path) -> None:
    (root / "sub dir").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "hello.txt").write_text("hello, static world\n")
    (root / "page.html").write_text("<html><body>hi</body></html>\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 40)
    (root / "noext").write_text("plain text without an extension\n")
    (root / "sub dir" / "a&b <c>.txt").write_text("odd name\n")
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_text("<html>index page</html>\n")
    os.utime(root / "hello.txt", (1_700_000_000, 1_700_000_000))


def test_our_plugins_through_go_frps(frp, tmp_path: Path) -> None:
    root = tmp_path / "www"
    make_site(root)
    bind, vhost = free_port(), free_port()
    ports = {n: free_port() for n in ("static", "static_enc", "https2http", "http2http")}
    frps = frp.go_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vhost))
    frps.wait_for_log(r"frps started successfully", 15)
    with WebBackend("plain") as backend:
        addr = f"{LOCALHOST}:{backend.port}"
        frpc = frp.ours_frpc(frpc_config(
            bind,
            plugin_proxy("static", ports["static"], "static_file", localPath=str(root)),
            plugin_proxy("static_enc", ports["static_enc"], "static_file",
                         "transport.useEncryption = true\ntransport.useCompression = true\n", localPath=str(root)),
            plugin_proxy("https2http", ports["https2http"], "https2http", localAddr=addr),
            plugin_proxy("http2http", ports["http2http"], "http2http", localAddr=addr),
            '\n[[proxies]]\nname = "web"\ntype = "http"\ncustomDomains = ["files.example"]\n'
            f'[proxies.plugin]\ntype = "static_file"\nlocalPath = "{root}"\n',
            token=TOKEN, tls=True, tcp_mux=True,
        ))
        frpc.wait_for_proxies("static", "static_enc", "https2http", "http2http", "web", timeout=20)
        for name in ("static", "static_enc"):
            status, _, body = fetch(f"http://{LOCALHOST}:{ports[name]}/hello.txt")
            assert (status, body) == (200, b"hello, static world\n")
        status, _, body = poll(lambda: (r := fetch(f"http://{LOCALHOST}:{vhost}/hello.txt", "-H",
                                                   "Host: files.example"))[0] == 200 and r, 10, "vhost static_file")
        assert body == b"hello, static world\n"
        for version in ("--http1.1", "--http2"):
            r = curl(version, "-w", "\n%{http_version}", f"https://{LOCALHOST}:{ports['https2http']}/x")
            body, _, got = r.stdout.rpartition(b"\n")
            assert got.decode() == version[6:] and json.loads(body)["path"] == "/x"

        async def ws(url: str) -> None:
            async with aiohttp.ClientSession() as s, s.ws_connect(url, ssl=False) as w:
                await w.send_str("over go frps")
                assert (await w.receive(timeout=10)).data == "over go frps"

        asyncio.run(ws(f"https://{LOCALHOST}:{ports['https2http']}/ws"))
        asyncio.run(ws(f"http://{LOCALHOST}:{ports['http2http']}/ws"))


STATIC_REQUESTS: list[tuple[str, tuple[str, ...]]] = [
    ("/hello.txt", ()),
    ("/page.html", ()),
    ("/data.bin", ()),
    ("/noext", ()),
    ("/", ()),
    ("/sub%20dir/", ()),
    ("/sub%20dir", ()),
    ("/empty/", ()),
    ("/withindex/", ()),
    ("/withindex/index.html", ()),
    ("/withindex", ()),
    ("/hello.txt/", ()),
    ("/nope", ()),
    ("/../hello.txt", ()),
    ("/%2e%2e/hello.txt", ()),
    ("/..%2fhello.txt", ()),
    ("/sub%20dir/../hello.txt?q=1", ()),
    ("/hello.txt", ("-H", "Range: bytes=0-4")),
    ("/hello.txt", ("-H", "Range: bytes=-5")),
    ("/hello.txt", ("-H", "Range: bytes=5-")),
    ("/hello.txt", ("-H", "Range: bytes=50-60")),
    ("/hello.txt", ("-H", "Range: bytes=x-y")),
    ("/hello.txt", ("-H", "Range: bytes=0-1,4-5")),
    ("/hello.txt", ("-H", "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT")),
    ("/hello.txt", ("-H", "If-Modified-Since: Tue, 14 Nov 2023 22:13:19 GMT")),
    ("/hello.txt", ("-H", "If-Unmodified-Since: Tue, 14 Nov 2023 22:13:19 GMT")),
    ("/hello.txt", ("-H", "Range: bytes=0-4", "-H", "If-Range: Tue, 14 Nov 2023 22:13:20 GMT")),
    ("/hello.txt", ("-H", "Range: bytes=0-4", "-H", "If-Range: Tue, 14 Nov 2023 22:13:21 GMT")),
    ("/hello.txt", ("-X", "POST")),
    ("/hello.txt", ("-I",)),
    ("/hello.txt", ("--compressed",)),
]


def _norm(body: bytes, headers: dict[str, str]) -> bytes:
    m = re.search(r"boundary=(\w+)", headers.get("content-type", ""))  # before it is normalised
    if m:
        body = body.replace(m[1].encode(), b"BOUNDARY")
    return body


def test_static_file_answers_as_go(frp, tmp_path: Path) -> None:
    root = tmp_path / "www"
    make_site(root)
    bind = free_port()
    go_port, our_port, go_auth, our_auth = free_port(), free_port(), free_port(), free_port()
    frps = frp.go_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 15)
    auth = {"stripPrefix": "pre", "httpUser": "u", "httpPassword": "p"}
    go = frp.go_frpc(frpc_config(bind, plugin_proxy("go", go_port, "static_file", localPath=str(root)),
                                 plugin_proxy("go_auth", go_auth, "static_file", localPath=str(root), **auth),
                                 token=TOKEN))
    ours = frp.ours_frpc(frpc_config(bind, plugin_proxy("ours", our_port, "static_file", localPath=str(root)),
                                     plugin_proxy("ours_auth", our_auth, "static_file", localPath=str(root), **auth),
                                     token=TOKEN))
    go.wait_for_proxies("go", "go_auth", timeout=20)
    ours.wait_for_proxies("ours", "ours_auth", timeout=20)
    cases = [(go_port, our_port, p, a) for p, a in STATIC_REQUESTS]
    cases += [(go_auth, our_auth, p, a) for p, a in [
        ("/pre/hello.txt", ()), ("/pre/hello.txt", ("-u", "u:p")), ("/pre/hello.txt", ("-u", "u:x")),
        ("/hello.txt", ()), ("/pre/", ("-u", "u:p")), ("/pre", ("-u", "u:p")),
    ]]
    diffs = []
    for gp, op, path, args in cases:
        gs, gh, gb = fetch(f"http://{LOCALHOST}:{gp}{path}", *args)
        os_, oh, ob = fetch(f"http://{LOCALHOST}:{op}{path}", *args)
        want: dict[str, Any] = {"status": gs, "body": _norm(gb, gh)}
        got: dict[str, Any] = {"status": os_, "body": _norm(ob, oh)}
        for h in (gh, oh):
            if "boundary=" in h.get("content-type", ""):
                h["content-type"] = h["content-type"].split("boundary=")[0] + "boundary=BOUNDARY"
        for k in COMPARED:
            if k == "content-length" and "--compressed" in args:
                continue  # gzip: both chunked, no length
            want[k], got[k] = gh.get(k), oh.get(k)
        if "--compressed" in args:
            got["body"], want["body"] = ob, gb  # curl decompressed both
        if want != got:
            diffs.append((path, args, want, got))
    assert not diffs, "\n".join(f"{p} {a}:\n  go:   {w}\n  ours: {g}" for p, a, w, g in diffs)


def test_reverse_proxy_headers_as_go(frp) -> None:
    """The same request through Go's plugin and ours reaches the backend with the same headers."""
    bind = free_port()
    names = ["https2http", "http2http", "http2https", "https2https"]
    go_ports = {n: free_port() for n in names}
    our_ports = {n: free_port() for n in names}
    frps = frp.go_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 15)
    import tempfile

    from support.httpd import tls_server_context

    with tempfile.TemporaryDirectory() as d:
        ctx, _ = tls_server_context(d)
        with WebBackend("plain") as plain, WebBackend("secure", ssl_context=ctx) as secure:
            def addr(n: str) -> str:
                return f"{LOCALHOST}:{secure.port if n.endswith('2https') else plain.port}"

            extra = {"hostHeaderRewrite": "rewritten.example"}

            def blocks(ports: dict[str, int], prefix: str) -> list[str]:
                out = [plugin_proxy(f"{prefix}{n}", ports[n], n, localAddr=addr(n), **extra) for n in names]
                return [b + 'requestHeaders.set.x-added = "yes"\n' for b in out]

            go = frp.go_frpc(frpc_config(bind, *blocks(go_ports, "go_"), token=TOKEN))
            ours = frp.ours_frpc(frpc_config(bind, *blocks(our_ports, "ours_"), token=TOKEN))
            go.wait_for_proxies(*[f"go_{n}" for n in names], timeout=20)
            ours.wait_for_proxies(*[f"ours_{n}" for n in names], timeout=20)
            skip = {"date", "content-length"}
            for n in names:
                scheme = "https" if n.startswith("https") else "http"
                for version in ("--http1.1", "--http2") if scheme == "https" else ("--http1.1",):
                    args = (version, "-H", "X-Forwarded-For: 10.1.2.3", "-H", "X-Forwarded-Host: fwd.example",
                            "-H", "Connection: keep-alive, X-Hop", "-H", "X-Hop: gone", "-H", "x-lower-case: kept",
                            "-H", "Cookie: a=1", "-H", "Cookie: b=2")
                    seen = []
                    for ports in (go_ports, our_ports):
                        status, _, body = fetch(f"{scheme}://{LOCALHOST}:{ports[n]}/h?x=1", *args)
                        assert status == 200, (n, body)
                        info = json.loads(body)
                        hdrs = sorted((k, v) for k, v in info["headers"] if k.lower() not in skip)
                        hdrs = [(k, v.replace(str(ports[n]), "PORT")) for k, v in hdrs]
                        seen.append((info["method"], info["path"], hdrs))
                    go_seen, our_seen = seen
                    # Go's transport adds "Accept-Encoding: gzip" when the browser sent none (and
                    # decompresses transparently); we pass the browser's choice through.
                    go_seen = (go_seen[0], go_seen[1], [h for h in go_seen[2] if h != ("Accept-Encoding", "gzip")])
                    assert our_seen == go_seen, (n, version)


def _untyped_backend(server: socket.socket) -> None:
    """Keep-alive HTTP/1.1 answers with an HTML body and no Content-Type."""
    body = b"<!DOCTYPE html><html><body>untyped</body></html>"
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            buf = b""
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    while b"\r\n\r\n" in buf:
                        _, buf = buf.split(b"\r\n\r\n", 1)
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass


def test_missing_content_type_is_sniffed_as_go(frp) -> None:
    bind, go_port, our_port = free_port(), free_port(), free_port()
    backend = socket.create_server((LOCALHOST, 0))
    threading.Thread(target=_untyped_backend, args=(backend,), daemon=True).start()
    addr = f"{LOCALHOST}:{backend.getsockname()[1]}"
    try:
        frps = frp.go_frps(frps_config(bind, token=TOKEN))
        frps.wait_for_log(r"frps started successfully", 15)
        go = frp.go_frpc(frpc_config(bind, plugin_proxy("go", go_port, "https2http", localAddr=addr), token=TOKEN))
        ours = frp.ours_frpc(frpc_config(bind, plugin_proxy("ours", our_port, "https2http", localAddr=addr),
                                         token=TOKEN))
        go.wait_for_proxies("go", timeout=20)
        ours.wait_for_proxies("ours", timeout=20)
        for version in ("--http1.1", "--http2"):
            got = [fetch(f"https://{LOCALHOST}:{p}/", version)[1] for p in (go_port, our_port)]
            assert got[0].get("content-type") == got[1].get("content-type") == "text/html; charset=utf-8"
            for h in got:
                h.pop("date", None)
            assert got[0] == got[1], version
    finally:
        backend.close()
