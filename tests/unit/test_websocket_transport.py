"""net/websocket.py over real loopback sockets: the handshake both ways, frames of every data
opcode (text with bytes that are not UTF-8, binary, fragmented) read as one byte stream, pings
answered, a close frame as EOF, and the refusals frps makes (Go's 404 / 400 / 403)."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import pytest

from aiofrp.net.websocket import PATH, ServerHandshake, WebSocketConn, WebSocketError, client_handshake


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        if not self.eof.done():
            self.eof.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)


async def _server() -> tuple[asyncio.Server, int, asyncio.Future[WebSocketConn]]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[WebSocketConn] = loop.create_future()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            hs = ServerHandshake(transport)  # type: ignore[arg-type]
            transport.set_protocol(hs)

            def done(f: asyncio.Future[WebSocketConn]) -> None:
                if f.exception() is not None:
                    if not accepted.done():
                        accepted.set_exception(f.exception())  # type: ignore[arg-type]
                else:
                    accepted.set_result(f.result())

            hs.done.add_done_callback(done)

    srv = await loop.create_server(Accept, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1], accepted


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _raw_upgrade(port: int, headers: bytes | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    w.write(headers if headers is not None else (
        b"GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"))
    return r, w


def test_client_and_server_carry_a_byte_stream_both_ways() -> None:
    async def main() -> None:
        srv, port, accepted = await _server()
        loop = asyncio.get_running_loop()
        raw, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        client = await client_handshake(raw, f"127.0.0.1:{port}")
        server = await asyncio.wait_for(accepted, 5)
        cs, ss = Sink(), Sink()
        client.set_protocol(cs)
        server.set_protocol(ss)
        big = os.urandom(3 << 20)  # > WRITE_FRAME: several frames
        client.write(big)
        server.write(b"pong" * 1000)
        for _ in range(500):
            if len(ss.data) == len(big) and len(cs.data) == 4000:
                break
            await asyncio.sleep(0.01)
        assert bytes(ss.data) == big and bytes(cs.data) == b"pong" * 1000
        client.close()
        await asyncio.wait_for(ss.eof, 5)
        srv.close()

    asyncio.run(main())


def test_text_binary_fragmented_frames_and_pings() -> None:
    async def main() -> None:
        srv, port, accepted = await _server()
        r, w = await _raw_upgrade(port)
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        server = await asyncio.wait_for(accepted, 5)
        sink = Sink()
        server.set_protocol(sink)
        # text frame with bytes that are not UTF-8 (Go frp <= 0.69 sends frp bytes as text)
        w.write(_frame(0x1, b"\xff\xfe\x00text") + _frame(0x2, b"|binary|")
                + _frame(0x2, b"frag", fin=False) + _frame(0x0, b"mented", fin=False) + _frame(0x0, b"!")
                + _frame(0x9, b"ping-id"))
        await w.drain()
        pong = await asyncio.wait_for(r.readexactly(2 + 7), 5)
        assert pong == b"\x8a\x07ping-id"
        for _ in range(300):
            if len(sink.data) >= 27:
                break
            await asyncio.sleep(0.01)
        assert bytes(sink.data) == b"\xff\xfe\x00text|binary|fragmented!"
        w.write(_frame(0x8, struct.pack(">H", 1000)))
        await w.drain()
        await asyncio.wait_for(sink.eof, 5)
        w.close()
        srv.close()

    asyncio.run(main())


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
    (b"GET /~!frp HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    ((b"GET /~!frp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"), b"403"),
    (b"\x16\x03\x01 not http at all\r\n\r\n", b"400"),
])
def test_refusals_like_go(request_bytes: bytes, status: bytes) -> None:
    async def main() -> None:
        srv, port, accepted = await _server()
        r, w = await _raw_upgrade(port, request_bytes)
        reply = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)  # frps's gate then closes it
        assert reply.startswith(b"HTTP/1.1 " + status), reply[:80]
        with pytest.raises(WebSocketError):
            await asyncio.wait_for(accepted, 5)
        w.close()
        srv.close()

    asyncio.run(main())


def test_frame_too_large_ends_the_connection() -> None:
    async def main() -> None:
        srv, port, accepted = await _server()
        r, w = await _raw_upgrade(port)
        await r.readuntil(b"\r\n\r\n")
        server = await asyncio.wait_for(accepted, 5)
        lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        class P(asyncio.Protocol):
            def connection_lost(self, exc: Exception | None) -> None:
                lost.set_result(exc)

        server.set_protocol(P())
        w.write(b"\x82\xff" + struct.pack(">Q", 1 << 63) + os.urandom(4))
        exc = await asyncio.wait_for(lost, 5)
        assert isinstance(exc, WebSocketError) and "bad websocket frame" in str(exc)
        assert (await asyncio.wait_for(r.read(), 5)).startswith(b"\x88")  # close frame (1009), then EOF
        w.close()
        srv.close()

    asyncio.run(main())


def test_path_constant() -> None:
    assert PATH == "/~!frp"


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
def test_binary_frame_header_is_what_websockets_serializes(length: int) -> None:
    from websockets.frames import Frame, Opcode
    from websockets.protocol import State
    from websockets.server import ServerProtocol
    from websockets.speedups import apply_mask

    from aiofrp.net.websocket import binary_frame_header

    payload = os.urandom(length)
    # the server side: unmasked, byte for byte websockets' serialization
    assert binary_frame_header(length, None) + payload == Frame(Opcode.BINARY, payload).serialize(mask=False)
    # the client side: masked; websockets' server parses it back to the payload
    mask = b"\x01\x02\x03\x04"
    server = ServerProtocol(state=State.OPEN, max_size=None)
    server.receive_data(binary_frame_header(length, mask) + apply_mask(payload, mask))
    [frame] = server.events_received()
    assert isinstance(frame, Frame) and frame.opcode is Opcode.BINARY and frame.fin
    assert frame.data == payload


# -- the frame reading of our own (proto/wsframe.py) inside the transport -------------------------


async def _accepted_server(first: bytes = b"") -> tuple[asyncio.Server, asyncio.StreamReader, asyncio.StreamWriter, WebSocketConn]:
    """A raw client upgraded to our server (``first``: frames sent in the upgrade request's write)."""
    srv, port, accepted = await _server()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    w.write(b"GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + first)
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return srv, r, w, await asyncio.wait_for(accepted, 5)


class Lost(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(exc)


async def _until(cond: object, what: str) -> None:
    for _ in range(500):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 5 s: {what}")


def test_frames_in_the_upgrade_requests_segment_are_read() -> None:
    async def main() -> None:
        srv, r, w, server = await _accepted_server(_frame(0x2, b"early") + _frame(0x9, b"hi"))
        assert await asyncio.wait_for(r.readexactly(4), 5) == b"\x8a\x02hi"  # the pong
        sink = Sink()
        holder = server.holder
        assert holder is not None
        server.set_protocol(sink)
        assert bytes(holder.early) == b"early"
        w.write(_frame(0x2, b"later"))
        await _until(lambda: sink.data == b"later", "the frame after the hand-over")
        w.close()
        srv.close()

    asyncio.run(main())


def test_close_is_echoed_as_received_then_eof() -> None:
    async def main() -> None:
        srv, r, w, server = await _accepted_server()
        sink = Sink()
        server.set_protocol(sink)
        payload = struct.pack(">H", 1001) + "adiós".encode()
        w.write(_frame(0x2, b"data") + _frame(0x8, payload) + _frame(0x2, b"ignored"))
        assert await asyncio.wait_for(r.readexactly(2 + len(payload)), 5) == bytes([0x88, len(payload)]) + payload
        await asyncio.wait_for(sink.eof, 5)
        assert bytes(sink.data) == b"data"
        assert await asyncio.wait_for(r.read(), 5) == b""  # then frps closes the connection
        w.close()
        srv.close()

    asyncio.run(main())


@pytest.mark.parametrize(("frames", "close", "reason"), [
    (b"\x82\x04data", struct.pack(">H", 1002) + b"incorrect masking", "incorrect masking"),
    (_frame(0x3, b"x"), struct.pack(">H", 1002) + b"invalid opcode", "invalid opcode"),
    (_frame(0x8, b"\x03"), struct.pack(">H", 1002) + b"close frame too short", "close frame too short"),
    (_frame(0x8, struct.pack(">H", 1000) + b"\xff"), None, "invalid start byte"),
    (_frame(0x2, b"a", fin=False) + _frame(0x8, b""), struct.pack(">H", 1002) + b"incomplete fragmented message",
     "incomplete fragmented message"),
], ids=["unmasked", "opcode-3", "close-short", "close-reason-utf8", "close-mid-message"])  # masks are random: xdist
def test_bad_frames_fail_the_connection_with_a_close_frame(frames: bytes, close: bytes | None, reason: str) -> None:
    async def main() -> None:
        srv, r, w, server = await _accepted_server()
        proto = Lost()
        server.set_protocol(proto)
        w.write(_frame(0x2, b"before") + frames)
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, WebSocketError) and str(exc).startswith("bad websocket frame: ") and reason in str(exc)
        assert server.error == str(exc)
        assert bytes(proto.data) in (b"before", b"beforea")
        got = await asyncio.wait_for(r.read(), 5)  # the close frame, then EOF
        assert got[0] == 0x88 and (close is None or got[2:] == close), got
        w.close()
        srv.close()

    asyncio.run(main())


def test_eof_without_a_close_frame_is_an_error() -> None:
    async def main() -> None:
        srv, _r, w, server = await _accepted_server()
        proto = Lost()
        server.set_protocol(proto)
        w.write(_frame(0x2, b"data")[:-1])
        w.write_eof()
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, WebSocketError) and "stream ends inside a frame" in str(exc)
        w.close()
        srv.close()

    asyncio.run(main())


async def _raw_server(answer: bytes) -> tuple[asyncio.Server, int, asyncio.Future[asyncio.StreamReader]]:
    """A server that answers the upgrade request with ``answer`` (``{accept}``: the right key)."""
    from websockets.utils import accept_key

    got: asyncio.Future[asyncio.StreamReader] = asyncio.get_running_loop().create_future()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await r.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        w.write(answer.replace(b"{accept}", accept_key(key.decode()).encode()))
        got.set_result(r)
        await asyncio.sleep(5)
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1], got


def test_client_reads_frames_that_came_with_the_101() -> None:
    async def main() -> None:
        unmasked = b"\x82\x05early" + b"\x89\x02hi"
        srv, port, got = await _raw_server(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                           b"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n" + unmasked)
        raw, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", port)
        client = await client_handshake(raw, f"127.0.0.1:{port}")
        assert client.holder is not None and bytes(client.holder.early) == b"early"
        r = await got
        pong = await asyncio.wait_for(r.readexactly(2 + 4 + 2), 5)
        assert pong[:2] == b"\x8a\x82"  # masked, as a client's frames must be
        from websockets.speedups import apply_mask

        assert apply_mask(pong[6:], pong[2:6]) == b"hi"
        client.abort()
        srv.close()

    asyncio.run(main())


def test_client_refused_with_a_body_fails_at_once() -> None:
    async def main() -> None:
        srv, port, _ = await _raw_server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nforbidden\n")
        raw, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", port)
        with pytest.raises(WebSocketError, match="403"):
            await client_handshake(raw, f"127.0.0.1:{port}", timeout=5)
        srv.close()

    asyncio.run(main())


class Calls(asyncio.Protocol):
    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.calls.append(bytes(data))


def test_a_reads_small_frames_are_handed_on_in_one_piece_big_ones_as_they_are() -> None:
    async def main() -> None:
        srv, r, w, server = await _accepted_server()
        proto = Calls()
        server.set_protocol(proto)
        big1, big2 = os.urandom(40_000), os.urandom(50_000)
        # as one read: Go writes a frame per TLS record, several arrive together
        server._on_data(_frame(0x2, b"a") + _frame(0x1, b"b", fin=False) + _frame(0x9, b"x")
                        + _frame(0x0, b"c") + _frame(0x2, b"d") + _frame(0x2, big1) + _frame(0x2, big2))
        assert proto.calls == [b"ab", b"cd", big1, big2]
        assert await asyncio.wait_for(r.readexactly(3), 5) == b"\x8a\x01x"  # the ping between them
        w.close()
        srv.close()

    asyncio.run(main())
