"""``static_file``: serve ``localPath`` over HTTP on the proxy's work connections (Go's
``pkg/plugin/client/static_file.go``).

The web server (aiohttp, imported when such a proxy starts) is :mod:`.http.static`: Go's
``http.FileServer`` behaviour (directory listing, Content-Type from Go's mime table, Range,
conditional requests, symlinks followed), ``stripPrefix`` (``http.StripPrefix``),
``httpUser``/``httpPassword`` basic auth in constant time with Go's 200 ms delay on failure,
and frp's gzip wrapper; compared answer by answer with Go frpc in
``tests/compat/test_go_static_audit.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...config.plugin import StaticFilePluginOptions
from . import register
from .base import ClientPlugin, WorkConn

if TYPE_CHECKING:
    from .http.serve import HTTPServer


@register("static_file")
class StaticFilePlugin(ClientPlugin[StaticFilePluginOptions]):
    def __init__(self, proxy_name: str, cfg: StaticFilePluginOptions) -> None:
        super().__init__(proxy_name, cfg)
        self._server: HTTPServer | None = None

    def _ensure(self) -> HTTPServer:
        if self._server is None:
            from .http.serve import HTTPServer
            from .http.static import StaticFiles

            self._server = HTTPServer(self.proxy_name, StaticFiles(self.cfg), read_header_timeout=60.0)
        return self._server

    async def handle(self, conn: WorkConn) -> None:
        await self._ensure().serve(conn)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
