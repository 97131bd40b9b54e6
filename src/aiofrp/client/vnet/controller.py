"""Which connection each packet of the virtual network takes (Go's ``pkg/vnet/controller.go``).

One :class:`Controller` per frpc, made when ``virtualNet.address`` is set. It reads the TUN device
(:mod:`.tun`) and sends each IPv4/IPv6 packet, framed (:mod:`aiofrp.proto.vnet`), over:

- a **client route**: a visitor's ``virtual_net`` plugin registers its ``destinationIP`` (a host
  route) with the connection it keeps open through its stcp/xtcp visitor; a packet whose
  destination lies in a route's networks goes there;
- else the **server route**: a proxy's ``virtual_net`` plugin hands each work connection to the
  controller, which learns the source address of every packet that comes in on it; a packet for
  that address goes back over the same connection.

Packets that come in on either kind of connection are written to the TUN device. Anything else is
dropped, as Go drops it (not IPv4/IPv6, no route). A connection whose framing breaks is closed
with a log line; its routes go with it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Callable

from ...proto.vnet import MessageReader, VnetFrameError, frame, packet_addrs
from .tun import TunDevice, TunError, open_tun

log = logging.getLogger("aiofrp.client.vnet")

__all__ = ["Controller", "VnetError", "host_route"]

READ_SIZE = 65536  # one packet per read (no offloads): more than any MTU
READS_PER_TURN = 256  # packets taken from the device per readiness callback before yielding

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class VnetError(Exception):
    """The controller could not start (the TUN device); the text is the reason."""


def host_route(ip: str) -> Network:
    """The /32 or /128 route of one address (a visitor plugin's ``destinationIP``)."""
    addr = ipaddress.ip_address(ip)
    return ipaddress.ip_network(f"{addr}/{addr.max_prefixlen}")


class _Route:
    __slots__ = ("conn", "nets")

    def __init__(self, nets: list[tuple[int, int, int]], conn: VnetConn) -> None:
        self.nets = nets  # (address length in bytes, network as int, mask as int)
        self.conn = conn

    def matches(self, dst: bytes) -> bool:
        n = int.from_bytes(dst, "big")
        size = len(dst)
        return any(ln == size and n & mask == net for ln, net, mask in self.nets)


class Controller:
    """The virtual network of one frpc: its TUN device and the two routers."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.tun: TunDevice | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_routes: dict[str, _Route] = {}  # visitor name -> its route and connection
        self._server_conns: dict[bytes, VnetConn] = {}  # source address seen -> its connection
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def init(self) -> None:
        """Create the TUN device (Go's ``Init``); :class:`VnetError` when it cannot be. In a worker
        thread: pyroute2's netlink calls run an event loop of their own (and uvloop has no netlink
        datagram endpoints)."""
        try:
            self.tun = await asyncio.to_thread(open_tun, self.address)
        except (TunError, ValueError) as exc:
            raise VnetError(str(exc)) from None
        except ImportError as exc:
            raise VnetError(f"pyroute2 is needed for virtualNet ({exc})") from None
        log.info("virtual network device %s with address %s", self.tun.name, self.address)

    def run(self) -> None:
        """Start reading the device (Go's ``Run``, here a reader callback on the loop)."""
        assert self.tun is not None, "init() first"
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.tun.fd, self._readable)
        log.info("virtual network controller start...")

    def stop(self) -> None:
        """Close the device (the interface goes with it) and every connection."""
        if self._closed:
            return
        self._closed = True
        tun = self.tun
        if tun is not None and tun.fd >= 0:
            if self._loop is not None:
                self._loop.remove_reader(tun.fd)
            tun.close()
        for route in list(self._client_routes.values()):
            route.conn.close()
        for conn in list(self._server_conns.values()):
            conn.close()
        self._client_routes.clear()
        self._server_conns.clear()

    # -- packets from the device ----------------------------------------------------------------

    def _readable(self) -> None:
        tun = self.tun
        if tun is None or tun.fd < 0:
            return
        for _ in range(READS_PER_TURN):
            try:
                packet = os.read(tun.fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("vnet read from tun error: %s", exc.strerror or exc)
                if self._loop is not None:
                    self._loop.remove_reader(tun.fd)
                return
            if not packet:
                return
            self.route(packet)

    def route(self, packet: bytes) -> bool:
        """Send one packet from the device where it belongs; False when it was dropped."""
        addrs = packet_addrs(packet)
        if addrs is None:
            log.log(5, "unknown packet, discarded(%d)", len(packet))
            return False
        dst = addrs[1]
        for route in self._client_routes.values():
            if route.matches(dst):
                route.conn.send(packet)
                return True
        conn = self._server_conns.get(dst)
        if conn is not None:
            conn.send(packet)
            return True
        log.log(5, "no route found for packet to %s", ipaddress.ip_address(dst))
        return False

    def write_tun(self, packet: bytes, side: str) -> None:
        """A packet that came in on a connection goes to the device."""
        tun = self.tun
        if tun is None or tun.fd < 0:
            return
        try:
            os.write(tun.fd, packet)
        except BlockingIOError:  # the device's queue is full: dropped, as a router would
            pass
        except OSError as exc:
            log.warning("%s write tun error: %s", side, exc.strerror or exc)

    # -- connections ------------------------------------------------------------------------------

    def register_client_route(self, name: str, routes: list[Network], on_close: Callable[[], None]) -> VnetConn:
        """A visitor's route (Go's ``RegisterClientRoute``): the protocol of the controller's end of
        the visitor's connection; packets for ``routes`` go out on it from now on."""
        conn = VnetConn(self, "client", on_close)
        nets = [(n.max_prefixlen // 8, int(n.network_address), int(n.netmask)) for n in routes]
        self._client_routes[name] = _Route(nets, conn)
        return conn

    def unregister_client_route(self, name: str) -> None:
        self._client_routes.pop(name, None)

    def server_conn(self, on_close: Callable[[], None] | None = None) -> VnetConn:
        """The protocol for one work connection of a proxy's plugin (Go's
        ``StartServerConnReadLoop``): the source addresses of its packets route back over it."""
        return VnetConn(self, "server", on_close)

    def _forget(self, conn: VnetConn) -> None:
        if conn.side == "client":
            for name, route in list(self._client_routes.items()):
                if route.conn is conn:
                    del self._client_routes[name]
        else:
            for src in [s for s, c in self._server_conns.items() if c is conn]:
                del self._server_conns[src]

    def _learn(self, src: bytes, conn: VnetConn) -> None:
        if self._server_conns.get(src) is not conn:
            self._server_conns[src] = conn


class VnetConn(asyncio.Protocol):
    """The controller's end of one virtual_net connection: framed packets in both directions."""

    def __init__(self, controller: Controller, side: str, on_close: Callable[[], None] | None) -> None:
        self.controller = controller
        self.side = side  # "client" (a visitor's) or "server" (a proxy's work connection)
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self._reader = MessageReader()
        self._full = False  # the connection's write buffer is above its high-water mark
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, packet: bytes) -> None:
        """Queue a packet on the connection; dropped while the connection cannot keep up (a full
        router queue: TCP inside the tunnel slows down, nothing piles up in memory). Go's controller
        blocks on the write instead, and the kernel drops at the TUN device's queue."""
        t = self.transport
        if t is None or t.is_closing():
            return
        if self._full:
            self.dropped += 1
            return
        t.write(frame(packet))

    def pause_writing(self) -> None:
        self._full = True

    def resume_writing(self) -> None:
        self._full = False

    def data_received(self, data: bytes) -> None:
        try:
            packets = self._reader.feed(data)
        except VnetFrameError as exc:
            log.warning("%s read error: %s", self.side, exc)
            self.close()
            return
        controller = self.controller
        for packet in packets:
            addrs = packet_addrs(packet)
            if addrs is None:
                log.log(5, "unknown packet, discarded(%d)", len(packet))
                continue
            if self.side == "server":
                controller._learn(addrs[0], self)
            controller.write_tun(packet, self.side)

    def eof_received(self) -> bool:
        return False  # the connection closes

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.controller._forget(self)
        if self.on_close is not None:
            cb, self.on_close = self.on_close, None
            cb()
