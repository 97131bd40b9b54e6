"""frpc side of NAT hole punching (frp §5.10): STUN discovery, the exchange with frps, punching.

One UDP socket (:class:`HoleSocket`) is used from discovery to the tunnel: its STUN mapped
addresses are what the peer punches towards, and after punching the tunnel (QUIC or KCP) runs
over it by taking over its datagram handler.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..proto import msg as m
from ..proto import stun
from ..proto.addr import fmt_addr, join_host_port
from ..proto.errors import ProtocolError
from ..proto.nathole import (
    ROLE_SENDER,
    classify_nat,
    compact,
    decode_sid,
    encode_sid,
    new_transaction_id,
    split_host_port,
)

if TYPE_CHECKING:
    from ..config.base import NatTraversalConfig
    from ..log import XLog
    from .transporter import MessageTransporter

log = logging.getLogger("aiofrp.client.nathole")

STUN_TIMEOUT = 3.0  # per Binding request, like frp
EXCHANGE_TIMEOUT = 5.0  # NatHoleVisitor/NatHoleClient -> NatHoleResp
PRE_CHECK_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 5.0
MAX_QUEUED = 256
MAX_LOCAL_IPS = 10

Addr = tuple[str, int]
NatHoleRequest = m.NatHoleVisitor | m.NatHoleClient


class NatHoleError(Exception):
    """One step of hole punching failed; the message says which and why."""


def fmt_addrs(addrs: list[str]) -> str:
    """Go's ``%v`` of a string slice: ``[a b c]``."""
    return "[" + " ".join(addrs) + "]"


# -- the UDP socket -------------------------------------------------------------------------------


class HoleSocket(asyncio.DatagramProtocol):
    """A UDP socket whose datagrams are queued (STUN, probes) until a tunnel takes it over."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.handler: Callable[[bytes, Addr], None] | None = None
        self._queue: collections.deque[tuple[bytes, Addr]] = collections.deque(maxlen=MAX_QUEUED)
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str = "0.0.0.0", port: int = 0) -> HoleSocket:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(cls, local_addr=(host, port), family=socket.AF_INET)
        return proto

    # protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        h = self.handler
        if h is not None:
            h(data, addr)
            return
        self._queue.append((data, addr))
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket %s: %s", self.local_port, exc)  # ICMP unreachable etc.: keep going

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # API
    def set_handler(self, handler: Callable[[bytes, Addr], None]) -> None:
        """Hand every further datagram to ``handler``, starting with the queued ones."""
        self.handler = handler
        while self._queue and self.handler is handler:
            handler(*self._queue.popleft())

    @property
    def local_port(self) -> int:
        return self.transport.get_extra_info("sockname")[1] if self.transport is not None else 0

    async def recv(self) -> tuple[bytes, Addr]:
        while not self._queue:
            if self.closed:
                raise ConnectionError("udp socket closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def sendto(self, data: bytes, addr: Addr, ttl: int = 0) -> None:
        t = self.transport
        if t is None or self.closed:
            return
        sock = t.get_extra_info("socket")
        original = 0
        if ttl > 0 and sock is not None:
            try:
                original = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            except OSError as exc:
                log.debug("set ttl error %s", exc)
                original = 0
        try:
            t.sendto(data, addr)
        finally:
            if original:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, original)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


# -- STUN ---------------------------------------------------------------------------------------------


async def resolve_udp4(addr: str) -> Addr:
    host, port = split_host_port(addr)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    if not infos:
        raise NatHoleError(f"cannot resolve {addr}")
    sockaddr = infos[0][4]
    return str(sockaddr[0]), int(sockaddr[1])


async def stun_request(sock: HoleSocket, server: Addr, *, change_ip: bool = False, change_port: bool = False,
                       timeout: float = STUN_TIMEOUT) -> tuple[stun.BindingResponse, Addr]:
    """One Binding transaction; returns the response and the address it came from."""
    req = stun.binding_request(change_ip=change_ip, change_port=change_port)
    sock.sendto(req.encode(), server)
    try:
        async with asyncio.timeout(timeout):
            while True:
                data, src = await sock.recv()
                try:
                    resp = stun.parse_binding_response(data)
                except stun.StunError:
                    continue
                if resp.transaction_id == req.transaction_id:
                    return resp, src
    except TimeoutError:
        raise NatHoleError("wait response from stun server timeout") from None


async def discover(sock: HoleSocket, stun_server: str) -> list[str]:
    """Our public ``ip:port`` as seen by the STUN server's primary and alternate addresses."""
    server = await resolve_udp4(stun_server)
    resp, _ = await stun_request(sock, server)
    if resp.mapped is None:
        raise NatHoleError("no external address found")
    addrs = [join_host_port(*resp.mapped)]
    if resp.other is not None:
        resp2, _ = await stun_request(sock, resp.other)
        if resp2.mapped is not None:
            addrs.append(join_host_port(*resp2.mapped))
    return addrs


async def filtering_behavior(sock: HoleSocket, stun_server: str, timeout: float = 0.5) -> str:
    """RFC 5780 §4.4 filtering test with CHANGE-REQUEST (informational; frp does not use it).

    ``endpoint-independent`` if an answer from the other IP and port gets through,
    ``address-dependent`` if only one from the other port does, else ``address-and-port-dependent``.
    """
    server = await resolve_udp4(stun_server)
    with contextlib.suppress(NatHoleError):
        await stun_request(sock, server, change_ip=True, change_port=True, timeout=timeout)
        return "endpoint-independent"
    with contextlib.suppress(NatHoleError):
        await stun_request(sock, server, change_port=True, timeout=timeout)
        return "address-dependent"
    return "address-and-port-dependent"


# -- local addresses ----------------------------------------------------------------------------------


def local_ips_for_nathole(limit: int = MAX_LOCAL_IPS) -> list[str]:
    """IPv4 addresses of the local interfaces, without loopback and link-local ones."""
    ips: list[str] = []
    for ip in _interface_ipv4s():
        addr = ipaddress.IPv4Address(ip)
        if addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified:
            continue
        if ip not in ips:
            ips.append(ip)
        if len(ips) >= limit:
            break
    return ips


def _interface_ipv4s() -> list[str]:
    out: list[str] = []
    try:
        import fcntl

        names = [n for _, n in socket.if_nameindex()]
    except (ImportError, OSError):
        names = []
    siocgifaddr = 0x8915  # Linux: the first IPv4 address of an interface
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            try:
                res = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            out.append(socket.inet_ntoa(res[20:24]))
    if not out:
        with contextlib.suppress(OSError):
            out = [str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    return out


# -- prepare / exchange ---------------------------------------------------------------------------------


@dataclass
class PrepareResult:
    sock: HoleSocket
    addrs: list[str]
    assisted_addrs: list[str]
    nat_type: str
    behavior: str


async def prepare(stun_server: str, disable_assisted_addrs: bool = False) -> PrepareResult:
    """STUN discovery on a fresh UDP socket, NAT classification, assisted (local) addresses."""
    sock = await HoleSocket.open()
    try:
        try:
            addrs = await discover(sock, stun_server)
        except (OSError, ValueError) as exc:
            raise NatHoleError(f"discover error: {exc}") from None
        except NatHoleError as exc:
            raise NatHoleError(f"discover error: {exc}") from None
        if len(addrs) < 2:
            raise NatHoleError("discover error: not enough addresses")
        local_ips = local_ips_for_nathole()
        try:
            feature = classify_nat(addrs, local_ips)
        except ValueError as exc:
            raise NatHoleError(f"classify nat feature error: {exc}") from None
        port = sock.local_port
        assisted = [] if disable_assisted_addrs else [join_host_port(ip, port) for ip in local_ips]
    except BaseException:
        sock.close()
        raise
    return PrepareResult(sock, addrs, assisted, feature.nat_type, feature.behavior)


async def exchange(control: MessageTransporter, message: NatHoleRequest, transaction_id: str, timeout: float) -> m.NatHoleResp:
    """Send ``message`` on the control and wait for the NatHoleResp with its transaction id."""
    fut: asyncio.Future[m.NatHoleResp] = asyncio.get_running_loop().create_future()
    control.nathole_waiters[transaction_id] = fut
    try:
        control.send(message)
        async with asyncio.timeout(timeout):
            return await fut
    except TimeoutError:
        raise NatHoleError("get natHoleRespMsg error: timeout") from None
    finally:
        control.nathole_waiters.pop(transaction_id, None)


async def pre_check(control: MessageTransporter, proxy_name: str, timeout: float = PRE_CHECK_TIMEOUT) -> None:
    tid = new_transaction_id()
    resp = await exchange(control, m.NatHoleVisitor(transaction_id=tid, proxy_name=proxy_name, pre_check=True),
                          tid, timeout)
    if resp.error:
        raise NatHoleError(resp.error)


async def exchange_info(control: MessageTransporter, message: NatHoleRequest, transaction_id: str,
                        timeout: float = EXCHANGE_TIMEOUT) -> m.NatHoleResp:
    resp = await exchange(control, message, transaction_id, timeout)
    if resp.error:
        raise NatHoleError(f"natHoleRespMsg get error info: {resp.error}")
    if not resp.candidate_addrs:
        raise NatHoleError("natHoleRespMsg get empty candidate addresses")
    return resp


def fmt_behavior(b: m.NatHoleDetectBehavior) -> str:
    ports = " ".join(f"{{From:{p.from_} To:{p.to}}}" for p in b.candidate_ports)
    return (f"{{Role:{b.role} Mode:{b.mode} TTL:{b.ttl} SendDelayMs:{b.send_delay_ms} "
            f"ReadTimeoutMs:{b.read_timeout} CandidatePorts:[{ports}] SendRandomPorts:{b.send_random_ports} "
            f"ListenRandomPorts:{b.listen_random_ports}}}")


# -- punching ------------------------------------------------------------------------------------------------


def _parse_addrs(addrs: list[str]) -> list[Addr]:
    out = []
    for a in addrs:
        try:
            out.append(split_host_port(a))
        except ValueError:
            continue
    return out


async def make_hole(
    sock: HoleSocket, resp: m.NatHoleResp, sk: str, xl: XLog | None = None,
) -> tuple[HoleSocket, Addr]:
    """Punch towards the peer as ``resp.detect_behavior`` says; return the socket and peer address
    of the first valid exchange. The other sockets (``listenRandomPorts``) are closed. ``xl``: the
    log prefixes of the proxy or visitor (Go's MakeHole logs with its xlog)."""
    lg: logging.Logger | XLog = log if xl is None else xl.on(log)
    b = resp.detect_behavior
    tid = new_transaction_id()
    socks = [sock]
    detect: list[str] = []
    if b.role == ROLE_SENDER:
        if b.send_delay_ms > 0:
            await asyncio.sleep(b.send_delay_ms / 1000)
        detect = list(resp.assisted_addrs) + list(resp.candidate_addrs)
    else:
        if not b.candidate_ports:
            detect = list(resp.candidate_addrs)
        for _ in range(min(b.listen_random_ports, 256)):
            try:
                socks.append(await HoleSocket.open())
            except OSError as exc:
                lg.warning("listen random udp addr error: %s", exc)
    background: list[asyncio.Task[None]] = []
    try:
        for addr in _parse_addrs(compact(detect)):
            for s in socks:
                s.sendto(encode_sid(resp.sid, tid, sk), addr, b.ttl)
        ips = compact([ip for ip, _ in _parse_addrs(resp.candidate_addrs)])
        loop = asyncio.get_running_loop()
        if b.candidate_ports:
            for s in socks:
                background.append(loop.create_task(_send_range(s, ips, b, resp.sid, tid, sk)))
        if b.send_random_ports > 0:
            for s in socks:
                background.append(loop.create_task(_send_random(s, ips, b, resp.sid, tid, sk)))
        timeout = b.read_timeout / 1000 if b.read_timeout > 0 else DEFAULT_READ_TIMEOUT
        waits = {loop.create_task(_wait_detect(s, resp.sid, sk, b.role, lg)): s for s in socks}
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()
        for t in done:
            if not t.cancelled() and t.exception() is None:
                win = waits[t]
                for s in socks:
                    if s is not win:
                        s.close()
                return win, t.result()
        raise NatHoleError("wait detect message timeout")
    except BaseException:
        for s in socks[1:]:
            s.close()
        raise
    finally:
        for bt in background:
            bt.cancel()


async def _wait_detect(sock: HoleSocket, sid: str, sk: str, role: str, lg: logging.Logger | XLog) -> Addr:
    while True:
        data, raddr = await sock.recv()
        try:
            probe = decode_sid(data, sk)
        except ProtocolError as exc:
            lg.debug("decode sid message from %s error: %s", join_host_port(*raddr), exc)
            continue
        if probe.sid != sid:
            lg.warning("get sid message with wrong sid: %s, expect: %s", probe.sid, sid)
            continue
        if not probe.response:
            if role == ROLE_SENDER:
                continue  # a sender only waits for answers
            sock.sendto(encode_sid(sid, probe.transaction_id, sk, response=True), raddr)
        return raddr


async def _send_range(sock: HoleSocket, ips: list[str], b: m.NatHoleDetectBehavior, sid: str, tid: str,
                      sk: str) -> None:
    for ip in ips:
        for pr in b.candidate_ports:
            for port in range(max(pr.from_, 1), min(pr.to, 65535) + 1):
                sock.sendto(encode_sid(sid, tid, sk), (ip, port), b.ttl)
                await asyncio.sleep(0.002)


async def _send_random(sock: HoleSocket, ips: list[str], b: m.NatHoleDetectBehavior, sid: str, tid: str,
                       sk: str) -> None:
    used: set[int] = set()
    for _ in range(min(b.send_random_ports, 65535)):
        port = 0
        for _ in range(10):
            p = random.randrange(1024, 65535)
            if p not in used:
                used.add(p)
                port = p
                break
        if not port:
            continue
        for ip in ips:
            sock.sendto(encode_sid(sid, tid, sk), (ip, port), b.ttl)
            await asyncio.sleep(0.015)


# -- the exchange both xtcp ends run ------------------------------------------------------------------


@dataclass
class Hole:
    """A punched hole: the socket (the tunnel runs over it), the peer's address, frps's answer."""

    sock: HoleSocket
    raddr: Addr
    resp: m.NatHoleResp


async def open_hole(
    control: MessageTransporter,
    xl: XLog,
    request: Callable[[str, PrepareResult], NatHoleRequest],
    *,
    stun_server: str,
    nat: NatTraversalConfig | None,
    secret_key: str,
    report: bool,
) -> Hole:
    """Prepare, exchange info, make the hole: what the xtcp visitor (``request`` makes its
    NatHoleVisitor) and the xtcp provider (its NatHoleClient) both do (frp §5.10 steps 3-6).

    ``request(transaction_id, prepared)`` builds the message for frps. With ``report`` (the
    provider) the outcome is sent as NatHoleReport. Each step logs Go's line on ``xl`` (the
    visitor's or proxy's: ``[RUNID] [NAME] ``); a failed step logs ``<step> error: <reason>`` and
    raises :class:`NatHoleError` with the same text. The socket is closed on failure and the
    caller's on success.
    """
    try:
        prep = await prepare(stun_server, bool(nat and nat.disable_assisted_addrs))
    except (NatHoleError, OSError) as exc:
        raise _step_failed(xl, "nathole prepare", exc) from None
    xl.info("nathole prepare success, nat type: %s, behavior: %s, addresses: %s, assistedAddresses: %s",
            prep.nat_type, prep.behavior, fmt_addrs(prep.addrs), fmt_addrs(prep.assisted_addrs))
    sock = prep.sock
    ok = False
    try:
        tid = new_transaction_id()
        try:
            resp = await exchange_info(control, request(tid, prep), tid)
        except NatHoleError as exc:
            raise _step_failed(xl, "nathole exchange info", exc) from None
        xl.info("get natHoleRespMsg, sid [%s], protocol [%s], candidate address %s, assisted address %s, "
                "detectBehavior: %s", resp.sid, resp.protocol, fmt_addrs(resp.candidate_addrs),
                fmt_addrs(resp.assisted_addrs), fmt_behavior(resp.detect_behavior))
        try:
            sock, raddr = await make_hole(sock, resp, secret_key, xl)
        except NatHoleError as exc:
            if report:
                control.send(m.NatHoleReport(sid=resp.sid, success=False))
            raise _step_failed(xl, "make hole", exc) from None
        xl.info("establishing nat hole connection successful, sid [%s], remoteAddr [%s]", resp.sid, fmt_addr(raddr))
        if report:
            control.send(m.NatHoleReport(sid=resp.sid, success=True))
        ok = True
        return Hole(sock, raddr, resp)
    finally:
        if not ok:
            sock.close()


def _step_failed(xl: XLog, step: str, exc: Exception) -> NatHoleError:
    xl.warning("%s error: %s", step, exc)
    return NatHoleError(f"{step} error: {exc}")
