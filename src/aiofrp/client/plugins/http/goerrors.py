"""The answers Go's ``net/http`` server writes itself for a request it cannot read (server.go,
``conn.serve``), as bytes. No aiohttp here: ``http_proxy`` answers a first head with them before
any aiohttp is imported, the aiohttp-served plugins through ``responses.RawResponse``."""

from __future__ import annotations

_ERROR_HEADERS = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
GO_400 = f"HTTP/1.1 400 Bad Request{_ERROR_HEADERS}400 Bad Request".encode()
GO_431 = (f"HTTP/1.1 431 Request Header Fields Too Large{_ERROR_HEADERS}"
          "431 Request Header Fields Too Large").encode()
GO_501_TE = f"HTTP/1.1 501 Not Implemented{_ERROR_HEADERS}Unsupported transfer encoding".encode()


def go_status_error(code: int, reason: str, text: str) -> bytes:
    """Go's ``statusError`` answer: ``HTTP/1.1 400 Bad Request: missing required Host header``,
    the same words as the body."""
    line = f"{code} {reason}: {text}"
    return f"HTTP/1.1 {line}{_ERROR_HEADERS}{line}".encode()


GO_NO_HOST = go_status_error(400, "Bad Request", "missing required Host header")
GO_505 = go_status_error(505, "HTTP Version Not Supported", "unsupported protocol version")

__all__ = ["GO_400", "GO_431", "GO_501_TE", "GO_505", "GO_NO_HOST", "go_status_error"]
