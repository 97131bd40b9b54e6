"""TLSTransport over an in-memory pipe (net/pipe.py): what reaches the socket, and how often."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiofrp.net.pipe import pipe
from aiofrp.net.tls import TLSTransport, client_context, server_context


class _App(asyncio.Protocol):
    def __init__(self) -> None:
        self.got = bytearray()

    def data_received(self, data: Any) -> None:
        self.got += data


def _start_pair() -> tuple[TLSTransport, TLSTransport, list[bytes], _App]:
    """A TLS server and client joined by a pipe, handshakes under way: (server, client, what the
    client wrote to its raw end, the server's application)."""
    raw_s, raw_c = pipe(asyncio.get_running_loop())
    writes: list[bytes] = []
    write = raw_c.write

    def counting_write(data: Any) -> None:
        writes.append(bytes(data))
        write(data)

    setattr(raw_c, "write", counting_write)  # noqa: B010  (an instance attribute over the method)
    server_app = _App()
    server = TLSTransport(raw_s, server_context(), server_app, server_side=True)
    client = TLSTransport(raw_c, client_context(), _App(), server_side=False)
    return server, client, writes, server_app


async def _handshakes(server: TLSTransport, client: TLSTransport) -> None:
    await asyncio.wait_for(asyncio.gather(server.handshake, client.handshake), 10)


async def _until_received(app: _App, n: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while len(app.got) < n:
        assert asyncio.get_running_loop().time() < deadline, f"{len(app.got)} of {n} bytes arrived"
        await asyncio.sleep(0)


def test_writelines_encrypts_every_piece_and_writes_the_socket_once() -> None:
    async def main() -> None:
        server, client, writes, server_app = _start_pair()
        await _handshakes(server, client)
        # a yamux flush of several streams: 12-byte headers between big payloads
        pieces: list[Any] = []
        for i in range(8):
            pieces.append(bytes([i]) * 12)
            pieces.append(memoryview(os.urandom(64 * 1024))[: 64 * 1024 - i])
        pieces.append(b"tail")
        expected = b"".join(bytes(p) for p in pieces)
        before = len(writes)
        client.writelines(pieces)
        assert len(writes) == before + 1
        await _until_received(server_app, len(expected))
        assert bytes(server_app.got) == expected

    asyncio.run(main())


def test_writelines_before_the_handshake_is_sent_after_it_in_order() -> None:
    async def main() -> None:
        server, client, _, server_app = _start_pair()
        client.writelines([b"one ", memoryview(b"two "), bytearray(b"three")])
        await _handshakes(server, client)
        await _until_received(server_app, 13)
        assert bytes(server_app.got) == b"one two three"

    asyncio.run(main())
