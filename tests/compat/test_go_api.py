"""The Python API (``aiofrp.Client``) against Go frps 0.65: tunnels of several types, a visitor,
and the error paths with Go's own reasons (wrong token, port not allowed)."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from support.procs import free_port, wait_port

import aiofrp

pytestmark = pytest.mark.timeout(90)

TOKEN = "go-api-token"


@pytest.fixture
def go_frps(frp) -> dict[str, int]:
    ports = {"bind": free_port(), "http": free_port(), "allowed": free_port()}
    frp.go_frps(f'bindAddr = "127.0.0.1"\nbindPort = {ports["bind"]}\nauth.token = "{TOKEN}"\n'
                f'vhostHTTPPort = {ports["http"]}\nsubdomainHost = "example.com"\n'
                f'allowPorts = [{{ single = {ports["allowed"]} }}, {{ start = 6000, end = 6999 }}]\n')
    wait_port(ports["bind"], 20)
    return ports


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


async def _roundtrip(host: str, port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    writer.close()
    return got


def test_client_api_against_go_frps(go_frps: dict[str, int]) -> None:
    async def main() -> None:
        srv, port = await _echo_server()
        async with aiofrp.Client(server_addr="127.0.0.1", server_port=go_frps["bind"], token=TOKEN) as client:
            tcp = await client.expose(port, remote_port=go_frps["allowed"])
            assert tcp.remote_addr == f"127.0.0.1:{go_frps['allowed']}"
            assert await _roundtrip("127.0.0.1", go_frps["allowed"], b"to go frps") == b"to go frps"
            any_port = await client.expose(port)  # Go frps picks one in allowPorts
            assert 6000 <= int(any_port.remote_addr.rsplit(":", 1)[1]) <= 6999
            web = await client.expose(port, type="http", subdomain="app")
            assert web.url == f"http://app.example.com:{go_frps['http']}"
            secret = await client.expose(port, type="stcp", name="secret", secret_key="sk")
            vport = free_port()
            async with await client.visit("secret", "sk", bind_port=vport):
                assert await _roundtrip("127.0.0.1", vport, b"via visitor") == b"via visitor"
            with pytest.raises(aiofrp.ProxyError) as info:
                await client.expose(port, remote_port=go_frps["allowed"] + 1, name="refused")
            assert "port not allowed" in info.value.reason  # Go frps's own words
            await secret.close()
            await tcp.close()
        srv.close()

    asyncio.run(main())


def test_wrong_token_against_go_frps(go_frps: dict[str, int]) -> None:
    async def main() -> None:
        with pytest.raises(aiofrp.LoginError, match="token in login doesn't match token from configuration"):
            async with aiofrp.Client(server_addr="127.0.0.1", server_port=go_frps["bind"], token="wrong"):
                pass

    asyncio.run(main())


def test_blocking_static_file_plugin_against_go_frps(go_frps: dict[str, int], tmp_path) -> None:
    (tmp_path / "index.txt").write_text("served by the plugin")
    tunnel = aiofrp.expose(server=f"127.0.0.1:{go_frps['bind']}", token=TOKEN, plugin="static_file",
                           local_path=str(tmp_path))
    try:
        with urllib.request.urlopen(f"http://{tunnel.remote_addr}/index.txt", timeout=5) as resp:
            assert resp.read() == b"served by the plugin"
    finally:
        tunnel.close()
        aiofrp.shutdown()
