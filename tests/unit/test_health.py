"""frpc health checks (frp §5.12): the http probe's keep-alive reuse and status rules, and the
monitor's state machine (starts failed, first success, maxFailed consecutive failures)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiofrp.client.health import HealthCheckFailed, HealthMonitor
from aiofrp.config.base import HTTPHeader
from aiofrp.config.proxy import HealthCheckConfig

pytestmark = pytest.mark.timeout(30)


class TinyHTTP:
    """Counts connections; answers ``status`` per request; ``close_after`` closes after N answers."""

    def __init__(self, status: int = 200, close_after: int = 0, chunked: bool = False, stray: bytes = b"") -> None:
        self.status = status
        self.stray = stray  # sent a moment after a bodiless 204 head (a service that breaks the rule)
        self.close_after = close_after
        self.chunked = chunked
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> TinyHTTP:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                if self.stray:
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)
                    writer.write(self.stray)
                elif self.chunked:
                    body = b"5\r\nhello\r\n0\r\n\r\n"
                    writer.write(b"HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n" % self.status + body)
                else:
                    writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % self.status)
                await writer.drain()
                answered += 1
                if self.close_after and answered >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def cfg(kind: str = "http", **kw: Any) -> HealthCheckConfig:
    base: dict[str, Any] = {"type": kind, "interval_seconds": 1, "timeout_seconds": 1, "max_failed": 1,
                            "path": "/hc", "http_headers": [HTTPHeader(name="X-Check", value="yes")]}
    return HealthCheckConfig(**{**base, **kw})


def monitor(port: int, **kw: Any) -> tuple[HealthMonitor, list[str]]:
    events: list[str] = []
    m = HealthMonitor("p", cfg(**kw), "127.0.0.1", port, lambda: events.append("ok"), lambda: events.append("failed"))
    return m, events


def test_http_probe_reuses_its_connection():
    async def main() -> None:
        srv = await TinyHTTP().start()
        m, _ = monitor(srv.port)
        for _ in range(4):
            await m.check()
        assert srv.connections == 1 and len(srv.requests) == 4
        head = srv.requests[0].decode()
        assert head.startswith("GET /hc HTTP/1.1\r\n") and f"Host: 127.0.0.1:{srv.port}\r\n" in head
        assert "X-Check: yes\r\n" in head
        m.stop()
        srv.stop()

    asyncio.run(main())


def test_http_probe_reopens_a_connection_closed_by_the_service():
    async def main() -> None:
        srv = await TinyHTTP(close_after=1, chunked=True).start()
        m, _ = monitor(srv.port)
        for _ in range(3):
            await m.check()
            await asyncio.sleep(0.05)  # let the close reach us (a stale idle connection otherwise)
        assert srv.connections == 3
        m.stop()
        srv.stop()

    asyncio.run(main())


def test_http_probe_drops_an_idle_connection_that_got_unsolicited_bytes():
    # a 204 with a body: Go's transport closes the idle connection when the stray bytes come and
    # its next check goes out on a new one (it only logs "Unsolicited response received on idle
    # HTTP channel"); the check must not read the stray bytes as the next response
    async def main() -> None:
        srv = await TinyHTTP(stray=b"oops, a body\r\n").start()
        m, _ = monitor(srv.port)
        for _ in range(3):
            await m.check()
            # until the stray bytes have reached the idle connection
            idle = m._http.idle
            async with asyncio.timeout(10):
                while not any(reader._buffer for reader, _ in idle.values()):
                    await asyncio.sleep(0.01)
        # each check on a new connection, nothing sent on one that had stray bytes
        assert srv.connections == 3 and len(srv.requests) == 3
        m.stop()
        srv.stop()

    asyncio.run(main())


def test_http_probe_wants_2xx():
    async def main() -> None:
        srv = await TinyHTTP(status=503).start()
        m, _ = monitor(srv.port)
        with pytest.raises(HealthCheckFailed, match=r"StatusCode is \[503\] not 2xx"):
            await m.check()
        m.stop()
        srv.stop()

    asyncio.run(main())


def test_tcp_check():
    async def main() -> None:
        srv = await TinyHTTP().start()
        m, _ = monitor(srv.port, kind="tcp")
        await m.check()
        srv.stop()
        await srv.server.wait_closed()
        with pytest.raises(OSError):
            await m.check()

    asyncio.run(main())


def test_state_machine(monkeypatch):
    """Starts failed; first success -> ok; failures count only after success; maxFailed consecutive."""

    async def main() -> None:
        m, events = monitor(1, kind="tcp", max_failed=2)
        m.interval = 0.0
        results = iter([False, True, False, True, False, False, False, True])
        seen: list[str] = []
        done = asyncio.get_running_loop().create_future()

        async def fake_check() -> None:
            try:
                ok = next(results)
            except StopIteration:
                if not done.done():
                    done.set_result(None)
                await asyncio.sleep(3600)
                return
            seen.append(str(ok))
            if not ok:
                raise OSError("down")

        m.check = fake_check  # type: ignore[method-assign]
        m.start()
        await asyncio.wait_for(done, 5)
        m.stop()
        # fail (still failed, no event), ok, fail (1 < 2), ok (reset), fail, fail -> failed, fail, ok
        assert events == ["ok", "failed", "ok"]

    asyncio.run(main())
