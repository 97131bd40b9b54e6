"""https proxy: connections of frps's vhost HTTPS port whose SNI matches go through untouched."""

from __future__ import annotations

import logging

from ..errors import ProxyError
from ..vhost import Route, build_domains, canonical_addr
from ..vhost.https import ConnMember
from . import register
from .base import VhostProxy

log = logging.getLogger("aiofrp.server.proxy.https")


@register("https")
class HTTPSProxy(VhostProxy[ConnMember]):
    NOT_SERVED = "type [https] not supported when vhost https port is not set"

    def served(self) -> bool:
        return bool(self.server.cfg.vhost_https_port) and self.server.https_vhost is not None

    async def run(self) -> None:
        cfg = self.server.cfg
        vhost = self.server.https_vhost
        if vhost is None:  # validate() said so already
            raise ProxyError(self.NOT_SERVED)
        req = self.req
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        routes: list[Route[ConnMember]] = [Route(d) for d in domains]
        await self._register_routes(vhost.router, routes, self)
        for d in domains:
            self.xl.on(log).info("https proxy listen for host [%s] group [%s]", d, req.group)
        self.remote_addr = ",".join(canonical_addr(d, cfg.vhost_https_port) for d in domains)
