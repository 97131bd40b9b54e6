"""frps's virtual hosts (frp §6): the HTTP reverse proxy, HTTPS routing by SNI, tcpmux CONNECT.

Each vhost owns a :class:`~.router.Routers` table and its listener on ``proxyBindAddr`` (or, for
http/https, a share of the bind port when the ports are equal, see ``service._Sniff``); frps
creates them (server/service.py: Server.start_vhosts). Proxies register :class:`~.router.Route`
entries in it (server/proxies/http.py, https.py, tcpmux.py). A vhost knows the proxies only
through the small protocol it uses of them (``HTTPMember``, ``ConnMember``), so this package
imports nothing of server/proxies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from ...proto.addr import join_host_port
from ..errors import ProxyError
from .router import Route, RouterConflict, Routers

__all__ = [
    "Elsewhere", "Route", "RouterConflict", "Routers", "Spawn", "build_domains", "canonical_addr", "register_routes",
    "unregister_routes", "validate_domains",
]

M = TypeVar("M")
Spawn = Callable[[Coroutine[Any, Any, None]], object]


class Elsewhere(Protocol):
    """frps --workers N (server/workers/handover.py): a connection whose route this process does
    not have goes to the worker that has it; ``not_found`` answers it here when none has."""

    def try_elsewhere(self, kind: str, host: str, path: str, user: str, data: bytes,
                      transport: asyncio.Transport, not_found: Callable[[], None]) -> None: ...
"""Runs a background task of frps (server/service.py: Server.spawn)."""


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


def register_routes(router: Routers[Route[M]], routes: list[Route[M]], member: M) -> list[Route[M]]:
    """Add every route with ``member`` serving it; all or nothing (``router config conflict``)."""
    done: list[Route[M]] = []
    try:
        for route in routes:
            router.add(route.domain, route.location, route.route_by_http_user, route)
            route.members.append(member)
            done.append(route)
    except RouterConflict as exc:
        unregister_routes(router, done, member)
        raise ProxyError(str(exc)) from None
    return done


def unregister_routes(router: Routers[Route[M]], routes: list[Route[M]], member: M) -> None:
    for route in routes:
        if member in route.members:
            route.members.remove(member)
        if not route.members:
            current = router.get(route.domain, route.location, route.route_by_http_user)
            if current is route:
                router.remove(route.domain, route.location, route.route_by_http_user)
