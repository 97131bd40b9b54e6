"""Errors shared by frps's parts (no imports of their own, so any part can raise them)."""

from __future__ import annotations


class ProxyError(Exception):
    """A proxy could not be registered; the text goes back to frpc in NewProxyResp.error."""
