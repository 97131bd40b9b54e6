"""tcpmux proxy (multiplexer ``httpconnect``): CONNECT requests on frps's tcpmux port, by host."""

from __future__ import annotations

import logging

from ..errors import ProxyError
from ..vhost import Route, build_domains, canonical_addr, validate_domains
from ..vhost.https import ConnMember
from . import register
from .base import VhostProxy

log = logging.getLogger("aiofrp.server.proxy.tcpmux")


@register("tcpmux")
class TCPMuxProxy(VhostProxy[ConnMember]):
    async def run(self) -> None:
        cfg = self.server.cfg
        req = self.req
        multiplexer = req.multiplexer or "httpconnect"
        if multiplexer != "httpconnect":
            raise ProxyError(f"unknown multiplexer [{multiplexer}]")
        vhost = self.server.tcpmux_vhost
        if not cfg.tcpmux_http_connect_port or vhost is None:
            raise ProxyError(
                "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server"
            )
        validate_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        routes: list[Route[ConnMember]] = [
            Route(d, "", req.route_by_http_user, http_user=req.http_user, http_pwd=req.http_pwd, first_member_first=True)
            for d in domains
        ]
        self._register_routes(vhost.router, routes, self)
        for d in domains:
            self.xl.on(log).info("tcpmux httpconnect multiplexer listens for host [%s] group [%s] routeByHTTPUser [%s]",
                                 d, req.group, req.route_by_http_user)
        self.remote_addr = ",".join(canonical_addr(d, cfg.tcpmux_http_connect_port) for d in domains)
