"""aiofrp: a pure-Python, wire-compatible implementation of frp.

The Python API (stable within a major version, see README "Using aiofrp from Python")::

    import aiofrp

    tunnel = aiofrp.expose(8000, server="frps.example.com:7000", token="...")  # blocking
    async with aiofrp.Client(server_addr="frps.example.com", token="...") as client:
        tunnel = await client.expose(8000)
    async with aiofrp.Server(bind_port=7000, token="...") as server: ...

The API's names are loaded on first use (``aiofrp/api``), so the ``frps``/``frpc`` commands do
not pay for them. It is imported by name, not with an import statement: the packages under
``aiofrp`` import :data:`FRP_VERSION` from here, and a static import of the API (which imports
them) would close a cycle. ``__init__.pyi`` gives type checkers the names.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
# The frp release whose wire protocol and behaviour we follow; sent as Login.version / LoginResp.version.
FRP_VERSION = "0.65.0"

__all__ = [
    "FRP_VERSION",
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
    "__version__",
    "expose",
    "shutdown",
    "version_text",
]

def version_text() -> str:
    """What ``--version`` prints and the start-up log line says: ``aiofrp 0.1.0 (frp 0.65.0 compatible)``.
    The version on the wire stays :data:`FRP_VERSION`."""
    return f"aiofrp {__version__} (frp {FRP_VERSION} compatible)"


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module(f"{__name__}.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aiofrp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
