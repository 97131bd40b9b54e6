"""frps configuration (TOML v1 schema, §7.2)."""

from __future__ import annotations

from typing import Literal

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


class AuthOIDCServerConfig(ConfigStruct):
    """``auth.oidc`` on frps: how to verify the tokens frpc sends."""

    issuer: str = ""
    audience: str = ""
    skip_expiry_check: bool = False
    skip_issuer_check: bool = False


class AuthServerConfig(ConfigStruct):
    """``auth`` on frps."""

    method: AuthMethod = "token"
    additional_scopes: list[AuthScope] = msgspec.field(default_factory=list)
    token: str = ""
    token_source: ValueSource | None = None
    oidc: AuthOIDCServerConfig = msgspec.field(default_factory=AuthOIDCServerConfig)


class TLSServerConfig(TLSConfig):
    """``transport.tls`` on frps."""

    force: bool = False
    """Refuse non-TLS clients; implied by ``trustedCaFile``."""

    def derived_defaults(self) -> dict[str, object]:
        return {"force": bool(self.trusted_ca_file)}


class ServerTransportConfig(ConfigStruct):
    """``transport`` on frps."""

    tcp_mux: bool = True
    tcp_mux_keepalive_interval: int = 30
    tcp_keepalive: int = 7200
    max_pool_count: int = 5
    heartbeat_timeout: int = 0
    """-1 (off) by default with tcpMux, else 90; negative = off."""
    quic: QUICOptions = msgspec.field(default_factory=QUICOptions)
    tls: TLSServerConfig = msgspec.field(default_factory=TLSServerConfig)

    def derived_defaults(self) -> dict[str, object]:
        return {"heartbeat_timeout": -1 if self.tcp_mux else 90}


class SSHTunnelGateway(ConfigStruct):
    """``sshTunnelGateway`` (enabled when ``bindPort`` > 0)."""

    bind_port: Port = 0
    private_key_file: str = ""
    auto_gen_private_key_path: str = "./.autogen_ssh_key"
    authorized_keys_file: str = ""


class PortsRange(ConfigStruct):
    """One ``allowPorts`` entry: ``{start, end}`` or ``{single}``."""

    start: Port = 0
    end: Port = 0
    single: Port = 0

    def __contains__(self, port: int) -> bool:
        if self.single > 0:
            return port == self.single
        return self.start <= port <= self.end


HTTPPluginOp = Literal["Login", "NewProxy", "CloseProxy", "Ping", "NewWorkConn", "NewUserConn"]


class HTTPPluginOptions(ConfigStruct):
    """One ``[[httpPlugins]]`` entry (a server manage plugin)."""

    name: str = ""
    addr: str = ""
    path: str = ""
    ops: list[HTTPPluginOp] = msgspec.field(default_factory=list)
    tls_verify: bool = False


class ServerConfig(ConfigStruct):
    """The whole frps config, with frp's defaults applied."""

    auth: AuthServerConfig = msgspec.field(default_factory=AuthServerConfig)
    bind_addr: str = "0.0.0.0"
    bind_port: Port = 7000
    kcp_bind_port: Port = 0
    quic_bind_port: Port = 0
    proxy_bind_addr: str = ""
    """Address proxies listen on; defaults to ``bindAddr``."""
    vhost_http_port: Port = msgspec.field(default=0, name="vhostHTTPPort")
    vhost_http_timeout: int = msgspec.field(default=60, name="vhostHTTPTimeout")
    vhost_https_port: Port = msgspec.field(default=0, name="vhostHTTPSPort")
    tcpmux_http_connect_port: Port = msgspec.field(default=0, name="tcpmuxHTTPConnectPort")
    tcpmux_passthrough: bool = False
    subdomain_host: str = msgspec.field(default="", name="subDomainHost")
    custom_404_page: str = ""
    ssh_tunnel_gateway: SSHTunnelGateway = msgspec.field(default_factory=SSHTunnelGateway)
    web_server: WebServerConfig = msgspec.field(default_factory=WebServerConfig)
    enable_prometheus: bool = False
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    transport: ServerTransportConfig = msgspec.field(default_factory=ServerTransportConfig)
    detailed_errors_to_client: bool = True
    max_ports_per_client: int = 0
    user_conn_timeout: int = 10
    udp_packet_size: int = 1500
    nathole_analysis_data_reserve_hours: int = 168
    allow_ports: list[PortsRange] = msgspec.field(default_factory=list)
    """Empty = every port allowed."""
    http_plugins: list[HTTPPluginOptions] = msgspec.field(default_factory=list)

    def derived_defaults(self) -> dict[str, object]:
        return {"proxy_bind_addr": self.bind_addr}

    def port_allowed(self, port: int) -> bool:
        """Whether ``allowPorts`` lets a client use ``port``."""
        return not self.allow_ports or any(port in r for r in self.allow_ports)

    @property
    def allow_ports_str(self) -> str:
        """``allowPorts`` as frp shows it (``"2000-3000,3001"``), as in /api/serverinfo."""
        return ",".join(str(r.single) if r.single > 0 else f"{r.start}-{r.end}" for r in self.allow_ports)


def parse_ports_range(text: str) -> list[PortsRange]:
    """Parse frp's ``"1000-2000,3000"`` port list (legacy INI, ``--allow_ports``)."""
    out: list[PortsRange] = []
    for part in text.strip().split(","):
        bounds = [b.strip() for b in part.split("-")]
        try:
            nums = [int(b) for b in bounds]
        except ValueError:
            raise ValueError(f"range number is invalid: {part!r}") from None
        if len(nums) == 1:
            out.append(PortsRange(single=nums[0]))
        elif len(nums) == 2 and nums[0] <= nums[1]:
            out.append(PortsRange(start=nums[0], end=nums[1]))
        else:
            raise ValueError(f"range number is invalid: {part!r}")
    return out
