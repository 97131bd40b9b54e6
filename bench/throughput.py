#!/usr/bin/env python3
"""Bulk TCP throughput through frp: direct vs Go frp 0.65.0 vs aiofrp, interleaved in one invocation.

For every configuration a frps + frpc pair (loopback only) exposes one local sink/source service
through a ``tcp`` proxy.  Rounds are round-robin over the configurations (the starting
configuration rotates each round) so drifting machine load hits all of them alike; the median over
``--rounds`` is reported.  Timing is taken at the receiving end, from its first payload byte to the
last one.  MB/s means 10**6 bytes per second; sizes take binary suffixes (``256M`` = 256 MiB).

Configurations (``--configs``, comma separated): ``direct`` (no proxy), ``go`` / ``ours`` (frp
defaults: TLS on, tcpMux on) and variants ``IMPL-OPT[-OPT...]`` with OPT in ``enc``
(transport.useEncryption), ``comp`` (transport.useCompression), ``nomux`` (transport.tcpMux = false
on both sides), ``notls`` (transport.tls.enable = false), ``metrics`` (frps dashboard with
enablePrometheus), e.g. ``go-enc-comp``.  ``all`` expands to
direct, go, ours and the enc / comp / nomux variants of both.

    .venv/bin/python bench/throughput.py                       # 1 GiB, 3 rounds, direct,go,ours
    .venv/bin/python bench/throughput.py --size 256M --rounds 1
    .venv/bin/python bench/throughput.py --configs all --both --json /tmp/tp.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import Setup, cpu_seconds, fmt, frp_commands, teardown
from support.gofrp import GO_FRP_VERSION, GoFrpUnavailable, go_binaries
from support.procs import (
    BulkServer,
    FrpProcess,
    LogTimeout,
    bulk_download,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    ours_available,
    tcp_proxy,
)

IMPLS = ("direct", "go", "ours")
OPTS = ("enc", "comp", "nomux", "notls", "metrics")
DEFAULT_CONFIGS = "direct,go,ours"
ALL_CONFIGS = "direct,go,ours,go-enc,ours-enc,go-comp,ours-comp,go-nomux,ours-nomux"
TOKEN = "bench-token"
WARMUP_SIZE = 16 << 20
READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class Variant:
    name: str
    impl: str
    tls: bool = True
    mux: bool = True
    enc: bool = False
    comp: bool = False
    metrics: bool = False  # frps with its dashboard and enablePrometheus on (not scraped meanwhile)

    @property
    def counterpart(self) -> str | None:
        """The Go configuration an ``ours`` configuration is compared with."""
        return "go" + self.name[len("ours"):] if self.impl == "ours" else None


def parse_variant(name: str) -> Variant:
    impl, *opts = name.strip().split("-")
    if impl not in IMPLS:
        raise argparse.ArgumentTypeError(f"unknown configuration {name!r} (implementation must be one of {IMPLS})")
    bad = [o for o in opts if o not in OPTS]
    if bad or (impl == "direct" and opts) or len(set(opts)) != len(opts):
        raise argparse.ArgumentTypeError(f"bad options in {name!r} (allowed: {', '.join(OPTS)}; none for direct)")
    return Variant(name.strip(), impl, tls="notls" not in opts, mux="nomux" not in opts,
                   enc="enc" in opts, comp="comp" in opts, metrics="metrics" in opts)


def parse_configs(text: str) -> list[Variant]:
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        for n in (ALL_CONFIGS.split(",") if part == "all" else [part] if part else []):
            if n not in names:
                names.append(n)
    if not names:
        raise argparse.ArgumentTypeError("no configurations given")
    return [parse_variant(n) for n in names]


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 1G, 256M, 1048576)")
    mult = 1024 ** " kmgt".index((m[2] or " ").lower())
    size = int(float(m[1]) * mult)
    if size <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return size


def _wait_listening(proc: FrpProcess, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if not proc.running:
            raise LogTimeout(f"{proc.name} exited (rc={proc.returncode}) before listening on {port}\n"
                             f"{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise LogTimeout(f"{proc.name} not listening on {port} after {timeout}s\n{proc.log_tail()}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.1)


def start_proxy(v: Variant, service_port: int, workdir: Path) -> Setup:
    cmd_s, cmd_c = frp_commands(v.impl)
    server_port, remote_port = free_port(), free_port()
    mux = None if v.mux else False
    setup = Setup(v, remote_port)
    dash: dict[str, object] = {}
    if v.metrics:
        dash = {"webServer.addr": "127.0.0.1", "webServer.port": free_port(), "enablePrometheus": True}
    frps = FrpProcess(cmd_s, frps_config(server_port, token=TOKEN, tcp_mux=mux, **dash),
                      name=f"{v.name}-frps", workdir=workdir)
    setup.procs.append(frps.start())
    _wait_listening(frps, server_port, READY_TIMEOUT)
    proxy = tcp_proxy("bulk", service_port, remote_port, encryption=v.enc or None, compression=v.comp or None)
    frpc = FrpProcess(cmd_c, frpc_config(server_port, proxy, token=TOKEN, tls=None if v.tls else False,
                                         tcp_mux=mux), name=f"{v.name}-frpc", workdir=workdir)
    setup.procs.append(frpc.start())
    frpc.wait_for_proxies("bulk", timeout=READY_TIMEOUT)
    return setup


def transfer(port: int, size: int, direction: str, *, verify: bool, timeout: float, pattern: str):
    if direction == "upload":
        res = bulk_upload(port, size, verify=verify, timeout=timeout, pattern=pattern)
    else:
        res = bulk_download(port, size, verify=verify, timeout=timeout)
    if not res.ok:
        raise RuntimeError(f"{direction} incomplete or corrupted: received {res.received}/{res.size} bytes, "
                           f"sha256 sent {res.sha256_sent} received {res.sha256_received}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="bytes per transfer (default 1G = 1 GiB)")
    ap.add_argument("--rounds", type=int, default=3, help="round-robin rounds; the median is reported (default 3)")
    ap.add_argument("--configs", type=parse_configs, default=parse_configs(DEFAULT_CONFIGS),
                    help=f"comma-separated configurations (default {DEFAULT_CONFIGS}; 'all' = {ALL_CONFIGS})")
    ap.add_argument("--both", action="store_true", help="measure upload (client->service) and download")
    ap.add_argument("--download", action="store_true", help="measure download only (default: upload only)")
    ap.add_argument("--verify", action="store_true", help="SHA-256 every measured transfer (costs CPU on both ends)")
    ap.add_argument("--data", choices=("random", "zeros"), default="random",
                    help="payload: incompressible pseudo-random bytes (default) or zeros")
    ap.add_argument("--timeout", type=float, default=None,
                    help="deadline per transfer in seconds (default max(120, size / 5 MB/s))")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    ap.add_argument("--keep-logs", action="store_true", help="keep the frps/frpc config and log directory")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    directions = ["upload", "download"] if args.both else ["download"] if args.download else ["upload"]
    timeout = args.timeout or max(120.0, args.size / 5e6)
    variants: list[Variant] = args.configs
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}

    if any(v.impl == "ours" for v in variants) and not ours_available():
        for v in variants:
            if v.impl == "ours":
                skipped[v.name] = "aiofrp.cli.frps / aiofrp.cli.frpc not importable yet"
    if any(v.impl == "go" for v in variants):
        try:
            go_binaries()
        except GoFrpUnavailable as e:
            for v in variants:
                if v.impl == "go":
                    skipped[v.name] = f"Go frp {GO_FRP_VERSION} unavailable: {e}"

    print(f"aiofrp throughput bench: {args.size / (1 << 20):g} MiB per transfer, {args.rounds} round(s), "
          f"{'+'.join(directions)}, data={args.data}{', verified' if args.verify else ''}; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPU(s)", flush=True)
    for name, why in skipped.items():
        print(f"  skipping {name}: {why}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="aiofrp-bench-"))
    server = BulkServer(pattern=args.data, idle_timeout=max(60.0, timeout)).start()
    setups: dict[str, Setup] = {}
    runs: dict[str, dict[str, list[float]]] = {v.name: {d: [] for d in directions} for v in variants}
    cpu: dict[str, dict[str, list[float]]] = {v.name: {d: [] for d in directions} for v in variants}
    try:
        for v in variants:
            if v.name in skipped:
                continue
            try:
                setup = Setup(v, server.port) if v.impl == "direct" else start_proxy(v, server.port, workdir)
                setups[v.name] = setup
                for d in directions:  # warm-up, always verified
                    transfer(setup.port, WARMUP_SIZE, d, verify=True, timeout=60, pattern=args.data)
                print(f"  ready: {v.name}", flush=True)
            except Exception as e:  # noqa: BLE001 - report and carry on with the other configurations
                failed[v.name] = f"{type(e).__name__}: {e}"
                print(f"  FAILED to set up {v.name}: {failed[v.name]}", flush=True)
                setups.pop(v.name, None)

        active = [v for v in variants if v.name in setups]
        for r in range(args.rounds):
            order = active[r % len(active):] + active[: r % len(active)] if active else []
            for v in order:
                if v.name in failed:
                    continue
                setup = setups[v.name]
                for d in directions:
                    pids = setup.pids()
                    c0 = cpu_seconds(pids)
                    try:
                        res = transfer(setup.port, args.size, d, verify=args.verify, timeout=timeout,
                                       pattern=args.data)
                    except Exception as e:  # noqa: BLE001
                        failed[v.name] = f"{type(e).__name__}: {e}"
                        print(f"  FAILED {v.name} {d}: {failed[v.name]}", flush=True)
                        for p in setup.procs:
                            print(p.log_tail(15), flush=True)
                        break
                    c1 = cpu_seconds(pids)
                    runs[v.name][d].append(res.mb_per_s)
                    if c0 is not None and c1 is not None and pids:
                        cpu[v.name][d].append((c1 - c0) / (res.received / 1e9))
                    print(f"  round {r + 1}/{args.rounds}  {v.name:<14} {d:<8} {res.mb_per_s:9.1f} MB/s "
                          f"({res.seconds:.2f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        teardown(setups, workdir, args.keep_logs)
        server.stop()

    # ---- report ----------------------------------------------------------------------------------
    summary: dict[str, dict[str, dict[str, object]]] = {}
    print()
    print(f"{'config':<14} {'direction':<9} {'median MB/s':>11} {'min':>9} {'max':>9} {'proxy CPU s/GB':>14}")
    for v in variants:
        summary[v.name] = {}
        for d in directions:
            xs = runs[v.name][d]
            med = statistics.median(xs) if xs else None
            cpu_med = statistics.median(cpu[v.name][d]) if cpu[v.name][d] else None
            summary[v.name][d] = {"runs_mb_s": [round(x, 1) for x in xs], "median_mb_s": med and round(med, 1),
                                  "proxy_cpu_s_per_gb": cpu_med and round(cpu_med, 3)}
            note = skipped.get(v.name) or (failed.get(v.name) if v.name in failed else None)
            if xs:
                print(f"{v.name:<14} {d:<9} {fmt(med, 11)} {fmt(min(xs))} {fmt(max(xs))} {fmt(cpu_med, 14, 2)}"
                      + (f"  (failed later: {note})" if note else ""))
            else:
                print(f"{v.name:<14} {d:<9} {'skipped' if v.name in skipped else 'failed':>11}  {note or ''}")

    ratios: dict[str, dict[str, float | None]] = {}
    lines = []
    for v in variants:
        go_name = v.counterpart
        if go_name is None or go_name not in summary:
            continue
        ratios[f"{v.name}/{go_name}"] = {}
        for d in directions:
            ours_med = summary[v.name][d]["median_mb_s"]
            go_med = summary[go_name][d]["median_mb_s"]
            ratio = ours_med / go_med if ours_med and go_med else None  # type: ignore[operator]
            ratios[f"{v.name}/{go_name}"][d] = ratio and round(ratio, 3)
            lines.append(f"ratio {v.name}/{go_name} {d}: " + (f"{ratio:.3f}" if ratio else "n/a"))
    if any(v.impl == "ours" for v in variants) and not ratios:
        lines.append("ratio ours/go: n/a (go not measured)")
    if lines:
        print()
        print("\n".join(lines))

    if args.json:
        doc = {
            "size_bytes": args.size, "rounds": args.rounds, "directions": directions, "data": args.data,
            "verify": args.verify, "go_frp_version": GO_FRP_VERSION, "python": platform.python_version(),
            "platform": platform.platform(), "cpus": os.cpu_count(), "unit": "MB/s (1e6 bytes/s)",
            "results": summary, "ratios": ratios, "skipped": skipped, "failed": failed,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    measured = [v for v in variants if v.name not in skipped]
    return 1 if measured and all(v.name in failed for v in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
