"""Client-side visitors (stcp, sudp, xtcp), one module per type, looked up in a registry by type
name (the same shape as the client's proxies and plugins and the server's proxies)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ...config.visitor import VisitorBaseConfig
from .base import Visitor, VisitorHost

__all__ = ["VISITOR_TYPES", "Visitor", "VisitorHost", "new_visitor", "register"]

VISITOR_TYPES: dict[str, type[Visitor[VisitorBaseConfig]]] = {}

V = TypeVar("V", bound=type[Visitor[VisitorBaseConfig]])


def register(*visitor_types: str) -> Callable[[V], V]:
    def deco(cls: V) -> V:
        for t in visitor_types:
            VISITOR_TYPES[t] = cls
        return cls

    return deco


def new_visitor(client: VisitorHost, cfg: VisitorBaseConfig) -> Visitor[VisitorBaseConfig] | None:
    cls = VISITOR_TYPES.get(cfg.type)
    return cls(client, cfg) if cls is not None else None


from . import (
    stcp,  # noqa: F401  (registers itself)
    sudp,  # noqa: F401  (registers itself)
    xtcp,  # noqa: F401  (registers itself)
)
