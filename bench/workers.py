#!/usr/bin/env python3
"""frps on several cores: aggregate upload MB/s of 8 clients x 1 stream each, Go frps 0.65.0 vs our
frps with ``--workers 1`` and ``--workers 2`` (README "frps --workers").

Every client is its own frpc process with its own tcp proxy (default transport: TLS + tcpMux); all
8 bulk uploads start together and the aggregate is the bytes received by the sink over the wall
time from the first start to the last finish. Configurations run interleaved, a fresh frps and
fresh frpcs each round; besides MB/s each run reports the CPU seconds of frps (all its processes)
and of the 8 frpcs per GB.

    .venv/bin/python bench/workers.py                             # 8 x 64 MiB, 3 rounds
    .venv/bin/python bench/workers.py --clients 8 --size 128M --rounds 3 --configs go,w1,w2
    .venv/bin/python bench/workers.py --raw    # transport.tls.enable = false, tcpMux = false

Configurations: ``go`` (Go frps + Go frpc), ``w1`` / ``w2`` / ``w4`` (our frps --workers N + our
frpc), ``gofrpc-w1`` / ``gofrpc-w2`` (our frps with Go's frpc: only the server side differs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import defaultdict

from _common import cpu_seconds, fmt, frp_commands
from support.procs import BulkServer, FrpProcess, bulk_upload, free_port, frpc_config, frps_config, tcp_proxy

TOKEN = "bench-token"


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def config_parts(name: str) -> tuple[str, str, int]:
    """(frps impl, frpc impl, workers) of a configuration name."""
    if name == "go":
        return "go", "go", 1
    frpc = "go" if name.startswith("gofrpc-") else "ours"
    n = name.removeprefix("gofrpc-")
    if not (n.startswith("w") and n[1:].isdigit()):
        raise SystemExit(f"bench/workers.py: unknown configuration {name!r} (go, wN, gofrpc-wN)")
    return "ours", frpc, int(n[1:])


class Setup:
    def __init__(self, name: str, clients: int, sink_port: int, workdir: str, raw: bool = False) -> None:
        frps_impl, frpc_impl, workers = config_parts(name)
        frps_cmd, _ = frp_commands(frps_impl)
        _, frpc_cmd = frp_commands(frpc_impl)
        bind = free_port()
        args = ["--workers", str(workers)] if frps_impl == "ours" else []
        mux = False if raw else None  # raw: a TCP connection per work connection, no TLS
        self.frps = FrpProcess(frps_cmd, frps_config(bind, token=TOKEN, tcp_mux=mux), name=f"frps-{name}",
                               workdir=workdir, args=args).start()
        self.frps.wait_for_log("frps started successfully" + (f" with {workers} workers" if workers > 1 else ""), 30)
        self.remotes = [free_port() for _ in range(clients)]
        self.frpcs = [
            FrpProcess(frpc_cmd, frpc_config(bind, tcp_proxy(f"bulk{i}", sink_port, r), token=TOKEN, tcp_mux=mux,
                                             tls=False if raw else None),
                       name=f"frpc-{name}-{i}", workdir=workdir).start()
            for i, r in enumerate(self.remotes)
        ]
        for i, p in enumerate(self.frpcs):
            p.wait_for_proxies(f"bulk{i}", timeout=60)

    def close(self) -> None:
        for p in [*self.frpcs, self.frps]:
            p.kill()


def run_once(setup: Setup, size: int) -> tuple[float, float | None, float | None]:
    """(aggregate MB/s, frps CPU s/GB, frpc CPU s/GB)."""
    received = [0] * len(setup.remotes)
    errors: list[BaseException] = []

    def one(i: int, port: int) -> None:
        try:
            received[i] = bulk_upload(port, size, verify=False, timeout=max(120, size / 1e6)).received
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(setup.remotes)]
    frps_g = [setup.frps.pid] if setup.frps.pid else []
    frpc_g = [p.pid for p in setup.frpcs if p.pid]
    s0, c0 = cpu_seconds(frps_g), cpu_seconds(frpc_g)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    s1, c1 = cpu_seconds(frps_g), cpu_seconds(frpc_g)
    if errors:
        raise SystemExit(f"bench/workers.py: a transfer failed: {errors[0]!r}")
    gb = sum(received) / 1e9
    per = (lambda a, b: (b - a) / gb if a is not None and b is not None and gb else None)
    return sum(received) / wall / 1e6, per(s0, s1), per(c0, c1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8, help="frpc processes, one stream each (default 8)")
    ap.add_argument("--size", type=parse_size, default=64 << 20, help="bytes per stream (default 64M)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", default="go,w1,w2", help="comma separated (default go,w1,w2)")
    ap.add_argument("--raw", action="store_true", help="transport.tls.enable = false and tcpMux = false")
    args = ap.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        config_parts(c)
    workdir = tempfile.mkdtemp(prefix="aiofrp-bench-workers-")
    rates: dict[str, list[float]] = defaultdict(list)
    cpu_s: dict[str, list[float]] = defaultdict(list)
    cpu_c: dict[str, list[float]] = defaultdict(list)
    with BulkServer() as sink:
        for rnd in range(args.rounds):
            for name in (configs if rnd % 2 == 0 else configs[::-1]):
                setup = Setup(name, args.clients, sink.port, workdir, args.raw)
                try:
                    mbps, s, c = run_once(setup, args.size)
                finally:
                    setup.close()
                rates[name].append(mbps)
                if s is not None:
                    cpu_s[name].append(s)
                if c is not None:
                    cpu_c[name].append(c)
                print(f"round {rnd + 1} {name:<10} {mbps:8.1f} MB/s", flush=True)
    print(f"{args.clients} clients x 1 stream x {args.size >> 20} MiB upload, {args.rounds} round(s), medians; "
          f"loopback; {'raw (no TLS, no tcpMux)' if args.raw else 'TLS + tcpMux'}")
    print(f"{'config':<10} {'MB/s':>9} {'vs ' + configs[0]:>8} {'frps s/GB':>10} {'frpc s/GB':>10}")
    ref = statistics.median(rates[configs[0]])

    def med(d: dict[str, list[float]], k: str) -> float | None:
        return statistics.median(d[k]) if d[k] else None

    for name in configs:
        r = statistics.median(rates[name])
        print(f"{name:<10} {fmt(r)} {fmt(r / ref, 8, 2)} {fmt(med(cpu_s, name), 10, 2)} {fmt(med(cpu_c, name), 10, 2)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
