"""The work connection as a plaintext byte stream, for plugins that speak a protocol on it.

A plugin that only forwards (``unix_domain_socket``) calls :meth:`WorkConn.relay` with the
transport it opened. A plugin that first talks to the user (``http_proxy``, ``socks5``) or
terminates TLS (``tls2raw``) needs the user's bytes as they were sent, after the proxy's
``useEncryption``/``useCompression`` codecs: :func:`open_plain` gives that transport
(:class:`CodecTransport` when codecs are on, the work connection itself otherwise), and
:class:`PluginStream` reads it with bounded, awaitable reads until the plugin joins it to the
upstream with the callback relay (``net/relay.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...net.relay import Codec, Relay
from ...proto.http import find_head_end
from .base import WorkConn

log = logging.getLogger("aiofrp.client.plugin")

__all__ = ["CodecTransport", "HeadTooLarge", "PluginStream", "open_plain"]


class CodecTransport(asyncio.Transport):
    """``raw`` with the proxy's codecs: the protocol above sees and writes plaintext.

    ``decode`` runs on every chunk from ``raw``, ``encode`` on every write; flow control, EOF and
    close go straight to ``raw``. Undecodable data (a wrong key, corrupt snappy) aborts ``raw``.
    """

    def __init__(self, raw: asyncio.Transport, encode: Codec | None, decode: Codec | None, name: str = "") -> None:
        super().__init__()
        self._raw = raw
        self._encode = encode
        self._decode = decode
        self._name = name
        self._app: asyncio.BaseProtocol | None = None
        raw.set_protocol(_CodecSide(self))

    def decode(self, data: bytes) -> bytes:
        """Plaintext of ``data`` from the wire (b"" when the codec needs more)."""
        if self._decode is None or not data:
            return data
        try:
            return self._decode(data)
        except Exception as exc:  # noqa: BLE001 - corrupt peer data closes this connection only
            log.warning("[%s] bad data on the work connection: %s", self._name, exc)
            self._raw.abort()
            return b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._encode is not None:
            data = self._encode(data)
            if not data:
                return
        self._raw.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return self._raw.can_write_eof()

    def write_eof(self) -> None:
        self._raw.write_eof()

    def close(self) -> None:
        self._raw.close()

    def abort(self) -> None:
        self._raw.abort()

    def is_closing(self) -> bool:
        return self._raw.is_closing()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._app is not None
        return self._app

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._raw.get_extra_info(name, default)


class _CodecSide(asyncio.Protocol):
    """Installed on the raw work connection: decodes and hands up."""

    __slots__ = ("_ct",)

    def __init__(self, ct: CodecTransport) -> None:
        self._ct = ct

    def data_received(self, data: bytes) -> None:
        plain = self._ct.decode(data)
        app = self._ct._app
        if plain and app is not None:
            app.data_received(plain)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        app = self._ct._app
        return app.eof_received() if app is not None else False  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        app = self._ct._app
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._ct._app is not None:
            self._ct._app.pause_writing()

    def resume_writing(self) -> None:
        if self._ct._app is not None:
            self._ct._app.resume_writing()


def open_plain(wc: WorkConn) -> tuple[asyncio.Transport, bytes, bool]:
    """Take the work connection over: (plaintext transport, plaintext already read, EOF seen).

    The transport's reading is paused and it has no protocol yet: the caller sets one."""
    transport, data, eof = wc.conn.detach()
    if wc.encode is None and wc.decode is None:
        return transport, data, eof
    ct = CodecTransport(transport, wc.encode, wc.decode, wc.proxy_name)
    return ct, ct.decode(data), eof


class HeadTooLarge(Exception):
    """The peer's message head is larger than the plugin allows."""


class PluginStream(asyncio.Protocol):
    """Awaitable, bounded reads on the plaintext work connection (one coroutine per message,
    never per chunk); then :meth:`join` relays it to an upstream, or :meth:`hand_to` gives it
    to another protocol (an HTTP server). ``limit`` bounds what is buffered: reading pauses
    beyond it."""

    def __init__(self, wc: WorkConn, limit: int = 64 * 1024) -> None:
        self.wc = wc
        self.limit = limit
        self.buf = bytearray()
        self.eof = False
        self.lost = False
        self._waiter: asyncio.Future[None] | None = None
        self.transport, data, self.eof = open_plain(wc)
        self.transport.set_protocol(self)
        if data:
            self.buf += data
        if not self.eof:
            self.transport.resume_reading()

    # -- protocol callbacks ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > self.limit:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True  # the plugin decides when to close

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- reads -----------------------------------------------------------------------------------

    async def more(self) -> None:
        """Wait for more bytes; EOFError when none will come."""
        if self.eof:
            raise EOFError("connection closed by peer")
        if not self.transport.is_closing():
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self.more()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def fill(self, n: int) -> None:
        """Until at least ``n`` bytes are buffered (EOFError if the peer ends first)."""
        while len(self.buf) < n:
            await self.more()

    async def read_head(self, max_size: int) -> bytes:
        """An HTTP/1.x message head (through its blank line); :class:`HeadTooLarge` past
        ``max_size`` bytes. The head stays in :attr:`buf` (consume it with :meth:`consume`)."""
        start = 0
        while True:
            end = find_head_end(self.buf, max(0, start - 3))
            if end >= 0:
                if end > max_size:
                    raise HeadTooLarge(f"request header larger than {max_size} bytes")
                return bytes(self.buf[:end])
            if len(self.buf) > max_size:
                raise HeadTooLarge(f"request header larger than {max_size} bytes")
            start = len(self.buf)
            await self.more()

    def consume(self, n: int) -> None:
        del self.buf[:n]

    # -- writes and the end ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()

    def join(self, local: asyncio.Transport, local_data: bytes = b"", local_eof: bool = False) -> Relay:
        """Relay ``local`` and the work connection from now on (what is still buffered here goes
        to ``local`` first), with the proxy's bandwidth limit."""
        data = bytes(self.buf)
        self.buf.clear()
        return Relay(local, self.transport, a_data=local_data, a_eof=local_eof, b_data=data, b_eof=self.eof,
                     name=self.wc.proxy_name, limiter=self.wc.limiter)

    def hand_to(self, protocol: asyncio.Protocol) -> None:
        """Give the connection to ``protocol``: ``connection_made``, then what is buffered here."""
        data = bytes(self.buf)
        self.buf.clear()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if data:
            protocol.data_received(data)
        if self.lost:
            protocol.connection_lost(None)
        elif self.eof and not protocol.eof_received():
            self.transport.close()
        else:
            self.transport.resume_reading()
