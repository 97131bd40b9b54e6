"""What ``http2http``, ``http2https``, ``https2http`` and ``https2https`` share: a reverse proxy to
``localAddr`` (:mod:`.http.reverse`) served on the work connections (:mod:`.http.serve`), over TLS
for the ``https2*`` ones. Each plugin module sets the four switches Go's plugins differ by.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, ClassVar

from ...config.plugin import (
    HTTP2HTTPPluginOptions,
    HTTP2HTTPSPluginOptions,
    HTTPS2HTTPPluginOptions,
    HTTPS2HTTPSPluginOptions,
)
from . import PluginError
from .base import ClientPlugin, WorkConn

if TYPE_CHECKING:
    from .http.reverse import ReverseProxy
    from .http.serve import HTTPServer

AnyHTTPProxyOptions = (
    HTTP2HTTPPluginOptions | HTTP2HTTPSPluginOptions | HTTPS2HTTPPluginOptions | HTTPS2HTTPSPluginOptions
)


class HTTPProxyPlugin(ClientPlugin[AnyHTTPProxyOptions]):
    """A Go ``ReverseProxy`` plugin; subclasses set the class variables."""

    FRONT_TLS: ClassVar[bool] = False  # https2*: the browser speaks TLS to the plugin
    UPSTREAM_TLS: ClassVar[bool] = False  # *2https: the plugin speaks TLS to localAddr
    FORWARDED: ClassVar[str] = "drop"  # X-Forwarded-*: "drop", "keep" or "append" (see http.reverse)
    READ_HEADER_TIMEOUT: ClassVar[float] = 0.0  # Go's http.Server.ReadHeaderTimeout

    def __init__(self, proxy_name: str, cfg: AnyHTTPProxyOptions) -> None:
        super().__init__(proxy_name, cfg)
        self._tls: ssl.SSLContext | None = None
        if self.FRONT_TLS:
            from .http.serve import server_tls_context

            crt = getattr(cfg, "crt_path", "")
            key = getattr(cfg, "key_path", "")
            try:
                self._tls = server_tls_context(crt, key, http2=bool(getattr(cfg, "enable_http2", True)))
            except (OSError, ValueError) as exc:
                raise PluginError(f"gen TLS config error: {exc}") from None
        self._server: HTTPServer | None = None
        self._proxy: ReverseProxy | None = None

    def _ensure(self) -> HTTPServer:
        if self._server is None:
            from .http.reverse import Forwarded, ProxyOptions, ReverseProxy
            from .http.serve import HTTPServer

            cfg = self.cfg
            opts = ProxyOptions(
                local_addr=cfg.local_addr, upstream_tls=self.UPSTREAM_TLS, forwarded=Forwarded(self.FORWARDED),
                host_header_rewrite=cfg.host_header_rewrite, set_headers=dict(cfg.request_headers.set),
                check_sni=self.FRONT_TLS,
            )
            self._proxy = proxy = ReverseProxy(self.proxy_name, opts)
            h2 = None
            if self._tls is not None:
                from .http.h2 import h2_factory

                h2 = h2_factory(proxy)
            self._server = HTTPServer(self.proxy_name, proxy, tls=self._tls, h2=h2,
                                      read_header_timeout=self.READ_HEADER_TIMEOUT)
        return self._server

    async def handle(self, conn: WorkConn) -> None:
        await self._ensure().serve(conn)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._proxy is not None:
            self._proxy.close()
