"""Command-line flags shared by frps and frpc, mapped onto frp's v1 config keys.

Every long flag accepts dashes and underscores (``--bind-port`` == ``--bind_port``), like Go frp.
"""

from __future__ import annotations

import argparse
from typing import Any


def add(p: argparse.ArgumentParser, short: str | None, long: str, **kw: Any) -> None:
    """Add ``--long`` (and ``-short``) plus a hidden ``--long_with_underscores`` alias."""
    name = long.lstrip("-")
    dash = "--" + name.replace("_", "-")
    under = "--" + name.replace("-", "_")
    kw.setdefault("dest", name.replace("-", "_"))
    if kw.get("action") not in ("store_true", "store_false", "append"):
        kw.setdefault("metavar", "INT" if kw.get("type") is int else "STRING")
    p.add_argument(*([short] if short else []), dash, **kw)
    if under != dash:
        p.add_argument(under, **{**kw, "help": argparse.SUPPRESS})


def str2bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def key_values(v: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (Go's stringToString flags)."""
    out: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in v.split(","))):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"{item!r} must be formatted as key=value")
        k, _, val = item.partition("=")
        out[k] = val
    return out


def csv(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


def set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    cur = d
    *parents, last = dotted.split(".")
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value


# -- frps -----------------------------------------------------------------------------------

# flag dest -> v1 key path
FRPS_FLAGS: list[tuple[str | None, str, str, dict[str, Any]]] = [
    ("-p", "--bind-port", "bindPort", {"type": int, "help": "bind port (default 7000)"}),
    (None, "--bind-addr", "bindAddr", {"help": "bind address (default 0.0.0.0)"}),
    (None, "--proxy-bind-addr", "proxyBindAddr", {"help": "proxy bind address (default 0.0.0.0)"}),
    ("-t", "--token", "auth.token", {"help": "auth token"}),
    (None, "--kcp-bind-port", "kcpBindPort", {"type": int, "help": "kcp bind udp port"}),
    (None, "--quic-bind-port", "quicBindPort", {"type": int, "help": "quic bind udp port"}),
    (None, "--vhost-http-port", "vhostHTTPPort", {"type": int, "help": "vhost http port"}),
    (None, "--vhost-https-port", "vhostHTTPSPort", {"type": int, "help": "vhost https port"}),
    (None, "--vhost-http-timeout", "vhostHTTPTimeout", {"type": int,
                                                         "help": "vhost http response header timeout (default 60)"}),
    (None, "--dashboard-addr", "webServer.addr", {"help": "dashboard address (default 0.0.0.0)"}),
    (None, "--dashboard-port", "webServer.port", {"type": int, "help": "dashboard port"}),
    (None, "--dashboard-user", "webServer.user", {"help": "dashboard user (default admin)"}),
    (None, "--dashboard-pwd", "webServer.password", {"help": "dashboard password (default admin)"}),
    (None, "--dashboard-tls-cert-file", "webServer.tls.certFile", {"help": "dashboard tls cert file"}),
    (None, "--dashboard-tls-key-file", "webServer.tls.keyFile", {"help": "dashboard tls key file"}),
    (None, "--dashboard-tls-mode", "webServer.tls", {"type": str2bool, "nargs": "?", "const": True, "default": None,
                                                      "metavar": "BOOL",
                                                      "help": "if enable dashboard tls mode (HTTPS with the two "
                                                              "files above)"}),
    (None, "--enable-prometheus", "enablePrometheus", {"action": "store_true", "default": None,
                                                        "help": "enable prometheus dashboard"}),
    (None, "--log-file", "log.to", {"help": "log file (default console)"}),
    (None, "--log-level", "log.level", {"help": "log level (default info)"}),
    (None, "--log-max-days", "log.maxDays", {"type": int, "help": "log max days (default 3)"}),
    (None, "--disable-log-color", "log.disablePrintColor", {"action": "store_true", "default": None,
                                                             "help": "disable log color in console"}),
    (None, "--subdomain-host", "subDomainHost", {"help": "subdomain host"}),
    (None, "--allow-ports", "allowPorts", {"help": "allow ports, e.g. 2000-3000,3001"}),
    (None, "--max-ports-per-client", "maxPortsPerClient", {"type": int, "help": "max ports per client"}),
    (None, "--tls-only", "transport.tls.force", {"action": "store_true", "default": None,
                                                  "help": "frps tls only"}),
]


def add_frps_flags(p: argparse.ArgumentParser) -> None:
    for short, long, _key, kw in FRPS_FLAGS:
        add(p, short, long, **kw)


def _dashboard_tls_files(args: argparse.Namespace) -> dict[str, str] | None:
    """``webServer.tls`` of Go's flags: the two files, taken only with ``--dashboard-tls-mode=true``
    (pkg/config/flags.go sets webServer.tls only there). Files without it would be ignored, so they
    are refused. (Go 0.65's flag drops its value, so Go's dashboard stays HTTP even with the mode on.)"""
    files = {"certFile": args.dashboard_tls_cert_file or "", "keyFile": args.dashboard_tls_key_file or ""}
    if args.dashboard_tls_mode:
        return files
    for flag, value in (("--dashboard-tls-cert-file", files["certFile"]), ("--dashboard-tls-key-file", files["keyFile"])):
        if value:
            raise SystemExit(f"frps: {flag}: has no effect without --dashboard-tls-mode=true, as in frp")
    return None


def frps_flags_to_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The v1 config of frps's flag-only mode (Go's defaults for that mode included)."""
    d: dict[str, Any] = {}
    tls_files = _dashboard_tls_files(args)
    for _short, long, key, _kw in FRPS_FLAGS:
        v = getattr(args, long.lstrip("-").replace("-", "_"))
        if v is None or v is False or key.startswith("webServer.tls"):
            continue
        if key == "allowPorts":
            from ..config import parse_ports_range

            try:
                ranges = parse_ports_range(v)
            except ValueError as exc:
                raise SystemExit(f"frps: --allow-ports: {exc}") from None
            v = [{"single": r.single} if r.single else {"start": r.start, "end": r.end} for r in ranges]
        set_path(d, key, v)
    if tls_files is not None:
        set_path(d, "webServer.tls", tls_files)
    d.setdefault("proxyBindAddr", "0.0.0.0")  # Go: flag mode does not inherit bindAddr
    ws = d.get("webServer")
    if ws and ws.get("port"):
        ws.setdefault("addr", "0.0.0.0")
        ws.setdefault("user", "admin")
        ws.setdefault("password", "admin")
    return d


# -- frpc one-shot proxies and visitors ------------------------------------------------------

# (short, long, scope, v1 key, proxy types or None for all, argparse keywords). scope: "client"
# (a top-level key), "proxy" or "visitor" (a key of the one proxy/visitor), "item" (both).
FlagRow = tuple[str | None, str, str, str, tuple[str, ...] | None, dict[str, Any]]

_DOMAIN_TYPES = ("http", "https", "tcpmux")
_SECRET_TYPES = ("stcp", "sudp", "xtcp")
FRPC_FLAGS: list[FlagRow] = [
    ("-s", "--server-addr", "client", "serverAddr", None,
     {"default": "127.0.0.1",
      "help": "frp server's address, optionally with its port: HOST or HOST:PORT (default 127.0.0.1)"}),
    ("-P", "--server-port", "client", "serverPort", None,
     {"type": int, "default": None, "help": "frp server's port (default 7000)"}),
    ("-t", "--token", "client", "auth.token", None, {"default": "", "help": "auth token"}),
    ("-u", "--user", "client", "user", None, {"default": "", "help": "user"}),
    ("-p", "--protocol", "client", "transport.protocol", None,
     {"default": "tcp", "help": "optional values are [tcp kcp quic websocket wss] (default tcp)"}),
    (None, "--tls-enable", "client", "transport.tls.enable", None,
     {"type": str2bool, "nargs": "?", "const": True, "default": True, "help": "enable frpc tls (default true)"}),
    (None, "--tls-server-name", "client", "transport.tls.serverName", None,
     {"default": "", "help": "specify the custom server name of tls certificate"}),
    (None, "--dns-server", "client", "dnsServer", None,
     {"default": "", "help": "specify dns server instead of using system default one"}),
    (None, "--log-file", "client", "log.to", None,
     {"default": "console", "help": "console or file path (default console)"}),
    (None, "--log-level", "client", "log.level", None, {"default": "info", "help": "log level (default info)"}),
    (None, "--log-max-days", "client", "log.maxDays", None,
     {"type": int, "default": 3, "help": "log file reserved days (default 3)"}),
    (None, "--disable-log-color", "client", "log.disablePrintColor", None,
     {"action": "store_true", "help": "disable log color in console"}),
    (None, "--ue", "item", "transport.useEncryption", None, {"action": "store_true", "help": "use encryption"}),
    (None, "--uc", "item", "transport.useCompression", None, {"action": "store_true", "help": "use compression"}),
    # proxies
    ("-n", "--proxy-name", "proxy", "name", None, {"default": "", "help": "proxy name"}),
    ("-i", "--local-ip", "proxy", "localIP", None, {"default": "127.0.0.1", "help": "local ip (default 127.0.0.1)"}),
    ("-l", "--local-port", "proxy", "localPort", None, {"type": int, "default": 0, "help": "local port"}),
    (None, "--bandwidth-limit", "proxy", "transport.bandwidthLimit", None,
     {"default": "", "help": "bandwidth limit (e.g. 100KB or 1MB)"}),
    (None, "--bandwidth-limit-mode", "proxy", "transport.bandwidthLimitMode", None,
     {"default": "client", "help": "bandwidth limit mode (default client)"}),
    (None, "--annotations", "proxy", "annotations", None,
     {"type": key_values, "default": {}, "help": "annotation pairs key1=value1,key2=value2"}),
    (None, "--metadatas", "proxy", "metadatas", None,
     {"type": key_values, "default": {}, "help": "metadata pairs key1=value1,key2=value2"}),
    ("-r", "--remote-port", "proxy", "remotePort", ("tcp", "udp"), {"type": int, "default": 0, "help": "remote port"}),
    ("-d", "--custom-domain", "proxy", "customDomains", _DOMAIN_TYPES,
     {"type": csv, "default": [], "help": "custom domains (comma separated)"}),
    (None, "--sd", "proxy", "subdomain", _DOMAIN_TYPES, {"default": "", "help": "sub domain"}),
    (None, "--locations", "proxy", "locations", ("http",), {"type": csv, "default": [], "help": "locations"}),
    (None, "--http-user", "proxy", "httpUser", ("http", "tcpmux"), {"default": "", "help": "http auth user"}),
    (None, "--http-pwd", "proxy", "httpPassword", ("http", "tcpmux"), {"default": "", "help": "http auth password"}),
    (None, "--host-header-rewrite", "proxy", "hostHeaderRewrite", ("http",),
     {"default": "", "help": "host header rewrite"}),
    (None, "--mux", "proxy", "multiplexer", ("tcpmux",),
     {"default": "", "help": "multiplexer (httpconnect; required, as Go)"}),
    (None, "--sk", "proxy", "secretKey", _SECRET_TYPES, {"default": "", "help": "secret key"}),
    (None, "--allow-users", "proxy", "allowUsers", _SECRET_TYPES,
     {"type": csv, "default": [], "help": "allow visitor users"}),
    # visitors
    ("-n", "--visitor-name", "visitor", "name", None, {"default": "", "help": "visitor name"}),
    (None, "--server-name", "visitor", "serverName", None, {"default": "", "help": "server name"}),
    (None, "--server-user", "visitor", "serverUser", None, {"default": "", "help": "server user"}),
    (None, "--sk", "visitor", "secretKey", None, {"default": "", "help": "secret key"}),
    (None, "--bind-addr", "visitor", "bindAddr", None, {"default": "127.0.0.1", "help": "bind addr (default 127.0.0.1)"}),
    (None, "--bind-port", "visitor", "bindPort", None, {"type": int, "default": 0, "help": "bind port"}),
]


def frpc_flag_rows(ptype: str, visitor: bool) -> list[FlagRow]:
    """The flags of ``frpc TYPE`` (``visitor``: of ``frpc TYPE visitor``)."""
    want = ("client", "item", "visitor" if visitor else "proxy")
    return [r for r in FRPC_FLAGS if r[2] in want and (r[4] is None or ptype in r[4])]


def add_frpc_flags(p: argparse.ArgumentParser, ptype: str, visitor: bool) -> None:
    for short, long, _scope, _key, _types, kw in frpc_flag_rows(ptype, visitor):
        add(p, short, long, **kw)


def split_server_addr(addr: str, port: int | None) -> tuple[str, int]:
    """``-s HOST`` or ``-s HOST:PORT`` (``[v6]:PORT``) with ``-P PORT``: the server's address and port.

    A port in ``-s`` is taken when ``-P`` is absent or says the same; otherwise SystemExit explains."""
    host, sep, tail = addr.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not sep or (":" in host and not bracketed):  # HOST, or a bare IPv6 address
        return addr.strip("[]"), 7000 if port is None else port
    if not tail.isdigit() or not 0 < int(tail) < 65536:
        raise SystemExit(f"frpc: -s {addr}: {tail!r} is not a port number (use -s HOST -P PORT)")
    if port is not None and port != int(tail):
        raise SystemExit(f"frpc: -s {addr} and -P {port} name different server ports; give the port once")
    return host.strip("[]"), int(tail)


def _dest(long: str) -> str:
    return long.lstrip("-").replace("-", "_")


def frpc_flags_to_dict(args: argparse.Namespace, ptype: str, visitor: bool) -> dict[str, Any]:
    """The v1 config of ``frpc TYPE [visitor] flags``: one proxy (or visitor)."""
    d: dict[str, Any] = {}
    item: dict[str, Any] = {"type": ptype}
    for _short, long, scope, key, _types, _kw in frpc_flag_rows(ptype, visitor):
        set_path(d if scope == "client" else item, key, getattr(args, _dest(long)))
    d["visitors" if visitor else "proxies"] = [item]
    d["serverAddr"], d["serverPort"] = split_server_addr(args.server_addr, args.server_port)
    return d


def _covers(key: str, path: str) -> bool:
    return path == key or path.startswith((key + ".", key + "["))


def frps_flag_for_key(path: str) -> str | None:
    """The frps flag that sets config key ``path`` (``webServer.port`` -> ``--dashboard-port``), if any."""
    return next((long for _short, long, key, _kw in FRPS_FLAGS if _covers(key, path)), None)


def frpc_flag_for_key(ptype: str, visitor: bool, path: str) -> str | None:
    """The ``frpc TYPE`` flag that sets ``path`` (``proxies[0].localPort`` -> ``--local-port``), if any."""
    head, dot, rest = path.partition("].")
    item = dot and head.startswith(("proxies[", "visitors["))
    plain = rest if item else path
    for _short, long, scope, key, _types, _kw in frpc_flag_rows(ptype, visitor):
        if (scope != "client") == bool(item) and _covers(key, plain):
            return long
    return None
