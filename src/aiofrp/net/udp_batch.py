"""Send many UDP datagrams with few system calls.

A KCP or FEC flush produces dozens of datagrams at once, nearly all of one size (full segments,
and parity shards as wide as the widest data shard). Python has no ``sendmmsg``, so
:class:`DatagramBatcher` uses Linux UDP generic segmentation offload instead: a run of
equal-sized datagrams (the last may be shorter) goes to the kernel as one buffer in one
``sendmsg`` with ``UDP_SEGMENT``, and the kernel cuts it into the same datagrams on the wire —
the peer sees exactly what one ``sendto`` per datagram would have sent. Single datagrams, odd
sizes, platforms without ``UDP_SEGMENT`` and a full socket buffer go through the transport's
``sendto`` as before.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DatagramBatcher", "GroUDP", "enlarge_buffers", "runs"]

UDP_SEGMENT = 103  # linux/udp.h: setsockopt / cmsg level SOL_UDP
UDP_GRO = 104  # linux/udp.h: receive a run of equal datagrams as one buffer, its segment size in a cmsg
READ_BATCHES = 64  # reads per readable event before the loop serves others
MAX_SEGMENTS = 64  # linux UDP_MAX_SEGMENTS
MAX_PAYLOAD = 65000  # bytes per GSO send (under the 65,507-byte UDP limit)
_U16 = struct.Struct("=H")
_gso_broken = sys.platform != "linux"  # set for good when the kernel refuses UDP_SEGMENT


def enlarge_buffers(sock: socket.socket | None, size: int) -> None:
    """Raise a UDP socket's kernel receive and send buffers to ``size`` bytes (the kernel caps it
    at net.core.rmem_max / wmem_max): room for a burst, where the default ~200 KiB receive buffer
    holds a few hundred datagrams and drops the rest (each drop a loss to a congestion controller)."""
    if sock is None:
        return
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            if sock.getsockopt(socket.SOL_SOCKET, opt) < size:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
        except OSError:
            pass


def runs(datagrams: Sequence[bytes]) -> list[tuple[int, int]]:
    """(start, end) index ranges of ``datagrams`` that one GSO send can carry: equal sizes except
    a shorter last one, at most :data:`MAX_SEGMENTS` and :data:`MAX_PAYLOAD` bytes."""
    out = []
    i, n = 0, len(datagrams)
    while i < n:
        size = len(datagrams[i])
        j = i + 1
        limit = min(n, i + MAX_SEGMENTS, i + max(1, MAX_PAYLOAD // max(size, 1)))
        while j < limit and len(datagrams[j]) == size:
            j += 1
        if j < limit and len(datagrams[j]) < size:
            j += 1  # a shorter datagram may end the run
        out.append((i, j))
        i = j
    return out


class DatagramBatcher:
    """``send(datagrams, addr)`` over a UDP transport (``addr`` None: its connected peer); one
    batcher serves every peer of a listening socket.

    ``on_error`` gets errors of the batched sends the transport would have reported itself (an ICMP
    port-unreachable on a connected socket shows up on whichever call comes first)."""

    def __init__(self, transport: asyncio.DatagramTransport,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self._transport = transport
        self._buffered: Callable[[], int] = getattr(transport, "get_write_buffer_size", lambda: 0)
        self._on_error = on_error
        self._sock: socket.socket | None = None
        if not _gso_broken:
            raw = transport.get_extra_info("socket")
            try:
                # uvloop hands out a pseudo-socket without sendmsg: a duplicate descriptor of the
                # same socket (O_NONBLOCK is shared) does the batched sends
                self._sock = socket.socket(fileno=os.dup(raw.fileno())) if raw is not None else None
            except (OSError, AttributeError, ValueError):
                self._sock = None

    def send(self, datagrams: Sequence[bytes], addr: Any = None) -> None:
        global _gso_broken
        sock = self._sock
        sendto = self._transport.sendto
        if sock is None or _gso_broken or len(datagrams) < 2 or self._buffered():
            for d in datagrams:
                sendto(d, addr)
            return
        for i, j in runs(datagrams):
            if j - i == 1:
                sendto(datagrams[i], addr)
                continue
            buf = b"".join(datagrams[i:j])
            cmsg = [(socket.SOL_UDP, UDP_SEGMENT, _U16.pack(len(datagrams[i])))]
            try:
                if addr is None:
                    sock.sendmsg([buf], cmsg)
                else:
                    sock.sendmsg([buf], cmsg, 0, addr)
            except BlockingIOError:
                for d in datagrams[i:]:
                    sendto(d, addr)  # the transport buffers what the socket cannot take now
                return
            except (ConnectionRefusedError, ConnectionResetError) as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                return
            except OSError:
                _gso_broken = True  # no UDP_SEGMENT here (old kernel, device without offload)
                for d in datagrams[i:]:
                    sendto(d, addr)
                return

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class GroUDP:
    """A UDP socket read with Linux UDP generic receive offload, for a bulk receiver (frpc's QUIC
    socket, frps's quicBindPort).

    uvloop's datagram endpoint reads one datagram per system call and calls Python once per
    datagram. With ``UDP_GRO`` the kernel hands over a run of equal-sized datagrams of the peer
    (GSO sends arrive that way on loopback; NICs coalesce too) as one buffer with the segment size
    in a control message; ``on_datagrams(datagrams, addr)`` gets them cut apart again, the
    boundaries exactly as sent, one call per read (GRO coalesces one sender's datagrams only). Without
    ``UDP_GRO`` (other platforms, old kernels) each read is one datagram.

    It is also the transport its :class:`DatagramBatcher` sends through: ``sendto`` writes at once
    and drops a datagram the socket buffer has no room for, as the network would (no user-space
    queue); on a connected socket ``addr`` may be None. ``on_error`` gets a read's or a send's ICMP
    error (port unreachable: a connected peer's socket is gone)."""

    def __init__(self, sock: socket.socket, on_datagrams: Callable[[list[bytes], Any], None],
                 on_error: Callable[[Exception], None], *, gro: bool = True) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._on_datagrams = on_datagrams
        self._on_error = on_error
        self._closed = False
        self._cmsg_size = 0
        if gro:
            try:
                sock.setsockopt(socket.SOL_UDP, UDP_GRO, 1)
                self._cmsg_size = socket.CMSG_SPACE(4)
            except (OSError, AttributeError):
                pass
        try:
            self._peer: Any = sock.getpeername()
        except OSError:
            self._peer = None  # unconnected: each read names its sender
        self._loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def connect(cls, host: str, port: int, on_datagrams: Callable[[list[bytes], Any], None],
                      on_error: Callable[[Exception], None],
                      local_addr: tuple[str, int] | None = None) -> GroUDP:
        """A UDP socket connected to ``host``:``port`` (resolved like ``create_datagram_endpoint``
        does: the first address that connects)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        err: OSError | None = None
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            try:
                sock.setblocking(False)
                if local_addr is not None:
                    sock.bind(local_addr)
                sock.connect(addr)
            except OSError as exc:
                sock.close()
                err = exc
                continue
            return cls(sock, on_datagrams, on_error)
        raise err or OSError(f"getaddrinfo({host!r}) returned nothing")

    def _readable(self) -> None:
        sock = self._sock
        cmsg_size = self._cmsg_size
        for _ in range(READ_BATCHES):
            try:
                data, anc, _flags, addr = sock.recvmsg(65536, cmsg_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._on_error(exc)
                return
            size = 0
            for level, kind, value in anc:
                if level == socket.SOL_UDP and kind == UDP_GRO:
                    size = int.from_bytes(value[:4], sys.byteorder)
            if self._peer is not None:
                addr = self._peer
            if 0 < size < len(data):
                self._on_datagrams([data[i:i + size] for i in range(0, len(data), size)], addr)
            else:
                self._on_datagrams([data], addr)
            if self._closed:
                return

    # the transport side, for DatagramBatcher and single sends

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if self._closed:
            return
        try:
            if addr is None:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            pass  # dropped: a full socket buffer, as the network would
        except OSError as exc:
            self._on_error(exc)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "peername":
            return self._peer
        if name == "sockname":
            return self._sock.getsockname()
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
