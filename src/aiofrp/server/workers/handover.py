"""Vhost connections handed to the worker that holds their route (frps --workers N).

Every worker listens on vhostHTTPPort, vhostHTTPSPort and tcpmuxHTTPConnectPort (SO_REUSEPORT).
The worker that accepted a connection reads the head it parses anyway (Host and path, SNI, CONNECT
target); when its router has no route, :meth:`Handover.try_elsewhere` asks the registry which
worker has one (``find``) and sends that worker the socket (SCM_RIGHTS, ``socket.send_fds``) with
the bytes already read, one SOCK_SEQPACKET message on the receiver's unix socket::

    {"kind": "http"}\\n<bytes already read>          + the connection's fd

The receiver wraps the fd with ``loop.connect_accepted_socket`` and gives it to its vhost, which
reads the replayed bytes as if it had accepted the connection (``handed``: it answers "not found"
itself rather than handing it on again). No worker with the route: the usual not-found answer.
A keep-alive HTTP connection goes over at a later request for a route of another worker too,
once its earlier answers have left this worker's buffer. A stream of a cleartext HTTP/2
connection has no socket of its own: its request (as HTTP/1.1, server/vhost/h2c.py) goes to the
other worker on one end of a socketpair, and the relay joins the stream and the other end.

stcp/sudp visitors whose provider is in another worker take the same way: the visitor's
worker sends one end of a socketpair (``{"kind": "visitor"}``, the NewVisitorConn, the visitor's
user and wire protocol) and relays the visitor's stream to the other end; the provider's worker
serves that end as the visitor connection (server/service.py: Server.relay_visitor,
Server._adopt_visitor). So do work connections with ``transport.tcpMux = false`` (``{"kind":
"work"}``: the socket itself when it is plain TCP, else a socketpair end; Server.relay_work_conn).
Messages without a connection (:meth:`Handover.send_msg`, no fd): an xtcp visitor's NatHoleVisitor
for the provider's worker and the NatHoleResp back (``nathole``, ``natholeresp``; server/nathole.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import msgspec

from .registry import RemoteRegistry

log = logging.getLogger("aiofrp.server.workers")

MAX_MESSAGE = 256 * 1024  # head bytes handed over at most (more: answered here as not found)
# a keep-alive connection handed over at a later request: its earlier answers are written first
DRAIN_TIMEOUT = 10.0
DRAIN_INTERVAL = 0.01

Adopt = Callable[[str, socket.socket | None, bytes], None]
"""``adopt(kind, sock, data)``: the receiving server takes a handed-over connection (``sock``),
or a message of another worker (None: :meth:`Handover.send_msg`, e.g. an xtcp visitor's)."""


def handover_socket(registry_path: str, worker: int) -> str:
    return os.path.join(os.path.dirname(registry_path), f"handover-w{worker}.sock")


class Handover:
    def __init__(self, registry_path: str, registry: RemoteRegistry, adopt: Adopt,
                 spawn: Callable[[Any], object]) -> None:
        self.registry_path = registry_path
        self.registry = registry
        self.adopt = adopt
        self.spawn = spawn
        self.path = handover_socket(registry_path, registry.worker)
        self._listener: socket.socket | None = None
        self._peers: dict[int, socket.socket] = {}  # worker -> our connected socket to it
        self._conns: set[socket.socket] = set()
        self.handed = 0  # connections sent to other workers
        self.adopted = 0  # connections taken from other workers

    def start(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            os.unlink(self.path)  # left by this worker's predecessor, which died
        except FileNotFoundError:
            pass
        s.bind(self.path)
        os.chmod(self.path, 0o600)
        s.listen(64)
        s.setblocking(False)
        self._listener = s
        asyncio.get_running_loop().add_reader(s.fileno(), self._accept)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._listener is not None:
            loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for c in list(self._conns):
            loop.remove_reader(c.fileno())
            c.close()
        self._conns.clear()
        for p in self._peers.values():
            p.close()
        self._peers.clear()

    # -- receiving ------------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self._conns.add(conn)
        asyncio.get_running_loop().add_reader(conn.fileno(), self._receive, conn)

    def _receive(self, conn: socket.socket) -> None:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE + 1024, 1)
        except BlockingIOError:
            return
        except OSError:
            msg, fds = b"", []
        if not msg:
            asyncio.get_running_loop().remove_reader(conn.fileno())
            self._conns.discard(conn)
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        head, _, data = msg.partition(b"\n")
        try:
            kind = str(msgspec.json.decode(head)["kind"])
        except (msgspec.DecodeError, KeyError, TypeError):
            kind = ""
        if not fds:
            self.adopt(kind, None, data)
            return
        sock = socket.socket(fileno=fds[0])
        for fd in fds[1:]:
            os.close(fd)
        self.adopted += 1
        self.adopt(kind, sock, data)

    # -- sending --------------------------------------------------------------------------------

    def _peer(self, worker: int) -> socket.socket:
        s = self._peers.get(worker)
        if s is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(handover_socket(self.registry_path, worker))  # a local listener: at once
            s.setblocking(False)
            self._peers[worker] = s
        return s

    def send(self, worker: int, kind: str, data: bytes, transport: asyncio.BaseTransport) -> bool:
        sock = transport.get_extra_info("socket")
        return sock is not None and self.send_fd(worker, kind, data, sock.fileno())

    def send_msg(self, worker: int, kind: str, data: bytes) -> bool:
        """One message without a connection to ``worker`` (its server's ``adopt(kind, None, data)``)."""
        return self.send_fd(worker, kind, data, None)

    def send_fd(self, worker: int, kind: str, data: bytes, fd: int | None) -> bool:
        """One message with ``fd`` to ``worker``: ``kind``, then ``data`` (at most MAX_MESSAGE)."""
        if len(data) > MAX_MESSAGE:
            return False
        msg = msgspec.json.encode({"kind": kind}) + b"\n" + data
        for attempt in (1, 2):  # a peer socket of a worker that was started again: connect anew
            try:
                peer = self._peer(worker)
                if fd is None:
                    peer.send(msg)
                else:
                    socket.send_fds(peer, [msg], [fd])
                return True
            except OSError as exc:
                old = self._peers.pop(worker, None)
                if old is not None:
                    old.close()
                if attempt == 2:
                    log.warning("handing a %s connection to worker %d failed: %s", kind, worker, exc)
        return False

    def try_elsewhere(self, kind: str, host: str, path: str, user: str, data: bytes,
                      transport: asyncio.Transport, not_found: Callable[[], None]) -> None:
        """No route here: the worker that has one gets the connection; ``not_found`` if none."""
        transport.pause_reading()
        self.spawn(self._elsewhere(kind, host, path, user, data, transport, not_found))

    async def _elsewhere(self, kind: str, host: str, path: str, user: str, data: bytes,
                         transport: asyncio.Transport, not_found: Callable[[], None]) -> None:
        try:
            owner = await self.registry.find(kind, host, path, user)
        except ConnectionError:
            owner = None
        if owner is not None:  # what this worker wrote to the connection goes out first
            deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT
            while transport.get_write_buffer_size() and not transport.is_closing():
                if asyncio.get_running_loop().time() > deadline:
                    owner = None
                    break
                await asyncio.sleep(DRAIN_INTERVAL)
        if transport.is_closing():
            return
        if owner is not None and transport.get_extra_info("socket") is None:
            # no socket to hand over (a stream of a cleartext HTTP/2 connection): relayed
            if await self.relay(owner, kind, data, lambda: (transport, b"", False)):
                log.debug("%s request for host [%s] relayed to worker %d", kind, host, owner)
                return
        elif owner is not None and self.send(owner, kind, data, transport):
            self.handed += 1
            log.debug("%s connection for host [%s] handed to worker %d", kind, host, owner)
            transport.abort()  # our descriptor only: the connection lives on in the other worker
            return
        transport.resume_reading()
        not_found()

    async def relay(self, owner: int, kind: str, data: bytes,
                    take: Callable[[], tuple[asyncio.Transport, bytes, bool]], *, name: str = "") -> bool:
        """``owner`` gets one end of a socketpair as a connection of ``kind`` with ``data`` read
        from it; once it is sent, ``take()`` gives this worker's side (the transport, the bytes
        already read from it and whether it ended) and a relay joins it to the other end. False
        (``take`` not called): it could not be sent."""
        from ...net.relay import PendingConn, Relay

        ours, theirs = socket.socketpair()
        try:
            sent = self.send_fd(owner, kind, data, theirs.fileno())
        finally:
            theirs.close()
        if not sent:
            ours.close()
            return False
        self.handed += 1
        transport, a_data, a_eof = take()
        try:
            ot, pending = await asyncio.get_running_loop().connect_accepted_socket(PendingConn, ours)
        except OSError:
            ours.close()
            transport.abort()
            return True
        if transport.is_closing():
            ot.abort()
            return True
        Relay(transport, ot, a_data=a_data, a_eof=a_eof, b_data=pending.take(), b_eof=pending.eof, name=name)
        return True
