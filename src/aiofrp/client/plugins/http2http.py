"""``http2http``: Accept HTTP, forward it to a local HTTP server (Go's ``pkg/plugin/client/http2http.go``)."""

from __future__ import annotations

from . import register
from .httpproxy import HTTPProxyPlugin


@register("http2http")
class HTTP2HTTPPlugin(HTTPProxyPlugin):
    FRONT_TLS = False
    UPSTREAM_TLS = False
    FORWARDED = "drop"
    READ_HEADER_TIMEOUT = 0.0
