#!/usr/bin/env python3
"""The HTTP client plugins through a ``tcp`` proxy: Go frp 0.65.0 vs aiofrp, in one run.

Per implementation one frps + frpc pair (both of that implementation, loopback, token auth)
exposes two ``tcp`` proxies with plugins:

``static_file``  a ``--size`` file of random bytes; curl downloads it (``-o /dev/null``) and
                 reports MB/s (10^6 bytes/s, curl's ``speed_download``)
``https2http``   in front of a tiny local HTTP/1.1 server (fixed ``--body``-byte answers, keep-
                 alive); one curl process sends ``--requests`` GETs over ``--concurrency``
                 parallel connections (``-Z``), HTTP/1.1 and HTTP/2; req/s = requests / wall time

Rounds are interleaved (every round visits both implementations, in alternating order); the
median over rounds is reported with the CPU time of frps+frpc, in total and per unit of work (ms
per MB downloaded, per 100 requests: steadier than the rates when other jobs share the machine).
curl is the client for both, so its own cost is the same on each side.

``--impls`` picks what runs side by side: ``go``, ``ours``, ``base`` (ours from another source tree,
``--base-src DIR/src``: a before/after A/B in one run, ratios against the first one listed).

    .venv/bin/python bench/plugins_http.py                          # 3 rounds, 512 MiB, 2000 requests
    .venv/bin/python bench/plugins_http.py --rounds 1 --size 128M --requests 500
    .venv/bin/python bench/plugins_http.py --impls go,base,ours --base-src ../main/src
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

sys.path.append(str(_HERE))
from _common import Setup, cpu_seconds, fmt, frp_commands, teardown
from support.gofrp import GO_FRP_VERSION
from support.procs import FrpProcess, free_port, frpc_config, frps_config

TOKEN = "bench-token"
OUR_SRC = str(_HERE.parent / "src")


def parse_size(s: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


class Backend:
    """A minimal keep-alive HTTP/1.1 server on its own thread: every request gets ``body`` bytes."""

    def __init__(self, body: int) -> None:
        payload = b"x" * body
        self.response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (
            len(payload), payload)
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> Backend:
        response = self.response

        class Conn(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport
                self.buf = b""

            def data_received(self, data: bytes) -> None:
                self.buf += data
                while True:
                    end = self.buf.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    self.buf = self.buf[end + 4:]
                    self.t.write(response)  # type: ignore[attr-defined]

        async def serve() -> int:
            server = await self.loop.create_server(Conn, "127.0.0.1", 0)
            return int(server.sockets[0].getsockname()[1])

        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)
        return self


def start_pair(impl: str, workdir: Path, root: Path, backend: int,
               base_src: str | None = None) -> tuple[Setup, int, int]:
    frps_cmd, frpc_cmd = frp_commands("go" if impl == "go" else "ours")
    env: dict[str, str] | None = None
    if impl != "go" and base_src:  # an A/B: ours and base are started the same way (-P, PYTHONPATH)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": base_src if impl == "base" else OUR_SRC}
        frps_cmd = [sys.executable, "-P", *frps_cmd[1:]]
        frpc_cmd = [sys.executable, "-P", *frpc_cmd[1:]]
    bind, static_port, https_port = free_port(), free_port(), free_port()
    frps = FrpProcess(frps_cmd, frps_config(bind, token=TOKEN), name=f"{impl}-frps", workdir=workdir, env=env).start()
    frps.wait_for_log(r"frps started successfully", 30)
    proxies = (
        f'\n[[proxies]]\nname = "files"\ntype = "tcp"\nremotePort = {static_port}\n'
        f'[proxies.plugin]\ntype = "static_file"\nlocalPath = "{root}"\n'
        f'\n[[proxies]]\nname = "web"\ntype = "tcp"\nremotePort = {https_port}\n'
        f'[proxies.plugin]\ntype = "https2http"\nlocalAddr = "127.0.0.1:{backend}"\n'
    )
    frpc = FrpProcess(frpc_cmd, frpc_config(bind, proxies, token=TOKEN), name=f"{impl}-frpc", workdir=workdir,
                      env=env).start()
    frpc.wait_for_proxies("files", "web", timeout=30)
    setup = Setup(impl, static_port, [frps, frpc])
    return setup, static_port, https_port


def download(port: int, timeout: float) -> float:
    r = subprocess.run(["curl", "-sS", "--max-time", str(timeout), "-o", os.devnull, "-w", "%{speed_download}",
                        f"http://127.0.0.1:{port}/big.bin"], capture_output=True, text=True, check=True)
    return float(r.stdout) / 1e6


def requests(port: int, n: int, concurrency: int, version: str, workdir: Path) -> float:
    cfg = workdir / f"urls-{port}-{version}"
    cfg.write_text("".join(f'url = "https://127.0.0.1:{port}/r{i}"\noutput = "/dev/null"\n' for i in range(n)))
    t0 = time.perf_counter()
    subprocess.run(["curl", "-sS", "-k", f"--http{version}", "-Z", "--parallel-max", str(concurrency),
                    "--parallel-immediate", "-K", str(cfg)], check=True, capture_output=True, timeout=600)
    return n / (time.perf_counter() - t0)


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu(setups: dict[str, Setup]) -> float:
    """CPU seconds of the bench itself: frps/frpc of both implementations, curl, this process."""
    import resource

    own = sum(cpu_seconds(s.pids()) or 0.0 for s in setups.values())
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        own += ru.ru_utime + ru.ru_stime
    return own


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="512M")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--body", type=int, default=1024)
    ap.add_argument("--json", default="")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--impls", default="go,ours", help="comma separated: go, ours, base (default go,ours)")
    ap.add_argument("--base-src", help="the src/ directory of the aiofrp that --impls base runs")
    args = ap.parse_args()
    impls = tuple(i for i in args.impls.split(",") if i)
    if len(impls) < 2 or len(set(impls)) != len(impls) or not set(impls) <= {"go", "ours", "base"}:
        raise SystemExit("--impls: two or three distinct of go, ours, base")
    if "base" in impls and not args.base_src:
        raise SystemExit("--impls base needs --base-src DIR/src")
    size = parse_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="aiofrp-bench-plugins-"))
    root = workdir / "www"
    root.mkdir()
    with open(root / "big.bin", "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            left -= len(chunk)
    backend = Backend(args.body).start()
    setups: dict[str, Setup] = {}
    ports: dict[str, tuple[int, int]] = {}
    results: dict[str, dict[str, list[float]]] = {i: {"static MB/s": [], "https2http h1 req/s": [],
                                                      "https2http h2 req/s": []} for i in impls}
    cpu: dict[str, float] = dict.fromkeys(impls, 0.0)
    phase_cpu: dict[str, dict[str, float]] = {i: {"static": 0.0, "h1": 0.0, "h2": 0.0} for i in impls}
    try:
        for impl in impls:
            setup, sp, hp = start_pair(impl, workdir, root, backend.port, args.base_src)
            setups[impl] = setup
            ports[impl] = (sp, hp)
            download(sp, 120)  # warm-up (page cache, connections)
            requests(hp, 50, 4, "1.1", workdir)
        load0 = _machine_busy() - _own_cpu(setups)
        for rnd in range(args.rounds):
            order = impls if rnd % 2 == 0 else impls[::-1]
            for impl in order:
                sp, hp = ports[impl]
                pids = setups[impl].pids()
                t0 = cpu_seconds(pids) or 0.0
                results[impl]["static MB/s"].append(download(sp, max(120, size / 5e6)))
                t1 = cpu_seconds(pids) or 0.0
                results[impl]["https2http h1 req/s"].append(requests(hp, args.requests, args.concurrency, "1.1", workdir))
                t2 = cpu_seconds(pids) or 0.0
                results[impl]["https2http h2 req/s"].append(requests(hp, args.requests, args.concurrency, "2", workdir))
                t3 = cpu_seconds(pids) or 0.0
                cpu[impl] += t3 - t0
                phase_cpu[impl]["static"] += t1 - t0
                phase_cpu[impl]["h1"] += t2 - t1
                phase_cpu[impl]["h2"] += t3 - t2
        foreign = _machine_busy() - _own_cpu(setups) - load0
    finally:
        teardown(setups, workdir, args.keep_logs)
    print(f"HTTP client plugins through a tcp proxy; Go frp {GO_FRP_VERSION} vs aiofrp; {args.rounds} round(s), "
          f"file {size >> 20} MiB, {args.requests} requests x {args.concurrency} parallel, {args.body}-byte bodies")
    first, others = impls[0], impls[1:]
    print(f"{'metric':<24}" + "".join(f"{i:>10}" for i in impls) + "".join(f"{i + '/' + first:>11}" for i in others))
    summary: dict[str, dict[str, float]] = {}

    def row(label: str, values: dict[str, float], prec: int) -> None:
        ratios = {f"{i}/{first}": values[i] / values[first] if values[first] else 0.0 for i in others}
        summary[label] = {**values, **ratios}
        if "ours" in others:
            summary[label]["ratio"] = ratios[f"ours/{first}"]
        print(f"{label:<24}" + "".join(fmt(values[i], 10, prec) for i in impls)
              + "".join(fmt(r if values[first] else None, 11, 2) for r in ratios.values()))

    for metric in results[first]:
        row(metric, {i: statistics.median(results[i][metric]) for i in impls}, 1)
    print(f"{'frps+frpc CPU s (total)':<24}" + "".join(fmt(cpu[i], 10) for i in impls))
    print(f"CPU used by other processes on the machine during the rounds: {foreign:.1f} s")
    # CPU per unit of work (frps+frpc, all rounds): steadier than the rates on a shared machine
    per_unit = {"static ms/MB": ("static", args.rounds * size / 1e6), "h1 ms/100 req": ("h1", args.rounds * args.requests / 100),
                "h2 ms/100 req": ("h2", args.rounds * args.requests / 100)}
    for label, (phase, units) in per_unit.items():
        row(f"CPU {label}", {i: 1000 * phase_cpu[i][phase] / units for i in impls}, 2)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "median": summary, "cpu_s": cpu, "phase_cpu_s": phase_cpu,
                                               "foreign_cpu_s": foreign}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
