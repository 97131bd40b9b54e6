"""What a client of the vhost HTTP port reads, byte for byte, from Go's frps and from ours.

The same raw request sequences go through Go frps 0.65.0 and our frps (our frpc beside each: frps
alone shapes these answers) to a scripted local service. The answers are compared after Date's
value is masked and header names are lower-cased and sorted (Go canonicalises and sorts them).
Covered: HEAD to frps's own pages (404, 401) on a keep-alive connection, Date on every answer,
HTTP/1.0 clients (status line, keep-alive, a chunked body unchunked), a service's
``Connection: close`` not ending the client's connection, a close-delimited body rechunked.
"""

from __future__ import annotations

import base64
import re
import socket
import time

import pytest
from support.httpd import RawClient, RawResponse, proxy_block, recv_head
from support.procs import ThreadedTCPService, free_port, frpc_config, frps_config, wait_port

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "vhost-wire-token"


# The local service's answers by path, byte for byte (no Date unless scripted).
ANSWERS = {
    "/plain": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nplain",
    "/chunked": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"),
    "/dated": (b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 2\r\n\r\nok"),
    "/connclose": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                   b"Content-Length: 2\r\n\r\nok"),
    "/eof": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-eof-body",
    "/ten": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nten",
    # no Content-Type: Go's server guesses one from the first body bytes when the length is known
    "/untyped-boom": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom",
    "/untyped-png": b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "/untyped-html": b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n \n<HTML><body>x</body>",
    "/untyped-empty": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "/untyped-encoded": b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\nabcd",
    "/untyped-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    "/dupcl": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
}
CLOSE_AFTER = frozenset({"/connclose", "/eof", "/ten"})


class ScriptedService:
    """A local HTTP service answering by path with fixed bytes (no Date unless scripted)."""

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
                    method, path = head.split(b" ", 2)[:2]
                    lengths = re.findall(rb"(?im)^content-length:[ \t]*(\S*)", head)
                    if lengths and lengths[0].isdigit():
                        buf = buf[int(lengths[0]):]  # the request body (all of it arrived: small)
                    if path == b"/cl":  # which Content-Length headers the service was sent
                        text = b",".join(lengths) or b"none"
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(text), text))
                        continue
                    if path == b"/untyped-late":  # the body a moment after the head
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
                        time.sleep(0.3)
                        conn.sendall(b"GIF89a...")
                        continue
                    answer = ANSWERS.get(path.decode(), ANSWERS["/plain"])
                    if method == b"HEAD":
                        answer = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                    conn.sendall(answer)
                    if path.decode() in CLOSE_AFTER:
                        return
            except OSError:
                return

    def stop(self) -> None:
        self._server.close()


def normalise(r: RawResponse) -> tuple[str, list[tuple[str, str]], bytes]:
    status_line = r.raw_head.split(b"\r\n", 1)[0].decode("latin-1")
    headers = sorted((k.lower(), re.sub(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", "<now>", v)
                      if k.lower() == "date" and "2026 00:00:00" not in v else v) for k, v in r.headers if k)
    return status_line, headers, r.body


def basic(user: str, pwd: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pwd}".encode()).decode()


# Each case: requests on one connection (method, raw request bytes); then whether it is still open.
CASES: dict[str, list[tuple[str, bytes]]] = {
    "head_404_keepalive": [("HEAD", b"HEAD / HTTP/1.1\r\nHost: nope.test\r\n\r\n"),
                           ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "head_401_keepalive": [("HEAD", b"HEAD / HTTP/1.1\r\nHost: auth.test\r\n\r\n"),
                           ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "get_401": [("GET", b"GET / HTTP/1.1\r\nHost: auth.test\r\n\r\n")],
    "head_dead_service": [("HEAD", b"HEAD / HTTP/1.1\r\nHost: dead.test\r\n\r\n"),
                          ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "get_404_http10": [("GET", b"GET / HTTP/1.0\r\nHost: nope.test\r\n\r\n")],
    "get_404_http10_keepalive": [("GET", b"GET / HTTP/1.0\r\nHost: nope.test\r\nConnection: keep-alive\r\n\r\n"),
                                 ("GET", b"GET /plain HTTP/1.0\r\nHost: svc.test\r\n\r\n")],
    "service_date_kept": [("GET", b"GET /dated HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "http10_chunked_unchunked": [("GET", b"GET /chunked HTTP/1.0\r\nHost: svc.test\r\n\r\n")],
    "http10_keepalive": [("GET", b"GET /plain HTTP/1.0\r\nHost: svc.test\r\nConnection: keep-alive\r\n\r\n"),
                         ("GET", b"GET /plain HTTP/1.0\r\nHost: svc.test\r\n\r\n")],
    "service_connection_close": [("GET", b"GET /connclose HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
                                 ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "close_delimited_rechunked": [("GET", b"GET /eof HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
                                  ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "close_delimited_client_close": [("GET", b"GET /eof HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n")],
    "http10_service": [("GET", b"GET /ten HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
                       ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "options_star": [("GET", b"OPTIONS * HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
                     ("GET", b"GET /plain HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "duplicate_content_length": [("GET", b"GET /dupcl HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    "content_length_to_service": [
        ("GET", b"POST /cl HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
        ("GET", b"PUT /cl HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 0\r\n\r\n"),
        ("GET", b"GET /cl HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 0\r\n\r\n"),
        ("GET", b"DELETE /cl HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
        ("GET", b"POST /cl HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"),
    ],
    "content_type_guessed": [("GET", f"GET {p} HTTP/1.1\r\nHost: svc.test\r\n\r\n".encode()) for p in (
        "/untyped-boom", "/untyped-png", "/untyped-html", "/untyped-empty", "/untyped-encoded",
        "/untyped-late")] + [("HEAD", b"HEAD /untyped-png HTTP/1.1\r\nHost: svc.test\r\n\r\n")],
    # requests net/http cannot read: its exact answer, then the connection closes
    "missing_host": [("GET", b"GET / HTTP/1.1\r\n\r\n")],
    "two_hosts": [("GET", b"GET / HTTP/1.1\r\nHost: svc.test\r\nHost: other.test\r\n\r\n")],
    "malformed_host": [("GET", b"GET / HTTP/1.1\r\nHost: svc test\r\n\r\n")],
    "http2_version": [("GET", b"GET / HTTP/2.0\r\nHost: svc.test\r\n\r\n")],
    "unknown_transfer_encoding": [("GET", b"POST / HTTP/1.1\r\nHost: svc.test\r\nTransfer-Encoding: gzip\r\n\r\n")],
    "garbage_request_line": [("GET", b"HELLO\r\n\r\n")],
    "header_without_colon": [("GET", b"GET / HTTP/1.1\r\nHost: svc.test\r\nNoColon\r\n\r\n")],
    "bad_content_length": [("GET", b"POST / HTTP/1.1\r\nHost: svc.test\r\nContent-Length: abc\r\n\r\n")],
    "chunked_to_http11": [("GET", b"GET /chunked HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n")],
}


def run_case(port: int, steps: list[tuple[str, bytes]]) -> tuple[list[object], bool]:
    answers: list[object] = []
    with RawClient(port, timeout=10) as c:
        for method, raw in steps:
            c.send(raw)
            try:
                answers.append(normalise(c.read_response(method=method)))
            except (OSError, ValueError) as exc:  # an answer out of step reads as garbage
                answers.append(f"unreadable: {exc!r}")
                return answers, True
        closed = c.closed_by_peer(1.0)
    return answers, closed


def serve(frp, impl: str, service: ScriptedService) -> int:
    bind, vport = free_port(), free_port()
    text = frps_config(bind, token=TOKEN, vhostHTTPPort=vport)
    (frp.go_frps if impl == "go" else frp.ours_frps)(text)
    wait_port(bind, 10)
    proxies = [
        proxy_block("http", "svc", service.port, customDomains=["svc.test"]),
        proxy_block("http", "auth", service.port, customDomains=["auth.test"], httpUser="u", httpPassword="p"),
        proxy_block("http", "dead", free_port(), customDomains=["dead.test"]),
    ]
    frpc = frp.ours_frpc(frpc_config(bind, *proxies, token=TOKEN))
    frpc.wait_for_proxies("svc", "auth", "dead", timeout=15)
    return vport


def test_vhost_answers_read_as_gos(frp):
    service = ScriptedService()
    try:
        go_port = serve(frp, "go", service)
        ours_port = serve(frp, "ours", service)
        differences = []
        for name, steps in CASES.items():
            go = run_case(go_port, steps)
            ours = run_case(ours_port, steps)
            if go != ours:
                differences.append(f"{name}:\n  go:   {go}\n  ours: {ours}")
        assert not differences, "\n".join(differences)
        # and what the cases are about, so that two equal wrong answers cannot pass
        (head404, after), still_open = run_case(ours_port, CASES["head_404_keepalive"])
        assert head404[0] == "HTTP/1.1 404 Not Found" and head404[2] == b"" and after[2] == b"plain"  # type: ignore[index]
        assert ("date", "<now>") in head404[1] and still_open is False  # type: ignore[index]
        (ten,), closed = run_case(ours_port, CASES["http10_chunked_unchunked"])
        assert ten[0] == "HTTP/1.0 200 OK" and ten[2] == b"hello chunked world" and closed  # type: ignore[index]
        (eof, plain), still_open = run_case(ours_port, CASES["close_delimited_rechunked"])
        assert ("transfer-encoding", "chunked") in eof[1] and eof[2] == b"until-eof-body"  # type: ignore[index]
        assert plain[2] == b"plain" and not still_open  # type: ignore[index]
        answers, _ = run_case(ours_port, CASES["content_length_to_service"])
        assert [a[2] for a in answers] == [b"0", b"0", b"none", b"none", b"2"]  # type: ignore[index]
        answers, _ = run_case(ours_port, CASES["content_type_guessed"])
        assert [dict(a[1]).get("content-type") for a in answers] == [  # type: ignore[index]
            "text/plain; charset=utf-8", "image/png", "text/html; charset=utf-8", None, None, "image/gif", None]
        # a chunked body is not sniffed (Go: only when its first write beats the head's flush timer)
        (chunked,), _ = run_case(ours_port, [("GET", b"GET /untyped-chunked HTTP/1.1\r\nHost: svc.test\r\n\r\n")])
        assert "content-type" not in dict(chunked[1]) and chunked[2] == b"abcd"  # type: ignore[index]
        (options, _), _ = run_case(ours_port, CASES["options_star"])
        assert options[0] == "HTTP/1.1 200 OK" and ("content-length", "0") in options[1]  # type: ignore[index]
    finally:
        service.stop()
