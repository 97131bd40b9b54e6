"""aiohttp responses without aiohttp's own ``Server`` header: Go's ``http.Server`` sends none, and
the reverse-proxy plugins pass the upstream's headers on as they are (its ``Server`` included)."""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.http import SERVER_SOFTWARE


class _NoDefaultServer(web.StreamResponse):
    async def _write_headers(self) -> None:
        # aiohttp's _prepare_headers has just done headers.setdefault("Server", SERVER_SOFTWARE)
        if self.headers.get(hdrs.SERVER) == SERVER_SOFTWARE:
            del self.headers[hdrs.SERVER]
        await super()._write_headers()


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
