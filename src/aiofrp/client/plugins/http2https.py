"""``http2https``: Accept HTTP, forward it to a local HTTPS server (its certificate is not verified, as Go) (Go's ``pkg/plugin/client/http2https.go``)."""

from __future__ import annotations

from . import register
from .httpproxy import HTTPProxyPlugin


@register("http2https")
class HTTP2HTTPSPlugin(HTTPProxyPlugin):
    FRONT_TLS = False
    UPSTREAM_TLS = True
    FORWARDED = "keep"
    READ_HEADER_TIMEOUT = 0.0
