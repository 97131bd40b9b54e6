"""Prometheus ``/metrics`` of frps (``enablePrometheus``), through prometheus-client.

Nothing is updated on the hot path: :class:`~.stats.ServerStats` (and the live relays' byte
counts through it) is read when Prometheus scrapes. frp's own families are written by
:func:`frp_series` (fast for thousands of proxies), first and in Go's order (its registry sorts the
families by name, then the series by label values), with integer samples as Go writes them; the
rest by prometheus-client. They keep Go's names, labels, help texts and types
(pkg/metrics/prometheus/server.go; counters without a ``_total`` suffix, as Go's client writes them)::

    frp_server_client_counts                        gauge
    frp_server_proxy_counts{type}                   gauge
    frp_server_proxy_counts_detailed{type,name}     gauge (1 online, 0 offline)
    frp_server_connection_counts{name,type}         gauge
    frp_server_traffic_in{name,type}                counter, bytes from users
    frp_server_traffic_out{name,type}               counter, bytes to users

aiofrp's own, for an operator of a Python service::

    aiofrp_server_work_conns_pooled                 gauge: idle work connections in the pools
    aiofrp_server_relayed_bytes_total{direction}    counter: all proxies, "in" and "out"
    aiofrp_server_login_failures_total{reason}      counter: token, timestamp, oidc, version, other
    aiofrp_server_dashboard_auth_failures_total     counter: wrong dashboard user/password
    aiofrp_event_loop_lag_seconds                   gauge: last measured scheduling delay
    aiofrp_event_loop_lag_max_seconds               gauge: worst delay since the previous scrape

plus prometheus-client's process_* and python_* series (Go's go_* / process_* counterparts).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .service import Server

LAG_INTERVAL = 0.5  # seconds between two event-loop lag probes
# Go's promhttp answer (text format 0.0.4, legacy names: what both write); prometheus-client says
# "version=1.0.0", the same text where no name needs UTF-8 quoting, as none here does
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=values"


_ESCAPE = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def _label(v: str) -> str:
    return v.translate(_ESCAPE) if ('"' in v or "\\" in v or "\n" in v) else v


def frp_series(server: Server) -> str:
    """frp's families in the text format, written directly: thousands of proxies make tens of
    thousands of samples, which prometheus-client's generic writer formats one by one (about 1 s
    for 5,000 proxies, bench/dashboard_api.py), and as floats (``1.0``; Go writes ``1``). As in
    Go, a proxy's connection and traffic series appear with its first connection."""
    stats = server.stats
    detailed = []
    rows = []  # Go creates these series at a proxy's first connection (udp: its first datagram)
    for ps in itertools.chain(stats.proxies.values(), stats.retired.values()):
        name, ptype = _label(ps.name), _label(ps.type)
        detailed.append((name, ptype, 1 if ps.live is not None else 0))
        if ps.connected or ps.datagram:
            i, o = ps.totals()
            if ps.connected or i or o:
                rows.append((name, ptype, ps.cur_conns, i, o))
    detailed.sort()
    rows.sort()
    out = [("# HELP frp_server_client_counts The current client counts of frps\n"
            "# TYPE frp_server_client_counts gauge\n"
            f"frp_server_client_counts {stats.client_count}\n"
            "# HELP frp_server_connection_counts The current connection counts\n"
            "# TYPE frp_server_connection_counts gauge\n")]
    out += [f'frp_server_connection_counts{{name="{n}",type="{t}"}} {c}\n' for n, t, c, _i, _o in rows if t != "udp"]
    out.append("# HELP frp_server_proxy_counts The current proxy counts\n# TYPE frp_server_proxy_counts gauge\n")
    out += [f'frp_server_proxy_counts{{type="{_label(t)}"}} {n}\n' for t, n in sorted(stats.proxy_type_counts.items())]
    out.append("# HELP frp_server_proxy_counts_detailed The current number of proxies grouped by type and name\n"
               "# TYPE frp_server_proxy_counts_detailed gauge\n")
    out += [f'frp_server_proxy_counts_detailed{{name="{n}",type="{t}"}} {d}\n' for n, t, d in detailed]
    out.append("# HELP frp_server_traffic_in The total in traffic\n# TYPE frp_server_traffic_in counter\n")
    out += [f'frp_server_traffic_in{{name="{n}",type="{t}"}} {i}\n' for n, t, _c, i, _o in rows]
    out.append("# HELP frp_server_traffic_out The total out traffic\n# TYPE frp_server_traffic_out counter\n")
    out += [f'frp_server_traffic_out{{name="{n}",type="{t}"}} {o}\n' for n, t, _c, _i, o in rows]
    return "".join(out)


class FrpCollector(Collector):
    def __init__(self, server: Server, lag: LagProbe) -> None:
        self.server = server
        self.lag = lag

    def collect(self) -> Iterator[Metric]:
        """aiofrp's own series (frp's: :func:`frp_series`)."""
        stats = self.server.stats
        all_in = all_out = 0
        for ps in itertools.chain(stats.proxies.values(), stats.retired.values()):
            i, o = ps.totals()
            all_in += i
            all_out += o

        pooled = sum(ctl.pooled for ctl in self.server.controls.values())
        g = GaugeMetricFamily("aiofrp_server_work_conns_pooled", "Idle work connections waiting in the pools")
        g.add_metric([], pooled)
        yield g
        c = CounterMetricFamily("aiofrp_server_relayed_bytes", "Bytes relayed for all proxies "
                                "(in: from users, out: to users), open connections included",
                                labels=["direction"])
        c.add_metric(["in"], all_in + stats.orphan_in + stats.forgotten_in)
        c.add_metric(["out"], all_out + stats.orphan_out + stats.forgotten_out)
        yield c
        c = CounterMetricFamily("aiofrp_server_login_failures", "Refused frpc logins by reason",
                                labels=["reason"])
        for reason, n in sorted(stats.login_failures.items()):
            c.add_metric([reason], n)
        yield c
        c = CounterMetricFamily("aiofrp_server_dashboard_auth_failures",
                                "Dashboard requests with a wrong user or password")
        c.add_metric([], stats.dashboard_auth_failures)
        yield c
        last, worst = self.lag.read()
        g = GaugeMetricFamily("aiofrp_event_loop_lag_seconds", "Delay of the last event-loop lag probe")
        g.add_metric([], last)
        yield g
        g = GaugeMetricFamily("aiofrp_event_loop_lag_max_seconds",
                              "Worst event-loop lag since the previous scrape")
        g.add_metric([], worst)
        yield g


class LagProbe:
    """Every LAG_INTERVAL, a timer measures how late the loop runs it (one timer, no task)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.worst = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + LAG_INTERVAL
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.last = max(0.0, now - self._due)
        self.worst = max(self.worst, self.last)
        self._due = now + LAG_INTERVAL
        self._handle = loop.call_at(self._due, self._tick)

    def read(self) -> tuple[float, float]:
        worst, self.worst = self.worst, self.last
        return self.last, worst

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Metrics:
    """A registry of its own (several frps may live in one process, as in the tests)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lag = LagProbe()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FrpCollector(server, self.lag))
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.started = time.monotonic()

    def start(self) -> None:
        self.lag.start()

    def close(self) -> None:
        self.lag.close()

    def exposition(self) -> tuple[bytes, str]:
        return frp_series(self.server).encode() + generate_latest(self.registry), CONTENT_TYPE


__all__ = ["FrpCollector", "LagProbe", "Metrics", "frp_series"]
