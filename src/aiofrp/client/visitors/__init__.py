"""Client-side visitors (stcp, sudp, xtcp), one module per type, looked up by type name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Visitor

if TYPE_CHECKING:
    from ..service import Client

__all__ = ["VISITOR_TYPES", "Visitor", "new_visitor", "register"]

VISITOR_TYPES: dict[str, type[Visitor]] = {}


def register(visitor_type: str):
    def deco(cls: type[Visitor]) -> type[Visitor]:
        VISITOR_TYPES[visitor_type] = cls
        cls.type = visitor_type
        return cls

    return deco


def new_visitor(client: Client, cfg: Any) -> Visitor | None:
    cls = VISITOR_TYPES.get(cfg.type)
    return cls(client, cfg) if cls is not None else None


from . import (
    stcp,  # noqa: F401  (registers itself)
    sudp,  # noqa: F401  (registers itself)
    xtcp,  # noqa: F401  (registers itself)
)
