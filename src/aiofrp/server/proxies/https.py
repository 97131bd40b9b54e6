"""https proxy: connections of frps's vhost HTTPS port whose SNI matches go through untouched."""

from __future__ import annotations

import logging
from typing import Any

from ..vhost import Route, build_domains, canonical_addr, validate_domains
from ..vhost import unregister_routes as _unregister
from . import register
from .base import ProxyError, ServerProxy

log = logging.getLogger("aiofrp.server.proxy.https")


@register("https")
class HTTPSProxy(ServerProxy):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.routes: list[Route] = []
        self._router: Any = None

    async def run(self) -> None:
        cfg = self.server.cfg
        vhost = getattr(self.server, "https_vhost", None)
        if not cfg.vhost_https_port or vhost is None:
            raise ProxyError("type [https] not supported when vhost https port is not set")
        req = self.req
        validate_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        self._router = vhost.router
        self.routes = self.server.groups.register_routes("https", vhost.router, [Route(d) for d in domains], self)
        for d in domains:
            log.info("[%s] https proxy listen for host [%s] group [%s]", self.name, d, req.group)
        self.remote_addr = ",".join(canonical_addr(d, cfg.vhost_https_port) for d in domains)

    def close(self) -> None:
        if self._router is not None:
            _unregister(self._router, self.routes, self)
            self.routes = []
            self.server.groups.leave_vhost("https", self)
        super().close()
