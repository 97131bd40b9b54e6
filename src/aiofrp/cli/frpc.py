"""``frpc``: the frp client. ``frpc -c frpc.toml``, ``frpc verify|status -c frpc.toml``."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import urllib.error
import urllib.request

from .. import FRP_VERSION
from .common import die, run_service

log = logging.getLogger("aiofrp.client")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="frpc",
        description=f"frpc is the client of frp (aiofrp, wire-compatible with frp {FRP_VERSION})",
    )
    p.add_argument("command", nargs="?", choices=["verify", "status"],
                   help="verify: check the config file; status: ask the running frpc's admin API")
    p.add_argument("-c", "--config", default="./frpc.ini", help="config file of frpc")
    p.add_argument("-v", "--version", action="store_true", help="version of frpc")
    p.add_argument("--strict-config", "--strict_config", dest="strict_config", default="true",
                   help="strict config parsing mode, unknown fields will cause errors")
    return p


def load_config(path: str):
    from ..config import ConfigError, load_client_config

    try:
        return load_client_config(path)
    except ConfigError as exc:
        die(str(exc))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(FRP_VERSION)
        return 0
    if args.command == "verify":
        load_config(args.config)
        print(f"frpc: the configuration file {args.config} syntax is ok")
        return 0
    if args.command == "status":
        return status(load_config(args.config))
    cfg = load_config(args.config)
    from ..log import setup_logging

    setup_logging(cfg)
    log.info("start frpc service for config file [%s]", args.config)
    return run_service(lambda stop: _serve(cfg, args.config, stop))


async def _serve(cfg, path: str, stop: asyncio.Event) -> int:
    from ..client.service import Client

    client = Client(cfg, path)
    admin = None
    if cfg.web_server.port:
        from ..client.admin import AdminServer

        admin = AdminServer(client, cfg.web_server, stop)
        try:
            await admin.start()
        except OSError as exc:
            log.error("start admin server error: %s", exc)
            return 1
    run = asyncio.ensure_future(client.run())
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        waiter.cancel()
        code = run.result()
    else:
        client.stop()
        run.cancel()
        code = 0
    if admin is not None:
        await admin.close()
    return code


def status(cfg) -> int:
    ws = cfg.web_server
    if not ws.port:
        die("frpc: the admin API is not enabled (webServer.port is not set)")
    host = ws.addr or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    url = f"http://{host}:{ws.port}/api/status"
    req = urllib.request.Request(url)
    if ws.user or ws.password:
        token = base64.b64encode(f"{ws.user}:{ws.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, OSError) as exc:
        die(f"frpc: cannot reach the admin API at {url}: {exc}")
    print("Proxy Status...")
    cols = ("name", "status", "local_addr", "plugin", "remote_addr", "err")
    heads = ("Name", "Status", "LocalAddr", "Plugin", "RemoteAddr", "Error")
    for ptype in sorted(data):
        rows = data[ptype]
        if not rows:
            continue
        print(ptype.upper())
        table = [heads] + [tuple(str(r.get(c, "")) for c in cols) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
        for row in table:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
