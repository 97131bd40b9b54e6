"""What frps knows about its proxies and clients for the dashboard and Prometheus (Go:
pkg/metrics/mem, server/registry).

Nothing here runs per chunk. A connection is counted when it opens and when it closes (its byte
counts then join the proxy's day counter, as Go adds traffic when a connection ends); the bytes of
connections still open are read from the live relays when someone asks (:meth:`ProxyStats.live`),
so the dashboard and ``/metrics`` show a long transfer while it runs at no cost to the relay.

Traffic is kept per proxy per local day for :data:`RESERVE_DAYS` days (index 0 = today), like Go's
``DateCounter``. Statistics of a proxy outlive it (status "offline") until ``DELETE
/api/proxies?status=offline`` or 7 days offline.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

RESERVE_DAYS = 7
OFFLINE_KEEP = 7 * 24 * 3600.0  # Go: clearUselessInfo every 12 h drops proxies offline this long
Live = Callable[[], tuple[int, int]]  # (in, out) bytes of a proxy's connections still open


_day = [0, 0.0]  # today's ordinal, and the time.time() at which it ends


def _today() -> int:
    """Today's local date as an ordinal; cheap (one time.time()) except at the first call of a day."""
    if time.time() >= _day[1]:
        today = datetime.date.today()
        midnight = datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time())
        _day[0], _day[1] = today.toordinal(), midnight.timestamp()
    return int(_day[0])


class DateCounter:
    """Counts per local day, the last ``days`` days; index 0 is today (Go: metric.DateCounter)."""

    __slots__ = ("counts", "day")

    def __init__(self, days: int = RESERVE_DAYS) -> None:
        self.counts = [0] * days
        self.day = _today()

    def _rotate(self) -> None:
        today = _today()
        shift = today - self.day
        if shift > 0:
            n = len(self.counts)
            self.counts = ([0] * n if shift >= n else [0] * shift + self.counts[: n - shift])
            self.day = today

    def inc(self, n: int) -> None:
        self._rotate()
        self.counts[0] += n

    def today(self) -> int:
        self._rotate()
        return self.counts[0]

    def last_days(self) -> list[int]:
        self._rotate()
        return list(self.counts)


@dataclass(eq=False)
class ProxyStats:
    """One proxy's statistics (kept while it is offline too)."""

    name: str
    type: str
    user: str = ""
    client_id: str = ""
    traffic_in: DateCounter = field(default_factory=DateCounter)
    traffic_out: DateCounter = field(default_factory=DateCounter)
    total_in: int = 0  # since frps started (Prometheus counters), closed connections only
    total_out: int = 0
    cur_conns: int = 0
    connected: bool = False  # it has had a connection (Go's Prometheus series exist from then on)
    last_start: float = 0.0  # time.time(); 0: never
    last_close: float = 0.0
    last_start_text: str = ""  # Go's "01-02 15:04:05", formatted once
    last_close_text: str = ""
    live: Live | None = None
    """While online: the bytes of its open connections (not yet in the counters above)."""
    datagram: bool = False
    """Its live bytes need no open connection (udp counts datagrams): ask ``live`` even at 0 conns."""
    json_head: tuple[object, str] | None = None
    """The dashboard's cached JSON of what does not change while the proxy is up (server/dashboard.py)."""

    def live_bytes(self) -> tuple[int, int]:
        live = self.live
        return live() if live is not None and (self.cur_conns or self.datagram) else (0, 0)

    def today(self, day: int = 0) -> tuple[int, int]:
        """Today's (in, out); ``day``: today's ordinal if the caller has it (see today_ordinal)."""
        live = self.live
        li, lo = live() if live is not None and (self.cur_conns or self.datagram) else (0, 0)
        tin, tout = self.traffic_in, self.traffic_out
        if tin.day == tout.day == (day or _today()):  # no rotation due: read today's counts directly
            return tin.counts[0] + li, tout.counts[0] + lo
        return tin.today() + li, tout.today() + lo

    def days(self) -> tuple[list[int], list[int]]:
        li, lo = self.live_bytes()
        tin, tout = self.traffic_in.last_days(), self.traffic_out.last_days()
        tin[0] += li
        tout[0] += lo
        return tin, tout

    def totals(self) -> tuple[int, int]:
        li, lo = self.live_bytes()
        return self.total_in + li, self.total_out + lo


@dataclass(eq=False)
class ClientInfo:
    """One frpc as the dashboard lists it (Go 0.68+: server/registry ClientInfo)."""

    key: str
    user: str
    raw_client_id: str
    run_id: str
    hostname: str
    ip: str
    version: str
    first_connected: float
    last_connected: float
    disconnected: float = 0.0
    online: bool = True
    wire_protocol: str = "v1"

    @property
    def client_id(self) -> str:
        return self.raw_client_id or self.run_id


def _fmt_time(t: float) -> str:
    """Go's "01-02 15:04:05" in local time ("" for never)."""
    return time.strftime("%m-%d %H:%M:%S", time.localtime(t)) if t else ""


class ServerStats:
    """frps-wide statistics: proxies by name, clients by key, totals."""

    def __init__(self) -> None:
        self.proxies: dict[str, ProxyStats] = {}
        self.retired: dict[tuple[str, str], ProxyStats] = {}
        """Statistics of a proxy whose name came back with another type, kept for /metrics only: Go's
        Prometheus series of the old (name, type) stay (0 proxies, 0 connections, its traffic
        counters) and go on counting if the name comes back with that type again."""
        self.clients: dict[str, ClientInfo] = {}
        self._run_index: dict[str, str] = {}  # run id -> client key
        self.client_count = 0
        self.proxy_type_counts: dict[str, int] = {}
        self.cur_conns = 0
        self.total_in = DateCounter()  # closed connections, per day
        self.total_out = DateCounter()
        self.orphan_in = 0  # bytes of connections whose proxy statistics were deleted meanwhile
        self.orphan_out = 0
        self.forgotten_in = 0  # totals of the proxy statistics forgotten (clear_offline), for /metrics
        self.forgotten_out = 0
        self.login_failures: dict[str, int] = {}  # reason -> count (aiofrp's own metric)
        self.dashboard_auth_failures = 0

    # -- events (each a few dict operations) ------------------------------------------------

    def new_client(self, user: str, client_id: str, run_id: str, hostname: str, version: str, ip: str,
                   wire_protocol: str = "v1") -> None:
        self.client_count += 1
        key = _client_key(user, client_id or run_id)
        now = time.time()
        info = self.clients.get(key)
        if info is None:
            info = self.clients[key] = ClientInfo(key, user, client_id, run_id, hostname, ip, version, now, now,
                                                  wire_protocol=wire_protocol)
        else:
            info.wire_protocol = wire_protocol
            self._run_index.pop(info.run_id, None)
            info.raw_client_id, info.run_id, info.hostname, info.ip, info.version = (
                client_id, run_id, hostname, ip, version)
            info.last_connected, info.disconnected, info.online = now, 0.0, True
        self._run_index[run_id] = key

    def close_client(self, run_id: str) -> None:
        self.client_count -= 1
        key = self._run_index.pop(run_id, None)
        info = self.clients.get(key) if key is not None else None
        if info is None or info.run_id != run_id:
            return
        if not info.raw_client_id:  # Go keeps only clients with an explicit client id once offline
            del self.clients[key]  # type: ignore[arg-type]
        else:
            info.run_id, info.online, info.disconnected = "", False, time.time()

    def new_proxy(self, name: str, ptype: str, user: str, client_id: str, live: Live | None,
                  datagram: bool = False) -> None:
        self.proxy_type_counts[ptype] = self.proxy_type_counts.get(ptype, 0) + 1
        ps = self.proxies.get(name)
        if ps is None or ps.type != ptype:
            if ps is not None:
                self.retired[(name, ps.type)] = ps
            old = self.retired.pop((name, ptype), None)
            ps = self.proxies[name] = ProxyStats(name, ptype)
            if old is not None:  # Go's counters of (name, type) continue; the dashboard's start afresh
                ps.total_in, ps.total_out, ps.connected = old.total_in, old.total_out, old.connected
        ps.user, ps.client_id, ps.live, ps.datagram = user, client_id, live, datagram
        ps.last_start = time.time()
        ps.last_start_text = _fmt_time(ps.last_start)

    def close_proxy(self, name: str, ptype: str, last: tuple[int, int] = (0, 0)) -> None:
        """A proxy went offline; ``last``: bytes of its connections not reported by close_conn."""
        self.proxy_type_counts[ptype] = self.proxy_type_counts.get(ptype, 0) - 1
        ps = self.proxies.get(name)
        if ps is not None:
            ps.live = None
            ps.last_close = time.time()
            ps.last_close_text = _fmt_time(ps.last_close)
            if last != (0, 0):
                self._add(ps, *last)

    def open_conn(self, name: str) -> None:
        self.cur_conns += 1
        ps = self.proxies.get(name)
        if ps is not None:
            ps.cur_conns += 1
            ps.connected = True

    def close_conn(self, name: str, nin: int, nout: int) -> None:
        self.cur_conns -= 1
        ps = self.proxies.get(name)
        if ps is not None:
            ps.cur_conns -= 1
            self._add(ps, nin, nout)
        else:
            self.total_in.inc(nin)
            self.total_out.inc(nout)
            self.orphan_in += nin
            self.orphan_out += nout

    def _add(self, ps: ProxyStats, nin: int, nout: int) -> None:
        ps.traffic_in.inc(nin)
        ps.traffic_out.inc(nout)
        ps.total_in += nin
        ps.total_out += nout
        self.total_in.inc(nin)
        self.total_out.inc(nout)

    def login_failed(self, reason: str) -> None:
        self.login_failures[reason] = self.login_failures.get(reason, 0) + 1

    # -- queries ------------------------------------------------------------------------------

    def today_totals(self) -> tuple[int, int]:
        tin, tout = self.total_in.today(), self.total_out.today()
        for ps in self.proxies.values():
            if ps.live is not None and (ps.cur_conns or ps.datagram):
                li, lo = ps.live()
                tin += li
                tout += lo
        return tin, tout

    def by_type(self, ptype: str) -> Iterator[ProxyStats]:
        return (ps for ps in self.proxies.values() if ps.type == ptype)

    def clear_offline(self, older_than: float = 0.0) -> tuple[int, int]:
        """Forget proxies offline for more than ``older_than`` seconds; (cleared, total before)."""
        now = time.time()
        total = len(self.proxies)

        def offline(ps: ProxyStats) -> bool:
            return bool(ps.last_close) and ps.last_start < ps.last_close and now - ps.last_close > older_than

        gone = [n for n, ps in self.proxies.items() if offline(ps)]
        for n in gone:
            self._forget(self.proxies.pop(n))
        for key in [k for k, ps in self.retired.items() if offline(ps) or k[0] in gone]:
            self._forget(self.retired.pop(key))
        return len(gone), total

    def _forget(self, ps: ProxyStats) -> None:
        # aiofrp_server_relayed_bytes_total sums the proxies' totals: keep it from going down
        self.forgotten_in += ps.total_in
        self.forgotten_out += ps.total_out


def _client_key(user: str, cid: str) -> str:
    if not user:
        return cid
    if not cid:
        return user
    return f"{user}.{cid}"


fmt_time = _fmt_time
today_ordinal = _today

__all__ = ["RESERVE_DAYS", "ClientInfo", "DateCounter", "ProxyStats", "ServerStats", "fmt_time", "today_ordinal"]
