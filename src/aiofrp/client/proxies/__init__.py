"""Client-side proxies: the per-proxy state machine and one work-connection handler per type."""

from __future__ import annotations

from .base import HANDLERS, ProxyWrapper, register

__all__ = ["HANDLERS", "ProxyWrapper", "register"]

from . import (
    sudp,  # noqa: F401  (registers itself)
    tcp,  # noqa: F401  (registers itself)
    udp,  # noqa: F401  (registers itself)
    xtcp,  # noqa: F401  (registers itself)
)
