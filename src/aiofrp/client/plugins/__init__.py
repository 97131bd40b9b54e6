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


# The plugin modules register themselves (after REGISTRY exists). The HTTP plugins import aiohttp
# only when a proxy using them starts.
from . import (
    http2http,  # noqa: F401  (registers itself)
    http2https,  # noqa: F401  (registers itself)
    http_proxy,  # noqa: F401  (registers itself)
    https2http,  # noqa: F401  (registers itself)
    https2https,  # noqa: F401  (registers itself)
    socks5,  # noqa: F401  (registers itself)
    static_file,  # noqa: F401  (registers itself)
    tls2raw,  # noqa: F401  (registers itself)
    unix_domain_socket,  # noqa: F401  (registers itself)
)
