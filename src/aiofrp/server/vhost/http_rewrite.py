"""Head rewriting of the vhost HTTP proxy (Go's ReverseProxy with frp's Rewrite/ModifyResponse):
hop-by-hop headers, Host, X-Forwarded-*, ``requestHeaders.set`` / ``responseHeaders.set``, the
request target as Go's URL writes it back; and the CONNECT head as Go's ``req.Write`` sends it."""

from __future__ import annotations

import enum
import re

from ...proto.http import (
    BodyFramer,
    ChunkedBody,
    ContentLengthBody,
    NoBody,
    Request,
    Response,
    UntilClose,
    build_head,
    canonical_header_key,
    http_date,
    request_uri,
)
from .router import Route

# Request headers not forwarded (hop-by-hop, and the ones the proxy sets itself).
_DROP_REQ = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade",
    "host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
})
_HOP_RESP = frozenset({"connection", "keep-alive", "proxy-connection", "upgrade"})


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
    for name, value in req.headers:
        ln = name.lower()
        if ln in drop or ln in tokens or ln in set_lower:
            if ln == "x-forwarded-for":
                xff.append(value)
            elif ln == "te" and value.strip().lower() == "trailers":
                out.append((name, value))
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
    """The head for the client, as Go's ReverseProxy and net/http server write it: hop-by-hop
    headers of the service dropped (its ``Connection: close`` ends the work connection, not the
    client's), ``responseHeaders.set``, ``Date`` when the service sent none, the client's HTTP
    version, and a body framing the client can read.

    ``close``: the client's connection ends after this response. Returns (head, whether the
    service wants its connection closed, whether the client's connection closes, body coding)."""
    tokens: set[str] = set()
    hop = False
    date = False
    lengths = 0
    typed = False
    for name, value in resp.headers:
        ln = name.lower()
        if ln in _HOP_RESP:
            hop = True
            if ln == "connection":
                tokens.update(t.strip().lower() for t in value.split(","))
        elif ln == "date":
            date = True
        elif ln == "content-length":
            lengths += 1
        elif ln == "content-type":
            typed = True
        elif ln == "content-encoding" and value.strip():
            typed = True  # Go's server does not sniff an encoded body either
        elif ln == "transfer-encoding" and (resp.status in (204, 304) or resp.status < 200
                                            or (req is not None and req.method == "HEAD")):
            hop = True  # no body: Go's server writes no Transfer-Encoding for it
            tokens.add("transfer-encoding")
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
    if (not hop and not updates and not close and date and minor and lengths < 2
            and (coding is BodyCoding.AS_IS or coding is BodyCoding.SNIFF) and raw.startswith(b"HTTP/1.1 ")):
        return raw, upstream_close, False, coding
    headers = [(k, v) for k, v in resp.headers
               if (ln := k.lower()) not in _HOP_RESP and ln not in tokens]
    if lengths > 1:  # equal values (response_body refused others): one header, as Go writes it
        first = next(i for i, (k, _) in enumerate(headers) if k.lower() == "content-length")
        headers = [h for i, h in enumerate(headers) if i == first or h[0].lower() != "content-length"]
    if coding is BodyCoding.DECHUNK:
        headers = [(k, v) for k, v in headers if k.lower() not in ("transfer-encoding", "trailer")]
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
    # the service's status line in the client's version (Go's server writes its own)
    status_line = ("HTTP/1.1" if minor else "HTTP/1.0") + raw.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")[8:]
    return build_head(status_line, headers), upstream_close, close, coding
