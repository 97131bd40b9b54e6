"""Client plugin options (``[proxies.plugin]``) and visitor plugin options (``[visitors.plugin]``).

One struct per plugin type; the ``type`` key selects it. Plugins run inside frpc only and have no
wire impact.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from .base import HeaderOperations, TaggedStruct, type_tag


class ClientPluginOptions(TaggedStruct):
    """Base of the frpc proxy plugins."""

    KIND: ClassVar[str] = "plugin"


class UnixDomainSocketPluginOptions(ClientPluginOptions, tag="unix_domain_socket"):
    """Relay to a unix socket."""

    unix_path: str = ""


class HTTPProxyPluginOptions(ClientPluginOptions, tag="http_proxy"):
    """An HTTP forward proxy (CONNECT and plain requests)."""

    http_user: str = ""
    http_password: str = ""


class Socks5PluginOptions(ClientPluginOptions, tag="socks5"):
    """A SOCKS5 proxy."""

    username: str = ""
    password: str = ""


class StaticFilePluginOptions(ClientPluginOptions, tag="static_file"):
    """Serve a directory over HTTP."""

    local_path: str = ""
    strip_prefix: str = ""
    http_user: str = ""
    http_password: str = ""


class HTTP2HTTPSPluginOptions(ClientPluginOptions, tag="http2https"):
    """Accept HTTP, forward to a local HTTPS server."""

    local_addr: str = ""
    host_header_rewrite: str = ""
    request_headers: HeaderOperations = msgspec.field(default_factory=HeaderOperations)


class HTTP2HTTPPluginOptions(ClientPluginOptions, tag="http2http"):
    """Accept HTTP, forward to a local HTTP server (with header rewriting)."""

    local_addr: str = ""
    host_header_rewrite: str = ""
    request_headers: HeaderOperations = msgspec.field(default_factory=HeaderOperations)


class HTTPS2HTTPPluginOptions(ClientPluginOptions, tag="https2http"):
    """Terminate TLS, forward to a local HTTP server."""

    local_addr: str = ""
    host_header_rewrite: str = ""
    request_headers: HeaderOperations = msgspec.field(default_factory=HeaderOperations)
    enable_http2: bool = msgspec.field(default=True, name="enableHTTP2")
    crt_path: str = ""
    key_path: str = ""


class HTTPS2HTTPSPluginOptions(ClientPluginOptions, tag="https2https"):
    """Terminate TLS, forward to a local HTTPS server."""

    local_addr: str = ""
    host_header_rewrite: str = ""
    request_headers: HeaderOperations = msgspec.field(default_factory=HeaderOperations)
    enable_http2: bool = msgspec.field(default=True, name="enableHTTP2")
    crt_path: str = ""
    key_path: str = ""


class TLS2RawPluginOptions(ClientPluginOptions, tag="tls2raw"):
    """Terminate TLS, relay the plaintext bytes to a local address."""

    local_addr: str = ""
    crt_path: str = ""
    key_path: str = ""


class VirtualNetPluginOptions(ClientPluginOptions, tag="virtual_net"):
    """The experimental virtual network (needs the VirtualNet feature gate)."""


AnyClientPlugin = (
    UnixDomainSocketPluginOptions
    | HTTPProxyPluginOptions
    | Socks5PluginOptions
    | StaticFilePluginOptions
    | HTTP2HTTPSPluginOptions
    | HTTP2HTTPPluginOptions
    | HTTPS2HTTPPluginOptions
    | HTTPS2HTTPSPluginOptions
    | TLS2RawPluginOptions
    | VirtualNetPluginOptions
)


class VisitorPluginOptions(TaggedStruct):
    """Base of the frpc visitor plugins."""

    KIND: ClassVar[str] = "visitor plugin"


class VirtualNetVisitorPluginOptions(VisitorPluginOptions, tag="virtual_net"):
    """Route a virtual-network destination through this visitor."""

    destination_ip: str = msgspec.field(default="", name="destinationIP")


AnyVisitorPlugin = VirtualNetVisitorPluginOptions

CLIENT_PLUGIN_TYPES: dict[str, type[ClientPluginOptions]] = {
    type_tag(c): c for c in ClientPluginOptions.__subclasses__()
}
VISITOR_PLUGIN_TYPES: dict[str, type[VisitorPluginOptions]] = {
    type_tag(c): c for c in VisitorPluginOptions.__subclasses__()
}
