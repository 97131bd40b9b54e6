"""IncomingBIO (net/inbio.py): ciphertext lent to OpenSSL's memory BIO instead of copied into it.

Real OpenSSL on both ends (two ssl.SSLObject, TLS 1.3), ciphertext cut into chunks of every size;
and TLSTransport over loopback sockets with reading paused inside a record.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import ssl
import subprocess
import sys
import textwrap

import pytest

from aiofrp.cli.common import new_event_loop
from aiofrp.net import inbio
from aiofrp.net.inbio import IncomingBIO
from aiofrp.net.tls import TLSTransport, client_context, server_context


def test_lending_is_available_on_this_interpreter() -> None:
    """CPython on Linux with the system OpenSSL (what CI and the bench run): the fast path is on,
    not silently off."""
    assert inbio.available()
    assert IncomingBIO()._ptr != 0


class End:
    def __init__(self, ctx: ssl.SSLContext, server_side: bool) -> None:
        self.inc = IncomingBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc.bio, self.out, server_side=server_side)


def _pair() -> tuple[End, End]:
    client = End(client_context(), False)
    server = End(server_context(), True)
    done = {False: False, True: False}
    for _ in range(10):
        for end, peer, side in ((client, server, False), (server, client, True)):
            if not done[side]:
                try:
                    end.obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
            if end.out.pending:
                peer.inc.write(end.out.read())
        if all(done.values()):
            break
    assert all(done.values())
    return client, server


def _drain(end: End, limit: int = 1 << 30) -> bytes:
    got = bytearray()
    while len(got) < limit:
        try:
            got += end.obj.read(min(16384, limit - len(got)))
        except ssl.SSLWantReadError:
            break
    return bytes(got)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunks_of_every_size_and_partial_reads_arrive_whole(seed: int) -> None:
    """Ciphertext cut anywhere (inside headers and records), sometimes as a bytearray view that its
    producer overwrites right after (it must be copied), and reads that stop early so that the next
    chunk comes while OpenSSL has not read all of the previous one."""
    rnd = random.Random(seed)
    client, server = _pair()
    want = bytearray()
    for _ in range(40):
        piece = os.urandom(rnd.randrange(1, 70_000))
        want += piece
        client.obj.write(piece)
    wire = client.out.read()
    got = bytearray()
    scratch = bytearray(70_000)
    pos = 0
    while pos < len(wire):
        n = rnd.randrange(1, 40_000)
        chunk = wire[pos : pos + n]
        pos += len(chunk)
        if rnd.random() < 0.3:
            scratch[: len(chunk)] = chunk
            server.inc.write(memoryview(scratch)[: len(chunk)])
            scratch[: len(chunk)] = b"\xee" * len(chunk)  # the producer reuses its buffer
        else:
            server.inc.write(chunk)
        got += _drain(server, rnd.randrange(1, 50_000) if rnd.random() < 0.4 else 1 << 30)
    got += _drain(server)
    assert server.inc.bio.pending == 0
    assert bytes(got) == bytes(want)


def test_the_lent_chunk_is_kept_alive_until_openssl_has_read_it() -> None:
    client, server = _pair()
    data = os.urandom(100_000)
    client.obj.write(data)
    wire = client.out.read()
    size = len(wire)
    server.inc.write(wire)
    del wire
    gc.collect()
    junk = [os.urandom(size) for _ in range(20)]  # would reuse the chunk's memory were it freed
    assert _drain(server) == data
    del junk


def test_release_leaves_nothing_to_read() -> None:
    client, server = _pair()
    client.obj.write(b"x" * 50_000)
    server.inc.write(client.out.read())
    assert server.obj.read(10) == b"x" * 10
    assert server.inc.bio.pending > 0
    server.inc.release()
    assert server.inc.bio.pending == 0
    assert server.inc._lent == b""


def test_eof_written_ends_the_stream() -> None:
    client, server = _pair()
    client.obj.write(b"hello")
    server.inc.write(client.out.read())
    server.inc.bio.write_eof()
    assert server.obj.read(100) == b"hello"
    with pytest.raises(ssl.SSLEOFError):
        server.obj.read(100)


def test_aiofrp_tls_lend_0_copies_as_before() -> None:
    code = textwrap.dedent("""
        from aiofrp.net import inbio
        b = inbio.IncomingBIO()
        b.write(b"abc")
        b.write(memoryview(b"def"))
        print(inbio.available(), b._ptr, b.bio.pending, b.bio.read())
    """)
    env = {**os.environ, "AIOFRP_TLS_LEND": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "0", "6", "b'abcdef'"]


class App(asyncio.Protocol):
    def __init__(self, pause_first: bool) -> None:
        self.got = bytearray()
        self.transport: asyncio.ReadTransport | None = None
        self.pause_first = pause_first

    def data_received(self, data: bytes) -> None:
        self.got += data
        if self.pause_first and self.transport is not None:
            self.pause_first = False
            self.transport.pause_reading()  # inside a batch: the rest stays lent to OpenSSL


@pytest.mark.parametrize("loop_factory", [new_event_loop, asyncio.new_event_loop], ids=["uvloop", "asyncio"])
def test_transport_paused_inside_a_batch_delivers_the_rest_on_resume(loop_factory: object) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.set_result(transport)  # type: ignore[arg-type]

        srv = await loop.create_server(Accept, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        raw_c, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        raw_s = await accepted
        server_app, client_app = App(True), App(False)
        server = TLSTransport(raw_s, server_context(), server_app, server_side=True)
        client = TLSTransport(raw_c, client_context(), client_app, server_side=False)
        await asyncio.wait_for(asyncio.gather(server.handshake, client.handshake), 10)
        server_app.transport = server
        data = os.urandom(3_000_000)
        client.write(data)
        end = loop.time() + 10
        while server.is_reading():
            assert loop.time() < end, "never paused"
            await asyncio.sleep(0.001)
        first = len(server_app.got)
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert len(server_app.got) == first  # paused: nothing more handed up
        server.resume_reading()
        while len(server_app.got) < len(data):
            assert loop.time() < end, f"{len(server_app.got)} of {len(data)}"
            await asyncio.sleep(0.001)
        assert bytes(server_app.got) == data
        client.abort()
        server.abort()
        srv.close()
        await srv.wait_closed()

    loop = loop_factory()  # type: ignore[operator]
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()
