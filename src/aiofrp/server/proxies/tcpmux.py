"""tcpmux proxy (multiplexer ``httpconnect``): CONNECT requests on frps's tcpmux port, by host."""

from __future__ import annotations

import logging

from ..errors import ProxyError
from ..vhost import Route, build_domains, canonical_addr, validate_domains
from ..vhost.https import ConnMember
from . import register
from .base import VhostProxy

log = logging.getLogger("aiofrp.server.proxy.tcpmux")

_NOT_ENABLED = "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server"


@register("tcpmux")
class TCPMuxProxy(VhostProxy[ConnMember]):
    def validate(self) -> None:
        """Go's order: the tcpmux port (for httpconnect only), the domains; another multiplexer,
        or none (Go frpc always names it), is refused by run()."""
        super().validate()
        cfg = self.server.cfg
        if self.req.multiplexer == "httpconnect" and (not cfg.tcpmux_http_connect_port or self.server.tcpmux_vhost is None):
            raise ProxyError(_NOT_ENABLED)
        validate_domains(self.req.custom_domains, self.req.subdomain, cfg.subdomain_host)

    async def run(self) -> None:
        cfg = self.server.cfg
        req = self.req
        if req.multiplexer != "httpconnect":
            raise ProxyError(f"unknown multiplexer [{req.multiplexer}]")
        vhost = self.server.tcpmux_vhost
        if vhost is None:  # validate() said so already
            raise ProxyError(_NOT_ENABLED)
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
