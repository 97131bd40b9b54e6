"""Server-side proxies, one module per proxy type, looked up in a registry by type name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ...proto import msg as m
from ..errors import ProxyError
from .base import ProxyControl, ServerProxy

__all__ = ["PROXY_TYPES", "ProxyError", "ServerProxy", "new_server_proxy"]

PROXY_TYPES: dict[str, type[ServerProxy]] = {}


P = TypeVar("P", bound=type[ServerProxy])


def register(proxy_type: str) -> Callable[[P], P]:
    """Class decorator: ``cls`` serves proxies of type ``proxy_type``."""

    def deco(cls: P) -> P:
        PROXY_TYPES[proxy_type] = cls
        cls.type = proxy_type
        return cls

    return deco


def new_server_proxy(control: ProxyControl, req: m.NewProxy) -> ServerProxy:
    ptype = req.proxy_type or "tcp"
    cls = PROXY_TYPES.get(ptype)
    if cls is None:
        raise ProxyError(f"proxy type [{ptype}] is not supported")
    return cls(control, req)


from . import (
    http,  # noqa: F401  (registers itself)
    https,  # noqa: F401  (registers itself)
    stcp,  # noqa: F401  (registers itself)
    sudp,  # noqa: F401  (registers itself)
    tcp,  # noqa: F401  (registers itself)
    tcpmux,  # noqa: F401  (registers itself)
    udp,  # noqa: F401  (registers itself)
    xtcp,  # noqa: F401  (registers itself)
)
