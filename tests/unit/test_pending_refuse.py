"""net/relay.py PendingConn.refuse: a refused user connection that sent bytes nobody read is reset
(RST, as Go's visitor closing the socket with them unread), one that sent nothing gets FIN."""

from __future__ import annotations

import asyncio
import socket

import pytest

from aiofrp.net.relay import PendingConn


async def _refused(send: bytes) -> bytes | type[BaseException]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[PendingConn] = loop.create_future()

    def factory() -> PendingConn:
        conn = PendingConn()
        if not accepted.done():
            accepted.set_result(conn)
        return conn

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if send:
            client.sendall(send)
        user = await asyncio.wait_for(accepted, 5)
        if send:  # the bytes reached the pending connection's buffer
            deadline = loop.time() + 5
            while not user.buffered and loop.time() < deadline:
                await asyncio.sleep(0.01)
            assert user.buffered
        user.refuse()
        try:
            return await loop.run_in_executor(None, client.recv, 100)
        except ConnectionResetError as exc:
            return type(exc)
    finally:
        client.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("send", "seen"), [(b"hello", ConnectionResetError), (b"", b"")])
def test_refuse(send: bytes, seen: object) -> None:
    assert asyncio.run(_refused(send)) == seen
