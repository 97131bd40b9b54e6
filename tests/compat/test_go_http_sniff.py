"""The Content-Type and framing of proxied answers, and a CONNECT after other requests, through
Go frp 0.65.0 and ours side by side.

A raw service answers by path with bodies that carry no Content-Type (HTML, PNG, text, a
Content-Encoding), framed by Content-Length, chunked or by closing. Go's ``net/http`` server
guesses a missing Content-Type from the first bytes it writes (``http.DetectContentType``) unless
the answer has a Content-Encoding, and how much it has then depends on who writes:

* frps's vhost and the ``http2http`` plugin (``httputil.ReverseProxy``): a known length is held
  up to 2 KiB and sniffed; a close-delimited body is sniffed from the bytes that came with the
  head (in most runs: Go's flush timer races its first write, so that one field is not
  compared); a chunked one is not sniffed at all. Nothing else is added (never
  ``application/octet-stream`` by default).
* the ``http_proxy`` plugin (``io.Copy`` into the server): the first 2 KiB are always held, so a
  chunked or close-delimited body that ends within them goes out with a Content-Length.

And on an ``http_proxy`` connection that already carried a request, a CONNECT is hijacked as
Go's ``ConnectHandler`` does: ``200 OK`` and a tunnel, or a close with no answer when the target
cannot be dialed.

Compared: the status line, the header fields (names lower-cased, sorted, Date's value masked)
and the body as decoded. Go's transport also asks the service for gzip when the client did not
and unpacks it; ours does not (a service that gzips unasked is not tried here).
"""

from __future__ import annotations

import re
import socket

import pytest
from support.httpd import RawClient, proxy_block, recv_head
from support.plugin_services import plugin_proxy
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    ThreadedTCPService,
    free_port,
    frpc_config,
    frps_config,
    wait_port,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "http-sniff-token"
OK_200 = b"HTTP/1.1 200 OK\r\n\r\n"
HTML = b"<html><b>hi</b></html>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)

ANSWERS: dict[bytes, bytes] = {
    b"/cl-html": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(HTML), HTML),
    b"/cl-png": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(PNG), PNG),
    b"/cl-text-long": b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"t" * 3000,
    b"/cl-typed": b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: %d\r\n\r\n%s" % (len(HTML), HTML),
    b"/cl-encoded": b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: %d\r\n\r\n%s" % (len(HTML), HTML),
    b"/chunked-html": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(HTML), HTML),
    b"/chunked-long": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + b"400\r\n" + b"a" * 1024 + b"\r\n" + b"400\r\n" + b"b" * 1024 + b"\r\n"
                       + b"400\r\n" + b"c" * 1024 + b"\r\n0\r\n\r\n"),
    b"/close-html": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + HTML,
    b"/empty": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"/no-content": b"HTTP/1.1 204 No Content\r\n\r\n",
}


class AnswerService:
    """Answers each request with ``ANSWERS[path]`` (absolute-form targets too; HEAD: its head),
    kept alive unless the answer says ``Connection: close``."""

    def __init__(self) -> None:
        self._server = ThreadedTCPService(self._serve)
        self.port = self._server.port

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        buf = b""
        with conn:
            try:
                while (got := recv_head(conn, buf)) is not None:
                    head, buf = got
                    target = head.split(b" ", 2)[1]
                    path = re.sub(rb"^https?://[^/]*", b"", target)
                    answer = ANSWERS[path]
                    if head.startswith(b"HEAD "):  # the head alone, as a service answers HEAD
                        answer = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                    conn.sendall(answer)
                    if b"Connection: close" in answer:
                        return
            except OSError:
                return

    def stop(self) -> None:
        self._server.close()


@pytest.fixture
def service():
    s = AnswerService()
    yield s
    s.stop()


Answer = tuple[str, list[tuple[str, str]], bytes]


def answer(port: int, target: str, host: str, method: str = "GET") -> Answer:
    """One request on a new connection: (status line, header fields as compared, body)."""
    with RawClient(port) as c:
        resp = c.request(method, target, host)
    fields = sorted((k.lower(), "<date>" if k.lower() == "date" else v) for k, v in resp.headers)
    return f"{resp.status} {resp.reason}", fields, resp.body


def connect(port: int) -> bytes:
    return f"CONNECT {LOCALHOST}:{port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic dTpw\r\n\r\n".encode()


def read_exactly(c: RawClient, n: int, timeout: float = 10.0) -> bytes:
    """``n`` bytes from the connection (what it buffered first), or fewer if it closes or times out."""
    c.sock.settimeout(timeout)
    while len(c.buf) < n:
        chunk = c.sock.recv(65536)
        if not chunk:
            break
        c.buf += chunk
    out, c.buf = c.buf[:n], c.buf[n:]
    return out


# Behind ReverseProxy a close-delimited body's head is flushed by a timer that races the first
# write: Go guesses its Content-Type in most runs, not all; only that field is not compared
RACY_TYPE = {"/close-html"}


def same_answer(ours: Answer, go: Answer, path: str, reverse_proxy: bool) -> bool:
    if reverse_proxy and path in RACY_TYPE:
        ours = (ours[0], [f for f in ours[1] if f[0] != "content-type"], ours[2])
        go = (go[0], [f for f in go[1] if f[0] != "content-type"], go[2])
    return ours == go


def paths() -> list[str]:
    return [p.decode() for p in ANSWERS]


def test_vhost_answers_as_go(frp, service) -> None:
    """frps's vhost HTTP (frps alone shapes the answer; our frpc beside each)."""
    ports = {}
    for impl in ("go", "ours"):
        bind, vport = free_port(), free_port()
        (frp.go_frps if impl == "go" else frp.ours_frps)(frps_config(bind, token=TOKEN, vhostHTTPPort=vport))
        wait_port(bind, 10)
        frp.ours_frpc(frpc_config(bind, proxy_block("http", "web", service.port, customDomains=["web.test"]),
                                  token=TOKEN)).wait_for_proxies("web", timeout=15)
        ports[impl] = vport
    for path in paths():
        for method in ("GET", "HEAD"):
            got = {impl: answer(ports[impl], path, "web.test", method) for impl in ("go", "ours")}
            assert same_answer(got["ours"], got["go"], path, reverse_proxy=True), (path, method, got)
    # the guesses themselves, so that a change on both sides is seen too
    assert ("content-type", "text/html; charset=utf-8") in answer(ports["ours"], "/close-html", "web.test")[1]
    assert ("content-type", "image/png") in answer(ports["ours"], "/cl-png", "web.test")[1]
    fields = answer(ports["ours"], "/chunked-html", "web.test")[1]
    assert "content-type" not in dict(fields), fields


def test_plugins_answer_as_go(frp, service) -> None:
    """``http2http`` and ``http_proxy`` of Go's frpc and of ours, behind one Go frps."""
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 10)
    ports: dict[str, dict[str, int]] = {}
    for impl in ("go", "ours"):
        ports[impl] = q = {"h2h": free_port(), "hp": free_port()}
        text = frpc_config(
            bind,
            plugin_proxy(f"{impl}-h2h", "tcp", {"type": "http2http", "localAddr": f"{LOCALHOST}:{service.port}"},
                         remotePort=q["h2h"]),
            plugin_proxy(f"{impl}-hp", "tcp", {"type": "http_proxy"}, remotePort=q["hp"]),
            token=TOKEN,
        )
        (frp.go_frpc if impl == "go" else frp.ours_frpc)(text).wait_for_proxies(f"{impl}-h2h", f"{impl}-hp",
                                                                                  timeout=15)
    base = f"http://{LOCALHOST}:{service.port}"
    for path in paths():
        for method in ("GET", "HEAD"):
            for which, target in (("h2h", path), ("hp", base + path)):
                got = {impl: answer(ports[impl][which], target, f"{LOCALHOST}:{service.port}", method)
                       for impl in ("go", "ours")}
                assert same_answer(got["ours"], got["go"], path, reverse_proxy=which == "h2h"), (which, path, method, got)
    # http_proxy: a chunked body that ends within 2 KiB goes out with a Content-Length
    fields = dict(answer(ports["ours"]["hp"], base + "/chunked-html", "x")[1])
    assert fields.get("content-length") == str(len(HTML)) and "transfer-encoding" not in fields, fields
    assert fields.get("content-type") == "text/html; charset=utf-8", fields


def test_http_proxy_connect_after_a_request(frp, service, echo_server) -> None:
    """A CONNECT on a connection that carried a GET: a tunnel in both (ours also forwards bytes
    sent before the ``200``, which Go drops), a close with no answer for a dead target, and 407
    for missing credentials (the connection stays open)."""
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 10)
    ports = {}
    for impl in ("go", "ours"):
        ports[impl] = free_port()
        text = frpc_config(bind, plugin_proxy(f"{impl}-hp", "tcp", {"type": "http_proxy", "httpUser": "u",
                                                                     "httpPassword": "p"}, remotePort=ports[impl]),
                           token=TOKEN)
        (frp.go_frpc if impl == "go" else frp.ours_frpc)(text).wait_for_proxies(f"{impl}-hp", timeout=15)
    auth = {"Proxy-Authorization": "Basic dTpw"}  # u:p
    dead = free_port()
    get = f"http://{LOCALHOST}:{service.port}/cl-html"
    for impl in ("go", "ours"):
        with RawClient(ports[impl]) as c:
            assert c.request("GET", get, "x", auth).body == HTML
            c.send(connect(echo_server.port))
            assert read_exactly(c, len(OK_200)) == OK_200, impl
            c.send(TEST_STRING)
            assert read_exactly(c, len(TEST_STRING)) == TEST_STRING, impl
        with RawClient(ports[impl]) as c:
            assert c.request("GET", get, "x", auth).status == 200
            c.send(connect(dead))
            assert c.closed_by_peer(10) and c.buf == b"", (impl, c.buf)
        with RawClient(ports[impl]) as c:
            assert c.request("GET", get, "x", auth).status == 200
            resp = c.request("CONNECT", f"{LOCALHOST}:{echo_server.port}", "x")
            assert (resp.status, resp.header("Proxy-Authenticate")) == (407, "Basic"), (impl, resp)
            assert c.request("GET", get, "x", auth).body == HTML, impl  # still open
    # ours: what the client sent right behind the CONNECT head reaches the target
    with RawClient(ports["ours"]) as c:
        assert c.request("GET", get, "x", auth).status == 200
        c.send(connect(echo_server.port) + TEST_STRING)
        assert read_exactly(c, len(OK_200) + len(TEST_STRING)) == OK_200 + TEST_STRING
