"""``frpc``: the frp client.

``frpc -c frpc.toml`` runs the proxies of a config file; ``frpc verify|status|stop|convert -c FILE``;
``frpc tcp|udp|http|https|tcpmux|stcp|sudp|xtcp [flags]`` runs one proxy from flags and
``frpc stcp|sudp|xtcp visitor [flags]`` one visitor.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from .. import version_text
from ..proto.addr import join_host_port
from . import flags
from .common import allow_unsafe_arg, convert_command, die, run_service, start_logging

if TYPE_CHECKING:
    from ..config import ClientConfig

log = logging.getLogger("aiofrp.client")

PROXY_TYPES = ("tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp")
VISITOR_TYPES = ("stcp", "sudp", "xtcp")
COMMANDS = ("verify", "status", "stop", "convert")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="frpc",
        description=f"frpc is the client of frp ({version_text()}).",
        epilog="commands:\n"
               "  verify                  check the config file and exit\n"
               "  status                  show the proxies of the running frpc (admin API)\n"
               "  stop                    stop the running frpc (admin API)\n"
               "  convert                 print a legacy INI config file as TOML (-o FILE to write it)\n"
               "  tcp|udp|http|https|tcpmux|stcp|sudp|xtcp\n"
               "                          run one proxy from flags (frpc tcp --help)\n"
               "  stcp|sudp|xtcp visitor  run one visitor from flags",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", nargs="?", choices=COMMANDS, help=argparse.SUPPRESS)
    p.add_argument("-c", "--config", default="./frpc.ini", help="config file of frpc (default ./frpc.ini)")
    p.add_argument("-o", "--output", default="", help="convert: output file (default: standard output)")
    p.add_argument("-v", "--version", action="store_true", help="version of frpc")
    flags.add(p, None, "--strict-config", type=flags.str2bool, nargs="?", const=True, default=True,
              help="strict config parsing mode, unknown fields will cause errors (default true)")
    allow_unsafe_arg(p)
    return p


def load_config(args: argparse.Namespace) -> ClientConfig:
    from ..config import ConfigError, load_client_config

    try:
        return load_client_config(args.config, strict=args.strict_config,
                                  allow_unsafe=frozenset(args.allow_unsafe))
    except ConfigError as exc:
        die(str(exc))


def one_shot(argv: list[str]) -> int:
    """``frpc TYPE [visitor] flags``: one proxy or visitor built from flags."""
    from ..config import ConfigError, parse_client_config

    ptype = argv[0]
    visitor = len(argv) > 1 and argv[1] == "visitor"
    if visitor and ptype not in VISITOR_TYPES:
        die(f"frpc: {ptype} has no visitor")
    prog = f"frpc {ptype} visitor" if visitor else f"frpc {ptype}"
    what = "visitor" if visitor else "proxy"
    p = argparse.ArgumentParser(prog=prog, description=f"Run frpc with a single {ptype} {what}.")
    flags.add_frpc_flags(p, ptype, visitor)
    args = p.parse_args(argv[2:] if visitor else argv[1:])
    d = flags.frpc_flags_to_dict(args, ptype, visitor)
    try:
        cfg = parse_client_config(json.dumps(d), "command line flags")
    except ConfigError as exc:
        flag = flags.frpc_flag_for_key(ptype, visitor, exc.path)
        die(f"{prog}: {flag}: {exc.reason}" if flag else f"{prog}: {exc}")
    return start(cfg, "", log_where=f"{prog}: --log-file")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PROXY_TYPES:
        return one_shot(argv)
    args = build_parser().parse_args(argv)
    if args.version:
        print(version_text())
        return 0
    if args.output and args.command != "convert":
        die("frpc: -o/--output is only used by convert")
    if args.command == "convert":
        return convert_command("frpc", args.config, args.output, "client")
    cfg = load_config(args)
    if args.command == "verify":
        print(f"frpc: the configuration file {args.config} syntax is ok")
        return 0
    if args.command == "status":
        return status(cfg)
    if args.command == "stop":
        admin_request(cfg, "POST", "/api/stop")
        print("stop success")
        return 0
    return start(cfg, args.config)


def start(cfg: ClientConfig, path: str, *, log_where: str = "") -> int:
    start_logging(cfg, log_where or f"{path}: log.to")
    log.info("frpc starting: %s", version_text())
    if path:
        log.info("start frpc service for config file [%s]", path)
    return run_service(lambda stop: serve(cfg, path, stop))


async def serve(cfg: ClientConfig, path: str, stop: asyncio.Event) -> int:
    from ..client.service import Client
    from ..config import ConfigError

    try:
        client = Client(cfg, path)
    except ConfigError as exc:  # e.g. an auth.oidc.trustedCaFile that cannot be read
        log.error("%s", exc)
        return 1
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


def admin_request(cfg: ClientConfig, method: str, path: str) -> bytes:
    ws = cfg.web_server
    if not ws.port:
        die("frpc: the admin API is not enabled (webServer.port is not set)")
    host = ws.addr or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    url = f"http://{join_host_port(host, ws.port)}{path}"
    req = urllib.request.Request(url, method=method)
    if ws.user or ws.password:
        token = base64.b64encode(f"{ws.user}:{ws.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        die(f"frpc: admin API {path} answered {exc.code}: {exc.read().decode(errors='replace').strip()}")
    except (urllib.error.URLError, OSError) as exc:
        die(f"frpc: cannot reach the admin API at {url}: {exc}")
    raise AssertionError("unreachable")


def status(cfg: ClientConfig) -> int:
    try:
        data = json.loads(admin_request(cfg, "GET", "/api/status"))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        die("frpc: the admin API's /api/status answer is not frpc's status JSON (is webServer.port another service?)")
    print("Proxy Status...")
    cols = ("name", "status", "local_addr", "plugin", "remote_addr", "err")
    heads = ("Name", "Status", "LocalAddr", "Plugin", "RemoteAddr", "Error")
    for ptype in sorted(data):
        rows = [r for r in data[ptype] if isinstance(r, dict)]
        if not rows:
            continue
        print(str(ptype).upper())
        table = [heads] + [tuple(str(r.get(c, "")) for c in cols) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
        for row in table:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
