"""User traffic in process: tcp with useEncryption + useCompression over every transport
combination, udp, and stcp/sudp through a visitor (frp §4.2, §5.8, §5.9)."""

from __future__ import annotations

import asyncio
import os

import pytest
from support.inproc import DEADLINE, InProc
from support.procs import LOCALHOST, TEST_STRING, block, free_port, tcp_proxy, udp_proxy

SK = "inproc-sk"


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
@pytest.mark.parametrize("tcp_mux", [True, False], ids=["tcpmux", "no-tcpmux"])
async def test_tcp_echo_with_encryption_and_compression(inproc: InProc, tls: bool, tcp_mux: bool) -> None:
    echo = await inproc.echo_service()
    server = await inproc.start_server(tcp_mux=tcp_mux)
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port, encryption=True, compression=True),
                                 tls=tls, tcp_mux=tcp_mux)
    await inproc.wait_proxies(client, "tcp", server=server)

    # several users at once, each with a payload snappy cannot shrink and one it can
    async def user(i: int) -> None:
        reader, writer = await inproc.open_user(port)
        for payload in (os.urandom(256 << 10) + bytes([i]), TEST_STRING * 2000):
            assert await inproc.echo(reader, writer, payload) == payload
        writer.write_eof()  # half-close through both relays: the echo answers, then ends
        assert await asyncio.wait_for(reader.read(), DEADLINE) == b""

    await asyncio.gather(*(user(i) for i in range(4)))
    assert echo.accepted == 4


async def test_udp_echo(inproc: InProc) -> None:
    udp_echo = await inproc.udp_echo_service()
    server = await inproc.start_server()
    port = free_port()
    client = inproc.start_client(server, udp_proxy("udp", udp_echo.port, port))
    await inproc.wait_proxies(client, "udp", server=server)
    assert await inproc.udp_roundtrip(port, TEST_STRING) == TEST_STRING
    for size in (1, 1400, 1500):
        payload = os.urandom(size)
        assert await inproc.udp_roundtrip(port, payload) == payload
    # longer datagrams are cut to udpPacketSize (1500 by default) as Go's read buffer cuts them
    payload = os.urandom(8000)
    assert await inproc.udp_roundtrip(port, payload) == payload[:1500]

def secret_proxy(name: str, kind: str, local_port: int, **keys: object) -> str:
    return block("proxies", name=name, type=kind, localIP=LOCALHOST, localPort=local_port, secretKey=SK, **keys)


def visitor(name: str, kind: str, server_name: str, bind_port: int, sk: str = SK) -> str:
    return block("visitors", name=name, type=kind, serverName=server_name, secretKey=sk, bindAddr=LOCALHOST,
                 bindPort=bind_port)


async def test_stcp_and_sudp_through_visitors(inproc: InProc) -> None:
    echo = await inproc.echo_service()
    udp_echo = await inproc.udp_echo_service()
    server = await inproc.start_server()
    provider = inproc.start_client(
        server,
        secret_proxy("secret", "stcp", echo.port, transport__useEncryption=True, transport__useCompression=True),
        secret_proxy("secret_udp", "sudp", udp_echo.port))
    await inproc.wait_proxies(provider, "secret", "secret_udp", server=server)
    tcp_port, bad_port, udp_port = free_port(), free_port(), free_port()
    visitors = inproc.start_client(server, visitor("v", "stcp", "secret", tcp_port),
                                   visitor("v_bad", "stcp", "secret", bad_port, sk="wrong"),
                                   visitor("v_udp", "sudp", "secret_udp", udp_port))
    await inproc.until(lambda: visitors.run_id in server.controls, "visitor frpc logged in")

    payload = os.urandom(64 << 10)
    assert await inproc.roundtrip(tcp_port, payload) == payload
    assert await inproc.udp_roundtrip(udp_port, TEST_STRING) == TEST_STRING
    # a wrong secret key: frps refuses the visitor connection, which the visitor closes
    reader, writer = await inproc.open_user(bad_port)
    writer.write(TEST_STRING)
    try:
        assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    except ConnectionResetError:
        pass
    await inproc.until(lambda: inproc.log.matching(
        r"^register visitor conn error: visitor connection of \[secret\] auth failed", logger="aiofrp.server"),
        "frps logged the refusal")
    await inproc.until(lambda: inproc.log.matching(rf"^\[{visitors.run_id}\] \[v_bad\] .*auth failed",
                                                   logger="aiofrp.client"),
                       "the visitor logged the refusal")
    assert echo.accepted == 1
