"""An frp logical connection in its message phase: await framed messages, write messages.

Control connections stay in this phase (with AES-CFB switched on after login); work and
visitor connections leave it after their handshake message: :meth:`MsgConn.detach` hands the
transport and any bytes already read behind the last message to the next layer (the relay).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..proto import msg as m
from ..proto.crypto import CFBDecryptor, CFBEncryptor
from ..proto.errors import ProtocolError

HEADER_SIZE = 9
MAX_BUFFER = 1024 * 1024  # pause reading when this much is buffered and unread


class MsgConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._exc: BaseException | None = None
        self._paused = False
        self._enc: CFBEncryptor | None = None
        self._dec: CFBDecryptor | None = None
        self.closed: asyncio.Future[None] | None = None

    # -- protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self._dec is not None:
            data = self._dec.decrypt(data)
        self._buf += data
        self._wake()
        if len(self._buf) > MAX_BUFFER and not self._paused and self.transport is not None:
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

    async def read_msg(self, timeout: float | None = None) -> Any:
        """Read one message; raise ProtocolError on a malformed frame, EOFError/OSError on close."""
        if timeout is not None:
            async with asyncio.timeout(timeout):
                return await self._read_msg()
        return await self._read_msg()

    async def _read_msg(self) -> Any:
        buf = self._buf
        while len(buf) < HEADER_SIZE:
            await self._wait()
        cls, length = m.decode_header(bytes(buf[:HEADER_SIZE]))
        while len(buf) < HEADER_SIZE + length:
            await self._wait()
        payload = bytes(buf[HEADER_SIZE : HEADER_SIZE + length])
        del buf[: HEADER_SIZE + length]
        return m.decode_body(cls, payload)

    async def read_exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._wait()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    # -- writing --------------------------------------------------------------------------

    def write_msg(self, message: Any) -> None:
        data = m.encode(message)
        if self._enc is not None:
            data = self._enc.encrypt(data)
        if self.transport is not None:
            self.transport.write(data)

    def enable_encryption(self, key: bytes) -> None:
        """Switch both directions to AES-128-CFB (control channel after LoginResp)."""
        self._enc = CFBEncryptor(key)
        self._dec = CFBDecryptor(key)
        if self._buf:
            raw = bytes(self._buf)
            self._buf.clear()
            self._buf += self._dec.decrypt(raw)

    # -- hand-off -------------------------------------------------------------------------

    def detach(self) -> tuple[asyncio.Transport, bytes, bool]:
        """Stop being the transport's protocol; return (transport, unread bytes, eof seen)."""
        if self._dec is not None:
            raise ProtocolError("cannot detach an encrypted control connection")
        assert self.transport is not None
        data = bytes(self._buf)
        self._buf.clear()
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

    def peername(self) -> Any:
        return self.transport.get_extra_info("peername") if self.transport is not None else None
