#!/usr/bin/env python3
"""HTTP requests/s and latency through an frp ``http`` proxy: direct vs Go frp 0.65.0 vs aiofrp.

For each proxied configuration a frps (``vhostHTTPPort``) + frpc pair exposes one local HTTP
service (a minimal uvloop server answering every request with a fixed ``--body``-byte response)
as ``bench.example.com``; the load generator (uvloop, in this process) sends ``GET`` requests
with that Host to the vhost port. Modes:

``keepalive``  ``--concurrency`` persistent connections, each sending its next request as soon
               as the previous response is complete
``newconn``    ``--concurrency`` workers, each opening a new connection per request
               (``Connection: close``); latency includes the TCP connect

Rounds are interleaved (each round visits every configuration, starting at a different one), each
measurement lasts ``--duration`` seconds after a short warm-up; the median over rounds is reported
with p50/p99 latency of the median run and the CPU time of frps+frpc per 1000 requests.

    .venv/bin/python bench/http_load.py                                 # 3 rounds x 5 s, both modes
    .venv/bin/python bench/http_load.py --duration 3 --rounds 1 --modes keepalive
    .venv/bin/python bench/http_load.py --configs go,ours --concurrency 32 --json /tmp/http.json
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib package ``http``: keep its directory off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

sys.path.append(str(_HERE))  # for _common, after the stdlib (see above)
from _common import Setup, cpu_seconds, fmt, frp_commands
from support.gofrp import GO_FRP_VERSION, GoFrpUnavailable, go_binaries
from support.procs import (
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    ours_available,
    wait_port,
)

TOKEN = "bench-token"
HOST = "bench.example.com"
MODES = ("keepalive", "newconn")
IMPLS = ("direct", "go", "ours")
READY_TIMEOUT = 20.0
_CL = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


# -- the local service ----------------------------------------------------------------------------


def serve_backend(port: int, body_size: int) -> None:
    """A minimal HTTP/1.1 server: one fixed response per request head (no request bodies)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    body = b"x" * body_size
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    closing = response.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data if self.buf else data
            out = []
            start = 0
            while (end := buf.find(b"\r\n\r\n", start)) >= 0:
                head = buf[start:end]
                start = end + 4
                if b"onnection: close" in head or b"ONNECTION: CLOSE" in head:
                    out.append(closing)
                    self.t.writelines(out)
                    self.t.close()
                    return
                out.append(response)
            self.buf = buf[start:]
            if out:
                self.t.writelines(out) if len(out) > 1 else self.t.write(out[0])

    async def main() -> None:
        srv = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", port, backlog=4096)
        await srv.serve_forever()

    asyncio.run(main())


# -- the load generator ---------------------------------------------------------------------------


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float | None:
        if not self.latencies:
            return None
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


class _KeepAlive(asyncio.Protocol):
    def __init__(self, request: bytes, res: Result, state: dict) -> None:
        self.request = request
        self.res = res
        self.state = state
        self.buf = b""
        self.t0 = 0.0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.t0 = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            m = _CL.search(buf, 0, end + 2)
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < total:
                break
            ok = buf.startswith(b"HTTP/1.1 200 ")
            buf = buf[total:]
            now = time.perf_counter()
            if self.state["measuring"]:
                if ok:
                    self.res.requests += 1
                    self.res.latencies.append(now - self.t0)
                else:
                    self.res.errors += 1
            if self.state["running"]:
                self._send()
            else:
                self.transport.close()
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state["running"]:
            self.res.errors += 1
        if not self.closed.done():
            self.closed.set_result(None)


class _OneShot(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buf = b""
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.buf.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in self.buf)


async def _run_load(port: int, mode: str, concurrency: int, warmup: float, duration: float) -> Result:
    loop = asyncio.get_running_loop()
    res = Result()
    state = {"running": True, "measuring": False}
    if mode == "keepalive":
        request = f"GET /bench HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: aiofrp-bench\r\n\r\n".encode()
        protos = []
        for _ in range(concurrency):
            _, p = await loop.create_connection(lambda: _KeepAlive(request, res, state), "127.0.0.1", port)
            protos.append(p)
        await asyncio.sleep(warmup)
        state["measuring"] = True
        t0 = time.perf_counter()
        await asyncio.sleep(duration)
        state["measuring"] = False
        res.seconds = time.perf_counter() - t0
        state["running"] = False
        await asyncio.wait([p.closed for p in protos], timeout=5)
        return res

    request = f"GET /bench HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()

    async def worker() -> None:
        while state["running"]:
            t0 = time.perf_counter()
            try:
                _, p = await loop.create_connection(lambda: _OneShot(request), "127.0.0.1", port)
                ok = await asyncio.wait_for(p.done, 10)
            except (OSError, TimeoutError):
                ok = False
            if state["measuring"]:
                if ok:
                    res.requests += 1
                    res.latencies.append(time.perf_counter() - t0)
                else:
                    res.errors += 1

    tasks = [loop.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    state["measuring"] = True
    t0 = time.perf_counter()
    await asyncio.sleep(duration)
    state["measuring"] = False
    res.seconds = time.perf_counter() - t0
    state["running"] = False
    await asyncio.wait(tasks, timeout=15)
    return res


def run_load(port: int, mode: str, concurrency: int, warmup: float, duration: float) -> Result:
    try:
        import uvloop

        return uvloop.run(_run_load(port, mode, concurrency, warmup, duration))
    except ImportError:
        return asyncio.run(_run_load(port, mode, concurrency, warmup, duration))


# -- proxies ----------------------------------------------------------------------------------------


def start_proxy(impl: str, service_port: int, workdir: Path) -> Setup:
    cmd_s, cmd_c = frp_commands(impl)
    bind, vport = free_port(), free_port()
    setup = Setup(impl, vport)
    frps = FrpProcess(cmd_s, frps_config(bind, token=TOKEN, vhostHTTPPort=vport, **{"log.level": "warn"}),
                      name=f"{impl}-frps", workdir=workdir)
    setup.procs.append(frps.start())
    wait_port(bind, READY_TIMEOUT)
    proxy = (f'\n[[proxies]]\nname = "web"\ntype = "http"\nlocalIP = "127.0.0.1"\nlocalPort = {service_port}\n'
             f'customDomains = ["{HOST}"]\n')
    frpc = FrpProcess(cmd_c, frpc_config(bind, proxy, token=TOKEN), name=f"{impl}-frpc", workdir=workdir)
    setup.procs.append(frpc.start())
    frpc.wait_for_proxies("web", timeout=READY_TIMEOUT)
    wait_port(vport, READY_TIMEOUT)
    return setup


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring (default 1)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    ap.add_argument("--concurrency", type=int, default=16, help="connections / workers (default 16)")
    ap.add_argument("--modes", default="keepalive,newconn", help="comma-separated: keepalive, newconn")
    ap.add_argument("--configs", default="direct,go,ours", help="comma-separated: direct, go, ours")
    ap.add_argument("--body", type=int, default=1024, help="response body bytes (default 1024)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    ap.add_argument("--_backend", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._backend:
        serve_backend(args._backend, args.body)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if any(m not in MODES for m in modes) or any(c not in IMPLS for c in configs) or args.rounds < 1:
        ap.error(f"modes from {MODES}, configs from {IMPLS}, rounds >= 1")

    skipped: dict[str, str] = {}
    if "ours" in configs and not ours_available():
        skipped["ours"] = "aiofrp.cli.frps / frpc not importable"
    if "go" in configs:
        try:
            go_binaries()
        except GoFrpUnavailable as e:
            skipped["go"] = f"Go frp {GO_FRP_VERSION} unavailable: {e}"
    print(f"aiofrp http bench: {args.duration:g} s x {args.rounds} round(s), concurrency {args.concurrency}, "
          f"{args.body}-byte responses, modes {'+'.join(modes)}; Python {platform.python_version()}, "
          f"{os.cpu_count()} CPU(s)", flush=True)
    for name, why in skipped.items():
        print(f"  skipping {name}: {why}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="aiofrp-bench-http-"))
    backend_port = free_port()
    backend = subprocess.Popen([sys.executable, __file__, "--_backend", str(backend_port), "--body", str(args.body)],
                               start_new_session=True)
    setups: dict[str, Setup] = {}
    runs: dict[str, dict[str, list[Result]]] = {c: {m: [] for m in modes} for c in configs}
    cpu: dict[str, dict[str, list[float]]] = {c: {m: [] for m in modes} for c in configs}
    try:
        wait_port(backend_port, 10)
        for c in configs:
            if c in skipped:
                continue
            setups[c] = Setup(c, backend_port) if c == "direct" else start_proxy(c, backend_port, workdir)
            check = run_load(setups[c].port, "keepalive", 2, 0.1, 0.3)
            if not check.requests:
                raise RuntimeError(f"{c}: no response through the proxy ({check.errors} errors)")
            print(f"  ready: {c}", flush=True)
        active = [c for c in configs if c in setups]
        for r in range(args.rounds):
            order = active[r % len(active):] + active[: r % len(active)]
            for c in order:
                for m in modes:
                    pids = setups[c].pids()
                    c0 = cpu_seconds(pids) if pids else None
                    res = run_load(setups[c].port, m, args.concurrency, args.warmup, args.duration)
                    c1 = cpu_seconds(pids) if pids else None
                    runs[c][m].append(res)
                    if c0 is not None and c1 is not None and res.requests:
                        # warm-up load is included in the CPU time: scale by the measured share
                        share = args.duration / (args.duration + args.warmup)
                        cpu[c][m].append((c1 - c0) * share / res.requests * 1000)
                    print(f"  round {r + 1}/{args.rounds}  {c:<7} {m:<9} {res.rps:9.0f} req/s  "
                          f"p50 {fmt(res.pct(50), 6, 2)} ms  p99 {fmt(res.pct(99), 6, 2)} ms  "
                          f"errors {res.errors}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        for s in setups.values():
            for p in s.procs:
                p.kill()
        backend.kill()
        backend.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)

    summary: dict[str, dict[str, dict[str, object]]] = {}
    print()
    print(f"{'config':<8} {'mode':<10} {'median req/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/1k req':>14}")
    for c in configs:
        summary[c] = {}
        for m in modes:
            rs = runs[c][m]
            if not rs:
                print(f"{c:<8} {m:<10} {'skipped':>12}")
                continue
            med = sorted(rs, key=lambda x: x.rps)[len(rs) // 2]
            cpu_med = statistics.median(cpu[c][m]) * 1000 if cpu[c][m] else None
            summary[c][m] = {"runs_rps": [round(x.rps) for x in rs], "median_rps": round(med.rps),
                             "p50_ms": med.pct(50) and round(med.pct(50), 3),  # type: ignore[arg-type]
                             "p99_ms": med.pct(99) and round(med.pct(99), 3),  # type: ignore[arg-type]
                             "proxy_cpu_ms_per_1k": cpu_med and round(cpu_med, 1),
                             "errors": sum(x.errors for x in rs)}
            print(f"{c:<8} {m:<10} {med.rps:12.0f} {fmt(med.pct(50), 8, 2)} {fmt(med.pct(99), 8, 2)} "
                  f"{fmt(cpu_med, 14, 1)}")
    ratios = {}
    if "ours" in summary and "go" in summary:
        print()
        for m in modes:
            o, g = summary["ours"].get(m), summary["go"].get(m)
            if o and g:
                ratios[m] = round(o["median_rps"] / g["median_rps"], 3)  # type: ignore[operator]
                print(f"ratio ours/go {m} req/s: {ratios[m]:.3f}")
    if args.json:
        doc = {"duration_s": args.duration, "rounds": args.rounds, "concurrency": args.concurrency,
               "body_bytes": args.body, "go_frp_version": GO_FRP_VERSION, "python": platform.python_version(),
               "cpus": os.cpu_count(), "results": summary, "ratios_rps": ratios, "skipped": skipped}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
