"""The Registry seam: every name frps must keep unique across all its processes.

One interface, :class:`Registry`, two implementations:

* :class:`LocalRegistry`: an in-process :class:`Book`; what ``frps --workers 1`` uses, so the
  single-process path makes the very calls a worker makes;
* :class:`RemoteRegistry`: the same calls as newline-delimited JSON frames over a unix socket to the
  supervisor (:class:`RegistryServer`), which keeps the one :class:`Book` of all workers.

A claim is a lease ``(kind, key)`` held by one worker. Kinds used by frps:

* ``runid``: a logged-in client; claimed with ``evict=True``, so a client that reconnects (to this
  or another worker) takes its run id over and the holder first closes the old control (Go:
  ``ControlManager.Add``);
* ``proxy``: a proxy name (tcp, udp, http, https, tcpmux, stcp, sudp, xtcp: all share one name
  space, as in Go's ``ProxyManager``); a second claim is refused: ``proxy [x] already exists``;
* ``group``: a name of one holder (no user today: groups share theirs, below).

A load-balancing group may have members in several workers: :meth:`Registry.join_group`
books the group's parameters and key (its SHA-256) for every worker that has a member, the first
one fixing them (Go's order of refusals: the parameters, then the key); a tcp group's workers
each listen on its port with SO_REUSEPORT, so the kernel spreads the group's user connections over
the workers and each worker over its members. A lease (kind ``tcpgroup``) is released with the
member that took it; the group goes with the last lease. The vhost proxies of a worker book their
route keys the same way (``route:...``, shared by the members of one group, else by one proxy),
so a domain served in one worker is refused to another client in another worker as in one process
(``router config conflict``).

Other remote ports need no claim: only the worker that holds a tcp/udp proxy listens on its port,
without SO_REUSEPORT, so the kernel refuses a port another worker already listens on.

A dead worker's leases are dropped when its socket closes. The frames are small and message-shaped
(claim, release, owner, evict) so a network registry can replace the unix socket later.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

log = logging.getLogger("aiofrp.server.workers")

Evictor = Callable[[str, str], Awaitable[None]]
"""``evict(kind, key)``: the holding worker gives a lease up (closes the old control)."""

KINDS = ("runid", "proxy", "group")
GROUP_KIND = "tcpgroup"  # join_group's leases (shared by the workers with members)

# join_group's refusals
GROUP_PARAMS = "params"  # other parameters than the group's (tcp: the requested port)
GROUP_AUTH = "auth"  # another key (Go: ErrGroupAuthFailed)
GROUP_PORT_TAKEN = "taken"  # the port is another group's (each listens with SO_REUSEPORT)


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted claim; release it with :meth:`Registry.release`."""

    kind: str
    key: str
    lease: int  # unique per grant: a stale release (after an evict) does not drop the new holder's


class Registry(Protocol):
    """The names of one frps, whichever process holds them."""

    worker: int  # this process's worker number (0: the only one)

    async def claim(self, kind: str, key: str, *, evict: bool = False) -> Lease | None:
        """The lease, or None when another holder has it (``evict``: take it over instead)."""

    def release(self, lease: Lease) -> None: ...

    async def owner(self, kind: str, key: str) -> int | None:
        """The worker holding ``(kind, key)``, None when nobody does."""

    async def find(self, kind: str, host: str, path: str, user: str) -> int | None:
        """Another worker with a vhost route (``kind``: http, https, tcpmux) for this request,
        asked of every worker (their routers match wildcards and locations); None if none."""

    async def join_group(self, name: str, params: str, digest: str, bound: int) -> tuple[Lease | None, str, int]:
        """A member of group ``name`` (its ``params``, e.g. a tcp group's requested port, and the
        SHA-256 ``digest`` of its key), which has ``bound`` its listening socket (tcp; else 0):
        ``(lease, "", the group's port)``, or ``(None, refusal, 0)``. The group's port is the
        first member's ``bound``; where the requested port was 0, another's may differ: listen on
        the one returned."""

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Group:
    """A tcp group as the book keeps it: fixed by its first member."""

    params: str  # the first member's (tcp: the requested port)
    digest: str  # SHA-256 of the group key
    real_port: int  # the port its workers listen on
    leases: dict[int, int]  # lease -> worker


class Book:
    """The leases themselves: ``(kind, key) -> (worker, lease)``; sans-I/O but for the evictor."""

    def __init__(self, evict: Callable[[int, str, str], Awaitable[None]]) -> None:
        self._held: dict[tuple[str, str], tuple[int, int]] = {}
        self._groups: dict[str, _Group] = {}  # tcp groups by name (join_group)
        self._group_ports: dict[int, str] = {}  # their ports -> name
        self._evict = evict
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._held) + sum(len(g.leases) for g in self._groups.values())

    def join_group(self, worker: int, name: str, params: str, digest: str, bound: int) -> tuple[int, str, int]:
        """``(lease, "", port to listen on)`` or ``(0, refusal, 0)`` (see Registry.join_group)."""
        group = self._groups.get(name)
        if group is None:
            if bound and self._group_ports.get(bound, name) != name:
                return 0, GROUP_PORT_TAKEN, 0
            group = self._groups[name] = _Group(params, digest, bound, {})
            if bound:
                self._group_ports[bound] = name
        elif group.params != params:
            return 0, GROUP_PARAMS, 0
        elif group.digest != digest:
            return 0, GROUP_AUTH, 0
        lease = next(self._ids)
        group.leases[lease] = worker
        return lease, "", group.real_port

    def _leave_group(self, name: str, lease: int, worker: int | None = None) -> int:
        group = self._groups.get(name)
        if group is None:
            return 0
        gone = [n for n, w in group.leases.items() if n == lease or (worker is not None and w == worker)]
        for n in gone:
            del group.leases[n]
        if not group.leases:
            del self._groups[name]
            if group.real_port and self._group_ports.get(group.real_port) == name:
                del self._group_ports[group.real_port]
        return len(gone)

    async def claim(self, worker: int, kind: str, key: str, evict: bool) -> int:
        """A lease id, or 0 if refused."""
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}")
        held = self._held.get((kind, key))
        if held is not None:
            if not evict:
                return 0
            await self._evict(held[0], kind, key)
        lease = next(self._ids)
        self._held[(kind, key)] = (worker, lease)
        return lease

    def release(self, worker: int, kind: str, key: str, lease: int) -> None:
        if kind == GROUP_KIND:
            group = self._groups.get(key)
            if group is not None and group.leases.get(lease) == worker:
                self._leave_group(key, lease)
        elif self._held.get((kind, key)) == (worker, lease):
            del self._held[(kind, key)]

    def owner(self, kind: str, key: str) -> int | None:
        held = self._held.get((kind, key))
        return held[0] if held is not None else None

    def drop(self, worker: int) -> int:
        """Forget a dead worker's leases; how many there were."""
        gone = [k for k, (w, _) in self._held.items() if w == worker]
        for k in gone:
            del self._held[k]
        return len(gone) + sum(self._leave_group(name, 0, worker) for name in list(self._groups))


class LocalRegistry:
    """``--workers 1``: the book in this process; evicting calls the server directly."""

    def __init__(self, evict: Evictor, worker: int = 0) -> None:
        self.worker = worker
        self._server_evict = evict
        self.book = Book(self._evict)

    async def _evict(self, _worker: int, kind: str, key: str) -> None:
        await self._server_evict(kind, key)

    async def claim(self, kind: str, key: str, *, evict: bool = False) -> Lease | None:
        lease = await self.book.claim(self.worker, kind, key, evict)
        return Lease(kind, key, lease) if lease else None

    def release(self, lease: Lease) -> None:
        self.book.release(self.worker, lease.kind, lease.key, lease.lease)

    async def owner(self, kind: str, key: str) -> int | None:
        return self.book.owner(kind, key)

    async def find(self, kind: str, host: str, path: str, user: str) -> int | None:
        return None  # one process: its own router already said no

    async def join_group(self, name: str, params: str, digest: str, bound: int) -> tuple[Lease | None, str, int]:
        lease, err, real = self.book.join_group(self.worker, name, params, digest, bound)
        return (Lease(GROUP_KIND, name, lease) if lease else None), err, real

    async def close(self) -> None:
        return None


# -- the wire: one JSON object per line ---------------------------------------------------------
#   worker -> supervisor: {"op": "hello", "worker": 1}, then {"op": "ready"} once it listens
#                         {"op": "claim", "id": 7, "kind": "proxy", "key": "ssh", "evict": false}
#                         {"op": "owner", "id": 8, "kind": "proxy", "key": "ssh"}
#                         {"op": "find", "id": 9, "kind": "http", "host": "a.com", "path": "/", "user": ""}
#                         {"op": "join", "id": 10, "name": "tcp:g", "params": "6000", "digest": "...", "bound": 6000}
#                         {"op": "release", "kind": "proxy", "key": "ssh", "lease": 12}
#                         {"op": "evicted", "id": 3}
#                         {"op": "reply", "id": 5, "value": {...}}      (an answer to an "ask")
#   supervisor -> worker: {"op": "reply", "id": 7, "value": 12}   (lease, 0: refused; owner or null;
#                                                                   a join: [lease, refusal, port])
#                         {"op": "evict", "id": 3, "kind": "runid", "key": "..."}
#                         {"op": "ask", "id": 5, "what": "route", "kind": ..., "host": ...}  (for a find)

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(dict[str, Any])
MAX_LINE = 16 * 1024 * 1024


def _frame(obj: dict[str, Any]) -> bytes:
    return _enc.encode(obj) + b"\n"


Asker = Callable[[dict[str, Any]], Awaitable[Any]]
"""``ask(frame)``: the worker's answer to a supervisor question (``route``: has it a vhost route
for ``kind``, ``host``, ``path``, ``user``)."""


class RemoteRegistry:
    """A worker's registry: the supervisor's book, over the unix socket ``path``."""

    def __init__(self, path: str, worker: int, evict: Evictor, ask: Asker | None = None) -> None:
        self.path = path
        self.worker = worker
        self._evict = evict
        self._ask = ask
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.lost: asyncio.Future[None] | None = None  # done when the supervisor's socket closes

    async def connect(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(self.path, limit=MAX_LINE)
        self.lost = asyncio.get_running_loop().create_future()
        self._writer.write(_frame({"op": "hello", "worker": self.worker, "pid": os.getpid()}))
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                frame = _dec.decode(line)
                op = frame.get("op")
                if op == "reply":
                    fut = self._waiting.pop(int(frame["id"]), None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame.get("value"))
                elif op in ("evict", "ask"):
                    task = asyncio.get_running_loop().create_task(self._serve(frame))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            log.warning("registry connection error: %s", exc)
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("frps supervisor connection lost"))
            self._waiting.clear()
            if self.lost is not None and not self.lost.done():
                self.lost.set_result(None)

    async def _serve(self, frame: dict[str, Any]) -> None:
        if frame["op"] == "evict":
            await self._evict(str(frame["kind"]), str(frame["key"]))
            self._send({"op": "evicted", "id": frame["id"]})
        else:
            value = await self._ask(frame) if self._ask is not None else None
            self._send({"op": "reply", "id": frame["id"], "value": value})

    def _send(self, obj: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(_frame(obj))

    async def _call(self, obj: dict[str, Any]) -> Any:
        if self._writer is None or self._writer.is_closing() or (self.lost is not None and self.lost.done()):
            raise ConnectionError("frps supervisor connection lost")
        n = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[n] = fut
        self._writer.write(_frame({**obj, "id": n}))
        return await fut

    async def claim(self, kind: str, key: str, *, evict: bool = False) -> Lease | None:
        lease = int(await self._call({"op": "claim", "kind": kind, "key": key, "evict": evict}))
        return Lease(kind, key, lease) if lease else None

    def ready(self) -> None:
        """This worker listens: the supervisor counts it as started."""
        self._send({"op": "ready"})

    def release(self, lease: Lease) -> None:
        self._send({"op": "release", "kind": lease.kind, "key": lease.key, "lease": lease.lease})

    async def owner(self, kind: str, key: str) -> int | None:
        value = await self._call({"op": "owner", "kind": kind, "key": key})
        return int(value) if value is not None else None

    async def find(self, kind: str, host: str, path: str, user: str) -> int | None:
        value = await self._call({"op": "find", "kind": kind, "host": host, "path": path, "user": user})
        return int(value) if value is not None else None

    async def join_group(self, name: str, params: str, digest: str, bound: int) -> tuple[Lease | None, str, int]:
        lease, err, real = await self._call({"op": "join", "name": name, "params": params, "digest": digest,
                                             "bound": bound})
        return (Lease(GROUP_KIND, name, int(lease)) if lease else None), str(err), int(real)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()


class _Peer:
    """The supervisor's side of one worker's registry socket."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.worker = -1
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.ids = itertools.count(1)

    def send(self, obj: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(_frame(obj))

    async def call(self, obj: dict[str, Any]) -> Any:
        n = next(self.ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[n] = fut
        self.send({**obj, "id": n})
        return await fut

    def lost(self) -> None:
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_result(None)
        self.waiting.clear()


class RegistryServer:
    """The supervisor's registry: one :class:`Book` for all workers, served on a unix socket."""

    EVICT_TIMEOUT = 10.0

    def __init__(self, path: str, on_ready: Callable[[int], None] | None = None) -> None:
        self.path = path
        self.book = Book(self._evict)
        self.peers: dict[int, _Peer] = {}
        self._on_ready = on_ready
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_LINE)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers.values()):
            peer.writer.close()

    async def _evict(self, worker: int, kind: str, key: str) -> None:
        peer = self.peers.get(worker)
        if peer is None:
            return
        try:
            async with asyncio.timeout(self.EVICT_TIMEOUT):
                await peer.call({"op": "evict", "kind": kind, "key": key})
        except TimeoutError:
            log.warning("worker %d did not give up %s [%s] within %gs", worker, kind, key, self.EVICT_TIMEOUT)

    async def _find(self, peer: _Peer, frame: dict[str, Any]) -> None:
        """Which other worker has the vhost route: each is asked (``ask``/``route``)."""
        others = [(w, p) for w, p in self.peers.items() if p is not peer]
        question = {"op": "ask", "what": "route", **{k: frame.get(k, "") for k in ("kind", "host", "path", "user")}}
        try:
            async with asyncio.timeout(self.EVICT_TIMEOUT):
                answers = await asyncio.gather(*(p.call(question) for _, p in others))
        except TimeoutError:
            answers = [None] * len(others)
        owner = next((w for (w, _), yes in zip(others, answers, strict=True) if yes), None)
        peer.send({"op": "reply", "id": frame["id"], "value": owner})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _Peer(writer)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while line := await reader.readline():
                frame = _dec.decode(line)
                op = frame.get("op")
                if op == "hello":
                    peer.worker = int(frame["worker"])
                    old = self.peers.get(peer.worker)
                    self.peers[peer.worker] = peer
                    if old is not None:  # a restarted worker before its predecessor's socket closed
                        self.book.drop(peer.worker)
                elif op == "ready":
                    if self._on_ready is not None:
                        self._on_ready(peer.worker)
                elif op in ("evicted", "reply"):
                    fut = peer.waiting.pop(int(frame["id"]), None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame.get("value"))
                elif op == "release":
                    self.book.release(peer.worker, str(frame["kind"]), str(frame["key"]), int(frame["lease"]))
                elif op == "owner":
                    peer.send({"op": "reply", "id": frame["id"],
                               "value": self.book.owner(str(frame["kind"]), str(frame["key"]))})
                elif op == "join":
                    value = self.book.join_group(peer.worker, str(frame["name"]), str(frame["params"]),
                                                 str(frame["digest"]), int(frame["bound"]))
                    peer.send({"op": "reply", "id": frame["id"], "value": list(value)})
                elif op in ("claim", "find"):  # they wait for other workers: a task, the socket keeps being read
                    coro = self._claim(peer, frame) if op == "claim" else self._find(peer, frame)
                    task = asyncio.get_running_loop().create_task(coro)
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            log.warning("worker %d registry connection error: %s", peer.worker, exc)
        finally:
            peer.lost()
            if self.peers.get(peer.worker) is peer:
                del self.peers[peer.worker]
                dropped = self.book.drop(peer.worker)
                if dropped:
                    log.info("worker %d gone: %d registry names released", peer.worker, dropped)
            writer.close()

    async def _claim(self, peer: _Peer, frame: dict[str, Any]) -> None:
        try:
            lease = await self.book.claim(peer.worker, str(frame["kind"]), str(frame["key"]), bool(frame.get("evict")))
        except ValueError as exc:
            log.warning("worker %d: %s", peer.worker, exc)
            lease = 0
        peer.send({"op": "reply", "id": frame["id"], "value": lease})
