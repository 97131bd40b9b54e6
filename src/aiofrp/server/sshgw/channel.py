"""An SSH ``forwarded-tcpip`` channel as an ``asyncio.Transport``, so net/relay.py pipes it.

asyncssh hands a channel's events to an ``SSHTCPSession`` (data, EOF, close, write flow control)
and takes writes, half-close and read pausing on the ``SSHTCPChannel``: the same verbs as a
transport and its protocol. :class:`ChannelSession` forwards the events to whatever protocol the
:class:`ChannelTransport` currently has; until the relay takes over, that is a
``PendingConn``, which keeps what the ssh client sent early and pauses reading.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from ...net.relay import PendingConn


class ChannelTransport(asyncio.Transport):
    def __init__(self, chan: asyncssh.SSHTCPChannel[bytes], protocol: asyncio.BaseProtocol) -> None:
        super().__init__()
        self._chan = chan
        self._protocol = protocol
        self._closing = False

    # -- asyncio.Transport ------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._chan.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._chan.close()

    def abort(self) -> None:
        self.close()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            self._chan.write(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if not self._closing:
            self._chan.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self._chan.pause_reading()

    def resume_reading(self) -> None:
        self._chan.resume_reading()

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._chan.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._chan.set_write_buffer_limits(high, low)


class ChannelSession(asyncssh.SSHTCPSession[bytes]):
    """asyncssh's side of one channel: events go to the transport's current protocol."""

    def __init__(self) -> None:
        self.pending = PendingConn()
        self.transport: ChannelTransport | None = None

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self.transport = ChannelTransport(chan, self.pending)
        self.pending.connection_made(self.transport)

    def _protocol(self) -> asyncio.Protocol:
        assert self.transport is not None
        return self.transport.get_protocol()  # type: ignore[return-value]

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._protocol().data_received(data)

    def eof_received(self) -> bool:
        return bool(self._protocol().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transport._closing = True
            self._protocol().connection_lost(exc)

    def pause_writing(self) -> None:
        self._protocol().pause_writing()

    def resume_writing(self) -> None:
        self._protocol().resume_writing()
