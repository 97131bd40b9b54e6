"""https proxy: connections of frps's vhost HTTPS port whose SNI matches go through untouched."""

from __future__ import annotations

import logging

from ..errors import ProxyError
from ..vhost import Route, build_domains, canonical_addr, validate_domains
from ..vhost.https import ConnMember
from . import register
from .base import VhostProxy

log = logging.getLogger("aiofrp.server.proxy.https")


@register("https")
class HTTPSProxy(VhostProxy[ConnMember]):
    def validate(self) -> None:
        super().validate()
        cfg = self.server.cfg
        if not cfg.vhost_https_port or self.server.https_vhost is None:
            raise ProxyError("type [https] not supported when vhost https port is not set")
        validate_domains(self.req.custom_domains, self.req.subdomain, cfg.subdomain_host)

    async def run(self) -> None:
        cfg = self.server.cfg
        vhost = self.server.https_vhost
        if vhost is None:  # validate() said so already
            raise ProxyError("type [https] not supported when vhost https port is not set")
        req = self.req
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        routes: list[Route[ConnMember]] = [Route(d) for d in domains]
        self._register_routes(vhost.router, routes, self)
        for d in domains:
            self.xl.on(log).info("https proxy listen for host [%s] group [%s]", d, req.group)
        self.remote_addr = ",".join(canonical_addr(d, cfg.vhost_https_port) for d in domains)
