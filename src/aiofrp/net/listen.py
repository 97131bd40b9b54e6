"""Listening sockets the way Go's ``net.Listen``/``net.ListenUDP`` open them, for every listener of
frps and frpc (bind port, proxy ports, vhost ports, visitors, the admin server).

Go opens ONE socket per listener:

* a wildcard host (``""``, ``"0.0.0.0"``, ``"::"``) gets an IPv6 socket with ``IPV6_V6ONLY = 0``,
  so IPv4 clients reach it too (as IPv4-mapped addresses, which Go prints in the IPv4 form);
  checked against frp 0.65.0: ``bindAddr = "0.0.0.0"`` shows up as ``*:port`` in ``ss -l``;
* a literal address listens on that address only (``127.0.0.1`` IPv4, ``::1`` IPv6);
* a host name listens on one of its addresses, the first IPv4 one if it has any.

asyncio's ``create_server(host="::")`` sets ``IPV6_V6ONLY = 1`` and ``host=None`` opens one socket
per address family; neither is what a frp config means, hence this module. Peer addresses seen on
a dual-stack socket are IPv4-mapped (``::ffff:1.2.3.4``): :func:`unmap` turns them back.

Every TCP listener opened here is guarded against file-descriptor exhaustion (:class:`FdGuard`):
near the process's fd limit a freshly accepted connection is closed at once, and the refusals
are logged at most once a second, not once per connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FD_GUARD", "FdGuard", "bind_socket", "bind_udp", "listen_tcp", "listen_udp", "local_addr", "peer_addr", "resolve_listen", "unmap"]

BACKLOG = 1024

log = logging.getLogger("aiofrp.net")


def _fd_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


class FdGuard:
    """Refuses accepted connections while the process is close to its file-descriptor limit.

    POSIX hands out the lowest free descriptor, so an accepted socket numbered ``limit - headroom``
    or more means that nearly every descriptor is in use: O(1) per accept, no scan of
    ``/proc/self/fd``. Such a connection is closed at once (the peer sees a reset), keeping
    ``headroom`` descriptors for what the process must still open (a work connection to finish a
    tunnel, a log file, a plugin request). Lines, at most one per :data:`LOG_EVERY` seconds::

        too many open files (fd 243 of the limit 256): refusing new connections
        too many open files (fd limit 256): 1432 more connections refused in the last 1.0s
        accepting new connections again, 1475 refused while at the fd limit
    """

    LOG_EVERY = 1.0

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._limit = _fd_limit()
        self.refused = 0  # in all, for tests and curious users
        self._episode = 0  # refused since the last connection admitted
        self._unlogged = 0  # refused since the last line
        self._last_line = -1e18

    @staticmethod
    def headroom(limit: int) -> int:
        return min(64, max(8, limit // 16))

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """False (and the connection aborted) when it must be refused."""
        limit = self._limit
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        if limit is None or fd < limit - self.headroom(limit):
            if self._episode:
                log.info("accepting new connections again, %d refused while at the fd limit", self._episode)
                self._episode = self._unlogged = 0
            return True
        self._limit = limit = _fd_limit() or limit  # raised with prlimit meanwhile?
        if fd < limit - self.headroom(limit):
            return True
        transport.abort()  # type: ignore[attr-defined]
        self.refused += 1
        self._episode += 1
        self._unlogged += 1
        now = self._clock()
        if now - self._last_line >= self.LOG_EVERY:
            if self._episode == 1:
                log.warning("too many open files (fd %d of the limit %d): refusing new connections", fd, limit)
            else:
                log.warning("too many open files (fd limit %d): %d more connections refused in the last %.1fs",
                            limit, self._unlogged, min(now - self._last_line, 999.0))
            self._last_line = now
            self._unlogged = 0
        return False


FD_GUARD = FdGuard()  # one per process: the limit is the process's


class _Guarded(asyncio.Protocol):
    """Accepts for a listener: checks :data:`FD_GUARD`, then hands the transport to the real protocol."""

    __slots__ = ("_factory",)

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._factory = factory

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not FD_GUARD.admit(transport):
            return
        proto = self._factory()
        transport.set_protocol(proto)
        proto.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass


def _literal(host: str) -> tuple[int, bytes] | None:
    """(family, packed address) of an IP literal (a zone after ``%`` ignored), else None. What
    ``ipaddress.ip_address`` accepts (no leading zeros in IPv4, ...), by inet_pton: the ipaddress
    module (0.3 MB resident) stays out of frps."""
    host = host.split("%", 1)[0]
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return family, socket.inet_pton(family, host)
        except (OSError, ValueError):
            pass
    return None


def _unspecified(lit: tuple[int, bytes] | None) -> bool:
    return lit is not None and not any(lit[1])


def _dual_stack_socket(kind: int) -> socket.socket:
    """An IPv6 wildcard socket that accepts IPv4 too; an IPv4 one where the host has no IPv6."""
    try:
        sock = socket.socket(socket.AF_INET6, kind)
    except OSError:
        return socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    except (OSError, AttributeError):  # pragma: no cover - no IPv4-mapped support: IPv6 only, like Go
        pass
    return sock


def bind_socket(host: str | None, port: int, kind: int = socket.SOCK_STREAM,
                resolved: tuple[int, Any] | None = None, *, reuse_port: bool = False) -> socket.socket:
    """A bound (not yet listening), non-blocking socket for ``host:port`` with Go's semantics.

    ``reuse_port``: SO_REUSEPORT, so that every worker of ``frps --workers N`` listens on the same
    port and the kernel spreads the connections over them.

    ``resolved`` (family, sockaddr) is used for a host name (see :func:`resolve_listen`); literals and
    wildcards need no resolution. Raises OSError (EADDRINUSE, EADDRNOTAVAIL, ...)."""
    host = (host or "").strip("[]")
    lit = _literal(host) if host else None
    if not host or _unspecified(lit):
        sock = _dual_stack_socket(kind)
        addr: Any = ("::", port) if sock.family == socket.AF_INET6 else ("0.0.0.0", port)
    elif resolved is not None:
        family, addr = resolved
        sock = socket.socket(family, kind)
        addr = (addr[0], port, *addr[2:])
    else:
        family = lit[0] if lit is not None else socket.AF_INET
        info = socket.getaddrinfo(host, port, family, kind, 0, socket.AI_NUMERICHOST | socket.AI_PASSIVE)
        sock = socket.socket(family, kind)
        addr = info[0][4]
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like Go (and asyncio) on Unix
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if sock.family == socket.AF_INET6 and lit is not None and not _unspecified(lit):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def resolve_listen(host: str | None, kind: int = socket.SOCK_STREAM) -> tuple[int, Any] | None:
    """(family, sockaddr) of a host name's address to listen on: its first IPv4 address, else its
    first address (Go's ``forResolve`` for listeners); None for wildcards and literals."""
    h = (host or "").strip("[]")
    if not h or _literal(h) is not None:
        return None
    infos = await asyncio.get_running_loop().getaddrinfo(h, 0, type=kind, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"lookup {h}: no such host")
    for fam, _, _, _, sa in infos:
        if fam == socket.AF_INET:
            return fam, sa
    return infos[0][0], infos[0][4]


async def listen_tcp(factory: Callable[[], asyncio.BaseProtocol], host: str | None, port: int,
                     *, backlog: int = BACKLOG, reuse_port: bool = False) -> asyncio.Server:
    """``loop.create_server`` on one socket opened as Go opens it (see the module docstring)."""
    resolved = await resolve_listen(host, socket.SOCK_STREAM)
    return await serve_tcp(factory, bind_socket(host, port, socket.SOCK_STREAM, resolved, reuse_port=reuse_port),
                           backlog=backlog)


async def serve_tcp(factory: Callable[[], asyncio.BaseProtocol], sock: socket.socket,
                    *, backlog: int = BACKLOG) -> asyncio.Server:
    """Listen on a socket from :func:`bind_socket` (closed if that fails)."""
    try:
        return await asyncio.get_running_loop().create_server(lambda: _Guarded(factory), sock=sock, backlog=backlog)
    except BaseException:
        sock.close()
        raise


async def bind_udp(host: str | None, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, non-blocking UDP socket opened as Go's ``net.ListenUDP`` opens it (a wildcard host:
    one dual-stack socket)."""
    resolved = await resolve_listen(host, socket.SOCK_DGRAM)
    return bind_socket(host, port, socket.SOCK_DGRAM, resolved, reuse_port=reuse_port)


async def listen_udp(factory: Callable[[], asyncio.DatagramProtocol], host: str | None,
                     port: int, *, reuse_port: bool = False) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
    """``loop.create_datagram_endpoint`` on one socket opened as Go's ``net.ListenUDP`` opens it."""
    sock = await bind_udp(host, port, reuse_port=reuse_port)
    try:
        return await asyncio.get_running_loop().create_datagram_endpoint(factory, sock=sock)
    except BaseException:
        sock.close()
        raise


def unmap(addr: Any) -> Any:
    """A socket address with an IPv4-mapped IPv6 host (``::ffff:1.2.3.4``) in its IPv4 form
    ``("1.2.3.4", port)``, as Go reports it; any other address unchanged."""
    if isinstance(addr, tuple) and len(addr) >= 2 and isinstance(addr[0], str) and addr[0][:7].lower() == "::ffff:":
        v4 = addr[0][7:]
        if "." in v4:
            return (v4, addr[1])
    return addr


def peer_addr(transport: asyncio.BaseTransport) -> Any:
    """The transport's peer address, IPv4-mapped addresses unmapped (None if unknown)."""
    return unmap(transport.get_extra_info("peername"))


def local_addr(transport: asyncio.BaseTransport) -> Any:
    """The transport's local address, IPv4-mapped addresses unmapped (None if unknown)."""
    return unmap(transport.get_extra_info("sockname"))
