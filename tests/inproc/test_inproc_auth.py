"""Token auth beyond the Login in process: auth.additionalScopes (HeartBeats, NewWorkConns), and
first messages frps does not serve (frp §3.1, §5.6; Go's pkg/auth/token.go)."""

from __future__ import annotations

import pytest
from support.inproc import DEADLINE, InProc, idle_work_conns, until
from support.procs import TEST_STRING, free_port, tcp_proxy

from aiofrp.proto import msg as m

SCOPES = {"auth.additionalScopes": ["HeartBeats", "NewWorkConns"]}


async def test_scoped_frpc_authenticates_pings_and_work_conns(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    server = await inproc.start_server(tcp_mux=False, **SCOPES)
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), tcp_mux=False,
                                 **SCOPES, **{"transport.heartbeatInterval": 1})
    await inproc.wait_proxies(client, "tcp", server=server)
    await until(lambda: idle_work_conns(server, client.run_id) == 1, "an authenticated work connection pooled")
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING
    await until(lambda: inproc.log.matching(r"receive heartbeat$", logger="aiofrp.server.control"),
                "an authenticated ping")
    assert not inproc.log.matching("invalid|doesn't match")


async def test_unauthenticated_ping_gets_a_pong_with_error(inproc: InProc) -> None:
    server = await inproc.start_server(**SCOPES)
    control, _ = await inproc.login(server)
    control.write_msg(m.Ping())
    pong = await control.read_msg(timeout=DEADLINE)
    assert isinstance(pong, m.Pong) and pong.error == "token in heartbeat doesn't match token from configuration"
    assert inproc.log.matching(r"^\[\w+\] received invalid ping: token in heartbeat doesn't match", logger="aiofrp.server")


async def test_unauthenticated_work_conn_is_refused(inproc: InProc) -> None:
    server = await inproc.start_server(**SCOPES)
    connector = inproc.dial(server)
    _, resp = await inproc.login(server, connector=connector, pool_count=1)
    work = await inproc.open_conn(connector)
    work.write_msg(m.NewWorkConn(run_id=resp.run_id))
    start = await work.read_msg(timeout=DEADLINE)
    assert isinstance(start, m.StartWorkConn)
    assert start.error == "token in NewWorkConn doesn't match token from configuration"
    with pytest.raises((EOFError, ConnectionError)):
        await work.read_msg(timeout=DEADLINE)
    assert idle_work_conns(server, resp.run_id) == 0


async def test_first_message_frps_does_not_serve(inproc: InProc) -> None:
    server = await inproc.start_server()
    conn = await inproc.open_conn(inproc.dial(server))
    conn.write_msg(m.Ping())
    with pytest.raises((EOFError, ConnectionError)):
        await conn.read_msg(timeout=DEADLINE)
    assert inproc.log.matching(r"^connection from 127\.0\.0\.1:\d+ failed: unexpected first message Ping$")


async def test_visitor_conn_for_unknown_proxy(inproc: InProc) -> None:
    server = await inproc.start_server()
    conn = await inproc.open_conn(inproc.dial(server))
    conn.write_msg(m.NewVisitorConn(proxy_name="nothing"))
    resp = await conn.read_msg(timeout=DEADLINE)
    assert isinstance(resp, m.NewVisitorConnResp)
    assert resp.error == "custom listener for [nothing] doesn't exist"
    with pytest.raises((EOFError, ConnectionError)):
        await conn.read_msg(timeout=DEADLINE)
