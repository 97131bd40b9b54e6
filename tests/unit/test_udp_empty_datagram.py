"""Zero-length datagrams (net/udp.py): asyncio's and uvloop's ``DatagramTransport.sendto`` skip
them, Go's udp/sudp forward them like any other datagram; the local sockets of frpc and the
user-facing sockets of frps and the sudp visitor send them themselves. Real loopback sockets,
on both event loops."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from aiofrp.net.udp import LocalForwarder, UserSocket

pytestmark = pytest.mark.timeout(20)


def loops() -> list[Any]:
    out: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return out
    return [*out, pytest.param(uvloop.new_event_loop, id="uvloop")]


def run(factory: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, None]) -> None:
    loop = factory()
    try:
        loop.run_until_complete(asyncio.wait_for(coro, 10))
    finally:
        loop.close()


async def recv(sock: socket.socket, timeout: float = 2.0) -> tuple[bytes, Any]:
    """The next datagram on non-blocking ``sock`` (uvloop has no ``sock_recvfrom``: poll)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return sock.recvfrom(2048)
        except BlockingIOError:
            if loop.time() > deadline:
                raise TimeoutError("no datagram") from None
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("factory", loops())
def test_local_forwarder_sends_and_returns_empty_datagrams(factory: Any) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as svc:
            svc.bind(("127.0.0.1", 0))
            svc.setblocking(False)
            replies: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
            fwd = LocalForwarder("t", svc.getsockname(), 1500, lambda d, a: replies.put_nowait((d, a)))
            user = ("192.0.2.7", 4242)
            fwd.deliver(b"", user)
            data, src = await recv(svc)
            assert data == b""
            fwd.deliver(b"x", user)  # the same local socket carries the next one
            assert await recv(svc) == (b"x", src)
            svc.sendto(b"", src)  # an empty answer comes back as an empty datagram
            assert await asyncio.wait_for(replies.get(), 2) == (b"", user)
            fwd.close()

    run(factory, main())


@pytest.mark.parametrize("factory", loops())
def test_user_socket_sends_empty_datagrams(factory: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[bytes, Any]] = []
        us = UserSocket(lambda d, a: got.append((d, a)), 1500)
        t, _ = await loop.create_datagram_endpoint(lambda: us, local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as user:
            user.bind(("127.0.0.1", 0))
            user.setblocking(False)
            user.sendto(b"", t.get_extra_info("sockname"))
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.01)
            assert got == [(b"", user.getsockname())]
            us.sendto(b"", user.getsockname())
            us.sendto(b"y", user.getsockname())
            assert await recv(user) == (b"", t.get_extra_info("sockname"))
            assert await recv(user) == (b"y", t.get_extra_info("sockname"))
        us.close()

    run(factory, main())
