"""frps/frpc config texts for tests: TOML builders (loopback only) and shared config files (a
legacy INI pair, a Go-template frpc file)."""

from __future__ import annotations

from collections.abc import Mapping

from .ports import LOCALHOST

__all__ = ["block", "frpc_config", "frps_config", "tcp_proxy", "udp_proxy"]


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(f"no TOML rendering for {v!r}")


def _lines(pairs: Mapping[str, object]) -> str:
    return "".join(f"{k} = {_toml(v)}\n" for k, v in pairs.items() if v is not None)


def frps_config(
    bind_port: int,
    *,
    token: str | None = None,
    tcp_mux: bool | None = None,
    log_level: str | None = None,
    extra: str = "",
    **keys: object,
) -> str:
    """frps TOML: ``bindAddr = "127.0.0.1"``, ``bindPort``, optional ``auth.token``/``transport.tcpMux``/
    ``log.level``; ``keys`` are written verbatim as ``key = value`` (use dotted names via ``**{...}``);
    ``extra`` is appended as-is."""
    text = _lines({"bindAddr": LOCALHOST, "bindPort": bind_port, "auth.token": token,
                   "transport.tcpMux": tcp_mux, "log.level": log_level, **keys})
    return text + extra


def frpc_config(
    server_port: int,
    *proxies: str,
    token: str | None = None,
    tls: bool | None = None,
    tcp_mux: bool | None = None,
    log_level: str | None = None,
    login_fail_exit: bool = False,
    extra: str = "",
    **keys: object,
) -> str:
    """frpc TOML: ``serverAddr = "127.0.0.1"``, ``serverPort``, ``loginFailExit`` (default false, as
    frp's harness), optional token/TLS/tcpMux/log level, other top-level ``keys``, then ``extra``
    and the ``proxies`` blocks (see :func:`tcp_proxy`)."""
    text = _lines({"serverAddr": LOCALHOST, "serverPort": server_port, "loginFailExit": login_fail_exit,
                   "auth.token": token, "transport.tls.enable": tls, "transport.tcpMux": tcp_mux,
                   "log.level": log_level, **keys})
    return text + extra + "".join(proxies)


def block(table: str, **keys: object) -> str:
    """A ``[[proxies]]`` / ``[[visitors]]`` table; ``keys`` verbatim (dotted names via ``**{...}``),
    ``__`` in a key becomes a dot (``transport__useEncryption``)."""
    return f"\n[[{table}]]\n" + _lines({k.replace("__", "."): v for k, v in keys.items()})


def _proxy(kind: str, name: str, local_port: int, remote_port: int | None, keys: Mapping[str, object]) -> str:
    return "\n[[proxies]]\n" + _lines({"name": name, "type": kind, "localIP": LOCALHOST,
                                        "localPort": local_port, "remotePort": remote_port, **keys})


def tcp_proxy(
    name: str,
    local_port: int,
    remote_port: int | None = None,
    *,
    encryption: bool | None = None,
    compression: bool | None = None,
    **keys: object,
) -> str:
    """A ``[[proxies]]`` block of type tcp (``keys`` verbatim, e.g. ``**{"transport.bandwidthLimit": "1MB"}``)."""
    keys = {"transport.useEncryption": encryption, "transport.useCompression": compression, **keys}
    return _proxy("tcp", name, local_port, remote_port, keys)


def udp_proxy(name: str, local_port: int, remote_port: int | None = None, **keys: object) -> str:
    return _proxy("udp", name, local_port, remote_port, keys)


# -- shared config files (e2e and compat) --------------------------------------------------------

LEGACY_FRPS = """\
[common]
  bind_addr = 127.0.0.1
  bind_port = {bind}
  token = legacy-token
  max_pool_count = 3
"""

LEGACY_FRPC = """\
# a legacy frpc.ini, indented as frp's own harness writes them
[common]
  server_addr = 127.0.0.1
  server_port = {bind}
  token = legacy-token
  login_fail_exit = false
  pool_count = 2

[plain]
  type = tcp
  local_ip = 127.0.0.1
  local_port = {echo}
  remote_port = {r1}

[secure]
  type = tcp
  local_port = {echo}
  remote_port = {r2}
  use_encryption = true
  use_compression = true
"""

LEGACY_FRPC_RANGE = """
[range:many]
  type = tcp
  local_port = {echo},{echo}
  remote_port = {r3},{r4}
"""

TEMPLATE_FRPC = """\
serverAddr = "127.0.0.1"
serverPort = {bind}
loginFailExit = false
auth.token = "{{{{ .Envs.FRP_TEST_TOKEN }}}}"
{{{{- range $_, $v := parseNumberRangePair "{echo},{echo}" "{r1},{r2}" }}}}

[[proxies]]
name = "tcp-{{{{ $v.Second }}}}"
type = "tcp"
localPort = {{{{ $v.First }}}}
remotePort = {{{{ $v.Second }}}}
{{{{- end }}}}
"""
