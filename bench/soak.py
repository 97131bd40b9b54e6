#!/usr/bin/env python3
"""Soak: many long-lived tunnelled TCP streams plus connection churn through our frps and frpc.

One frps and one frpc (ours, loopback, token auth, frp's defaults: TLS and tcpMux on) expose an
echo service (a separate uvloop process) through one ``tcp`` proxy. This process (uvloop, asyncio
protocols, no task per chunk) then:

* opens ``--conns`` streams through the proxy; one ticker sends every stream a ``--chunk`` of its
  own seeded pattern every ``--interval`` seconds (streams are spread over the ticks), the echo
  comes back, so data flows in both directions all the time. Every byte echoed is compared with
  the pattern at its offset, and at the end the SHA-256 of what each stream sent and of what it got
  back must match. A stream more than ``--window`` chunks behind skips its turn (counted).
* runs ``--churn-workers`` loops of connect, echo ``--churn-bytes`` (checked), close, as fast as
  they go: the churn rate is what the machine sustains beside the streams.
* samples RSS and open fds of frps and frpc every second.

Phases: baseline (proxy up, no load), warm-up (the same load for ``--warmup`` s, then everything
closed: the "warmed-up" RSS is taken once the fds are back to baseline), the measured run
(``--duration`` s, latency and churn in ``--bucket``-second buckets), drain (sending stops; every
stream must get all its bytes back), close, and the end state (fds back to baseline, RSS against
the warmed-up level).

    make soak                                                   # 10,000 streams, 10 min
    .venv/bin/python bench/soak.py --conns 500 --duration 30 --warmup 5 --bucket 10 --json /tmp/s.json

Exit status 0 when no byte was lost or corrupted, no stream or churn connection failed, and the fds
of frps and frpc came back to baseline; the RSS check is reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import _common  # noqa: F401 - puts tests/ on sys.path
from support.procs import FrpProcess, free_port, frpc_config, frps_config, ours_cmd, tcp_proxy

TOKEN = "soak-token"
PATTERN_LEN = 1 << 20
READY_TIMEOUT = 30.0


def raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency of aiofrp
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# -- the echo service (a process of its own) --------------------------------------------------------


class Echo(asyncio.Protocol):
    """Echoes; stops reading while its write buffer is full (flow control both ways)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        self.t.set_write_buffer_limits(high=256 << 10)

    def data_received(self, data: bytes) -> None:
        self.t.write(data)

    def pause_writing(self) -> None:
        self.t.pause_reading()

    def resume_writing(self) -> None:
        self.t.resume_reading()

    def eof_received(self) -> bool:
        return False  # close once the peer has finished (after what was written is flushed)


def echo_server(port: int) -> None:
    install_uvloop()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port, backlog=4096)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# -- process figures ---------------------------------------------------------------------------------


def proc_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1.0


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    fds: dict[str, int]
    rss: dict[str, float]


def sample(pids: dict[str, int]) -> Sample:
    return Sample({n: proc_fds(p) for n, p in pids.items()}, {n: proc_rss_mb(p) for n, p in pids.items()})


# -- the load ------------------------------------------------------------------------------------------


@dataclass
class Bucket:
    latencies: list[float] = field(default_factory=list)
    churn: int = 0
    churn_times: list[float] = field(default_factory=list)
    skipped: int = 0
    max_fds: dict[str, int] = field(default_factory=dict)
    max_rss: dict[str, float] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)
    """The bucket's figures, computed when it ends (its samples are then dropped)."""


class Load:
    """What the streams and churn loops share: the pattern, counters and the current bucket."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        rng = random.Random(args.seed)
        pattern = rng.randbytes(PATTERN_LEN)
        self.pattern = memoryview(pattern + pattern)  # a slice of up to PATTERN_LEN never wraps
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.bucket: Bucket | None = None  # None outside the measured run
        self.buckets: list[Bucket] = []
        self.corrupt_bytes = 0
        self.running = True

    def error(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {detail}")

    def piece(self, base: int, offset: int, n: int) -> memoryview:
        start = (base + offset) % PATTERN_LEN
        return self.pattern[start : start + n]


class Stream(asyncio.Protocol):
    """One long-lived stream: sends pattern chunks when told, checks the echo as it arrives."""

    def __init__(self, load: Load, index: int) -> None:
        self.load = load
        self.base = index * 7919 % PATTERN_LEN
        self.sent = 0
        self.received = 0
        self.sha_sent = hashlib.sha256()
        self.sha_received = hashlib.sha256()
        self.pending: deque[tuple[int, float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.lost = False
        self.drained: asyncio.Future[None] | None = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, n: int, window: int) -> None:
        t = self.transport
        if t is None or self.lost or self.closing:
            return
        if self.sent - self.received >= window:
            b = self.load.bucket
            if b is not None:
                b.skipped += 1
            return
        chunk = self.load.piece(self.base, self.sent, n)
        t.write(chunk)
        self.sha_sent.update(chunk)
        self.sent += n
        self.pending.append((self.sent, time.monotonic()))

    def data_received(self, data: bytes) -> None:
        n = len(data)
        if data != self.load.piece(self.base, self.received, n):
            self.load.corrupt_bytes += n
            self.load.error("corrupt", f"stream {self.base}: {n} bytes at {self.received} differ")
        self.sha_received.update(data)
        self.received += n
        now = time.monotonic()
        pending = self.pending
        bucket = self.load.bucket
        while pending and pending[0][0] <= self.received:
            _, t0 = pending.popleft()
            if bucket is not None:
                bucket.latencies.append(now - t0)
        if self.drained is not None and self.received >= self.sent and not self.drained.done():
            self.drained.set_result(None)
        if self.received > self.sent:
            self.load.error("extra", f"stream {self.base}: got {self.received} of {self.sent} sent")

    def eof_received(self) -> bool:
        if not self.closing:
            self.load.error("eof", f"stream {self.base} closed by the proxy after {self.received} bytes")
            self.lost = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing and not self.lost:
            self.load.error("lost", f"stream {self.base}: {exc!r}")
        self.lost = True
        self.transport = None
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        if not self.done.done():
            self.done.set_result(None)


async def open_streams(load: Load, port: int, n: int, parallel: int) -> list[Stream]:
    loop = asyncio.get_running_loop()
    streams: list[Stream] = []
    todo = iter(range(n))

    async def opener() -> None:
        for i in todo:
            s = Stream(load, i)
            try:
                await loop.create_connection(lambda s=s: s, "127.0.0.1", port)  # type: ignore[misc]
            except OSError as exc:
                load.error("connect", repr(exc))
                continue
            streams.append(s)

    await asyncio.gather(*(opener() for _ in range(parallel)))
    return streams


async def ticker(load: Load, streams: list[Stream], stop: asyncio.Event) -> None:
    """Every ``tick`` s, the next slice of streams sends a chunk: each stream once per interval."""
    args = load.args
    ticks = max(1, round(args.interval / args.tick))
    start = time.monotonic()
    k = 0
    while not stop.is_set():
        group = k % ticks
        for s in streams[group::ticks]:
            s.send(args.chunk, args.window * args.chunk)
        k += 1
        delay = start + k * args.tick - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def churn_worker(load: Load, port: int, worker: int, stop: asyncio.Event) -> None:
    size = load.args.churn_bytes
    k = 0
    while not stop.is_set():
        k += 1
        data = load.piece(worker * 104729 + k * 131, 0, size)
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, TimeoutError) as exc:
            load.error("churn-connect", repr(exc))
            continue
        try:
            writer.write(data)
            got = await asyncio.wait_for(reader.readexactly(size), 30)
            if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
                load.corrupt_bytes += size
                load.error("churn-corrupt", f"worker {worker} connection {k}")
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            load.error("churn", repr(exc))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        b = load.bucket
        if b is not None:
            b.churn += 1
            b.churn_times.append(time.monotonic() - t0)


async def monitor(load: Load, pids: dict[str, int], stop: asyncio.Event, peak: dict[str, Any]) -> None:
    while not stop.is_set():
        s = sample(pids)
        for n in pids:
            peak["fds"][n] = max(peak["fds"].get(n, 0), s.fds[n])
            peak["rss"][n] = max(peak["rss"].get(n, 0.0), s.rss[n])
            b = load.bucket
            if b is not None:
                b.max_fds[n] = max(b.max_fds.get(n, 0), s.fds[n])
                b.max_rss[n] = max(b.max_rss.get(n, 0.0), s.rss[n])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def wait_fds(pids: dict[str, int], baseline: dict[str, int], timeout: float) -> tuple[bool, Sample]:
    """Poll until frps's and frpc's fds are back to at most their baseline (deadline ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        s = sample(pids)
        if all(s.fds[n] <= baseline[n] for n in pids):
            return True, s
        if time.monotonic() > deadline:
            return False, s
        await asyncio.sleep(0.25)


async def run_load(load: Load, port: int, seconds: float, measured: bool) -> dict[str, Any]:
    """Open the streams, run them and the churn for ``seconds``, drain, close; the stream totals."""
    args = load.args
    t0 = time.monotonic()
    streams = await open_streams(load, port, args.conns, args.open_parallel)
    opened = time.monotonic() - t0
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(ticker(load, streams, stop))]
    tasks += [asyncio.ensure_future(churn_worker(load, port, w, stop)) for w in range(args.churn_workers)]
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        if measured:
            load.bucket = Bucket()
            load.buckets.append(load.bucket)
        await asyncio.sleep(min(args.bucket, end - now))
        if measured and load.bucket is not None:
            b = load.bucket
            b.row = bucket_row(b, min(args.bucket, time.monotonic() - now))
            b.latencies, b.churn_times = [], []
            print(f"  {len(load.buckets) * args.bucket:6.0f}s  p50 {b.row['p50_ms']:7.1f} ms  "
                  f"p99 {b.row['p99_ms']:7.1f} ms  churn {b.row['churn_per_s']:6.1f}/s  "
                  f"frps {b.max_rss.get('frps', 0):.0f} MB {b.max_fds.get('frps', 0)} fds  "
                  f"frpc {b.max_rss.get('frpc', 0):.0f} MB {b.max_fds.get('frpc', 0)} fds  "
                  f"errors {sum(load.errors.values())}", flush=True)
    load.bucket = None
    stop.set()
    await asyncio.gather(*tasks)
    # drain: no more sends; every stream must get back all it sent
    waits = []
    for s in streams:
        if not s.lost and s.received < s.sent:
            s.drained = asyncio.get_running_loop().create_future()
            waits.append(s.drained)
    if waits:
        await asyncio.wait(waits, timeout=args.drain_timeout)
    sent = sum(s.sent for s in streams)
    received = sum(s.received for s in streams)
    lost = sum(s.sent - s.received for s in streams if s.received < s.sent)
    bad_sha = sum(1 for s in streams if s.sha_sent.digest() != s.sha_received.digest())
    for s in streams:
        s.closing = True
        if s.transport is not None:
            s.transport.close()
    if streams:
        await asyncio.wait([s.done for s in streams], timeout=30)
    return {"streams": len(streams), "open_seconds": round(opened, 1), "sent": sent, "received": received,
            "lost": lost, "sha_mismatch": bad_sha}


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- orchestration -------------------------------------------------------------------------------------


def start_setup(workdir: Path, echo_port: int) -> tuple[FrpProcess, FrpProcess, subprocess.Popen[bytes], int]:
    bind, remote = free_port(), free_port()
    frps = FrpProcess(ours_cmd("frps"), frps_config(bind, token=TOKEN), name="frps", workdir=workdir).start()
    echo = subprocess.Popen([sys.executable, __file__, "--echo-server", str(echo_port)],
                            stdout=subprocess.PIPE, start_new_session=True)
    frpc = FrpProcess(ours_cmd("frpc"), frpc_config(bind, tcp_proxy("soak", echo_port, remote), token=TOKEN),
                      name="frpc", workdir=workdir).start()
    assert echo.stdout is not None
    if echo.stdout.readline().strip() != b"ready":
        raise RuntimeError("the echo service did not start")
    frpc.wait_for_proxies("soak", timeout=READY_TIMEOUT)
    return frps, frpc, echo, remote


async def soak(args: argparse.Namespace, pids: dict[str, int], port: int) -> dict[str, Any]:
    load = Load(args)
    peak: dict[str, Any] = {"fds": {}, "rss": {}}
    mon_stop = asyncio.Event()
    mon = asyncio.ensure_future(monitor(load, pids, mon_stop, peak))
    # the baseline: frps/frpc before any user connection, or once they have served one if they
    # keep something from it (lazy set-up is not a leak)
    pre = sample(pids)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    await asyncio.wait_for(reader.readexactly(5), READY_TIMEOUT)
    writer.close()
    await writer.wait_closed()
    back, settled = await wait_fds(pids, pre.fds, 5.0)
    before = pre if back else settled
    result: dict[str, Any] = {"before": before.__dict__}
    print(f"baseline: {before.fds} fds, RSS {fmt_rss(before.rss)}", flush=True)
    if args.warmup > 0:
        print(f"warm-up: {args.conns} streams for {args.warmup:g} s", flush=True)
        warm = await run_load(load, port, args.warmup, measured=False)
        ok, settled = await wait_fds(pids, before.fds, args.settle_timeout)
        result["warmup"] = warm
        result["warmed_up"] = settled.__dict__
        print(f"warmed up: {warm['streams']} streams, {warm['sent']:,} bytes, lost {warm['lost']}; "
              f"fds {settled.fds} ({'back to baseline' if ok else 'NOT back'}), RSS {fmt_rss(settled.rss)}",
              flush=True)
    warmed = result.get("warmed_up", before.__dict__)["rss"]
    print(f"run: {args.conns} streams x {args.chunk} B every {args.interval:g} s, "
          f"{args.churn_workers} churn loops, {args.duration:g} s", flush=True)
    peak["fds"], peak["rss"] = {}, {}
    cpu0 = {n: proc_cpu(p) for n, p in pids.items()}
    main = await run_load(load, port, args.duration, measured=True)
    main["cpu_seconds"] = {n: round(proc_cpu(p) - cpu0[n], 1) for n, p in pids.items()}
    during = {"fds": dict(peak["fds"]), "rss": dict(peak["rss"])}
    fds_back, after = await wait_fds(pids, before.fds, args.settle_timeout)
    mon_stop.set()
    await mon
    rss_ratio = {n: after.rss[n] / warmed[n] for n in pids}
    result.update({
        "run": main, "during_peak": during, "after": after.__dict__, "fds_back": fds_back,
        "rss_vs_warmed": {n: round(r, 3) for n, r in rss_ratio.items()},
        "rss_within_10pct": all(r <= 1.10 for r in rss_ratio.values()),
        "errors": dict(load.errors), "error_samples": load.error_samples, "corrupt_bytes": load.corrupt_bytes,
        "buckets": [b.row for b in load.buckets],
    })
    return result


def bucket_row(b: Bucket, seconds: float) -> dict[str, Any]:
    lat = sorted(b.latencies)
    churn = sorted(b.churn_times)
    return {"samples": len(lat), "p50_ms": round(pct(lat, 0.5) * 1e3, 1), "p99_ms": round(pct(lat, 0.99) * 1e3, 1),
            "max_ms": round(lat[-1] * 1e3, 1) if lat else None, "skipped": b.skipped,
            "churn_per_s": round(b.churn / seconds, 1), "churn_p99_ms": round(pct(churn, 0.99) * 1e3, 1),
            "rss_mb": {n: round(v, 1) for n, v in b.max_rss.items()}, "fds": dict(b.max_fds)}


def fmt_rss(rss: dict[str, float]) -> str:
    return ", ".join(f"{n} {v:.1f} MB" for n, v in rss.items())


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    run = r["run"]
    print("\n| time | p50 ms | p99 ms | max ms | echoes | skipped | churn/s | churn p99 ms | frps RSS MB / fds |"
          " frpc RSS MB / fds |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, b in enumerate(r["buckets"], 1):
        print(f"| {i * args.bucket:g} s | {b['p50_ms']} | {b['p99_ms']} | {b['max_ms']} | {b['samples']:,} | "
              f"{b['skipped']:,} | {b['churn_per_s']} | {b['churn_p99_ms']} | "
              f"{b['rss_mb'].get('frps', 0):.0f} / {b['fds'].get('frps', 0)} | "
              f"{b['rss_mb'].get('frpc', 0):.0f} / {b['fds'].get('frpc', 0)} |")
    before, after, during = r["before"], r["after"], r["during_peak"]
    warmed = r.get("warmed_up", before)
    print("\n| | frps RSS MB | frps fds | frpc RSS MB | frpc fds |\n|---|---:|---:|---:|---:|")
    for name, s in (("before", before), ("warmed up (after the warm-up load)", warmed),
                    ("during (peak)", during), ("after", after)):
        print(f"| {name} | {s['rss']['frps']:.1f} | {s['fds']['frps']} | {s['rss']['frpc']:.1f} | {s['fds']['frpc']} |")
    errors = sum(r["errors"].values())
    print(f"\nstreams {run['streams']:,} (opened in {run['open_seconds']} s), bytes sent {run['sent']:,}, "
          f"echoed {run['received']:,}, lost {run['lost']}, SHA-256 mismatches {run['sha_mismatch']}, "
          f"corrupt bytes {r['corrupt_bytes']}, errors {errors} {r['errors'] or ''}")
    print(f"CPU seconds in the run (open, load, drain, close): {run['cpu_seconds']}")
    print(f"fds back to baseline: {r['fds_back']}; RSS after / warmed up: {r['rss_vs_warmed']} "
          f"({'within' if r['rss_within_10pct'] else 'NOT within'} 10 %)")
    for line in r["error_samples"]:
        print("  ", line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=10_000, help="long-lived streams")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of the measured run")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds of the same load before (0: none)")
    ap.add_argument("--chunk", type=int, default=1024, help="bytes a stream sends per interval")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between a stream's chunks")
    ap.add_argument("--tick", type=float, default=0.05, help="the ticker's period")
    ap.add_argument("--window", type=int, default=8, help="chunks a stream may have unechoed")
    ap.add_argument("--churn-workers", type=int, default=16, help="connect-echo-close loops")
    ap.add_argument("--churn-bytes", type=int, default=16 << 10)
    ap.add_argument("--bucket", type=float, default=60.0, help="seconds per latency bucket")
    ap.add_argument("--open-parallel", type=int, default=200, help="connections being opened at once")
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    ap.add_argument("--settle-timeout", type=float, default=60.0, help="deadline for fds back to baseline")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo_server:
        echo_server(args.echo_server)
        return 0
    soft, hard = raise_fd_limit()
    need = args.conns + 4 * args.churn_workers + 200
    if soft < need:
        ap.error(f"{args.conns} streams need about {need} fds per process; the limit is {soft} (hard {hard})")
    loop_kind = install_uvloop()
    workdir = Path(tempfile.mkdtemp(prefix="aiofrp-soak-"))
    frps = frpc = None
    echo: subprocess.Popen[bytes] | None = None
    try:
        frps, frpc, echo, port = start_setup(workdir, free_port())
        assert frps.pid is not None and frpc.pid is not None
        pids = {"frps": frps.pid, "frpc": frpc.pid}
        print(f"soak: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()} ({loop_kind}), "
              f"fd limit {soft}, load 1/5/15 min {os.getloadavg()}", flush=True)
        t0 = time.time()
        r = asyncio.run(soak(args, pids, port))
        r.update({"args": {k: v for k, v in vars(args).items() if k != "echo_server"},
                  "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t0)),
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "kernel": platform.release(), "loop": loop_kind}})
        for p in (frps, frpc):
            if not p.running:
                r["errors"][f"{p.name} exited"] = 1
                print(p.log_tail(), file=sys.stderr)
        report(args, r)
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=1))
        ok = (r["run"]["lost"] == 0 and r["run"]["sha_mismatch"] == 0 and r["corrupt_bytes"] == 0
              and not r["errors"] and r["fds_back"] and r.get("warmup", {}).get("lost", 0) == 0)
        print("PASS" if ok else "FAIL", flush=True)
        return 0 if ok else 1
    finally:
        if echo is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(echo.pid, signal.SIGKILL)
            echo.wait(10)
        for proc in (frpc, frps):
            if proc is not None:
                proc.kill()
        if args.keep_logs:
            print(f"configs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
