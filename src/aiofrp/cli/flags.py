"""Command-line flags shared by frps and frpc, mapped onto frp's v1 config keys.

Every long flag accepts dashes and underscores (``--bind-port`` == ``--bind_port``), like Go frp.
"""

from __future__ import annotations

import argparse
from typing import Any


def add(p: argparse.ArgumentParser | Any, short: str | None, long: str, **kw: Any) -> None:
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


def frps_flags_to_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The v1 config of frps's flag-only mode (Go's defaults for that mode included)."""
    d: dict[str, Any] = {}
    for _short, long, key, _kw in FRPS_FLAGS:
        v = getattr(args, long.lstrip("-").replace("-", "_"))
        if v is None or v is False:
            continue
        if key == "allowPorts":
            from ..config import parse_ports_range

            try:
                ranges = parse_ports_range(v)
            except ValueError as exc:
                raise SystemExit(f"frps: --allow-ports: {exc}") from None
            v = [{"single": r.single} if r.single else {"start": r.start, "end": r.end} for r in ranges]
        set_path(d, key, v)
    d.setdefault("proxyBindAddr", "0.0.0.0")  # Go: flag mode does not inherit bindAddr
    ws = d.get("webServer")
    if ws and ws.get("port"):
        ws.setdefault("addr", "0.0.0.0")
        ws.setdefault("user", "admin")
        ws.setdefault("password", "admin")
    return d


# -- frpc one-shot proxies and visitors ------------------------------------------------------

def add_frpc_common_flags(p: argparse.ArgumentParser) -> None:
    add(p, "-s", "--server-addr", default="127.0.0.1",
        help="frp server's address, optionally with its port: HOST or HOST:PORT (default 127.0.0.1)")
    add(p, "-P", "--server-port", type=int, default=None, help="frp server's port (default 7000)")
    add(p, "-t", "--token", default="", help="auth token")
    add(p, "-u", "--user", default="", help="user")
    add(p, "-p", "--protocol", default="tcp", help="optional values are [tcp kcp quic websocket wss] (default tcp)")
    add(p, None, "--tls-enable", type=str2bool, nargs="?", const=True, default=True,
        help="enable frpc tls (default true)")
    add(p, None, "--tls-server-name", default="", help="specify the custom server name of tls certificate")
    add(p, None, "--dns-server", default="", help="specify dns server instead of using system default one")
    add(p, None, "--log-file", default="console", help="console or file path (default console)")
    add(p, None, "--log-level", default="info", help="log level (default info)")
    add(p, None, "--log-max-days", type=int, default=3, help="log file reserved days (default 3)")
    add(p, None, "--disable-log-color", action="store_true", help="disable log color in console")
    add(p, None, "--ue", action="store_true", help="use encryption")
    add(p, None, "--uc", action="store_true", help="use compression")


def add_frpc_proxy_flags(p: argparse.ArgumentParser, ptype: str) -> None:
    add_frpc_common_flags(p)
    add(p, "-n", "--proxy-name", default="", help="proxy name")
    add(p, "-i", "--local-ip", default="127.0.0.1", help="local ip (default 127.0.0.1)")
    add(p, "-l", "--local-port", type=int, default=0, help="local port")
    add(p, None, "--bandwidth-limit", default="", help="bandwidth limit (e.g. 100KB or 1MB)")
    add(p, None, "--bandwidth-limit-mode", default="client", help="bandwidth limit mode (default client)")
    add(p, None, "--annotations", type=key_values, default={}, help="annotation pairs key1=value1,key2=value2")
    add(p, None, "--metadatas", type=key_values, default={}, help="metadata pairs key1=value1,key2=value2")
    if ptype in ("tcp", "udp"):
        add(p, "-r", "--remote-port", type=int, default=0, help="remote port")
    if ptype in ("http", "https", "tcpmux"):
        add(p, "-d", "--custom-domain", type=csv, default=[], help="custom domains (comma separated)")
        add(p, None, "--sd", default="", help="sub domain")
    if ptype == "http":
        add(p, None, "--locations", type=csv, default=[], help="locations")
        add(p, None, "--http-user", default="", help="http auth user")
        add(p, None, "--http-pwd", default="", help="http auth password")
        add(p, None, "--host-header-rewrite", default="", help="host header rewrite")
    if ptype == "tcpmux":
        add(p, None, "--http-user", default="", help="http auth user")
        add(p, None, "--http-pwd", default="", help="http auth password")
        add(p, None, "--mux", default="httpconnect", help="multiplexer (default httpconnect)")
    if ptype in ("stcp", "sudp", "xtcp"):
        add(p, None, "--sk", default="", help="secret key")
        add(p, None, "--allow-users", type=csv, default=[], help="allow visitor users")


def add_frpc_visitor_flags(p: argparse.ArgumentParser) -> None:
    add_frpc_common_flags(p)
    add(p, "-n", "--visitor-name", default="", help="visitor name")
    add(p, None, "--server-name", default="", help="server name")
    add(p, None, "--server-user", default="", help="server user")
    add(p, None, "--sk", default="", help="secret key")
    add(p, None, "--bind-addr", default="127.0.0.1", help="bind addr (default 127.0.0.1)")
    add(p, None, "--bind-port", type=int, default=0, help="bind port")


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


def _frpc_common_dict(args: argparse.Namespace) -> dict[str, Any]:
    server_addr, server_port = split_server_addr(args.server_addr, args.server_port)
    d: dict[str, Any] = {
        "serverAddr": server_addr,
        "serverPort": server_port,
        "user": args.user,
        "auth": {"token": args.token},
        "dnsServer": args.dns_server,
        "transport": {"protocol": args.protocol, "tls": {"enable": args.tls_enable,
                                                          "serverName": args.tls_server_name}},
        "log": {"to": args.log_file, "level": args.log_level, "maxDays": args.log_max_days,
                "disablePrintColor": args.disable_log_color},
    }
    return d


def frpc_proxy_to_dict(args: argparse.Namespace, ptype: str) -> dict[str, Any]:
    d = _frpc_common_dict(args)
    proxy: dict[str, Any] = {
        "name": args.proxy_name or f"{ptype}_proxy",
        "type": ptype,
        "localIP": args.local_ip,
        "localPort": args.local_port,
        "annotations": args.annotations,
        "metadatas": args.metadatas,
        "transport": {"useEncryption": args.ue, "useCompression": args.uc,
                      "bandwidthLimit": args.bandwidth_limit, "bandwidthLimitMode": args.bandwidth_limit_mode},
    }
    extra = {
        "remote_port": "remotePort", "custom_domain": "customDomains", "sd": "subdomain",
        "locations": "locations", "http_user": "httpUser", "http_pwd": "httpPassword",
        "host_header_rewrite": "hostHeaderRewrite", "mux": "multiplexer", "sk": "secretKey",
        "allow_users": "allowUsers",
    }
    for dest, key in extra.items():
        if hasattr(args, dest):
            proxy[key] = getattr(args, dest)
    d["proxies"] = [proxy]
    return d


def frpc_visitor_to_dict(args: argparse.Namespace, vtype: str) -> dict[str, Any]:
    d = _frpc_common_dict(args)
    d["visitors"] = [{
        "name": args.visitor_name or f"{vtype}_visitor",
        "type": vtype,
        "serverName": args.server_name,
        "serverUser": args.server_user,
        "secretKey": args.sk,
        "bindAddr": args.bind_addr,
        "bindPort": args.bind_port,
        "transport": {"useEncryption": args.ue, "useCompression": args.uc},
    }]
    return d
