"""frpc configuration (TOML v1 schema, §7.3)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

import msgspec

from .base import (
    AuthMethod,
    AuthScope,
    ConfigStruct,
    LogConfig,
    Port,
    QUICOptions,
    TLSConfig,
    ValueSource,
    WebServerConfig,
)
from .proxy import AnyProxyConfig, ProxyBaseConfig
from .visitor import AnyVisitorConfig, VisitorBaseConfig

if TYPE_CHECKING:
    from .reach import ProxyURL

TransportProtocol = Literal["tcp", "kcp", "quic", "websocket", "wss"]


class AuthOIDCClientConfig(ConfigStruct):
    """``auth.oidc`` on frpc: how to obtain a token (client-credentials grant)."""

    client_id: str = msgspec.field(default="", name="clientID")
    client_secret: str = ""
    audience: str = ""
    scope: str = ""
    token_endpoint_url: str = msgspec.field(default="", name="tokenEndpointURL")
    additional_endpoint_params: dict[str, str] = msgspec.field(default_factory=dict)
    trusted_ca_file: str = ""
    insecure_skip_verify: bool = False
    proxy_url: str = msgspec.field(default="", name="proxyURL")
    token_source: ValueSource | None = None


class AuthClientConfig(ConfigStruct):
    """``auth`` on frpc."""

    method: AuthMethod = "token"
    additional_scopes: list[AuthScope] = msgspec.field(default_factory=list)
    token: str = ""
    token_source: ValueSource | None = None
    oidc: AuthOIDCClientConfig = msgspec.field(default_factory=AuthOIDCClientConfig)


class TLSClientConfig(TLSConfig):
    """``transport.tls`` on frpc."""

    enable: bool = True
    disable_custom_tls_first_byte: bool = msgspec.field(default=True, name="disableCustomTLSFirstByte")
    """When false, frpc sends the 0x17 byte before the TLS ClientHello."""


class ClientTransportConfig(ConfigStruct):
    """``transport`` on frpc (a proxy's ``transport`` is :class:`ProxyTransport`)."""

    protocol: TransportProtocol = "tcp"
    wire_protocol: Literal["v1", "v2"] = "v1"
    dial_server_timeout: int = 10
    dial_server_keepalive: int = 7200
    connect_server_local_ip: str = msgspec.field(default="", name="connectServerLocalIP")
    proxy_url: str = msgspec.field(default="", name="proxyURL")
    """"" = the ``http_proxy`` environment variable (see :meth:`effective_proxy_url`)."""
    pool_count: int = 1
    tcp_mux: bool = True
    tcp_mux_keepalive_interval: int = 30
    quic: QUICOptions = msgspec.field(default_factory=QUICOptions)
    heartbeat_interval: int = 0
    """-1 (off) by default with tcpMux, else 30; negative = off."""
    heartbeat_timeout: int = 0
    """-1 (off) by default with tcpMux, else 90; negative = off."""
    tls: TLSClientConfig = msgspec.field(default_factory=TLSClientConfig)

    def derived_defaults(self) -> dict[str, object]:
        if self.tcp_mux:
            return {"heartbeat_interval": -1, "heartbeat_timeout": -1}
        return {"heartbeat_interval": 30, "heartbeat_timeout": 90}

    def effective_proxy_url(self) -> str:
        """``proxyURL``, else ``$http_proxy`` as frp reads it at startup (only that lower-case
        variable: Go frpc ignores ``HTTP_PROXY``, ``https_proxy`` and ``no_proxy`` for frps)."""
        return self.proxy_url or os.environ.get("http_proxy", "")

    def forward_proxy(self) -> ProxyURL | None:
        """:meth:`effective_proxy_url` parsed (None: connect directly); ``ProxyURLError`` if unusable."""
        from .reach import parse_proxy_url

        url = self.effective_proxy_url()
        return parse_proxy_url(url) if url else None


class VirtualNetConfig(ConfigStruct):
    """``virtualNet`` (experimental; needs ``featureGates.VirtualNet``)."""

    address: str = ""


class StoreConfig(ConfigStruct):
    """``store`` (frp >= 0.68: proxies/visitors managed through the admin API)."""

    path: str = ""


class ClientConfig(ConfigStruct):
    """The whole frpc config, with frp's defaults applied.

    Proxy names are kept as written; the name frps sees is :func:`proxy_wire_name`.
    """

    auth: AuthClientConfig = msgspec.field(default_factory=AuthClientConfig)
    user: str = ""
    """Prefix for proxy names on the wire (``user.name``)."""
    client_id: str = msgspec.field(default="", name="clientID")
    server_addr: str = "0.0.0.0"
    server_port: Port = 7000
    nat_hole_stun_server: str = "stun.easyvoip.com:3478"
    dns_server: str = ""
    login_fail_exit: bool = True
    start: list[str] = msgspec.field(default_factory=list)
    """Names of the proxies/visitors to run; empty = all."""
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    web_server: WebServerConfig = msgspec.field(default_factory=WebServerConfig)
    transport: ClientTransportConfig = msgspec.field(default_factory=ClientTransportConfig)
    virtual_net: VirtualNetConfig = msgspec.field(default_factory=VirtualNetConfig)
    feature_gates: dict[str, bool] = msgspec.field(default_factory=dict)
    udp_packet_size: int = 1500
    metadatas: dict[str, str] = msgspec.field(default_factory=dict)
    includes: list[str] = msgspec.field(default_factory=list)
    """Extra files with ``[[proxies]]``/``[[visitors]]`` (glob in the file name)."""
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    proxies: list[AnyProxyConfig] = msgspec.field(default_factory=list)
    visitors: list[AnyVisitorConfig] = msgspec.field(default_factory=list)

    def active_proxies(self) -> list[ProxyBaseConfig]:
        """The proxies frpc runs: ``enabled`` ones, restricted to ``start`` when it is set."""
        return [p for p in self.proxies if p.enabled and (not self.start or p.name in self.start)]

    def active_visitors(self) -> list[VisitorBaseConfig]:
        """The visitors frpc runs, filtered like :meth:`active_proxies`."""
        return [v for v in self.visitors if v.enabled and (not self.start or v.name in self.start)]


def proxy_wire_name(client: ClientConfig, name: str) -> str:
    """The proxy name frps knows: ``user.name`` when ``user`` is set, else ``name``."""
    return f"{client.user}.{name}" if client.user else name
