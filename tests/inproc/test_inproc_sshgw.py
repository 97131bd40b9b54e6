"""The SSH tunnel gateway in process (asyncssh as the ssh client): the tunnel, the proxy gone with
the session, a stalled handshake bounded, and nothing left behind (the harness checks tasks and
sockets). The real OpenSSH client is in tests/e2e/test_ssh_gateway.py (frp §5.14)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest
from support.inproc import TOKEN, InProc
from support.procs import free_port

from aiofrp.server import sshgw
from aiofrp.server.service import Server


async def refused(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    w.close()
    return False


async def start(inproc: InProc, tmp_path: Path, **keys: object) -> tuple[Server, int]:
    host_key = tmp_path / "host_key"
    host_key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    ssh_port = free_port()
    server = await inproc.start_server(**{"sshTunnelGateway.bindPort": ssh_port,
                                          "sshTunnelGateway.privateKeyFile": str(host_key), **keys})
    return server, ssh_port


async def open_tunnel(ssh_port: int, local_port: int, command: str) -> tuple[asyncssh.SSHClientConnection, str]:
    conn = await asyncssh.connect("127.0.0.1", ssh_port, username="v0", known_hosts=None,
                                  client_keys=[asyncssh.generate_private_key("ssh-ed25519")])
    await conn.forward_remote_port("", 80, "127.0.0.1", local_port)
    process = await conn.create_process(f"{command} -t {TOKEN}", encoding="utf-8")
    out = ""
    async with asyncio.timeout(5):
        while not out.endswith("\n\n") or "RemoteAddress" not in out:
            chunk = await process.stdout.read(4096)
            if not chunk:
                break
            out += chunk
    return conn, out


async def test_tunnel_and_proxy_gone_with_the_session(inproc: InProc, tmp_path: Path) -> None:
    server, ssh_port = await start(inproc, tmp_path)
    echo = await inproc.echo_service()
    remote = free_port()
    conn, out = await open_tunnel(ssh_port, echo.port, f"tcp -r {remote} -n t")
    assert out == "\nfrp (via SSH) (Ctrl+C to quit)\n\nUser: \nProxyName: t\nType: tcp\nRemoteAddress: " \
                  f":{remote}\n\n"
    for _ in range(3):
        assert await inproc.roundtrip(remote, b"ping" * 1000) == b"ping" * 1000
    assert "t" in server.proxies
    conn.close()
    await conn.wait_closed()
    await inproc.until(lambda: "t" not in server.proxies and not server.controls, "the proxy and control gone")
    assert await refused(remote)
    assert inproc.log.matching(r"client exit success")


async def test_stalled_handshake_is_bounded(inproc: InProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshgw, "HANDSHAKE_TIMEOUT", 0.5)
    _, ssh_port = await start(inproc, tmp_path)
    reader, writer = await asyncio.open_connection("127.0.0.1", ssh_port)
    writer.write(b"SSH-2.0-")
    async with asyncio.timeout(5):
        while await reader.read(4096):
            pass  # the server's banner, then EOF at the deadline
    writer.close()
    await inproc.until(lambda: inproc.log.matching(r"ssh handshake with 127\.0\.0\.1:\d+ not finished within 0\.5s"),
                       "the timeout logged")
    # a user logging in right away is not affected by the bound
    echo = await inproc.echo_service()
    conn, out = await open_tunnel(ssh_port, echo.port, "tcp -n ok")
    assert "ProxyName: ok\n" in out
    conn.close()
    await conn.wait_closed()


async def test_refused_key_and_token(inproc: InProc, tmp_path: Path) -> None:
    keys = tmp_path / "authorized_keys"
    keys.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_public_key())
    _, ssh_port = await start(inproc, tmp_path, **{"sshTunnelGateway.authorizedKeysFile": str(keys)})
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect("127.0.0.1", ssh_port, username="v0", known_hosts=None,
                               client_keys=[asyncssh.generate_private_key("ssh-ed25519")])
    await inproc.until(lambda: inproc.log.matching(r"unknown public key for remoteAddr"), "the refusal logged")


async def test_local_forwarding_refused(inproc: InProc, tmp_path: Path) -> None:
    """ssh -L (direct-tcpip) and unix socket forwards are refused: the gateway is no jump host."""
    _, ssh_port = await start(inproc, tmp_path)
    echo = await inproc.echo_service()
    conn, out = await open_tunnel(ssh_port, echo.port, "tcp -n jump")
    assert "ProxyName: jump\n" in out
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.open_connection("127.0.0.1", echo.port)
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.open_unix_connection("/run/anything.sock")
    conn.close()
    await conn.wait_closed()


async def test_virtual_client_heartbeats(inproc: InProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tcpMux frps expects a Ping within transport.heartbeatTimeout: the virtual client
    sends them (Go frpc's heartbeatInterval), so a long ssh session keeps its proxy."""
    from aiofrp.server.sshgw import virtual

    monkeypatch.setattr(virtual, "HEARTBEAT_INTERVAL", 0.2)
    server, ssh_port = await start(inproc, tmp_path, **{"transport.tcpMux": False, "transport.heartbeatTimeout": 1})
    echo = await inproc.echo_service()
    remote = free_port()
    conn, out = await open_tunnel(ssh_port, echo.port, f"tcp -r {remote} -n hb")
    assert "ProxyName: hb\n" in out
    await asyncio.sleep(2.5)  # over twice the heartbeat timeout: the point of the test is time passing
    assert "hb" in server.proxies
    assert await inproc.roundtrip(remote, b"still here") == b"still here"
    assert not inproc.log.matching(r"heartbeat timeout")
    conn.close()
    await conn.wait_closed()
