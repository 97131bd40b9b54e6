#!/usr/bin/env python3
"""Resident memory (VmRSS) of frps and frpc: aiofrp vs Go frp 0.65.0, idle, in one interleaved run.

Scenarios (each implementation started fresh for each, the implementations alternating):

* ``proxies=N`` (``--proxies``, default ``0,50,1000``): one frps and one frpc with N idle ``tcp``
  proxies (``remotePort = 0``: frps picks the ports), measured once frpc has logged every proxy's
  ``start proxy success`` and a settle time has passed;
* ``clients=N`` (``--clients``, default ``1000``): one frps with N logged-in clients and no
  proxies. The clients come from one load process (this file with ``--login-clients``, always run
  with our Python code, whichever frps is measured): N frpc logins as frpc does them (TCP, TLS with
  the 0x17 first byte, one yamux session, Login with ``poolCount = 0``, the control channel's AES),
  then they stay connected, idle. Only frps's memory is measured there.

RSS is the sum of VmRSS over the process group of each frps/frpc (each runs in its own group), in
MB (10**6 bytes). The machine's load does not change RSS much, unlike timings.

    .venv/bin/python bench/memory.py                          # 0, 50, 1000 proxies; 1000 clients
    .venv/bin/python bench/memory.py --proxies 0 --clients 0  # idle only
    .venv/bin/python bench/memory.py --before ../main/src     # also aiofrp from another source tree
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, fmt, frp_commands
from support.configs import frpc_config, frps_config
from support.gofrp import GO_FRP_VERSION, GoFrpUnavailable
from support.ports import LOCALHOST, free_port
from support.processes import FrpProcess

TOKEN = "memory-bench"


def rss_kb(pgid: int) -> int:
    """Sum of VmRSS (kB) over the processes of process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{entry}/status").read_text(), re.MULTILINE)
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if m:
            total += int(m[1])
    return total


def wait_count(proc: FrpProcess, pattern: str, n: int, timeout: float) -> None:
    """Poll ``proc``'s log until ``pattern`` matched ``n`` times (or fail with the log tail)."""
    rx = re.compile(pattern, re.MULTILINE)
    deadline = time.monotonic() + timeout
    while True:
        got = len(rx.findall(proc.log_text()))
        if got >= n:
            return
        if not proc.running:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name}: {got}/{n} /{pattern}/ after {timeout}s:\n{proc.log_tail()}")
        time.sleep(0.1)


@dataclass
class Impl:
    name: str
    frps: list[str]
    frpc: list[str]
    env: dict[str, str]


def impls(args: argparse.Namespace) -> list[Impl]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ours_s, ours_c = frp_commands("ours")
    out = [Impl("ours", ours_s, ours_c, env)]
    if args.before:
        before = {**env, "PYTHONPATH": str(Path(args.before).resolve())}
        out.insert(0, Impl("before", ours_s, ours_c, before))
    if not args.no_go:
        try:
            go_s, go_c = frp_commands("go")
        except GoFrpUnavailable as exc:
            sys.exit(f"Go frp {GO_FRP_VERSION} unavailable ({exc}); use --no-go")
        out.append(Impl("go", go_s, go_c, env))
    return out


def start_frps(impl: Impl, workdir: Path, extra: str = "") -> tuple[FrpProcess, int]:
    port = free_port()
    frps = FrpProcess(impl.frps, frps_config(port, token=TOKEN, extra=extra), name=f"frps-{impl.name}.toml",
                      workdir=workdir, env=impl.env).start()
    frps.wait_for_log(r"frps started successfully", 30)
    return frps, port


def measure_proxies(impl: Impl, n: int, workdir: Path, settle: float) -> tuple[int, int]:
    """(frps kB, frpc kB) with one frpc of ``n`` idle tcp proxies."""
    frps, port = start_frps(impl, workdir)
    proxies = "".join(
        f'\n[[proxies]]\nname = "p{i}"\ntype = "tcp"\nlocalIP = "{LOCALHOST}"\nlocalPort = 9\nremotePort = 0\n'
        for i in range(n))
    frpc = FrpProcess(impl.frpc, frpc_config(port, token=TOKEN, extra=proxies), name=f"frpc-{impl.name}.toml",
                      workdir=workdir, env=impl.env)
    try:
        frpc.start()
        frpc.wait_login(30)
        wait_count(frpc, r"start proxy success", n, 60 + n / 10)
        time.sleep(settle)
        assert frps.pid is not None and frpc.pid is not None
        return rss_kb(frps.pid), rss_kb(frpc.pid)
    finally:
        frpc.kill()
        frps.kill()


def measure_clients(impl: Impl, n: int, workdir: Path, settle: float) -> int:
    """frps kB with ``n`` clients logged in (no proxies)."""
    frps, port = start_frps(impl, workdir, extra="transport.maxPoolCount = 0\n")
    load = FrpProcess([sys.executable, str(Path(__file__).resolve()), "--login-clients", str(n),
                       "--port", str(port)], None, name=f"clients-{impl.name}", workdir=workdir)
    try:
        load.start()
        load.wait_for_log(r"^clients logged in: \d+", 60 + n / 10)
        time.sleep(settle)
        assert frps.pid is not None
        return rss_kb(frps.pid)
    finally:
        load.kill()
        frps.kill()


# -- the load process: N logins held open ---------------------------------------------------------


async def login_clients(n: int, port: int, concurrency: int = 32) -> None:
    from aiofrp import FRP_VERSION
    from aiofrp.auth import new_setter
    from aiofrp.client.connector import Connector
    from aiofrp.config import parse_client_config
    from aiofrp.proto import msg as m
    from aiofrp.proto.crypto import derive_key

    cfg = parse_client_config(f'serverAddr = "{LOCALHOST}"\nserverPort = {port}\nauth.token = "{TOKEN}"\n',
                              "load.toml")
    key = derive_key(TOKEN)
    auth = new_setter(cfg.auth)
    held: list[object] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            login = m.Login(version=FRP_VERSION, hostname="load", os="linux", arch="amd64", user="",
                            run_id="", pool_count=0, timestamp=int(time.time()))
            await auth.set_login(login)
            connector = Connector(cfg)
            conn = await connector.open()
            conn.write_msg(login)
            resp = await conn.read_msg(timeout=30)
            if not isinstance(resp, m.LoginResp) or resp.error:
                raise SystemExit(f"login {i} refused: {resp!r}")
            conn.enable_control_crypto(TOKEN, key, client=True)
            held.append((connector, conn))

    await asyncio.gather(*(one(i) for i in range(n)))
    print(f"clients logged in: {len(held)}", flush=True)
    await asyncio.Event().wait()  # hold them until killed


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxies", default="0,50,1000", help="frpc proxy counts, comma separated ('' for none)")
    ap.add_argument("--clients", default="1000", help="logged-in client counts on one frps ('' or 0 for none)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds idle before RSS is read")
    ap.add_argument("--before", default="", help="also measure aiofrp from this source tree (PYTHONPATH)")
    ap.add_argument("--no-go", action="store_true", help="skip Go frp")
    ap.add_argument("--json", default="", help="also write the figures as JSON here")
    ap.add_argument("--login-clients", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.login_clients:
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        asyncio.run(login_clients(args.login_clients, args.port))
        return

    runs = impls(args)
    rows: list[tuple[str, str, dict[str, float]]] = []  # (scenario, process, impl -> MB)
    with tempfile.TemporaryDirectory(prefix="aiofrp-memory-") as tmp:
        workdir = Path(tmp)
        for n in [int(x) for x in args.proxies.split(",") if x.strip()]:
            s_row: dict[str, float] = {}
            c_row: dict[str, float] = {}
            for impl in runs:
                s_kb, c_kb = measure_proxies(impl, n, workdir, args.settle)
                s_row[impl.name], c_row[impl.name] = s_kb / 1000, c_kb / 1000
                print(f"  {impl.name:6} proxies={n}: frps {s_kb / 1000:.1f} MB, frpc {c_kb / 1000:.1f} MB",
                      file=sys.stderr)
            rows.append((f"{n} proxies", "frpc", c_row))
            rows.append((f"{n} proxies", "frps", s_row))
            rows.append((f"{n} proxies", "frps + frpc", {k: s_row[k] + c_row[k] for k in s_row}))
        for n in [int(x) for x in args.clients.split(",") if x.strip() and int(x) > 0]:
            row: dict[str, float] = {}
            for impl in runs:
                row[impl.name] = measure_clients(impl, n, workdir, args.settle) / 1000
                print(f"  {impl.name:6} clients={n}: frps {row[impl.name]:.1f} MB", file=sys.stderr)
            rows.append((f"{n} clients", "frps", row))

    names = [i.name for i in runs]
    head = "| scenario | process | " + " | ".join(f"{n} MB" for n in names)
    ratio = "go" in names
    print(head + (" | ours / Go |" if ratio else " |"))
    print("|---|---|" + "---:|" * (len(names) + ratio))
    for scenario, proc, row in rows:
        cells = " | ".join(fmt(row[n], 0, 1) for n in names)
        extra = f" | {row['ours'] / row['go']:.2f}×" if ratio and row.get("go") else ""
        print(f"| {scenario} | {proc} | {cells}{extra} |")
    if args.json:
        Path(args.json).write_text(json.dumps([{"scenario": s, "process": p, "mb": r} for s, p, r in rows],
                                              indent=1))
    print(f"\n(VmRSS summed over each process group; Go frp {GO_FRP_VERSION}; python {sys.version.split()[0]}; "
          f"{ROOT})", file=sys.stderr)


if __name__ == "__main__":
    main()
