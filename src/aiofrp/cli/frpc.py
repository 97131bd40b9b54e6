"""``frpc``: the frp client.

``frpc -c frpc.toml`` runs the proxies of a config file, ``frpc --config_dir DIR`` one frpc service
per file of a directory; ``frpc verify|status|reload|stop|convert -c FILE``;
``frpc tcp|udp|http|https|tcpmux|stcp|sudp|xtcp [flags]`` runs one proxy from flags and
``frpc stcp|sudp|xtcp visitor [flags]`` one visitor; ``frpc nathole discover`` asks a STUN server
what NAT frpc is behind.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import ssl
import sys
from typing import TYPE_CHECKING

from .. import version_text
from ..proto.addr import join_host_port
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
    from collections.abc import Callable

    from ..config import ClientConfig

log = logging.getLogger("aiofrp.client")

PROXY_TYPES = ("tcp", "udp", "tcpmux", "http", "https", "stcp", "sudp", "xtcp")  # Go's order (proxyTypes)
VISITOR_TYPES = ("stcp", "sudp", "xtcp")
COMMANDS = ("verify", "status", "reload", "stop", "convert")
HELP_TOPICS = (*COMMANDS, *PROXY_TYPES, "nathole", "completion")  # frpc help TOPIC: TOPIC's --help


def build_parser() -> Parser:
    p = Parser(
        prog="frpc",
        description=f"frpc is the client of frp ({version_text()}).",
        epilog="commands:\n"
               "  verify                  check the config file and exit\n"
               "  status                  show the proxies of the running frpc (admin API)\n"
               "  reload                  make the running frpc read its config file again (admin API)\n"
               "  stop                    stop the running frpc (admin API)\n"
               "  convert                 print a legacy INI config file as TOML (-o FILE to write it)\n"
               "  tcp|udp|http|https|tcpmux|stcp|sudp|xtcp\n"
               "                          run one proxy from flags (frpc tcp --help)\n"
               "  stcp|sudp|xtcp visitor  run one visitor from flags\n"
               "  nathole discover        show the NAT type seen by a STUN server\n"
               "  completion SHELL        print a completion script (bash, zsh, fish, powershell)\n"
               "  help [COMMAND]          help about a command",
        formatter_class=formatter_class(argparse.RawDescriptionHelpFormatter),
    )
    p.add_argument("command", nargs="?", choices=COMMANDS, help=argparse.SUPPRESS)
    p.add_argument("-c", "--config", default="./frpc.ini", help="config file of frpc (default ./frpc.ini)")
    flags.add(p, None, "--config_dir", default="",
              help="config directory, run one frpc service for each file in config directory")
    p.add_argument("-o", "--output", default="", help="convert: output file (default: standard output)")
    p.add_argument("-v", "--version", action="store_true", help="version of frpc")
    flags.add(p, None, "--api-timeout", type=duration_arg, default=30.0,
              help="status, reload, stop: timeout for admin API calls, e.g. 5s (default 30s)")
    flags.add(p, None, "--strict-config", type=flags.str2bool, nargs="?", const=True, default=True,
              help="strict config parsing mode, unknown fields will cause errors (default true)")
    allow_unsafe_arg(p)
    return p


def load_config(args: argparse.Namespace) -> ClientConfig:
    from ..config import ConfigError, load_client_config

    found: list[str] = []
    try:
        cfg = load_client_config(args.config, strict=args.strict_config, allow_unsafe=frozenset(args.allow_unsafe),
                                 warnings=found)
    except ConfigError as exc:
        report_load_warnings(found, running=False)
        die(str(exc))
    report_load_warnings(found, running=args.command is None)
    return cfg


def one_shot(argv: list[str]) -> int:
    """``frpc TYPE [visitor] flags``: one proxy or visitor built from flags."""
    from ..config import ConfigError, parse_client_config

    ptype = argv[0]
    # `frpc tcp visitor`: tcp has no visitor command, so (as in Go) `visitor` is an ignored word
    visitor = len(argv) > 1 and argv[1] == "visitor" and ptype in VISITOR_TYPES
    prog = f"frpc {ptype} visitor" if visitor else f"frpc {ptype}"
    what = "visitor" if visitor else "proxy"
    p = Parser(prog=prog, description=f"Run frpc with a single {ptype} {what}.",
                                formatter_class=formatter_class(argparse.HelpFormatter))
    flags.add_frpc_flags(p, ptype, visitor)
    args = p.parse_command_args(argv[2:] if visitor else argv[1:], lambda _ns: True)  # extra words ignored
    # Go validates these before anything else (cmd/frpc/sub/proxy.go)
    if not (args.visitor_name if visitor else args.proxy_name):
        die(f"{prog}: --visitor-name: name is required" if visitor
            else f"{prog}: --proxy-name: name should not be empty")
    if ptype == "tcpmux" and not visitor and args.mux != "httpconnect":
        die(f"{prog}: --mux: not support multiplexer: {args.mux!r} (the one multiplexer is httpconnect)")
    d = flags.frpc_flags_to_dict(args, ptype, visitor)
    try:
        cfg = parse_client_config(json.dumps(d), "command line flags")
    except ConfigError as exc:
        flag = flags.frpc_flag_for_key(ptype, visitor, exc.path)
        die(f"{prog}: {flag}: {exc.reason}" if flag else f"{prog}: {exc}")
    return start(cfg, "", log_where=f"{prog}: --log-file")


def completion_spec() -> dict[str, list[str]]:
    """Words for the completion scripts: commands and flags, each proxy type's flags."""
    from .completion import SHELLS, flag_names

    top = flag_names(build_parser())
    spec = {"": [*COMMANDS, *PROXY_TYPES, "nathole", "completion", "help", *top]}
    for cmd in COMMANDS:
        spec[cmd] = top
    for ptype in PROXY_TYPES:
        p = Parser(add_help=True)
        flags.add_frpc_flags(p, ptype, False)
        spec[ptype] = (["visitor"] if ptype in VISITOR_TYPES else []) + flag_names(p)
    spec["nathole"] = ["discover", *flag_names(nathole_parser())]
    spec["completion"] = list(SHELLS)
    spec["help"] = list(HELP_TOPICS)
    return spec


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PROXY_TYPES:
        return one_shot(argv)
    if argv and argv[0] == "nathole":
        return nathole(argv[1:])
    if argv and argv[0] == "completion":
        from .completion import completion_command

        return completion_command("frpc", argv[1:], completion_spec())
    if argv and argv[0] == "help":
        from .completion import help_command

        return help_command("frpc", argv[1:], main, build_parser(), HELP_TOPICS)
    args = build_parser().parse_command_args(argv, lambda ns: ns.command is not None)
    if args.version:
        print(version_text())
        return 0
    if args.config_dir:
        if args.command:
            die(f"frpc: --config_dir runs frpc services; it does not go with {args.command}")
        return start_dir(args)
    if args.output and args.command != "convert":
        die("frpc: -o/--output is only used by convert")
    if args.command == "convert":
        return convert_command("frpc", args.config, args.output, "client")
    if not args.config:  # Go's words; verify exits 0 here, as Go's
        if args.command == "verify":
            print("frpc: the configuration file is not specified", file=sys.stderr)
            return 0
        die("frpc: the configuration file is not specified (-c)")
    cfg = load_config(args)
    if args.command == "verify":
        print(f"frpc: the configuration file {args.config} syntax is ok")
        return 0
    if args.command == "status":
        return status(cfg, args.api_timeout)
    if args.command == "stop":
        admin_request(cfg, "POST", "/api/stop", args.api_timeout)
        print("stop success")
        return 0
    if args.command == "reload":
        admin_request(cfg, "GET", "/api/reload" + ("?strictConfig=true" if args.strict_config else ""),
                      args.api_timeout)
        print("reload success")
        return 0
    return start(cfg, args.config, strict=args.strict_config, allow_unsafe=args.allow_unsafe)


def start(cfg: ClientConfig, path: str, *, log_where: str = "", strict: bool = True,
          allow_unsafe: list[str] | None = None) -> int:
    start_logging(cfg, log_where or f"{path}: log.to")
    log.info("frpc starting: %s", version_text())
    if path:
        log.info("start frpc service for config file [%s]", path)
    fatal: list[str] = []

    async def main(stop: asyncio.Event) -> int:
        code = await serve(cfg, path, stop, strict=strict, allow_unsafe=allow_unsafe, on_fatal=fatal.append)
        if path:
            log.info("frpc service for config file [%s] stopped", path)
        return code

    code = run_service(main)
    if fatal:  # as Go's command prints the error that ended the service: last, bare, on stdout
        logging.shutdown()
        try:
            print(fatal[0], flush=True)
        except OSError:  # stdout went away
            pass
    return code


def start_dir(args: argparse.Namespace) -> int:
    """``frpc --config_dir DIR``: one frpc service per file under DIR (subdirectories included, in
    name order, as Go's WalkDir), all in this process. A file that does not load is reported
    (``frpc service error for config file [PATH]``, as Go) and the others run; the exit status is
    1 if any service failed."""
    from ..config import ConfigError, load_client_config

    if not os.path.isdir(args.config_dir):
        die(f"frpc: --config_dir {args.config_dir}: not a directory")
    paths = []
    for root, dirs, files in os.walk(args.config_dir):
        dirs.sort()
        paths += [os.path.join(root, f) for f in sorted(files)]
    cfgs: list[tuple[ClientConfig, str]] = []
    failed = False
    for path in paths:
        try:
            cfgs.append((load_client_config(path, strict=args.strict_config,
                                            allow_unsafe=frozenset(args.allow_unsafe)), path))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            print(f"frpc service error for config file [{path}]")
            failed = True
    if not cfgs:
        return 1 if failed else 0
    start_logging(cfgs[0][0], f"{cfgs[0][1]}: log.to")  # one log for the process (Go: the last file's)
    log.info("frpc starting: %s", version_text())

    async def serve_all(stop: asyncio.Event) -> int:
        async def one(cfg: ClientConfig, path: str) -> int:
            log.info("start frpc service for config file [%s]", path)
            code = await serve(cfg, path, stop, strict=args.strict_config, allow_unsafe=args.allow_unsafe)
            log.info("frpc service for config file [%s] stopped", path)
            if code:
                print(f"frpc service error for config file [{path}]")
            return code

        codes = await asyncio.gather(*(one(c, p) for c, p in cfgs))
        return 1 if failed or any(codes) else 0

    return run_service(serve_all)


async def serve(cfg: ClientConfig, path: str, stop: asyncio.Event, *, strict: bool = True,
                allow_unsafe: list[str] | None = None, on_fatal: Callable[[str], None] | None = None) -> int:
    from ..client.service import Client
    from ..config import ConfigError

    try:
        client = Client(cfg, path, strict=strict, allow_unsafe=frozenset(allow_unsafe or ()), on_fatal=on_fatal)
    except ConfigError as exc:  # e.g. an auth.oidc.trustedCaFile that cannot be read, a broken store
        log.error("%s", exc)
        return 1
    admin = None
    if cfg.web_server.port:
        from ..client.admin import AdminServer

        admin = AdminServer(client, cfg.web_server, stop)
        try:
            await admin.start()
        except (OSError, ssl.SSLError) as exc:
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


def admin_request(cfg: ClientConfig, method: str, path: str, timeout: float = 30.0) -> bytes:
    """One call to the running frpc's admin API; failures end frpc with Go's words for them."""
    ws = cfg.web_server
    if not ws.port:
        die("web server port should be set if you want to use this feature")  # Go's words (webServer.port)
    # an unspecified address ("0.0.0.0", "::") is dialled as loopback (Go's net.Dial: "the local
    # system"), and named in the messages as configured, as Go's http.Client names it
    shown = ws.addr or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(shown, shown)
    ctx = None
    if ws.tls is not None:  # webServer.tls: HTTPS (Go's frpc CLI speaks plain HTTP only)
        # verified against tls.trustedCaFile when set; otherwise the loopback admin server's
        # (usually self-signed) certificate is not checked
        ctx = ssl.create_default_context(cafile=ws.tls.trusted_ca_file or None)
        if not ws.tls.trusted_ca_file:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    import http.client  # lazily: only the status/reload/stop commands speak HTTP
    import urllib.error
    import urllib.request

    url = f"{'https' if ctx else 'http'}://{join_host_port(host, ws.port)}{path}"
    req = urllib.request.Request(url, method=method)
    if ws.user or ws.password:
        token = base64.b64encode(f"{ws.user}:{ws.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    # the failures in Go's words (its http.Client names the request: Get "URL": ...), on stderr
    scheme = "https" if ctx else "http"
    call = f'{method.capitalize()} "{scheme}://{join_host_port(shown, ws.port)}{path}"'
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace").strip()
        what = path.split("?")[0].rsplit("/", 1)[-1]
        if exc.code == 400 and what == "reload" and text:  # Go's line, then the new config's error
            die(f"api status code [{exc.code}]\nreload failed, nothing changed: {text}")
        die(f"api status code [{exc.code}]")
    except http.client.HTTPException:  # closed or garbled before a response (Go: EOF / malformed)
        die(f"{call}: EOF")
    except (urllib.error.URLError, OSError) as exc:
        from ..net.dialerr import dial_error_text

        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):  # --api-timeout (Go: its context's deadline)
            die(f"{call}: context deadline exceeded")
        if isinstance(reason, OSError) and not isinstance(reason, ssl.SSLError):
            die(f"{call}: {dial_error_text(join_host_port(shown, ws.port), reason)}")
        die(f"{call}: {reason}")
    raise AssertionError("unreachable")


def status(cfg: ClientConfig, timeout: float = 30.0) -> int:
    try:
        data = json.loads(admin_request(cfg, "GET", "/api/status", timeout))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        die("frpc: the admin API's /api/status answer is not frpc's status JSON (is webServer.port another service?)")
    # Go's layout: a blank line, the types in frpc's order, every cell padded (the last one too)
    out = ["Proxy Status...\n"]
    cols = ("name", "status", "local_addr", "plugin", "remote_addr", "err")
    heads = ("Name", "Status", "LocalAddr", "Plugin", "RemoteAddr", "Error")
    order = [t for t in PROXY_TYPES if t in data] + sorted(t for t in data if t not in PROXY_TYPES)
    for ptype in order:
        rows = [r for r in data[ptype] if isinstance(r, dict)]
        if not rows:
            continue
        out.append(str(ptype).upper())
        table = [heads] + [tuple(str(r.get(c, "")) for c in cols) for r in rows]
        widths = [max(len(row[i]) for row in table) + 2 for i in range(len(cols))]
        out.extend("".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table)
        out.append("")
    try:
        print("\n".join(out))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. frpc status | head: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def nathole_parser() -> Parser:
    p = Parser(prog="frpc nathole", description="Actions about nathole.",
                                formatter_class=formatter_class(argparse.HelpFormatter))
    p.add_argument("action", choices=("discover",), help="discover: nathole information from a STUN server")
    p.add_argument("-c", "--config", default="./frpc.ini", help="config file of frpc (its natHoleStunServer)")
    flags.add(p, None, "--nat_hole_stun_server", default="", help="STUN server address for nathole")
    flags.add(p, "-l", "--nat_hole_local_addr", default="", help="local address to connect STUN server")
    flags.add(p, None, "--strict-config", type=flags.str2bool, nargs="?", const=True, default=True,
              help="strict config parsing mode, unknown fields will cause errors (default true)")
    return p


def nathole(argv: list[str]) -> int:
    """``frpc nathole discover``: Go's output (STUN server, NAT type, behavior, addresses)."""
    from ..config import ConfigError, load_client_config

    parser = nathole_parser()
    if "discover" not in argv:
        parser.print_help()  # as cobra: no action, or an unknown one, prints the help (exit 0)
        return 0
    args = parser.parse_command_args(argv, lambda _ns: True)  # extra words ignored, as Go
    stun_server = "stun.easyvoip.com:3478"
    try:  # as Go: a config file that does not load is not an error here
        stun_server = load_client_config(args.config, strict=args.strict_config,
                                         resolve_token_source=False).nat_hole_stun_server
    except ConfigError:
        pass
    stun_server = args.nat_hole_stun_server or stun_server
    if not stun_server:
        die("nat_hole_stun_server can not be empty")
    return asyncio.run(_discover(stun_server, args.nat_hole_local_addr))


async def _discover(stun_server: str, local: str) -> int:
    from ..client import nathole as nh
    from ..proto.nathole import classify_nat, split_host_port

    host, port = "0.0.0.0", 0
    if local:
        try:
            host, port = split_host_port(local)
        except ValueError as exc:
            die(f"discover error: {exc}")
    try:
        sock = await nh.HoleSocket.open(host or "0.0.0.0", port)
    except OSError as exc:
        die(f"discover error: {exc}")
    try:
        addrs = await nh.discover(sock, stun_server)
        local_addr = join_host_port(*sock.transport.get_extra_info("sockname")[:2]) if sock.transport else ""
    except (nh.NatHoleError, OSError) as exc:
        print("discover error:", exc)
        return 1
    finally:
        sock.close()
    if len(addrs) < 2:
        print(f"discover error: can not get enough addresses, need 2, got: [{' '.join(addrs)}]")
        return 1
    feature = classify_nat(addrs, nh.local_ips_for_nathole(10))
    print("STUN server:", stun_server)
    print("Your NAT type is:", feature.nat_type)
    print("Behavior is:", feature.behavior)
    print(f"External address is: [{' '.join(addrs)}]")
    print("Local address is:", local_addr)
    print("Public Network:", "true" if feature.public_network else "false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
