"""Micro-benchmark: the vhost's HTTP/1 parsing (proto/http.py) against httptools (llhttp) and h11.

What frps does per request: find the end of the head, parse it into method, target, version and
the header list (names and values as sent, in order), and learn how the body is framed; per
response the same; and for a chunked body, find where it ends while the bytes pass through. Prints
microseconds per head and MB/s of chunked body, best of --repeat runs.

    .venv/bin/python bench/http_parse.py [--repeat 5]

httptools and h11 are not dependencies of aiofrp: install them into the venv to run this
(`.venv/bin/pip install httptools h11`); docs/architecture.md has the figures and the decision.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from aiofrp.proto.http import (
    ChunkedBody,
    find_head_end,
    parse_request_head,
    parse_response_head,
    request_body,
    response_body,
)

REQUEST = (
    b"GET /static/app.js?v=1234 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://www.example.com/\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: script\r\n"
    b"Sec-Fetch-Mode: no-cors\r\n"
    b"Cache-Control: max-age=0\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.22.1\r\n"
    b"Date: Wed, 02 Dec 2026 12:00:00 GMT\r\n"
    b"Content-Type: application/javascript\r\n"
    b"Content-Length: 1234\r\n"
    b"Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b'ETag: "5f1e-1234"\r\n'
    b"Accept-Ranges: bytes\r\n\r\n"
)


def chunked_body(total: int, chunk: int) -> bytes:
    piece = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
    return piece * (total // chunk) + b"0\r\n\r\n"


def ours_request() -> None:
    end = find_head_end(REQUEST)
    req = parse_request_head(REQUEST[:end])
    request_body(req)


def ours_response() -> None:
    end = find_head_end(RESPONSE)
    resp = parse_response_head(RESPONSE[:end])
    response_body(resp, "GET")


def ours_chunked(pieces: list[bytes]) -> None:
    framer = ChunkedBody()
    for p in pieces:
        framer.feed(p)
    assert framer.done


class _Collect:
    """httptools callbacks collecting what frps needs (headers as a list, in order, as sent)."""

    __slots__ = ("done", "headers", "url")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.done = True

    def on_body(self, body: bytes) -> None:
        pass


def httptools_cases() -> dict[str, Callable[..., None]] | None:
    try:
        import httptools
    except ImportError:
        return None

    def request() -> None:
        c = _Collect()
        p = httptools.HttpRequestParser(c)
        p.feed_data(REQUEST)
        p.get_method()
        p.get_http_version()
        p.should_keep_alive()

    def response() -> None:
        c = _Collect()
        p = httptools.HttpResponseParser(c)
        p.feed_data(RESPONSE)
        p.get_status_code()

    def chunked(pieces: list[bytes]) -> None:
        c = _Collect()
        p = httptools.HttpRequestParser(c)
        p.feed_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            p.feed_data(piece)

    return {"request": request, "response": response, "chunked": chunked}


def h11_cases() -> dict[str, Callable[..., None]] | None:
    try:
        import h11
    except ImportError:
        return None

    def request() -> None:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(REQUEST)
        ev = conn.next_event()
        assert isinstance(ev, h11.Request)
        ev.headers.raw_items()

    def response() -> None:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "h")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(RESPONSE)
        ev = conn.next_event()
        assert isinstance(ev, h11.Response)

    def chunked(pieces: list[bytes]) -> None:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.next_event()
        for piece in pieces:
            conn.receive_data(piece)
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA or isinstance(ev, h11.EndOfMessage):
                    break

    return {"request": request, "response": response, "chunked": chunked}


def best(fn: Callable[[], object], repeat: int, number: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append(time.perf_counter() - t)
    return min(times) / number


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    impls: dict[str, dict[str, Callable[..., None]] | None] = {
        "ours": {"request": ours_request, "response": ours_response, "chunked": ours_chunked},
        "httptools": httptools_cases(),
        "h11": h11_cases(),
    }
    body = chunked_body(4 << 20, 16384)
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    print(f"{'impl':10} {'request head':>14} {'response head':>15} {'chunked body':>14}")
    for name, cases in impls.items():
        if cases is None:
            print(f"{name:10} (not installed)")
            continue
        req = best(cases["request"], args.repeat, 20000) * 1e6
        resp = best(cases["response"], args.repeat, 20000) * 1e6
        number = 3 if name == "h11" else 20
        chunk = len(body) / best(lambda c=cases["chunked"]: c(pieces), args.repeat, number) / 1e6
        print(f"{name:10} {req:>11.2f} us {resp:>12.2f} us {chunk:>9.0f} MB/s")


if __name__ == "__main__":
    main()
