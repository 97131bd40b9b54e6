"""Head rewriting of the vhost HTTP proxy (Go's ReverseProxy with frp's Rewrite/ModifyResponse):
hop-by-hop headers, Host, X-Forwarded-*, ``requestHeaders.set`` / ``responseHeaders.set``."""

from __future__ import annotations

import enum

from ...proto.http import (
    BodyFramer,
    ChunkedBody,
    ContentLengthBody,
    NoBody,
    Request,
    Response,
    UntilClose,
    build_head,
    http_date,
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
    target = f"http://{host}{req.origin_target}" if req.url_host else req.target
    out.insert(0, ("Host", host))
    return build_head(f"{req.method} {target} HTTP/1.1", out)  # Go's Transport speaks 1.1 to the service


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
        # Go's net/http server guesses the type from the first body bytes it writes (only when
        # the length is known: an unknown-length body is flushed before any byte is sniffed)
        coding = BodyCoding.SNIFF
    updates = route.response_headers if route is not None else None
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
