"""The Python API (``import aiofrp``): :class:`Client`, :class:`Server`, :func:`expose` and the
exceptions. ``aiofrp/__init__.py`` re-exports these names; this package is where they live."""

from __future__ import annotations

from .blocking import BlockingTunnel, expose, shutdown
from .client import Client, Event, Tunnel, Visitor
from .errors import ConfigError, Error, LoginError, ProxyError
from .server import ProxyInfo, Server

__all__ = [
    "BlockingTunnel",
    "Client",
    "ConfigError",
    "Error",
    "Event",
    "LoginError",
    "ProxyError",
    "ProxyInfo",
    "Server",
    "Tunnel",
    "Visitor",
    "expose",
    "shutdown",
]
