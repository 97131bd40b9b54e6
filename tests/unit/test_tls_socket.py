"""SocketTLSTransport (net/tls_socket.py): TLS with OpenSSL on the socket, over real loopback
sockets, against the MemoryBIO TLSTransport frps uses, on uvloop (production) and asyncio's loop
(a program embedding aiofrp)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import ssl
import struct
import subprocess
import sys
import termios
import textwrap
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiofrp.cli.common import new_event_loop
from aiofrp.net.tls import READ_SIZE, TLSTransport, client_context, server_context, server_name
from aiofrp.net.tls_socket import SocketTLSTransport, detach_socket

DEADLINE = 10.0

LOOPS = {"uvloop": new_event_loop, "asyncio": asyncio.new_event_loop}


def run(which: str, main: Callable[[], Awaitable[None]]) -> None:
    loop = LOOPS[which]()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()


class App(asyncio.Protocol):
    """Records what a transport tells its protocol."""

    def __init__(self) -> None:
        self.got = bytearray()
        self.made = False
        self.eof = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.paused = 0
        self.resumed = 0
        self.keep_open = False
        self.pause_on_data: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True

    def data_received(self, data: Any) -> None:
        self.got += data
        if self.pause_on_data is not None:
            self.pause_on_data.pause_reading()

    def eof_received(self) -> bool:
        if not self.eof.done():
            self.eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1


async def until(cond: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not cond():
        assert loop.time() < end, what
        await asyncio.sleep(0.001)


class Pair:
    """frps's end (TLSTransport over the loop's transport) and frpc's (SocketTLSTransport on a
    socket detached from the loop's transport), joined over 127.0.0.1."""

    server: TLSTransport
    client: SocketTLSTransport
    server_app: App
    client_app: App
    srv: asyncio.Server

    @classmethod
    async def open(cls) -> Pair:
        self = cls()
        loop = asyncio.get_running_loop()
        self.server_app, self.client_app = App(), App()
        accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.set_result(transport)  # type: ignore[arg-type]

        self.srv = await loop.create_server(Accept, "127.0.0.1", 0)
        port = self.srv.sockets[0].getsockname()[1]
        raw_c, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        raw_s = await accepted
        self.server = TLSTransport(raw_s, server_context(), self.server_app, server_side=True)
        sock = detach_socket(raw_c)
        assert sock is not None
        assert raw_c.is_closing()
        self.client = SocketTLSTransport(sock, client_context(), self.client_app, server_side=False)
        await asyncio.wait_for(asyncio.gather(self.server.handshake, self.client.handshake), DEADLINE)
        return self

    async def close(self) -> None:
        self.client.abort()
        self.server.abort()
        self.srv.close()
        await self.srv.wait_closed()


@pytest.mark.parametrize("which", LOOPS)
def test_bulk_both_ways_arrives_whole_and_in_order(which: str) -> None:
    async def main() -> None:
        p = await Pair.open()
        assert p.client_app.made and p.client.get_extra_info("cipher") is not None
        assert p.client.get_extra_info("peername") == p.server.get_extra_info("sockname")
        up = os.urandom(3 << 20)
        down = os.urandom(2 << 20)
        # pieces of every size: headers, one record, many records, and more than a read batch
        sizes = [12, 4095, 4096, 16384, 16385, 100_000, 300_000]
        i = k = 0
        while i < len(up):
            n = sizes[k % len(sizes)]
            p.client.writelines([up[i:i + 12], memoryview(up)[i + 12:i + n]])
            i += n
            k += 1
        p.server.write(down)
        await until(lambda: len(p.server_app.got) >= len(up) and len(p.client_app.got) >= len(down),
                    f"{len(p.server_app.got)}/{len(up)} up, {len(p.client_app.got)}/{len(down)} down")
        assert bytes(p.server_app.got) == up
        assert bytes(p.client_app.got) == down
        await p.close()

    run(which, main)


@pytest.mark.parametrize("which", LOOPS)
def test_a_peer_that_does_not_read_pauses_the_writer_and_reading_again_resumes_it(which: str) -> None:
    async def main() -> None:
        p = await Pair.open()
        p.server.pause_reading()
        data = os.urandom(1 << 20)
        sent = 0
        while not p.client_app.paused and sent < 16 << 20:
            p.client.write(data)
            sent += len(data)
        assert p.client_app.paused == 1, "16 MiB written to a peer that reads nothing, and no pause_writing"
        assert p.client.get_write_buffer_size() > 0
        p.server.resume_reading()
        await until(lambda: p.client_app.resumed == 1, "no resume_writing once the peer read again")
        await until(lambda: len(p.server_app.got) >= sent, f"{len(p.server_app.got)} of {sent} bytes")
        assert bytes(p.server_app.got) == data * (sent // len(data))
        assert p.client.get_write_buffer_size() == 0
        await p.close()

    run(which, main)


@pytest.mark.parametrize("which", LOOPS)
def test_pause_reading_holds_the_data_back_and_resume_reading_delivers_it(which: str) -> None:
    async def main() -> None:
        p = await Pair.open()
        p.client.pause_reading()
        assert not p.client.is_reading()
        data = os.urandom(600_000)  # more than one read batch, so one is cut inside a record
        p.server.write(data)
        await until(lambda: p.server.get_write_buffer_size() == 0, "frps's side could not write")
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(p.client_app.got) == 0
        p.client.resume_reading()
        await until(lambda: len(p.client_app.got) >= len(data), f"{len(p.client_app.got)} of {len(data)}")
        assert bytes(p.client_app.got) == data
        await p.close()

    run(which, main)


def _queued(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


@pytest.mark.parametrize("which", LOOPS)
def test_resume_reading_delivers_what_openssl_holds_when_the_socket_is_empty(which: str) -> None:
    """The protocol pauses inside data_received after a batch that ended inside a record: the
    record's rest is in OpenSSL, the socket is empty, no readiness event will come for it."""
    async def main() -> None:
        p = await Pair.open()
        sock = p.client.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 << 20)  # room for all of it
        p.client.pause_reading()
        p.server.write(b"a" * 100)  # a record of its own, then 16 full ones: a batch ends inside the last
        p.server.write(os.urandom(READ_SIZE))
        want = 100 + READ_SIZE + 17 * 22  # TLS 1.3 record overhead: 5 header + 1 type + 16 tag
        await until(lambda: _queued(sock) >= want, f"{_queued(sock)} of {want} bytes queued")
        p.client_app.pause_on_data = p.client
        p.client.resume_reading()
        await until(lambda: len(p.client_app.got) > 0, "nothing read")
        assert len(p.client_app.got) == READ_SIZE  # one full batch, then paused
        assert _queued(sock) == 0  # the rest is in OpenSSL only
        p.client_app.pause_on_data = None
        p.client.resume_reading()
        await until(lambda: len(p.client_app.got) >= 100 + READ_SIZE, f"{len(p.client_app.got)} bytes")
        await p.close()

    run(which, main)


def test_close_sends_close_notify() -> None:
    """Not just a TCP FIN: a peer strict about truncation (suppress_ragged_eofs=False) reads a
    clean end."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ls = socket.create_server(("127.0.0.1", 0))
        ctx = server_context()
        result: asyncio.Future[str] = loop.create_future()

        def serve() -> None:
            conn, _ = ls.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
                    tls.settimeout(DEADLINE)
                    got = b""
                    while True:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                    outcome = f"clean end after {got!r}"
            except (ssl.SSLError, OSError) as exc:
                outcome = f"error: {exc!r}"
            loop.call_soon_threadsafe(result.set_result, outcome)

        t = threading.Thread(target=serve)
        t.start()
        app = App()
        tls = SocketTLSTransport(socket.create_connection(ls.getsockname()), client_context(), app, server_side=False)
        await asyncio.wait_for(tls.handshake, DEADLINE)
        tls.write(b"bye")
        tls.close()
        assert await asyncio.wait_for(result, DEADLINE) == "clean end after b'bye'"
        assert await asyncio.wait_for(app.lost, DEADLINE) is None
        t.join()
        ls.close()

    run("uvloop", main)


@pytest.mark.parametrize("which", LOOPS)
def test_close_sends_close_notify_after_the_pending_data_and_the_peer_sees_eof(which: str) -> None:
    async def main() -> None:
        p = await Pair.open()
        p.server.pause_reading()
        data = os.urandom(8 << 20)
        p.client.write(data)
        assert p.client.get_write_buffer_size() > 0  # the socket could not take 8 MiB at once
        p.client.close()
        assert p.client.is_closing()
        p.client.write(b"after close")  # ignored, as asyncio's transports do
        p.server.resume_reading()
        await asyncio.wait_for(p.server_app.eof, DEADLINE)
        assert bytes(p.server_app.got) == data
        assert await asyncio.wait_for(p.client_app.lost, DEADLINE) is None
        await p.close()

    run(which, main)


@pytest.mark.parametrize("which", LOOPS)
def test_the_peer_closing_reaches_eof_received_then_connection_lost(which: str) -> None:
    async def main() -> None:
        p = await Pair.open()
        p.server.write(b"last words")
        p.server.close()
        await asyncio.wait_for(p.client_app.eof, DEADLINE)
        assert bytes(p.client_app.got) == b"last words"
        assert await asyncio.wait_for(p.client_app.lost, DEADLINE) is None
        assert p.client.is_closing()
        await p.close()

    run(which, main)


@pytest.mark.parametrize("which", LOOPS)
def test_a_reset_connection_reports_its_error(which: str) -> None:
    async def main() -> None:
        p = await Pair.open()
        sock = p.server.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        p.server.abort()  # linger 0: an RST
        exc = await asyncio.wait_for(p.client_app.lost, DEADLINE)
        assert exc is None or isinstance(exc, OSError)
        assert p.client.is_closing()
        await p.close()

    run(which, main)


@pytest.mark.parametrize("which", LOOPS)
def test_a_peer_that_is_not_tls_fails_the_handshake_and_the_protocol_never_hears(which: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await writer.drain()
            writer.close()

        srv = await asyncio.start_server(http, "127.0.0.1", 0)
        sock = socket.create_connection(srv.sockets[0].getsockname())
        app = App()
        tls = SocketTLSTransport(sock, client_context(), app, server_side=False)
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await asyncio.wait_for(tls.handshake, DEADLINE)
        assert not app.made and tls.is_closing()
        assert sock.fileno() == -1  # wrapped and closed
        await asyncio.sleep(0)
        assert not app.lost.done()
        srv.close()
        await srv.wait_closed()
        del loop

    run(which, main)


@pytest.mark.parametrize("which", LOOPS)
def test_abort_or_timeout_during_the_handshake_fails_it(which: str) -> None:
    async def main() -> None:
        ls = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog), never answers
        for abort in (True, False):
            app = App()
            sock = socket.create_connection(ls.getsockname())
            tls = SocketTLSTransport(sock, client_context(), app, server_side=False,
                                     handshake_timeout=60 if abort else 0.05)
            if abort:
                tls.abort()
                with pytest.raises(ConnectionResetError):
                    await asyncio.wait_for(tls.handshake, DEADLINE)
            else:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(tls.handshake, DEADLINE)
            assert not app.made and tls.is_closing()
        ls.close()

    run(which, main)


def test_detach_socket_takes_only_a_tcp_socket_with_nothing_left_to_write() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()  # AF_UNIX: not TCP
        tr, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        assert detach_socket(tr) is None and not tr.is_closing()
        tr.close()
        b.close()

        accepted: asyncio.Queue[tuple[asyncio.Transport, App]] = asyncio.Queue()

        class Keep(App):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.put_nowait((transport, self))  # type: ignore[arg-type]

        srv = await loop.create_server(Keep, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()[:2]
        tr, _ = await loop.create_connection(asyncio.Protocol, *addr)
        far, _app = await asyncio.wait_for(accepted.get(), DEADLINE)
        far.pause_reading()
        while not tr.get_write_buffer_size():  # fill the socket until the transport buffers
            tr.write(b"x" * (1 << 20))
        assert detach_socket(tr) is None and not tr.is_closing()
        tr.abort()
        far.abort()

        tr, _ = await loop.create_connection(asyncio.Protocol, *addr)
        far, far_app = await asyncio.wait_for(accepted.get(), DEADLINE)
        own = detach_socket(tr)
        assert own is not None and tr.is_closing() and not own.getblocking()
        await asyncio.sleep(0)  # the closed transport's descriptor is gone, the connection is not
        await loop.sock_sendall(own, b"still connected")
        await until(lambda: bytes(far_app.got) == b"still connected", f"far end got {bytes(far_app.got)!r}")
        assert not far_app.eof.done()
        own.close()
        await asyncio.wait_for(far_app.eof, DEADLINE)
        far.abort()
        srv.close()
        await srv.wait_closed()

    run("uvloop", main)


def test_server_name_spares_the_idna_codec() -> None:
    """An ASCII server name reaches ssl as bytes: the handshake works (name checked against the
    certificate) and ``encodings.idna`` (stringprep, unicodedata) is never imported."""
    code = textwrap.dedent("""
        import asyncio, datetime, os, socket, ssl, sys, tempfile
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        from aiofrp.net.tls import TLSTransport, server_name
        from aiofrp.net.tls_socket import SocketTLSTransport

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                .sign(key, hashes.SHA256()))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:  # only while loading
            path = os.path.join(tmp, "cert.pem")
            with open(path, "wb") as f:
                f.write(pem + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
            srv_ctx.load_cert_chain(path)
        cli_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the name
        cli_ctx.load_verify_locations(cadata=pem.decode())

        async def main():
            loop = asyncio.get_running_loop()
            done = loop.create_future()

            class Accept(asyncio.Protocol):
                def connection_made(self, t):
                    done.set_result(TLSTransport(t, srv_ctx, asyncio.Protocol(), server_side=True))

            ls = socket.socket()  # no getaddrinfo, which imports the idna codec for any str host
            ls.bind(("127.0.0.1", 0))
            srv = await loop.create_server(Accept, sock=ls)
            sock = socket.socket()
            sock.connect(ls.getsockname())
            assert "encodings.idna" not in sys.modules
            tls = SocketTLSTransport(sock, cli_ctx, asyncio.Protocol(), server_side=False,
                                     server_hostname=server_name(sys.argv[1]))
            await asyncio.wait_for(tls.handshake, 10)
            print(tls.get_extra_info("ssl_object").server_hostname, "encodings.idna" in sys.modules)
            tls.abort()
            (await done).abort()
            srv.close()

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code, "localhost"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["localhost", "False"]
    assert server_name("bücher.example") == "bücher.example"
    assert server_name("") is None and server_name(None) is None
