"""What the local service receives, and what a client reads, through Go frps 0.65.0 and ours.

The same raw requests go through Go's frps and ours (our frpc beside each: frps alone shapes
these bytes) to a raw-socket service that records every request head it is sent, byte for byte.

* The request target: Go's ReverseProxy sends ``URL.RequestURI()``: the path as
  ``URL.EscapedPath()`` re-escapes it (non-ASCII, ``{}|^`"<>\\``, ``#``; a path with any of those
  is decoded and escaped again whole, ``%41`` becoming ``A``), the query dropped to what
  ``url.ParseQuery`` keeps of it when it holds a ``;`` or a bad escape (cleanQueryParams).
* A body of known length the service ends short: Go's server holds the head with the first 2 KiB
  of body, so the client gets nothing when the body stops within them; more, and it gets the head
  and the body (all but what may still sit in that buffer), then the connection closes.
  ``text/event-stream`` is flushed at once. A Content-Type is guessed from the body as written.
* CONNECT: Go's connectHandler writes the request with ``req.Write``: HTTP/1.1, the authority as
  target and Host, ``User-Agent: Go-http-client/1.1`` unless the client sent one, then the body
  framing and the other headers, canonical and sorted.
* The Host a request is routed by (``httppkg.CanonicalHost``): ``[::1]`` keeps its brackets,
  ``[::1]:80`` loses them, a host that ``net.SplitHostPort`` refuses becomes "".
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from support.httpd import proxy_block, recv_head
from support.procs import LOCALHOST, ThreadedTCPService, free_port, frpc_config, frps_config, wait_port

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "vhost-target-token"
PAUSE = 0.2  # between two writes of the service that must reach frps apart


class RecordingService:
    """A raw HTTP/1.1 service: records each request head (CONNECT: and every byte after it) and
    answers by path; the default answer is ``200`` with the body ``ok``, kept alive."""

    def __init__(self) -> None:
        self._server = ThreadedTCPService(self._serve)
        self.port = self._server.port
        self.heads: list[bytes] = []
        self.cond = threading.Condition()

    def _record(self, data: bytes, index: int | None = None) -> int:
        with self.cond:
            if index is None:
                self.heads.append(data)
                index = len(self.heads) - 1
            else:
                self.heads[index] += data
            self.cond.notify_all()
            return index

    def wait_heads(self, n: int, timeout: float = 10.0) -> list[bytes]:
        """The first ``n`` heads recorded since :meth:`clear`, waiting for them."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.heads) >= n, timeout):
                raise TimeoutError(f"the service got {len(self.heads)} requests, not {n}: {self.heads}")
            return list(self.heads[:n])

    def clear(self) -> None:
        with self.cond:
            self.heads.clear()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        buf = b""
        with conn:
            try:
                while (got := recv_head(conn, buf)) is not None:
                    head, buf = got
                    head += b"\r\n\r\n"
                    if head.startswith(b"CONNECT "):
                        index = self._record(head + b"<then>" + buf)
                        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        while data := conn.recv(65536):  # an echo, each byte recorded
                            self._record(data, index)
                            conn.sendall(data)
                        return
                    self._record(head)
                    path = head.split(b" ", 2)[1]
                    if not self._answer(conn, path):
                        return
            except OSError:
                return

    @staticmethod
    def _answer(conn: socket.socket, path: bytes) -> bool:
        """Answer a request; False: the service then closes the connection."""
        short = re.fullmatch(rb"/short/(\d+)/(\d+)", path)
        if short:  # a body of known length ended short (in one write with the head)
            promised, sent = int(short[1]), int(short[2])
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                         % (promised, bytes(i % 251 for i in range(sent))))
            return False
        if path == b"/short-split":  # 1000 then 1500 body bytes of 5000, apart
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 5000\r\n\r\n" + b"a" * 1000)
            time.sleep(PAUSE)
            conn.sendall(b"b" * 1500)
            time.sleep(PAUSE)
            return False
        if path == b"/short-sse":  # an event stream is flushed at once, ended short or not
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n"
                         b"Content-Length: 100\r\n\r\ndata: 1\n\n")
            time.sleep(PAUSE)
            return False
        if path == b"/late-sniff":  # no Content-Type; whitespace first, the HTML a moment later
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
            time.sleep(PAUSE)
            conn.sendall(b"   ")
            time.sleep(PAUSE)
            conn.sendall(b"<html><b>late</b>")
            return True
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
        return True

    def stop(self) -> None:
        self._server.close()


def serve(frp, impl: str, service: RecordingService, *proxies: str) -> int:
    """frps of ``impl`` ("go" or "ours") with our frpc and ``proxies``; returns the vhost HTTP port."""
    bind, vport = free_port(), free_port()
    text = frps_config(bind, token=TOKEN, vhostHTTPPort=vport)
    (frp.go_frps if impl == "go" else frp.ours_frps)(text)
    wait_port(bind, 10)
    names = re.findall(r'name = "([^"]+)"', "".join(proxies))
    frpc = frp.ours_frpc(frpc_config(bind, *proxies, token=TOKEN))
    frpc.wait_for_proxies(*names, timeout=15)
    return vport


def pair(frp, *proxies_of: str) -> tuple[RecordingService, dict[str, int]]:
    service = RecordingService()
    proxies = [proxy_block("http", "svc", service.port, customDomains=["svc.test"])]
    proxies += [proxy_block("http", name, service.port, customDomains=[domain],
                            **{"responseHeaders.set.X-Route": name})
                for name, domain in (p.split("=", 1) for p in proxies_of)]
    return service, {impl: serve(frp, impl, service, *proxies) for impl in ("go", "ours")}


def exchange(port: int, raw: bytes, *, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send ``raw``, read until the server closes (or ``timeout``): (bytes read, closed by the server)."""
    out = b""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as s:
        s.sendall(raw)
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                data = s.recv(65536)
                if not data:
                    return out, True
                out += data
        except ConnectionResetError:
            return out, True
        except TimeoutError:
            pass
    return out, False


def normalise_answer(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, header fields lower-cased and sorted (Go sorts them) with Date's value masked, body."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return "", [], raw
    lines = head.decode("latin-1").split("\r\n")
    fields = sorted((k.strip().lower(), "<date>" if k.strip().lower() == "date" else v.strip())
                    for k, _, v in (ln.partition(":") for ln in lines[1:]))
    return lines[0], fields, body


def request_seen(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A request head as the service got it: the request line, and the header fields lower-cased
    and sorted, less Accept-Encoding (Go's Transport adds ``gzip``; ours does not ask for it)."""
    lines = head.removesuffix(b"\r\n\r\n").split(b"\r\n")
    fields = sorted((k.strip().lower(), v.strip()) for k, _, v in (ln.partition(b":") for ln in lines[1:]))
    return lines[0], [f for f in fields if f[0] != b"accept-encoding"]


# -- 1. the request target ---------------------------------------------------------------------

# request target -> what Go 0.65.0 sends the service (seen with the real binaries)
TARGETS = {
    b"/plain/path?x=1&y=2": b"/plain/path?x=1&y=2",
    b"/\xc3\xa4?q=\xc3\xa4": b"/%C3%A4?q=\xc3\xa4",  # the path escaped, the query left alone
    b'/a{b}|c^d`e"f': b"/a%7Bb%7D%7Cc%5Ed%60e%22f",
    b"/a<b>\\c": b"/a%3Cb%3E%5Cc",
    b"/a#frag": b"/a%23frag",  # no fragment in a request target: '#' is part of the path
    b"/a#b?c;": b"/a%23b",
    b"/%41{": b"/A%7B",  # re-escaped whole from the decoded path
    b"/a%2Fb{": b"/a/b%7B",
    b"/%7e{": b"/~%7B",
    b"/%c3%a4": b"/%c3%a4",  # valid as it is: sent as received
    b"/x(y)!*'[z]:@$&+,;=": b"/x(y)!*'[z]:@$&+,;=",
    b"/q?a=1&&b=%zz;c={x}": b"/q?a=1",  # cleanQueryParams: what ParseQuery keeps, encoded again
    b"/p?b=2&a=1&%zz&flag&a=0": b"/p?a=1&a=0&b=2&flag=",
    b"/p?a+b=%7e%20c&d=\xc3\xa4;": b"/p?a+b=~+c",
    b"/p?k=%e4&x=%": b"/p?k=%E4",
    b"/p?=v&%zz": b"/p?=v",
    b"/\x80\xff{": b"/%80%FF%7B",
    b"/p?%zz": b"/p",
    b"/p?;": b"/p",
    b"/p?": b"/p?",
    b"/p??x": b"/p??x",
    b"/p?q={x}&r=\xc3\xa4": b"/p?q={x}&r=\xc3\xa4",
    b"http://svc.test/a{b}?x;y": b"http://svc.test/a%7Bb%7D",  # absolute form: the same, host kept
    b"http://svc.test?a;": b"http://svc.test/",
}


def test_request_target_as_gos(frp):
    service, ports = pair(frp)
    try:
        seen: dict[str, list[tuple[bytes, list[tuple[bytes, bytes]]]]] = {}
        for impl, port in ports.items():
            service.clear()
            for target in TARGETS:  # one after the other: the service records them in this order
                raw = b"GET " + target + b" HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n"
                answer, closed = exchange(port, raw)
                assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and closed, (impl, target, answer)
            seen[impl] = [request_seen(h) for h in service.wait_heads(len(TARGETS))]
        differences = [f"{t!r}:\n  go:   {g}\n  ours: {o}"
                       for t, g, o in zip(TARGETS, seen["go"], seen["ours"], strict=True) if g != o]
        assert not differences, "\n".join(differences)
        assert [line for line, _ in seen["ours"]] == [b"GET " + want + b" HTTP/1.1" for want in TARGETS.values()]
    finally:
        service.stop()


# -- 2. a body of known length ended short -----------------------------------------------------

def test_short_body_as_gos(frp):
    service, ports = pair(frp)
    try:
        exact = {  # what reaches the client does not depend on timing
            "within the buffer": b"GET /short/100/50 HTTP/1.1\r\nHost: svc.test\r\n\r\n",
            "fills the buffer": b"GET /short/5000/2048 HTTP/1.1\r\nHost: svc.test\r\n\r\n",
            "one byte more": b"GET /short/5000/2049 HTTP/1.1\r\nHost: svc.test\r\n\r\n",
            "event stream": b"GET /short-sse HTTP/1.1\r\nHost: svc.test\r\n\r\n",
            "sniffed late": b"GET /late-sniff HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n",
        }
        answers = {name: {impl: exchange(port, raw) for impl, port in ports.items()} for name, raw in exact.items()}
        differences = [f"{name}:\n  go:   {a['go']!r:.300}\n  ours: {a['ours']!r:.300}" for name, a in answers.items()
                       if (normalise_answer(a["go"][0]), a["go"][1]) != (normalise_answer(a["ours"][0]), a["ours"][1])]
        assert not differences, "\n".join(differences)
        # and what the cases are about
        assert answers["within the buffer"]["ours"] == (b"", True)
        assert answers["fills the buffer"]["ours"] == (b"", True)
        status, fields, body = normalise_answer(answers["one byte more"]["ours"][0])
        assert status == "HTTP/1.1 200 OK" and len(body) == 2049 and answers["one byte more"]["ours"][1]
        status, fields, body = normalise_answer(answers["event stream"]["ours"][0])
        assert status == "HTTP/1.1 200 OK" and body == b"data: 1\n\n"
        status, fields, body = normalise_answer(answers["sniffed late"]["ours"][0])
        assert ("content-type", "text/html; charset=utf-8") in fields and body == b"   <html><b>late</b>"

        # Go may keep up to 2 KiB of the body's end in its buffer (as its reads fall): the same
        # head, then a prefix of the body of at least all but 2 KiB of what was sent, then EOF
        sent = bytes(i % 251 for i in range(51200))
        for raw, prefix, least in ((b"GET /short/102400/51200 HTTP/1.1\r\nHost: svc.test\r\n\r\n", sent, 51200 - 2048),
                                   (b"GET /short-split HTTP/1.1\r\nHost: svc.test\r\n\r\n", b"a" * 1000 + b"b" * 1500,
                                    2048)):
            got = {impl: exchange(port, raw) for impl, port in ports.items()}
            heads = {impl: normalise_answer(answer)[:2] for impl, (answer, _) in got.items()}
            assert heads["go"] == heads["ours"] and heads["go"][0] == "HTTP/1.1 200 OK", got
            for _impl, (answer, closed) in got.items():
                body = normalise_answer(answer)[2]
                assert closed and len(body) >= least and prefix.startswith(body), (_impl, len(body))
            assert normalise_answer(got["ours"][0])[2] == prefix  # ours: all it got
    finally:
        service.stop()


# -- 3. CONNECT --------------------------------------------------------------------------------

CONNECTS = {
    "no user agent": b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test:80\r\nx-lower: a\r\nAccept: */*\r\n\r\n",
    "own user agent": (b"CONNECT svc.test:80 HTTP/1.1\r\nUser-Agent: curl/8\r\nHost: svc.test:80\r\n"
                       b"Proxy-Connection: keep-alive\r\n\r\n"),
    "empty user agent": b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test\r\nUser-Agent:\r\n\r\n",
    "http/1.0": b"CONNECT svc.test:80 HTTP/1.0\r\n\r\n",
    "http/1.0 keep-alive": b"CONNECT svc.test:80 HTTP/1.0\r\nHost: svc.test\r\nAccept: x\r\nConnection: keep-alive\r\n\r\n",
    "close": b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\nX-B: 1\r\nX-A: 2\r\nx-a: 3\r\n\r\n",
    "length": b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 4\r\nAccept: x\r\n\r\nbody",
    "trailer": b"CONNECT SVC.Test:80 HTTP/1.1\r\nHost: svc.test\r\nTrailer: X\r\nTE: trailers\r\nA-b-C: 1\r\n\r\n",
    "origin form": b"CONNECT /p{x}?a;b HTTP/1.1\r\nHost: svc.test\r\n\r\n",
}


def connect(port: int, raw: bytes, *, tunnel: bool = True) -> bytes:
    """CONNECT, then once the tunnel is answered (``tunnel``) a few bytes through it, echoed. Sent
    only after the answer: Go loses the bytes its server has read ahead of the handler (those
    behind the head; after a body, the first byte), which Hijack leaves in a buffer frp drops."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as s:
        s.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = s.recv(65536)
            assert data, f"EOF before the CONNECT answer: {buf!r}"
            buf += data
        assert buf.startswith(b"HTTP/1.1 200 Connection established\r\n\r\n"), buf
        buf = buf.partition(b"\r\n\r\n")[2]
        if not tunnel:
            return buf
        s.sendall(b"ping")
        while not buf.endswith(b"ping"):
            data = s.recv(65536)
            assert data, f"EOF in the tunnel after {buf!r}"
            buf += data
        return buf


def test_connect_head_as_gos(frp):
    service, ports = pair(frp)
    try:
        seen: dict[str, list[bytes]] = {}
        for impl, port in ports.items():
            service.clear()
            for name, raw in CONNECTS.items():
                assert connect(port, raw, tunnel=name != "length").endswith(b"ping" if name != "length" else b"")
            # the head as written, then (but for "length") the bytes through the tunnel
            seen[impl] = [h if name != "length" else h.partition(b"<then>")[0]
                          for name, h in zip(CONNECTS, service.wait_heads(len(CONNECTS)), strict=True)]
        differences = [f"{name}:\n  go:   {g!r}\n  ours: {o!r}"
                       for name, g, o in zip(CONNECTS, seen["go"], seen["ours"], strict=True) if g != o]
        assert not differences, "\n".join(differences)
        ours = dict(zip(CONNECTS, seen["ours"], strict=True))
        assert ours["length"] == (b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test:80\r\n"
                                  b"User-Agent: Go-http-client/1.1\r\nContent-Length: 4\r\nAccept: x\r\n\r\n")
        assert ours["no user agent"] == (b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test:80\r\n"
                                         b"User-Agent: Go-http-client/1.1\r\nAccept: */*\r\nX-Lower: a\r\n\r\n<then>ping")
        assert ours["http/1.0"] == (b"CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test:80\r\n"
                                    b"User-Agent: Go-http-client/1.1\r\nConnection: close\r\n\r\n<then>ping")
    finally:
        service.stop()


# -- 4. the routing host -----------------------------------------------------------------------

HOSTS = ["[::1]", "[::1]:80", "::1", "Host.Test.:8080", "HOST.TEST.", "a:b:c", "a]:80", "[a]x:80", "svc.test:80:90"]


def test_routing_host_as_gos(frp):
    service, ports = pair(frp, "v6=::1", "v6-brackets=[::1]", "dotted=host.test", "colons=a:b:c", "bracket=a]",
                          "bare-a=a")
    try:
        routed: dict[str, list[tuple[int, str]]] = {}
        for impl, port in ports.items():
            routed[impl] = []
            for host in HOSTS:
                answer, _ = exchange(port, f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                status, fields, _ = normalise_answer(answer)
                routed[impl].append((int(status.split(" ")[1]), dict(fields).get("x-route", "")))
        assert routed["go"] == routed["ours"], "\n".join(
            f"{h}: go {g} ours {o}" for h, g, o in zip(HOSTS, routed["go"], routed["ours"], strict=True))
        assert dict(zip(HOSTS, routed["ours"], strict=True)) == {
            "[::1]": (200, "v6-brackets"), "[::1]:80": (200, "v6"), "::1": (200, "v6"),
            "Host.Test.:8080": (200, "dotted"), "HOST.TEST.": (200, "dotted"), "a:b:c": (200, "colons"),
            "a]:80": (404, ""), "[a]x:80": (404, ""), "svc.test:80:90": (404, ""),
        }
    finally:
        service.stop()
