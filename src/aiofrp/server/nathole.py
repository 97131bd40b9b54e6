"""The NAT-hole controller of frps: brings an xtcp visitor and its provider together (frp §5.10).

1. The visitor's ``NatHoleVisitor{pre_check}`` is answered at once (proxy exists, user allowed).
2. The real ``NatHoleVisitor`` (signed with the proxy's sk) opens a session ``sid``; the provider
   learns it through a work connection carrying ``StartWorkConn`` + ``NatHoleSid``.
3. The provider answers with ``NatHoleClient`` (≤ 10 s); both NATs are classified, a punching
   behaviour is picked, and each side gets its ``NatHoleResp`` (the sender's 1 s later, so the
   receiver's probes are already out).
4. ``NatHoleReport`` from the provider feeds the behaviour scores.

With ``frps --workers N`` a visitor whose provider is in another worker has its NatHoleVisitor
forwarded to the provider's worker (``forward``: a message on the workers' handover sockets), whose
controller serves it as its own with the visitor as a :class:`_RemoteParty`: the NatHoleResp goes
back the same way and the visitor's worker writes it on the visitor's control (``deliver``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from ..proto import msg as m
from ..proto.crypto import verify_auth_key
from ..proto.nathole import (
    HoleRecords,
    NatFeature,
    behaviors_for,
    classify_nat,
    compact,
    detect_behavior,
    new_transaction_id,
    split_host_port,
)
from .errors import ProxyError

if TYPE_CHECKING:
    from ..config.server import ServerConfig
    from .workers.registry import Registry

log = logging.getLogger("aiofrp.server.nathole")

CLIENT_TIMEOUT = 10.0  # wait this long for the provider's NatHoleClient
SENDER_DELAY = 1.0  # the sender's NatHoleResp goes out this much later than the receiver's
SESSION_LINGER = 30.0  # keep a session (for NatHoleReport) this long after the read timeout
MAX_RECORDS = 10000


class Writer(Protocol):
    def write_msg(self, msg: m.Message) -> None: ...


class Party(Protocol):
    """A logged-in client as the controller sees it (server/control.py: Control)."""

    @property
    def user(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def conn(self) -> Writer: ...
    @property
    def finished(self) -> asyncio.Future[None]: ...


Forward = Callable[[int, str, bytes], bool]
"""``forward(worker, kind, data)``: one message to another worker (workers/handover.py: send_msg)."""

Deliver = Callable[[str, m.Message], bool]
"""``deliver(run_id, msg)``: write ``msg`` on this process's control of ``run_id`` (False: none)."""


class _RemoteParty:
    """A visitor whose control is in worker ``worker``: what the controller writes to it goes
    there (``natholeresp``)."""

    def __init__(self, forward: Forward, worker: int, run_id: str, user: str) -> None:
        self._forward = forward
        self.worker = worker
        self.run_id = run_id
        self.user = user
        self.conn = self
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write_msg(self, msg: m.Message) -> None:
        if isinstance(msg, m.NatHoleResp):
            data = msgspec.json.encode({"run_id": self.run_id, "msg": msgspec.json.encode(msg).decode()})
            self._forward(self.worker, "natholeresp", data)


class Provider(Protocol):
    """An xtcp proxy (server/proxies/xtcp.py: XTCPProxy): tells its frpc about a session."""

    async def send_sid(self, sid: str) -> None: ...


@dataclass(slots=True)
class _ClientCfg:
    name: str
    sk: str
    allow_users: list[str]
    proxy: Provider


@dataclass(slots=True)
class _Session:
    sid: str
    visitor_msg: m.NatHoleVisitor
    visitor_ctl: Party
    client_msg: m.NatHoleClient | None = None
    client_ctl: Party | None = None
    notify: asyncio.Event = field(default_factory=asyncio.Event)
    records_key: str = ""
    mode: int = 0
    index: int = 0


def _send(ctl: Party | None, message: m.Message) -> None:
    if ctl is not None and not ctl.finished.done():
        ctl.conn.write_msg(message)


def _ips(addrs: list[str]) -> list[str]:
    out = []
    for a in addrs:
        try:
            out.append(split_host_port(a)[0])
        except ValueError:
            continue
    return out


class NatHoleController:
    """One per frps; ``spawn`` runs its background tasks (server/service.py: Server.spawn)."""

    def __init__(self, cfg: ServerConfig, spawn: Callable[[Coroutine[Any, Any, None]], object],
                 registry: Registry | None = None, forward: Forward | None = None,
                 deliver: Deliver | None = None) -> None:
        self.cfg = cfg
        self.spawn = spawn
        self.registry = registry  # frps --workers N: is a provider unknown here in another process?
        self.forward = forward  # frps --workers N: a message to another worker
        self.deliver = deliver  # ... and one from it, to a control of this one
        self.clients: dict[str, _ClientCfg] = {}
        self.sessions: dict[str, _Session] = {}
        self.records: dict[str, HoleRecords] = {}

    # -- xtcp proxies -------------------------------------------------------------------------

    def listen_client(self, name: str, sk: str, allow_users: list[str], proxy: Provider) -> None:
        if name in self.clients:
            raise ProxyError(f"proxy [{name}] is repeated")
        self.clients[name] = _ClientCfg(name, sk, allow_users, proxy)

    def close_client(self, name: str, proxy: Provider) -> None:
        cfg = self.clients.get(name)
        if cfg is not None and cfg.proxy is proxy:
            del self.clients[name]

    # -- messages from controls -----------------------------------------------------------------

    def on_visitor(self, ctl: Party, msg: m.NatHoleVisitor) -> None:
        """A NatHoleVisitor read on a control: its pre-check is answered at once, a real one opens
        a session (control messages go through ``Control.dispatcher``)."""
        if msg.proxy_name not in self.clients and self.registry is not None:
            self.spawn(self._elsewhere(ctl, msg))
        elif msg.pre_check:
            self._pre_check(ctl, msg)
        else:
            self.spawn(self.handle_visitor(ctl, msg))

    async def _elsewhere(self, ctl: Party, msg: m.NatHoleVisitor) -> None:
        """frps --workers N: a provider not in this process may be in another one: the message
        goes there (``nathole``), with the visitor's run id and user."""
        assert self.registry is not None
        try:
            owner = await self.registry.owner("proxy", msg.proxy_name)
        except ConnectionError:
            owner = None
        if owner is not None and owner != self.registry.worker:
            data = msgspec.json.encode({"from": self.registry.worker, "run_id": ctl.run_id, "user": ctl.user,
                                        "msg": msgspec.json.encode(msg).decode()})
            if self.forward is not None and self.forward(owner, "nathole", data):
                log.debug("[%s] nathole visitor for [%s] sent to worker %d", ctl.run_id, msg.proxy_name, owner)
                return
            err = f"xtcp server for [{msg.proxy_name}] is served by frps worker {owner}, which cannot be reached"
            log.warning("[%s] nathole visitor for [%s] refused: %s", ctl.run_id, msg.proxy_name, err)
            _send(ctl, m.NatHoleResp(transaction_id=msg.transaction_id, error=err))
        elif msg.pre_check:
            self._pre_check(ctl, msg)
        else:
            await self.handle_visitor(ctl, msg)

    def on_worker_message(self, kind: str, data: bytes) -> None:
        """A message of another worker's controller: a visitor's NatHoleVisitor for a provider
        here (``nathole``), or a NatHoleResp for a visitor whose control is here (``natholeresp``)."""
        try:
            head = msgspec.json.decode(data)
            if kind == "nathole":
                msg = msgspec.json.decode(head["msg"], type=m.NatHoleVisitor)
                if self.forward is None:
                    return
                party = _RemoteParty(self.forward, int(head["from"]), str(head["run_id"]), str(head["user"]))
                if msg.pre_check:
                    self._pre_check(party, msg)
                else:
                    self.spawn(self.handle_visitor(party, msg))
            elif kind == "natholeresp":
                resp = msgspec.json.decode(head["msg"], type=m.NatHoleResp)
                if self.deliver is None or not self.deliver(str(head["run_id"]), resp):
                    log.debug("NatHoleResp for [%s]: its control is gone", head["run_id"])
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
            log.warning("bad %s message from another worker: %s", kind, exc)

    def _pre_check(self, ctl: Party, req: m.NatHoleVisitor) -> None:
        cfg = self.clients.get(req.proxy_name)
        err = ""
        if cfg is None:
            err = f"xtcp server for [{req.proxy_name}] doesn't exist"
        elif ctl.user not in cfg.allow_users and "*" not in cfg.allow_users:
            err = f"xtcp visitor user [{ctl.user}] not allowed for [{req.proxy_name}]"
        if err:
            log.info("[%s] nathole pre-check for [%s] refused: %s", ctl.run_id, req.proxy_name, err)
        _send(ctl, m.NatHoleResp(transaction_id=req.transaction_id, error=err))

    async def handle_visitor(self, ctl: Party, req: m.NatHoleVisitor) -> None:
        cfg = self.clients.get(req.proxy_name)
        if cfg is None:
            err = f"xtcp server for [{req.proxy_name}] doesn't exist"
        elif not verify_auth_key(cfg.sk, req.timestamp, req.sign_key):
            err = f"xtcp connection of [{req.proxy_name}] auth failed"
        else:
            err = ""
        if err:
            log.warning("handle visitorMsg error: %s", err)
            _send(ctl, m.NatHoleResp(transaction_id=req.transaction_id, error=err))
            return
        assert cfg is not None
        sid = new_transaction_id()
        session = _Session(sid, req, ctl)
        self.sessions[sid] = session
        keep = 0.0
        try:
            log.debug("handle visitor message, sid [%s], server name: %s", sid, req.proxy_name)
            self.spawn(cfg.proxy.send_sid(sid))
            try:
                async with asyncio.timeout(CLIENT_TIMEOUT):
                    await session.notify.wait()
            except TimeoutError:
                log.debug("wait for NatHoleClient message timeout, sid [%s]", sid)
                return
            try:
                vresp, cresp = self._analysis(session)
            except ValueError as exc:
                log.debug("sid [%s] analysis error: %s", sid, exc)
                assert session.client_msg is not None
                vresp = m.NatHoleResp(transaction_id=req.transaction_id, error=str(exc))
                cresp = m.NatHoleResp(transaction_id=session.client_msg.transaction_id, error=str(exc))
            await asyncio.gather(self._respond(ctl, vresp), self._respond(session.client_ctl, cresp))
            keep = cresp.detect_behavior.read_timeout / 1000 + SESSION_LINGER
        finally:
            if keep > 0:
                asyncio.get_running_loop().call_later(keep, self.sessions.pop, sid, None)
            else:
                self.sessions.pop(sid, None)

    async def _respond(self, ctl: Party | None, resp: m.NatHoleResp) -> None:
        if resp.detect_behavior.role == "sender":
            await asyncio.sleep(SENDER_DELAY)
        _send(ctl, resp)

    def handle_client(self, ctl: Party, msg: m.NatHoleClient) -> None:
        session = self.sessions.get(msg.sid)
        if session is None or session.client_msg is not None:
            log.debug("NatHoleClient for unknown or answered sid [%s]", msg.sid)
            return
        log.debug("handle client message, sid [%s], server name: %s", msg.sid, msg.proxy_name)
        session.client_msg = msg
        session.client_ctl = ctl
        session.notify.set()

    def handle_report(self, msg: m.NatHoleReport) -> None:
        session = self.sessions.get(msg.sid)
        if session is None:
            log.debug("sid [%s] report make hole success: %s, but session not found", msg.sid, msg.success)
            return
        if msg.success:
            rec = self.records.get(session.records_key)
            if rec is not None:
                rec.report_success(session.mode, session.index)
        log.info("sid [%s] report make hole success: %s, mode %d, index %d",
                 msg.sid, str(msg.success).lower(), session.mode, session.index)

    # -- analysis ---------------------------------------------------------------------------------

    def _analysis(self, s: _Session) -> tuple[m.NatHoleResp, m.NatHoleResp]:
        cm, vm = s.client_msg, s.visitor_msg
        assert cm is not None
        try:
            cf = classify_nat(cm.mapped_addrs, _ips(cm.assisted_addrs))
        except ValueError as exc:
            raise ValueError(f"classify client nat feature error: {exc}") from None
        try:
            vf = classify_nat(vm.mapped_addrs, _ips(vm.assisted_addrs))
        except ValueError as exc:
            raise ValueError(f"classify visitor nat feature error: {exc}") from None
        s.records_key = _records_key(vm.mapped_addrs, vf, cm.mapped_addrs, cf)
        rec = self._records(s.records_key, cf, vf)
        s.mode, s.index = rec.recommend()
        cb, vb = behaviors_for(s.mode, s.index, cf)
        timeout_ms = max(cb.send_delay_ms, vb.send_delay_ms) + 5000
        if cb.listen_random_ports > 0 or vb.listen_random_ports > 0:
            timeout_ms += 30000
        protocol = vm.protocol
        vresp = m.NatHoleResp(
            transaction_id=vm.transaction_id, sid=s.sid, protocol=protocol,
            candidate_addrs=compact(cm.mapped_addrs), assisted_addrs=compact(cm.assisted_addrs),
            detect_behavior=detect_behavior(vb, s.mode, timeout_ms, cm.mapped_addrs, cf),
        )
        cresp = m.NatHoleResp(
            transaction_id=cm.transaction_id, sid=s.sid, protocol=protocol,
            candidate_addrs=compact(vm.mapped_addrs), assisted_addrs=compact(vm.assisted_addrs),
            detect_behavior=detect_behavior(cb, s.mode, timeout_ms, vm.mapped_addrs, vf),
        )
        log.debug("sid [%s] visitor nat: %s, candidateAddrs: %s; client nat: %s, candidateAddrs: %s, protocol: %s",
                  s.sid, vf, vm.mapped_addrs, cf, cm.mapped_addrs, protocol)
        log.debug("sid [%s] visitor detect behavior: %s", s.sid, vresp.detect_behavior)
        log.debug("sid [%s] client detect behavior: %s", s.sid, cresp.detect_behavior)
        return vresp, cresp

    def _records(self, key: str, cf: NatFeature, vf: NatFeature) -> HoleRecords:
        # natholeAnalysisDataReserveHours (default 168): older behaviour scores are forgotten
        ttl = self.cfg.nathole_analysis_data_reserve_hours * 3600.0
        now = time.monotonic()
        rec = self.records.get(key)
        if rec is not None and now - rec.last_update > ttl:
            del self.records[key]
            rec = None
        if rec is None:
            if len(self.records) >= MAX_RECORDS:
                for k in [k for k, r in self.records.items() if now - r.last_update > ttl]:
                    del self.records[k]
                if len(self.records) >= MAX_RECORDS:
                    self.records.pop(next(iter(self.records)))
            rec = self.records[key] = HoleRecords.for_features(cf, vf)
        return rec


def _records_key(vaddrs: list[str], vf: NatFeature, caddrs: list[str], cf: NatFeature) -> str:
    h = hashlib.md5(usedforsecurity=False)
    for addrs, f in ((vaddrs, vf), (caddrs, cf)):
        ips = compact(_ips(addrs))
        if ips:
            h.update(ips[0].encode())
        h.update(f"{f.nat_type}{f.behavior}{str(f.regular_ports_change).lower()}".encode())
    return h.hexdigest()
