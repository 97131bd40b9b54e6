#!/usr/bin/env python3
"""frpc's transports to frps, Go frp 0.65.0 vs aiofrp side by side in one run: bulk MB/s (upload
through a ``tcp`` proxy, timed at the sink) and 64-byte ping-pong round trips (p50 / p99, one
connection through an echo service) over tcp, kcp, quic, websocket and wss.

Each implementation runs its own frps + frpc pair (loopback only), one pair per transport; rounds
alternate Go and ours so drifting load hits both alike. ``--loss 0.05`` puts a seeded lossy UDP relay
(5 % of the datagrams dropped each way, tests/support/transports.py) between frpc and kcpBindPort
for the kcp rows (``kcp-loss``): goodput over a lossy link, where FEC parity matters.

    .venv/bin/python bench/transports.py                        # 64 MiB, 1000 pings, 1 round
    .venv/bin/python bench/transports.py --transports kcp,quic --size 16M --rounds 3 --loss 0.05

``--impls`` picks what runs side by side: ``go``, ``ours``, ``base`` (ours from another source tree,
``--base-src DIR/src``: a before/after A/B in one run) and ``nofec`` (ours with kcp-go's FEC parity
turned off on both sides through the bench-only ``AIOFRP_BENCH_KCP_NOFEC=1``: not wire-compatible
with Go, whose KCP always uses 10 + 3 shards; it shows what the parity buys under loss). Besides
MB/s, each bulk run reports the CPU seconds frps + frpc spent (MB per CPU-second, "MB/cpu-s"), which
a loaded machine disturbs less than wall-clock rates.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import defaultdict

from _common import cpu_seconds, fmt, frp_commands
from support.procs import (
    BulkServer,
    EchoServer,
    FrpProcess,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
)
from support.transports import LossyUDPRelay, TLSTerminator

OUR_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
TOKEN = "bench-token"
TRANSPORTS = ("tcp", "kcp", "quic", "websocket", "wss")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


class Pair:
    """frps + frpc of one implementation over one transport, exposing the bulk and echo services."""

    def __init__(self, impl: str, transport: str, workdir: str, bulk_port: int, echo_port: int,
                 loss: float, base_src: str | None = None) -> None:
        frps_cmd, frpc_cmd = frp_commands("go" if impl == "go" else "ours")
        env: dict[str, str] | None = None
        src = base_src if impl == "base" else OUR_SRC if impl == "ours" and base_src else None
        # in an A/B, ours is started exactly like base (-P, PYTHONPATH): measured, ours through the
        # venv's editable install ran wss at about half the MB/s of the same code via PYTHONPATH
        if impl == "base" or src:
            if not src:
                raise SystemExit("--impls base needs --base-src DIR/src")
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": src}
            frps_cmd = [sys.executable, "-P", *frps_cmd[1:]]  # -P: not the cwd's aiofrp
            frpc_cmd = [sys.executable, "-P", *frpc_cmd[1:]]
        elif impl == "nofec":
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "AIOFRP_BENCH_KCP_NOFEC": "1"}
        self.procs: list[FrpProcess] = []
        self.relay: LossyUDPRelay | None = None
        self.term: TLSTerminator | None = None
        bind, quic = free_port(), free_port()
        self.bulk_remote, self.echo_remote = free_port(), free_port()
        frps = FrpProcess(frps_cmd, frps_config(bind, token=TOKEN, kcpBindPort=bind, quicBindPort=quic),
                          name=f"frps-{impl}-{transport}", workdir=workdir, env=env).start()
        self.procs.append(frps)
        frps.wait_for_log("frps started successfully|frps tcp listen", 20)
        proto = transport.removesuffix("-loss")
        port = quic if proto == "quic" else bind
        if transport == "kcp-loss":
            self.relay = LossyUDPRelay(bind, loss, seed=7)
            port = self.relay.port
        if proto == "wss" and impl == "go":
            self.term = TLSTerminator(bind)  # Go frps serves plain ws only
            port = self.term.port
        text = frpc_config(port, tcp_proxy("bulk", bulk_port, self.bulk_remote),
                           tcp_proxy("echo", echo_port, self.echo_remote), token=TOKEN,
                           **{"transport.protocol": proto})
        frpc = FrpProcess(frpc_cmd, text, name=f"frpc-{impl}-{transport}", workdir=workdir, env=env).start()
        self.procs.append(frpc)
        frpc.wait_for_proxies("bulk", "echo", timeout=30)

    def close(self) -> None:
        for p in self.procs:
            p.kill()
        if self.relay is not None:
            self.relay.close()
        if self.term is not None:
            self.term.close()


def ping_pong(port: int, count: int) -> tuple[float, float]:
    """p50, p99 of ``count`` 64-byte round trips on one connection, in milliseconds."""
    payload = b"p" * 64
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count + 10):
            t0 = time.perf_counter()
            s.sendall(payload)
            got = b""
            while len(got) < 64:
                chunk = s.recv(64 - len(got))
                if not chunk:
                    raise ConnectionError("echo closed")
                got += chunk
            times.append((time.perf_counter() - t0) * 1000)
    times = sorted(times[10:])
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transports", default=",".join(TRANSPORTS), help="comma separated (default: all)")
    ap.add_argument("--size", type=parse_size, default=64 << 20, help="bulk bytes per round (default 64M)")
    ap.add_argument("--pings", type=int, default=1000, help="64 B round trips per round (default 1000)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--loss", type=float, default=0.0, help="also run kcp through a lossy relay (e.g. 0.05)")
    ap.add_argument("--impls", default="go,ours", help="comma separated: go, ours, base, nofec (default go,ours)")
    ap.add_argument("--base-src", help="the src/ directory of the aiofrp that --impls base runs")
    args = ap.parse_args()
    impls = [i for i in args.impls.split(",") if i]
    transports = [t for t in args.transports.split(",") if t]
    if args.loss > 0 and "kcp" in transports:
        transports.append("kcp-loss")
    workdir = tempfile.mkdtemp(prefix="aiofrp-bench-transports-")
    mbps: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
    lat: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    with BulkServer() as bulk, EchoServer() as echo:
        for transport in transports:
            for rnd in range(args.rounds):
                for impl in (impls if rnd % 2 == 0 else impls[::-1]):
                    if impl == "nofec" and not transport.startswith("kcp"):
                        continue
                    pair = Pair(impl, transport, workdir, bulk.port, echo.port, args.loss, args.base_src)
                    try:
                        pgids = [p.pid for p in pair.procs if p.pid is not None]
                        cpu0 = cpu_seconds(pgids)
                        res = bulk_upload(pair.bulk_remote, args.size, verify=False,
                                          timeout=max(120, args.size / 2e6))
                        cpu1 = cpu_seconds(pgids)
                        if res.received == res.size:
                            mbps[transport, impl].append(res.mb_per_s)
                            if cpu0 is not None and cpu1 is not None and cpu1 > cpu0:
                                per_cpu[transport, impl].append(res.size / 1e6 / (cpu1 - cpu0))
                        lat[transport, impl].append(ping_pong(pair.echo_remote, args.pings))
                    finally:
                        pair.close()
    print(f"bulk {args.size >> 20} MiB upload, {args.pings} x 64 B ping-pong, {args.rounds} round(s); "
          f"loopback, 2 cores; medians")
    print("ratio: the second implementation's MB/s over the first's; MB/cpu-s: MB per CPU-second of "
          "frps + frpc during the bulk run")
    first = impls[0]
    print(f"{'transport':<10} {'impl':<6} {'MB/s':>9} {'ratio':>6} {'MB/cpu-s':>9}   {'p50/p99 ms':>15}")
    for transport in transports:
        def med(d: dict[tuple[str, str], list[float]], impl: str, t: str = transport) -> float | None:
            return statistics.median(d[t, impl]) if d[t, impl] else None

        def pct(impl: str, t: str = transport) -> str:
            v = lat[t, impl]
            if not v:
                return "-"
            return f"{statistics.median(x[0] for x in v):.2f}/{statistics.median(x[1] for x in v):.2f}"

        ref = med(mbps, first)
        for impl in impls:
            if impl == "nofec" and not transport.startswith("kcp"):
                continue
            o = med(mbps, impl)
            ratio = o / ref if ref and o else None
            print(f"{transport:<10} {impl:<6} {fmt(o)} {fmt(ratio, 6, 2)} {fmt(med(per_cpu, impl))}   {pct(impl):>15}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
