"""Client plugins (``[proxies.plugin]``), one module per plugin type, looked up by type name.

None is implemented yet: ``config/unsupported.py`` refuses every plugin type, so a proxy with a
plugin never starts (issue 10 adds them; see docs/architecture.md, "Client plugins").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ...config.plugin import ClientPluginOptions
from .base import ClientPlugin, HeldConn, WorkConn

__all__ = ["PLUGIN_TYPES", "ClientPlugin", "HeldConn", "PluginError", "WorkConn", "new_plugin", "register"]

PLUGIN_TYPES: dict[str, type[ClientPlugin[ClientPluginOptions]]] = {}

P = TypeVar("P", bound=type[ClientPlugin[ClientPluginOptions]])


def register(*plugin_types: str) -> Callable[[P], P]:
    def deco(cls: P) -> P:
        for t in plugin_types:
            PLUGIN_TYPES[t] = cls
        return cls

    return deco


class PluginError(Exception):
    """A plugin could not be made; the proxy goes to "start error" with this text."""


def new_plugin(proxy_name: str, cfg: ClientPluginOptions) -> ClientPlugin[ClientPluginOptions]:
    cls = PLUGIN_TYPES.get(cfg.type)
    if cls is None:
        raise PluginError(f"plugin [{cfg.type}] is not registered")  # Go's plugin.Create
    return cls(proxy_name, cfg)
