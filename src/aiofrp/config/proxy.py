"""``[[proxies]]``: one struct per proxy type, sharing :class:`ProxyBaseConfig`."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import msgspec

from .base import ConfigStruct, HeaderOperations, HTTPHeader, NatTraversalConfig, Port, TaggedStruct, type_tag
from .plugin import AnyClientPlugin

_BANDWIDTH_RE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(MB|KB)$")


def parse_bandwidth(text: str) -> int:
    """Bytes per second for an frp bandwidth quantity (``"1MB"``, ``"512KB"``, ``"1.5MB"``).

    The empty string means "no limit" (0). Raises ValueError for anything else.
    """
    text = text.strip()
    if not text:
        return 0
    m = _BANDWIDTH_RE.match(text)
    if m is None:
        raise ValueError('must be a number followed by KB or MB, e.g. "512KB" or "1MB"')
    base = 1024 * 1024 if m.group(2) == "MB" else 1024
    return int(float(m.group(1)) * base)


class ProxyTransport(ConfigStruct):
    """A proxy's ``transport`` table (not the client's ``transport``)."""

    use_encryption: bool = False
    use_compression: bool = False
    bandwidth_limit: str = ""
    """``""`` (no limit) or a number followed by KB or MB."""
    bandwidth_limit_mode: Literal["client", "server"] = "client"
    proxy_protocol_version: Literal["", "v1", "v2"] = ""

    @property
    def bandwidth_limit_bytes(self) -> int:
        """``bandwidthLimit`` in bytes per second (0 = unlimited)."""
        return parse_bandwidth(self.bandwidth_limit)


class LoadBalancerConfig(ConfigStruct):
    """``loadBalancer``: proxies with the same group (and key) share one listener."""

    group: str = ""
    group_key: str = ""


class HealthCheckConfig(ConfigStruct):
    """``healthCheck`` (frpc probes the local service; ``type`` "" = off)."""

    type: Literal["", "tcp", "http"] = ""
    timeout_seconds: int = 3
    max_failed: int = 1
    interval_seconds: int = 10
    path: str = ""
    http_headers: list[HTTPHeader] = msgspec.field(default_factory=list)


class ProxyBaseConfig(TaggedStruct):
    """Keys every proxy type has."""

    KIND: ClassVar[str] = "proxy"

    name: str = ""
    enabled: bool = True
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    transport: ProxyTransport = msgspec.field(default_factory=ProxyTransport)
    metadatas: dict[str, str] = msgspec.field(default_factory=dict)
    load_balancer: LoadBalancerConfig = msgspec.field(default_factory=LoadBalancerConfig)
    health_check: HealthCheckConfig = msgspec.field(default_factory=HealthCheckConfig)
    local_ip: str = msgspec.field(default="127.0.0.1", name="localIP")
    local_port: Port = 0
    plugin: AnyClientPlugin | None = None
    """When set, the plugin handles connections and localIP/localPort are unused."""


class TCPProxyConfig(ProxyBaseConfig, tag="tcp"):
    """``type = "tcp"``: frps listens on ``remotePort`` (0 = any free port)."""

    remote_port: Port = 0


class UDPProxyConfig(ProxyBaseConfig, tag="udp"):
    """``type = "udp"``."""

    remote_port: Port = 0


class HTTPProxyConfig(ProxyBaseConfig, tag="http"):
    """``type = "http"``: routed by frps's vhost HTTP port on Host (and path, user)."""

    custom_domains: list[str] = msgspec.field(default_factory=list)
    subdomain: str = ""
    locations: list[str] = msgspec.field(default_factory=list)
    http_user: str = ""
    http_password: str = ""
    host_header_rewrite: str = ""
    request_headers: HeaderOperations = msgspec.field(default_factory=HeaderOperations)
    response_headers: HeaderOperations = msgspec.field(default_factory=HeaderOperations)
    route_by_http_user: str = msgspec.field(default="", name="routeByHTTPUser")


class HTTPSProxyConfig(ProxyBaseConfig, tag="https"):
    """``type = "https"``: routed by frps's vhost HTTPS port on SNI."""

    custom_domains: list[str] = msgspec.field(default_factory=list)
    subdomain: str = ""


class TCPMuxProxyConfig(ProxyBaseConfig, tag="tcpmux"):
    """``type = "tcpmux"``: routed by frps's tcpmux HTTP CONNECT port."""

    custom_domains: list[str] = msgspec.field(default_factory=list)
    subdomain: str = ""
    http_user: str = ""
    http_password: str = ""
    route_by_http_user: str = msgspec.field(default="", name="routeByHTTPUser")
    multiplexer: Literal["httpconnect"] = "httpconnect"
    """Go frp has no default here and refuses a tcpmux proxy without it, so it is always written."""

    ALWAYS_WRITTEN: ClassVar[tuple[str, ...]] = ("multiplexer",)


class STCPProxyConfig(ProxyBaseConfig, tag="stcp"):
    """``type = "stcp"``: reachable only through an stcp visitor knowing ``secretKey``."""

    secret_key: str = ""
    allow_users: list[str] = msgspec.field(default_factory=list)


class SUDPProxyConfig(ProxyBaseConfig, tag="sudp"):
    """``type = "sudp"``."""

    secret_key: str = ""
    allow_users: list[str] = msgspec.field(default_factory=list)


class XTCPProxyConfig(ProxyBaseConfig, tag="xtcp"):
    """``type = "xtcp"``: P2P through NAT hole punching."""

    secret_key: str = ""
    allow_users: list[str] = msgspec.field(default_factory=list)
    nat_traversal: NatTraversalConfig | None = None


AnyProxyConfig = (
    TCPProxyConfig
    | UDPProxyConfig
    | HTTPProxyConfig
    | HTTPSProxyConfig
    | TCPMuxProxyConfig
    | STCPProxyConfig
    | SUDPProxyConfig
    | XTCPProxyConfig
)

PROXY_TYPES: dict[str, type[ProxyBaseConfig]] = {
    type_tag(c): c
    for c in (
        TCPProxyConfig,
        UDPProxyConfig,
        HTTPProxyConfig,
        HTTPSProxyConfig,
        TCPMuxProxyConfig,
        STCPProxyConfig,
        SUDPProxyConfig,
        XTCPProxyConfig,
    )
}


def new_proxy_config(proxy_type: str, **fields: Any) -> ProxyBaseConfig:
    """Make the proxy struct for ``proxy_type`` (KeyError if frp has no such type)."""
    return PROXY_TYPES[proxy_type](**fields)
