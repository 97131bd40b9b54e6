"""``https2https``: Terminate HTTPS (HTTP/2 by ALPN with enableHTTP2), forward to a local HTTPS server (not verified, as Go) (Go's ``pkg/plugin/client/https2https.go``)."""

from __future__ import annotations

from . import register
from .httpproxy import HTTPProxyPlugin


@register("https2https")
class HTTPS2HTTPSPlugin(HTTPProxyPlugin):
    FRONT_TLS = True
    UPSTREAM_TLS = True
    FORWARDED = "append"
    READ_HEADER_TIMEOUT = 60.0
