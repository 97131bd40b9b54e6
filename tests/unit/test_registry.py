"""server/workers/registry.py: the book of names, LocalRegistry (frps --workers 1) and
RemoteRegistry against the supervisor's RegistryServer over a real unix socket."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiofrp.server.workers.registry import Book, LocalRegistry, RegistryServer, RemoteRegistry


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(10):
            return await coro
    return asyncio.run(main())


def test_book_claim_release_drop() -> None:
    evicted: list[tuple[int, str, str]] = []

    async def evict(worker: int, kind: str, key: str) -> None:
        evicted.append((worker, kind, key))

    async def body() -> None:
        book = Book(evict)
        a = await book.claim(1, "proxy", "ssh", False)
        assert a and await book.claim(2, "proxy", "ssh", False) == 0
        assert book.owner("proxy", "ssh") == 1
        book.release(2, "proxy", "ssh", a)  # not the holder: ignored
        assert book.owner("proxy", "ssh") == 1
        book.release(1, "proxy", "ssh", a)
        assert book.owner("proxy", "ssh") is None
        # evict: the holder is asked first, then the claimant holds it; a stale release is ignored
        r1 = await book.claim(1, "runid", "abc", True)
        r2 = await book.claim(2, "runid", "abc", True)
        assert evicted == [(1, "runid", "abc")] and book.owner("runid", "abc") == 2
        book.release(1, "runid", "abc", r1)
        assert book.owner("runid", "abc") == 2 and r2
        await book.claim(2, "group", "tcp:g", False)
        assert book.drop(2) == 2 and len(book) == 0
        with pytest.raises(ValueError, match="unknown registry kind"):
            await book.claim(1, "nope", "x", False)

    run(body())


def test_local_registry_evicts_through_the_server() -> None:
    seen: list[tuple[str, str]] = []

    async def evict(kind: str, key: str) -> None:
        seen.append((kind, key))

    async def body() -> None:
        reg = LocalRegistry(evict)
        lease = await reg.claim("runid", "r1", evict=True)
        assert lease is not None and seen == []
        again = await reg.claim("runid", "r1", evict=True)
        assert again is not None and seen == [("runid", "r1")]
        reg.release(lease)  # the old control's release after being replaced: no effect
        assert await reg.owner("runid", "r1") == 0
        assert await reg.claim("proxy", "p") is not None and await reg.claim("proxy", "p") is None

    run(body())


async def _workers(path: str, n: int, evict: Callable[[int, str, str], Awaitable[None]]) -> list[RemoteRegistry]:
    regs = []
    for i in range(1, n + 1):
        async def ev(kind: str, key: str, i: int = i) -> None:
            await evict(i, kind, key)
        reg = RemoteRegistry(path, i, ev)
        await reg.connect()
        regs.append(reg)
    return regs


def test_remote_registry_across_workers() -> None:
    evicted: list[tuple[int, str, str]] = []
    ready: list[int] = []

    async def evict(worker: int, kind: str, key: str) -> None:
        evicted.append((worker, kind, key))

    async def body(path: str) -> None:
        server = RegistryServer(path, ready.append)
        await server.start()
        w1, w2 = await _workers(path, 2, evict)
        w1.ready()
        w2.ready()
        lease = await w1.claim("proxy", "web")
        assert lease is not None
        assert await w2.claim("proxy", "web") is None
        assert await w2.owner("proxy", "web") == 1
        # a client that logs in again at worker 2 takes its run id from worker 1
        assert await w1.claim("runid", "r", evict=True) is not None
        assert await w2.claim("runid", "r", evict=True) is not None
        assert evicted == [(1, "runid", "r")]
        assert await w1.owner("runid", "r") == 2
        w1.release(lease)
        assert await w2.claim("proxy", "web") is not None
        assert sorted(ready) == [1, 2]
        # a worker that dies: its names are free again
        await w1.claim("proxy", "gone-with-w1")
        await w1.close()
        async with asyncio.timeout(5):
            while await w2.owner("proxy", "gone-with-w1") is not None:
                await asyncio.sleep(0.01)
        # the supervisor gone: calls fail with ConnectionError, not hang
        await server.close()
        assert w2.lost is not None
        await w2.lost
        with pytest.raises(ConnectionError):
            await w2.claim("proxy", "x")
        await w2.close()

    with tempfile.TemporaryDirectory() as d:
        run(body(os.path.join(d, "registry.sock")))


def test_find_asks_the_other_workers_routers() -> None:
    async def evict(kind: str, key: str) -> None:
        return None

    async def body(path: str) -> None:
        server = RegistryServer(path)
        await server.start()
        asked: list[dict[str, Any]] = []

        async def w1_routes(frame: dict[str, Any]) -> Any:
            asked.append(frame)
            return frame["kind"] == "http" and frame["host"] == "a.example.com"

        async def no_routes(frame: dict[str, Any]) -> Any:
            return False

        w1 = RemoteRegistry(path, 1, evict, w1_routes)
        w2 = RemoteRegistry(path, 2, evict, no_routes)
        w3 = RemoteRegistry(path, 3, evict, no_routes)
        for w in (w1, w2, w3):
            await w.connect()
        await w1.owner("proxy", "sync")  # every hello is in before the questions
        await w2.owner("proxy", "sync")
        await w3.owner("proxy", "sync")
        assert await w2.find("http", "a.example.com", "/x", "") == 1
        assert await w2.find("https", "a.example.com", "", "") is None
        assert await w1.find("http", "a.example.com", "/", "") is None  # the asker is not asked
        assert asked[0] == {**asked[0], "what": "route", "kind": "http", "host": "a.example.com", "path": "/x"}
        assert await LocalRegistry(evict).find("http", "a.example.com", "/", "") is None
        for w in (w1, w2, w3):
            await w.close()
        await server.close()

    with tempfile.TemporaryDirectory() as d:
        run(body(os.path.join(d, "registry.sock")))


def test_book_tcp_groups_shared_by_workers() -> None:
    """join_group: the first worker fixes the port and key; others with the same join (and get the
    port to listen on), another port or key is refused in Go's order, another group cannot take the
    port; the group lasts while a worker holds a lease."""

    async def evict(worker: int, kind: str, key: str) -> None:
        return None

    book = Book(evict)
    a, err, port = book.join_group(1, "g", "0", "k1", 41000)  # remotePort 0: worker 1 bound 41000
    assert a and err == "" and port == 41000
    b, err, port = book.join_group(2, "g", "0", "k1", 42000)  # worker 2 bound another: listen on 41000
    assert b and port == 41000
    assert book.join_group(3, "g", "6000", "other", 6000) == (0, "params", 0)  # the port first, as Go
    assert book.join_group(3, "g", "0", "other", 43000) == (0, "auth", 0)
    assert book.join_group(3, "h", "41000", "k2", 41000) == (0, "taken", 0)  # another group's port
    book.release(1, "tcpgroup", "g", b)  # not worker 1's lease: ignored
    assert len(book) == 2
    book.release(1, "tcpgroup", "g", a)
    assert book.join_group(3, "g", "0", "other", 43000) == (0, "auth", 0)  # worker 2 still holds it
    assert book.drop(2) == 1 and len(book) == 0
    c, err, port = book.join_group(3, "g", "0", "other", 43000)  # gone with its last worker: anew
    assert c and port == 43000
    assert book.join_group(1, "h", "41000", "k2", 41000)[0]  # its old port is free again
    # no port (vhost groups and routes): any number of names with bound 0
    assert book.join_group(1, "route:http:a.com||", "", "proxy:web", 0)[0]
    assert book.join_group(2, "route:http:b.com||", "", "proxy:web2", 0)[0]
    assert book.join_group(2, "route:http:a.com||", "", "proxy:web2", 0) == (0, "auth", 0)


def test_remote_registry_join_group() -> None:
    async def evict(worker: int, kind: str, key: str) -> None:
        return None

    async def body(path: str) -> None:
        server = RegistryServer(path)
        await server.start()
        w1, w2 = await _workers(path, 2, evict)
        lease, err, port = await w1.join_group("g", "6000", "d", 6000)
        assert lease is not None and lease.kind == "tcpgroup" and (err, port) == ("", 6000)
        assert (await w2.join_group("g", "6000", "x", 6000))[:2] == (None, "auth")
        second, _, port = await w2.join_group("g", "6000", "d", 6000)
        assert second is not None and port == 6000
        w1.release(lease)
        w2.release(second)
        await w2.owner("proxy", "sync")  # w2's release is in (each socket keeps its order)
        assert (await w1.join_group("g", "6000", "x", 6000))[0] is not None  # the group was gone
        local = LocalRegistry(lambda kind, key: evict(0, kind, key))
        assert (await local.join_group("g", "0", "d", 5000))[2] == 5000
        for w in (w1, w2):
            await w.close()
        await server.close()

    with tempfile.TemporaryDirectory() as d:
        run(body(os.path.join(d, "registry.sock")))
