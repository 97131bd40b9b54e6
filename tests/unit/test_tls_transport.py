"""TLSTransport over an in-memory pair of raw transports: what reaches the socket, and how often."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiofrp.net.tls import TLSTransport, client_context, server_context


class _Raw(asyncio.Transport):
    """A raw transport that records each write and hands the bytes to the peer's protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.peer: _Raw | None = None
        self._protocol: Any = None
        self.closed = False

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol

    def write(self, data: Any) -> None:
        data = bytes(data)
        self.writes.append(data)
        peer = self.peer
        assert peer is not None
        asyncio.get_running_loop().call_soon(lambda: peer._protocol.data_received(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _App(asyncio.Protocol):
    def __init__(self) -> None:
        self.got = bytearray()

    def data_received(self, data: Any) -> None:
        self.got += data


async def _pair() -> tuple[TLSTransport, _Raw, _App]:
    sctx = server_context()
    a, b = _Raw(), _Raw()
    a.peer, b.peer = b, a
    server_app, client_app = _App(), _App()
    server = TLSTransport(a, sctx, server_app, server_side=True)
    client = TLSTransport(b, client_context(), client_app, server_side=False)
    await asyncio.wait_for(asyncio.gather(server.handshake, client.handshake), 10)
    return client, b, server_app


def test_writelines_encrypts_every_piece_and_writes_the_socket_once() -> None:
    async def main() -> None:
        client, raw, server_app = await _pair()
        # a yamux flush of several streams: 12-byte headers between big payloads
        pieces: list[Any] = []
        for i in range(8):
            pieces.append(bytes([i]) * 12)
            pieces.append(memoryview(os.urandom(64 * 1024))[: 64 * 1024 - i])
        pieces.append(b"tail")
        expected = b"".join(bytes(p) for p in pieces)
        before = len(raw.writes)
        client.writelines(pieces)
        assert len(raw.writes) == before + 1
        deadline = asyncio.get_running_loop().time() + 10
        while len(server_app.got) < len(expected):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0)
        assert bytes(server_app.got) == expected

    asyncio.run(main())


def test_writelines_before_the_handshake_is_sent_after_it_in_order() -> None:
    async def main() -> None:
        sctx = server_context()
        a, b = _Raw(), _Raw()
        a.peer, b.peer = b, a
        server_app, client_app = _App(), _App()
        server = TLSTransport(a, sctx, server_app, server_side=True)
        client = TLSTransport(b, client_context(), client_app, server_side=False)
        client.writelines([b"one ", memoryview(b"two "), bytearray(b"three")])
        await asyncio.wait_for(asyncio.gather(server.handshake, client.handshake), 10)
        deadline = asyncio.get_running_loop().time() + 10
        while len(server_app.got) < 13:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0)
        assert bytes(server_app.got) == b"one two three"

    asyncio.run(main())
