"""Client-side visitors (stcp, sudp, xtcp), one module per type, looked up in a registry by type
name (the same shape as the client's proxies and plugins and the server's proxies)."""

from __future__ import annotations

from ...config.visitor import VisitorBaseConfig
from ...registry import Registry
from .base import Visitor, VisitorHost

__all__ = ["REGISTRY", "VISITOR_TYPES", "Visitor", "VisitorHost", "new_visitor", "register"]

REGISTRY: Registry[type[Visitor[VisitorBaseConfig]]] = Registry("visitor")
VISITOR_TYPES = REGISTRY.types
register = REGISTRY.register


def new_visitor(client: VisitorHost, cfg: VisitorBaseConfig) -> Visitor[VisitorBaseConfig] | None:
    cls = REGISTRY.get(cfg.type)
    return cls(client, cfg) if cls is not None else None


# Each module registers itself when a config first uses its type (registry.py).
for _t in ("stcp", "sudp", "xtcp"):
    REGISTRY.declare(f"{__name__}.{_t}", _t)
