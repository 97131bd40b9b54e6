"""Checks that need more than one value at a time (Go frp's ``validation`` package, and more).

Types, ranges and enum values are already checked while decoding; this module checks names,
required keys, combinations and string syntaxes. The first problem found is raised.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from .base import ValueSource, WebServerConfig
from .client import AuthOIDCClientConfig, ClientConfig
from .decode import join
from .errors import ConfigError
from .plugin import (
    HTTP2HTTPSPluginOptions,
    HTTPS2HTTPPluginOptions,
    HTTPS2HTTPSPluginOptions,
    StaticFilePluginOptions,
    TLS2RawPluginOptions,
    UnixDomainSocketPluginOptions,
)
from .proxy import HTTPProxyConfig, HTTPSProxyConfig, ProxyBaseConfig, TCPMuxProxyConfig, parse_bandwidth
from .server import ServerConfig
from .token_source import TOKEN_SOURCE_EXEC, unsafe_exec_error
from .unsupported import check_unsupported
from .visitor import VisitorBaseConfig

_REQUIRED_PLUGIN_KEYS: dict[type, tuple[str, str]] = {
    HTTP2HTTPSPluginOptions: ("local_addr", "localAddr"),
    HTTPS2HTTPPluginOptions: ("local_addr", "localAddr"),
    HTTPS2HTTPSPluginOptions: ("local_addr", "localAddr"),
    StaticFilePluginOptions: ("local_path", "localPath"),
    UnixDomainSocketPluginOptions: ("unix_path", "unixPath"),
    TLS2RawPluginOptions: ("local_addr", "localAddr"),
}

FEATURE_GATES = ("VirtualNet",)
"""frp's feature gates (Go frpc refuses any other name at start-up)."""

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ANNOTATIONS_SIZE_LIMIT = 256 * 1024


def validate_server_config(
    cfg: ServerConfig,
    source: str,
    *,
    allow_unsafe: Collection[str] = frozenset(),
    refuse_unsupported: bool = True,
) -> None:
    """Raise :class:`ConfigError` for the first problem in a decoded frps config.

    ``allow_unsafe`` holds the enabled ``--allow-unsafe`` features (``TokenSourceExec``). With
    ``refuse_unsupported`` (the default; only the converter turns it off) a setting aiofrp does not
    implement yet is an error too (:mod:`.unsupported`).
    """
    _check_web_server(cfg.web_server, "webServer", source)
    _check_dashboard_auth(cfg.web_server, source)
    _check_token_source(cfg.auth.token, cfg.auth.token_source, "auth", source, allow_unsafe)
    if cfg.auth.method == "oidc" and not cfg.auth.oidc.issuer:
        raise ConfigError(source, "auth.oidc.issuer", 'must be set when auth.method is "oidc"')
    for i, r in enumerate(cfg.allow_ports):
        path = f"allowPorts[{i}]"
        if r.single and (r.start or r.end):
            raise ConfigError(source, path, "give either single, or start and end, not both")
        if not r.single:
            if not r.start and not r.end:
                raise ConfigError(source, path, "empty entry: give single, or start and end")
            if r.start > r.end:
                raise ConfigError(
                    source, path, f"start {r.start} is greater than end {r.end}", [r.start, r.end]
                )
    for i, p in enumerate(cfg.http_plugins):
        if not p.addr:
            raise ConfigError(source, f"httpPlugins[{i}].addr", "the plugin address must not be empty")
    if refuse_unsupported:
        check_unsupported(cfg, "frps", source)


def validate_client_config(
    cfg: ClientConfig,
    source: str,
    *,
    allow_unsafe: Collection[str] = frozenset(),
    refuse_unsupported: bool = True,
) -> None:
    """Raise :class:`ConfigError` for the first problem in a decoded frpc config.

    The options are those of :func:`validate_server_config`.
    """
    _check_web_server(cfg.web_server, "webServer", source)
    _check_token_source(cfg.auth.token, cfg.auth.token_source, "auth", source, allow_unsafe)
    oidc = cfg.auth.oidc
    if oidc.token_source is not None:
        others = (
            oidc.client_id,
            oidc.client_secret,
            oidc.audience,
            oidc.scope,
            oidc.token_endpoint_url,
            oidc.additional_endpoint_params,
            oidc.trusted_ca_file,
            oidc.insecure_skip_verify,
            oidc.proxy_url,
        )
        if any(others):
            raise ConfigError(
                source,
                "auth.oidc.tokenSource",
                "cannot be combined with any other auth.oidc key",
            )
        _check_token_source("", oidc.token_source, "auth.oidc", source, allow_unsafe)
    elif cfg.auth.method == "oidc":
        _check_oidc_client(oidc, source)
    t = cfg.transport
    _check_reach(cfg, source)
    if 0 < t.heartbeat_timeout < t.heartbeat_interval:
        raise ConfigError(
            source,
            "transport.heartbeatTimeout",
            f"heartbeat timeout {t.heartbeat_timeout} must not be less than "
            f"transport.heartbeatInterval {t.heartbeat_interval}",
            t.heartbeat_timeout,
        )
    for gate in cfg.feature_gates:
        if gate not in FEATURE_GATES:
            raise ConfigError(source, join("featureGates", gate), f"unrecognized feature gate: {gate}", gate)
    if cfg.virtual_net.address and not cfg.feature_gates.get("VirtualNet"):
        raise ConfigError(
            source,
            "virtualNet.address",
            "the VirtualNet feature is not enabled; set featureGates = { VirtualNet = true }",
        )
    _check_names(cfg.proxies, "proxies", "proxy", source)
    _check_names(cfg.visitors, "visitors", "visitor", source)
    for i, p in enumerate(cfg.proxies):
        _check_proxy(p, f"proxies[{i}]", source)
    for i, v in enumerate(cfg.visitors):
        _check_visitor(v, f"visitors[{i}]", source)
    check_virtual_net(cfg, source)
    if refuse_unsupported:
        check_unsupported(cfg, "frpc", source)


def _check_reach(cfg: ClientConfig, source: str) -> None:
    """``transport.proxyURL`` (or ``$http_proxy``) and ``dnsServer``: usable, or refused now (Go
    fails every dial later instead)."""
    from .reach import ProxyURLError, parse_dns_server, parse_proxy_url

    t = cfg.transport
    url = t.effective_proxy_url()
    if url:
        try:
            parse_proxy_url(url)
        except ProxyURLError as e:
            if t.proxy_url:
                raise ConfigError(source, "transport.proxyURL", str(e), url) from None
            raise ConfigError(source, "$http_proxy",
                              f"{e} (frpc reads $http_proxy when transport.proxyURL is not set)", url) from None
    if cfg.dns_server:
        try:
            parse_dns_server(cfg.dns_server)
        except ValueError as e:
            raise ConfigError(source, "dnsServer", str(e), cfg.dns_server) from None


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
"""Proxy URL schemes Go's HTTP client takes (``auth.oidc.proxyURL``)."""


def proxy_url_problem(url: str) -> str:
    """``""`` if ``url`` is a usable proxy URL, else why not."""
    import urllib.parse  # here: with ipaddress, 0.5 MB resident

    try:
        u = urllib.parse.urlsplit(url)
        u.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as e:
        return f"failed to parse OIDC proxy URL {url!r}: {e}"
    if u.scheme not in PROXY_SCHEMES:
        return f"proxy URL {url!r}: the scheme must be one of {', '.join(PROXY_SCHEMES)}"
    if not u.hostname:
        return f"proxy URL {url!r} has no host"
    return ""


def _check_oidc_client(oidc: AuthOIDCClientConfig, source: str) -> None:
    """The client-credentials settings (frp 0.70's ``ValidateOIDCClientCredentialsConfig``; 0.65
    accepts these configs but every login then fails)."""
    if not oidc.client_id:
        raise ConfigError(source, "auth.oidc.clientID", 'must be set when auth.method is "oidc"')
    url = oidc.token_endpoint_url
    if not url:
        raise ConfigError(source, "auth.oidc.tokenEndpointURL", 'must be set when auth.method is "oidc"')
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(source, "auth.oidc.tokenEndpointURL", "must be an absolute http or https URL", url)
    if "scope" in oidc.additional_endpoint_params:
        raise ConfigError(
            source, "auth.oidc.additionalEndpointParams.scope", "is not allowed; use auth.oidc.scope instead"
        )
    if oidc.proxy_url:
        problem = proxy_url_problem(oidc.proxy_url)
        if problem:
            raise ConfigError(source, "auth.oidc.proxyURL", problem, oidc.proxy_url)


def _check_web_server(ws: WebServerConfig, path: str, source: str) -> None:
    if ws.tls is not None:
        if not ws.tls.cert_file:
            raise ConfigError(source, f"{path}.tls.certFile", "must be set when webServer.tls is used")
        if not ws.tls.key_file:
            raise ConfigError(source, f"{path}.tls.keyFile", "must be set when webServer.tls is used")


def _check_dashboard_auth(ws: WebServerConfig, source: str) -> None:
    """aiofrp's safe default (beyond Go): no dashboard reachable from other machines without a
    user and password."""
    if not ws.port or (ws.user and ws.password):
        return
    import ipaddress

    host = ws.addr.strip("[]")
    try:
        loopback = host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        missing = "webServer.password" if ws.user else "webServer.user"
        raise ConfigError(
            source, missing,
            f'the dashboard on non-loopback address "{ws.addr}" needs a user and password: set webServer.user '
            'and webServer.password (--dashboard-user/--dashboard-pwd), or webServer.addr = "127.0.0.1"',
        )


def _check_token_source(
    token: str, ts: ValueSource | None, path: str, source: str, allow_unsafe: Collection[str]
) -> None:
    if ts is None:
        return
    ts_path = f"{path}.tokenSource"
    if token:
        raise ConfigError(source, ts_path, f"cannot specify both {path}.token and {path}.tokenSource")
    if ts.type == "file":
        if ts.file is None or not ts.file.path:
            raise ConfigError(source, f"{ts_path}.file.path", 'must be set when type is "file"')
    elif ts.type == "exec":
        if ts.exec is None or not ts.exec.command:
            raise ConfigError(source, f"{ts_path}.exec.command", 'must be set when type is "exec"')
        if TOKEN_SOURCE_EXEC not in allow_unsafe:
            raise unsafe_exec_error(source, f"{ts_path}.exec")
    else:
        raise ConfigError(
            source,
            f"{ts_path}.type",
            f"unsupported value source type {ts.type!r}, must be one of file, exec",
            ts.type,
        )


def _check_names(
    items: Sequence[ProxyBaseConfig | VisitorBaseConfig], key: str, kind: str, source: str
) -> None:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"{key}[{i}].name"
        if not item.name:
            raise ConfigError(source, path, f"missing {kind} name")
        if item.name in first:
            raise ConfigError(
                source,
                path,
                f'duplicate {kind} name "{item.name}" (already used by {key}[{first[item.name]}])',
                item.name,
            )
        first[item.name] = i


def _check_proxy(p: ProxyBaseConfig, path: str, source: str) -> None:
    _check_annotations(p.annotations, join(path, "annotations"), source)
    try:
        parse_bandwidth(p.transport.bandwidth_limit)
    except ValueError as e:
        raise ConfigError(
            source,
            join(path, "transport.bandwidthLimit"),
            f"invalid bandwidth {p.transport.bandwidth_limit!r}: {e}",
            p.transport.bandwidth_limit,
        ) from None
    if p.health_check.type == "http" and not p.health_check.path:
        raise ConfigError(
            source, join(path, "healthCheck.path"), 'must be set when healthCheck.type is "http"'
        )
    if (
        isinstance(p, HTTPProxyConfig | HTTPSProxyConfig | TCPMuxProxyConfig)
        and not p.subdomain
        and not p.custom_domains
    ):
        raise ConfigError(source, path, f"{p.type} proxy needs customDomains or subdomain (both are empty)")
    if p.plugin is not None:
        req = _REQUIRED_PLUGIN_KEYS.get(type(p.plugin))
        if req is not None and not getattr(p.plugin, req[0]):
            raise ConfigError(
                source, join(path, f"plugin.{req[1]}"), f"is required by plugin {p.plugin.type}"
            )


def check_virtual_net(cfg: ClientConfig, source: str) -> None:
    """``virtualNet.address`` is an address with its prefix length, a ``virtual_net`` visitor
    plugin has a valid ``destinationIP``, and visitor plugins are on stcp or xtcp visitors (Go's
    sudp visitor never starts one). A ``virtual_net`` plugin without ``virtualNet.address`` is
    accepted, as Go does (frp's full example has one); frpc says at start that it does nothing."""
    address = cfg.virtual_net.address
    if address:
        import ipaddress  # here: 0.3 MB resident, only for a virtual network

        try:
            if "/" not in address:
                raise ValueError
            ipaddress.ip_interface(address)
        except ValueError:
            raise ConfigError(source, "virtualNet.address", f"invalid CIDR address: {address}", address) from None
    for i, v in enumerate(cfg.visitors):
        plugin = v.plugin
        if plugin is None:
            continue
        path = f"visitors[{i}].plugin"
        if v.type not in ("stcp", "xtcp"):
            raise ConfigError(source, join(path, "type"),
                              f"visitor plugins run on stcp and xtcp visitors, not {v.type}", plugin.type)
        if plugin.type == "virtual_net":
            import ipaddress

            dest = getattr(plugin, "destination_ip", "")
            if not dest:
                raise ConfigError(source, join(path, "destinationIP"), "destinationIP is required")
            try:
                ipaddress.ip_address(dest)
            except ValueError:
                raise ConfigError(source, join(path, "destinationIP"),
                                  f"invalid destination IP address [{dest}]", dest) from None


def _check_visitor(v: VisitorBaseConfig, path: str, source: str) -> None:
    if not v.server_name:
        raise ConfigError(source, join(path, "serverName"), "missing the name of the proxy to visit")
    if v.bind_port == 0:
        raise ConfigError(
            source,
            join(path, "bindPort"),
            "bind port is required (a negative value means no local listener)",
        )


def _check_annotations(annotations: dict[str, str], path: str, source: str) -> None:
    size = 0
    for k, v in annotations.items():
        size += len(k) + len(v)
        name = k.lower()
        prefix, _, rest = name.rpartition("/")
        bad = (
            not rest
            or len(rest) > 63
            or not _QUALIFIED_NAME.match(rest)
            or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            or ("/" in prefix)
        )
        if bad:
            raise ConfigError(
                source,
                join(path, k),
                f"annotation key {k!r} is invalid: must be a name (letters, digits, '-', '_', '.', "
                "starting and ending with a letter or digit, at most 63 characters) "
                "optionally prefixed by a DNS subdomain and '/'",
            )
    if size > _ANNOTATIONS_SIZE_LIMIT:
        raise ConfigError(
            source, path, f"annotations size {size} is larger than limit {_ANNOTATIONS_SIZE_LIMIT}"
        )
