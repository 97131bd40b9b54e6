"""Server-side proxies, one module per proxy type, looked up in a registry by type name."""

from __future__ import annotations

from ...proto import msg as m
from ...registry import Registry
from ..errors import ProxyError
from .base import ProxyControl, ServerProxy

__all__ = ["PROXY_TYPES", "REGISTRY", "ProxyError", "ServerProxy", "new_server_proxy", "register"]

REGISTRY: Registry[type[ServerProxy]] = Registry("proxy")
PROXY_TYPES = REGISTRY.types
register = REGISTRY.register


def new_server_proxy(control: ProxyControl, req: m.NewProxy) -> ServerProxy:
    ptype = req.proxy_type or "tcp"
    cls = REGISTRY.get(ptype)
    if cls is None:
        raise ProxyError(f"unknown proxy type: {ptype}")  # Go: config.NewProxyConfigurerFromMsg
    return cls(control, req)


# Each module registers itself when a client first asks for one of its types (registry.py).
for _t in ("http", "https", "stcp", "sudp", "tcp", "tcpmux", "udp", "xtcp"):
    REGISTRY.declare(f"{__name__}.{_t}", _t)
