"""frps's virtual hosts (frp §6): the HTTP reverse proxy, HTTPS routing by SNI, tcpmux CONNECT.

Each vhost owns a :class:`~.router.Routers` table and its listener on ``proxyBindAddr`` (or, for
http/https, a share of the bind port when the ports are equal, see ``service._Sniff``). Proxies
register :class:`~.router.Route` entries in it (server/proxies/http.py, https.py, tcpmux.py).
"""

from __future__ import annotations

import logging
from typing import Any

from ...net.mux import fmt_addr
from ...proto.addr import join_host_port
from ..errors import ProxyError
from .router import Route, RouterConflict, Routers

__all__ = [
    "Route", "RouterConflict", "Routers", "build_domains", "canonical_addr", "register_routes",
    "start_vhosts", "validate_domains",
]

log = logging.getLogger("aiofrp.server.vhost")


def build_domains(custom_domains: list[str], subdomain: str, subdomain_host: str) -> list[str]:
    """The domains a proxy serves: its custom domains plus ``subdomain.subDomainHost``."""
    domains = [d for d in custom_domains if d]
    if subdomain:
        domains.append(f"{subdomain}.{subdomain_host}")
    return domains


def validate_domains(custom_domains: list[str], subdomain: str, subdomain_host: str) -> None:
    """frp's server-side checks of a proxy's domains (validateDomainConfigForServer)."""
    if subdomain_host:
        host_labels = len(subdomain_host.split("."))
        for domain in custom_domains:
            if host_labels < len(domain.split(".")) and subdomain_host in domain:
                raise ProxyError(f"custom domain [{domain}] should not belong to subdomain host [{subdomain_host}]")
    if subdomain:
        if not subdomain_host:
            raise ProxyError("subdomain is not supported because this feature is not enabled in server")
        if "." in subdomain or "*" in subdomain:
            raise ProxyError("'.' and '*' are not supported in subdomain")


def canonical_addr(host: str, port: int) -> str:
    """frp's CanonicalAddr: the bare host on ports 80 and 443, else ``host:port``."""
    if port in (80, 443):
        return host
    return join_host_port(host, port)


def register_routes(router: Routers[Route], routes: list[Route], member: Any) -> list[Route]:
    """Add every route with ``member`` serving it; all or nothing (``router config conflict``)."""
    done: list[Route] = []
    try:
        for route in routes:
            router.add(route.domain, route.location, route.route_by_http_user, route)
            route.members.append(member)
            done.append(route)
    except RouterConflict as exc:
        unregister_routes(router, done, member)
        raise ProxyError(str(exc)) from None
    return done


def unregister_routes(router: Routers[Route], routes: list[Route], member: Any) -> None:
    for route in routes:
        if member in route.members:
            route.members.remove(member)
        if not route.members:
            current = router.get(route.domain, route.location, route.route_by_http_user)
            if current is route:
                router.remove(route.domain, route.location, route.route_by_http_user)


async def start_vhosts(server: Any) -> None:
    """Create the vhosts configured in frps's config and their listeners (Server.start)."""
    from .http import HTTPVhost
    from .https import HTTPSVhost
    from .tcpmux import TCPMuxVhost

    cfg = server.cfg
    addr = server.proxy_bind_addr
    same_addr = addr == cfg.bind_addr

    async def listen(vhost: Any, port: int, what: str, shareable: bool) -> None:
        vhost.shared = shareable and same_addr and port == server.bind_port
        if vhost.shared:
            log.info("%s service shares the bind port %s", what, fmt_addr((addr, port)))
            return
        srv = await vhost.listen(addr, port)
        server._servers.append(srv)
        vhost.port = srv.sockets[0].getsockname()[1] if port == 0 else port
        log.info("%s service listen on %s", what, fmt_addr((addr, vhost.port)))

    if cfg.vhost_http_port:
        server.http_vhost = HTTPVhost(server)
        await listen(server.http_vhost, cfg.vhost_http_port, "http", True)
    if cfg.vhost_https_port:
        server.https_vhost = HTTPSVhost(server)
        await listen(server.https_vhost, cfg.vhost_https_port, "https", True)
    if cfg.tcpmux_http_connect_port:
        server.tcpmux_vhost = TCPMuxVhost(server)
        await listen(server.tcpmux_vhost, cfg.tcpmux_http_connect_port, "tcpmux httpconnect multiplexer", False)
