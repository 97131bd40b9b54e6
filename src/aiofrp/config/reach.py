"""How frpc reaches frps, parsed: ``transport.proxyURL`` (and ``$http_proxy``) for the dial through
a forward proxy (``net/forward_proxy.py``), ``dnsServer`` for the lookups (``net/dns.py``), and the
reasons a value is refused when the config is loaded."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMES = ("http", "https", "socks5")
"""The proxy URL schemes frpc takes for ``transport.proxyURL``."""

_REFUSED_SCHEMES = {
    "ntlm": "NTLM proxy authentication is not supported by aiofrp (no maintained asyncio NTLM client); "
    "use an http:// or socks5:// proxy",
}


class ProxyURLError(ValueError):
    """A proxy URL that cannot be used; ``str()`` says why."""


@dataclass(frozen=True)
class ProxyURL:
    """A parsed ``transport.proxyURL`` (or ``$http_proxy``)."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def label(self) -> str:
        """The URL without its credentials (for log lines and errors)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse ``scheme://[user[:password]@]host:port``; :class:`ProxyURLError` when unusable."""
    import urllib.parse  # here, as ipaddress below: 0.5 MB resident that frpc needs for these only

    try:
        u = urllib.parse.urlsplit(url)
        port = u.port
    except ValueError as e:
        raise ProxyURLError(f"invalid proxy URL: {e}") from None
    scheme = u.scheme.lower()
    if scheme in _REFUSED_SCHEMES:
        raise ProxyURLError(_REFUSED_SCHEMES[scheme])
    if scheme not in SCHEMES:
        raise ProxyURLError(f"the proxy URL scheme must be http, https or socks5, not [{u.scheme}]")
    if not u.hostname:
        raise ProxyURLError("the proxy URL has no host")
    if port is None:
        # Go dials "host" without a port and fails every time ("missing port in address")
        raise ProxyURLError("the proxy URL has no port (write scheme://host:port)")
    user = urllib.parse.unquote(u.username) if u.username is not None else None
    password = urllib.parse.unquote(u.password) if u.password is not None else None
    if user is not None and password is None:
        password = ""
    return ProxyURL(scheme, u.hostname, port, user, password)


DEFAULT_DNS_PORT = 53


def parse_dns_server(value: str) -> tuple[str, int]:
    """``"IP"`` or ``"IP:port"`` / ``"[IPv6]:port"`` -> (IP, port); ``ValueError`` naming the problem."""
    host, port = value, DEFAULT_DNS_PORT
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"invalid DNS server address {value!r}")
        host, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid DNS server address {value!r}")
            port = _port(rest[1:], value)
    elif value.count(":") == 1:
        host, p = value.split(":")
        port = _port(p, value)
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"the DNS server must be an IP address with an optional :port (e.g. 8.8.8.8 or 127.0.0.1:5353), "
            f"not {value!r}"
        ) from None
    return host, port


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"invalid port in DNS server address {value!r}")
    return int(text)
