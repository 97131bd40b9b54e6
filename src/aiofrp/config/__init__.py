"""Typed frps/frpc configuration: frp's TOML v1 schema (also JSON/YAML), defaults and validation.

Also frp's Go-template subset, legacy INI files (read, and converted to TOML by
:func:`ini_to_toml`), frpc ``includes`` and ``auth.tokenSource``.

Attribute names are snake_case; each field records frp's key spelling (``vhostHTTPPort``,
``localIP``) as its msgspec encode name, so ``msgspec.json.encode(cfg)`` and
:func:`to_frp_dict` speak frp's vocabulary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    ConfigStruct,
    HeaderOperations,
    HTTPHeader,
    LogConfig,
    NatTraversalConfig,
    QUICOptions,
    TaggedStruct,
    TLSConfig,
    ValueSource,
    WebServerConfig,
)
from .client import (
    AuthClientConfig,
    AuthOIDCClientConfig,
    ClientConfig,
    ClientTransportConfig,
    StoreConfig,
    TLSClientConfig,
    VirtualNetConfig,
    proxy_wire_name,
)
from .decode import from_data
from .dump import to_frp_dict
from .errors import ConfigError
from .load import (
    is_legacy_ini,
    load_client_config,
    load_server_config,
    parse_client_config,
    parse_document,
    parse_server_config,
    render_template,
)
from .plugin import (
    CLIENT_PLUGIN_TYPES,
    VISITOR_PLUGIN_TYPES,
    ClientPluginOptions,
    HTTP2HTTPPluginOptions,
    HTTP2HTTPSPluginOptions,
    HTTPProxyPluginOptions,
    HTTPS2HTTPPluginOptions,
    HTTPS2HTTPSPluginOptions,
    Socks5PluginOptions,
    StaticFilePluginOptions,
    TLS2RawPluginOptions,
    UnixDomainSocketPluginOptions,
    VirtualNetPluginOptions,
    VirtualNetVisitorPluginOptions,
    VisitorPluginOptions,
)
from .proxy import (
    PROXY_TYPES,
    HealthCheckConfig,
    HTTPProxyConfig,
    HTTPSProxyConfig,
    LoadBalancerConfig,
    ProxyBaseConfig,
    ProxyTransport,
    STCPProxyConfig,
    SUDPProxyConfig,
    TCPMuxProxyConfig,
    TCPProxyConfig,
    UDPProxyConfig,
    XTCPProxyConfig,
    new_proxy_config,
    parse_bandwidth,
)
from .server import (
    AuthOIDCServerConfig,
    AuthServerConfig,
    HTTPPluginOptions,
    PortsRange,
    ServerConfig,
    ServerTransportConfig,
    SSHTunnelGateway,
    TLSServerConfig,
    parse_ports_range,
)
from .template import NumberPair, parse_number_range, parse_number_range_pair
from .token_source import TOKEN_SOURCE_EXEC, resolve_auth_token, resolve_value_source
from .visitor import (
    VISITOR_TYPES,
    STCPVisitorConfig,
    SUDPVisitorConfig,
    VisitorBaseConfig,
    VisitorTransport,
    XTCPVisitorConfig,
    new_visitor_config,
)

if TYPE_CHECKING:
    from .convert import dumps_toml, ini_to_toml
    from .ini import LegacyConfig, client_from_ini, looks_like_legacy_ini, server_from_ini

# The legacy INI reader and the TOML converter load when first used (frpc/frps with a TOML, JSON
# or YAML config never need them): PEP 562 module __getattr__.
_LAZY = {
    "dumps_toml": "convert", "ini_to_toml": "convert",
    "LegacyConfig": "ini", "client_from_ini": "ini", "looks_like_legacy_ini": "ini", "server_from_ini": "ini",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CLIENT_PLUGIN_TYPES",
    "PROXY_TYPES",
    "TOKEN_SOURCE_EXEC",
    "VISITOR_PLUGIN_TYPES",
    "VISITOR_TYPES",
    "AuthClientConfig",
    "AuthOIDCClientConfig",
    "AuthOIDCServerConfig",
    "AuthServerConfig",
    "ClientConfig",
    "ClientPluginOptions",
    "ClientTransportConfig",
    "ConfigError",
    "ConfigStruct",
    "HTTP2HTTPPluginOptions",
    "HTTP2HTTPSPluginOptions",
    "HTTPHeader",
    "HTTPPluginOptions",
    "HTTPProxyConfig",
    "HTTPProxyPluginOptions",
    "HTTPS2HTTPPluginOptions",
    "HTTPS2HTTPSPluginOptions",
    "HTTPSProxyConfig",
    "HeaderOperations",
    "HealthCheckConfig",
    "LegacyConfig",
    "LoadBalancerConfig",
    "LogConfig",
    "NatTraversalConfig",
    "NumberPair",
    "PortsRange",
    "ProxyBaseConfig",
    "ProxyTransport",
    "QUICOptions",
    "SSHTunnelGateway",
    "STCPProxyConfig",
    "STCPVisitorConfig",
    "SUDPProxyConfig",
    "SUDPVisitorConfig",
    "ServerConfig",
    "ServerTransportConfig",
    "Socks5PluginOptions",
    "StaticFilePluginOptions",
    "StoreConfig",
    "TCPMuxProxyConfig",
    "TCPProxyConfig",
    "TLS2RawPluginOptions",
    "TLSClientConfig",
    "TLSConfig",
    "TLSServerConfig",
    "TaggedStruct",
    "UDPProxyConfig",
    "UnixDomainSocketPluginOptions",
    "ValueSource",
    "VirtualNetConfig",
    "VirtualNetPluginOptions",
    "VirtualNetVisitorPluginOptions",
    "VisitorBaseConfig",
    "VisitorPluginOptions",
    "VisitorTransport",
    "WebServerConfig",
    "XTCPProxyConfig",
    "XTCPVisitorConfig",
    "client_from_ini",
    "dumps_toml",
    "from_data",
    "ini_to_toml",
    "is_legacy_ini",
    "load_client_config",
    "load_server_config",
    "looks_like_legacy_ini",
    "new_proxy_config",
    "new_visitor_config",
    "parse_bandwidth",
    "parse_client_config",
    "parse_document",
    "parse_number_range",
    "parse_number_range_pair",
    "parse_ports_range",
    "parse_server_config",
    "proxy_wire_name",
    "render_template",
    "resolve_auth_token",
    "resolve_value_source",
    "server_from_ini",
    "to_frp_dict",
]
