"""tcpmux proxy (multiplexer ``httpconnect``): CONNECT requests on frps's tcpmux port, by host."""

from __future__ import annotations

import logging

from ..errors import ProxyError
from ..vhost import Route, build_domains, canonical_addr
from ..vhost.https import ConnMember
from . import register
from .base import VhostProxy

log = logging.getLogger("aiofrp.server.proxy.tcpmux")

@register("tcpmux")
class TCPMuxProxy(VhostProxy[ConnMember]):
    NOT_SERVED = "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server"

    def served(self) -> bool:
        """The tcpmux port is needed for httpconnect only; another multiplexer, or none (Go frpc
        always names it), is refused by run(), after the domains."""
        cfg = self.server.cfg
        return self.req.multiplexer != "httpconnect" or (
            bool(cfg.tcpmux_http_connect_port) and self.server.tcpmux_vhost is not None)

    async def run(self) -> None:
        cfg = self.server.cfg
        req = self.req
        if req.multiplexer != "httpconnect":
            raise ProxyError(f"unknown multiplexer [{req.multiplexer}]")
        vhost = self.server.tcpmux_vhost
        if vhost is None:  # validate() said so already
            raise ProxyError(self.NOT_SERVED)
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        routes: list[Route[ConnMember]] = [
            Route(d, "", req.route_by_http_user, http_user=req.http_user, http_pwd=req.http_pwd, first_member_first=True)
            for d in domains
        ]
        await self._register_routes(vhost.router, routes, self)
        for d in domains:
            self.xl.on(log).info("tcpmux httpconnect multiplexer listens for host [%s] group [%s] routeByHTTPUser [%s]",
                                 d, req.group, req.route_by_http_user)
        self.remote_addr = ",".join(canonical_addr(d, cfg.tcpmux_http_connect_port) for d in domains)
