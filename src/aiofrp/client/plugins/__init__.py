"""Client plugins (``[proxies.plugin]``), one module per plugin type, looked up by type name.

# The plugin modules register themselves (after REGISTRY exists). The HTTP plugins import aiohttp
# only when a proxy using them starts.
from . import (
"""

from __future__ import annotations

from ...config.plugin import ClientPluginOptions
from ...registry import Registry
from .base import ClientPlugin, HeldConn, PluginContext, WorkConn

__all__ = [
    "PLUGIN_TYPES", "REGISTRY", "ClientPlugin", "HeldConn", "PluginContext", "PluginError", "WorkConn", "new_plugin",
    "register",
]

REGISTRY: Registry[type[ClientPlugin[ClientPluginOptions]]] = Registry("plugin")
PLUGIN_TYPES = REGISTRY.types
register = REGISTRY.register


class PluginError(Exception):
    """A plugin could not be made; the proxy goes to "start error" with this text."""


def new_plugin(proxy_name: str, cfg: ClientPluginOptions,
               context: PluginContext | None = None) -> ClientPlugin[ClientPluginOptions]:
    cls = REGISTRY.get(cfg.type)
    if cls is None:
        raise PluginError(f"plugin [{cfg.type}] is not registered")  # Go's plugin.Create
    plugin = cls(proxy_name, cfg)
    if context is not None:
        plugin.context = context
    return plugin


# The plugin modules register themselves when a proxy first uses their type (registry.py): a
# frpc without plugins loads none of them (nor aiohttp, h2).
for _t in ("http2http", "http2https", "http_proxy", "https2http", "https2https", "socks5", "static_file",
           "tls2raw", "unix_domain_socket", "virtual_net"):
    REGISTRY.declare(f"{__name__}.{_t}", _t)
