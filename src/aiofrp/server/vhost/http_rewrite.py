"""Head rewriting of the vhost HTTP proxy (Go's ReverseProxy with frp's Rewrite/ModifyResponse):
hop-by-hop headers, Host, X-Forwarded-*, ``requestHeaders.set`` / ``responseHeaders.set``, the
request target as Go's URL writes it back; and the CONNECT head as Go's ``req.Write`` sends it."""

from __future__ import annotations

import enum
import re

from ...proto.http import (
    STATUS_TEXT,
    BodyFramer,
    ChunkedBody,
    ContentLengthBody,
    NoBody,
    Request,
    Response,
    UntilClose,
    build_head,
    canonical_header_key,
    go_status_text,
    http_date,
    request_uri,
)
from .router import Route

# Request headers not forwarded as received (hop-by-hop, the ones the proxy sets itself, and
# those Go's Request.Write writes its own way: User-Agent, Trailer).
_DROP_REQ = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade",
    "host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "user-agent",
})
# Go's httputil hopHeaders, less Transfer-Encoding (the framing is decided apart) and Trailer
# (kept for a chunked body: Go announces the trailers it forwards)
_HOP_RESP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "upgrade",
})
# the response fields response_head_out looks at, by kind (one dict lookup per field)
_HOP, _DATE, _LENGTH, _TYPE, _ENCODING, _CODING, _TRAILER = range(7)
_RESP_FIELDS = dict.fromkeys(_HOP_RESP, _HOP) | {
    "date": _DATE, "content-length": _LENGTH, "content-type": _TYPE, "content-encoding": _ENCODING,
    "transfer-encoding": _CODING, "trailer": _TRAILER,
}
# what Go's server drops from a response that has no body (suppressedHeaders)
_NO_BODY_204 = frozenset({"content-length", "transfer-encoding"})
_NO_BODY_304 = frozenset({"content-length", "transfer-encoding", "content-type"})


def has_token(value: str, token: str) -> bool:
    """Go's ``httpguts.HeaderValuesContainsToken`` for one value: ``token`` is one of the
    comma-separated elements (case-insensitive, blanks around it ignored)."""
    return any(t.strip(" \t").lower() == token for t in value.split(","))


_LENGTH_ALWAYS = frozenset({"POST", "PUT", "PATCH"})  # Go's Transport sends Content-Length: 0 for these


def request_head_out(
    req: Request, route: Route, client_ip: str, upgrade: str | None, tokens: set[str], framer: BodyFramer,
) -> bytes:
    """The request head sent to the local service (Go's ReverseProxy + frp's Rewrite)."""
    updates = route.headers
    set_lower = {k.lower() for k in updates} if updates else ()
    drop = _DROP_REQ
    out: list[tuple[str, str]] = []
    xff: list[str] = []
    agent: str | None = None
    te_trailers = False
    trailer: list[str] | None = None
    for name, value in req.headers:
        ln = name.lower()
        if ln in drop or ln in tokens or ln in set_lower:
            if ln == "x-forwarded-for":
                xff.append(value)
            elif ln == "user-agent":
                if agent is None and ln not in set_lower and ln not in tokens:
                    agent = value  # Go's Request.Write sends the first one only, none when empty
            elif ln == "te":
                te_trailers = te_trailers or has_token(value, "trailers")
            elif ln == "trailer" and type(framer) is ChunkedBody:
                trailer = (trailer or []) + value.split(",")
            continue
        if ln == "content-length":
            continue  # one, written below (Go merges repeated equal values, drops it for a chunked body)
        out.append((name, value))
    host = route.host_rewrite or req.host
    xff.append(client_ip)
    for name, value in (("X-Forwarded-For", ", ".join(xff)), ("X-Forwarded-Host", req.host),
                        ("X-Forwarded-Proto", "http")):
        if name.lower() not in set_lower:
            out.append((name, value))
    if te_trailers:  # Go tells the service that trailers are understood when the client did
        out.append(("Te", "trailers"))
    if trailer is not None:  # Go's Request.Write announces the trailers: names canonical, sorted
        keys = sorted({canonical_header_key(k.strip(" \t")) for k in trailer if k.strip(" \t")})
        if keys:
            out.append(("Trailer", ",".join(keys)))
    for name, value in updates.items():
        if name.lower() != "host":
            out.append((name, value))
    if type(framer) is ContentLengthBody:
        out.append(("Content-Length", str(framer.remaining)))
    elif type(framer) is NoBody and req.method in _LENGTH_ALWAYS:
        out.append(("Content-Length", "0"))
    if upgrade is not None:
        out.append(("Connection", "Upgrade"))
        out.append(("Upgrade", upgrade))
    # Go sends URL.RequestURI(): the path re-escaped where needed, the query cleaned (rare: a test first)
    origin = req.origin_target if req.plain else request_uri(req.origin_target)
    target = f"http://{host}{origin}" if req.url_host else origin
    out.insert(0, ("Host", host))
    if agent:
        out.insert(1, ("User-Agent", agent))  # where Go's Request.Write puts it
    return build_head(f"{req.method} {target} HTTP/1.1", out)  # Go's Transport speaks 1.1 to the service


GO_USER_AGENT = "Go-http-client/1.1"
# headers Request.Write writes itself, or not at all (net/http reqWriteExcludeHeader)
_CONNECT_OWN = frozenset({"host", "user-agent", "content-length", "transfer-encoding", "trailer"})
_CLOSE_TOKEN = re.compile(r"(?:^|[ ,\t])close(?:$|[ ,\t])", re.IGNORECASE)  # net/http hasToken(v, "close")


def connect_head_out(req: Request, framer: BodyFramer) -> bytes:
    """The head of a CONNECT request as Go's connectHandler writes it to the work connection
    (``req.Write``): always HTTP/1.1; the target and ``Host`` both the authority of the request
    line (an origin-form target: its path re-escaped, the Host header); ``User-Agent`` first (Go's
    own when the client sent none, left out when the client's is empty); ``Connection: close``
    when the client's connection is not persistent and its first Connection header does not say
    so; the body's length or chunked coding; then the other headers, names canonical, sorted."""
    if req.url_host:
        target = host = req.url_host
    else:
        target = req.origin_target if req.plain else request_uri(req.origin_target, clean=False)
        host = req.host
    out = [("Host", host)]
    agent = req.get("user-agent")
    if agent is None:
        agent = GO_USER_AGENT
    if agent:
        out.append(("User-Agent", agent))
    tokens = req.connection_tokens() if req.headers else set()
    if ("close" in tokens or (not req.minor and "keep-alive" not in tokens)) and _CLOSE_TOKEN.search(
            req.get("connection") or "") is None:
        out.append(("Connection", "close"))
    if type(framer) is ContentLengthBody:
        out.append(("Content-Length", str(framer.remaining)))
    elif type(framer) is ChunkedBody:
        out.append(("Transfer-Encoding", "chunked"))
    named: dict[str, list[str]] = {}
    for name, value in req.headers:
        key = canonical_header_key(name)
        if key.lower() not in _CONNECT_OWN:
            named.setdefault(key, []).append(value)
    for key in sorted(named):
        out.extend((key, value) for value in named[key])
    return build_head(f"CONNECT {target} HTTP/1.1", out)


def set_headers(headers: list[tuple[str, str]], updates: dict[str, str]) -> list[tuple[str, str]]:
    lower = {k.lower() for k in updates}
    out = [(k, v) for k, v in headers if k.lower() not in lower]
    out.extend(updates.items())
    return out


class BodyCoding(enum.Enum):
    """How a response body goes to the client (Go's server frames what its ReverseProxy copies)."""

    AS_IS = "as the local service framed it"
    CHUNK = "close-delimited from the service, chunked to an HTTP/1.1 client kept alive"
    DECHUNK = "chunked from the service, close-delimited to an HTTP/1.0 client"
    SNIFF = "as framed, the head held for the first body bytes to guess a Content-Type from"
    # set by the upstream, not here: a known length whose body did not come with the head
    HOLD = "as framed, the head and the body held until more than 2 KiB of it or all of it came"


def response_head_out(
    resp: Response, raw: bytes, route: Route | None, close: bool, req: Request | None, framer: BodyFramer,
) -> tuple[bytes, bool, bool, BodyCoding]:
    """The head for the client, as Go's ReverseProxy and net/http server write it: Go's reason
    phrase, hop-by-hop headers of the service dropped (its ``Connection: close`` ends the work
    connection, not the client's), ``Content-Length`` beside a chunked coding dropped, the fields
    Go's server suppresses for 204 and 304 (``Content-Length``, ``Transfer-Encoding``; and
    ``Content-Type`` for 304), ``Trailer`` unless the body is chunked, ``responseHeaders.set``,
    ``Date`` when the service sent none, the client's HTTP version, and a body framing the client
    can read.

    ``close``: the client's connection ends after this response. Returns (head, whether the
    service wants its connection closed, whether the client's connection closes, body coding)."""
    tokens: set[str] = set()
    hop = False
    date = False
    lengths = 0
    typed = False
    ctype = te = trailer = False
    for name, value in resp.headers:
        ln = name.lower()
        kind = _RESP_FIELDS.get(ln)
        if kind is None:
            continue
        if kind == _HOP:
            hop = True
            if ln == "connection":
                tokens.update(t.strip().lower() for t in value.split(","))
        elif kind == _DATE:
            date = True
        elif kind == _LENGTH:
            lengths += 1
        elif kind == _TYPE:
            typed = ctype = True
        elif kind == _ENCODING:
            typed = typed or bool(value.strip())  # Go's server does not sniff an encoded body either
        elif kind == _CODING:
            te = True
        else:
            trailer = True
    status = resp.status
    drop = (_dropped(resp, req, lengths, ctype, te, trailer)  # beyond the hop-by-hop fields
            if te or trailer or status < 200 or status == 204 or status == 304 else _NOTHING)
    updates = route.response_headers if route is not None else None
    if updates and not typed:  # the route's responseHeaders.set (Go's ModifyResponse) comes first
        typed = any((lk := k.lower()) == "content-type" or (lk == "content-encoding" and v.strip())
                    for k, v in updates.items())
    upstream_close = "close" in tokens or (resp.minor == 0 and "keep-alive" not in tokens)
    minor = req.minor if req is not None else 1
    coding = BodyCoding.AS_IS
    if type(framer) is UntilClose:
        if minor:  # chunked, as Go's server frames an unknown length for HTTP/1.1 (closing or not)
            coding = BodyCoding.CHUNK
        else:
            close = True
    elif not minor and type(framer) is ChunkedBody:
        coding = BodyCoding.DECHUNK
        close = True
    elif not typed and type(framer) is ContentLengthBody:
        # Go's net/http server guesses the type from the first body bytes it writes (a known
        # length is held first; a close-delimited body: see http_upstream, which guesses from
        # the bytes that came with the head; a chunked one is flushed before any byte)
        coding = BodyCoding.SNIFF
    if (not hop and not drop and not updates and not close and date and minor and lengths < 2
            and (coding is BodyCoding.AS_IS or coding is BodyCoding.SNIFF) and raw.startswith(b"HTTP/1.1 ")
            and resp.reason == STATUS_TEXT.get(status)):
        return raw, upstream_close, False, coding
    if tokens:
        drop = drop | tokens
    headers = [(k, v) for k, v in resp.headers
               if (ln := k.lower()) not in _HOP_RESP and ln not in drop]
    if lengths > 1 and "content-length" not in drop:  # equal values (response_body refused others): one, as Go
        first = next(i for i, (k, _) in enumerate(headers) if k.lower() == "content-length")
        headers = [h for i, h in enumerate(headers) if i == first or h[0].lower() != "content-length"]
    if coding is BodyCoding.DECHUNK:  # the Trailer header stays (Go's server writes what it was given)
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    elif coding is BodyCoding.CHUNK:
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        headers.append(("Transfer-Encoding", "chunked"))
    if updates:
        headers = set_headers(headers, updates)
    if not date:
        headers.append(("Date", http_date()))
    if close:
        if minor:
            headers.append(("Connection", "close"))
    elif not minor:
        headers.append(("Connection", "keep-alive"))
    # Go's server writes its own status line: the client's version, Go's reason phrase
    return (build_head(f"HTTP/1.{1 if minor else 0} {status} {go_status_text(status)}", headers),
            upstream_close, close, coding)


_NOTHING: frozenset[str] = frozenset()


def _dropped(resp: Response, req: Request | None, lengths: int, ctype: bool, te: bool, trailer: bool) -> set[str]:
    """The fields of the service's answer that Go's transport and server leave out, beyond the
    hop-by-hop ones: framing fields of a body-less status, a length beside a chunked coding, a
    Trailer field without chunks."""
    drop: set[str] = set()
    status = resp.status
    if te:
        if resp.minor == 0:
            drop.add("transfer-encoding")  # Go's transport ignores it from an HTTP/1.0 service
        elif lengths:
            drop.add("content-length")  # Go's transport deletes it beside a chunked coding
    if status == 304 or status == 204 or status < 200:
        if te or lengths or (ctype and status == 304):
            drop.update(_NO_BODY_304 if status == 304 else _NO_BODY_204)
    elif te and req is not None and req.method == "HEAD":
        drop.add("transfer-encoding")  # no body: Go's server writes no Transfer-Encoding for it
    if trailer and (not te or resp.minor == 0):
        drop.add("trailer")  # trailers come only with a chunked body (Go's transport: fixTrailer)
    return drop


def interim_head(resp: Response, minor: int) -> bytes:
    """A 1xx answer as Go's server passes it on (ReverseProxy's ``Got1xxResponse``): the client's
    version, Go's reason phrase, the fields with canonical names, sorted, without
    ``Content-Length`` and ``Transfer-Encoding``, no Date."""
    fields = sorted(((canonical_header_key(k), v) for k, v in resp.headers
                     if k.lower() not in _NO_BODY_204), key=lambda kv: kv[0])
    return build_head(f"HTTP/1.{1 if minor else 0} {resp.status} {go_status_text(resp.status)}", fields)


# what Go's Response.Write leaves out of a 101 it passes on (respExcludeHeader)
_UPGRADE_EXCLUDE = frozenset({"content-length", "transfer-encoding", "trailer"})


def upgrade_head_out(resp: Response, route: Route | None) -> bytes:
    """A ``101 Switching Protocols`` as Go's ReverseProxy writes it back (``Response.Write``): the
    service's version and reason phrase (its bare status code when it gave none), its fields but
    the framing ones, ``responseHeaders.set``; no Date."""
    headers = [(k, v) for k, v in resp.headers if k.lower() not in _UPGRADE_EXCLUDE]
    if route is not None and route.response_headers:
        headers = set_headers(headers, route.response_headers)
    return build_head(f"HTTP/1.{resp.minor} {resp.status} {resp.reason or resp.status}", headers)


def upgrade_type(msg: Request | Response) -> str:
    """Go's httputil ``upgradeType``: the ``Upgrade`` value when ``Connection`` lists ``upgrade``, else ""."""
    if not any(has_token(v, "upgrade") for v in msg.get_all("connection")):
        return ""
    return msg.get("upgrade") or ""
