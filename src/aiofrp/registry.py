"""One registry shape for everything frp looks up by type name: server proxies, client proxies,
visitors and client plugins (Go frp's ``RegisterProxyFactory``, ``plugin.Register`` ...).

A module registers its class with ``@REGISTRY.register("tcp", "http")`` (the package exports that
as ``register``); the package's factory (``new_server_proxy``, ``new_proxy``, ...) looks the class up
with :meth:`Registry.get`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

C = TypeVar("C", bound=type)


class Registry(Generic[C]):
    """frp type name -> the class that serves it."""

    def __init__(self, what: str) -> None:
        self.what = what
        """What the names name, for messages ("proxy", "visitor", "plugin")."""
        self.types: dict[str, C] = {}

    def register(self, *names: str) -> Callable[[C], C]:
        """Class decorator: the class serves each of ``names``."""

        def deco(cls: C) -> C:
            for name in names:
                if name in self.types:
                    raise ValueError(f"{self.what} type {name!r} is registered twice")
                self.types[name] = cls
            return cls

        return deco

    def get(self, name: str) -> C | None:
        return self.types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def __iter__(self) -> Iterator[str]:
        return iter(self.types)
