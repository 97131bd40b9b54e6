"""In-process harness: frps (``Server``) and frpc (``Client``) in one event loop over loopback.

Real sockets, real TLS/yamux/AES, no subprocesses: a failure shows the Python stack where it
happened, within seconds. Used by ``tests/inproc`` (whose conftest runs ``async def`` tests on
a fresh uvloop per test and hands them an :class:`InProc`).

* Configs are built as frp TOML with :mod:`support.configs` and parsed with the real
  ``parse_server_config`` / ``parse_client_config`` (so they are the typed config structs).
* :meth:`InProc.start_server` / :meth:`InProc.start_client` start them; :meth:`InProc.until`
  polls state with a deadline (never a bare sleep).
* :meth:`InProc.aclose` stops everything the way the CLI does and then FAILS the test if a task
  of the loop or a socket of the process is left over (checked against the baseline taken when
  the harness was made).
* Reaching into private state is confined to the few helpers at the end of this module
  (``idle_work_conns``, ``mux_session_of``, ``relay_streams``), so a refactor has one place to
  update.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiofrp import FRP_VERSION
from aiofrp.client.connector import Connector
from aiofrp.client.proxies.wrapper import ProxyPhase
from aiofrp.client.service import Client
from aiofrp.config import ClientConfig, ServerConfig, parse_client_config, parse_server_config
from aiofrp.net.msgconn import MsgConn
from aiofrp.net.mux import MuxSession, MuxStream
from aiofrp.proto import msg as m
from aiofrp.proto.crypto import auth_key, derive_key
from aiofrp.server.service import Server

from .configs import frpc_config, frps_config
from .ports import LOCALHOST, free_port

T = TypeVar("T")

TOKEN = "inproc-token"
DEADLINE = 5.0  # every wait in the in-process tier is bounded by this unless told otherwise


# -- polling -------------------------------------------------------------------------------------


async def until(cond: Callable[[], T], what: str, timeout: float = DEADLINE, interval: float = 0.01) -> T:
    """Await until ``cond()`` is truthy (exceptions count as "not yet"); AssertionError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Exception as exc:  # noqa: BLE001 - anything means "not yet"
            last = exc
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


# -- local services in the test's loop ----------------------------------------------------------


class _EchoConn(asyncio.Protocol):
    def __init__(self, svc: EchoService) -> None:
        self.svc = svc
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.first = b""  # the first chunk received (tells the connections of a test apart)
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self.svc.accepted += 1
        self.svc.live.add(self)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.received:
            self.first = bytes(data)
        self.received += len(data)
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # echo done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.svc.live.discard(self)


class EchoService:
    """TCP echo on 127.0.0.1 in the test's loop. ``accepted`` counts connections, ``live`` holds
    the open ones (``peer`` is the far side's socket, e.g. frpc's local one)."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.accepted = 0
        self.live: set[_EchoConn] = set()

    async def start(self) -> EchoService:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _EchoConn(self), LOCALHOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def conn_starting_with(self, prefix: bytes) -> _EchoConn | None:
        """The open connection whose first bytes start with ``prefix``."""
        return next((c for c in self.live if c.first.startswith(prefix)), None)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for c in list(self.live):
            if c.transport is not None:
                c.transport.abort()


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, svc: UdpEchoService) -> None:
        self.svc = svc

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.svc.datagrams += 1
        self.transport.sendto(data, addr)


class UdpEchoService:
    """UDP echo on 127.0.0.1 in the test's loop; ``datagrams`` counts what arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.datagrams = 0

    async def start(self) -> UdpEchoService:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _UdpEcho(self), local_addr=(LOCALHOST, 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while nothing listens yet: the next try resends


# -- log capture -------------------------------------------------------------------------------


class LogRecorder(logging.Handler):
    """Keeps every record of the ``aiofrp`` loggers (at DEBUG) for assertions on frp's log lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, logger: str = "aiofrp") -> list[str]:
        return [r.getMessage() for r in self.records if r.name == logger or r.name.startswith(logger + ".")]

    def matching(self, pattern: str, logger: str = "aiofrp") -> list[str]:
        rx = re.compile(pattern)
        return [line for line in self.lines(logger) if rx.search(line)]


# -- sockets of this process ---------------------------------------------------------------------


def open_sockets() -> set[tuple[int, str]]:
    """(fd, "socket:[inode]") of every IPv4/IPv6 socket this process holds (Linux /proc).

    Unix sockets are left out: uvloop makes a fresh socketpair for signal wake-ups each time the
    loop starts running, and aiofrp itself opens none."""
    out: set[tuple[int, str]] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            if not target.startswith("socket:"):
                continue
            fd = int(name)
            family = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with family:
            if family.family in (socket.AF_INET, socket.AF_INET6):
                out.add((fd, target))
    return out


def describe_socket(fd: int) -> str:
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError as exc:
        return f"fd {fd}: {exc}"
    try:
        try:
            peer = s.getpeername()
        except OSError:
            peer = None
        if s.family == socket.AF_UNIX:
            return f"fd {fd}: unix socket {s.getsockname()!r}"
        kind = "udp" if s.type == socket.SOCK_DGRAM else "tcp" if s.type == socket.SOCK_STREAM else str(s.type)
        return f"fd {fd}: {kind} {s.getsockname()} -> {peer}"
    except OSError as exc:
        return f"fd {fd}: {exc}"
    finally:
        s.close()


def describe_tasks(tasks: Iterable[asyncio.Task[Any]]) -> str:
    out = io.StringIO()
    for t in tasks:
        out.write(f"--- {t!r}\n")
        t.print_stack(limit=8, file=out)
    return out.getvalue()


# -- the harness -------------------------------------------------------------------------------


class InProc:
    """Servers, clients, local services and user connections of one test; see the module doc."""

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self.clients: dict[Client, asyncio.Task[int]] = {}
        self.services: list[EchoService | UdpEchoService] = []
        self.connectors: list[Connector] = []
        self.raw_conns: list[MsgConn] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.log = LogRecorder()
        self._logger = logging.getLogger("aiofrp")
        self._old_level = self._logger.level
        self._logger.addHandler(self.log)
        self._logger.setLevel(logging.DEBUG)
        self.baseline_sockets: set[tuple[int, str]] = set()

    async def begin(self) -> None:
        """Take the baseline of open sockets with the loop running (it holds a few of its own)."""
        self.baseline_sockets = open_sockets()

    until = staticmethod(until)

    # -- configs ---------------------------------------------------------------------------

    @staticmethod
    def server_config(bind_port: int = 0, *, token: str = TOKEN, **keys: Any) -> ServerConfig:
        """frps config from TOML (``keys`` as in :func:`support.configs.frps_config`)."""
        return parse_server_config(frps_config(bind_port or free_port(), token=token, **keys), "inproc frps")

    @staticmethod
    def client_config(server_port: int, *proxies: str, token: str = TOKEN, **keys: Any) -> ClientConfig:
        """frpc config from TOML (``keys`` as in :func:`support.configs.frpc_config`)."""
        return parse_client_config(frpc_config(server_port, *proxies, token=token, **keys), "inproc frpc")

    # -- frps / frpc -----------------------------------------------------------------------

    async def start_server(self, cfg: ServerConfig | None = None, /, **keys: Any) -> Server:
        """Start a ``Server`` (from ``cfg``, or a config built from ``keys``) on 127.0.0.1."""
        server = Server(cfg if cfg is not None else self.server_config(**keys))
        self.servers.append(server)
        await server.start()
        return server

    async def stop_server(self, server: Server) -> None:
        """Close it as frps does on SIGTERM, then wait until its controls have finished."""
        await server.close()
        for ctl in list(server.controls.values()):
            await until(lambda c=ctl: c.finished.done(), f"control [{ctl.run_id}] finished")  # type: ignore[misc]
        if server in self.servers:
            self.servers.remove(server)

    def start_client(self, server: Server | int | ClientConfig, /, *proxies: str, **keys: Any) -> Client:
        """Run a ``Client`` (``client.run()`` as a task) toward ``server`` (a running frps or its
        port; config from ``proxies`` and ``keys``), or with a ready config."""
        if isinstance(server, ClientConfig):
            cfg = server
        else:
            cfg = self.client_config(server if isinstance(server, int) else server.bind_port, *proxies, **keys)
        client = Client(cfg)
        self.clients[client] = asyncio.get_running_loop().create_task(client.run(), name="frpc run")
        return client

    def client_task(self, client: Client) -> asyncio.Task[int]:
        return self.clients[client]

    async def stop_client(self, client: Client) -> None:
        """Stop it as frpc does on SIGTERM (``stop()``, then cancel ``run()``) and wait for the end."""
        task = self.clients.pop(client)
        client.stop()
        task.cancel()
        await asyncio.wait({task}, timeout=DEADLINE)
        assert task.done(), f"frpc run() still running {DEADLINE}s after stop()"

    async def wait_proxies(self, client: Client, *names: str, server: Server | None = None,
                           timeout: float = DEADLINE) -> None:
        """Until each proxy is "running" on frpc (and registered on ``server``, if given)."""
        def ready() -> bool:
            for n in names:
                pw = client.proxies[n]
                if pw.phase != ProxyPhase.RUNNING:
                    return False
                if server is not None and pw.wire_name not in server.proxies:
                    return False
            return True

        await until(ready, f"proxies {names} running", timeout)

    def dial(self, server: Server, **client_keys: Any) -> Connector:
        """frpc's way to ``server`` (TCP, TLS, yamux as the client config built from
        ``client_keys`` says) without a ``Client``: ``await c.open()`` gives a logical connection
        on which (:meth:`open_conn`) a test speaks frp's messages by hand, as Go's server/control_test.go does.
        Closed at the end."""
        c = Connector(self.client_config(server.bind_port, **client_keys))
        self.connectors.append(c)
        return c

    async def open_conn(self, connector: Connector) -> MsgConn:
        """A new logical connection (a yamux stream, or a TCP connection without tcpMux); aborted
        at the end."""
        conn = await connector.open()
        self.raw_conns.append(conn)
        return conn

    async def login(self, server: Server, *, token: str = TOKEN, run_id: str = "", pool_count: int = 0,
                    connector: Connector | None = None, **client_keys: Any) -> tuple[MsgConn, m.LoginResp]:
        """Send a Login by hand; return the control connection (AES-CFB on when frps accepted it)
        and frps's LoginResp."""
        conn = await self.open_conn(connector or self.dial(server, **client_keys))
        ts = int(time.time())
        conn.write_msg(m.Login(version=FRP_VERSION, run_id=run_id, pool_count=pool_count,
                               privilege_key=auth_key(token, ts), timestamp=ts))
        resp = await conn.read_msg(timeout=DEADLINE)
        assert isinstance(resp, m.LoginResp), f"frps answered Login with {resp!r}"
        if not resp.error:
            conn.enable_encryption(derive_key(token))
        return conn, resp

    # -- local services and users ----------------------------------------------------------

    async def echo_service(self) -> EchoService:
        svc = await EchoService().start()
        self.services.append(svc)
        return svc

    async def udp_echo_service(self) -> UdpEchoService:
        svc = await UdpEchoService().start()
        self.services.append(svc)
        return svc

    async def open_user(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A user connection to 127.0.0.1:port (closed at the end)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), DEADLINE)
        self.writers.append(writer)
        return reader, writer

    async def echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes,
                   timeout: float = DEADLINE) -> bytes:
        """Write ``data`` on an open user connection and read as many bytes back."""
        writer.write(data)
        return await asyncio.wait_for(reader.readexactly(len(data)), timeout)

    async def roundtrip(self, port: int, data: bytes, timeout: float = DEADLINE) -> bytes:
        """One user connection: send ``data``, read as many bytes back, close."""
        reader, writer = await self.open_user(port)
        try:
            return await self.echo(reader, writer, data, timeout)
        finally:
            writer.close()

    async def udp_roundtrip(self, port: int, data: bytes, timeout: float = DEADLINE, every: float = 0.2) -> bytes:
        """Send a datagram to 127.0.0.1:port every ``every`` s until one comes back (frps drops
        datagrams while its first work connection is being made)."""
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_UdpClient, remote_addr=(LOCALHOST, port))
        try:
            async with asyncio.timeout(timeout):
                while True:
                    transport.sendto(data)
                    try:
                        return await asyncio.wait_for(proto.replies.get(), every)
                    except TimeoutError:
                        continue
        finally:
            transport.close()

    # -- teardown --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop everything, then fail if a task or a socket is left over."""
        try:
            for w in self.writers:
                w.close()
            for client in list(self.clients):
                await self.stop_client(client)
            for server in list(self.servers):
                await self.stop_server(server)
            for conn in self.raw_conns:
                conn.abort()
            for c in self.connectors:
                c.close()
            for svc in self.services:
                svc.close()
            await self._check_no_leaks()
        finally:
            self._logger.removeHandler(self.log)
            self._logger.setLevel(self._old_level)

    async def _check_no_leaks(self) -> None:
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while True:
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            if not tasks:
                break
            if loop.time() >= deadline:
                raise AssertionError(f"{len(tasks)} task(s) left running {DEADLINE}s after teardown:\n"
                                     + describe_tasks(tasks))
            await asyncio.sleep(0.01)
        while True:
            leaked = sorted(open_sockets() - self.baseline_sockets)
            if not leaked:
                return
            if loop.time() >= deadline:
                raise AssertionError(f"{len(leaked)} socket(s) left open after teardown:\n"
                                     + "\n".join(describe_socket(fd) for fd, _ in leaked))
            await asyncio.sleep(0.01)


# -- the few looks at private state (one place to update after a refactor) --------------------


def idle_work_conns(server: Server, run_id: str) -> int:
    """How many work connections frps holds in the pool of this client's control."""
    return server.controls[run_id]._pool.qsize()


def mux_session_of(conn: MsgConn) -> MuxSession:
    """The yamux session a logical connection (a stream) belongs to."""
    stream = conn.transport
    assert isinstance(stream, MuxStream), f"not a yamux stream: {stream!r}"
    return stream._mux


def relay_streams(session: MuxSession) -> list[MuxStream]:
    """The session's streams that are relaying (past StartWorkConn: their protocol is a relay
    side, with the other transport as ``dst``)."""
    return [st for st in list(session._streams.values())
            if getattr(st.get_protocol(), "dst", None) is not None]


def relayed_to(stream: MuxStream) -> asyncio.BaseTransport:
    """The other transport of a relaying stream (the user socket on frps, the local one on frpc)."""
    dst: asyncio.BaseTransport | None = getattr(stream.get_protocol(), "dst", None)  # (uvloop's are no BaseTransport)
    assert dst is not None, f"stream {stream.stream_id} is not relaying"
    return dst


def count_registered_work_conns(monkeypatch: Any) -> list[MsgConn]:
    """Record every work connection frps's controls accept into their pools (from now on)."""
    from aiofrp.server.control import Control

    seen: list[MsgConn] = []
    original = Control.register_work_conn

    def register_work_conn(self: Control, conn: MsgConn) -> None:
        seen.append(conn)
        original(self, conn)

    monkeypatch.setattr(Control, "register_work_conn", register_work_conn)
    return seen
