"""aiohttp responses without aiohttp's own ``Server`` header: Go's ``http.Server`` sends none, and
the reverse-proxy plugins pass the upstream's headers on as they are (its ``Server`` included);
and the answers Go's ``http.Server`` writes itself for a request it cannot read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from .goerrors import GO_400, GO_431, GO_501_TE, GO_505, GO_NO_HOST

if TYPE_CHECKING:
    from aiohttp.abc import AbstractStreamWriter


class _NoDefaultServer(web.StreamResponse):
    async def _prepare_headers(self) -> None:
        # aiohttp's _prepare_headers does headers.setdefault("Server", SERVER_SOFTWARE) and, for a
        # body, setdefault("Content-Type", "application/octet-stream"): take out only what it
        # added, never an upstream's own header (Go's server adds neither; a Content-Type it
        # guesses from the body, see go_sniffs, is set before this)
        had_server = hdrs.SERVER in self.headers
        had_type = hdrs.CONTENT_TYPE in self.headers
        await super()._prepare_headers()
        if not had_server:
            self.headers.popall(hdrs.SERVER, None)
        if not had_type:
            self.headers.popall(hdrs.CONTENT_TYPE, None)


class StreamResponse(_NoDefaultServer):
    pass


class Response(web.Response, _NoDefaultServer):
    pass


class BufferedStreamResponse(_NoDefaultServer):
    """A stream whose head waits for the first body bytes (or the end) and goes out with them in
    one transport write: one TLS write and one mux frame instead of two for a small answer (Go's
    ``http.Server`` buffers the head the same way until the handler writes or flushes). Only for
    bodies that follow at once: a file, an upstream answer with a Content-Length."""

    _send_headers_immediately = False


def body_allowed(status: int, method: str) -> bool:
    """Whether an answer with this status, to this method, carries a body."""
    return method != "HEAD" and status >= 200 and status not in (204, 304)


def go_sniffs(headers: Mapping[str, str], status: int, method: str, *, reverse_proxy: bool = True) -> bool:
    """Whether Go's ``net/http`` server, writing this proxied response, guesses a Content-Type
    from the first body bytes (``http.DetectContentType``): none given, no Content-Encoding, a
    status and method with a body. Behind ``httputil.ReverseProxy`` a chunked upstream body is
    not sniffed (its head is flushed before the first bytes; seen with Go 0.65: a close-delimited
    or Content-Length body is sniffed, a chunked one never); a handler that copies the body
    (``reverse_proxy=False``: http_proxy's ``io.Copy``) sniffs any."""
    if hdrs.CONTENT_TYPE in headers or headers.get(hdrs.CONTENT_ENCODING, "").strip():
        return False
    if not body_allowed(status, method):
        return False
    return not reverse_proxy or "chunked" not in headers.get(hdrs.TRANSFER_ENCODING, "").lower()


# -- Go's net/http server answers for requests it cannot read (bytes in .goerrors) --------------

_VERSION = re.compile(r"HTTP/(\d+)\.(\d+)'")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def go_parse_error(exc: BaseException | None, too_large: bytes = GO_431) -> bytes:
    """What Go's server answers for a request head aiohttp's parser refused with ``exc``
    (``too_large`` for a line or header past aiohttp's limit)."""
    from aiohttp.http_exceptions import LineTooLong

    if isinstance(exc, LineTooLong):
        return too_large
    text = str(exc or "")
    if "Missing 'Host' header" in text:
        return GO_NO_HOST
    if "Transfer-Encoding" in text:
        return GO_501_TE
    m = _VERSION.search(text) if "HTTP version" in text else None
    if m is not None and m.group(1) != "1":
        return GO_505
    return GO_400


def bad_target(raw_path: str) -> bool:
    """Whether Go's ``url.ParseRequestURI`` refuses this request target (Go answers 400): a
    ``%`` not followed by two hex digits in the path."""
    return "%" in raw_path and _BAD_ESCAPE.search(raw_path.partition("?")[0]) is not None


class RawResponse(web.StreamResponse):
    """``raw`` written as it is (an answer Go's server writes itself, not a handler's), then the
    connection closes."""

    def __init__(self, raw: bytes) -> None:
        super().__init__(status=400)
        self._raw = raw
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        transport = request.transport
        if self._raw and transport is not None and not transport.is_closing():
            transport.write(self._raw)
        self._raw = b""
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None
