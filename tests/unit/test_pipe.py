"""net/pipe.py: two in-memory transports with socket-like delivery, pausing, flow control,
half-close and close."""

from __future__ import annotations

import asyncio

from aiofrp.net import pipe as pipe_mod
from aiofrp.net.pipe import pipe


class Recorder(asyncio.Protocol):
    def __init__(self, keep_open: bool = True) -> None:
        self.events: list[object] = []
        self.keep_open = keep_open
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> bool:
        self.events.append("eof")
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    @property
    def data(self) -> bytes:
        return b"".join(e for e in self.events if isinstance(e, bytes))


def joined() -> tuple[asyncio.Transport, Recorder, asyncio.Transport, Recorder]:
    a, b = pipe(asyncio.get_running_loop())
    ra, rb = Recorder(), Recorder()
    for t, r in ((a, ra), (b, rb)):
        t.set_protocol(r)
        r.connection_made(t)
    return a, ra, b, rb


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_delivery_is_later_in_order_and_half_close() -> None:
    async def go() -> None:
        a, ra, b, rb = joined()
        a.write(b"one")
        a.write(memoryview(b"two"))
        assert rb.events == []  # never inside write()
        a.write_eof()
        a.write(b"ignored after eof")
        await turns()
        assert rb.events == [b"one", b"two", "eof"]
        b.write(b"back")  # the other direction still works
        await turns()
        assert ra.data == b"back"
        b.close()
        await turns()
        assert rb.events[-1] == "lost" and ra.events[-2:] == ["eof", "lost"]
        assert a.is_closing() and b.is_closing()

    asyncio.run(go())


def test_pause_holds_data_and_eof() -> None:
    async def go() -> None:
        a, _, b, rb = joined()
        b.pause_reading()
        a.write(b"x")
        a.close()
        await turns()
        assert rb.events == []
        b.resume_reading()
        await turns()
        assert rb.events == [b"x", "eof", "lost"]  # what was written before the close arrives first

    asyncio.run(go())


def test_writer_paused_until_reader_takes_the_bytes(monkeypatch) -> None:
    monkeypatch.setattr(pipe_mod, "HIGH_WATER", 10)
    monkeypatch.setattr(pipe_mod, "LOW_WATER", 4)

    async def go() -> None:
        a, ra, b, rb = joined()
        b.pause_reading()
        a.write(b"123456")
        a.write(b"789012")
        assert ra.events == ["pause"] and a.get_write_buffer_size() == 12
        b.resume_reading()
        await turns()
        assert rb.data == b"123456789012"
        assert ra.events == ["pause", "resume"] and a.get_write_buffer_size() == 0

    asyncio.run(go())


def test_eof_closes_unless_kept_open_and_abort() -> None:
    async def go() -> None:
        a, ra, b, rb = joined()
        rb.keep_open = False
        a.write_eof()
        await turns()
        assert rb.events == ["eof", "lost"] and b.is_closing()
        await turns()
        assert ra.events == ["eof", "lost"]  # b's close reached a
        c, rc, d, rd = joined()
        c.abort()
        d.write(b"to nobody")
        await turns()
        assert rc.events == ["lost"] and rd.events == ["eof", "lost"]

    asyncio.run(go())
