"""frps restarts: frpc notices, logs in again with the run id it had, and its proxies come back
under that run id (frp §3.2; Go's client/service.go keepControllerWorking)."""

from __future__ import annotations

import pytest
from support.inproc import InProc, until
from support.procs import TEST_STRING, free_port, tcp_proxy, udp_proxy

from aiofrp.client.proxies.wrapper import ProxyPhase

pytestmark = pytest.mark.loop_timeout(20)


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["tcpmux", "no-tcpmux"])
async def test_reconnect_with_the_same_run_id_after_frps_restarts(inproc: InProc, tcp_mux: bool) -> None:
    echo = await inproc.echo_service()
    udp_echo = await inproc.udp_echo_service()
    cfg = inproc.server_config(tcp_mux=tcp_mux)
    server = await inproc.start_server(cfg)
    tcp_port, udp_port = free_port(), free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, tcp_port),
                                 udp_proxy("udp", udp_echo.port, udp_port), tcp_mux=tcp_mux)
    await inproc.wait_proxies(client, "tcp", "udp", server=server)
    run_id = client.run_id
    assert await inproc.roundtrip(tcp_port, TEST_STRING) == TEST_STRING

    await inproc.stop_server(server)
    await until(lambda: client.proxies["tcp"].phase == ProxyPhase.NEW, "frpc saw frps go away")
    assert client.run_id == run_id

    again = await inproc.start_server(cfg)  # same bindPort
    await inproc.wait_proxies(client, "tcp", "udp", server=again, timeout=8)
    assert list(again.controls) == [run_id]
    assert again.controls[run_id].login.run_id == run_id  # frpc asked for it in its Login
    assert client.run_id == run_id
    assert len(inproc.log.matching(rf"^\[{run_id}\] login to server success, get run id \[{run_id}\]$")) == 2
    assert await inproc.roundtrip(tcp_port, TEST_STRING) == TEST_STRING
    assert await inproc.udp_roundtrip(udp_port, b"after restart") == b"after restart"
