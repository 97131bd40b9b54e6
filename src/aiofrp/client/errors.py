"""frpc's errors on the way to frps, worded for users.

Every failure to reach frps or to log in becomes one :class:`ServerConnectError` whose text names
``serverAddr:serverPort``, says which step failed (dial, TLS handshake, login) and ends with a
one-line hint, e.g.::

    dial tcp 127.0.0.1:7000: connect: connection refused; is frps running there, with bindPort = 7000?

frpc logs it as ``connect to server error: <text>`` (Go frpc's prefix).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from ..net.dialerr import dial_error_text
from ..proto.addr import fmt_addr
from ..proto.errors import ProtocolError


class ServerConnectError(ConnectionError):
    """Reaching frps or logging in failed; ``str()`` is what failed, where, and a hint.

    A :class:`ConnectionError`, so every caller that handles a failed connection handles it."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(f"{what}; {hint}" if hint else what)
        self.what = what
        self.hint = hint


@dataclass(frozen=True)
class Server:
    """Where frpc connects and how (enough to word an error)."""

    addr: str
    port: int
    tls: bool
    first_byte: bool  # the 0x17 byte before the ClientHello (disableCustomTLSFirstByte = false)

    @property
    def label(self) -> str:
        return fmt_addr((self.addr, self.port))

    @property
    def bind_port_hint(self) -> str:
        return f"is {self.port} frps's bindPort?"


def _looks_like_host_port(addr: str) -> bool:
    """``host:port`` given as serverAddr (not an IPv6 address)."""
    if ":" not in addr:
        return False
    import ipaddress  # here: 0.3 MB resident, for an error message

    try:
        ipaddress.ip_address(addr.strip("[]"))
    except ValueError:
        return True
    return False


# -- dial ---------------------------------------------------------------------------------------


def dial_error(srv: Server, exc: BaseException, timeout: float, network: str = "tcp") -> ServerConnectError:
    """The connection to frps (``network``: tcp, udp for KCP, quic) could not be made."""
    if isinstance(exc, socket.gaierror):
        from ..net.dialerr import lookup_error_text

        what = lookup_error_text(srv.addr, exc, network)
        if _looks_like_host_port(srv.addr):
            host, _, port = srv.addr.rpartition(":")
            return ServerConnectError(
                what, f'serverAddr must not contain a port: set serverAddr = "{host.strip("[]")}" '
                f"and serverPort = {port}")
        return ServerConnectError(what, "check serverAddr (a host name or IP address of the frps machine)")
    if isinstance(exc, TimeoutError):
        return ServerConnectError(
            f"dial {network} {srv.label}: i/o timeout (no answer within {timeout:g}s)",
            "check serverAddr and serverPort, and that no firewall drops the connection",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ServerConnectError(
            f"dial {network} {srv.label}: connect: connection refused",
            f"is frps running there, with bindPort = {srv.port}?",
        )
    return ServerConnectError(dial_error_text(srv.label, exc, network),
                              "check serverAddr and the network path to the frps machine")


def proxy_error(srv: Server, proxy: str, exc: BaseException, timeout: float) -> ServerConnectError:
    """The proxy of ``transport.proxyURL`` was not reached, or refused to connect us to frps."""
    reached = getattr(exc, "reached", False)
    status = getattr(exc, "status", None)
    if not reached:
        return ServerConnectError(
            f"dial tcp {srv.label} through the proxy {proxy}: {exc}",
            "is the proxy running there? (transport.proxyURL or $http_proxy; frpc never connects "
            "directly when a proxy is set)",
        )
    if getattr(exc, "hint", ""):
        return ServerConnectError(f"proxy {proxy}: {exc}", exc.hint)  # type: ignore[attr-defined]
    if status == 407 or "authentication" in str(exc).lower():
        hint = "check the user and password in the proxy URL (transport.proxyURL or $http_proxy)"
    else:
        hint = f"the proxy could not or would not connect to {srv.label}"
    what = f"DialTcpByHttpProxy error, StatusCode [{status}]" if status and proxy.startswith("http") else str(exc)
    return ServerConnectError(f"proxy {proxy} refused to connect to {srv.label}: {what}", hint)


# -- TLS handshake ------------------------------------------------------------------------------

# OpenSSL reason -> (what happened, hint); "{port}" is filled in.
_NOT_TLS = ("the server does not speak TLS", "is {port} frps's bindPort?")
_TLS_REASONS: dict[str, tuple[str, str]] = {
    "WRONG_VERSION_NUMBER": _NOT_TLS,
    "RECORD_LAYER_FAILURE": _NOT_TLS,
    "PACKET_LENGTH_TOO_LONG": _NOT_TLS,
    "UNKNOWN_PROTOCOL": _NOT_TLS,
    "HTTP_REQUEST": _NOT_TLS,
    "UNEXPECTED_EOF_WHILE_READING": ("the server closed the connection", "is {port} frps's bindPort?"),
    "TLSV1_UNRECOGNIZED_NAME": (
        ("remote error: tls: unrecognized name (frps's vhostHTTPSPort shares its bindPort, so plain TLS "
         "goes to the HTTPS virtual hosts)"),
        "set transport.tls.disableCustomTLSFirstByte = false",
    ),
    "CERTIFICATE_VERIFY_FAILED": (
        "frps's certificate is not trusted",
        "check transport.tls.trustedCaFile and transport.tls.serverName",
    ),
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        "frps requires a client certificate",
        "set transport.tls.certFile and transport.tls.keyFile (signed by frps's trustedCaFile)",
    ),
    "SSLV3_ALERT_BAD_CERTIFICATE": (
        "frps refused our client certificate",
        "use a certFile/keyFile signed by frps's transport.tls.trustedCaFile",
    ),
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": (
        "frps refused our client certificate",
        "use a certFile/keyFile signed by frps's transport.tls.trustedCaFile",
    ),
}


def tls_error(srv: Server, exc: BaseException, timeout: float) -> ServerConnectError:
    """The TLS handshake with frps failed."""
    where = f"TLS handshake with {srv.label}"
    if isinstance(exc, TimeoutError):
        return ServerConnectError(f"{where} timed out after {timeout:g}s", srv.bind_port_hint)
    if isinstance(exc, ssl.SSLError) and exc.reason in _TLS_REASONS:
        what, hint = _TLS_REASONS[exc.reason]
        return ServerConnectError(f"{where} failed: {what}", hint.format(port=srv.port))
    if isinstance(exc, ssl.SSLError):
        return ServerConnectError(f"{where} failed: {exc.reason or exc}".lower(), srv.bind_port_hint)
    if isinstance(exc, ConnectionError | EOFError):
        return ServerConnectError(f"{where} failed: the server closed the connection", srv.bind_port_hint)
    return ServerConnectError(f"{where} failed: {exc or type(exc).__name__}", srv.bind_port_hint)


# -- login --------------------------------------------------------------------------------------


def login_error(srv: Server, exc: BaseException, timeout: float) -> ServerConnectError:
    """The connection was made but no LoginResp came back."""
    if isinstance(exc, TimeoutError):
        return ServerConnectError(f"no answer to the login from {srv.label} within {timeout:g}s",
                                  srv.bind_port_hint)
    if isinstance(exc, ProtocolError):
        return ServerConnectError(f"{srv.label} did not answer the login as frps does ({exc})",
                                  srv.bind_port_hint)
    what = f"{srv.label} closed the connection without answering the login"
    if not srv.tls:
        return ServerConnectError(
            what, "frps requires TLS when its transport.tls.force = true: set transport.tls.enable = true "
            f"(and check that {srv.port} is frps's bindPort)")
    return ServerConnectError(what, srv.bind_port_hint)


# Reasons frps gives in LoginResp.error -> hint.
_REFUSAL_HINTS: dict[str, str] = {
    "token in login doesn't match": "check that auth.token is the same on frpc and frps",
    "is already online": "another frpc with the same user and clientID is logged in",
}


def refusal_text(srv: Server, reason: str) -> str:
    """frps refused the login: its reason verbatim, then where and a hint."""
    hint = next((h for key, h in _REFUSAL_HINTS.items() if key in reason), "see frps's log for the reason")
    return f"{reason}; frps at {srv.label} refused the login: {hint}"
