"""Client plugins in process: an http_proxy connection left open (keep-alive, aiohttp's server and
client session made) and a socks5 tunnel are closed with nothing left behind when frpc stops; a
tls2raw whose certificate cannot be loaded is the proxy's start error, as Go's plugin.Create."""

from __future__ import annotations

import asyncio

from support.inproc import DEADLINE, InProc, until
from support.plugin_services import plugin_proxy
from support.procs import TEST_STRING, free_port

from aiofrp.client.proxies.wrapper import ProxyPhase


async def _http_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def test_plugins_close_cleanly_with_frpc(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    web = await asyncio.start_server(_http_ok, "127.0.0.1", 0)
    web_port = web.sockets[0].getsockname()[1]
    server = await inproc.start_server()
    hp, s5 = free_port(), free_port()
    client = inproc.start_client(
        server,
        plugin_proxy("hp", "tcp", {"type": "http_proxy"}, remotePort=hp, transport__useEncryption=True),
        plugin_proxy("s5", "tcp", {"type": "socks5"}, remotePort=s5, transport__useCompression=True),
    )
    await inproc.wait_proxies(client, "hp", "s5", server=server)
    try:
        # http_proxy: two requests on one kept-alive connection, left open
        reader, writer = await inproc.open_user(hp)
        for _ in range(2):
            writer.write(f"GET http://127.0.0.1:{web_port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
            assert await asyncio.wait_for(reader.readexactly(2), DEADLINE) == b"ok"
        # socks5: a tunnel to the echo service, left open
        r2, w2 = await inproc.open_user(s5)
        w2.write(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + echo.port.to_bytes(2, "big"))
        reply = await asyncio.wait_for(r2.readexactly(12), DEADLINE)
        assert reply[:10] == b"\x05\x00\x05\x00\x00\x01\x7f\x00\x00\x01", reply  # bound to 127.0.0.1:port
        assert await inproc.echo(r2, w2, TEST_STRING) == TEST_STRING
        await inproc.stop_client(client)
        # both user connections end with frpc (frps closes them when the work connections go)
        assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
        assert await asyncio.wait_for(r2.read(), DEADLINE) == b""
    finally:
        web.close()
        await web.wait_closed()


async def test_tls2raw_bad_certificate_is_a_start_error(inproc: InProc) -> None:
    server = await inproc.start_server()
    client = inproc.start_client(server, plugin_proxy(
        "tls", "tcp", {"type": "tls2raw", "localAddr": "127.0.0.1:1", "crtPath": "/nonexistent.crt",
                       "keyPath": "/nonexistent.key"}, remotePort=free_port()))
    pw = client.proxies["tls"]
    await until(lambda: pw.phase == ProxyPhase.START_ERROR, "the plugin refused")
    assert pw.err.startswith("cannot load certificate '/nonexistent.crt'"), pw.err
    await until(lambda: "tls" not in server.proxies, "frps closed the proxy (CloseProxy)")
