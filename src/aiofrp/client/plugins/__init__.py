"""Client plugins (``[proxies.plugin]``), one module per plugin type, looked up by type name.

# The plugin modules register themselves (after REGISTRY exists). The HTTP plugins import aiohttp
# only when a proxy using them starts.
from . import (
"""

from __future__ import annotations

from ...config.plugin import ClientPluginOptions
from ...registry import Registry
from .base import ClientPlugin, HeldConn, WorkConn

__all__ = [
    "PLUGIN_TYPES", "REGISTRY", "ClientPlugin", "HeldConn", "PluginError", "WorkConn", "new_plugin", "register",
]

REGISTRY: Registry[type[ClientPlugin[ClientPluginOptions]]] = Registry("plugin")
PLUGIN_TYPES = REGISTRY.types
register = REGISTRY.register


class PluginError(Exception):
    """A plugin could not be made; the proxy goes to "start error" with this text."""


def new_plugin(proxy_name: str, cfg: ClientPluginOptions) -> ClientPlugin[ClientPluginOptions]:
    cls = REGISTRY.get(cfg.type)
    if cls is None:
        raise PluginError(f"plugin [{cfg.type}] is not registered")  # Go's plugin.Create
    return cls(proxy_name, cfg)


# The plugin modules register themselves when a proxy first uses their type (registry.py): a
# frpc without plugins loads none of them (nor aiohttp, h2).
for _t in ("http2http", "http2https", "http_proxy", "https2http", "https2https", "socks5", "static_file",
           "tls2raw", "unix_domain_socket"):
    REGISTRY.declare(f"{__name__}.{_t}", _t)
