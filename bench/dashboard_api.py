#!/usr/bin/env python3
"""Latency of the frps dashboard API with many proxies registered (issue 11: ``/api/proxy/tcp``
under 50 ms with 5,000 proxies).

Starts frps (ours by default, ``--impl go`` for Go frp 0.65.0) with the dashboard and
Prometheus on 127.0.0.1, then one frpc with ``--proxies`` tcp proxies (random remote ports),
waits until frps lists them all, then times ``--requests`` sequential GETs per route over one
keep-alive connection and prints median / p95 / max wall time, frps's CPU time per request (from
/proc: on a loaded machine the wall time mostly measures waiting for a core) and the response size.

    .venv/bin/python bench/dashboard_api.py                     # 5,000 proxies, ours
    .venv/bin/python bench/dashboard_api.py --proxies 1000 --impl go
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_seconds, frp_commands
from support.procs import EchoServer, FrpProcess, free_port

AUTH = "Basic " + base64.b64encode(b"admin:bench").decode()
ROUTES = ("/api/proxy/tcp", "/api/serverinfo", "/api/traffic/p00042", "/api/clients", "/metrics")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxies", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--impl", choices=("ours", "go"), default="ours")
    ap.add_argument("--json", default="", help="write the figures to this file too")
    args = ap.parse_args()

    frps_cmd, frpc_cmd = frp_commands(args.impl)
    bind, dash = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    echo = EchoServer().start()
    frps_text = (f'bindAddr = "127.0.0.1"\nbindPort = {bind}\nauth.token = "b"\nwebServer.addr = "127.0.0.1"\n'
                 f'webServer.port = {dash}\nwebServer.user = "admin"\nwebServer.password = "bench"\n'
                 "enablePrometheus = true\nlog.level = \"warn\"\n")
    frpc_text = (f'serverAddr = "127.0.0.1"\nserverPort = {bind}\nauth.token = "b"\nlog.level = "warn"\n'
                 + "".join(f'[[proxies]]\nname = "p{i:05d}"\ntype = "tcp"\nlocalPort = {echo.port}\nremotePort = 0\n'
                           for i in range(args.proxies)))
    frps = FrpProcess(frps_cmd, frps_text, name="frps", workdir=work).start()
    frpc: FrpProcess | None = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", dash, timeout=60)

        def get(path: str) -> tuple[int, bytes]:
            conn.request("GET", path, headers={"Authorization": AUTH})
            r = conn.getresponse()
            return r.status, r.read()

        deadline = time.monotonic() + 60
        while True:
            try:
                get("/api/serverinfo")
                break
            except OSError:
                conn.close()
                if time.monotonic() > deadline:
                    raise SystemExit("frps's dashboard did not come up") from None
                time.sleep(0.2)
        t0 = time.monotonic()
        frpc = FrpProcess(frpc_cmd, frpc_text, name="frpc", workdir=work).start()
        while True:
            n = json.loads(get("/api/serverinfo")[1]).get("proxyTypeCount", {}).get("tcp", 0)
            if n >= args.proxies:
                break
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"only {n} of {args.proxies} proxies registered after 600 s")
            time.sleep(0.5)
        print(f"{args.impl}: {args.proxies} tcp proxies registered in {time.monotonic() - t0:.1f} s")
        results = {}
        for path in ROUTES:
            if args.impl == "go" and path == "/api/clients":  # a 0.68 route: Go 0.65 has none
                continue
            times = []
            size = 0
            cpu0 = cpu_seconds([frps.pid]) if frps.pid else None
            for _ in range(args.requests):
                t = time.perf_counter()
                status, body = get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert status == 200, (path, status, body[:200])
                size = len(body)
            cpu1 = cpu_seconds([frps.pid]) if frps.pid else None
            cpu_ms = (cpu1 - cpu0) * 1000 / args.requests if cpu0 is not None and cpu1 is not None else float("nan")
            times.sort()
            res = {"median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1],
                   "max_ms": times[-1], "frps_cpu_ms": cpu_ms, "bytes": size}
            results[path] = res
            print(f"  {path:24s} median {res['median_ms']:7.1f} ms  p95 {res['p95_ms']:7.1f} ms  "
                  f"max {res['max_ms']:7.1f} ms  frps CPU {cpu_ms:6.1f} ms/request  {size:>9,} bytes")
        if args.json:
            Path(args.json).write_text(json.dumps({"impl": args.impl, "proxies": args.proxies, **results}, indent=1))
        conn.close()
    finally:
        if frpc is not None:
            frpc.kill()
        frps.kill()
        echo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
