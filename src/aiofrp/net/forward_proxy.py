"""frpc's way out through a forward proxy (``transport.proxyURL``, spec §1.1): HTTP CONNECT or SOCKS5.

Go frpc (golib ``net.DialContext`` with ``WithProxy``) dials the proxy instead of frps, then asks it
for ``serverAddr:serverPort`` **by name** (the proxy resolves it): ``CONNECT host:port HTTP/1.1``
with ``Proxy-Authorization: Basic`` when the URL has a user, or a SOCKS5 CONNECT with ATYP=domain
and user/password authentication (RFC 1929) when the URL has a user. Anything but ``200`` /
SOCKS5 success fails the dial; there is no fallback to a direct connection, here either.

The handshakes are python-socks's (maintained, asyncio-native, used by aiohttp-socks, which we
already depend on): :func:`open_via_proxy` returns a connected, non-blocking socket whose next
bytes are frps's, for ``loop.create_connection(sock=...)``.

``https://`` (frp >= 0.69, golib ``httpsProxyAfterHook``): TLS to the proxy first, its certificate
checked as Go's default ``tls.Config`` does (the system's CAs, so ``SSL_CERT_FILE`` adds one; the
proxy's host as the server name), then the same CONNECT inside: :func:`open_via_https_proxy`,
which returns the TLS transport (frp's own TLS then runs inside it). Bytes the proxy sends behind
its answer are kept (Go's reader drops them).

``ntlm://`` (Go: NTLM in ``Negotiate`` headers) is refused when the config is loaded
(``config/reach.py: parse_proxy_url``).
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

    def __init__(self, text: str, *, reached: bool, status: int | None = None, hint: str = "") -> None:
        super().__init__(text)
        self.reached = reached
        self.status = status
        self.hint = hint  # what to do about it, when the generic hint would not say


Resolve = Callable[[str], Awaitable[list[str]]]
"""host name -> IP addresses (a custom DNS server); None = the system resolver."""


async def _proxy_address(proxy: ProxyURL, resolve: Resolve | None) -> str:
    """The proxy's host, looked up with ``dnsServer`` when one is set (else left to the dial)."""
    if resolve is None:
        return proxy.host
    try:
        return (await resolve(proxy.host))[0]
    except OSError as e:
        raise ProxyDialError(f"lookup {proxy.host}: {e.strerror or e}", reached=False) from e


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

    proxy_host = await _proxy_address(proxy, resolve)
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


class _ConnectReply(asyncio.Protocol):
    """Collects the proxy's answer to CONNECT: ``done`` gets its head (blank line included), ``buf``
    keeps what follows it."""

    def __init__(self) -> None:
        from ..proto.http import find_head_end

        self._find_head_end = find_head_end
        self.buf = b""
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.done.done():
            return
        end = self._find_head_end(self.buf)
        if end >= 0:
            head, self.buf = self.buf[:end], self.buf[end:]
            self.done.set_result(head)
        elif len(self.buf) > 16384:
            self.done.set_exception(ProxyDialError("the proxy's answer to CONNECT is too long", reached=True))

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ProxyDialError("the proxy closed the connection before answering CONNECT",
                                                   reached=True))


def connect_request(host: str, port: int, proxy: ProxyURL) -> bytes:
    """The CONNECT request Go's ``httpProxyAfterHook`` writes (``http.Request.Write``)."""
    import base64

    from ..proto.addr import join_host_port
    from ..proto.http import build_head

    target = join_host_port(host, port)
    headers = [("Host", target), ("User-Agent", "Mozilla/5.0")]
    if proxy.username is not None:
        cred = base64.b64encode(f"{proxy.username}:{proxy.password or ''}".encode()).decode()
        headers.append(("Proxy-Authorization", f"Basic {cred}"))
    return build_head(f"CONNECT {target} HTTP/1.1", headers)


async def open_via_https_proxy(
    proxy: ProxyURL,
    host: str,
    port: int,
    app: asyncio.Protocol,
    *,
    timeout: float,
    local_addr: tuple[str, int] | None = None,
    resolve: Resolve | None = None,
) -> tuple[asyncio.Transport, bytes]:
    """TLS to an ``https://`` proxy, then ``CONNECT host:port`` inside it: the TLS transport (with
    ``app`` as its protocol) and the bytes that came after the proxy's answer. Raises
    :class:`ProxyDialError`."""
    import ssl

    from .tls import TLSTransport, server_name

    loop = asyncio.get_running_loop()
    proxy_host = await _proxy_address(proxy, resolve)
    try:
        async with asyncio.timeout(timeout):
            raw, _ = await loop.create_connection(asyncio.Protocol, proxy_host, proxy.port, local_addr=local_addr)
    except TimeoutError as e:
        raise ProxyDialError(f"no answer from the proxy within {timeout:g}s", reached=False) from e
    except OSError as e:
        reason = "connection refused" if isinstance(e, ConnectionRefusedError) else (e.strerror or str(e)).lower()
        raise ProxyDialError(reason, reached=False) from e
    reply = _ConnectReply()
    tls = TLSTransport(raw, ssl.create_default_context(), reply, server_side=False,
                       server_hostname=server_name(proxy.host), handshake_timeout=timeout)
    try:
        async with asyncio.timeout(timeout + 1):
            try:
                await tls.handshake
            except (OSError, EOFError, ValueError) as e:
                if isinstance(e, ssl.SSLCertVerificationError):
                    why = f"certificate verify failed: {e.verify_message}"
                else:
                    why = getattr(e, "reason", None) or str(e) or type(e).__name__
                raise ProxyDialError(
                    f"TLS handshake with HTTPS proxy: {why}", reached=True,
                    hint=(f"the proxy's certificate must be valid for {proxy.host} and signed by a CA the system "
                          "trusts (SSL_CERT_FILE adds one), as for Go frpc"),
                ) from e
            tls.write(connect_request(host, port, proxy))
            head = await reply.done
    except TimeoutError as e:
        raw.abort()
        raise ProxyDialError(f"no answer from the proxy within {timeout:g}s", reached=True) from e
    except BaseException:
        raw.abort()
        raise
    from ..proto.http import HTTPError, parse_response_head

    status_line = head.split(b"\n", 1)[0].decode("latin-1").strip()
    try:
        status: int | None = parse_response_head(head).status
    except HTTPError:
        status = None
    if status != 200:
        raw.abort()
        raise ProxyDialError(status_line or "empty answer", reached=True, status=status)
    tls.set_protocol(app)
    return tls, reply.buf
