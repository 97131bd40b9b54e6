"""``frps``: the frp server.

``frps -c frps.toml``, ``frps verify -c frps.toml``, ``frps convert -c frps.ini``, or flags only
(``frps -p 7000 -t TOKEN``); with neither it serves on 0.0.0.0:7000 like Go frps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from .. import version_text
from . import flags
from .common import (
    Parser,
    allow_unsafe_arg,
    convert_command,
    die,
    duration_arg,
    formatter_class,
    report_load_warnings,
    run_service,
    start_logging,
)

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..server.banlist import FailLimit

log = logging.getLogger("aiofrp.server")


def build_parser() -> Parser:
    p = Parser(
        prog="frps",
        description=f"frps is the server of frp ({version_text()}).",
        epilog="commands:\n  verify   check the config file and exit\n"
               "  convert  print a legacy INI config file as TOML (-o FILE to write it)\n"
               "  completion SHELL  print a completion script (bash, zsh, fish, powershell)\n"
               "  help     this help\n\n"
               "Without -c, frps is configured by the flags above and serves on 0.0.0.0:7000 by default.",
        formatter_class=formatter_class(argparse.RawDescriptionHelpFormatter),
    )
    p.add_argument("command", nargs="?", choices=["verify", "convert"], help=argparse.SUPPRESS)
    p.add_argument("-c", "--config", default="", help="config file of frps (TOML, YAML, JSON or legacy INI)")
    p.add_argument("-o", "--output", default="", help="convert: output file (default: standard output)")
    p.add_argument("-v", "--version", action="store_true", help="version of frps")
    flags.add(p, None, "--strict-config", type=flags.str2bool, nargs="?", const=True, default=True,
              help="strict config parsing mode, unknown fields will cause errors (default true)")
    allow_unsafe_arg(p)
    flags.add_frps_flags(p)
    g = p.add_argument_group("aiofrp only (not in Go frps; allowed beside -c)")
    g.add_argument("--login-fail-limit", type=_count, default=0, metavar="N",
                   help="ban a source address after N failed logins/bad connections within the window "
                        "(default 0: off, like Go frps)")
    g.add_argument("--login-fail-window", type=duration_arg, default=60.0, metavar="DURATION",
                   help="the window the failures are counted in (default 60s)")
    g.add_argument("--login-fail-ban", type=duration_arg, default=300.0, metavar="DURATION",
                   help="how long new bind-port connections from a banned address are closed at accept (default 300s)")
    g.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="number of server processes sharing the bind port (default 1; see README "
                        "'frps --workers')")
    # a worker of frps --workers N, started by its supervisor (server/workers/supervisor.py)
    g.add_argument("--worker", type=_count, default=0, help=argparse.SUPPRESS)
    g.add_argument("--registry", default="", help=argparse.SUPPRESS)
    return p


def _workers(text: str) -> int:
    """``--workers N``: N processes (docs/architecture.md "Workers"); what needs one process is
    refused at start-up (server/workers: NOT_SHARED)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"count {text!r} must be at least 1")
    return n


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"count {text!r} must not be negative")
    return n


def fail_limit(args: argparse.Namespace) -> FailLimit:
    from ..server.banlist import FailLimit

    return FailLimit(args.login_fail_limit, args.login_fail_window, args.login_fail_ban)


def load_config(args: argparse.Namespace) -> ServerConfig:
    from ..config import ConfigError, load_server_config, parse_server_config

    if args.config:
        _refuse_config_flags(args)
        found: list[str] = []
        try:
            cfg = load_server_config(args.config, **_load_kwargs(args), warnings=found)
        except ConfigError as exc:
            report_load_warnings(found, running=False)
            die(str(exc))
        if not args.worker:  # the supervisor of --workers has said it
            report_load_warnings(found, running=args.command is None)
        return cfg
    try:
        return parse_server_config(json.dumps(flags.frps_flags_to_dict(args)), "command line flags")
    except ConfigError as exc:
        flag = flags.frps_flag_for_key(exc.path)
        die(f"frps: {flag}: {exc.reason}" if flag else str(exc))


def _refuse_config_flags(args: argparse.Namespace) -> None:
    """Go frps ignores the config flags when -c is given; a flag that silently does nothing (think
    ``--tls-only``) is worse than an error, so we refuse it."""
    for _short, long, key, _kw in flags.FRPS_FLAGS:
        if getattr(args, long.lstrip("-").replace("-", "_")) not in (None, False):
            die(f"frps: {long}: has no effect with a config file (-c), as in frp; set {key} in the file instead")


def _load_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"strict": args.strict_config, "allow_unsafe": frozenset(args.allow_unsafe)}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] in ("completion", "help"):
        from .completion import SHELLS, completion_command, flag_names, help_command

        topics = ("verify", "convert", "completion")
        if words[0] == "help":
            return help_command("frps", words[1:], main, build_parser(), topics)
        top = flag_names(build_parser())
        spec = {"": [*topics, "help", *top], "verify": top, "convert": top, "completion": list(SHELLS),
                "help": list(topics)}
        return completion_command("frps", words[1:], spec)
    args = build_parser().parse_command_args(words, lambda ns: ns.command is not None)
    if args.version:
        print(version_text())
        return 0
    if args.command == "verify" and not args.config:  # Go's words and exit status
        print("frps: the configuration file is not specified", file=sys.stderr)
        return 0
    if args.command == "convert" and not args.config:
        die("frps: the configuration file is not specified (-c)")
    if args.output and args.command != "convert":
        die("frps: -o/--output is only used by convert")
    if args.command == "convert":
        return convert_command("frps", args.config, args.output, "server")
    if bool(args.worker) != bool(args.registry):
        die("frps: --worker and --registry are given together, by frps --workers N itself")
    cfg = load_config(args)
    _refuse_for_workers(args, cfg)
    if args.command == "verify":
        print(f"frps: the configuration file {args.config} syntax is ok")
        return 0
    limit = fail_limit(args)
    if args.worker:
        from ..server.workers.worker import console_logging, serve_worker, tag_logs

        # a worker logs to its console: the supervisor's console, or its log file (log.to)
        start_logging(console_logging(cfg), "frps worker")
        tag_logs(args.worker)
        return run_service(lambda stop: serve_worker(cfg, stop, args.worker, args.registry, limit))
    start_logging(cfg, f"{args.config}: log.to" if args.config else "frps: --log-file")
    log.info("frps starting: %s", version_text())
    if args.config:
        log.info("frps uses config file: %s", args.config)
    else:
        log.info("frps uses command line arguments for config")
    if limit.limit:
        log.info("login failures limited: %d per address within %gs ban it for %gs",
                 limit.limit, limit.window, limit.ban)
    if args.workers > 1:
        from ..server.workers.supervisor import Supervisor

        supervisor = Supervisor(cfg, args.workers, list(sys.argv[1:] if argv is None else argv))
        return run_service(supervisor.run)
    return run_service(lambda stop: serve(cfg, stop, limit))


def _refuse_for_workers(args: argparse.Namespace, cfg: ServerConfig) -> None:
    """A key that needs one process is refused with ``--workers N > 1`` (server/workers: NOT_SHARED)."""
    from ..server.workers import refusal

    hit = refusal(cfg, args.workers)
    if hit is not None:
        key, why = hit
        where = args.config or "frps"
        die(f"{where}: {key}: not supported with --workers {args.workers} by aiofrp yet ({why}); "
            "use --workers 1")


async def serve(cfg: ServerConfig, stop: asyncio.Event, limit: FailLimit | None = None) -> int:
    from ..server.errors import ListenerError
    from ..server.service import Server

    try:
        server = Server(cfg, fail_limit=limit)
    except OSError as exc:  # certificate files (transport.tls) that cannot be read
        log.error("create server error: %s", exc)
        return 1
    try:
        await server.start()
    except ListenerError as exc:  # Go's words, naming the listener and its address
        log.error("%s", exc)
        await server.close()
        return 1
    except OSError as exc:
        log.error("create server listener error, %s", exc)
        await server.close()
        return 1
    await stop.wait()
    await server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
