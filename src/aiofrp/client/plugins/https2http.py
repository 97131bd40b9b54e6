"""``https2http``: Terminate HTTPS (HTTP/2 by ALPN with enableHTTP2), forward to a local HTTP server (Go's ``pkg/plugin/client/https2http.go``)."""

from __future__ import annotations

from . import register
from .httpproxy import HTTPProxyPlugin


@register("https2http")
class HTTPS2HTTPPlugin(HTTPProxyPlugin):
    FRONT_TLS = True
    UPSTREAM_TLS = False
    FORWARDED = "append"
    READ_HEADER_TIMEOUT = 60.0
