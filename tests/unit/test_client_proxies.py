"""frpc's proxies as classes in a registry (client/proxies/), the plugin seam (client/plugins/)
and the control's message table, in one event loop over loopback sockets: the "frps" end of a
work connection is a plain asyncio stream, the local service a real echo server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, ClassVar

import pytest

from aiofrp.client.plugins import PLUGIN_TYPES, ClientPlugin, WorkConn
from aiofrp.client.proxies import PROXY_TYPES, ProxyPhase, ProxyWrapper
from aiofrp.client.proxies.general_tcp import GeneralTCPProxy
from aiofrp.client.proxies.udp import UDPProxy
from aiofrp.client.service import Client
from aiofrp.config import PROXY_TYPES as CONFIG_PROXY_TYPES
from aiofrp.config import ClientConfig
from aiofrp.config.plugin import UnixDomainSocketPluginOptions, VirtualNetPluginOptions
from aiofrp.config.proxy import ProxyTransport, TCPProxyConfig, UDPProxyConfig
from aiofrp.net.msgconn import Dispatcher, MsgConn
from aiofrp.proto import msg as m

if TYPE_CHECKING:
    from aiofrp.client.transporter import MessageTransporter

pytestmark = pytest.mark.timeout(20)

PP_START = m.StartWorkConn(proxy_name="web", src_addr="192.0.2.7", src_port=40000, dst_addr="198.51.100.1",
                           dst_port=6000)


class FakeControl:
    """A control session as proxies see it (client/transporter.py: MessageTransporter)."""

    run_id = "test-run-id"

    def __init__(self) -> None:
        self.sent: list[m.Message] = []
        self.nathole_waiters: dict[str, asyncio.Future[m.NatHoleResp]] = {}

    def send(self, message: m.Message) -> None:
        self.sent.append(message)

    async def connect_server(self) -> MsgConn:
        raise ConnectionRefusedError("no frps in this test")


def as_control(fake: FakeControl) -> MessageTransporter:
    return fake


@asynccontextmanager
async def echo_server(seen: list[bytes]) -> AsyncIterator[int]:
    """A local service that records and echoes what it gets; yields its port."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            seen.append(data)
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def work_conn() -> tuple[MsgConn, asyncio.StreamReader, asyncio.StreamWriter]:
    """A work connection as frpc holds it after StartWorkConn, and frps's end of it."""
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, conn = await asyncio.get_running_loop().create_connection(MsgConn, "127.0.0.1", port)
    reader, writer = await accepted
    server.close()
    return conn, reader, writer


async def read_until(reader: asyncio.StreamReader, want: bytes) -> bytes:
    got = b""
    async with asyncio.timeout(5):
        while len(got) < len(want):
            chunk = await reader.read(65536)
            if not chunk:
                break
            got += chunk
    return got


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def test_every_proxy_type_has_a_class_and_tcp_like_types_share_one() -> None:
    assert set(PROXY_TYPES) == set(CONFIG_PROXY_TYPES)
    for t in ("tcp", "http", "https", "tcpmux", "stcp"):  # Go's general_tcp.go
        assert PROXY_TYPES[t] is GeneralTCPProxy
    own = {PROXY_TYPES[t] for t in ("udp", "sudp", "xtcp")}
    assert len(own) == 3 and GeneralTCPProxy not in own


def test_tcp_work_conn_dials_local_service_with_proxy_protocol_header() -> None:
    async def main() -> None:
        seen: list[bytes] = []
        async with echo_server(seen) as port:
            cfg = TCPProxyConfig(name="web", local_port=port, transport=ProxyTransport(proxy_protocol_version="v1"))
            client = Client(ClientConfig(proxies=[cfg]))
            pw = client.proxies["web"]
            assert isinstance(pw.proxy, GeneralTCPProxy)
            pw.proxy.run(as_control(FakeControl()))
            conn, reader, writer = await work_conn()
            writer.write(b"early bytes ")  # sent before the local service is dialed: held, not lost
            await pw.handle_work_conn(conn, PP_START)
            writer.write(b"and more")
            header = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 6000\r\n"
            want = header + b"early bytes and more"  # the echo sends the header back too
            assert await read_until(reader, want) == want
            assert b"".join(seen) == want
            writer.close()

    run(main)


class RecordingPlugin(ClientPlugin[UnixDomainSocketPluginOptions]):
    """A stand-in plugin: relays each work connection to ``echo_port`` itself."""

    echo_port: ClassVar[int] = 0
    handled: ClassVar[list[WorkConn]] = []
    closed: ClassVar[int] = 0

    async def handle(self, conn: WorkConn) -> None:
        RecordingPlugin.handled.append(conn)
        loop = asyncio.get_running_loop()
        local, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", self.echo_port)
        conn.relay(local)

    def close(self) -> None:
        RecordingPlugin.closed += 1


def test_a_registered_plugin_serves_work_connections_instead_of_the_local_dial(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The seam client plugins (issue 10) plug into: PLUGIN_TYPES by type, WorkConn in hand."""
    monkeypatch.setitem(PLUGIN_TYPES, "unix_domain_socket", RecordingPlugin)

    async def main() -> None:
        seen: list[bytes] = []
        async with echo_server(seen) as port:
            RecordingPlugin.echo_port = port
            cfg = TCPProxyConfig(name="web", local_port=1,  # never dialed: the plugin serves
                                 plugin=UnixDomainSocketPluginOptions(unix_path="/nonexistent"),
                                 transport=ProxyTransport(proxy_protocol_version="v2"))
            pw = ProxyWrapper(Client(ClientConfig()), cfg)  # Client() would refuse the plugin
            control = FakeControl()
            pw.start(as_control(control))
            pw.on_start_resp(m.NewProxyResp(proxy_name="web", remote_addr=":6000"))
            assert pw.phase is ProxyPhase.RUNNING and isinstance(pw.proxy.plugin, RecordingPlugin)
            conn, reader, writer = await work_conn()
            await pw.handle_work_conn(conn, PP_START)
            writer.write(b"through the plugin")
            assert await read_until(reader, b"through the plugin") == b"through the plugin"
            (wc,) = RecordingPlugin.handled
            assert wc.proxy_name == "web"
            assert (wc.src_addr, wc.dst_addr) == (("192.0.2.7", 40000), ("198.51.100.1", 6000))
            assert wc.proxy_protocol_header is not None and wc.proxy_protocol_header.startswith(b"\r\n\r\n\0\r\n")
            pw.stop()  # the control session ended: the plugin is released
            assert RecordingPlugin.closed == 1 and pw.proxy.plugin is None
            writer.close()

    run(main)


def test_a_plugin_that_is_not_registered_is_a_start_error_as_in_go(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiofrp.client.plugins import PLUGIN_TYPES

    monkeypatch.delitem(PLUGIN_TYPES, "virtual_net")  # as if this frpc had no such plugin

    async def main() -> None:
        cfg = TCPProxyConfig(name="web", plugin=VirtualNetPluginOptions())
        pw = ProxyWrapper(Client(ClientConfig(server_addr="frps.example")), cfg)
        control = FakeControl()
        pw.start(as_control(control))
        assert pw.phase is ProxyPhase.WAIT_START and isinstance(control.sent[0], m.NewProxy)
        pw.on_start_resp(m.NewProxyResp(proxy_name="web", remote_addr=":6000"))
        assert pw.phase is ProxyPhase.START_ERROR  # type: ignore[comparison-overlap]  # changed by the call
        assert control.sent[1:] == [m.CloseProxy(proxy_name="web")]
        status = json.dumps(pw.status(), separators=(",", ":"))
        assert status == ('{"name":"web","type":"tcp","status":"start error",'
                          '"err":"plugin [virtual_net] is not registered","local_addr":""'
                          ',"plugin":"virtual_net","remote_addr":""}')
        pw.close()

    run(main)


def test_proxy_phases_have_frps_names() -> None:
    assert [p.value for p in ProxyPhase] == ["new", "wait start", "start error", "running", "check failed",
                                              "closed"]


def test_udp_work_connection_state_belongs_to_its_proxy() -> None:
    """A new work connection replaces that proxy's previous one only (no module-global state)."""
    async def main() -> None:
        client = Client(ClientConfig(proxies=[UDPProxyConfig(name="a", local_port=9), UDPProxyConfig(name="b",
                                                                                                     local_port=9)]))
        a, b = client.proxies["a"].proxy, client.proxies["b"].proxy
        assert isinstance(a, UDPProxy) and isinstance(b, UDPProxy)
        ends = []
        sessions = []
        for proxy in (a, b, a):
            conn, _, writer = await work_conn()
            ends.append(writer)
            await proxy.handle_work_conn(conn, m.StartWorkConn(proxy_name=proxy.cfg.name))
            sessions.append(proxy.session)
        first_a = sessions[0]
        assert first_a is not None and a.session is sessions[2] is not first_a
        assert first_a.stream.closed.done()  # replaced, and closed
        assert b.session is not None and not b.session.stream.closed.done()
        a.close()
        b.close()
        assert a.session is None and b.session is None
        for w in ends:
            w.close()

    run(main)


def test_handlers_dispatch_by_message_type() -> None:
    """frpc's control uses the same table as frps's (net/msgconn.py: Dispatcher)."""
    got: list[m.Message] = []
    ignored: list[m.Message] = []
    h: Dispatcher[None] = Dispatcher(default=ignored.append)
    h.register(m.Pong, got.append)
    h.dispatch(m.Pong(error="x"))
    h.dispatch(m.Ping())
    assert got == [m.Pong(error="x")] and ignored == [m.Ping()]
