"""The Python API (``aiofrp.Client``, ``aiofrp.Server``, ``Tunnel``, events, errors) against our frps,
both in the test's event loop over loopback: real sockets, real frp protocol."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.inproc import EchoService, until
from support.ports import LOCALHOST, free_port

import aiofrp
from aiofrp.config import ConfigError as FileConfigError
from aiofrp.config import load_client_config

TOKEN = "api-token"


async def _echo_via(addr: str, payload: bytes = b"hello frp") -> bytes:
    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(payload)
        return await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    finally:
        writer.close()


def _server(**kw: Any) -> aiofrp.Server:
    opts: dict[str, Any] = {"bind_addr": LOCALHOST, "bind_port": 0, "token": TOKEN, **kw}
    return aiofrp.Server(**opts)


def _client(server: aiofrp.Server, **kw: Any) -> aiofrp.Client:
    opts: dict[str, Any] = {"server_addr": LOCALHOST, "server_port": server.bind_port, "token": TOKEN, **kw}
    return aiofrp.Client(**opts)


async def test_expose_tcp_echo_events_and_close(loop: asyncio.AbstractEventLoop) -> None:
    echo = await EchoService().start()
    events: list[aiofrp.Event] = []
    async with _server() as server:
        assert server.bind_port != 0 and server.bind_addr == f"{LOCALHOST}:{server.bind_port}"
        client = _client(server)
        client.on_event(events.append)
        async with client:
            assert client.connected and client.run_id
            tunnel = await client.expose(echo.port, name="web")
            assert (tunnel.name, tunnel.type, tunnel.status) == ("web", "tcp", "running")
            assert tunnel.remote_addr.startswith(f"{LOCALHOST}:")
            assert tunnel.url == f"tcp://{tunnel.remote_addr}"
            assert [(p.name, p.type, p.run_id) for p in server.proxies] == [("web", "tcp", client.run_id)]
            assert server.proxies[0].remote_addr == ":" + tunnel.remote_addr.rsplit(":", 1)[1]
            assert await _echo_via(tunnel.remote_addr) == b"hello frp"
            assert client.tunnels == [tunnel]
            await tunnel.close()
            assert tunnel.status == "closed" and client.tunnels == []
            await until(lambda: not server.proxies, "frps dropped the proxy after CloseProxy")
            await tunnel.close()  # a no-op
    kinds = [(e.kind, e.name, e.status) for e in events]
    assert kinds[0] == ("connected", "", "")
    assert ("proxy", "web", "running") in kinds and ("proxy", "web", "closed") in kinds
    assert kinds[-1] == ("closed", "", "")
    echo.close()


async def test_wrong_token_is_login_error(loop: asyncio.AbstractEventLoop) -> None:
    async with _server() as server:
        with pytest.raises(aiofrp.LoginError) as info:
            async with _client(server, token="wrong"):
                pass
        assert "token in login doesn't match token from configuration" in info.value.reason
        assert isinstance(info.value, aiofrp.Error)
        # nothing listening: with login_fail_exit (frp's default) the first failure is an error
        port = free_port()
        with pytest.raises(aiofrp.LoginError, match=str(port)):
            await aiofrp.Client(server_addr=LOCALHOST, server_port=port, token=TOKEN).start()


async def test_port_not_allowed_is_proxy_error_with_frps_reason(loop: asyncio.AbstractEventLoop) -> None:
    allowed = free_port()
    async with _server(allow_ports=[{"single": allowed}]) as server, _client(server) as client:
        with pytest.raises(aiofrp.ProxyError) as info:
            await client.expose(1234, remote_port=allowed + 1, name="nope")
        assert info.value.name == "nope"
        assert info.value.reason.startswith("port not allowed")
        assert client.tunnels == []  # refused proxies are not kept retrying
        ok = await client.expose(1234, remote_port=allowed)
        assert ok.remote_addr == f"{LOCALHOST}:{allowed}"


async def test_bad_options_are_config_errors_naming_them(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    with pytest.raises(aiofrp.ConfigError, match=r"server_prot: unknown field") as info:
        aiofrp.Client(server_prot=7000)
    assert info.value.path == "server_prot"
    with pytest.raises(aiofrp.ConfigError, match=r"server_port: port number 70000 must be in the range"):
        aiofrp.Client(server_port=70000)
    with pytest.raises(aiofrp.ConfigError, match=r"transport\.pool_count: expected an integer"):
        aiofrp.Client(transport={"pool_count": "many"})
    with pytest.raises(aiofrp.ConfigError, match=r"vhost_http_port: expected an integer"):
        aiofrp.Server(vhost_http_port="80")
    # a config file: the same error as `frpc verify`
    bad = tmp_path / "frpc.toml"
    bad.write_text('serverPort = 7000\n[[proxies]]\nname = "a"\ntype = "tcp"\nlocalPort = 22\nremotePrt = 1\n')
    with pytest.raises(FileConfigError) as want:
        load_client_config(str(bad))
    with pytest.raises(aiofrp.ConfigError) as got:
        aiofrp.Client.from_file(str(bad))
    assert str(got.value) == str(want.value) and "remotePrt" in str(got.value)
    async with _server() as server, _client(server) as client:
        with pytest.raises(aiofrp.ConfigError, match=r"remot_port: unknown field"):
            await client.expose(22, remot_port=1)
        with pytest.raises(aiofrp.ConfigError, match=r"needs customDomains or subdomain"):
            await client.expose(80, type="http")
        with pytest.raises(aiofrp.ConfigError, match=r"unknown proxy type: tpc"):
            await client.expose(80, type="tpc")
        await client.expose(22, name="dup")
        with pytest.raises(aiofrp.ConfigError, match=r'duplicate proxy name "dup"'):
            await client.expose(23, name="dup")


async def test_from_file_runs_the_file_proxies(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    echo = await EchoService().start()
    remote = free_port()
    async with _server() as server:
        path = tmp_path / "frpc.toml"
        path.write_text(f'serverAddr = "{LOCALHOST}"\nserverPort = {server.bind_port}\nauth.token = "{TOKEN}"\n'
                        f'[[proxies]]\nname = "echo"\ntype = "tcp"\nlocalPort = {echo.port}\nremotePort = {remote}\n')
        async with aiofrp.Client.from_file(str(path)) as client:
            [tunnel] = client.tunnels
            await until(lambda: tunnel.status == "running", "the file's proxy running")
            assert await _echo_via(f"{LOCALHOST}:{remote}") == b"hello frp"
    echo.close()


async def test_proxy_types_plugins_and_visitors(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    echo = await EchoService().start()
    (tmp_path / "hello.txt").write_text("static hello")
    async with _server(vhost_http_port=free_port(), vhost_https_port=free_port(), subdomain_host="example.com",
                       tcpmux_http_connect_port=free_port()) as server, _client(server) as client:
        web = await client.expose(echo.port, type="http", subdomain="app")
        assert web.url == f"http://app.example.com:{server.vhost_http_port}"
        tls = await client.expose(echo.port, type="https", custom_domains=["secure.example.org"])
        assert tls.url.startswith("https://secure.example.org")
        mux = await client.expose(echo.port, type="tcpmux", custom_domains=["mux.example.org"],
                                  multiplexer="httpconnect")
        assert mux.remote_addr.startswith("mux.example.org") and mux.url == ""
        udp = await client.expose(echo.port, type="udp")
        assert udp.url.startswith(f"udp://{LOCALHOST}:")
        files = await client.expose(type="tcp", plugin="static_file", local_path=str(tmp_path))
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://{files.remote_addr}/hello.txt",
                                                                      timeout=5).read())
        assert body == b"static hello"
        secret = await client.expose(echo.port, type="stcp", name="secret", secret_key="sk")
        assert secret.status == "running" and secret.url == "" and secret.remote_addr == ""
        p2p = await client.expose(echo.port, type="xtcp", name="p2p", secret_key="sk")
        assert p2p.status == "running"
        port = free_port()
        async with await client.visit("secret", "sk", bind_port=port) as visitor:
            assert (visitor.server_name, visitor.bind_port, visitor.type) == ("secret", port, "stcp")
            assert await _echo_via(f"{LOCALHOST}:{port}", b"via stcp visitor") == b"via stcp visitor"
        assert client.visitors == []
        assert sorted(p.type for p in server.proxies) == ["http", "https", "stcp", "tcp", "tcpmux", "udp", "xtcp"]
    echo.close()


@pytest.mark.loop_timeout(30)
async def test_reconnect_is_observable(loop: asyncio.AbstractEventLoop) -> None:
    echo = await EchoService().start()
    port = free_port()
    server = _server(bind_port=port)
    await server.start()
    client = _client(server)
    await client.start()
    tunnel = await client.expose(echo.port, name="back")
    events: asyncio.Queue[aiofrp.Event] = asyncio.Queue()

    async def watch() -> None:
        async for ev in client.events():
            await events.put(ev)

    watcher = asyncio.create_task(watch())

    async def next_kind(kind: str) -> aiofrp.Event:
        while True:
            ev = await asyncio.wait_for(events.get(), 15)
            if ev.kind == kind:
                return ev

    await asyncio.sleep(0)
    await server.close()
    await next_kind("disconnected")
    assert not client.connected
    await until(lambda: tunnel.status == "new", "the tunnel waits for the next login")
    server = _server(bind_port=port)
    await server.start()
    ev = await next_kind("connected")
    assert ev.run_id == client.run_id
    await client.wait_connected(5)
    await until(lambda: tunnel.status == "running", "the tunnel back after the login", timeout=10)
    assert await _echo_via(tunnel.remote_addr) == b"hello frp"
    await client.close()
    await asyncio.wait_for(watcher, 5)  # events() ends with the client
    await server.close()
    echo.close()


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.loop_timeout(120)
async def test_200_tunnels_exposed_and_closed_leak_nothing(loop: asyncio.AbstractEventLoop) -> None:
    echo = await EchoService().start()
    async with _server() as server, _client(server) as client:
        warm = await client.expose(echo.port)  # pools, timers and caches made once
        assert await _echo_via(warm.remote_addr) == b"hello frp"
        await warm.close()
        await until(lambda: not server.proxies, "frps dropped the warm-up proxy")
        tasks, fds, threads = len(asyncio.all_tasks()), _fd_count(), threading.active_count()
        for i in range(200):
            tunnel = await client.expose(echo.port, name=f"t{i}")
            if i % 50 == 0:
                assert await _echo_via(tunnel.remote_addr) == b"hello frp"
            await tunnel.close()
        await until(lambda: not server.proxies, "frps dropped every proxy", timeout=10)
        await until(lambda: len(asyncio.all_tasks()) <= tasks, f"tasks back to {tasks}", timeout=10)
        await until(lambda: _fd_count() <= fds, f"fds back to {fds}", timeout=10)
        assert threading.active_count() <= threads
        assert client.tunnels == []
    echo.close()


@pytest.mark.loop_timeout(30)
async def test_login_fail_exit_false_waits_for_frps(loop: asyncio.AbstractEventLoop) -> None:
    """With login_fail_exit = false the client starts without frps and logs in once it is up;
    expose() waits for that login (bounded by its timeout)."""
    echo = await EchoService().start()
    port = free_port()
    failures: list[aiofrp.Event] = []
    client = aiofrp.Client(server_addr=LOCALHOST, server_port=port, token=TOKEN, login_fail_exit=False)
    client.on_event(lambda ev: failures.append(ev) if ev.kind == "login_failed" else None)
    async with client:
        assert not client.connected
        with pytest.raises(aiofrp.ProxyError, match="not logged in to frps within 0.5s"):
            await client.expose(echo.port, timeout=0.5)
        assert client.tunnels == []
        async with _server(bind_port=port):
            tunnel = await client.expose(echo.port, timeout=15)
            assert client.connected and tunnel.status == "running"
            assert await _echo_via(tunnel.remote_addr) == b"hello frp"
    assert failures and "connection refused" in failures[0].error
    echo.close()


async def test_hot_reload_keeps_exposed_tunnels(loop: asyncio.AbstractEventLoop) -> None:
    """A reload (admin API: Client.update_all) runs the file's entries; the ones added with
    expose()/visit() stay as they are."""
    echo = await EchoService().start()
    async with _server() as server, _client(server) as client:
        tunnel = await client.expose(echo.port)
        secret = await client.expose(echo.port, type="stcp", secret_key="k")
        visitor = await client.visit(secret.name, "k", bind_port=free_port())
        svc = client._svc
        assert svc is not None
        await svc.update_all()
        assert tunnel.status == "running" and svc.proxies[tunnel.name] is tunnel._pw
        assert svc.visitors[visitor.name] is visitor._v
        assert await _echo_via(tunnel.remote_addr) == b"hello frp"
        await visitor.close()
    echo.close()


async def test_admin_api_of_an_api_client(loop: asyncio.AbstractEventLoop) -> None:
    """web_server is not accepted in silence: the admin API runs, shows the tunnels, and its
    /api/stop closes the client."""
    import json

    admin = free_port()
    async with _server() as server:
        client = _client(server, web_server={"addr": LOCALHOST, "port": admin})
        async with client:
            tunnel = await client.expose(1234, name="shown")

            def get(path: str, method: str = "GET") -> bytes:
                req = urllib.request.Request(f"http://{LOCALHOST}:{admin}{path}", method=method)
                with urllib.request.urlopen(req, timeout=5) as resp:
                    body: bytes = resp.read()
                    return body

            status = json.loads(await asyncio.to_thread(get, "/api/status"))
            assert [p["name"] for p in status["tcp"]] == ["shown"]
            assert status["tcp"][0]["remote_addr"] == tunnel.remote_addr
            await asyncio.to_thread(get, "/api/stop", "POST")
            await until(lambda: tunnel.status == "closed" and not client.connected, "closed by /api/stop")
        await until(lambda: not server.proxies, "frps dropped the proxy")


async def test_log_settings_take_effect(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    import logging

    root = logging.getLogger("aiofrp")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        log_file = tmp_path / "logs" / "frpc.log"
        async with _server() as server, _client(server, log={"to": str(log_file), "level": "debug"}) as client:
            assert client.connected
        for h in root.handlers:
            h.flush()
        assert "login to server success" in log_file.read_text()
        (tmp_path / "file").write_text("")
        with pytest.raises(aiofrp.ConfigError, match=r"^aiofrp\.Client\(\.\.\.\): log\.to: cannot open log file"):
            await aiofrp.Client(log={"to": str(tmp_path / "file" / "x.log")}).start()
    finally:
        for h in root.handlers:
            if h not in saved[0]:
                h.close()
        root.handlers[:], root.level, root.propagate = saved


@pytest.mark.loop_timeout(30)
async def test_login_cancelled_leaves_nothing_running(loop: asyncio.AbstractEventLoop) -> None:
    """A timeout around the login (a server that accepts and never answers, login_fail_exit =
    false) stops the client. (Not a port nobody listens on: a refused connect on loopback can end
    the first attempt before even a 1 ms timeout fires, and start() then returns.)"""
    before = len(asyncio.all_tasks())
    silent = socket.create_server((LOCALHOST, 0))  # the kernel completes connects; nothing answers
    client = aiofrp.Client(server_addr=LOCALHOST, server_port=silent.getsockname()[1], login_fail_exit=False,
                           transport={"dial_server_timeout": 5})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.start()
    silent.close()
    assert not client.connected
    # the pending login (a TLS handshake nobody answers) was ended by the stop: the service
    # returned by itself rather than being cancelled after close()'s grace period
    assert client._task is not None and client._task.done() and not client._task.cancelled()
    with pytest.raises(aiofrp.Error, match="closed"):
        await client.expose(22)
    await until(lambda: len(asyncio.all_tasks()) <= before, "no task left")


async def test_user_prefix_and_sudp(loop: asyncio.AbstractEventLoop) -> None:
    echo = await EchoService().start()
    async with _server() as server, _client(server, user="alice") as client:
        web = await client.expose(echo.port, name="web")
        sudp = await client.expose(echo.port, type="sudp", name="dns", secret_key="k")
        assert (web.name, sudp.status) == ("web", "running")
        assert sorted(p.name for p in server.proxies) == ["alice.dns", "alice.web"]
        assert await _echo_via(web.remote_addr) == b"hello frp"
    echo.close()
