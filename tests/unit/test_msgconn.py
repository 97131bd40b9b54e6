"""net/msgconn.py: MsgConn over a real loopback connection, framed by proto.msg.MsgDecoder."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.net import msgconn
from aiofrp.net.msgconn import Dispatcher, MsgConn
from aiofrp.proto import msg as m
from aiofrp.proto.crypto import CFBDecryptor, CFBEncryptor, derive_key
from aiofrp.proto.errors import ProtocolError

MESSAGES: list[m.Message] = [
    m.Login(version="0.65.0", user="u", pool_count=2, metas={"a": "b"}),
    m.NewProxy(proxy_name="web", proxy_type="http", custom_domains=["a.example.com"]),
    m.Ping(privilege_key="k", timestamp=1),
    m.StartWorkConn(proxy_name="p", src_addr="127.0.0.1", src_port=5000),
    m.ReqWorkConn(),
]


async def _pair() -> tuple[MsgConn, socket.socket]:
    """A MsgConn on one end of a connected socket pair; the raw socket is the peer."""
    a, b = socket.socketpair()
    b.setblocking(False)
    _, conn = await asyncio.get_running_loop().connect_accepted_socket(MsgConn, a)
    return conn, b


async def _send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


def _run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(10):
            await main()

    asyncio.run(bounded())


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_messages_cut_anywhere_arrive_whole_and_in_order(cuts: list[int]) -> None:
    wire = b"".join(m.encode(x) for x in MESSAGES)

    async def main() -> None:
        conn, peer = await _pair()
        got: list[m.Message] = []

        async def read_all() -> None:
            for _ in MESSAGES:
                got.append(await conn.read_msg())

        task = asyncio.ensure_future(read_all())
        pos = 0
        for n in cuts:
            await _send(peer, wire[pos : pos + n])
            pos += n
            await asyncio.sleep(0)
        await _send(peer, wire[pos:])
        await task
        assert got == MESSAGES
        assert conn.buffered == 0
        conn.close()
        peer.close()

    _run(main)


def test_bad_header_fails_at_once_without_waiting_for_the_body() -> None:
    async def main() -> None:
        conn, peer = await _pair()
        await _send(peer, b"Z" + (5).to_bytes(8, "big"))  # unknown type byte; no body follows
        with pytest.raises(ProtocolError, match="unknown message type 0x5a"):
            await conn.read_msg(timeout=5)
        conn2, peer2 = await _pair()
        await _send(peer2, b"o" + (m.MAX_MSG_LENGTH + 1).to_bytes(8, "big"))
        with pytest.raises(ProtocolError, match="exceeds the limit"):
            await conn2.read_msg(timeout=5)
        for c, p in ((conn, peer), (conn2, peer2)):
            c.close()
            p.close()

    _run(main)


def test_eof_mid_message_is_eof_error_and_counts_the_partial_bytes() -> None:
    async def main() -> None:
        conn, peer = await _pair()
        frame = m.encode(MESSAGES[0])
        await _send(peer, frame[:12])
        peer.shutdown(socket.SHUT_WR)
        with pytest.raises(EOFError):
            await conn.read_msg(timeout=5)
        assert conn.buffered == 12
        assert not conn.alive
        conn.close()
        peer.close()

    _run(main)


def test_connection_lost_wakes_the_reader_with_the_error() -> None:
    async def main() -> None:
        conn, peer = await _pair()
        reader = asyncio.ensure_future(conn.read_msg())
        await asyncio.sleep(0)
        conn.abort()
        with pytest.raises(ConnectionError):
            await reader
        assert conn.closed is not None and conn.closed.done()
        peer.close()

    _run(main)


def test_read_timeout() -> None:
    async def main() -> None:
        conn, peer = await _pair()
        with pytest.raises(TimeoutError):
            await conn.read_msg(timeout=0.05)
        conn.close()
        peer.close()

    _run(main)


def test_detach_hands_over_the_bytes_behind_the_message_and_the_eof() -> None:
    async def main() -> None:
        conn, peer = await _pair()
        await _send(peer, m.encode(m.StartWorkConn(proxy_name="p")) + b"user bytes")
        peer.shutdown(socket.SHUT_WR)
        assert await conn.read_msg(timeout=5) == m.StartWorkConn(proxy_name="p")
        assert conn.buffered == len(b"user bytes")
        while conn.alive:  # the EOF arrives right behind the bytes
            await asyncio.sleep(0.001)
        transport, data, eof = conn.detach()
        assert (data, eof) == (b"user bytes", True)
        assert transport is conn.transport and conn.buffered == 0
        transport.close()
        peer.close()

    _run(main)


def test_read_exactly_takes_raw_bytes_behind_a_message() -> None:
    async def main() -> None:
        conn, peer = await _pair()
        await _send(peer, m.encode(m.StartWorkConn(proxy_name="p")) + b"pi")
        assert await conn.read_msg(timeout=5) == m.StartWorkConn(proxy_name="p")
        reader = asyncio.ensure_future(conn.read_exactly(4))
        await _send(peer, b"ngpong")
        assert await asyncio.wait_for(reader, 5) == b"ping"
        assert await conn.read_exactly(4) == b"pong" and conn.buffered == 0
        conn.close()
        peer.close()

    _run(main)


def test_encryption_applies_to_bytes_read_before_it_was_switched_on() -> None:
    """frpc may send its first encrypted message right behind LoginResp's trigger: the ciphertext
    already buffered when enable_encryption runs is decrypted too."""

    async def main() -> None:
        key = derive_key("token")
        enc = CFBEncryptor(key)
        conn, peer = await _pair()
        login = m.encode(m.Login(user="x"))
        ping = enc.encrypt(m.encode(m.Ping(timestamp=7)))
        await _send(peer, login + ping[:5])
        assert await conn.read_msg(timeout=5) == m.Login(user="x")
        while conn.buffered < 5:
            await asyncio.sleep(0.001)
        conn.enable_encryption(key)
        await _send(peer, ping[5:] + enc.encrypt(m.encode(m.Pong())))
        assert await conn.read_msg(timeout=5) == m.Ping(timestamp=7)
        assert await conn.read_msg(timeout=5) == m.Pong()
        with pytest.raises(ProtocolError, match="encrypted"):
            conn.detach()
        conn.close()
        peer.close()

    _run(main)


def test_a_full_buffer_pauses_reading_until_the_reader_wants_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(msgconn, "MAX_BUFFER", 64)

    async def main() -> None:
        conn, peer = await _pair()
        frames = [m.encode(m.NewProxy(proxy_name=f"p{i}", metas={"k": "v" * 40})) for i in range(20)]
        await _send(peer, b"".join(frames))
        assert conn.transport is not None
        while conn.transport.is_reading():
            await asyncio.sleep(0.001)
        got = [await conn.read_msg(timeout=5) for _ in frames]
        assert [x.proxy_name for x in got if isinstance(x, m.NewProxy)] == [f"p{i}" for i in range(20)]
        conn.close()
        peer.close()

    _run(main)


def test_write_msg_encodes_and_encrypts() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn, peer = await _pair()
        conn.write_msg(m.ReqWorkConn())
        assert await loop.sock_recv(peer, 100) == m.encode(m.ReqWorkConn())
        key = derive_key("t")
        conn.enable_encryption(key)
        conn.write_msg(m.Pong(error="x"))
        raw = await loop.sock_recv(peer, 100)
        assert CFBDecryptor(key).decrypt(raw) == m.encode(m.Pong(error="x"))  # the IV comes first
        conn.close()
        peer.close()

    _run(main)


def test_dispatcher_calls_the_handler_of_the_exact_class_else_the_default() -> None:
    seen: list[tuple[str, m.Message]] = []

    def handler(name: str, result: str) -> Callable[[m.Message], str]:
        def handle(msg: m.Message) -> str:
            seen.append((name, msg))
            return result

        return handle

    d: Dispatcher[str] = (
        Dispatcher(default=handler("default", "d"))
        .register(m.Ping, handler("ping", "p"))
        .register(m.NewProxy, handler("new", "n"))
    )
    assert d.dispatch(m.Ping(timestamp=1)) == "p"
    assert d.dispatch(m.NewProxy(proxy_name="x")) == "n"
    assert d.dispatch(m.Pong()) == "d"
    assert seen == [("ping", m.Ping(timestamp=1)), ("new", m.NewProxy(proxy_name="x")), ("default", m.Pong())]
    d.register(m.Ping, lambda msg: "replaced")
    assert d.dispatch(m.Ping()) == "replaced"
    assert d.handler(m.CloseProxy) is not None and d.handler(m.Ping) is not None
    bare: Dispatcher[None] = Dispatcher()
    assert bare.dispatch(m.Ping()) is None and bare.handler(m.Ping) is None
