"""Visitor plugins (``[visitors.plugin]``, Go's ``pkg/plugin/visitor``), one module per type,
looked up by type name. A visitor plugin makes connections itself and hands them to its visitor
as if a local user had connected to ``bindPort``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...config.plugin import VisitorPluginOptions
from ...registry import Registry

if TYPE_CHECKING:
    import asyncio

    from ...log import XLog
    from ..vnet import Controller

__all__ = ["REGISTRY", "VisitorPlugin", "VisitorPluginContext", "VisitorPluginError", "new_visitor_plugin", "register"]


class VisitorPluginError(Exception):
    """The plugin cannot be made (its options); the visitor does not start."""


@dataclass(frozen=True)
class VisitorPluginContext:
    """What a visitor plugin uses (Go's ``visitor.PluginContext``): the visitor's name for log
    lines, ``handle_conn`` to serve a connection as the visitor serves a local user's, the
    virtual network's controller when ``virtualNet.address`` is set, and the visitor's log
    prefixes (Go: the plugin logs with the visitor's xlog, ``[RUNID] [NAME] ``)."""

    name: str
    handle_conn: Callable[[asyncio.Transport], None]
    vnet: Controller | None = None
    xl: XLog | None = None


class VisitorPlugin:
    def __init__(self, context: VisitorPluginContext, cfg: VisitorPluginOptions) -> None:
        self.context = context
        self.cfg = cfg

    def start(self) -> None:
        """The visitor runs: start making connections."""

    def close(self) -> None:
        """The visitor stops: close what the plugin holds."""


REGISTRY: Registry[type[VisitorPlugin]] = Registry("visitor plugin")
register = REGISTRY.register


def new_visitor_plugin(context: VisitorPluginContext, cfg: VisitorPluginOptions) -> VisitorPlugin:
    cls = REGISTRY.get(cfg.type)
    if cls is None:
        raise VisitorPluginError(f"visitor plugin [{cfg.type}] is not registered")
    return cls(context, cfg)


REGISTRY.declare(f"{__name__}.virtual_net", "virtual_net")
