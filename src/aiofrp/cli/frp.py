"""``frp``: quick mode, one line per side and one public port.

    frp -m server -h 0.0.0.0 -p 10000 -pwd SECRET
    frp -m client -h SERVER -p 10000 -lh localhost -lp 443 -pwd SECRET

The server's one port carries both the client's tunnel (TLS behind the 0x17 first byte, the
password as the frp token) and the public users, whose connections go to the client's local
service byte for byte: a first byte 0x16 (HTTPS) reaches the service untouched, and a public
client that sends nothing (SMTP-like banners) is forwarded after a short wait.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
from typing import TYPE_CHECKING

from .. import version_text
from ..proto.addr import join_host_port
from .common import Parser, die, formatter_class, run_service, start_logging

if TYPE_CHECKING:
    import asyncio

    from ..config import ClientConfig, ServerConfig

log = logging.getLogger("aiofrp.quick")

DEFAULT_PORT = 10000
DEFAULT_PASSWORD = "12345678"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="frp", add_help=False,
        description=f"frp quick mode ({version_text()}): "
                    "one server port carries both the tunnel and the public users.",
        epilog="examples:\n  frp -m server -h 0.0.0.0 -p 10000 -pwd SECRET\n"
               "  frp -m client -h SERVER -p 10000 -lh localhost -lp 443 -pwd SECRET",
        formatter_class=formatter_class(argparse.RawDescriptionHelpFormatter),
    )
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("-m", "--mode", choices=["server", "client"], default="server", help="server (default) or client")
    p.add_argument("-h", "--host", default="",
                   help="server: address to listen on (default 0.0.0.0); client: the server's address (required)")
    p.add_argument("-p", "--port", type=int, default=DEFAULT_PORT, help=f"the server's port (default {DEFAULT_PORT})")
    p.add_argument("-lh", "--local-host", default=None, help="client: local service host (default localhost)")
    p.add_argument("-lp", "--local-port", type=int, default=None, help="client: local service port (default 443)")
    p.add_argument("-pwd", "--password", default=DEFAULT_PASSWORD,
                   help=f"the tunnel's password, the same on both sides (default {DEFAULT_PASSWORD})")
    p.add_argument("--log-level", default="info", help="log level (default info)")
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    return p


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_default_password(host: str, password: str) -> None:
    if password == DEFAULT_PASSWORD and not _is_loopback(host):
        for line in (
            "!" * 72,
            f"! WARNING: the default password {DEFAULT_PASSWORD!r} is in use on {host or '0.0.0.0'}.",
            "! Anyone who knows it can attach their own service to this tunnel.",
            "! Choose your own on both sides: -pwd SECRET",
            "!" * 72,
        ):
            log.warning(line)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(version_text())
        return 0
    if not 0 < args.port < 65536:
        die(f"frp: -p: port number {args.port} must be in the range 1..65535")
    if args.mode == "server":
        for flag, value in (("-lh", args.local_host), ("-lp", args.local_port)):
            if value is not None:
                die(f"frp: {flag}: only used in client mode (-m client)")
    if args.local_host is None:
        args.local_host = "localhost"
    if args.local_port is None:
        args.local_port = 443
    from ..config import ConfigError, ServerConfig, parse_client_config, parse_server_config

    cfg: ServerConfig | ClientConfig
    try:
        if args.mode == "server":
            host = args.host or "0.0.0.0"
            cfg = parse_server_config(json.dumps({
                "bindAddr": host, "bindPort": args.port, "auth": {"token": args.password},
                "log": {"level": args.log_level},
            }), "quick mode flags")
        else:
            if not args.host:
                die("frp: client mode needs the server's address: -h SERVER")
            if not 0 < args.local_port < 65536:
                die(f"frp: -lp: port number {args.local_port} must be in the range 1..65535")
            host = args.host
            cfg = parse_client_config(json.dumps({
                "serverAddr": args.host, "serverPort": args.port, "auth": {"token": args.password},
                "loginFailExit": False,
                "transport": {"tls": {"enable": True, "disableCustomTLSFirstByte": False}},
                "log": {"level": args.log_level},
                "proxies": [{"name": "quick", "type": "tcp", "localIP": args.local_host,
                             "localPort": args.local_port, "remotePort": args.port}],
            }), "quick mode flags")
    except ConfigError as exc:
        hint = {"log.level": "--log-level", "bindAddr": "-h", "serverAddr": "-h"}.get(exc.path)
        die(f"frp: {hint}: {exc.reason}" if hint else f"frp: {exc}")
    start_logging(cfg, "frp: log")
    log.info("frp quick mode (%s) starting: %s", args.mode, version_text())
    _warn_default_password(host, args.password)
    if isinstance(cfg, ServerConfig):
        scfg = cfg
        return run_service(lambda stop: _serve(scfg, stop))
    ccfg = cfg
    return run_service(lambda stop: _client(ccfg, stop))


async def _serve(cfg: ServerConfig, stop: asyncio.Event) -> int:
    from ..server.service import Server

    server = Server(cfg, quick=True)
    try:
        await server.start()
    except OSError as exc:
        log.error("cannot listen on %s: %s", join_host_port(cfg.bind_addr, cfg.bind_port), exc.strerror or exc)
        return 1
    log.info("quick mode server on %s: tunnel and public users share this port",
             join_host_port(cfg.bind_addr, server.bind_port))
    await stop.wait()
    await server.close()
    return 0


async def _client(cfg: ClientConfig, stop: asyncio.Event) -> int:
    import asyncio

    from ..client.service import Client

    p = cfg.proxies[0]
    server = join_host_port(cfg.server_addr, cfg.server_port)

    def start_error(name: str, error: str) -> None:
        if "already exists" in error or "already used" in error:
            log.error("another quick mode client is already published on %s (%s): stop it first, or use "
                      "another server port; exiting", server, error)
        else:
            log.error("the server %s refused this client's tunnel: %s; exiting", server, error)
        client.fail(1)

    client = Client(cfg, exit_on_refusal=True, on_start_error=start_error)
    log.info("quick mode client: %s is published on %s", join_host_port(p.local_ip, p.local_port),
             join_host_port(cfg.server_addr, cfg.server_port))
    run = asyncio.ensure_future(client.run())
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        waiter.cancel()
        return run.result()
    client.stop()
    run.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
