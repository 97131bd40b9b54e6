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
from ..proto import wire
from ..proto.crypto import CFBDecryptor, CFBEncryptor
from ..proto.errors import ProtocolError

MAX_BUFFER = 1024 * 1024  # pause reading when this much is buffered and unread


class MsgConn(asyncio.Protocol):
    """``wire``: the framing, ``"v1"`` (frp's classic frames) or ``"v2"`` (§2.4; the 7-byte magic is
    written by whoever opens the connection, and read by :meth:`detect_wire` on frps)."""

    def __init__(self, wire_protocol: str = "v1") -> None:
        self.transport: asyncio.Transport | None = None
        self.wire_protocol = wire_protocol
        self._decoder: m.MsgDecoder | wire.V2Decoder = m.MsgDecoder() if wire_protocol == "v1" else wire.V2Decoder()
        self._encode: Callable[[m.Message], bytes] = m.encode if wire_protocol == "v1" else wire.encode_message
        self.v2_crypto: tuple[str, bytes] | None = None
        """v2 control connection: (AEAD algorithm, transcript hash) from the hellos (§2.4)."""
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._exc: BaseException | None = None
        self._paused = False
        self._enc: CFBEncryptor | wire.AEADWriter | None = None
        self._dec: CFBDecryptor | wire.AEADReader | None = None
        self.closed: asyncio.Future[None] | None = None

    # -- protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses of it
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self._dec is not None:
            try:
                data = self._dec.decrypt(data)
            except ProtocolError as exc:  # a forged or broken v2 AEAD record: this connection ends
                self._exc = exc
                self._eof = True
                self._wake()
                if self.transport is not None:
                    self.transport.abort()
                return
        decoder = self._decoder
        decoder.feed(data)
        self._wake()
        if decoder.buffered > MAX_BUFFER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # Unread bytes behind the EOF (a user's short request and its half-close, which reach a
        # work connection together with StartWorkConn): keep the transport open for writing, so
        # the relay that takes them over can still send the answer back; whoever reads closes it.
        return bool(self._decoder.buffered)

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if self._exc is None:
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

    async def detect_wire(self, timeout: float | None = None) -> str:
        """frps (§1.8): ``"v2"`` when the connection starts with the v2 magic (consumed, and the
        framing switches to v2), else ``"v1"`` with every byte left in place."""
        if timeout is not None:
            async with asyncio.timeout(timeout):
                return await self._detect_wire()
        return await self._detect_wire()  # no timeout context (asyncio.timeout(None) still costs)

    async def _detect_wire(self) -> str:
        while True:
            head = self._decoder.take_remaining()
            state = wire.magic_state(head)
            if state is None:
                self._decoder.feed(head)
                await self._wait()
                continue
            if state:
                self.wire_protocol = "v2"
                self._decoder = wire.V2Decoder()
                self._encode = wire.encode_message
                head = head[len(wire.MAGIC):]
            self._decoder.feed(head)
            return self.wire_protocol

    async def read_frame(self, timeout: float | None = None) -> wire.Frame:
        """The next v2 frame of any type (the hellos of a v2 control connection)."""
        decoder = self._decoder
        if not isinstance(decoder, wire.V2Decoder):
            raise ProtocolError("not a wire v2 connection")
        async with asyncio.timeout(timeout):
            while (frame := decoder.next_frame()) is None:
                await self._wait()
        return frame

    def write_raw(self, data: bytes) -> None:
        """Bytes as they are (the v2 magic and hello frames), through the encryption if it is on."""
        if self._enc is not None:
            data = self._enc.encrypt(data)
        if self.transport is not None:
            self.transport.write(data)

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
        data = self._encode(message)
        if self._enc is not None:
            data = self._enc.encrypt(data)
        if self.transport is not None:
            self.transport.write(data)

    def enable_encryption(self, key: bytes) -> None:
        """Switch both directions to AES-128-CFB (control channel after LoginResp, wire v1)."""
        self._start_crypto(CFBEncryptor(key), CFBDecryptor(key))

    def enable_control_crypto(self, token: str, key: bytes, *, client: bool) -> None:
        """The control connection's encryption after LoginResp: AES-128-CFB with ``key`` (v1, §4.1),
        or the AEAD streams keyed from ``token`` and the hellos' transcript (v2, §2.4)."""
        if self.wire_protocol == "v1":
            self.enable_encryption(key)
            return
        if self.v2_crypto is None:
            raise ProtocolError("missing v2 crypto negotiation")
        algorithm, transcript = self.v2_crypto
        c2s, s2c = wire.derive_keys(token.encode(), algorithm, transcript)
        mine, theirs = (c2s, s2c) if client else (s2c, c2s)
        self._start_crypto(wire.AEADWriter(algorithm, mine), wire.AEADReader(algorithm, theirs))

    def _start_crypto(self, enc: CFBEncryptor | wire.AEADWriter, dec: CFBDecryptor | wire.AEADReader) -> None:
        self._enc = enc
        self._dec = dec
        raw = self._decoder.take_remaining()
        if raw:
            self._decoder.feed(dec.decrypt(raw))

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

    def peername(self) -> object:
        """The peer's socket address (of the connection under a yamux stream), None if unknown."""
        return self.transport.get_extra_info("peername") if self.transport is not None else None

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
