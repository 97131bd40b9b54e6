"""frpc's way out through a forward proxy (``transport.proxyURL``, spec §1.1): HTTP CONNECT or SOCKS5.

Go frpc (golib ``net.DialContext`` with ``WithProxy``) dials the proxy instead of frps, then asks it
for ``serverAddr:serverPort`` **by name** (the proxy resolves it): ``CONNECT host:port HTTP/1.1``
with ``Proxy-Authorization: Basic`` when the URL has a user, or a SOCKS5 CONNECT with ATYP=domain
and user/password authentication (RFC 1929) when the URL has a user. Anything but ``200`` /
SOCKS5 success fails the dial; there is no fallback to a direct connection, here either.

The handshakes are python-socks's (maintained, asyncio-native, used by aiohttp-socks, which we
already depend on): :func:`open_via_proxy` returns a connected, non-blocking socket whose next
bytes are frps's, for ``loop.create_connection(sock=...)``.

``ntlm://`` (Go: NTLM in ``Negotiate`` headers) and ``https://`` (frp >= 0.69: TLS to the proxy)
are refused when the config is loaded (``config/reach.py: parse_proxy_url``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.reach import ProxyURL

class ProxyDialError(ConnectionError):
    """The proxy could not be reached (``reached`` False), or it refused the CONNECT (True)."""

    def __init__(self, text: str, *, reached: bool, status: int | None = None) -> None:
        super().__init__(text)
        self.reached = reached
        self.status = status


Resolve = Callable[[str], Awaitable[list[str]]]
"""host name -> IP addresses (a custom DNS server); None = the system resolver."""


async def open_via_proxy(
    proxy: ProxyURL,
    host: str,
    port: int,
    *,
    timeout: float,
    local_addr: tuple[str, int] | None = None,
    resolve: Resolve | None = None,
) -> socket.socket:
    """A socket connected through ``proxy`` to ``host:port`` (sent to the proxy by name).

    Raises :class:`ProxyDialError` (with an ``OSError``/``TimeoutError`` cause when the proxy was
    not reached)."""
    from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
    from python_socks.async_.asyncio import Proxy

    proxy_host = proxy.host
    if resolve is not None:
        try:
            proxy_host = (await resolve(proxy.host))[0]
        except OSError as e:
            raise ProxyDialError(f"lookup {proxy.host}: {e.strerror or e}", reached=False) from e
    kind = ProxyType.HTTP if proxy.scheme == "http" else ProxyType.SOCKS5
    p = Proxy(kind, proxy_host, proxy.port, proxy.username, proxy.password, rdns=True,
              loop=asyncio.get_running_loop())
    try:
        return await p.connect(host, port, timeout=timeout, local_addr=local_addr)
    except ProxyTimeoutError as e:
        raise ProxyDialError(f"no answer from the proxy within {timeout:g}s", reached=False) from e
    except ProxyConnectionError as e:
        cause = e.__cause__
        if isinstance(cause, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror.lower()
        else:
            reason = str(e)
        raise ProxyDialError(reason, reached=False) from e
    except ProxyError as e:
        raise ProxyDialError(str(e), reached=True, status=e.error_code) from e
    except OSError as e:  # reset or closed by the proxy in the middle of its handshake
        raise ProxyDialError(f"the proxy closed the connection ({e.strerror or e})", reached=True) from e
