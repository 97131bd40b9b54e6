"""TLS with OpenSSL reading and writing the TCP socket itself (a non-blocking ``ssl.SSLSocket``
driven by the loop's ``add_reader``/``add_writer``), for a yamux session straight on TCP.

``net/tls.py``'s :class:`~aiofrp.net.tls.TLSTransport` runs OpenSSL over two ``ssl.MemoryBIO``
objects, which works over any transport, but every byte then passes through the BIOs: ciphertext
read by the loop is copied into the incoming BIO (OpenSSL zeroes the room first) and from it into
OpenSSL's record buffer; ciphertext written is copied into the outgoing BIO (zeroed first), out of
it into a new bytes object, and from that into the kernel. With the socket under OpenSSL, records
go from the kernel into OpenSSL's buffer and from OpenSSL's buffer into the kernel, nothing in
between: on a TLS bulk transfer the sender spends about a third less CPU and the receiver about a
sixth less (docs/performance.md, "TLS on the socket").

Used where frpc has a plain TCP connection to frps under a yamux session (``transport.tcpMux``,
the default), see ``client/connector.py``; everything else (TLS over websocket, KCP or a yamux
stream, and TLS without tcpMux, whose work connections need TLS 1.3's half-close) stays on
``TLSTransport``. So does frps: a sender on the socket writes each 16 KiB record with its own
``send``, and its receiver then wakes once per record; frps's one write per batch saves frpc more
than it costs frps (measured both ways, docs/performance.md). The difference from
``TLSTransport``: no half-close (:meth:`can_write_eof` is False), because OpenSSL cannot send a
close_notify through ``ssl`` without also trying to read the peer's, which fails on application
data still unread in the socket. A yamux session never half-closes its TLS connection.

``AIOFRP_TLS=bio`` in the environment keeps every connection on ``TLSTransport``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import ssl
from typing import Any

from ..proto.uninit import new_bytearray
from .tls import HANDSHAKE_TIMEOUT, READ_SIZE, TLSLayer

log = logging.getLogger("aiofrp.net.tls")

HIGH_WATER = 64 * 1024  # asyncio's default write-buffer limits


def enabled() -> bool:
    """False when ``AIOFRP_TLS=bio`` asks for the MemoryBIO layer everywhere."""
    return os.environ.get("AIOFRP_TLS", "").lower() != "bio"


class _Detached(asyncio.Protocol):
    """Left on a transport whose socket was taken: its last callbacks go nowhere."""


def detach_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """The TCP socket under ``transport`` (uvloop's or asyncio's), as a socket of our own: a
    duplicate of its descriptor, after which the transport is closed (closing its descriptor
    leaves the connection open). None, and the transport untouched, when that cannot be: not a
    TCP socket, or bytes still waiting in the transport's write buffer."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    if transport.get_write_buffer_size():  # type: ignore[attr-defined]
        return None
    try:
        own = socket.socket(fileno=os.dup(sock.fileno()))
    except OSError:
        return None
    own.setblocking(False)
    transport.set_protocol(_Detached())
    transport.abort()  # type: ignore[attr-defined]
    return own


class SocketTLSTransport(TLSLayer):
    """A TLS session on a connected TCP socket; the application protocol sees plaintext.

    The same contract as :class:`~aiofrp.net.tls.TLSTransport`: ``app_protocol.connection_made``
    once the handshake completes, the :attr:`handshake` future reports success or the handshake
    error (then the socket is closed and the protocol never hears of it), and each
    ``data_received`` gets a buffer of its own that consumers may keep."""

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        app_protocol: asyncio.BaseProtocol,
        *,
        server_side: bool,
        server_hostname: str | bytes | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._extra: dict[str, Any] = {}
        for name, get in (("peername", sock.getpeername), ("sockname", sock.getsockname)):
            try:
                self._extra[name] = get()
            except OSError:
                pass
        sock.setblocking(False)
        self._sock = context.wrap_socket(sock, server_side=server_side, server_hostname=server_hostname,
                                         do_handshake_on_connect=False)
        self._fd = self._sock.fileno()
        self._app = app_protocol
        self._established = False
        self._closing = False  # close() or abort() called, or the connection failed
        self._lost = False  # the socket is closed
        self._reading_paused = False
        self._reader = False
        self._writer = False
        # plaintext pieces whose records the socket could not take yet (the first perhaps in part:
        # OpenSSL goes on with that same piece)
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_size = 0
        self._high = HIGH_WATER
        self._low = HIGH_WATER // 4
        self._writing_paused = False
        self._early_writes: list[bytes] = []
        self.handshake: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = loop.call_later(handshake_timeout, self._handshake_timeout)
        self._handshake_step()

    # -- the loop's callbacks --------------------------------------------------------------

    def _want_read(self, on: bool) -> None:
        if on != self._reader:
            self._reader = on
            if on:
                self._loop.add_reader(self._fd, self._readable)
            else:
                self._loop.remove_reader(self._fd)

    def _want_write(self, on: bool) -> None:
        if on != self._writer:
            self._writer = on
            if on:
                self._loop.add_writer(self._fd, self._writable)
            else:
                self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        if self._established:
            self._read()
            if self._pending and not self._lost:
                self._flush_pending()  # a write waiting on a read (OpenSSL's WANT_READ)
        else:
            self._handshake_step()

    def _writable(self) -> None:
        if self._established:
            self._flush_pending()
        else:
            self._handshake_step()

    # -- handshake --------------------------------------------------------------------------

    def _handshake_timeout(self) -> None:
        self._timer = None
        if not self._established:
            self._connection_lost(TimeoutError("TLS handshake timeout"))

    def _handshake_step(self) -> None:
        if self._lost:
            return
        try:
            self._sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want_write(False)
            self._want_read(True)
            return
        except ssl.SSLWantWriteError:
            self._want_read(False)
            self._want_write(True)
            return
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            self._connection_lost(ConnectionResetError("connection closed during TLS handshake"))
            return
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._connection_lost(exc)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._want_write(False)
        self._connected()
        if self._closing or self._lost:
            return
        if not self._reading_paused:
            self._want_read(True)
            self._read()  # records that came with the handshake's last flight

    # -- incoming -------------------------------------------------------------------------

    def _read(self) -> None:
        """Decrypt what the socket has and hand it up in as few calls as possible: records are
        gathered into one fresh buffer per batch (shrunk in place to what it holds, never reused)."""
        recv_into = self._sock.recv_into
        while not self._reading_paused and not self._closing:
            # not zeroed first: only the part OpenSSL writes is handed on
            buf = new_bytearray(None, READ_SIZE)
            view = memoryview(buf)
            n = 0
            eof = False
            exc: Exception | None = None
            while n < READ_SIZE:
                try:
                    k = recv_into(view[n:], READ_SIZE - n)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                except (ssl.SSLError, OSError) as e:
                    exc = e
                    break
                if not k:  # close_notify, or the TCP connection ended
                    eof = True
                    break
                n += k
            view.release()
            if n:
                del buf[n:]  # a big shrink is an in-place realloc: the tail goes back to malloc
                self._app.data_received(memoryview(buf))  # type: ignore[attr-defined]
            if exc is not None:
                log.debug("TLS read error: %s", exc)
                self._connection_lost(exc)
                return
            if eof:
                self._eof()
                return
            if n < READ_SIZE:
                return

    def _eof(self) -> None:
        self._want_read(False)
        super()._eof()

    # -- outgoing -------------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._closing or self._lost

    def _encrypt(self, data: Any) -> bool:
        """Encrypt and send one piece (OpenSSL writes each record with its own ``send``); what the
        socket cannot take now waits, and the protocol is paused above the high-water mark."""
        if self._lost:
            return False
        if not self._pending:
            try:
                self._sock.send(data)  # all of it, or an exception (no partial writes in ssl)
                return True
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                # some records may be out already; OpenSSL continues with this same piece
                pass
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS write error: %s", exc)
                self._connection_lost(exc)
                return False
        piece = data if type(data) is bytes else bytes(data)  # the caller may reuse its buffer
        self._pending.append(piece)
        self._pending_size += len(piece)
        self._want_write(True)
        if not self._writing_paused and self._pending_size > self._high:
            self._writing_paused = True
            self._app.pause_writing()
        return True

    def _flush_pending(self) -> None:
        self._flush_pieces()
        if self._lost:
            return
        if self._writing_paused and self._pending_size <= self._low:
            self._writing_paused = False
            self._app.resume_writing()
        if self._pending or self._lost:
            return
        self._want_write(False)
        if self._closing:
            self._shutdown()

    def _flush_pieces(self) -> None:
        pending = self._pending
        send = self._sock.send
        while pending:
            piece = pending[0]
            try:
                send(piece)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS write error: %s", exc)
                self._connection_lost(exc)
                return
            pending.popleft()
            self._pending_size -= len(piece)
            if len(pending) > 2:  # the rest as one piece: fewer sends, fuller records
                rest = b"".join(pending)
                pending.clear()
                pending.append(rest)

    def can_write_eof(self) -> bool:
        return False  # see the module's docstring

    def write_eof(self) -> None:
        raise NotImplementedError("TLS on the socket has no half-close")

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._want_read(False)
        if not self._pending:
            self._shutdown()

    def _shutdown(self) -> None:
        """close_notify, then the socket; the protocol's ``connection_lost(None)`` soon after."""
        if self._established and not self._lost:
            try:
                self._sock.unwrap()  # sends close_notify (what it then reads does not matter)
            except (ssl.SSLError, OSError, ValueError):
                pass
        self._connection_lost(None)

    def abort(self) -> None:
        self._closing = True
        self._connection_lost(None)

    def _close_socket(self) -> None:
        if self._lost:
            return
        self._lost = True
        self._want_read(False)
        self._want_write(False)
        self._pending.clear()
        self._pending_size = 0
        self._sock.close()

    def _connection_lost(self, exc: Exception | None) -> None:
        """The socket closes. Established: the protocol's ``connection_lost(exc)`` soon after;
        during the handshake: the ``handshake`` future fails with ``exc`` (a reset without one)
        and the protocol never hears of the connection."""
        if self._lost:
            return
        self._closing = True
        self._close_socket()
        if self._established:
            self._loop.call_soon(self._app.connection_lost, exc)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.handshake.done():  # aborted during the handshake
            self.handshake.set_exception(exc or ConnectionResetError("connection closed during TLS handshake"))
            self.handshake.exception()  # mark retrieved; the owner decides whether to log

    # -- flow control ---------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            if self._established:
                self._want_read(False)

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self._established and not self._closing:
                self._want_read(True)
                # OpenSSL may hold the rest of a record the last batch had no room for: no
                # readiness event would come for it
                self._loop.call_soon(self._read_if_reading)

    def _read_if_reading(self) -> None:
        if not self._reading_paused and not self._closing:
            self._read()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return self._pending_size

    def _tls(self) -> ssl.SSLSocket:
        return self._sock

    def _extra_info(self, name: str, default: Any) -> Any:
        if name == "socket":
            return self._sock
        return self._extra.get(name, default)
