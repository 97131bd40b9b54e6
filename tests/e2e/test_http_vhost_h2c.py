"""Cleartext HTTP/2 with prior knowledge on frps's vhost HTTP port (server/vhost/h2c.py), our frps +
our frpc + aiohttp services, spoken to by the ``h2`` library as the client: each stream routed by
its ``:authority`` like an HTTP/1.1 request (Go 0.70.1 does so; Go 0.65's h2c handler routed every
stream of a prior-knowledge connection by the preface's empty host, so it answered 404), basic
auth, X-Forwarded-For, request bodies with and without content-length, a response larger than the
flow-control windows, streams of one connection to two proxies at once, a malformed frame.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket

import h2.events
import pytest
from support.h2client import Answer, H2Client
from support.httpd import WebBackend, pattern_sha256, proxy_block
from support.procs import LOCALHOST, free_port, frpc_config, frps_config

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-h2c"
IDLE = 2.0  # seconds: frps's idle bound (AIOFRP_VHOST_READ_HEADER_TIMEOUT), an h2c connection's too


@pytest.fixture(scope="module")
def vhost(tmp_path_factory):
    from support.procs import FrpLauncher

    launcher = FrpLauncher(tmp_path_factory.mktemp("h2c"))
    a, b = WebBackend("A").start(), WebBackend("B").start()
    bind, vport = free_port(), free_port()
    try:
        env = {**os.environ, "AIOFRP_VHOST_READ_HEADER_TIMEOUT": str(IDLE)}
        launcher.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vport), env=env).wait_for_log(
            r"frps started successfully", 10)
        frpc = launcher.ours_frpc(frpc_config(
            bind,
            proxy_block("http", "web-a", a.port, customDomains=["a.example.com"]),
            proxy_block("http", "web-b", b.port, customDomains=["b.example.com"],
                        **{"transport.useEncryption": True}),
            proxy_block("http", "auth", a.port, customDomains=["auth.example.com"], httpUser="alice",
                        httpPassword="wonder"),
            token=TOKEN,
        ))
        frpc.wait_for_proxies("web-a", "web-b", "auth", timeout=15)
        yield vport
    finally:
        launcher.kill_all()
        a.stop()
        b.stop()


def test_streams_are_routed_by_authority(vhost: int) -> None:
    c = H2Client(vhost)
    try:
        s1 = c.request("GET", "a.example.com", "/one?x=1", [("x-forwarded-for", "10.9.8.7"), ("cookie", "a=1"),
                                                             ("cookie", "b=2")])
        s2 = c.request("GET", "b.example.com:80", "/two")
        s3 = c.request("GET", "nowhere.example.com", "/")
        r1, r2, r3 = c.wait(s1, s2, s3)
        assert r1.status == 200 and r2.status == 200, (r1, r2)
        one, two = json.loads(r1.body), json.loads(r2.body)
        assert (one["backend"], one["path"], two["backend"], two["path"]) == ("A", "/one?x=1", "B", "/two")
        headers = {k.lower(): v for k, v in one["headers"]}
        assert headers["host"] == "a.example.com"
        assert headers["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"  # the client's address appended
        assert headers["cookie"] == "a=1; b=2"
        assert "connection" not in r1.headers and "transfer-encoding" not in r1.headers
        assert r3.status == 404 and b"frp" in r3.body
        # the connection serves more streams after those
        (again,) = c.wait(c.request("GET", "a.example.com", "/again"))
        assert again.status == 200 and json.loads(again.body)["path"] == "/again"
    finally:
        c.close()


def test_basic_auth(vhost: int) -> None:
    c = H2Client(vhost)
    try:
        good = "Basic " + base64.b64encode(b"alice:wonder").decode()
        r_none, r_good = c.wait(c.request("GET", "auth.example.com", "/"),
                                c.request("GET", "auth.example.com", "/", [("authorization", good)]))
        assert r_none.status == 401 and r_none.headers.get("www-authenticate", "").startswith("Basic")
        assert r_good.status == 200 and json.loads(r_good.body)["backend"] == "A"
    finally:
        c.close()


def test_request_bodies_and_a_large_response(vhost: int) -> None:
    c = H2Client(vhost)
    try:
        big = os.urandom(3 << 20)
        small = os.urandom(1000)
        s_chunked = c.request("POST", "b.example.com", "/upload", body=big)  # no content-length
        s_length = c.request("PUT", "a.example.com", "/upload", [("content-length", str(len(small)))], body=small)
        size = 5 << 20  # beyond the stream (64 KiB) and connection windows: flow control both ways
        s_down = c.request("GET", "a.example.com", f"/big?size={size}")
        r_chunked, r_length, r_down = c.wait(s_chunked, s_length, s_down)
        assert json.loads(r_chunked.body) == {"size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
        assert json.loads(r_length.body) == {"size": len(small), "sha256": hashlib.sha256(small).hexdigest()}
        assert r_down.status == 200 and len(r_down.body) == size
        assert hashlib.sha256(r_down.body).hexdigest() == pattern_sha256(size)
        assert r_down.headers.get("content-length") == str(size)
    finally:
        c.close()


def test_connect_refused_and_bad_frames_close_only_that_connection(vhost: int) -> None:
    c = H2Client(vhost)
    try:
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "a.example.com:443")])
        c.sock.sendall(c.conn.data_to_send())
        c.answers[sid] = Answer()
        (r,) = c.wait(sid)
        assert r.status == 405
    finally:
        c.close()
    with socket.create_connection((LOCALHOST, vhost), timeout=10) as s:
        # DATA on stream 0: a connection error (RFC 9113 §6.1)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd")
        data = b""
        while chunk := s.recv(4096):  # frps answers with its SETTINGS, then a GOAWAY, then closes
            data += chunk
        types = []
        while len(data) >= 9:
            n = int.from_bytes(data[:3], "big")
            types.append(data[3])
            data = data[9 + n:]
        assert types[0] == 4 and 7 in types, types  # SETTINGS first, GOAWAY
    c = H2Client(vhost)  # the port still serves
    try:
        (r,) = c.wait(c.request("GET", "a.example.com", "/still"))
        assert r.status == 200
    finally:
        c.close()


def test_an_idle_connection_is_closed_with_goaway(vhost: int) -> None:
    c = H2Client(vhost)
    try:
        (r,) = c.wait(c.request("GET", "a.example.com", "/"))
        assert r.status == 200
        c.sock.settimeout(IDLE * 5)
        events = []
        while data := c.sock.recv(1 << 16):  # no stream open: after IDLE seconds, GOAWAY and the close
            events += c.conn.receive_data(data)
        assert any(isinstance(ev, h2.events.ConnectionTerminated) and ev.error_code == 0 for ev in events), events
    finally:
        c.close()


def test_a_response_that_ends_with_its_connection(vhost: int) -> None:
    """A body delimited by the local service closing the work connection ends the stream cleanly."""
    c = H2Client(vhost)
    try:
        (r,) = c.wait(c.request("GET", "a.example.com", "/close"))
        assert r.status == 200 and r.ended and not r.reset and bytes(r.body) == b"until-close-body"
        assert "connection" not in r.headers
    finally:
        c.close()
