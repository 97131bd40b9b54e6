"""Slowloris and oversized heads on every vhost port of a real frps (issue 13, item 3): http,
https (SNI) and tcpmux (HTTP CONNECT).

* A client that sends its head a byte at a time and never finishes is closed within the deadline
  (http: ``ReadHeaderTimeout``, https/tcpmux: Go's 30 s ``vhostReadWriteTimeout``, both counted
  from the accept; here set to 2 s through ``AIOFRP_VHOST_READ_HEADER_TIMEOUT`` and
  ``AIOFRP_VHOST_MUX_TIMEOUT``), with one log line per connection.
* A client that sends a huge head is closed once it is over the port's limit, with a log line:
  http: 431 past 1 MiB + 4 KiB (Go's limit), so 2 MiB there; https: a ClientHello over
  64 KiB + 4 KiB, here 1 MiB in 1-byte records; tcpmux: a CONNECT request over 64 KiB, here 1 MiB.
  Garbage that is no ClientHello is closed at once.
* Meanwhile normal requests on the same port are served, and afterwards frps's fds are back
  to their baseline.
"""

from __future__ import annotations

import itertools
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.hostile import fd_count
from support.httpd import RawClient, WebBackend, proxy_block, tls_server_context
from support.procs import LOCALHOST, FrpLauncher, FrpProcess, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = pytest.mark.timeout(120)

TOKEN = "e2e-slowloris-token"
TIMEOUT = 2.0  # the head deadlines given to frps
MARGIN = 6.0  # what a loaded machine may add to them
MIB = 1 << 20


@dataclass
class Env:
    frps: FrpProcess
    frpc: FrpProcess
    ports: dict[str, int]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("slowloris")
    launcher = FrpLauncher(tmp)
    tls_ctx, _ = tls_server_context(str(tmp), "s")
    web = WebBackend("W").start()
    tls_web = WebBackend("T", ssl_context=tls_ctx).start()
    bind, hport, sport, mport = free_port(), free_port(), free_port(), free_port()
    env_vars = {"PYTHONUNBUFFERED": "1", "AIOFRP_VHOST_READ_HEADER_TIMEOUT": str(TIMEOUT),
                "AIOFRP_VHOST_MUX_TIMEOUT": str(TIMEOUT)}
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=hport, vhostHTTPSPort=sport,
                                              tcpmuxHTTPConnectPort=mport),
                                  env={**os.environ, **env_vars})
        frps.wait_for_log("frps started successfully", 15)
        frpc = launcher.ours_frpc(frpc_config(
            bind,
            proxy_block("http", "web", web.port, customDomains=["a.example.com"]),
            proxy_block("https", "tls", tls_web.port, customDomains=["a.example.com"]),
            proxy_block("tcpmux", "mux", web.port, customDomains=["a.example.com"], multiplexer="httpconnect"),
            token=TOKEN))
        frpc.wait_for_proxies("web", "tls", "mux", timeout=20)
        yield Env(frps, frpc, {"http": hport, "https": sport, "tcpmux": mport})
    finally:
        launcher.kill_all()
        web.stop()
        tls_web.stop()


def served(env: Env, kind: str) -> bool:
    """One normal request on the ``kind`` port gets the service's answer."""
    port = env.ports[kind]
    if kind == "https":
        with RawClient(port, tls=True, server_name="a.example.com") as c:
            return c.request("GET", "/", "a.example.com", {"Connection": "close"}).header("X-Backend") == "T"
    with RawClient(port) as c:
        if kind == "tcpmux":
            c.send(b"CONNECT a.example.com:443 HTTP/1.1\r\nHost: a.example.com:443\r\n\r\n")
            if c.read_response().status != 200:
                return False
        return c.request("GET", "/", "a.example.com").header("X-Backend") == "W"


def endless_head(kind: str) -> Iterator[bytes]:
    """A head that never ends, one byte at a time."""
    if kind == "https":
        # a ClientHello announced at 64 KiB, carried in 1-byte records: valid as far as it goes
        start = b"\x16\x03\x01\x00\x01\x01" + b"\x16\x03\x01\x00\x01\x00" + b"\x16\x03\x01\x00\x01\xff"
        for b in itertools.chain(start, itertools.cycle(b"\x16\x03\x01\x00\x01\x00")):
            yield bytes([b])
    start = b"GET / HTTP/1.1\r\n" if kind == "http" else b"CONNECT a.example.com:443 HTTP/1.1\r\n"
    for b in start + b"Host: a.example.com\r\n":
        yield bytes([b])
    for b in itertools.cycle(b"X-Slow: 1\r\n"):
        yield bytes([b])


def oversized_head(kind: str) -> bytes:
    if kind == "https":
        hello = b"\x01\x00\xff\xff" + bytes(MIB)
        return b"".join(b"\x16\x03\x01\x00\x01" + hello[i : i + 1] for i in range(MIB // 6))
    if kind == "http":  # its limit is Go's 1 MiB + 4 KiB (http.DefaultMaxHeaderBytes)
        return b"GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Big: " + b"x" * (2 * MIB) + b"\r\n\r\n"
    return b"CONNECT a.example.com:443 HTTP/1.1\r\nHost: a.example.com\r\nX-Big: " + b"x" * MIB + b"\r\n\r\n"


def drip(port: int, head: Iterator[bytes], deadline: float) -> float | None:
    """Send ``head`` a byte every 50 ms until the server closes the connection; the seconds that
    took, or None if it was still open at ``deadline``. Each wait is a read with a timeout: a
    close shows at once."""
    t0 = time.monotonic()
    with socket.create_connection((LOCALHOST, port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in head:
            if time.monotonic() > deadline:
                return None
            try:
                s.sendall(byte)
                s.settimeout(0.05)
                if s.recv(4096) == b"":
                    return time.monotonic() - t0
            except TimeoutError:
                continue
            except OSError:  # reset
                return time.monotonic() - t0
    return None


def baseline_fds(env: Env) -> int:
    assert env.frps.pid is not None and env.frpc.pid is not None
    return fd_count(env.frps.pid, minus_peers_of=(env.frpc.pid,))


LOG_SLOW = {
    "http": r"http request head from 127\.0\.0\.1:\d+ not complete in 2s, closing",
    "https": r"https connection from 127\.0\.0\.1:\d+: no complete ClientHello in 2s, closing",
    "tcpmux": r"tcpmux connection from 127\.0\.0\.1:\d+: no complete CONNECT request in 2s, closing",
}
LOG_BIG = {
    "http": r"http request head from 127\.0\.0\.1:\d+ over 1052672 bytes, closing",
    "https": r"https connection from 127\.0\.0\.1:\d+: ClientHello over 69632 bytes, closing",
    "tcpmux": r"tcpmux connection from 127\.0\.0\.1:\d+: CONNECT request over 65536 bytes, closing",
}


@pytest.mark.parametrize("kind", ["http", "https", "tcpmux"])
def test_slowloris_closed_at_the_deadline_others_served(env: Env, kind: str):
    port = env.ports[kind]
    assert served(env, kind)
    base = baseline_fds(env)
    mark = env.frps.mark()
    deadline = time.monotonic() + TIMEOUT + MARGIN
    results: list[float | None] = []
    threads = [threading.Thread(target=lambda: results.append(drip(port, endless_head(kind), deadline)))
               for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # while the slow heads hang, others are served on the same port (and on the others)
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            assert served(env, kind)
            assert served(env, "http" if kind != "http" else "tcpmux")
    finally:
        for t in threads:
            t.join(TIMEOUT + MARGIN + 5)
    assert len(results) == 4 and all(r is not None for r in results), f"still open at the deadline: {results}"
    assert all(r >= TIMEOUT - 0.5 for r in results if r is not None), f"closed before the deadline: {results}"
    env.frps.wait_for_log(LOG_SLOW[kind], 5, since=mark)
    assert served(env, kind)
    poll(lambda: baseline_fds(env) <= base, 15, f"frps's fds back to {base}")


@pytest.mark.parametrize("kind", ["http", "https", "tcpmux"])
def test_oversized_head_closed_at_the_limit(env: Env, kind: str):
    port = env.ports[kind]
    assert served(env, kind)
    base = baseline_fds(env)
    mark = env.frps.mark()
    with RawClient(port, timeout=10) as c:
        try:
            c.send(oversized_head(kind))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: what we want
        if kind == "http":
            assert c.read_response().status == 431
        assert c.closed_by_peer(TIMEOUT + MARGIN)
    env.frps.wait_for_log(LOG_BIG[kind], 5, since=mark)
    assert served(env, kind)
    poll(lambda: baseline_fds(env) <= base, 15, f"frps's fds back to {base}")


def test_https_garbage_closed_at_once(env: Env):
    """1 MiB that is no ClientHello (a record of the wrong version) is closed without waiting for
    the deadline, as Go does (a debug line only, as Go)."""
    port = env.ports["https"]
    base = baseline_fds(env)
    t0 = time.monotonic()
    with RawClient(port, timeout=10) as c:
        try:
            c.send(b"\x16\x09\x09" + b"\xff" * MIB)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.closed_by_peer(TIMEOUT + MARGIN)
    assert time.monotonic() - t0 < TIMEOUT + MARGIN
    with pytest.raises(ssl.SSLError):  # a TLS client that sends no SNI is refused with an alert
        RawClient(port, tls=True, server_name=None).close()
    assert served(env, "https")
    poll(lambda: baseline_fds(env) <= base, 15, f"frps's fds back to {base}")
