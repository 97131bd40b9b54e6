#!/usr/bin/env python3
"""UDP through frp: throughput and round-trip latency of a ``udp`` proxy, direct vs Go frp 0.65.0 vs
aiofrp, interleaved in one invocation.

Every configuration gets its own frps + frpc pair (loopback only) exposing one UDP echo service
(a separate process) through a ``udp`` proxy.  Per round and configuration two measurements run:

* throughput: ``--count`` datagrams of ``--size`` bytes echoed with at most ``--window`` of them
  unanswered at any time -> echoed packets/s, MB/s of payload per direction, loss;
* latency: ``--pings`` sequential 64-byte ping-pongs -> p50 / p99 round-trip time.

Rounds are round-robin over the configurations (rotating start); medians are reported, then
``ours/go`` ratios.  Configurations: ``direct`` (no proxy), ``go``, ``ours`` (frp defaults: TLS
and tcpMux on) and ``IMPL-enc`` / ``IMPL-comp`` (transport.useEncryption / useCompression).

    .venv/bin/python bench/udp.py                                # direct,go,ours; 3 rounds
    .venv/bin/python bench/udp.py --configs go,ours,go-enc,ours-enc --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from _common import Setup, cpu_seconds, frp_commands, teardown
from support.gofrp import GO_FRP_VERSION, GoFrpUnavailable, go_binaries
from support.procs import (
    LOCALHOST,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    ours_available,
    udp_proxy,
)

TOKEN = "bench-token"
READY_TIMEOUT = 20.0
DEFAULT_CONFIGS = "direct,go,ours"
IMPLS = ("direct", "go", "ours")
OPTS = ("enc", "comp")
LOST_AFTER = 0.3  # seconds without reply after which a datagram counts as lost

ECHO_CODE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("udp echo ready", flush=True)
while True:
    data, addr = s.recvfrom(65536)
    s.sendto(data, addr)
"""


@dataclass(frozen=True)
class Variant:
    name: str
    impl: str
    enc: bool = False
    comp: bool = False

    @property
    def counterpart(self) -> str | None:
        return "go" + self.name[len("ours"):] if self.impl == "ours" else None


def parse_configs(text: str) -> list[Variant]:
    out: list[Variant] = []
    for name in [n.strip() for n in text.split(",") if n.strip()]:
        impl, *opts = name.split("-")
        if impl not in IMPLS or any(o not in OPTS for o in opts) or (impl == "direct" and opts):
            raise argparse.ArgumentTypeError(f"bad configuration {name!r} (IMPL[-enc][-comp], IMPL in {IMPLS})")
        out.append(Variant(name, impl, "enc" in opts, "comp" in opts))
    if not out:
        raise argparse.ArgumentTypeError("no configurations given")
    return out


def roundtrip_ok(port: int, timeout: float) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((LOCALHOST, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                s.send(b"ready?")
                s.settimeout(0.2)
                if s.recv(64) == b"ready?":
                    return True
            except (TimeoutError, ConnectionRefusedError):
                time.sleep(0.05)
    return False


def start_proxy(v: Variant, service_port: int, workdir: Path) -> Setup:
    cmd_s, cmd_c = frp_commands(v.impl)
    server_port, remote_port = free_port(), free_port()
    setup = Setup(v, remote_port)
    frps = FrpProcess(cmd_s, frps_config(server_port, token=TOKEN), name=f"{v.name}-frps", workdir=workdir)
    setup.procs.append(frps.start())
    frps.wait_for_log(r"frps started successfully|start frps success", READY_TIMEOUT)
    keys = {"transport.useEncryption": v.enc or None, "transport.useCompression": v.comp or None}
    frpc = FrpProcess(cmd_c, frpc_config(server_port, udp_proxy("udp", service_port, remote_port, **keys),
                                         token=TOKEN), name=f"{v.name}-frpc", workdir=workdir)
    setup.procs.append(frpc.start())
    frpc.wait_for_proxies("udp", timeout=READY_TIMEOUT)
    if not roundtrip_ok(remote_port, READY_TIMEOUT):
        raise RuntimeError(f"no echo through {v.name} within {READY_TIMEOUT}s")
    return setup


@dataclass
class Throughput:
    sent: int
    echoed: int
    seconds: float
    size: int

    @property
    def pps(self) -> float:
        return self.echoed / self.seconds

    @property
    def mb_s(self) -> float:
        return self.echoed * self.size / self.seconds / 1e6

    @property
    def loss(self) -> float:
        return 1 - self.echoed / self.sent


def throughput(port: int, count: int, size: int, window: int, timeout: float) -> Throughput:
    """Windowed echo: at most ``window`` numbered datagrams unanswered; a reply frees a slot, and so
    does a datagram unanswered for ``LOST_AFTER`` seconds (written off as lost)."""
    pad = os.urandom(max(0, size - 4))
    got = bytearray(count)
    outstanding: deque[tuple[int, float]] = deque()
    echoed = sent = lost = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.connect((LOCALHOST, port))
        s.setblocking(False)
        start = last_rx = time.monotonic()
        deadline = start + timeout
        while echoed + lost < count and time.monotonic() < deadline:
            now = time.monotonic()
            while outstanding and (got[outstanding[0][0]] or now - outstanding[0][1] > LOST_AFTER):
                seq, _ = outstanding.popleft()
                if not got[seq]:
                    got[seq] = 2
                    lost += 1
            while sent < count and sent - echoed - lost < window:
                try:
                    s.send(struct.pack(">I", sent) + pad)
                except BlockingIOError:
                    break
                outstanding.append((sent, now))
                sent += 1
            if select.select([s], [], [], 0.02)[0]:
                while True:
                    try:
                        data = s.recv(65536)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    n = struct.unpack_from(">I", data)[0]
                    if n < count and got[n] != 1:
                        if got[n] == 2:  # a late reply to one written off
                            lost -= 1
                        got[n] = 1
                        echoed += 1
                last_rx = time.monotonic()
    # time to the last reply: a final wait for write-offs does not count
    return Throughput(sent, echoed, max(1e-9, last_rx - start), size)


def latency(port: int, pings: int, timeout: float = 1.0) -> list[float]:
    """Sequential 64-byte ping-pongs; RTTs in microseconds (lost pings are not counted)."""
    rtts: list[float] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((LOCALHOST, port))
        s.settimeout(timeout)
        for i in range(pings):
            msg = struct.pack(">I", i) + b"l" * 60
            t0 = time.perf_counter()
            s.send(msg)
            try:
                while s.recv(2048) != msg:
                    pass
            except TimeoutError:
                continue
            rtts.append((time.perf_counter() - t0) * 1e6)
    return rtts


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--configs", type=parse_configs, default=parse_configs(DEFAULT_CONFIGS),
                    help=f"comma-separated configurations (default {DEFAULT_CONFIGS})")
    ap.add_argument("--rounds", type=int, default=3, help="round-robin rounds; medians are reported (default 3)")
    ap.add_argument("--count", type=int, default=50_000, help="datagrams per throughput run (default 50000)")
    ap.add_argument("--size", type=int, default=1200, help="datagram size in bytes (default 1200, <= 1500)")
    ap.add_argument("--window", type=int, default=256, help="unanswered datagrams at most (default 256)")
    ap.add_argument("--pings", type=int, default=2000, help="sequential ping-pongs per latency run (default 2000)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    ap.add_argument("--keep-logs", action="store_true", help="keep the frps/frpc config and log directory")
    args = ap.parse_args(argv)
    if args.rounds < 1 or not 4 <= args.size <= 1500:
        ap.error("--rounds must be >= 1 and --size within 4..1500 (frp's default udpPacketSize)")

    variants: list[Variant] = args.configs
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    if any(v.impl == "ours" for v in variants) and not ours_available():
        skipped.update({v.name: "aiofrp.cli.frps / frpc not importable" for v in variants if v.impl == "ours"})
    if any(v.impl == "go" for v in variants):
        try:
            go_binaries()
        except GoFrpUnavailable as e:
            skipped.update({v.name: f"Go frp {GO_FRP_VERSION} unavailable: {e}" for v in variants if v.impl == "go"})

    print(f"aiofrp udp bench: {args.count} x {args.size}-byte datagrams (window {args.window}), {args.pings} pings, "
          f"{args.rounds} round(s); Python {platform.python_version()}, {os.cpu_count()} CPU(s)", flush=True)
    for name, why in skipped.items():
        print(f"  skipping {name}: {why}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="aiofrp-udpbench-"))
    echo_port = free_port()
    echo = FrpProcess([sys.executable, "-c", ECHO_CODE], None, name="udpecho", workdir=workdir,
                      args=[str(echo_port)]).start()
    setups: dict[str, Setup] = {}
    tp: dict[str, list[Throughput]] = {v.name: [] for v in variants}
    lat: dict[str, list[list[float]]] = {v.name: [] for v in variants}
    cpu: dict[str, list[float]] = {v.name: [] for v in variants}
    try:
        echo.wait_for_log("udp echo ready", 10)
        for v in variants:
            if v.name in skipped:
                continue
            try:
                setups[v.name] = Setup(v, echo_port) if v.impl == "direct" else start_proxy(v, echo_port, workdir)
                throughput(setups[v.name].port, 2000, args.size, args.window, 10)  # warm-up
                print(f"  ready: {v.name}", flush=True)
            except Exception as e:  # noqa: BLE001 - report and go on with the others
                failed[v.name] = f"{type(e).__name__}: {e}"
                print(f"  FAILED to set up {v.name}: {failed[v.name]}", flush=True)
        active = [v for v in variants if v.name in setups and v.name not in failed]
        for r in range(args.rounds):
            for v in active[r % len(active):] + active[: r % len(active)] if active else []:
                setup = setups[v.name]
                c0 = cpu_seconds(setup.pids()) if setup.procs else None
                res = throughput(setup.port, args.count, args.size, args.window, timeout=120)
                c1 = cpu_seconds(setup.pids()) if setup.procs else None
                rtts = latency(setup.port, args.pings)
                tp[v.name].append(res)
                lat[v.name].append(rtts)
                if c0 is not None and c1 is not None and res.echoed:
                    cpu[v.name].append((c1 - c0) / res.echoed * 1e5)
                p50 = pct(rtts, 50) if rtts else float("nan")
                p99 = pct(rtts, 99) if rtts else float("nan")
                print(f"  round {r + 1}/{args.rounds}  {v.name:<10} {res.pps:9.0f} pkt/s {res.mb_s:7.1f} MB/s "
                      f"loss {res.loss:6.2%}  rtt p50 {p50:7.0f} us  p99 {p99:7.0f} us", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        teardown(setups, workdir, args.keep_logs)
        echo.kill()

    summary: dict[str, dict[str, float | None]] = {}
    print()
    print(f"{'config':<10} {'pkt/s':>9} {'MB/s':>7} {'loss':>7} {'p50 us':>8} {'p99 us':>8} {'CPU s/100k pkt':>15}")
    for v in variants:
        runs = tp[v.name]
        if not runs:
            print(f"{v.name:<10} {'skipped' if v.name in skipped else 'failed':>9}  "
                  f"{skipped.get(v.name) or failed.get(v.name, '')}")
            continue
        p50 = statistics.median(pct(x, 50) for x in lat[v.name] if x)
        p99 = statistics.median(pct(x, 99) for x in lat[v.name] if x)
        row = {
            "pps": statistics.median(x.pps for x in runs), "mb_s": statistics.median(x.mb_s for x in runs),
            "loss": statistics.median(x.loss for x in runs), "rtt_p50_us": p50, "rtt_p99_us": p99,
            "cpu_s_per_100k_pkt": statistics.median(cpu[v.name]) if cpu[v.name] else None,
        }
        summary[v.name] = row
        c = row["cpu_s_per_100k_pkt"]
        print(f"{v.name:<10} {row['pps']:9.0f} {row['mb_s']:7.1f} {row['loss']:7.2%} {p50:8.0f} {p99:8.0f} "
              f"{(f'{c:.2f}' if c is not None else '-'):>15}")

    ratios: dict[str, dict[str, float]] = {}
    for v in variants:
        go = v.counterpart
        if go and go in summary and v.name in summary:
            o, g = summary[v.name], summary[go]
            ratios[f"{v.name}/{go}"] = {k: round(o[k] / g[k], 3) for k in ("pps", "rtt_p50_us", "rtt_p99_us")
                                        if o[k] and g[k]}
    if ratios:
        print()
        for name, rs in ratios.items():
            print(f"ratio {name}: throughput {rs.get('pps', float('nan')):.3f}, "
                  f"rtt p50 {rs.get('rtt_p50_us', float('nan')):.3f}, p99 {rs.get('rtt_p99_us', float('nan')):.3f}")
    if args.json:
        doc = {"count": args.count, "size": args.size, "window": args.window, "pings": args.pings,
               "rounds": args.rounds, "go_frp_version": GO_FRP_VERSION, "python": platform.python_version(),
               "cpus": os.cpu_count(), "results": summary, "ratios": ratios, "skipped": skipped, "failed": failed}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 1 if failed and not summary else 0


if __name__ == "__main__":
    sys.exit(main())
