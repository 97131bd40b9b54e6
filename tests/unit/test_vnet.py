"""The virtual network's framing and routing, without a TUN device (proto/vnet.py,
client/vnet/controller.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import struct

import pytest

from aiofrp.client.vnet.controller import Controller, host_route
from aiofrp.proto.vnet import MAX_MESSAGE, MessageReader, VnetFrameError, frame, packet_addrs


def ipv4(src: str, dst: str, payload: bytes = b"x") -> bytes:
    return (bytes([0x45, 0]) + struct.pack("!H", 20 + len(payload)) + bytes(8)
            + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + payload)


def ipv6(src: str, dst: str, payload: bytes = b"y") -> bytes:
    return (bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", len(payload), 17, 64)
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload)


def test_frame_is_little_endian_length_then_packet() -> None:
    assert frame(b"abc") == b"\x03\x00\x00\x00abc"
    with pytest.raises(VnetFrameError, match="length is 0"):
        frame(b"")
    with pytest.raises(VnetFrameError, match="too large"):
        frame(bytes(MAX_MESSAGE + 1))


def test_reader_cuts_messages_at_any_split() -> None:
    stream = b"".join(frame(p) for p in (b"one", b"two" * 100, b"3"))
    for cut in range(len(stream) + 1):
        r = MessageReader()
        got = r.feed(stream[:cut]) + r.feed(stream[cut:])
        assert got == [b"one", b"two" * 100, b"3"] and r.pending == 0


@pytest.mark.parametrize("bad", [b"\x00\x00\x00\x00", struct.pack("<I", MAX_MESSAGE + 1)])
def test_reader_refuses_bad_lengths(bad: bytes) -> None:
    with pytest.raises(VnetFrameError):
        MessageReader().feed(frame(b"ok") + bad)


def test_packet_addresses() -> None:
    assert packet_addrs(ipv4("100.86.0.2", "100.86.0.1")) == (bytes([100, 86, 0, 2]), bytes([100, 86, 0, 1]))
    src, dst = packet_addrs(ipv6("fd00::2", "fd00::1"))  # type: ignore[misc]
    assert ipaddress.IPv6Address(src) == ipaddress.IPv6Address("fd00::2")
    assert ipaddress.IPv6Address(dst) == ipaddress.IPv6Address("fd00::1")
    assert packet_addrs(b"") is None
    assert packet_addrs(b"\x45" + bytes(10)) is None  # cut short
    assert packet_addrs(b"\x44" + bytes(30)) is None  # header length 16 < 20
    assert packet_addrs(b"\x25" + bytes(30)) is None  # not IP


class Sink(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_routing_client_routes_then_learned_sources() -> None:
    c = Controller("100.86.0.1/24")
    written: list[bytes] = []
    c.write_tun = lambda packet, side: written.append(packet)  # type: ignore[method-assign]
    closed: list[str] = []
    visitor = c.register_client_route("v", [host_route("100.86.0.9")], lambda: closed.append("v"))
    vt = Sink()
    visitor.connection_made(vt)
    server = c.server_conn()
    st = Sink()
    server.connection_made(st)

    # a packet for the visitor's destination leaves on the visitor's connection, framed
    p = ipv4("100.86.0.1", "100.86.0.9")
    assert c.route(p) and vt.out == [frame(p)]
    # nothing is known of 100.86.0.5 until it sends on the server connection
    q = ipv4("100.86.0.1", "100.86.0.5")
    assert not c.route(q)
    hello = ipv4("100.86.0.5", "100.86.0.1", b"hello")
    server.data_received(frame(hello)[:7])
    server.data_received(frame(hello)[7:])
    assert written == [hello]
    assert c.route(q) and st.out == [frame(q)]
    # IPv6 the same way; junk from a connection is dropped, not written
    six = ipv6("fd00::5", "fd00::1")
    server.data_received(frame(b"\x25junk") + frame(six))
    assert written == [hello, six]
    assert c.route(ipv6("fd00::1", "fd00::5")) and len(st.out) == 2

    # a connection that goes away takes its routes with it
    server.connection_lost(None)
    assert not c.route(q)
    visitor.connection_lost(None)
    assert closed == ["v"] and not c.route(p)


def test_a_full_connection_drops_packets_instead_of_queueing() -> None:
    c = Controller("100.86.0.1/24")
    conn = c.register_client_route("v", [host_route("100.86.0.9")], lambda: None)
    t = Sink()
    conn.connection_made(t)
    p = ipv4("100.86.0.1", "100.86.0.9")
    conn.pause_writing()
    assert c.route(p) and t.out == [] and conn.dropped == 1
    conn.resume_writing()
    assert c.route(p) and t.out == [frame(p)]


def test_broken_framing_closes_the_connection() -> None:
    c = Controller("100.86.0.1/24")
    conn = c.server_conn()
    t = Sink()
    conn.connection_made(t)
    conn.data_received(b"\x00\x00\x00\x00")
    assert t.closed


def test_plugins_without_a_virtual_network_are_accepted_but_said(caplog: pytest.LogCaptureFixture) -> None:
    """Go accepts a virtual_net plugin without virtualNet.address (frp's full example has one) and
    it does nothing; ours accepts it too, and says so at start."""
    from aiofrp.client.service import Client
    from aiofrp.config import parse_client_config

    cfg = parse_client_config('[[proxies]]\nname = "p"\ntype = "stcp"\nsecretKey = "k"\n[proxies.plugin]\n'
                              'type = "virtual_net"\n[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "p"\n'
                              'secretKey = "k"\nbindPort = -1\n[visitors.plugin]\ntype = "virtual_net"\n'
                              'destinationIP = "100.86.0.1"\n')

    async def make() -> Client:
        return Client(cfg)

    with caplog.at_level("WARNING", logger="aiofrp.client"):
        client = asyncio.run(make())
    assert client.vnet is None
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("[p] the virtual_net plugin does nothing: virtualNet.address is not set") for m in said)
    assert any(m.startswith("[v] the virtual_net plugin does nothing") for m in said)


VISITOR = '[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "p"\nbindPort = -1\n[visitors.plugin]\n'


@pytest.mark.parametrize(("text", "error"), [
    ('virtualNet.address = "100.86.0.1"', "virtualNet.address: invalid CIDR address: 100.86.0.1"),
    (VISITOR + 'type = "virtual_net"', "visitors[0].plugin.destinationIP: destinationIP is required"),
    (VISITOR + 'type = "virtual_net"\ndestinationIP = "100.86.0"', "invalid destination IP address [100.86.0]"),
])
def test_bad_virtual_network_settings_are_refused(text: str, error: str) -> None:
    from aiofrp.config import ConfigError, parse_client_config

    with pytest.raises(ConfigError) as info:
        parse_client_config("featureGates = { VirtualNet = true }\n" + text, "frpc.toml")
    assert error in str(info.value)
