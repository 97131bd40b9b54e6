"""The reverse-proxy plugins' upstream pool (:mod:`aiofrp.client.plugins.http.upstream`) against
a scripted HTTP/1.1 server on 127.0.0.1: framings (Content-Length, chunked split anywhere, until
close, 1xx skipped), keep-alive reuse, the retry when a pooled connection was closed, request
bodies (length and chunked), a refused dial and an answer cut mid-body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from multidict import CIMultiDict

from aiofrp.client.plugins.http.upstream import Pool, UpstreamError, UpstreamResponse

pytestmark = pytest.mark.timeout(30)

Answer = Callable[[bytes], list[bytes] | None]  # request bytes -> pieces to send (None: close)


class Server:
    """Answers each complete request with ``answer(request)``, sent in the given pieces."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                req = head
                if b"content-length: " in head.lower():
                    n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    req += await reader.readexactly(n)
                elif b"transfer-encoding: chunked" in head.lower():
                    while True:
                        line = await reader.readuntil(b"\r\n")
                        req += line
                        size = int(line.strip(), 16)
                        req += await reader.readexactly(size + 2)
                        if not size:
                            break
                self.requests.append(req)
                pieces = self.answer(req)
                if pieces is None:
                    break
                for p in pieces:
                    writer.write(p)
                    await writer.drain()
                    await asyncio.sleep(0)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def with_server(answer: Answer, fn: Callable[[Pool, Server], object]) -> None:
    srv = Server(answer)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool("127.0.0.1", port, None, None, 5.0)
    try:
        await fn(pool, srv)  # type: ignore[misc]
    finally:
        pool.close()
        server.close()


async def body_of(resp: UpstreamResponse) -> bytes:
    out = b"".join([c async for c in resp.iter_any()])
    resp.release()
    return out


def headers(**kw: str) -> CIMultiDict[str]:
    h: CIMultiDict[str] = CIMultiDict(Host="example")
    for k, v in kw.items():
        h[k.replace("_", "-")] = v
    return h


def test_framings_and_keep_alive() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n"
    answers = {
        b"/len": [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhel", b"lo"],
        b"/chunked": [chunked[i:i + 3] for i in range(0, len(chunked), 3)],  # split everywhere
        b"/empty": [b"HTTP/1.1 204 No Content\r\n\r\n"],
    }

    def answer(req: bytes) -> list[bytes]:
        return answers[req.split(b" ")[1]]

    async def run(pool: Pool, srv: Server) -> None:
        for path, want in ((b"/len", b"hello"), (b"/chunked", b"hello world"), (b"/empty", b""), (b"/len", b"hello")):
            resp = await pool.request("GET", path.decode(), headers(), None)
            assert await body_of(resp) == want
        assert srv.connections == 1  # every answer ended cleanly: one connection reused
        assert srv.requests[0] == b"GET /len HTTP/1.1\r\nHost: example\r\n\r\n"

    asyncio.run(with_server(answer, run))


def test_until_close_and_connection_close_are_not_reused() -> None:
    def answer(req: bytes) -> list[bytes] | None:
        if b"/close" in req:
            return [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]
        return [b"HTTP/1.1 200 OK\r\n\r\nuntil close", b""]

    async def run(pool: Pool, srv: Server) -> None:
        resp = await pool.request("GET", "/close", headers(), None)
        assert await body_of(resp) == b"ok"
        resp = await pool.request("GET", "/eof", headers(), None)
        got = b""
        srv.writers[-1].close()  # the server ends the body by closing
        async for c in resp.iter_any():
            got += c
        resp.release()
        assert got == b"until close"
        assert srv.connections == 2

    asyncio.run(with_server(answer, run))


def test_request_bodies_and_retry_after_idle_close() -> None:
    def answer(req: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cde"

    async def run(pool: Pool, srv: Server) -> None:
        await body_of(await pool.request("POST", "/none", headers(), None))
        await body_of(await pool.request("PUT", "/chunked", headers(), chunks()))
        await body_of(await pool.request("POST", "/len", headers(Content_Length="5"), chunks()))
        assert srv.requests[0].endswith(b"Content-Length: 0\r\n\r\n")
        assert srv.requests[1].endswith(b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")
        assert srv.requests[2].endswith(b"Content-Length: 5\r\n\r\nabcde")
        for w in srv.writers:  # the server drops its idle connection as the next request goes out:
            w.close()  # either the pool sees it first or the request is sent again on a new one
        await body_of(await pool.request("GET", "/again", headers(), None))
        assert srv.requests[-1].startswith(b"GET /again ")

    asyncio.run(with_server(answer, run))


def test_refused_and_cut() -> None:
    async def refused() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        with pytest.raises(UpstreamError, match=rf"dial tcp 127\.0\.0\.1:{port}: connect: "):
            await Pool("127.0.0.1", port, None, None, 5.0).request("GET", "/", headers(), None)

    asyncio.run(refused())

    def answer(req: bytes) -> list[bytes] | None:
        if b"/junk" in req:
            return [b"SSH-2.0-OpenSSH\r\n\r\n"]
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"]

    async def run(pool: Pool, srv: Server) -> None:
        with pytest.raises(UpstreamError, match="malformed"):
            await pool.request("GET", "/junk", headers(), None)
        resp = await pool.request("GET", "/cut", headers(), None)
        assert await resp.readany() == b"partial"
        srv.writers[-1].close()
        with pytest.raises(UpstreamError):
            while await resp.readany():
                pass
        resp.release()

    asyncio.run(with_server(answer, run))


def test_idle_connections_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiofrp.client.plugins.http import upstream

    monkeypatch.setattr(upstream, "IDLE_TIMEOUT", 0.3)

    def answer(req: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]

    async def run(pool: Pool, srv: Server) -> None:
        assert await body_of(await pool.request("GET", "/", headers(), None)) == b"ok"
        assert len(pool.idle) == 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while pool.idle and loop.time() < deadline:  # the sweeper closes it after IDLE_TIMEOUT
            await asyncio.sleep(0.05)
        assert not pool.idle
        assert await body_of(await pool.request("GET", "/", headers(), None)) == b"ok"
        assert srv.connections == 2

    asyncio.run(with_server(answer, run))


def test_request_body_breaking_off_fails_that_request() -> None:
    def answer(req: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]

    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise ConnectionResetError("browser went away")

    async def run(pool: Pool, srv: Server) -> None:
        with pytest.raises(UpstreamError):
            await pool.request("POST", "/up", headers(), broken())
        assert await body_of(await pool.request("GET", "/next", headers(), None)) == b""

    asyncio.run(with_server(answer, run))
