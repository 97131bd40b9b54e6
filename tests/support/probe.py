"""A raw HTTP/1.1 service for the side-by-side audits (tests/compat/test_go_*_audit.py): it
records each request (head and body) by its ``X-Probe`` tag and answers by path from a table of
raw answers, so that what Go's frp and ours hand a service, and what they make of its bytes, can
be compared byte for byte."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Collection, Mapping

from support.procs import ThreadedTCPService

__all__ = ["ProbeService", "chunked", "ok", "read_body"]


def ok(body: bytes, extra: bytes = b"") -> bytes:
    """``200 OK``, ``text/plain``, the fields of ``extra``, a Content-Length and ``body``."""
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + extra + b"Content-Length: %d\r\n\r\n%s" % (
        len(body), body)


def chunked(extra: bytes, body: bytes) -> bytes:
    """``200 OK``, ``text/plain``, the fields of ``extra``, chunked: ``body`` is the chunks as sent."""
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + extra + b"Transfer-Encoding: chunked\r\n\r\n" + body


def read_body(conn: socket.socket, buf: bytes, head: bytes) -> tuple[bytes, bytes]:
    """A request body as framed by ``head`` (chunked: decoded, trailers shown after it as
    ``<trailers:...>``; ``<cut>`` where the sender stopped short) and the bytes behind it."""
    low = head.lower()
    if b"\r\ntransfer-encoding:" in low:
        out = b""
        while True:
            while b"\r\n" not in buf:
                if not (data := conn.recv(65536)):
                    return out + b"<cut>", b""
                buf += data
            line, _, buf = buf.partition(b"\r\n")
            n = int(line.split(b";")[0], 16)
            if n == 0:
                buf = b"\r\n" + buf
                while b"\r\n\r\n" not in buf:
                    if not (data := conn.recv(65536)):
                        return out + b"<cut>", b""
                    buf += data
                trailers, _, buf = buf.partition(b"\r\n\r\n")
                return out + (b"<trailers:" + trailers.strip() + b">" if trailers.strip() else b""), buf
            while len(buf) < n + 2:
                if not (data := conn.recv(65536)):
                    return out + buf + b"<cut>", b""
                buf += data
            out, buf = out + buf[:n], buf[n + 2:]
    if m := re.search(rb"\r\ncontent-length:\s*(\d+)", low):
        n = int(m.group(1))
        while len(buf) < n and (data := conn.recv(65536)):
            buf += data
        return buf[:n], buf[n:]
    return b"", buf


class ProbeService:
    """Records each request by its ``X-Probe`` tag and answers by path (``answers``, else ``200
    default``; the head alone to a HEAD), keeping the connection alive unless the path is in
    ``close_after``; after an answer of a path in ``echo_after``, echoes raw bytes (``echo:``
    before each read). ``Expect: 100-continue`` gets its ``100 Continue``; TLS with ``tls``."""

    def __init__(self, answers: Mapping[str, bytes], *, close_after: Collection[str] = (),
                 echo_after: Collection[str] = (), tls: ssl.SSLContext | None = None) -> None:
        self.answers = answers
        self.close_after = frozenset(close_after)
        self.echo_after = frozenset(echo_after)
        self.tls = tls
        self.seen: dict[str, list[tuple[bytes, bytes]]] = {}
        self.lock = threading.Lock()
        self._server = ThreadedTCPService(self._serve)
        self.port = self._server.port

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(20)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    if not (data := conn.recv(1 << 20)):
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                path = head.split(b" ")[1].decode("latin-1").partition("?")[0]
                if b"\r\nexpect: 100-continue" in head.lower():
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, buf = read_body(conn, buf, head + b"\r\n")
                if m := re.search(rb"(?i)\r\nx-probe: *(\d+)", head):
                    with self.lock:
                        self.seen.setdefault(m.group(1).decode(), []).append((head, body))
                answer = self.answers.get(path, ok(b"default"))
                if head.startswith(b"HEAD "):
                    answer = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                conn.sendall(answer)
                if path in self.echo_after:
                    if buf:
                        conn.sendall(buf)
                    while data := conn.recv(65536):
                        conn.sendall(b"echo:" + data)
                    return
                if path in self.close_after:
                    return
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def received(self, tag: str, go: bool) -> list[list[bytes]]:
        """What the service got for ``tag``: request line, then lower-cased sorted fields
        (``x-probe`` and, for Go, the ``accept-encoding: gzip`` its transport adds left out),
        then the body."""
        with self.lock:
            got = self.seen.pop(tag, [])
        out = []
        for head, body in got:
            lines = head.split(b"\r\n")
            fields = sorted(ln.lower() for ln in lines[1:])
            fields = [f for f in fields if not f.startswith(b"x-probe:")
                      and not (go and f == b"accept-encoding: gzip")]
            out.append([lines[0], *fields, b"BODY=" + body])
        return out

    def stop(self) -> None:
        self._server.close()
