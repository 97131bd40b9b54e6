"""CloseProxy in process: during registration, right behind its NewProxy, and the name freed
for the next NewProxy (frp §5.3; Go's server/control.go handleNewProxy / handleCloseProxy)."""

from __future__ import annotations

import asyncio

import pytest
from support.inproc import DEADLINE, InProc
from support.procs import free_port

from aiofrp.proto import msg as m
from aiofrp.server.proxies.tcp import TCPProxy


async def refused(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    w.close()
    return False


async def test_close_proxy_while_registering(inproc: InProc, monkeypatch: pytest.MonkeyPatch) -> None:
    """CloseProxy arrives while frps is still setting the proxy up (its listener not bound yet):
    like Go, which handles a control's messages in order, the registration completes first
    (NewProxyResp without error), then the CloseProxy closes the proxy; nothing is left
    listening, and the name is free again."""
    gate = asyncio.Event()
    entered = asyncio.Event()
    run = TCPProxy.run

    async def slow_run(self: TCPProxy) -> None:
        entered.set()
        await gate.wait()
        await run(self)

    monkeypatch.setattr(TCPProxy, "run", slow_run)
    server = await inproc.start_server()
    control, _ = await inproc.login(server)
    port = free_port()
    control.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    await asyncio.wait_for(entered.wait(), DEADLINE)
    control.write_msg(m.CloseProxy(proxy_name="tcp"))
    gate.set()

    resp = await control.read_msg(timeout=DEADLINE)
    assert isinstance(resp, m.NewProxyResp) and resp.proxy_name == "tcp"
    # a CloseProxy handled during the registration would have closed it: "proxy [tcp] is closed"
    assert resp.error == "" and resp.remote_addr == f":{port}"
    control.write_msg(m.Ping())  # a round trip: frps has handled everything sent before it
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.Pong)
    assert inproc.log.matching(r"close proxy \[tcp\] success")
    assert "tcp" not in server.proxies
    assert await refused(port)

    monkeypatch.setattr(TCPProxy, "run", run)
    control.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    resp = await control.read_msg(timeout=DEADLINE)
    assert isinstance(resp, m.NewProxyResp) and resp.error == "" and resp.remote_addr == f":{port}"


async def test_close_proxy_right_behind_new_proxy(inproc: InProc) -> None:
    """NewProxy and CloseProxy in one burst (frpc's health check failing at once): like Go, which
    handles control messages in order, the proxy ends up closed, its port free."""
    server = await inproc.start_server()
    control, _ = await inproc.login(server)
    port = free_port()
    control.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    control.write_msg(m.CloseProxy(proxy_name="tcp"))
    resp = await control.read_msg(timeout=DEADLINE)
    assert isinstance(resp, m.NewProxyResp) and resp.proxy_name == "tcp"
    control.write_msg(m.Ping())
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.Pong)
    assert "tcp" not in server.proxies
    assert await refused(port)
