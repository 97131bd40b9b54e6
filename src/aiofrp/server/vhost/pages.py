"""Canned responses of the vhosts: frp's "not found" page, auth challenges, error statuses."""

from __future__ import annotations

import logging
from typing import NamedTuple

from ... import FRP_VERSION
from ...proto.http import STATUS_TEXT, http_date

log = logging.getLogger("aiofrp.server.vhost")

NOT_FOUND_PAGE = b"""<!DOCTYPE html>
<html>
<head>
<title>Not Found</title>
<style>
    body {
        width: 35em;
        margin: 0 auto;
        font-family: Tahoma, Verdana, Arial, sans-serif;
    }
</style>
</head>
<body>
<h1>The page you requested was not found.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>The server is powered by <a href="https://github.com/fatedier/frp">frp</a>.</p>
<p><em>Faithfully yours, frp.</em></p>
</body>
</html>
"""

CONNECT_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
PROXY_AUTH_REQUIRED = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="Restricted"\r\nContent-Length: 0\r\n\r\n'
)


def not_found_page(custom_path: str) -> bytes:
    """frp's page, or the ``custom404Page`` file when it is set and readable (read every time, as Go)."""
    if custom_path:
        try:
            with open(custom_path, "rb") as f:
                return f.read()
        except OSError as exc:
            log.warning("read custom 404 page error: %s", exc)
    return NOT_FOUND_PAGE


def raw_not_found(custom_path: str) -> bytes:
    """The 404 written on a raw connection (CONNECT and tcpmux failures): Go's NotFoundResponse."""
    body = not_found_page(custom_path)
    return (
        f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(body)}\r\nContent-Type: text/html\r\n"
        f"Server: frp/{FRP_VERSION}\r\n\r\n"
    ).encode() + body


class Page(NamedTuple):
    """A response frps writes itself; :func:`render` makes it fit the request it answers."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def render(page: Page, *, method: str = "GET", minor: int = 1, close: bool = False) -> bytes:
    """``page`` as Go's net/http server writes it for a request of ``method`` over HTTP/1.``minor``:
    the client's version in the status line, ``Date``, the length of the body (sent only when the
    method is not HEAD; no length for HEAD when there is no body, as Go's server counts what the
    handler wrote), and ``Connection: close`` (HTTP/1.1) or ``keep-alive`` (HTTP/1.0)."""
    body = page.body
    lines = [f"HTTP/1.{1 if minor else 0} {page.status} {STATUS_TEXT.get(page.status, '')}"]
    lines.extend(f"{k}: {v}" for k, v in page.headers)
    lines.append(f"Date: {http_date()}")
    if body or method != "HEAD":
        lines.append(f"Content-Length: {len(body)}")
    if body:
        lines.append(f"Content-Type: {page.content_type}")
    if close:
        if minor:
            lines.append("Connection: close")
    elif not minor:
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if method == "HEAD" else head + body


# The request errors Go's net/http server names in its answer (its statusError); the others read
# as a bare "400 Bad Request" (our detail goes to frps's debug log).
_NAMED_ERRORS = frozenset({"malformed Host header", "missing required Host header", "invalid header name"})


def error_response(status: int, detail: str = "") -> bytes:
    """What Go's server writes for a request it cannot parse, byte for byte (then it closes): no
    Date, no length, the body ends with the connection."""
    if status == 431:
        line = body = "431 Request Header Fields Too Large"
    elif status == 505:
        text = "505 HTTP Version Not Supported: unsupported protocol version"
        line = body = text
    elif status == 501:
        line, body = "501 Not Implemented", "Unsupported transfer encoding"
    elif status == 400 and detail in _NAMED_ERRORS:
        line = body = f"400 Bad Request: {detail}"
    else:
        line = body = f"{status} {STATUS_TEXT.get(status, '')}"
    return (f"HTTP/1.1 {line}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            f"{body}").encode("latin-1")


UNAUTHORIZED = Page(
    401, b"Unauthorized\n",
    headers=(("Www-Authenticate", 'Basic realm="Restricted"'), ("X-Content-Type-Options", "nosniff")),
)
PROXY_UNAUTHORIZED = Page(
    407, b"Proxy Authentication Required\n",
    headers=(("Proxy-Authenticate", 'Basic realm="Restricted"'), ("X-Content-Type-Options", "nosniff")),
)
GATEWAY_TIMEOUT = Page(504)
# Go's server answers an Expect other than 100-continue itself (sendExpectationFailed), then closes;
# its own Connection: close is the one HTTP/1.0 clients get too
EXPECTATION_FAILED = Page(417)
EXPECTATION_FAILED_10 = Page(417, headers=(("Connection", "close"),))
