"""Errors shared by frps's parts (no imports of their own, so any part can raise them)."""

from __future__ import annotations


class ProxyError(Exception):
    """A proxy could not be registered; the text goes back to frpc in NewProxyResp.error."""


class ListenerError(OSError):
    """A listener frps needs could not be opened; the text is Go's, naming it and its address
    (``create server listener error, listen tcp 127.0.0.1:7000: bind: address already in use``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
