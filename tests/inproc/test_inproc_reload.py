"""Hot reload in process (Client.update_all, Go's UpdateAllConfigurer): the diff of proxies keeps
unchanged ones with their connections, re-registers changed ones, closes removed ones, starts
added ones, and follows the new ``start`` list and ``enabled``; proxies added while frpc is logged
out start at the next login."""

from __future__ import annotations

import asyncio

import msgspec
from support.inproc import InProc, until
from support.procs import TEST_STRING, free_port, tcp_proxy

from aiofrp.client.proxies.wrapper import ProxyPhase


async def refused(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    w.close()
    return False


async def test_update_all_diff(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    server = await inproc.start_server()
    pk, pc, pc2, pg, pn = (free_port() for _ in range(5))
    client = inproc.start_client(server, tcp_proxy("keep", echo.port, pk), tcp_proxy("change", echo.port, pc),
                                 tcp_proxy("gone", echo.port, pg))
    await inproc.wait_proxies(client, "keep", "change", "gone", server=server)
    keep_wrapper = client.proxies["keep"]
    reader, writer = await inproc.open_user(pk)
    assert await inproc.echo(reader, writer, b"before") == b"before"

    new = inproc.client_config(server.bind_port, tcp_proxy("keep", echo.port, pk), tcp_proxy("change", echo.port, pc2),
                               tcp_proxy("added", echo.port, pn))
    client.file_proxies = list(new.proxies)
    await client.update_all()
    assert client.proxies["keep"] is keep_wrapper and keep_wrapper.phase is ProxyPhase.RUNNING
    await inproc.wait_proxies(client, "change", "added", server=server)
    await until(lambda: "gone" not in server.proxies, "gone closed on frps")
    assert set(client.proxies) == {"keep", "change", "added"}
    assert await inproc.echo(reader, writer, b"after") == b"after"  # the same connection
    assert await inproc.roundtrip(pc2, TEST_STRING) == TEST_STRING
    assert await inproc.roundtrip(pn, TEST_STRING) == TEST_STRING
    assert await refused(pc) and await refused(pg)
    assert inproc.log.matching(rf"^\[{client.run_id}\] proxy removed: \[change gone\]$")
    assert inproc.log.matching(rf"^\[{client.run_id}\] proxy added: \[added change\]$")

    # the new file's start list and enabled apply (Go filters the merged entries by them)
    client.start_names = ["keep", "added"]
    await client.update_all()
    assert set(client.proxies) == {"keep", "added"}
    client.file_proxies = [p if p.name != "added" else msgspec.structs.replace(p, enabled=False)
                           for p in client.file_proxies]
    await client.update_all()
    assert set(client.proxies) == {"keep"} and client.proxies["keep"] is keep_wrapper
    await until(lambda: set(server.proxies) == {"keep"}, "only keep left on frps")
    assert await inproc.echo(reader, writer, b"still") == b"still"


async def test_proxy_added_while_logged_out_starts_at_login(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    port = free_port()
    client = inproc.start_client(free_port())  # nothing listens there: frpc keeps retrying
    client.file_proxies = list(inproc.client_config(1, tcp_proxy("late", echo.port, port)).proxies)
    await client.update_all()
    assert client.proxies["late"].phase is ProxyPhase.NEW
    await inproc.stop_client(client)

