"""Heartbeats in process (tcpMux = false, where frp turns them on): the side whose peer goes
quiet times out, closes the control, and frpc logs in again with the same run id (frp §5.6;
Go's server/control.go heartbeatWorker, client/control.go heartbeatWorker)."""

from __future__ import annotations

from typing import Any

import pytest
from support.inproc import InProc, until
from support.procs import TEST_STRING, free_port, tcp_proxy

from aiofrp.proto import msg as m

pytestmark = pytest.mark.loop_timeout(20)


async def test_frps_times_out_a_silent_frpc(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    server = await inproc.start_server(tcp_mux=False, **{"transport.heartbeatTimeout": 2})
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), tcp_mux=False,
                                 **{"transport.heartbeatInterval": -1, "transport.heartbeatTimeout": -1})
    await inproc.wait_proxies(client, "tcp", server=server)
    run_id = client.run_id
    first = server.controls[run_id]

    await until(lambda: first.finished.done(), "frps closed the silent control", timeout=8)
    assert inproc.log.matching(rf"^\[{run_id}\] heartbeat timeout$", logger="aiofrp.server.control")
    # frpc learns it from the closed connection, not from a timeout of its own, and comes back
    await until(lambda: inproc.log.matching(rf"^\[{run_id}\] control connection closed, trying to reconnect",
                                            logger="aiofrp.client"), "frpc saw the control close")
    await until(lambda: run_id in server.controls and server.controls[run_id] is not first,
                "frpc logged in again")
    assert client.run_id == run_id
    assert not inproc.log.matching("heartbeat timeout", logger="aiofrp.client")
    await inproc.wait_proxies(client, "tcp", server=server)
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING


async def test_frpc_times_out_a_server_that_stops_answering(inproc: InProc, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await inproc.start_server(tcp_mux=False)
    client = inproc.start_client(server, tcp_mux=False,
                                 **{"transport.heartbeatInterval": 1, "transport.heartbeatTimeout": 2})
    await until(lambda: client.run_id in server.controls, "frpc logged in")
    run_id = client.run_id
    first = server.controls[run_id]
    write = first.conn.write_msg

    def no_pong(msg: Any) -> None:  # frps reads the Pings but its Pongs get lost
        if not isinstance(msg, m.Pong):
            write(msg)

    monkeypatch.setattr(first.conn, "write_msg", no_pong)
    await until(lambda: inproc.log.matching(rf"^\[{run_id}\] heartbeat timeout$", logger="aiofrp.client.control"),
                "frpc's heartbeat timeout", timeout=8)
    # frpc closed the control: frps sees it end (no timeout of its own) and frpc logs in again
    await until(lambda: first.finished.done(), "frps saw the control close")
    assert inproc.log.matching(rf"^\[{run_id}\] client exit success$", logger="aiofrp.server.control")
    assert not inproc.log.matching("heartbeat timeout", logger="aiofrp.server")
    await until(lambda: run_id in server.controls and server.controls[run_id] is not first,
                "frpc logged in again")
