"""Local services for tests and the clients that talk to them, all on 127.0.0.1.

Services run in a background thread (``start()``/``stop()``, ``.port``, context managers):
:class:`EchoServer` (TCP, asyncio, many concurrent clients), :class:`UdpEchoServer`,
:class:`HttpServer` (fixed body for every request); the bulk sink/source is in
:mod:`support.bulk`. Clients: :func:`tcp_roundtrip`, :func:`udp_roundtrip` (bounded in time).
Fixtures: ``echo_server``, ``udp_echo_server``, ``http_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import selectors
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .ports import LOCALHOST

try:  # fixtures are only defined when pytest is around (bench/ imports this module too)
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = [
    "TEST_STRING",
    "EchoServer",
    "HttpRequestRecord",
    "HttpServer",
    "UdpEchoServer",
    "tcp_roundtrip",
    "udp_roundtrip",
]

T = TypeVar("T")

# The payload frp's e2e harness uses everywhere (mock HTTP body, echo payload).
TEST_STRING = (
    b"frp is a fast reverse proxy to help you expose a local server behind a NAT or firewall to the internet."
)


# -- clients ---------------------------------------------------------------------------------------


def tcp_roundtrip(port: int, data: bytes, timeout: float = 5.0, *, host: str = LOCALHOST) -> bytes:
    """Connect, send ``data`` and read until ``len(data)`` bytes came back or EOF; return what was read.

    Sending and receiving are interleaved, so large payloads through an echo service cannot
    deadlock.  Raises ``TimeoutError`` (message includes the byte counts) at the deadline;
    connection errors propagate as ``OSError``.
    """
    deadline = time.monotonic() + timeout
    out = memoryview(data)
    got = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0))
            while len(got) < len(data):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"tcp_roundtrip to {host}:{port}: sent {len(data) - len(out)}/{len(data)}, "
                        f"received {len(got)}/{len(data)} bytes in {timeout}s"
                    )
                for _, ev in sel.select(remaining):
                    if ev & selectors.EVENT_WRITE and out:
                        with contextlib.suppress(BlockingIOError):
                            out = out[s.send(out[: 1 << 20]):]
                        if not out:
                            sel.modify(s, selectors.EVENT_READ)
                    if ev & selectors.EVENT_READ:
                        try:
                            chunk = s.recv(1 << 20)
                        except BlockingIOError:
                            continue
                        if not chunk:
                            return bytes(got)
                        got += chunk
    return bytes(got)


def udp_roundtrip(
    port: int, data: bytes, timeout: float = 2.0, *, attempts: int = 1, host: str = LOCALHOST
) -> bytes:
    """Send one datagram and return the first reply; resend up to ``attempts`` times, each waiting
    ``timeout / attempts``.  ``TimeoutError`` if nothing came back."""
    per_try = timeout / max(1, attempts)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        for _ in range(max(1, attempts)):
            slot_end = time.monotonic() + per_try
            s.send(data)
            s.settimeout(per_try)
            try:
                return s.recv(65536)
            except TimeoutError:
                pass
            except ConnectionRefusedError:
                # ICMP port unreachable (nobody listening yet): pace the retry to the slot length.
                time.sleep(max(0.0, slot_end - time.monotonic()))
    raise TimeoutError(f"no UDP reply from {host}:{port} within {timeout}s")


# -- services --------------------------------------------------------------------------------------


class _LoopThread:
    """One daemon thread running an asyncio loop shared by the asyncio-based services."""

    _instance: _LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aiofrp-test-services", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class _Service:
    port: int

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        return (LOCALHOST, self.port)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedTCPService:
    """A threaded TCP service on 127.0.0.1: ``handler`` serves each connection in a thread of its
    own (15 s socket timeout; the connection is closed after it returns, OSError ends it quietly)."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind((LOCALHOST, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        c.settimeout(15)
        with contextlib.suppress(OSError), c:
            self.handler(c)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(2)


class EchoServer(_Service):
    """TCP echo on 127.0.0.1 (plain bytes; so frp's int64-length-prefixed echo works too).

    ``port=0`` picks a free port.  Counts ``connections`` (total accepted).  Closes a connection
    after echoing everything once the client sent EOF.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while data := await reader.read(1 << 18):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> EchoServer:
        async def _start() -> None:
            self._server = await asyncio.start_server(self._handle, LOCALHOST, self.port, backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]

        _LoopThread.get().call(_start())
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None

        async def _stop() -> None:
            server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

        _LoopThread.get().call(_stop())


class UdpEchoServer(_Service):
    """UDP echo on 127.0.0.1: every datagram is sent back to its sender.  Counts ``datagrams``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.datagrams = 0
        self._transport: asyncio.DatagramTransport | None = None

    def start(self) -> UdpEchoServer:
        outer = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                outer.datagrams += 1
                self.transport.sendto(data, addr)

        async def _start() -> None:
            loop = asyncio.get_running_loop()
            self._transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(LOCALHOST, self.port))
            self.port = self._transport.get_extra_info("sockname")[1]

        _LoopThread.get().call(_start())
        return self

    def stop(self) -> None:
        if self._transport is not None:
            t, self._transport = self._transport, None
            _LoopThread.get().loop.call_soon_threadsafe(t.close)


@dataclass
class HttpRequestRecord:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _TrackingHTTPServer(http.server.ThreadingHTTPServer):
    """Knows its open connections, so that a stop can drop the keep-alive ones."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.open_conns: set[socket.socket] = set()
        super().__init__(*args, **kw)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.open_conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.open_conns.discard(request)
        super().shutdown_request(request)


class HttpServer(_Service):
    """Tiny HTTP/1.1 server answering every request with ``status`` and the fixed ``body``
    (keep-alive supported).  Received requests are recorded in ``requests``.  ``stop()`` also
    drops open keep-alive connections (as a stopped service would)."""

    def __init__(self, port: int = 0, body: bytes = TEST_STRING, *, status: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        self.port = port
        self.body = body
        self.status = status
        self.headers = dict(headers or {})
        self.requests: list[HttpRequestRecord] = []
        self._httpd: _TrackingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HttpServer:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n > 0 else b""
                outer.requests.append(HttpRequestRecord(self.command, self.path, dict(self.headers.items()), body))
                self.send_response(outer.status)
                for k, v in outer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(outer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = _TrackingHTTPServer((LOCALHOST, self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        httpd.shutdown()
        httpd.server_close()
        for conn in list(httpd.open_conns):  # a stopped service drops its keep-alive connections too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)


if pytest is not None:

    @pytest.fixture
    def echo_server() -> Iterator[EchoServer]:
        with EchoServer() as s:
            yield s

    @pytest.fixture
    def udp_echo_server() -> Iterator[UdpEchoServer]:
        with UdpEchoServer() as s:
            yield s

    @pytest.fixture
    def http_server() -> Iterator[HttpServer]:
        with HttpServer() as s:
            yield s
