"""The blocking ``aiofrp.expose()`` against a real frps process (ours and Go frps 0.65): a shared
client per server on one background thread, tunnels from a thread that runs an event loop
(Jupyter), 200 tunnels with no leaked thread or socket, clean-up at interpreter exit."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.procs import EchoServer, free_port, tcp_roundtrip, wait_port
from support.waits import poll, refused

import aiofrp
from aiofrp.api import blocking

pytestmark = pytest.mark.timeout(120)

TOKEN = "blocking-token"


@pytest.fixture(params=["ours", pytest.param("go", marks=pytest.mark.compat)])
def frps_port(request: pytest.FixtureRequest, frp) -> Iterator[int]:
    port = free_port()
    text = f'bindAddr = "127.0.0.1"\nbindPort = {port}\nauth.token = "{TOKEN}"\n'
    if request.param == "ours":
        frp.ours_frps(text)
    else:
        frp.go_frps(text)
    wait_port(port, 20)
    yield port
    aiofrp.shutdown()
    assert not any(t.name == "aiofrp" for t in threading.enumerate())


@pytest.fixture
def echo() -> Iterator[int]:
    with EchoServer() as srv:
        yield srv.port


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _roundtrip(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    return tcp_roundtrip(int(port), b"blocking hello", 5, host=host) == b"blocking hello"


def test_expose_shares_one_client_and_closes(frps_port: int, echo: int) -> None:
    server = f"127.0.0.1:{frps_port}"
    one = aiofrp.expose(echo, server=server, token=TOKEN)
    two = aiofrp.expose(echo, server=server, token=TOKEN, name="second")
    assert one.status == two.status == "running" and two.name == "second"
    assert one.url == f"tcp://{one.remote_addr}" and one.remote_addr != two.remote_addr
    assert _roundtrip(one.remote_addr) and _roundtrip(two.remote_addr)
    runner = blocking._runner
    assert runner is not None and len(runner.clients) == 1
    assert [t.name for t in threading.enumerate() if t.name == "aiofrp"] == ["aiofrp"]
    port = int(one.remote_addr.rsplit(":", 1)[1])
    one.close()
    poll(lambda: refused(port), 10, "frps closed the tunnel's port")
    one.close()  # a no-op
    with two:
        pass
    assert two.status == "closed"
    with pytest.raises(aiofrp.LoginError, match="token"):
        aiofrp.expose(echo, server=server, token="wrong")


def test_expose_from_a_thread_running_an_event_loop(frps_port: int, echo: int) -> None:
    """As in Jupyter: the calling thread runs an event loop; expose() blocks it only briefly."""

    async def cell() -> tuple[str, str]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        tunnel = aiofrp.expose(echo, server=f"127.0.0.1:{frps_port}", token=TOKEN)
        await asyncio.sleep(0.05)  # the caller's loop still runs its own tasks
        t.cancel()
        assert ticks > 0
        ok = await asyncio.to_thread(_roundtrip, tunnel.remote_addr)
        tunnel.close()
        return tunnel.status, str(ok)

    assert asyncio.run(cell()) == ("closed", "True")


def test_200_blocking_tunnels_leak_no_thread_or_socket(frps_port: int, echo: int) -> None:
    server = f"127.0.0.1:{frps_port}"
    warm = aiofrp.expose(echo, server=server, token=TOKEN)
    assert _roundtrip(warm.remote_addr)
    warm.close()
    threads, fds = threading.active_count(), _fd_count()
    for i in range(200):
        t = aiofrp.expose(echo, server=server, token=TOKEN, name=f"b{i}")
        if i % 50 == 0:
            assert _roundtrip(t.remote_addr)
        t.close()
    assert threading.active_count() <= threads
    poll(lambda: _fd_count() <= fds, 10, f"fds back to {fds}")
    runner = blocking._runner
    assert runner is not None
    assert runner.call(_task_count(), timeout=5) <= 3  # the shared client's own tasks only


async def _task_count() -> int:
    return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])


def test_cleanup_at_interpreter_exit(frps_port: int, echo: int, tmp_path: Path) -> None:
    script = tmp_path / "leave_open.py"
    script.write_text(textwrap.dedent(f"""
        import aiofrp
        t = aiofrp.expose({echo}, server="127.0.0.1:{frps_port}", token="{TOKEN}")
        print(t.remote_addr, flush=True)
        # no close(): atexit closes the client
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    port = int(proc.stdout.split()[0].rsplit(":", 1)[1])
    poll(lambda: refused(port), 10, "frps closed the port of the exited client's tunnel")


def test_bad_server_and_option(echo: int) -> None:
    with pytest.raises(aiofrp.ConfigError, match="server"):
        aiofrp.expose(echo, server="no-port-here")
    with pytest.raises(aiofrp.ConfigError, match="remot_port"):
        aiofrp.expose(echo, server=f"127.0.0.1:{_closed_port()}", remot_port=1, client_options={"login_fail_exit": False}, timeout=1)
    aiofrp.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
