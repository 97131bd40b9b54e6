"""Proxies and transports in process: a proxy name taken twice, an empty pool, a client that
never sends work connections, TLS forced, the 0x17 first byte (frp §1.2, §5.3, §5.5)."""

from __future__ import annotations

import asyncio

import pytest
from support.inproc import DEADLINE, InProc, idle_work_conns, until
from support.procs import TEST_STRING, free_port, tcp_proxy

from aiofrp.client.proxies.wrapper import ProxyPhase
from aiofrp.proto import msg as m


async def test_proxy_name_taken_by_another_client(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    server = await inproc.start_server()
    port = free_port()
    first = inproc.start_client(server, tcp_proxy("tcp", echo.port, port))
    await inproc.wait_proxies(first, "tcp", server=server)
    second = inproc.start_client(server, tcp_proxy("tcp", echo.port, free_port()))
    pw = second.proxies["tcp"]
    await until(lambda: pw.phase == ProxyPhase.START_ERROR, "the second registration refused")
    assert pw.err == "proxy [tcp] already exists"
    assert inproc.log.matching(rf"^\[{second.run_id}\] \[tcp\] start error: proxy \[tcp\] already exists$",
                               logger="aiofrp.client")
    assert server.proxies["tcp"].control.run_id == first.run_id
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING


async def test_empty_pool_asks_for_a_work_connection_at_once(inproc: InProc) -> None:
    """A Login with poolCount 0, frpc played by hand: a user connection makes frps ask for a work
    connection, wait for it, send StartWorkConn naming the user, relay, and ask for a refill."""
    server = await inproc.start_server()
    connector = inproc.dial(server)
    control, resp = await inproc.login(server, pool_count=0, connector=connector)
    port = free_port()
    control.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    answer = await control.read_msg(timeout=DEADLINE)
    assert isinstance(answer, m.NewProxyResp) and answer.error == ""
    assert idle_work_conns(server, resp.run_id) == 0

    reader, writer = await inproc.open_user(port)
    writer.write(b"ping")
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.ReqWorkConn)
    work = await inproc.open_conn(connector)
    work.write_msg(m.NewWorkConn(run_id=resp.run_id))
    start = await work.read_msg(timeout=DEADLINE)
    assert isinstance(start, m.StartWorkConn)
    user_addr = writer.get_extra_info("sockname")
    assert (start.proxy_name, start.error) == ("tcp", "")
    assert (start.src_addr, start.src_port, start.dst_addr, start.dst_port) == (*user_addr, "127.0.0.1", port)
    assert await asyncio.wait_for(work.read_exactly(4), DEADLINE) == b"ping"  # the user's bytes follow
    assert work.transport is not None
    work.transport.write(b"pong")
    assert await asyncio.wait_for(reader.readexactly(4), DEADLINE) == b"pong"
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.ReqWorkConn)  # the refill


async def test_user_conn_timeout_when_frpc_sends_no_work_connection(inproc: InProc) -> None:
    """frpc never answers ReqWorkConn: the user's connection is closed after userConnTimeout
    and the proxy keeps serving later users once work connections come."""
    server = await inproc.start_server(userConnTimeout=1)
    control, resp = await inproc.login(server, pool_count=0)
    port = free_port()
    control.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    answer = await control.read_msg(timeout=DEADLINE)
    assert isinstance(answer, m.NewProxyResp) and answer.error == ""

    reader, writer = await inproc.open_user(port)
    writer.write(TEST_STRING)
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.ReqWorkConn)
    try:
        assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    except ConnectionResetError:
        pass
    assert inproc.log.matching(
        rf"^\[{resp.run_id}\] \[tcp\] failed to get work connection: timeout trying to get work connection$")
    assert list(server.controls) == [resp.run_id]


async def test_tls_force_refuses_plain_frpc(inproc: InProc) -> None:
    server = await inproc.start_server(**{"transport.tls.force": True})
    refused = inproc.start_client(server, tls=False, login_fail_exit=True)
    assert await asyncio.wait_for(inproc.client_task(refused), DEADLINE) == 1
    assert inproc.log.matching(r"^connection from 127\.0\.0\.1:\d+ failed: non-TLS connection refused \(transport\.tls\.force\)$")
    assert server.controls == {}
    ok = inproc.start_client(server, tls=True)
    await until(lambda: ok.run_id in server.controls, "a TLS frpc logs in")


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["tcpmux", "no-tcpmux"])
async def test_custom_tls_first_byte(inproc: InProc, tcp_mux: bool) -> None:
    """disableCustomTLSFirstByte = false: frpc sends 0x17 before its ClientHello; frps drops it."""
    echo = await inproc.echo_service()
    server = await inproc.start_server(tcp_mux=tcp_mux)
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), tcp_mux=tcp_mux,
                                 **{"transport.tls.disableCustomTLSFirstByte": False})
    assert client.connector is None
    await inproc.wait_proxies(client, "tcp", server=server)
    assert client.connector is not None and client.connector.first_byte
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING
