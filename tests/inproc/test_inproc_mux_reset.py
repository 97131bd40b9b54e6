"""A yamux stream reset in the middle of a relay ends that user connection only: the session,
the control and the other streams keep going (frp §1.4; hashicorp/yamux RST semantics)."""

from __future__ import annotations

import asyncio

import pytest
from support.inproc import DEADLINE, InProc, mux_session_of, relay_streams, relayed_to, until
from support.procs import free_port, tcp_proxy

from aiofrp.net.mux import MuxStream


async def ended(reader: asyncio.StreamReader) -> bool:
    """Read until the connection ends (EOF or reset); True if it did within the deadline."""
    try:
        async with asyncio.timeout(DEADLINE):
            while await reader.read(1 << 16):
                pass
    except ConnectionError:
        pass
    return True


@pytest.mark.parametrize("side", ["frpc", "frps"])
async def test_stream_reset_mid_relay_kills_only_that_connection(inproc: InProc, side: str) -> None:
    echo = await inproc.echo_service()
    server = await inproc.start_server()
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), **{"transport.poolCount": 2})
    await inproc.wait_proxies(client, "tcp", server=server)
    run_id = client.run_id
    control = server.controls[run_id]
    assert client.control is not None
    session = mux_session_of(client.control.conn if side == "frpc" else control.conn)

    users = {}
    for name in (b"A", b"B", b"C"):
        r, w = await inproc.open_user(port)
        assert await inproc.echo(r, w, name * 10) == name * 10
        users[name] = (r, w)
    a_reader, a_writer = users[b"A"]
    a_local = echo.conn_starting_with(b"A")
    assert a_local is not None

    def a_stream() -> MuxStream:
        if side == "frpc":  # the stream relayed to frpc's socket toward the local service
            match = [st for st in relay_streams(session) if relayed_to(st).get_extra_info("sockname") == a_local.peer]
        else:  # the stream relayed to the user's socket on frps
            user = a_writer.get_extra_info("sockname")
            match = [st for st in relay_streams(session) if relayed_to(st).get_extra_info("peername") == user]
        assert len(match) == 1, match
        return match[0]

    stream = a_stream()
    # mid-relay: A is busy sending a large payload through the stream when it is reset
    big = b"A" * (8 << 20)
    a_writer.write(big)
    before = a_local.received
    await until(lambda: a_local.received > before, "A's bytes flowing")
    stream.abort()  # RST to the peer

    assert await ended(a_reader)
    await until(lambda: a_local not in echo.live, "A's local connection closed by frpc")
    assert a_local.received < 10 + len(big)

    # the others on the same session are untouched and keep echoing
    for _ in range(3):
        for name in (b"B", b"C"):
            r, w = users[name]
            assert await inproc.echo(r, w, name * 1000) == name * 1000
    assert await inproc.roundtrip(port, b"D" * 100) == b"D" * 100
    assert not session.is_closed
    assert server.controls[run_id] is control and client.run_id == run_id
    assert len(inproc.log.matching("login to server success")) == 1
