"""An frp logical connection in its message phase: await framed messages, write messages.

The framing is :class:`aiofrp.proto.msg.MsgDecoder` (and :func:`aiofrp.proto.msg.encode`); this
module only feeds it from ``data_received`` and wakes the reader. Control connections stay in
this phase (with AES-CFB switched on after login); work and visitor connections leave it after
their handshake message: :meth:`MsgConn.detach` hands the transport and any bytes already read
behind the last message to the next layer (the relay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from ..proto import msg as m
from ..proto.crypto import CFBDecryptor, CFBEncryptor
from ..proto.errors import ProtocolError

MAX_BUFFER = 1024 * 1024  # pause reading when this much is buffered and unread


class MsgConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._decoder = m.MsgDecoder()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._exc: BaseException | None = None
        self._paused = False
        self._enc: CFBEncryptor | None = None
        self._dec: CFBDecryptor | None = None
        self.closed: asyncio.Future[None] | None = None

    # -- protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses of it
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self._dec is not None:
            data = self._dec.decrypt(data)
        decoder = self._decoder
        decoder.feed(data)
        self._wake()
        if decoder.buffered > MAX_BUFFER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._exc = exc or ConnectionResetError("connection closed")
        self._wake()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- reading --------------------------------------------------------------------------

    async def _wait(self) -> None:
        if self._eof:
            raise self._exc if isinstance(self._exc, Exception) else EOFError("connection closed by peer")
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_msg(self, timeout: float | None = None) -> m.Message:
        """Read one message; raise ProtocolError on a malformed frame, EOFError/OSError on close."""
        if timeout is not None:
            async with asyncio.timeout(timeout):
                return await self._read_msg()
        return await self._read_msg()

    async def _read_msg(self) -> m.Message:
        decoder = self._decoder
        while (msg := decoder.next()) is None:
            await self._wait()
        return msg

    async def read_exactly(self, n: int) -> bytes:
        """The next ``n`` raw bytes behind the last message (a peer that switched to raw bytes)."""
        decoder = self._decoder
        while decoder.buffered < n:
            await self._wait()
        data = decoder.take_remaining()
        if len(data) > n:
            decoder.feed(memoryview(data)[n:])
        return data[:n]

    @property
    def buffered(self) -> int:
        """Bytes received and not consumed yet (part of a message, or bytes behind the last one)."""
        return self._decoder.buffered

    # -- writing --------------------------------------------------------------------------

    def write_msg(self, message: m.Message) -> None:
        data = m.encode(message)
        if self._enc is not None:
            data = self._enc.encrypt(data)
        if self.transport is not None:
            self.transport.write(data)

    def enable_encryption(self, key: bytes) -> None:
        """Switch both directions to AES-128-CFB (control channel after LoginResp)."""
        self._enc = CFBEncryptor(key)
        self._dec = CFBDecryptor(key)
        raw = self._decoder.take_remaining()
        if raw:
            self._decoder.feed(self._dec.decrypt(raw))

    # -- hand-off -------------------------------------------------------------------------

    def detach(self) -> tuple[asyncio.Transport, bytes, bool]:
        """Stop being the transport's protocol; return (transport, unread bytes, eof seen)."""
        if self._dec is not None:
            raise ProtocolError("cannot detach an encrypted control connection")
        assert self.transport is not None
        data = self._decoder.take_remaining()
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        return self.transport, data, self._eof

    @property
    def alive(self) -> bool:
        """Connected, not closing, and no EOF from the peer yet (e.g. a pooled work connection)."""
        return self.transport is not None and not self.transport.is_closing() and not self._eof

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


M = TypeVar("M", bound=m.Message)
R = TypeVar("R")


class Dispatcher(Generic[R]):
    """A table from message class to handler, as Go frp's ``msg.Dispatcher``
    (``pkg/msg/handler.go``): :meth:`register` one handler per message type, :meth:`dispatch`
    calls the handler of a message's exact class, or ``default`` (if given) for any other."""

    __slots__ = ("_default", "_handlers")

    def __init__(self, default: Callable[[m.Message], R] | None = None) -> None:
        self._handlers: dict[type, Callable[[Any], R]] = {}
        self._default = default

    def register(self, cls: type[M], handler: Callable[[M], R]) -> Dispatcher[R]:
        """Handle messages of class ``cls`` with ``handler`` (replacing an earlier one)."""
        self._handlers[cls] = handler
        return self

    def handler(self, cls: type) -> Callable[[Any], R] | None:
        """The handler for messages of class ``cls`` (``default`` if none is registered)."""
        return self._handlers.get(cls, self._default)

    def dispatch(self, message: m.Message) -> R | None:
        """Call the message's handler; None when there is none."""
        handler = self._handlers.get(type(message), self._default)
        return handler(message) if handler is not None else None
