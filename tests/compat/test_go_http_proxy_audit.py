"""The ``http_proxy`` client plugin of Go frpc 0.65.0 and ours side by side: what the target of
a forwarded request receives, and what the client reads, for the same raw requests.

Go hands a request in absolute form to ``http.DefaultTransport.RoundTrip`` after
``removeProxyHeaders``, so the target gets what Go's ``Request.Write`` makes of it:

* origin form, the path as ``URL.EscapedPath()`` gives it (``#`` is the path's: ``%23``; ``{`` is
  escaped, ``%41`` decoded), the query raw (a ``#`` in it raw too);
* ``Host`` from the URL as written (its port kept), the userinfo dropped (no ``Authorization``:
  that is ``http.Client``'s doing, not the Transport's);
* header names canonical (``x-lower`` -> ``X-Lower``); ``Connection``, ``Proxy-Connection``,
  ``Proxy-Authorization``, ``Proxy-Authenticate``, ``TE``, ``Trailers``, ``Upgrade`` removed,
  ``Trailer`` too (Go writes one only for trailers it sends); ``Keep-Alive`` and the fields named
  in ``Connection`` are kept; ``Content-Length: 0`` only for POST, PUT and PATCH;
* ``Connection: close`` for an HTTP/1.0 client or one that asked for it;
* ``Expect: 100-continue`` kept; the body sent when the target says ``100 Continue`` or after 1 s;
  the client is told ``100 Continue`` when the body is first read.

And the answer is copied with all its fields (``Connection``, ``Keep-Alive``, ``Proxy-Connection``
included, a ``Connection: close`` removed by Go's transport); errors are ``http.Error`` 500 texts
(``EOF`` for a target that closes without an answer, Go's TLS texts for an ``https://`` target).
Go's server answers ``OPTIONS *`` itself (200, before any credentials) and refuses a
Transfer-Encoding other than ``chunked`` (501).

Not copied (pinned in :func:`test_known_differences`): Go's transport asks for gzip when the client
did not and unpacks the answer; request trailers (aiohttp's server drops them). A request head up
to Go's 1 MiB (+ 4096) is taken by both, a larger one answered 431 by both.
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time

import pytest
from support.httpd import RawClient
from support.plugin_services import plugin_proxy
from support.procs import LOCALHOST, ThreadedTCPService, free_port, frpc_config, frps_config

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

TOKEN = "http-proxy-audit-token"
AUTH = "Proxy-Authorization: Basic dTpw\r\n"  # u:p
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Target:
    """A raw HTTP/1.1 service recording each request (head and body as received, byte for byte)
    and answering by path; by default ``200`` with the body ``ok``, kept alive."""

    def __init__(self) -> None:
        self._server = ThreadedTCPService(self._serve)
        self.port = self._server.port
        self.requests: list[bytes] = []
        self.cond = threading.Condition()

    def wait(self, n: int, timeout: float = 10.0) -> list[bytes]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"the target got {len(self.requests)} requests, not {n}: {self.requests}")
            return list(self.requests)

    def clear(self) -> None:
        with self.cond:
            self.requests.clear()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        reader = _Reader(conn)
        while True:
            head = reader.until(b"\r\n\r\n")
            if head is None:
                return
            lower = head.lower()
            path = re.sub(rb"^[a-z]+://[^/]*", b"", head.split(b" ", 2)[1])
            if b"\r\nexpect: 100-continue" in lower and path.startswith(b"/t100"):
                conn.sendall(CONTINUE)
            body = b""
            if b"\r\ntransfer-encoding: chunked" in lower:
                while (size_line := reader.until(b"\r\n")) is not None:
                    body += size_line
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        while (line := reader.until(b"\r\n")) not in (None, b"\r\n"):
                            body += line or b""
                        body += b"\r\n"
                        break
                    body += reader.exactly(size + 2)
            elif m := re.search(rb"\r\ncontent-length: *(\d+)", lower):
                body = reader.exactly(int(m[1]))
            with self.cond:
                self.requests.append(head + body)
                self.cond.notify_all()
            if path == b"/noanswer":
                return
            if path == b"/hop":
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: X-Foo, keep-alive\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\n"
                             b"Proxy-Connection: keep-alive\r\nUpgrade: h2\r\nX-Bar: 2\r\nContent-Length: 2\r\n\r\nok")
            elif path == b"/bighdr":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 20000 + b"\r\nContent-Length: 2\r\n\r\nok")
            elif path == b"/gzip":  # unasked
                packed = gzip.compress(b"hello", mtime=0)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(packed), packed))
            elif head.startswith(b"HEAD "):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")

    def stop(self) -> None:
        self._server.close()


class _Reader:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""

    def _fill(self) -> bool:
        data = self.conn.recv(65536)
        self.buf += data
        return bool(data)

    def until(self, sep: bytes) -> bytes | None:
        while sep not in self.buf:
            if not self._fill():
                return None
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


@pytest.fixture
def target():
    t = Target()
    yield t
    t.stop()


def start(frp) -> dict[str, dict[str, int]]:
    """Go frps; Go's frpc and ours, each with an ``http_proxy`` without credentials ("open") and
    one with ``u``/``p`` ("auth"); returns their remote ports."""
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 10)
    ports: dict[str, dict[str, int]] = {}
    for impl in ("go", "ours"):
        ports[impl] = q = {"open": free_port(), "auth": free_port()}
        text = frpc_config(
            bind,
            plugin_proxy(f"{impl}-open", "tcp", {"type": "http_proxy"}, remotePort=q["open"]),
            plugin_proxy(f"{impl}-auth", "tcp", {"type": "http_proxy", "httpUser": "u", "httpPassword": "p"},
                         remotePort=q["auth"]),
            token=TOKEN,
        )
        (frp.go_frpc if impl == "go" else frp.ours_frpc)(text).wait_for_proxies(f"{impl}-open", f"{impl}-auth",
                                                                                  timeout=15)
    return ports


def request_seen(raw: bytes, go: bool, asked_gzip: bool) -> tuple[bytes, list[bytes], bytes]:
    """(request line, header lines sorted, body) of a request the target got; Go's own
    ``Accept-Encoding: gzip`` (when the client sent none) left out."""
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.split(b"\r\n")
    if go and not asked_gzip and b"Accept-Encoding: gzip" in fields:  # not for HEAD
        fields.remove(b"Accept-Encoding: gzip")
    return line, sorted(fields), body


def answer_read(raw: bytes) -> tuple[list[tuple[bytes, list[bytes]]], bytes]:
    """Each answer head in ``raw`` (status line, fields sorted, Date masked), then what follows."""
    heads = []
    while raw.startswith(b"HTTP/"):
        head, _, raw = raw.partition(b"\r\n\r\n")
        line, *fields = head.split(b"\r\n")
        heads.append((line, sorted(re.sub(rb"^Date: .*", b"Date: <date>", f) for f in fields)))
    return heads, raw


def exchange(port: int, data: bytes, *, until_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection; what comes back: one answer (a head and the body its
    Content-Length gives), or everything until the connection closes."""
    with RawClient(port, timeout=timeout) as c:
        c.send(data)
        if until_close:
            assert c.closed_by_peer(timeout)
            return c.buf
        resp = c.read_response(method=data.split(b" ", 1)[0].decode())
        return resp.raw_head + resp.body


def test_target_receives_what_go_sends(frp, target) -> None:
    ports = start(frp)
    t = f"{LOCALHOST}:{target.port}"
    base = f"http://{t}"
    cases = {
        "hop-by-hop": f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\nProxy-Connection: keep-alive\r\n"
                      f"Connection: X-Foo, keep-alive\r\nX-Foo: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\n"
                      f"Trailer: X-T\r\nTrailers: X\r\nUpgrade: websocket\r\n{AUTH}Proxy-Authenticate: x\r\n"
                      f"user-agent: mine\r\naccept-encoding: identity\r\nx-lower: v\r\nX-M: 1\r\nX-M: 2\r\n\r\n",
        "host-mismatch": f"GET {base}/a HTTP/1.1\r\nHost: other.example\r\n\r\n",
        "userinfo": f"GET http://us:pw@{t}/a HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "fragment": f"GET {base}/a#frag HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "query-hash": f"GET {base}/a?x=1#f HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "odd-path": f"GET {base}/a{{b}}|c^d`e%41 HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "odd-query": f"GET {base}/a?x={{b}}|c;d&e=%zz HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "no-path": f"GET {base} HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "query-only": f"GET {base}?x=1 HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "upper-scheme": f"GET HTTP://localhost:{target.port}/a HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "get-cl0": f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\nContent-Length: 0\r\n\r\n",
        "delete-cl0": f"DELETE {base}/a HTTP/1.1\r\nHost: {t}\r\nContent-Length: 0\r\n\r\n",
        "put-no-body": f"PUT {base}/a HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "empty-user-agent": f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\nUser-Agent:\r\n\r\n",
        "post-body": f"POST {base}/a HTTP/1.1\r\nHost: {t}\r\nContent-Length: 5\r\n\r\nhello",
        "get-body": f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\nContent-Length: 3\r\n\r\nabc",
        "chunked-body": f"POST {base}/a HTTP/1.1\r\nHost: {t}\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
        "http10": f"GET {base}/a HTTP/1.0\r\nHost: {t}\r\n\r\n",
        "http10-keep-alive": f"GET {base}/a HTTP/1.0\r\nHost: {t}\r\nConnection: keep-alive\r\n\r\n",
        "connection-close": f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\nConnection: close\r\n\r\n",
        "head": f"HEAD {base}/a HTTP/1.1\r\nHost: {t}\r\n\r\n",
        "credentials": f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\n{AUTH}\r\n",
    }
    for name, text in cases.items():
        port_of = "auth" if name == "credentials" else "open"
        seen, read = {}, {}
        for impl in ("go", "ours"):
            target.clear()
            got = exchange(ports[impl][port_of], text.encode("latin-1"))
            asked = "accept-encoding" in text.lower()
            seen[impl] = [request_seen(r, impl == "go", asked) for r in target.wait(1)]
            read[impl] = answer_read(got)
        assert seen["ours"] == seen["go"], (name, seen)
        assert read["ours"] == read["go"], (name, read)
    # two requests to two hosts on one connection
    two = (f"GET {base}/a HTTP/1.1\r\nHost: {t}\r\n\r\n"
           f"GET http://localhost:{target.port}/b HTTP/1.1\r\nHost: x\r\n\r\n").encode()
    seen = {}
    for impl in ("go", "ours"):
        target.clear()
        with RawClient(ports[impl]["open"]) as c:
            c.send(two)
            assert [c.read_response().body, c.read_response().body] == [b"ok", b"ok"], impl
        seen[impl] = sorted(request_seen(r, impl == "go", False) for r in target.wait(2))
    assert seen["ours"] == seen["go"], seen
    assert seen["ours"][1][1][0] == f"Host: localhost:{target.port}".encode(), seen


def _plain_answer(conn: socket.socket) -> None:
    """A service that is no TLS server: an HTTP answer to whatever comes."""
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    time.sleep(0.5)


def test_answers_as_go(frp, target) -> None:
    ports = start(frp)
    t = f"{LOCALHOST}:{target.port}"
    dead = free_port()
    no_tls = ThreadedTCPService(_plain_answer)
    try:
        cases = {
            "hop-answer": (f"GET http://{t}/hop HTTP/1.1\r\nHost: {t}\r\n\r\n", "open"),
            "big-answer-field": (f"GET http://{t}/bighdr HTTP/1.1\r\nHost: {t}\r\n\r\n", "open"),
            "no-answer": (f"GET http://{t}/noanswer HTTP/1.1\r\nHost: {t}\r\n\r\n", "open"),
            "dead-by-name": (f"GET http://localhost:{dead}/ HTTP/1.1\r\nHost: x\r\n\r\n", "open"),
            "dead": (f"GET http://{LOCALHOST}:{dead}/ HTTP/1.1\r\nHost: x\r\n\r\n", "open"),
            "https-to-plain": (f"GET https://{LOCALHOST}:{no_tls.port}/ HTTP/1.1\r\nHost: x\r\n\r\n", "open"),
            "ftp": (f"GET ftp://{t}/a HTTP/1.1\r\nHost: {t}\r\n\r\n", "open"),
            "relative": (f"GET /x HTTP/1.1\r\nHost: {t}\r\n\r\n", "open"),
            "options-star": (f"OPTIONS * HTTP/1.1\r\nHost: {t}\r\n\r\n", "open"),
            "options-star-no-credentials": (f"OPTIONS * HTTP/1.1\r\nHost: {t}\r\n\r\n", "auth"),
            "no-credentials": (f"GET http://{t}/a HTTP/1.1\r\nHost: {t}\r\n\r\n", "auth"),
        }
        for name, (text, which) in cases.items():
            read = {impl: answer_read(exchange(ports[impl][which], text.encode())) for impl in ("go", "ours")}
            assert read["ours"] == read["go"], (name, read)
        # Go's server refuses a Transfer-Encoding other than "chunked" and closes
        te = f"POST http://{t}/a HTTP/1.1\r\nHost: {t}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
        got = {impl: exchange(ports[impl]["open"], te.encode(), until_close=True) for impl in ("go", "ours")}
        assert got["ours"] == got["go"] == (b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; "
                                            b"charset=utf-8\r\nConnection: close\r\n\r\nUnsupported transfer encoding"), got
        # wrong credentials: the same 407, 200 ms later
        wrong = f"GET http://{t}/a HTTP/1.1\r\nHost: {t}\r\nProxy-Authorization: Basic dTpx\r\n\r\n".encode()
        for impl in ("go", "ours"):
            began = time.monotonic()
            heads, _ = answer_read(exchange(ports[impl]["auth"], wrong))
            assert heads[0][0] == b"HTTP/1.1 407 Proxy Authentication Required", (impl, heads)
            assert time.monotonic() - began >= 0.18, impl
    finally:
        no_tls.close()


def test_expect_100_continue(frp, target) -> None:
    """The client is told ``100 Continue`` when the body is to go: at once when the target says
    so, after Go's 1 s ``ExpectContinueTimeout`` when it does not; the target gets the head with
    its ``Expect`` and then the body."""
    ports = start(frp)
    t = f"{LOCALHOST}:{target.port}"
    for path in ("/t100", "/quiet"):
        head = f"POST http://{t}{path} HTTP/1.1\r\nHost: {t}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        seen, waited = {}, {}
        for impl in ("go", "ours"):
            target.clear()
            with RawClient(ports[impl]["open"]) as c:
                began = time.monotonic()
                c.send(head.encode())
                c.sock.settimeout(5)
                while len(c.buf) < len(CONTINUE):
                    chunk = c.sock.recv(65536)
                    assert chunk, (impl, path, c.buf)
                    c.buf += chunk
                waited[impl] = time.monotonic() - began
                assert c.buf.startswith(CONTINUE), (impl, path, c.buf)
                c.buf = c.buf[len(CONTINUE):]
                c.send(b"hello")
                resp = c.read_response()
                assert (resp.status, resp.body) == (200, b"ok"), (impl, path, resp)
            seen[impl] = [request_seen(r, impl == "go", False) for r in target.wait(1)]
        assert seen["ours"] == seen["go"], (path, seen)
        assert seen["ours"][0][2] == b"hello" and b"Expect: 100-continue" in seen["ours"][0][1], seen
        if path == "/t100":
            assert waited["go"] < 0.8 and waited["ours"] < 0.8, waited
        else:
            assert 0.8 < waited["go"] < 3 and 0.8 < waited["ours"] < 3, waited


def test_known_differences(frp, target) -> None:
    """Pinned so that a change on either side is seen: gzip asked and unpacked by Go only, request
    trailers forwarded by Go only; and alike: a 70 KB request head forwarded, a 1.1 MB one 431."""
    ports = start(frp)
    t = f"{LOCALHOST}:{target.port}"
    packed = f"GET http://{t}/gzip HTTP/1.1\r\nHost: {t}\r\n\r\n".encode()
    heads, body = answer_read(exchange(ports["go"]["open"], packed))
    assert body == b"hello" and b"Content-Length: 5" in heads[0][1], (heads, body)
    target.clear()
    heads, body = answer_read(exchange(ports["ours"]["open"], packed))
    assert body.startswith(b"\x1f\x8b") and b"Content-Encoding: gzip" in heads[0][1], (heads, body)
    assert b"Accept-Encoding" not in target.wait(1)[0]

    trailers = (f"POST http://{t}/a HTTP/1.1\r\nHost: {t}\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n0\r\nX-T: v\r\n\r\n").encode()
    for impl, sent in (("go", True), ("ours", False)):
        target.clear()
        assert answer_read(exchange(ports[impl]["open"], trailers))[1] == b"ok", impl
        got = target.wait(1)[0]
        assert got.endswith(b"0\r\nX-T: v\r\n\r\n" if sent else b"0\r\n\r\n"), (impl, got)
        assert (b"\r\nTrailer: X-T\r\n" in got) is sent, (impl, got)

    long_head = f"GET http://{t}/a HTTP/1.1\r\nHost: {t}\r\nX-Long: {'a' * 70000}\r\n\r\n".encode()
    too_long = f"GET http://{t}/a HTTP/1.1\r\nHost: {t}\r\nX-Long: {'a' * (1100 << 10)}\r\n\r\n".encode()
    for impl in ("go", "ours"):
        assert answer_read(exchange(ports[impl]["open"], long_head))[1] == b"ok", impl
        got = exchange(ports[impl]["open"], too_long, until_close=True)
        assert got.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), (impl, got[:100])
