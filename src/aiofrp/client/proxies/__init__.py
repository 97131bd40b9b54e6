"""Client-side proxies: the per-proxy state machine and one work-connection handler per type."""

from __future__ import annotations

from .base import HANDLERS, ProxyWrapper, register

__all__ = ["HANDLERS", "ProxyWrapper", "register"]

from . import tcp  # noqa: F401  (registers itself)
