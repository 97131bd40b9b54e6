"""Legacy INI key names (Go frp's ``pkg/config/legacy``) and where each lives in the v1 schema.

Each table maps a legacy key to ``(v1 key path, kind)``; kind is ``str``, ``int``, ``bool`` or
``list`` (comma-separated).
"""

from __future__ import annotations

_AUTH_COMMON = {
    "authentication_method": ("auth.method", "str"),
    "token": ("auth.token", "str"),
}
_SHARED_COMMON = {
    **_AUTH_COMMON,
    "log_file": ("log.to", "str"),
    "log_level": ("log.level", "str"),
    "log_max_days": ("log.maxDays", "int"),
    "disable_log_color": ("log.disablePrintColor", "bool"),
    "assets_dir": ("webServer.assetsDir", "str"),
    "pprof_enable": ("webServer.pprofEnable", "bool"),
    "tcp_mux": ("transport.tcpMux", "bool"),
    "tcp_mux_keepalive_interval": ("transport.tcpMuxKeepaliveInterval", "int"),
    "heartbeat_timeout": ("transport.heartbeatTimeout", "int"),
    "quic_keepalive_period": ("transport.quic.keepalivePeriod", "int"),
    "quic_max_idle_timeout": ("transport.quic.maxIdleTimeout", "int"),
    "quic_max_incoming_streams": ("transport.quic.maxIncomingStreams", "int"),
    "tls_cert_file": ("transport.tls.certFile", "str"),
    "tls_key_file": ("transport.tls.keyFile", "str"),
    "tls_trusted_ca_file": ("transport.tls.trustedCaFile", "str"),
    "udp_packet_size": ("udpPacketSize", "int"),
}
SERVER_COMMON: dict[str, tuple[str, str]] = {
    **_SHARED_COMMON,
    "oidc_issuer": ("auth.oidc.issuer", "str"),
    "oidc_audience": ("auth.oidc.audience", "str"),
    "oidc_skip_expiry_check": ("auth.oidc.skipExpiryCheck", "bool"),
    "oidc_skip_issuer_check": ("auth.oidc.skipIssuerCheck", "bool"),
    "bind_addr": ("bindAddr", "str"),
    "bind_port": ("bindPort", "int"),
    "kcp_bind_port": ("kcpBindPort", "int"),
    "quic_bind_port": ("quicBindPort", "int"),
    "proxy_bind_addr": ("proxyBindAddr", "str"),
    "vhost_http_port": ("vhostHTTPPort", "int"),
    "vhost_https_port": ("vhostHTTPSPort", "int"),
    "vhost_http_timeout": ("vhostHTTPTimeout", "int"),
    "tcpmux_httpconnect_port": ("tcpmuxHTTPConnectPort", "int"),
    "tcpmux_passthrough": ("tcpmuxPassthrough", "bool"),
    "subdomain_host": ("subDomainHost", "str"),
    "custom_404_page": ("custom404Page", "str"),
    "dashboard_addr": ("webServer.addr", "str"),
    "dashboard_port": ("webServer.port", "int"),
    "dashboard_user": ("webServer.user", "str"),
    "dashboard_pwd": ("webServer.password", "str"),
    "enable_prometheus": ("enablePrometheus", "bool"),
    "detailed_errors_to_client": ("detailedErrorsToClient", "bool"),
    "tcp_keepalive": ("transport.tcpKeepalive", "int"),
    "max_pool_count": ("transport.maxPoolCount", "int"),
    "max_ports_per_client": ("maxPortsPerClient", "int"),
    "tls_only": ("transport.tls.force", "bool"),
    "user_conn_timeout": ("userConnTimeout", "int"),
    "nat_hole_analysis_data_reserve_hours": ("natholeAnalysisDataReserveHours", "int"),
}
CLIENT_COMMON: dict[str, tuple[str, str]] = {
    **_SHARED_COMMON,
    "oidc_client_id": ("auth.oidc.clientID", "str"),
    "oidc_client_secret": ("auth.oidc.clientSecret", "str"),
    "oidc_audience": ("auth.oidc.audience", "str"),
    "oidc_scope": ("auth.oidc.scope", "str"),
    "oidc_token_endpoint_url": ("auth.oidc.tokenEndpointURL", "str"),
    "server_addr": ("serverAddr", "str"),
    "server_port": ("serverPort", "int"),
    "user": ("user", "str"),
    "nat_hole_stun_server": ("natHoleStunServer", "str"),
    "dns_server": ("dnsServer", "str"),
    "login_fail_exit": ("loginFailExit", "bool"),
    "start": ("start", "list"),
    "includes": ("includes", "list"),
    "admin_addr": ("webServer.addr", "str"),
    "admin_port": ("webServer.port", "int"),
    "admin_user": ("webServer.user", "str"),
    "admin_pwd": ("webServer.password", "str"),
    "protocol": ("transport.protocol", "str"),
    "dial_server_timeout": ("transport.dialServerTimeout", "int"),
    "dial_server_keepalive": ("transport.dialServerKeepalive", "int"),
    "connect_server_local_ip": ("transport.connectServerLocalIP", "str"),
    "http_proxy": ("transport.proxyURL", "str"),
    "pool_count": ("transport.poolCount", "int"),
    "heartbeat_interval": ("transport.heartbeatInterval", "int"),
    "tls_enable": ("transport.tls.enable", "bool"),
    "tls_server_name": ("transport.tls.serverName", "str"),
    "disable_custom_tls_first_byte": ("transport.tls.disableCustomTLSFirstByte", "bool"),
}
# bool keys that each add an auth.additionalScopes entry
SCOPES = {"authenticate_heartbeats": "HeartBeats", "authenticate_new_work_conns": "NewWorkConns"}
NO_EFFECT = {"log_way"}  # accepted by frp's legacy loader, unused since v0.52

PROXY_BASE: dict[str, tuple[str, str]] = {
    "local_ip": ("localIP", "str"),
    "local_port": ("localPort", "int"),
    "use_encryption": ("transport.useEncryption", "bool"),
    "use_compression": ("transport.useCompression", "bool"),
    "bandwidth_limit": ("transport.bandwidthLimit", "str"),
    "bandwidth_limit_mode": ("transport.bandwidthLimitMode", "str"),
    "proxy_protocol_version": ("transport.proxyProtocolVersion", "str"),
    "group": ("loadBalancer.group", "str"),
    "group_key": ("loadBalancer.groupKey", "str"),
    "health_check_type": ("healthCheck.type", "str"),
    "health_check_timeout_s": ("healthCheck.timeoutSeconds", "int"),
    "health_check_max_failed": ("healthCheck.maxFailed", "int"),
    "health_check_interval_s": ("healthCheck.intervalSeconds", "int"),
    "health_check_url": ("healthCheck.path", "str"),
}
_DOMAINS = {"custom_domains": ("customDomains", "list"), "subdomain": ("subdomain", "str")}
_HTTP_AUTH = {
    "http_user": ("httpUser", "str"),
    "http_pwd": ("httpPassword", "str"),
    "route_by_http_user": ("routeByHTTPUser", "str"),
}
_SECRET = {"sk": ("secretKey", "str"), "allow_users": ("allowUsers", "list")}
PROXY_EXTRA: dict[str, dict[str, tuple[str, str]]] = {
    "tcp": {"remote_port": ("remotePort", "int")},
    "udp": {"remote_port": ("remotePort", "int")},
    "http": {
        **_DOMAINS,
        **_HTTP_AUTH,
        "locations": ("locations", "list"),
        "host_header_rewrite": ("hostHeaderRewrite", "str"),
    },
    "https": _DOMAINS,
    "tcpmux": {**_DOMAINS, **_HTTP_AUTH, "multiplexer": ("multiplexer", "str")},
    "stcp": _SECRET,
    "sudp": _SECRET,
    "xtcp": _SECRET,
}
VISITOR_BASE: dict[str, tuple[str, str]] = {
    "use_encryption": ("transport.useEncryption", "bool"),
    "use_compression": ("transport.useCompression", "bool"),
    "sk": ("secretKey", "str"),
    "server_user": ("serverUser", "str"),
    "server_name": ("serverName", "str"),
    "bind_addr": ("bindAddr", "str"),
    "bind_port": ("bindPort", "int"),
}
VISITOR_XTCP: dict[str, tuple[str, str]] = {
    "protocol": ("protocol", "str"),
    "keep_tunnel_open": ("keepTunnelOpen", "bool"),
    "max_retries_an_hour": ("maxRetriesAnHour", "int"),
    "min_retry_interval": ("minRetryInterval", "int"),
    "fallback_to": ("fallbackTo", "str"),
    "fallback_timeout_ms": ("fallbackTimeoutMs", "int"),
}
# xtcp visitor numbers where <= 0 means "use the default" in the legacy loader
POSITIVE_OR_DEFAULT = {"max_retries_an_hour", "min_retry_interval", "fallback_timeout_ms"}
# plugin_<param> -> the plugin option it sets (when the plugin type has that option)
PLUGIN_PARAMS: dict[str, str] = {
    "plugin_unix_path": "unixPath",
    "plugin_http_user": "httpUser",
    "plugin_http_passwd": "httpPassword",
    "plugin_user": "username",
    "plugin_passwd": "password",
    "plugin_local_path": "localPath",
    "plugin_strip_prefix": "stripPrefix",
    "plugin_local_addr": "localAddr",
    "plugin_host_header_rewrite": "hostHeaderRewrite",
    "plugin_crt_path": "crtPath",
    "plugin_key_path": "keyPath",
}
# the spellings go-ini accepts as booleans
BOOL_TRUE = {"1", "t", "T", "true", "BOOL_TRUE", "True", "y", "Y", "yes", "YES", "Yes", "on", "ON", "On"}
BOOL_FALSE = {"0", "f", "F", "false", "BOOL_FALSE", "False", "n", "N", "no", "NO", "No", "off", "OFF", "Off"}
