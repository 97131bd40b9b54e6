"""One registry shape for everything frp looks up by type name: server proxies, client proxies,
visitors and client plugins (Go frp's ``RegisterProxyFactory``, ``plugin.Register`` ...).

A module registers its class with ``@REGISTRY.register("tcp", "http")`` (the package exports that
as ``register``); the package's factory (``new_server_proxy``, ``new_proxy``, ...) looks the class up
with :meth:`Registry.get`.

The package names its modules with :meth:`Registry.declare` instead of importing them: a module is
imported the first time one of its type names is looked up, so a frpc with only tcp proxies never
loads the xtcp machinery (KCP, QUIC, NAT hole punching) or the HTTP plugins (aiohttp, h2). Lookups,
``in``, iteration and ``len`` see the declared names as well as the registered ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Generic, TypeVar

C = TypeVar("C", bound=type)


class LazyTypes(MutableMapping[str, C]):
    """type name -> class; a declared name's module is imported when the name is first read."""

    __slots__ = ("_declared", "_types")

    def __init__(self) -> None:
        self._types: dict[str, C] = {}
        self._declared: dict[str, str] = {}  # type name -> module that registers it

    def declare(self, module: str, names: tuple[str, ...]) -> None:
        for name in names:
            self._declared[name] = module

    def __getitem__(self, name: str) -> C:
        cls = self._types.get(name)
        if cls is not None:
            return cls
        module = self._declared.get(name)
        if module is None:
            raise KeyError(name)
        importlib.import_module(module)  # its @register fills self._types
        return self._types[name]

    def __setitem__(self, name: str, cls: C) -> None:
        self._types[name] = cls

    def __delitem__(self, name: str) -> None:
        found = self._types.pop(name, None) is not None
        if self._declared.pop(name, None) is None and not found:
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types or name in self._declared

    def __iter__(self) -> Iterator[str]:
        yield from self._types
        yield from (n for n in self._declared if n not in self._types)

    def __len__(self) -> int:
        return len(self._types.keys() | self._declared.keys())

    def registered(self, name: str) -> bool:
        """Whether ``name``'s class is loaded already (no import)."""
        return name in self._types


class Registry(Generic[C]):
    """frp type name -> the class that serves it."""

    def __init__(self, what: str) -> None:
        self.what = what
        """What the names name, for messages ("proxy", "visitor", "plugin")."""
        self.types: LazyTypes[C] = LazyTypes()

    def declare(self, module: str, *names: str) -> None:
        """``module`` (absolute name) registers ``names``; it is imported on first lookup."""
        self.types.declare(module, names)

    def register(self, *names: str) -> Callable[[C], C]:
        """Class decorator: the class serves each of ``names``."""

        def deco(cls: C) -> C:
            for name in names:
                if self.types.registered(name):
                    raise ValueError(f"{self.what} type {name!r} is registered twice")
                self.types[name] = cls
            return cls

        return deco

    def get(self, name: str) -> C | None:
        try:
            return self.types[name]
        except KeyError:
            return None

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def __iter__(self) -> Iterator[str]:
        return iter(self.types)
