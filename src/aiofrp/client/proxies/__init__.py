"""Client-side proxies, one module per proxy type, looked up in a registry by type name (as the
server's proxies and the client's visitors and plugins): :class:`ProxyWrapper` keeps a proxy's
status (frp's phases), its :class:`Proxy` serves the work connections."""

from __future__ import annotations

from ...config.proxy import ProxyBaseConfig
from ...registry import Registry
from .base import Proxy, ProxyHost

__all__ = ["PROXY_TYPES", "REGISTRY", "Proxy", "ProxyHost", "ProxyPhase", "ProxyWrapper", "new_proxy", "register"]

REGISTRY: Registry[type[Proxy[ProxyBaseConfig]]] = Registry("proxy")
PROXY_TYPES = REGISTRY.types
register = REGISTRY.register


def new_proxy(client: ProxyHost, cfg: ProxyBaseConfig) -> Proxy[ProxyBaseConfig]:
    cls = REGISTRY.get(cfg.type)
    if cls is None:  # config/proxy.py knows no other types, and each of them is registered
        raise ValueError(f"proxy type [{cfg.type}] is not supported")
    return cls(client, cfg)


# Each module registers itself when a config first uses one of its types (registry.py).
REGISTRY.declare(f"{__name__}.general_tcp", "tcp", "http", "https", "tcpmux", "stcp")
REGISTRY.declare(f"{__name__}.sudp", "sudp")
REGISTRY.declare(f"{__name__}.udp", "udp")
REGISTRY.declare(f"{__name__}.xtcp", "xtcp")

from .wrapper import ProxyPhase, ProxyWrapper
