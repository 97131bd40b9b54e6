#!/usr/bin/env python3
"""CPU per new connection of frps + frpc: aiofrp (and another source tree) vs Go frp, interleaved.

For each round and each implementation: one frps and one frpc on 127.0.0.1 (frp's defaults, TLS +
yamux; ``--raw``: no TLS, no mux) with one ``tcp`` proxy to an echo server; then 16 concurrent
workers (``--concurrency``) connect through the proxy, send 64 bytes, read them back and close, for
``--seconds``. Reported per run: connections/s and the CPU (utime + stime from /proc, every
process of each group) that frps and frpc spent per connection, in µs. CPU per connection moves
much less with the machine's load than connections/s, which the load tool and the echo server
share the cores with. The reference benchmark (../shared/bench) stays the source of published
ratios; this is the A/B tool behind docs/performance.md, "New connections with TLS + yamux".

    .venv/bin/python bench/connrate_cpu.py --rounds 3
    .venv/bin/python bench/connrate_cpu.py --before /tmp/old/src --no-go   # A/B two source trees
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_seconds, frp_commands
from support.configs import frpc_config, frps_config, tcp_proxy
from support.ports import free_port, wait_port
from support.services import tcp_roundtrip

# a process of its own (support.services.EchoServer is a thread, which would share the load
# client's interpreter)
ECHO = """
import asyncio, sys
class E(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)
    def eof_received(self): self.t.close()
async def main():
    await asyncio.get_running_loop().create_server(E, "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()
try:
    import uvloop; uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def echoes(port: int) -> bool:
    try:
        return tcp_roundtrip(port, b"x", 1) == b"x"
    except OSError:
        return False


async def load(port: int, seconds: float, concurrency: int, size: int) -> int:
    payload = b"p" * size
    done = 0
    end = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < end:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(payload)
            await r.readexactly(size)
            w.close()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def run_once(name: str, cmds: tuple[list[str], list[str]], env: dict[str, str], args: argparse.Namespace,
             workdir: Path) -> tuple[float, float, float]:
    bind, remote, local = free_port(), free_port(), free_port()
    (workdir / "frps.toml").write_text(frps_config(bind, tcp_mux=False if args.raw else None,
                                                   proxyBindAddr="127.0.0.1"))
    (workdir / "frpc.toml").write_text(frpc_config(bind, tcp_proxy("echo", local, remote),
                                                   tls=False if args.raw else None,
                                                   tcp_mux=False if args.raw else None))
    procs = []
    log = open(workdir / f"{name}.log", "w")  # noqa: SIM115 (closed in the finally below)
    try:
        procs.append(subprocess.Popen([sys.executable, "-c", ECHO, str(local)], start_new_session=True))
        procs.append(subprocess.Popen([*cmds[0], "-c", str(workdir / "frps.toml")], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        wait_port(bind)
        procs.append(subprocess.Popen([*cmds[1], "-c", str(workdir / "frpc.toml")], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 20
        while not echoes(remote):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the proxy did not echo within 20 s (see {workdir / (name + '.log')})")
            time.sleep(0.1)
        time.sleep(0.5)
        s0, c0 = cpu_seconds([procs[1].pid]), cpu_seconds([procs[2].pid])
        t0 = time.monotonic()
        n = asyncio.run(load(remote, args.seconds, args.concurrency, 64))
        wall = time.monotonic() - t0
        s1, c1 = cpu_seconds([procs[1].pid]), cpu_seconds([procs[2].pid])
        assert None not in (s0, c0, s1, c1)
        return n / wall, (s1 - s0) * 1e6 / n, (c1 - c0) * 1e6 / n  # type: ignore[operator]
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--raw", action="store_true", help="no TLS, no tcpMux (frp-raw)")
    ap.add_argument("--before", default="", help="also run aiofrp from this source tree (PYTHONPATH)")
    ap.add_argument("--no-go", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    impls = [("ours", frp_commands("ours"), env)]
    if args.before:
        impls.insert(0, ("before", frp_commands("ours"), {**env, "PYTHONPATH": str(Path(args.before).resolve())}))
    if not args.no_go:
        impls.append(("go", frp_commands("go"), env))
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in impls}
    with tempfile.TemporaryDirectory(prefix="connrate-cpu-") as tmp:
        for r in range(args.rounds):
            for name, cmds, e in impls:
                res = run_once(name, cmds, e, args, Path(tmp))
                results[name].append(res)
                print(f"round {r + 1} {name:>6}: {res[0]:7.0f} conn/s   frps {res[1]:5.0f} µs/conn   "
                      f"frpc {res[2]:5.0f} µs/conn   sum {res[1] + res[2]:5.0f}", flush=True)
    print("\nmedian over rounds")
    for name, rs in results.items():
        print(f"{name:>6}: {statistics.median(x[0] for x in rs):7.0f} conn/s   "
              f"frps+frpc {statistics.median(x[1] + x[2] for x in rs):5.0f} µs/conn")


if __name__ == "__main__":
    main()
