"""tcpmux proxy (multiplexer ``httpconnect``): CONNECT requests on frps's tcpmux port, by host."""

from __future__ import annotations

import logging
from typing import Any

from ..vhost import Route, build_domains, canonical_addr, validate_domains
from ..vhost import unregister_routes as _unregister
from . import register
from .base import ProxyError, ServerProxy

log = logging.getLogger("aiofrp.server.proxy.tcpmux")


@register("tcpmux")
class TCPMuxProxy(ServerProxy):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.routes: list[Route] = []
        self._router: Any = None

    async def run(self) -> None:
        cfg = self.server.cfg
        req = self.req
        multiplexer = req.multiplexer or "httpconnect"
        if multiplexer != "httpconnect":
            raise ProxyError(f"unknown multiplexer [{multiplexer}]")
        vhost = getattr(self.server, "tcpmux_vhost", None)
        if not cfg.tcpmux_http_connect_port or vhost is None:
            raise ProxyError(
                "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server"
            )
        validate_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        routes = [Route(d, "", req.route_by_http_user, http_user=req.http_user, http_pwd=req.http_pwd)
                  for d in domains]
        self._router = vhost.router
        self.routes = self.server.groups.register_routes("tcpmux", vhost.router, routes, self)
        for d in domains:
            log.info("[%s] tcpmux httpconnect multiplexer listens for host [%s] group [%s] routeByHTTPUser [%s]",
                     self.name, d, req.group, req.route_by_http_user)
        self.remote_addr = ",".join(canonical_addr(d, cfg.tcpmux_http_connect_port) for d in domains)

    def close(self) -> None:
        if self._router is not None:
            _unregister(self._router, self.routes, self)
            self.routes = []
            self.server.groups.leave_vhost("tcpmux", self)
        super().close()
