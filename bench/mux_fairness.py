#!/usr/bin/env python3
"""A latency probe during a bulk transfer on the same yamux session, ours vs Go frp.

One frps + frpc (defaults: TLS + tcpMux) with one tcp proxy to a local service. Through that
proxy, so through the same yamux session, ``--bulk`` connections move data as fast as they can
(``up``: user -> service, ``down``: service -> user) while one more connection ping-pongs 64 bytes
and times every round trip. With fair sending, the probe's p99 stays near the idle round trip;
with first-come-first-served sending it waits behind the bulk stream's queued megabytes.

The bulk connections count what they move while the probe runs (``bulk MB/s``: their sum;
``slowest/fastest``: the spread between them with ``--bulk`` > 1), and the CPU time of the frps
and frpc processes over the same seconds is given in percent of one CPU.

    .venv/bin/python bench/mux_fairness.py --impls go,ours --seconds 5 --bulk 1

The service, the bulk clients and the probe are separate processes, so none of them shares a
GIL with another. Figures depend on the machine's load; compare the impls of one run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Setup, cpu_seconds, frp_commands, teardown
from support.procs import FrpProcess, LogTimeout, free_port, frpc_config, frps_config, tcp_proxy

TOKEN = "bench-token"
READY_TIMEOUT = 20.0
WARM_UP = 0.5  # seconds of bulk transfer before the probe starts
CHUNK = 256 * 1024

SERVICE = r"""
import asyncio, sys
CHUNK = bytes(256 * 1024)
class P(asyncio.Protocol):
    mode = None
    def connection_made(self, t):
        self.t = t
        t.get_extra_info("socket").setsockopt(6, 1, 1)
    def data_received(self, data):
        if self.mode is None:
            self.mode, data = data[:1], data[1:]
            if self.mode == b"D":
                self.pump()
        if self.mode == b"P" and data:
            self.t.write(data)
    def pump(self):
        while not self.t.is_closing() and self.t.get_write_buffer_size() < 1 << 20:
            self.t.write(CHUNK)
    def pause_writing(self): pass
    def resume_writing(self):
        if self.mode == b"D": self.pump()
async def main():
    srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""

BULK = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
mode = sys.argv[2].encode()
start = time.monotonic() + float(sys.argv[3])  # bytes are counted from here ...
stop = start + float(sys.argv[4])  # ... to here; the transfer goes on until the process is killed
s.sendall(mode)
buf = bytearray(256 * 1024)
data = bytes(256 * 1024)
count = -1
while True:
    if mode == b"U":
        s.sendall(data)
        n = len(data)
    else:
        n = s.recv_into(buf)
        if not n:
            break
    if count >= 0:
        count += n
        if time.monotonic() >= stop:
            print(count, flush=True)
            count = -2
    elif count == -1 and time.monotonic() >= start:
        count = 0
"""


def probe(port: int, seconds: float) -> list[float]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"P")
    msg = b"x" * 64
    rtts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        got = 0
        while got < 64:
            chunk = s.recv(64 - got)
            if not chunk:
                raise ConnectionError("probe connection closed")
            got += len(chunk)
        rtts.append((time.perf_counter_ns() - t0) / 1e6)
    s.close()
    return rtts


def start(impl: str, service_port: int, workdir: Path) -> Setup:
    cmd_s, cmd_c = frp_commands(impl)
    server_port, remote_port = free_port(), free_port()
    setup = Setup(impl, remote_port)
    frps = FrpProcess(cmd_s, frps_config(server_port, token=TOKEN), name=f"{impl}-frps", workdir=workdir)
    setup.procs.append(frps.start())
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", server_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or not frps.running:
                raise LogTimeout(f"{impl} frps not listening\n{frps.log_tail()}") from None
            time.sleep(0.05)
    frpc = FrpProcess(cmd_c, frpc_config(server_port, tcp_proxy("bulk", service_port, remote_port), token=TOKEN),
                      name=f"{impl}-frpc", workdir=workdir)
    setup.procs.append(frpc.start())
    frpc.wait_for_proxies("bulk", timeout=READY_TIMEOUT)
    return setup


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impls", default="go,ours", help="comma-separated: go, ours (default: go,ours)")
    ap.add_argument("--seconds", type=float, default=5.0, help="probe time per case (default 5)")
    ap.add_argument("--bulk", type=int, default=1, help="bulk connections beside the probe (default 1)")
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args(argv)
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="aiofrp-muxfair-"))
    service_port = free_port()
    service = subprocess.Popen([sys.executable, "-c", SERVICE, str(service_port)], stdout=subprocess.PIPE, text=True)
    setups: dict[str, Setup] = {}
    rows = []
    try:
        assert service.stdout is not None and service.stdout.readline().strip() == "ready"
        for impl in impls:
            setup = setups[impl] = start(impl, service_port, workdir)
            for case in ("idle", "up", "down"):
                bulks = []
                if case != "idle":
                    mode = "U" if case == "up" else "D"
                    bulks = [subprocess.Popen([sys.executable, "-c", BULK, str(setup.port), mode, str(WARM_UP),
                                               str(args.seconds)], stdout=subprocess.PIPE, text=True)
                             for _ in range(args.bulk)]
                    time.sleep(WARM_UP)  # let the bulk transfer fill the session (a warm-up, not a wait for state)
                cpu0 = cpu_seconds(setup.pids())
                t0 = time.monotonic()
                counts: list[int] = []
                try:
                    rtts = probe(setup.port, args.seconds)
                    cpu = cpu_seconds(setup.pids())
                    elapsed = time.monotonic() - t0
                    for b in bulks:  # each prints its byte count once its counting window is over
                        assert b.stdout is not None
                        line = b.stdout.readline().strip()
                        counts.append(int(line) if line else 0)
                finally:
                    for b in bulks:
                        b.kill()
                        b.wait()
                cpu_pct = 100 * (cpu - cpu0) / elapsed if cpu is not None and cpu0 is not None else None
                rows.append((impl, case, len(rtts), statistics.median(rtts), pct(rtts, 0.99), max(rtts),
                             [c / args.seconds / 1e6 for c in counts], cpu_pct))
            for p in setup.procs:
                p.kill()
    finally:
        service.kill()
        service.wait()
        teardown(setups, workdir, args.keep_logs)

    print(f"\n64-byte ping-pong through one tcp proxy (TLS + yamux) while {args.bulk} bulk "
          f"connection(s) share its session; {os.cpu_count()} CPUs\n")
    print("| impl | bulk | round trips | p50 ms | p99 ms | max ms | bulk MB/s | slowest/fastest | frps+frpc CPU % |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for impl, case, n, p50, p99, mx, rates, cpu_pct in rows:
        total = f"{sum(rates):.0f}" if rates else "-"
        spread = f"{min(rates) / max(rates):.2f}" if len(rates) > 1 and max(rates) > 0 else "-"
        cpu_s = f"{cpu_pct:.0f}" if cpu_pct is not None else "-"
        print(f"| {impl} | {case} | {n} | {p50:.3f} | {p99:.3f} | {mx:.1f} | {total} | {spread} | {cpu_s} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
