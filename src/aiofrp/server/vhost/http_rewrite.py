"""Head rewriting of the vhost HTTP proxy (Go's ReverseProxy with frp's Rewrite/ModifyResponse):
hop-by-hop headers, Host, X-Forwarded-*, ``requestHeaders.set`` / ``responseHeaders.set``."""

from __future__ import annotations

from ...proto.http import Request, Response, build_head
from .router import Route

# Request headers not forwarded (hop-by-hop, and the ones the proxy sets itself).
_DROP_REQ = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade",
    "host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
})
_HOP_RESP = frozenset({"connection", "keep-alive", "proxy-connection", "upgrade"})


def request_head_out(
    req: Request, route: Route, client_ip: str, upgrade: str | None, tokens: set[str], chunked: bool,
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
        if chunked and ln == "content-length":
            continue
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
    if upgrade is not None:
        out.append(("Connection", "Upgrade"))
        out.append(("Upgrade", upgrade))
    target = f"http://{host}{req.origin_target}" if req.url_host else req.target
    out.insert(0, ("Host", host))
    return build_head(f"{req.method} {target} HTTP/1.{req.minor}", out)


def set_headers(headers: list[tuple[str, str]], updates: dict[str, str]) -> list[tuple[str, str]]:
    lower = {k.lower() for k in updates}
    out = [(k, v) for k, v in headers if k.lower() not in lower]
    out.extend(updates.items())
    return out


def response_head_out(
    resp: Response, raw: bytes, route: Route | None, close: bool, req: Request | None,
) -> tuple[bytes, bool]:
    """(head for the client, whether the service wants the connection closed)."""
    tokens: set[str] = set()
    hop = False
    for name, value in resp.headers:
        ln = name.lower()
        if ln in _HOP_RESP:
            hop = True
            if ln == "connection":
                tokens.update(t.strip().lower() for t in value.split(","))
    upstream_close = "close" in tokens or (resp.minor == 0 and "keep-alive" not in tokens)
    close = close or upstream_close
    updates = route.response_headers if route is not None else None
    keep_alive_10 = not close and req is not None and req.minor == 0
    if not hop and not updates and not close and not keep_alive_10:
        return raw, upstream_close
    headers = [(k, v) for k, v in resp.headers
               if (ln := k.lower()) not in _HOP_RESP and ln not in tokens]
    if updates:
        headers = set_headers(headers, updates)
    if close:
        headers.append(("Connection", "close"))
    elif keep_alive_10:
        headers.append(("Connection", "keep-alive"))
    status_line = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    return build_head(status_line, headers), upstream_close
