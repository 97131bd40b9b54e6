"""The https2* HTTP/2 front (:class:`aiofrp.client.plugins.http.h2.H2Conn`) in process, against a
real HTTP/1.1 upstream on 127.0.0.1 and the ``h2`` library as the browser: which frames a response
becomes (END_STREAM on the last DATA frame of a known-length body, as Go's server sends it; an
empty DATA frame ends a body of unknown length), that the body arrives whole and header bytes
pass unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from aiofrp.client.plugins.http.h2 import H2Conn
from aiofrp.client.plugins.http.reverse import Forwarded, ProxyOptions, ReverseProxy

pytestmark = pytest.mark.timeout(30)


class _Wire(asyncio.Transport):
    """The browser's side of the connection: what H2Conn writes is fed to an h2 client."""

    def __init__(self) -> None:
        super().__init__()
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.client.initiate_connection()
        self.events: list[Any] = []
        self.ended = asyncio.get_running_loop().create_future()

    def write(self, data: Any) -> None:
        for ev in self.client.receive_data(bytes(data)):
            self.events.append(ev)
            if isinstance(ev, h2.events.StreamEnded) and not self.ended.done():
                self.ended.set_result(None)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _fetch(answer: bytes) -> list[Any]:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = ReverseProxy("t", ProxyOptions(f"127.0.0.1:{port}", upstream_tls=False, forwarded=Forwarded.APPEND))
    try:
        wire = _Wire()
        conn = H2Conn(proxy, "10.0.0.1", None)
        conn.connection_made(wire)
        client = wire.client
        client.send_headers(1, [(":method", "GET"), (":path", "/x"), (":scheme", "https"),
                                (":authority", "example.com")], end_stream=True)
        conn.data_received(client.data_to_send())
        await asyncio.wait_for(wire.ended, 10)
        return wire.events
    finally:
        proxy.close()
        server.close()
        await server.wait_closed()


def _data(events: list[Any]) -> list[h2.events.DataReceived]:
    return [e for e in events if isinstance(e, h2.events.DataReceived)]


def test_known_length_ends_on_the_last_data_frame() -> None:
    body = bytes(range(256)) * 200  # 51,200 bytes: several DATA frames
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    events = asyncio.run(_fetch(answer))
    data = _data(events)
    assert b"".join(e.data for e in data) == body
    assert all(e.data for e in data)  # no empty DATA frame
    assert data[-1].stream_ended is not None and all(e.stream_ended is None for e in data[:-1])
    resp = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert (b":status", b"200") in resp.headers and (b"content-length", str(len(body)).encode()) in resp.headers


def test_unknown_length_ends_with_an_empty_data_frame() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    data = _data(asyncio.run(_fetch(answer)))
    assert b"".join(e.data for e in data) == b"hello"
    assert data[-1].data == b"" and data[-1].stream_ended is not None


def test_empty_body_with_a_length() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
    events = asyncio.run(_fetch(answer))
    assert b"".join(e.data for e in _data(events)) == b""
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_response_header_bytes_pass_unchanged() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n\r\nok"
    events = asyncio.run(_fetch(answer))
    resp = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert (b"x-name", b"caf\xe9") in resp.headers  # as Go: the bytes, not their UTF-8 re-encoding
