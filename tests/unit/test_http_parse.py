"""The sans-I/O HTTP/1.x head parser and body framers (aiofrp.proto.http)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.http import (
    MAX_CHUNK_LINE,
    ChunkedBody,
    ContentLengthBody,
    HTTPError,
    NoBody,
    UntilClose,
    basic_auth,
    build_head,
    canonical_host,
    find_head_end,
    parse_request_head,
    parse_response_head,
    request_body,
    response_body,
)


def req(text: str):
    return parse_request_head(text.encode("latin-1"))


# -- heads --------------------------------------------------------------------------------------


def test_find_head_end_crlf_and_lf():
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY") == 27
    assert find_head_end(b"GET / HTTP/1.1\nHost: a\n\nBODY") == 24
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n") == -1
    assert find_head_end(b"") == -1
    data = b"xx" + b"GET / HTTP/1.1\r\n\r\n"
    assert find_head_end(data, 2) == len(data)


def test_origin_form_request():
    r = req("GET /a/b?q=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nX-A: 1\r\nx-a:  2 \r\n\r\n")
    assert (r.method, r.target, r.minor, r.path, r.host, r.url_host) == (
        "GET", "/a/b?q=1", 1, "/a/b", "Example.COM:8080", "")
    assert r.headers == [("Host", "Example.COM:8080"), ("X-A", "1"), ("x-a", "2")]
    assert r.get("x-a") == "1" and r.get_all("x-a") == ["1", "2"] and r.get("nope") is None
    assert canonical_host(r.host) == "example.com"


def test_absolute_form_request_is_proxy_form():
    r = req("GET http://user@Sub.Example.com:81/p%2Fq?x HTTP/1.1\r\nHost: ignored\r\n\r\n")
    assert r.url_host == "Sub.Example.com:81"
    assert r.host == "Sub.Example.com:81"
    assert r.origin_target == "/p%2Fq?x"
    assert r.path == "/p/q"  # decoded, like Go's URL.Path
    r = req("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (r.path, r.origin_target) == ("", "/")


def test_connect_and_asterisk():
    r = req("CONNECT h.example:443 HTTP/1.1\r\n\r\n")  # no Host needed for CONNECT
    assert (r.url_host, r.host, r.path) == ("h.example:443", "h.example:443", "")
    r = req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.path == "*"


def test_http10_without_host():
    r = req("GET / HTTP/1.0\r\n\r\n")
    assert r.minor == 0 and r.host == ""


@pytest.mark.parametrize(
    "text, status",
    [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /\r\n\r\n", 400),
        ("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\n\r\n", 400),  # missing Host
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),  # malformed Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
        ("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ],
)
def test_malformed_requests(text: str, status: int):
    with pytest.raises(HTTPError) as ei:
        req(text)
    assert ei.value.status == status


def test_request_body_framing():
    assert isinstance(request_body(req("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), NoBody)
    assert isinstance(request_body(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")), NoBody)
    b = request_body(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"))
    assert isinstance(b, ContentLengthBody) and b.remaining == 5
    assert isinstance(request_body(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n")),
                      ChunkedBody)
    # same length twice is fine, different lengths are not
    request_body(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"))
    for bad, status in [
        ("Content-Length: 5\r\nContent-Length: 6", 400),
        ("Content-Length: -1", 400),
        ("Content-Length: 0x10", 400),
        ("Transfer-Encoding: gzip, chunked", 501),
        ("Transfer-Encoding: identity", 501),
    ]:
        with pytest.raises(HTTPError) as ei:
            request_body(req(f"POST / HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n"))
        assert ei.value.status == status, bad


def test_response_head_and_framing():
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close, X\r\n\r\n")
    assert (r.status, r.reason, r.minor) == (200, "OK", 1)
    assert r.connection_tokens() == {"close", "x"}
    assert isinstance(response_body(r, "GET"), ContentLengthBody)
    assert isinstance(response_body(r, "HEAD"), NoBody)
    r = parse_response_head(b"HTTP/1.0 200\r\n\r\n")
    assert r.reason == "" and isinstance(response_body(r, "GET"), UntilClose)
    for status in (101, 204, 304, 100):
        r = parse_response_head(f"HTTP/1.1 {status} X\r\nContent-Length: 9\r\n\r\n".encode())
        assert isinstance(response_body(r, "GET"), NoBody)
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    assert isinstance(response_body(r, "GET"), ChunkedBody)
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert isinstance(response_body(r, "GET"), UntilClose)
    with pytest.raises(HTTPError):
        parse_response_head(b"ICY 200 OK\r\n\r\n")


def test_build_head_roundtrip():
    head = build_head("GET / HTTP/1.1", [("Host", "a"), ("X", "y z")])
    assert head == b"GET / HTTP/1.1\r\nHost: a\r\nX: y z\r\n\r\n"
    r = parse_request_head(head)
    assert r.headers == [("Host", "a"), ("X", "y z")]


def test_canonical_host():
    assert canonical_host("A.Example.COM.") == "a.example.com"
    assert canonical_host("a.example.com:8080") == "a.example.com"
    assert canonical_host("[::1]:80") == "::1"
    assert canonical_host("") == ""


def test_basic_auth():
    v = "Basic " + base64.b64encode(b"us:er:pw").decode()
    assert basic_auth(v) == ("us", "er:pw")
    assert basic_auth("basic " + base64.b64encode(b"a:").decode()) == ("a", "")
    assert basic_auth("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert basic_auth("Basic !!!") is None
    assert basic_auth("Bearer x") is None
    assert basic_auth(None) is None


# -- chunked bodies -------------------------------------------------------------------------------


def chunked(parts: list[bytes], trailers: bytes = b"") -> bytes:
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return out + b"0\r\n" + trailers + b"\r\n"


def feed_all(framer, pieces: list[bytes]) -> tuple[int, int]:
    """Feed pieces; return (total bytes consumed, index of the piece where the body ended)."""
    total = 0
    for i, p in enumerate(pieces):
        end = framer.feed(p)
        total += end
        if framer.done:
            return total, i
        assert end == len(p)
    return total, -1


def test_chunked_simple_and_trailers():
    body = chunked([b"hello", b" ", b"world"], b"X-T: 1\r\n")
    b = ChunkedBody()
    assert b.feed(body + b"NEXT") == len(body)
    assert b.done


def test_chunked_bad_input():
    for bad in (b"zz\r\n", b"5\r\nhelloXX", b"-1\r\n", b"0x5\r\n", b"1_0\r\n", b"A" * (MAX_CHUNK_LINE + 10)):
        with pytest.raises(HTTPError):
            ChunkedBody().feed(bad)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.binary(min_size=0, max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    trailer=st.booleans(),
)
def test_chunked_any_split(parts, cuts, trailer):
    body = chunked(parts, b"A: b\r\n" if trailer else b"")
    data = body + b"GET / HTTP/1.1\r\n"
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]
    consumed, _ = feed_all(ChunkedBody(), pieces)
    assert consumed == len(body)


@given(length=st.integers(0, 5000), cut=st.integers(0, 6000))
def test_content_length_any_split(length, cut):
    b = ContentLengthBody(length)
    data = bytes(length) + b"rest"
    cut = min(cut, len(data))
    first = b.feed(data[:cut])
    if b.done:
        assert first == length
        return
    assert first == cut
    assert b.feed(data[cut:]) == length - cut and b.done


# -- head rewriting of the vhost proxy (server/vhost/http_rewrite.py) -----------------------------


def test_request_head_out_rewrites():
    from aiofrp.server.vhost.http_rewrite import request_head_out
    from aiofrp.server.vhost.router import Route

    r = req("POST /p?q HTTP/1.1\r\nHost: a.example.com\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
            "Keep-Alive: 5\r\nProxy-Authorization: Basic x\r\nTE: trailers\r\nX-Forwarded-For: 1.1.1.1\r\n"
            "X-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Host: evil\r\nForwarded: for=x\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\nUser-Agent: ua\r\n\r\n")
    route: Route[object] = Route("a.example.com", host_rewrite="in.ternal", headers={"user-agent": "frp", "X-Set": "1"})
    out = parse_request_head(request_head_out(r, route, "9.9.9.9", None, r.connection_tokens(), ChunkedBody()))
    assert out.target == "/p?q" and out.method == "POST"
    assert out.headers[0] == ("Host", "in.ternal")
    names = [k.lower() for k, _ in out.headers]
    for gone in ("connection", "x-hop", "keep-alive", "proxy-authorization", "forwarded", "content-length"):
        assert gone not in names, gone
    assert out.get("te") == "trailers" and out.get("transfer-encoding") == "chunked"
    assert out.get("x-forwarded-for") == "1.1.1.1, 2.2.2.2, 9.9.9.9"
    assert out.get("x-forwarded-host") == "a.example.com" and out.get("x-forwarded-proto") == "http"
    assert out.get_all("user-agent") == ["frp"] and out.get("x-set") == "1"


def test_request_head_out_proxy_form_and_upgrade():
    from aiofrp.server.vhost.http_rewrite import request_head_out
    from aiofrp.server.vhost.router import Route

    r = req("GET http://w.example.com:81/chat?x HTTP/1.1\r\nHost: w.example.com:81\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n")
    out = parse_request_head(request_head_out(r, Route("w.example.com"), "1.2.3.4", "websocket",
                                              r.connection_tokens(), NoBody()))
    assert out.target == "http://w.example.com:81/chat?x"
    assert out.get("connection") == "Upgrade" and out.get("upgrade") == "websocket"
    assert out.get("sec-websocket-key") == "k"


def test_request_head_out_content_length_as_gos_transport():
    from aiofrp.server.vhost.http_rewrite import request_head_out
    from aiofrp.server.vhost.router import Route

    def length(head: str) -> tuple[list[str], str]:
        r = req(head)
        out = parse_request_head(request_head_out(r, Route("a"), "1.2.3.4", None, r.connection_tokens(),
                                                  request_body(r)))
        return out.get_all("content-length"), out.target

    # repeated equal values merged; the service always hears HTTP/1.1 (the line parses as such)
    assert length("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n")[0] == ["2"]
    # POST, PUT and PATCH without a body say so; other methods do not (Go's shouldSendContentLength)
    for method in ("POST", "PUT", "PATCH"):
        assert length(f"{method} / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == ["0"]
    assert length("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")[0] == []
    assert length("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == []


def test_response_head_out():
    from aiofrp.proto.http import ChunkedBody, ContentLengthBody, NoBody, UntilClose
    from aiofrp.server.vhost.http_rewrite import BodyCoding, response_head_out
    from aiofrp.server.vhost.router import Route

    date = "Date: Sat, 05 Dec 2026 06:00:00 GMT\r\n"
    raw = ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nX-A: 1\r\n" + date + "\r\n").encode()
    resp = parse_response_head(raw)
    keep = req("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    length = ContentLengthBody(2)
    # untouched fast path
    assert response_head_out(resp, raw, Route("a"), False, keep, length) == (raw, False, False, BodyCoding.AS_IS)
    head, _, close, _ = response_head_out(resp, raw, Route("a", response_headers={"x-a": "2"}), True, keep, length)
    out = parse_response_head(head)
    assert close and out.get_all("x-a") == ["2"] and out.get("connection") == "close"
    # the service's Connection: close ends its own connection only; its hop-by-hop headers go
    raw = b"HTTP/1.1 200 OK\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: t=1\r\nContent-Length: 0\r\n\r\n"
    head, upstream_close, close, _ = response_head_out(parse_response_head(raw), raw, None, False, keep, NoBody())
    out = parse_response_head(head)
    assert upstream_close and not close
    assert out.get("x-drop") is None and out.get("connection") is None and out.get("keep-alive") is None
    assert (out.get("date") or "").endswith(" GMT")  # Go's server adds Date when the service sent none
    # HTTP/1.0 clients: their version in the status line, keep-alive spelled out when kept
    ten = req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    head, _, close, _ = response_head_out(parse_response_head(raw), raw, None, False, ten, NoBody())
    assert head.startswith(b"HTTP/1.0 200 OK\r\n") and not close
    assert parse_response_head(head).get("connection") == "keep-alive"
    # a chunked body to an HTTP/1.0 client: the coding comes off, the body ends with the connection
    # (Go's server keeps the Trailer field it was given)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
    head, _, close, coding = response_head_out(parse_response_head(raw), raw, None, False, ten, ChunkedBody())
    out = parse_response_head(head)
    assert coding is BodyCoding.DECHUNK and close
    assert out.get("transfer-encoding") is None and out.get("trailer") == "X-T" and out.get("connection") is None
    # a close-delimited body to an HTTP/1.1 client kept alive: chunked
    raw = b"HTTP/1.1 200 OK\r\n\r\n"
    head, _, close, coding = response_head_out(parse_response_head(raw), raw, None, False, keep, UntilClose())
    assert coding is BodyCoding.CHUNK and not close
    assert parse_response_head(head).get("transfer-encoding") == "chunked"
    # ... also when the client's connection ends after it (Go's server chunks for any 1.1 client)
    head, _, close, coding = response_head_out(parse_response_head(raw), raw, None, True, keep, UntilClose())
    assert coding is BodyCoding.CHUNK and close and parse_response_head(head).get("connection") == "close"
    # no Content-Type and a known length: the type is guessed from the first bytes (Go's server);
    # not for an encoded body, nor one of unknown length
    raw = ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + date + "\r\n").encode()
    assert response_head_out(parse_response_head(raw), raw, None, False, keep, ContentLengthBody(2)) == \
        (raw, False, False, BodyCoding.SNIFF)
    raw = ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\n" + date + "\r\n").encode()
    assert response_head_out(parse_response_head(raw), raw, None, False, keep, ContentLengthBody(2))[3] is \
        BodyCoding.AS_IS
    # ... nor when the route sets one (responseHeaders.set: Go's ModifyResponse runs first): one
    # Content-Type, the route's
    raw = ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + date + "\r\n").encode()
    head, _, _, coding = response_head_out(parse_response_head(raw), raw,
                                           Route("a", response_headers={"Content-Type": "a/b"}), False, keep,
                                           ContentLengthBody(2))
    assert coding is BodyCoding.AS_IS and parse_response_head(head).get_all("content-type") == ["a/b"]
    # an HTTP/1.0 service answering an HTTP/1.1 client: the client gets 1.1, and Go's reason phrase
    raw = b"HTTP/1.0 404 Nope\r\nContent-Length: 0\r\n\r\n"
    head, upstream_close, close, _ = response_head_out(parse_response_head(raw), raw, None, False, keep, NoBody())
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n") and upstream_close and not close
    raw = ("HTTP/1.1 299 Fine\r\nContent-Length: 0\r\n" + date + "\r\n").encode()
    head, _, _, _ = response_head_out(parse_response_head(raw), raw, None, False, keep, NoBody())
    assert head.startswith(b"HTTP/1.1 299 status code 299\r\n")
    # no body (204, 304): the framing fields go, and for 304 the Content-Type (Go's suppressedHeaders)
    raw = ("HTTP/1.1 304 Not Modified\r\nContent-Type: a/b\r\nContent-Length: 9\r\nETag: x\r\n" + date
           + "\r\n").encode()
    out = parse_response_head(response_head_out(parse_response_head(raw), raw, None, False, keep, NoBody())[0])
    assert out.get("content-type") is None and out.get("content-length") is None and out.get("etag") == "x"
    # a chunked coding beside a length: the length goes (Go's transport); Trailer only with chunks
    raw = ("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n" + date
           + "\r\n").encode()
    out = parse_response_head(response_head_out(parse_response_head(raw), raw, None, False, keep, ChunkedBody())[0])
    assert out.get("content-length") is None and out.get("trailer") == "X"
    raw = ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTrailer: X\r\n" + date + "\r\n").encode()
    out = parse_response_head(response_head_out(parse_response_head(raw), raw, None, False, keep,
                                                ContentLengthBody(2))[0])
    assert out.get("trailer") is None and out.get("content-length") == "2"


def test_http_date_is_imf_fixdate(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from email.utils import formatdate

    from aiofrp.proto.http import http_date

    for t in (0, 951782400, 1_800_000_000, 1_764_892_800 + 86399):  # 1970, 2000-02-29, 2027, a day's end
        monkeypatch.setattr(time, "time", lambda t=t: t + 0.5)
        assert http_date() == formatdate(t, usegmt=True)
