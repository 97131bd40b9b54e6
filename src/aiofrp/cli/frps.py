"""``frps``: the frp server. ``frps -c frps.toml``, ``frps verify -c frps.toml``, or flags only."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from .. import FRP_VERSION, __version__
from .common import die, run_service

log = logging.getLogger("aiofrp.server")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="frps",
        description=f"frps is the server of frp (aiofrp, wire-compatible with frp {FRP_VERSION})",
    )
    p.add_argument("command", nargs="?", choices=["verify"], help="verify: check the config file and exit")
    p.add_argument("-c", "--config", default="", help="config file of frps")
    p.add_argument("-v", "--version", action="store_true", help="version of frps")
    p.add_argument("-p", "--bind-port", "--bind_port", dest="bind_port", type=int, help="bind port")
    p.add_argument("-t", "--token", help="auth token")
    p.add_argument("--bind-addr", "--bind_addr", dest="bind_addr", help="bind address")
    p.add_argument("--log-level", "--log_level", dest="log_level", help="log level")
    p.add_argument("--strict-config", "--strict_config", dest="strict_config", default="true",
                   help="strict config parsing mode, unknown fields will cause errors")
    return p


def load_config(args: argparse.Namespace):
    from ..config import ConfigError, load_server_config, parse_server_config

    try:
        if args.config:
            return load_server_config(args.config)
        flags: dict[str, object] = {}
        if args.bind_port is not None:
            flags["bindPort"] = args.bind_port
        if args.bind_addr:
            flags["bindAddr"] = args.bind_addr
        if args.token:
            flags["auth"] = {"token": args.token}
        if args.log_level:
            flags["log"] = {"level": args.log_level}
        return parse_server_config(json.dumps(flags), "command line flags")
    except ConfigError as exc:
        die(str(exc))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(FRP_VERSION)
        return 0
    if args.command == "verify":
        if not args.config:
            die("frps: the configuration file is not specified (-c)")
        load_config(args)
        print(f"frps: the configuration file {args.config} syntax is ok")
        return 0
    cfg = load_config(args)
    from ..log import setup_logging

    setup_logging(cfg, level=args.log_level)
    if args.config:
        log.info("frps uses config file: %s", args.config)
    else:
        log.info("frps uses command line arguments for config")
    return run_service(lambda stop: _serve(cfg, stop))


async def _serve(cfg, stop: asyncio.Event) -> int:
    from ..server.service import Server

    server = Server(cfg)
    try:
        await server.start()
    except OSError as exc:
        log.error("create server listener error: %s", exc)
        return 1
    log.debug("aiofrp %s", __version__)
    await stop.wait()
    await server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
