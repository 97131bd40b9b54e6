"""The work-connection pool in process: filled to poolCount at login, one taken per user
connection and one asked for at once in its place (docs/connection.md section 5, frp §5.5)."""

from __future__ import annotations

import asyncio

import pytest
from support.inproc import InProc, count_registered_work_conns, idle_work_conns, until
from support.procs import TEST_STRING, free_port, tcp_proxy


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
