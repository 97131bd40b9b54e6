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
