"""The work-connection pool in process: filled to poolCount at login, one taken per user
connection and one asked for at once in its place (docs/connection.md section 5, frp §5.5)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from support.configs import block
from support.inproc import DEADLINE, InProc, count_registered_work_conns, idle_work_conns, until
from support.procs import TEST_STRING, free_port, tcp_proxy

from aiofrp.client.control import Control as ClientControl
from aiofrp.proto import msg as m
from aiofrp.server.proxies.http import HTTPProxy
from aiofrp.server.vhost.http_upstream import MAX_IDLE


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["tcpmux", "no-tcpmux"])
async def test_pool_is_filled_taken_and_refilled(inproc: InProc, monkeypatch: pytest.MonkeyPatch,
                                                 tcp_mux: bool) -> None:
    registered = count_registered_work_conns(monkeypatch)
    echo = await inproc.echo_service()
    server = await inproc.start_server(tcp_mux=tcp_mux)
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), tcp_mux=tcp_mux,
                                 **{"transport.poolCount": 3})
    await inproc.wait_proxies(client, "tcp", server=server)
    run_id = client.run_id
    await until(lambda: idle_work_conns(server, run_id) == 3, "pool filled to poolCount")
    assert len(registered) == 3

    reader, writer = await inproc.open_user(port)
    assert await inproc.echo(reader, writer, TEST_STRING) == TEST_STRING
    await until(lambda: len(registered) == 4 and idle_work_conns(server, run_id) == 3,
                "one refill after one user connection")
    # three more users at once: each takes a pooled connection (never an empty pool, so exactly
    # one ReqWorkConn each) and the pool is back at three
    users = [await inproc.open_user(port) for _ in range(3)]
    for i, (r, w) in enumerate(users):
        payload = TEST_STRING + bytes([i])
        assert await inproc.echo(r, w, payload) == payload
    await until(lambda: len(registered) == 7 and idle_work_conns(server, run_id) == 3,
                "three refills after three user connections")
    assert echo.accepted == 4
    # the first user's relay still works after all that
    assert await inproc.echo(reader, writer, b"again") == b"again"


async def test_pool_count_is_capped_by_max_pool_count(inproc: InProc, monkeypatch: pytest.MonkeyPatch) -> None:
    registered = count_registered_work_conns(monkeypatch)
    echo = await inproc.echo_service()
    server = await inproc.start_server(**{"transport.maxPoolCount": 2})
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), **{"transport.poolCount": 8})
    await inproc.wait_proxies(client, "tcp", server=server)
    await until(lambda: idle_work_conns(server, client.run_id) == 2, "pool filled to maxPoolCount")
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING
    await until(lambda: len(registered) == 3 and idle_work_conns(server, client.run_id) == 2, "refilled")


async def test_a_burst_refills_ahead_but_never_beyond_the_pool(
        inproc: InProc, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many users waiting at once on an empty pool: each asks for a connection and each take asks
    for a refill (as Go), so spares are ready for the next burst, but never more than fit in the
    pool (poolCount + 10): frps discards none (Go dials about twice the users and discards the
    surplus)."""
    registered = count_registered_work_conns(monkeypatch)
    gate = asyncio.Event()  # frpc answers no ReqWorkConn until every user waits
    answer = ClientControl._new_work_conn

    async def gated(self: ClientControl) -> None:
        await gate.wait()
        await answer(self)

    echo = await inproc.echo_service()
    server = await inproc.start_server(tcp_mux=False)
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), tcp_mux=False)
    await inproc.wait_proxies(client, "tcp", server=server)
    run_id = client.run_id
    await until(lambda: idle_work_conns(server, run_id) == 1, "pool filled to poolCount")
    monkeypatch.setattr(ClientControl, "_new_work_conn", gated)
    control = server.controls[run_id]
    users = 30
    conns = await asyncio.gather(*(inproc.open_user(port) for _ in range(users)))
    for i, (_, w) in enumerate(conns):
        w.write(TEST_STRING + bytes([i]))
    await until(lambda: control._waiting == users - 1, "all but the first user wait")
    assert len(control._asked) == users  # one refill for the first, one ask per waiting user
    gate.set()
    answers = [await asyncio.wait_for(r.readexactly(len(TEST_STRING) + 1), 10) for r, _ in conns]
    assert answers == [TEST_STRING + bytes([i]) for i in range(users)]
    await until(lambda: not control._asked, "every ReqWorkConn answered")
    pooled = idle_work_conns(server, run_id)
    assert pooled == 1 + 10  # spares for the next burst, as many as the pool holds
    assert len(registered) == users + pooled  # none dialled in vain
    assert echo.accepted == users
    # a spare serves the next user at once and is replaced while there is room
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING
    await until(lambda: not control._asked and idle_work_conns(server, run_id) == pooled, "refilled")
    assert len(registered) == users + 1 + pooled


HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def http_service() -> asyncio.Server:
    """A keep-alive HTTP/1.1 service answering every GET with 200 "ok"."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(HTTP_OK)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_http_vhost_keep_alive_burst_reuses_work_conns_and_closes_them_with_the_proxy(
        inproc: InProc, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw mode (no tcpMux), several keep-alive clients at once: every work connection frpc dials
    serves requests or waits idle (none is discarded), idle ones are bounded, and closing the
    proxy closes them all."""
    registered = count_registered_work_conns(monkeypatch)
    backend = await http_service()
    backend_port = backend.sockets[0].getsockname()[1]
    vhost_port = free_port()
    server = await inproc.start_server(tcp_mux=False, vhostHTTPPort=vhost_port)
    proxy_block = block("proxies", name="web", type="http", localIP="127.0.0.1", localPort=backend_port,
                        customDomains=["bench.local"])
    client = inproc.start_client(server, proxy_block, tcp_mux=False)
    try:
        await inproc.wait_proxies(client, "web", server=server)
        run_id = client.run_id

        async def keep_alive_client(n: int) -> list[bytes]:
            reader, writer = await inproc.open_user(vhost_port)
            got = []
            for _ in range(n):
                writer.write(b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n")
                got.append(await asyncio.wait_for(_read_response(reader), 10))
            writer.close()
            return got

        results = await asyncio.gather(*(keep_alive_client(5) for _ in range(8)))
        assert all(status == b"200" for r in results for status in r)
        proxy = server.proxies["web"]
        assert isinstance(proxy, HTTPProxy)
        control = server.controls[run_id]
        await until(lambda: not control._asked and len(proxy.pool.idle) == len(proxy.upstreams),
                    "all work connections arrived and idle")
        # none discarded: each one dialled serves as an upstream or waits in the control's pool
        assert len(registered) == len(proxy.upstreams) + idle_work_conns(server, run_id)
        assert len(proxy.upstreams) <= MAX_IDLE
        ups = list(proxy.upstreams)
        control.close_proxy("web")
        assert proxy.pool.idle == [] and not proxy.pool.waiters
        assert all(up.transport.is_closing() for up in ups)
    finally:
        backend.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status

class _FakeWorkConn:
    alive = True

    def close(self) -> None:
        self.alive = False


async def test_a_burst_of_work_conns_reaches_every_waiting_user(inproc: InProc, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 users wait on an empty pool (cap poolCount + 10 = 10) and 40 work connections arrive
    in one burst: each user gets one, as with Go's channel. (An asyncio.Queue of maxsize 10 counted
    the connections handed to woken users until they ran, discarded 30 of the burst, and those
    users timed out; the 10,000-connection soak hit it.)"""
    echo = await inproc.echo_service()
    server = await inproc.start_server()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, free_port()))
    await inproc.wait_proxies(client, "tcp", server=server)
    control = server.controls[client.run_id]
    monkeypatch.setattr(control.conn, "write_msg", lambda _msg: None)  # no real work conns join in
    # ... once those frpc is still answering (asked for before the patch) have arrived
    await until(lambda: not control._asked, "the work connections asked for so far arrived")
    pooled = [await control.get_work_conn() for _ in range(control._pool.qsize())]  # empty the pool
    assert control._pool.qsize() == 0, pooled
    users = [asyncio.ensure_future(control.get_work_conn()) for _ in range(40)]
    await until(lambda: len(control._pool._getters) == 40, "40 users waiting")  # type: ignore[attr-defined]
    burst = [_FakeWorkConn() for _ in range(40)]
    for conn in burst:  # one read's worth: no loop iteration in between
        control.register_work_conn(conn)  # type: ignore[arg-type]
    got = await asyncio.wait_for(asyncio.gather(*users), 5)
    assert sorted(map(id, got)) == sorted(map(id, burst))
    assert all(c.alive for c in burst)


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["tcpmux", "no-tcpmux"])
async def test_a_work_conn_in_one_read_is_pooled_without_a_task_and_one_in_pieces_through_one(
        inproc: InProc, monkeypatch: pytest.MonkeyPatch, tcp_mux: bool) -> None:
    """A NewWorkConn that came in one read (on a logged-in client's new stream with its SYN, as
    frpc writes both at once; or as a new connection's first bytes without tcpMux) is pooled from
    data_received; a first message in pieces, or one that is not a NewWorkConn, takes the task
    (Server.handle_conn) as before."""
    from aiofrp.server import service

    registered = count_registered_work_conns(monkeypatch)
    tasks: list[object] = []
    original = service.Server.handle_conn

    def handle_conn(self: service.Server, conn: service._FirstConn, first: m.Message | None = None) -> Any:
        tasks.append(first)
        return original(self, conn, first)

    monkeypatch.setattr(service.Server, "handle_conn", handle_conn)
    received: list[int] = []
    original_data = service._FirstConn.data_received

    def data_received(self: service._FirstConn, data: bytes) -> None:
        received.append(len(data))
        original_data(self, data)

    monkeypatch.setattr(service._FirstConn, "data_received", data_received)
    server = await inproc.start_server(tcp_mux=tcp_mux)
    connector = inproc.dial(server, tcp_mux=tcp_mux)
    _, resp = await inproc.login(server, connector=connector)
    run_id = resp.run_id
    tasks.clear()
    inproc.raw_conns.append(await connector.open(first=m.NewWorkConn(run_id=run_id)))
    await until(lambda: len(registered) == 1, "the work connection pooled")
    assert tasks == [] and idle_work_conns(server, run_id) == 1

    work = await inproc.open_conn(connector)
    data = m.encode(m.NewWorkConn(run_id=run_id))
    received.clear()  # from here on: what frps received on this connection
    sent = 0
    for piece in (data[:1], data[1:12], data[12:]):
        work.write_raw(piece)
        sent += len(piece)
        await until(partial(_got, received, sent), "frps got the piece")
    await until(lambda: len(registered) == 2, "the second work connection pooled")
    assert tasks == [None] and idle_work_conns(server, run_id) == 2

    visitor = await inproc.open_conn(connector)
    visitor.write_msg(m.NewVisitorConn(proxy_name="nothing"))
    answer = await visitor.read_msg(timeout=DEADLINE)
    assert isinstance(answer, m.NewVisitorConnResp)
    assert answer.error == "custom listener for [nothing] doesn't exist"
    assert [type(t) for t in tasks] == [type(None), m.NewVisitorConn]


def _got(received: list[int], n: int) -> bool:
    return sum(received) >= n
