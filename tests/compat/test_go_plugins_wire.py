"""Client plugins on the wire, Go frpc 0.65.0 beside our frpc behind one Go frps: the same bytes in,
the same bytes out, where the answers come from the plugin itself rather than from the local service.

* ``http_proxy``: a CONNECT head Go cannot read is closed without an answer; net/http's own words for
  a head it refuses (``400 Bad Request: missing required Host header``, ``505``); no ``Server``
  header on the plugin's own answers (407, 500); what Go's transport adds to a forwarded request
  (``User-Agent: Go-http-client/1.1``, ``Connection: close`` for a request that closes); Go's lookup
  error text.
* the aiohttp-served plugins (``static_file``, ``http2http``, ``https2http``): a request head the
  server refuses gets Go's ``400 Bad Request`` / ``505`` / ``501`` bytes (not aiohttp's page, which
  echoes the request and names aiohttp); a bad ``%`` escape is a 400; ``static_file`` serves an
  absolute-form target by its path and answers a NUL in the path with 500.
* the reverse proxies: ``Forwarded`` dropped, an absolute-form target sent as its path, a request
  without Host sent with ``Host: localAddr``, the local service's own ``Server`` header passed on.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from pathlib import Path

import pytest
from support.httpd import WebBackend
from support.plugin_services import plugin_proxy
from support.procs import LOCALHOST, free_port, frpc_config, frps_config

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "compat-plugins-wire"
IMPLS = ("go", "ours")


def exchange(port: int, data: bytes, *, tls: bool = False, idle: float = 1.0, total: float = 8.0) -> tuple[bytes, bool]:
    """Send ``data``; read until the peer closes or is quiet for ``idle`` s: (bytes, closed)."""
    s: socket.socket = socket.create_connection((LOCALHOST, port), timeout=total)
    if tls:
        s = ssl._create_unverified_context().wrap_socket(s, server_hostname="front.example")
    got, closed, end = b"", False, time.monotonic() + total
    s.settimeout(idle)
    with s:
        s.sendall(data)
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            except (ConnectionResetError, ssl.SSLError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
    return got, closed


def semantic(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers lower-cased and sorted with Date masked, body) of one answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers.append((k, "DATE" if k == "date" else v.strip()))
    return lines[0], sorted(headers), body


def start_pair(frp, blocks) -> dict[str, dict[str, int]]:
    """Go frps, then Go frpc and our frpc with the same proxies (``blocks(impl, ports)`` -> texts)."""
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 15)
    ports: dict[str, dict[str, int]] = {}
    for impl in IMPLS:
        q: dict[str, int] = {}
        ports[impl] = q
        texts = blocks(impl, q)
        proc = (frp.go_frpc if impl == "go" else frp.ours_frpc)(frpc_config(bind, *texts, token=TOKEN))
        proc.wait_for_proxies(*[f"{impl}-{n}" for n in q], timeout=20)
    return ports


def test_http_proxy_own_answers_as_go(frp) -> None:
    with WebBackend("plain") as web:
        def blocks(impl: str, q: dict[str, int]) -> list[str]:
            q.update(hp=free_port(), hpa=free_port())
            return [
                plugin_proxy(f"{impl}-hp", "tcp", {"type": "http_proxy"}, remotePort=q["hp"]),
                plugin_proxy(f"{impl}-hpa", "tcp", {"type": "http_proxy", "httpUser": "u", "httpPassword": "p"},
                             remotePort=q["hpa"]),
            ]

        ports = start_pair(frp, blocks)
        target = f"{LOCALHOST}:{web.port}"
        raw_cases = [  # no Date in these: byte for byte
            ("hp", b"CONNECT\r\n\r\n"),                                   # Go closes, no answer
            ("hp", f"connect {target} HTTP/1.1\r\n\r\n".encode()),       # idem (lower case)
            ("hp", b"GET /x HTTP/1.1\r\n\r\n"),                           # missing required Host header
            ("hp", b"GET http://x/ HTTP/9.9\r\nHost: x\r\n\r\n"),         # 505
        ]
        for which, data in raw_cases:
            got = {impl: exchange(ports[impl][which], data) for impl in IMPLS}
            assert got["ours"] == got["go"], (data, got)
        answer_cases = [
            ("hpa", f"GET http://{target}/x HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()),   # 407
            ("hp", b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n"),                              # 500
        ]
        for which, data in answer_cases:
            sem = {impl: semantic(exchange(ports[impl][which], data)[0]) for impl in IMPLS}
            assert sem["ours"] == sem["go"], (data, sem)

        # what the local service receives: Go's transport adds User-Agent (when none) and
        # Connection: close (HTTP/1.0); Accept-Encoding: gzip is a known, kept difference
        for data in (f"GET http://{target}/a HTTP/1.1\r\nHost: {target}\r\n\r\n".encode(),
                     f"GET http://{target}/b HTTP/1.0\r\n\r\n".encode()):
            seen = {}
            for impl in IMPLS:
                raw, _ = exchange(ports[impl]["hp"], data)
                info = json.loads(raw.partition(b"\r\n\r\n")[2])
                seen[impl] = sorted((k, v) for k, v in info["headers"] if k != "Accept-Encoding")
            assert seen["ours"] == seen["go"], (data, seen)

        # an unresolvable name: Go's lookup error text (the resolver's words vary with the machine)
        data = b"GET http://no.invalid/ HTTP/1.1\r\nHost: no.invalid\r\n\r\n"
        sem = {impl: semantic(exchange(ports[impl]["hp"], data, idle=3.0)[0]) for impl in IMPLS}
        if sem["go"][2].endswith(b": no such host\n"):
            assert sem["ours"] == sem["go"]


def test_http_servers_refuse_as_go(frp, tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello, static world\n")
    with WebBackend("plain") as web:
        addr = f"{LOCALHOST}:{web.port}"

        def blocks(impl: str, q: dict[str, int]) -> list[str]:
            q.update(sf=free_port(), h2h=free_port(), s2h=free_port())
            return [
                plugin_proxy(f"{impl}-sf", "tcp", {"type": "static_file", "localPath": str(root)}, remotePort=q["sf"]),
                plugin_proxy(f"{impl}-h2h", "tcp", {"type": "http2http", "localAddr": addr}, remotePort=q["h2h"]),
                plugin_proxy(f"{impl}-s2h", "tcp", {"type": "https2http", "localAddr": addr}, remotePort=q["s2h"]),
            ]

        ports = start_pair(frp, blocks)
        refused = [
            b"GARBAGE\r\n\r\n",
            b"GET /hello.txt HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.5\r\nHost: front.example\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: front.example\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET /%zz HTTP/1.1\r\nHost: front.example\r\n\r\n",
        ]
        for which in ("sf", "h2h", "s2h"):
            for data in refused:
                got = {impl: exchange(ports[impl][which], data, tls=which == "s2h") for impl in IMPLS}
                assert got["ours"] == got["go"], (which, data, got)
        for data in (b"GET http://x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /hello.txt%00 HTTP/1.1\r\nHost: x\r\n\r\n"):
            sem = {impl: semantic(exchange(ports[impl]["sf"], data)[0]) for impl in IMPLS}
            assert sem["ours"] == sem["go"], (data, sem)


def test_reverse_proxy_requests_as_go(frp) -> None:
    with WebBackend("plain") as web:
        addr = f"{LOCALHOST}:{web.port}"

        def blocks(impl: str, q: dict[str, int]) -> list[str]:
            q.update(h2h=free_port(), s2h=free_port())
            return [
                plugin_proxy(f"{impl}-h2h", "tcp", {"type": "http2http", "localAddr": addr}, remotePort=q["h2h"]),
                plugin_proxy(f"{impl}-s2h", "tcp", {"type": "https2http", "localAddr": addr}, remotePort=q["s2h"]),
            ]

        ports = start_pair(frp, blocks)
        cases = [
            ("h2h", b"GET /f HTTP/1.1\r\nHost: front.example\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 9.9.9.9\r\n\r\n"),
            ("s2h", b"GET /f HTTP/1.1\r\nHost: front.example\r\nForwarded: for=1.2.3.4\r\n\r\n"),
            ("h2h", b"GET http://abs.example/x?y=1 HTTP/1.1\r\nHost: front.example\r\n\r\n"),
            ("h2h", b"GET /ten HTTP/1.0\r\n\r\n"),
        ]
        for which, data in cases:
            seen = {}
            for impl in IMPLS:
                raw, _ = exchange(ports[impl][which], data, tls=which == "s2h")
                status, headers, body = semantic(raw)
                info = json.loads(body)
                upstream = sorted((k, re.sub(r"\d+$", "PORT", v) if k == "X-Forwarded-For" else v)
                                  for k, v in info["headers"] if k != "Accept-Encoding")
                # the local service's own Server header comes back (an aiohttp app's included)
                answer = [(k, v) for k, v in headers if k != "content-length"]
                seen[impl] = (status, answer, info["method"], info["path"], upstream)
            assert seen["ours"] == seen["go"], (which, data, seen)
