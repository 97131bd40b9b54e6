"""A user-space TCP proxy on 127.0.0.1 that can partition the network: :class:`BlackholeProxy`.

``frpc -> BlackholeProxy -> frps``. While :meth:`~BlackholeProxy.partition` is in force nothing
crosses it either way and nothing is closed: no FIN, no RST, exactly what the endpoints see of a
cut cable or a firewall that drops packets. Bytes already sent stay in the kernel's buffers (as
TCP would retransmit them) and new connections are accepted but left hanging (as a dropped SYN is
retried). :meth:`~BlackholeProxy.heal` lets everything through again: held connections are
connected on, and a side that gave up meanwhile is seen closing then, as TCP would answer a
retransmission to a closed socket. It needs neither root nor network namespaces, so the partition
tests run on any machine.
"""

from __future__ import annotations

import asyncio

from .ports import LOCALHOST
from .services import _LoopThread, _Service

__all__ = ["BlackholeProxy"]

CHUNK = 65536


class BlackholeProxy(_Service):
    """Forwards 127.0.0.1:``port`` (free by default) to ``target_host:target_port``."""

    def __init__(self, target_port: int, *, target_host: str = LOCALHOST, port: int = 0,
                 delay: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.delay = delay  # seconds every chunk spends in transit, each way (order kept)
        self.port = port
        self.connections = 0  # accepted so far
        self._open: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- control (from the test's thread) --------------------------------------------------------

    def start(self) -> BlackholeProxy:
        async def _start() -> None:
            self._open = asyncio.Event()
            self._open.set()
            self._server = await asyncio.start_server(self._handle, LOCALHOST, self.port)
            self.port = self._server.sockets[0].getsockname()[1]

        _LoopThread.get().call(_start())
        return self

    def partition(self) -> None:
        """Drop everything both ways from now on (no FIN, no RST) until :meth:`heal`."""
        self._set(False)

    def heal(self) -> None:
        self._set(True)

    @property
    def partitioned(self) -> bool:
        return self._open is not None and not self._open.is_set()

    def stop(self) -> None:
        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            for t in list(self._tasks):
                t.cancel()

        _LoopThread.get().call(_stop())

    def _set(self, open_: bool) -> None:
        async def _do() -> None:
            assert self._open is not None
            if open_:
                self._open.set()
            else:
                self._open.clear()

        _LoopThread.get().call(_do())

    # -- the loop thread ------------------------------------------------------------------------

    def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        up_w: asyncio.StreamWriter | None = None
        try:
            await self._open.wait()  # a "SYN" during a partition waits for the heal
            try:
                up_r, up_w = await asyncio.open_connection(*self.target)
            except OSError:
                return  # refused upstream: the client sees a reset
            self._writers.add(up_w)
            await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))
        finally:
            for w in (writer, up_w):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        if self.delay > 0:
            await self._delayed_pump(reader, writer)
            return
        try:
            while True:
                await self._open.wait()
                data = await reader.read(CHUNK)
                await self._open.wait()  # read just before a partition: held, not lost
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            writer.transport.abort()  # a reset on one side is a reset on the other

    async def _delayed_pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Latency, pipelined: each chunk is written ``delay`` after it was read."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        out = loop.create_task(deliver())
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    break
            await out
        except OSError:
            writer.transport.abort()
        finally:
            out.cancel()
