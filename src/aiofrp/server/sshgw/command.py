"""The command an ssh user runs on the gateway: ``tcp|http|https|tcpmux|stcp [flags]`` (sans-I/O).

Go frp parses it with cobra/pflag (``pkg/ssh/server.go: parseClientAndProxyConfigurer``,
``pkg/config/flags.go`` with ``WithSSHMode``); this module follows pflag's rules and texts, since
they are what the ssh user reads:

* the exec payload is split on single spaces; the first word is the proxy type;
* ``--name value``, ``--name=value``, ``-n value``, ``-nvalue``, ``-n=value``; ``_`` in a long
  name is read as ``-`` (``--remote_port`` = ``--remote-port``); ``--`` ends the flags; other
  words are positional and ignored;
* ``--help``/``-h`` (not defined as flags) ask for the usage text (cobra's ``UsageString``);
* ``strings`` flags are CSV and add up over repeats, ``stringToString`` flags are ``k=v[,k=v]``,
  ``int`` flags are Go ``strconv.ParseInt(s, 0, 64)``.

Errors carry pflag's text (``unknown flag: --bogus``, ``flag needs an argument: --remote_port``,
``invalid argument "abc" for "-r, --remote-port" flag: ...``).
"""

from __future__ import annotations

import csv
import enum
import os
from dataclasses import dataclass, field

from ...proto import msg as m

SUPPORT_TYPES = ("tcp", "http", "https", "tcpmux", "stcp")
USE_LINE = "ssh v0@{address} [command]"


class Kind(enum.Enum):
    """A pflag value type, by the name its usage line shows."""

    STRING = "string"
    INT = "int"
    STRINGS = "strings"
    STRING_MAP = "stringToString"


@dataclass(frozen=True)
class Flag:
    name: str  # pflag's normalized name (dashes)
    short: str
    kind: Kind
    usage: str
    attr: str  # the Command attribute it sets


_BASE = (
    Flag("proxy-name", "n", Kind.STRING, "proxy name", "proxy_name"),
    Flag("metadatas", "", Kind.STRING_MAP, "metadata key-value pairs (e.g., key1=value1,key2=value2)", "metas"),
    Flag("annotations", "", Kind.STRING_MAP, "annotation key-value pairs (e.g., key1=value1,key2=value2)",
         "annotations"),
)
_CLIENT = (
    Flag("user", "u", Kind.STRING, "user", "user"),
    Flag("token", "t", Kind.STRING, "auth token", "token"),
)
_DOMAIN = (
    Flag("custom-domain", "d", Kind.STRINGS, "custom domains", "custom_domains"),
    Flag("sd", "", Kind.STRING, "sub domain", "subdomain"),
)
_HTTP_AUTH = (
    Flag("http-user", "", Kind.STRING, "http auth user", "http_user"),
    Flag("http-pwd", "", Kind.STRING, "http auth password", "http_pwd"),
)
# Go: config.RegisterProxyFlags, per proxy type (ssh mode: no local_ip/local_port/ue/uc/bandwidth)
TYPE_FLAGS: dict[str, tuple[Flag, ...]] = {
    "tcp": (Flag("remote-port", "r", Kind.INT, "remote port", "remote_port"),),
    "http": (
        *_DOMAIN,
        Flag("locations", "", Kind.STRINGS, "locations", "locations"),
        *_HTTP_AUTH,
        Flag("host-header-rewrite", "", Kind.STRING, "host header rewrite", "host_header_rewrite"),
    ),
    "https": _DOMAIN,
    "tcpmux": (*_DOMAIN, Flag("mux", "", Kind.STRING, "multiplexer", "multiplexer"), *_HTTP_AUTH),
    "stcp": (
        Flag("sk", "", Kind.STRING, "secret key", "sk"),
        Flag("allow-users", "", Kind.STRINGS, "allow visitor users", "allow_users"),
    ),
}


class CommandError(Exception):
    """The command is wrong; ``str()`` is the text Go writes back to the ssh user."""


class HelpRequested(Exception):  # pflag's ErrHelp
    """``--help``/``-h``: ``usage`` is the text to write back."""

    def __init__(self, usage: str) -> None:
        super().__init__("pflag: help requested")
        self.usage = usage


@dataclass
class Command:
    """What the ssh user asked for: one proxy and the client-level ``--user``/``--token``."""

    proxy_type: str
    proxy_name: str = ""
    user: str = ""
    token: str = ""
    metas: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    remote_port: int = 0
    custom_domains: list[str] = field(default_factory=list)
    subdomain: str = ""
    locations: list[str] = field(default_factory=list)
    http_user: str = ""
    http_pwd: str = ""
    host_header_rewrite: str = ""
    multiplexer: str = ""
    sk: str = ""
    allow_users: list[str] = field(default_factory=list)

    def full_name(self, user: str) -> str:
        """Go ``ProxyBaseConfig.Complete(user)``: ``user.name`` when there is a user."""
        return f"{user}.{self.proxy_name}" if user else self.proxy_name

    def new_proxy(self, user: str) -> m.NewProxy:
        """The NewProxy a Go frpc would send for this proxy (``ProxyConfigurer.MarshalToMsg``)."""
        req = m.NewProxy(
            proxy_name=self.full_name(user), proxy_type=self.proxy_type,  # Go omits bandwidthLimitMode "client"
            metas=dict(self.metas), annotations=dict(self.annotations),
        )
        t = self.proxy_type
        if t == "tcp":
            req.remote_port = self.remote_port
        elif t == "stcp":
            req.sk, req.allow_users = self.sk, list(self.allow_users)
        else:  # http, https, tcpmux: the domain config
            req.custom_domains, req.subdomain = list(self.custom_domains), self.subdomain
            if t == "http":
                req.locations, req.host_header_rewrite = list(self.locations), self.host_header_rewrite
            if t == "tcpmux":
                req.multiplexer = self.multiplexer
            if t in ("http", "tcpmux"):
                req.http_user, req.http_pwd = self.http_user, self.http_pwd
        return req


def flags_of(proxy_type: str) -> tuple[Flag, ...]:
    return (*_BASE, *TYPE_FLAGS[proxy_type], *_CLIENT)


def parse(payload: str, *, rand_id: str | None = None) -> Command:
    """Parse the exec payload; raises :class:`CommandError` or :class:`HelpRequested`."""
    args = payload.split(" ")
    proxy_type = args[0].strip()
    if proxy_type not in SUPPORT_TYPES:
        raise CommandError(f"invalid proxy type: {proxy_type}, support types: [{' '.join(SUPPORT_TYPES)}]")
    flags = flags_of(proxy_type)
    cmd = Command(proxy_type)
    _Parser(cmd, flags).parse(args)
    if not cmd.proxy_name:
        cmd.proxy_name = f"sshtunnel-{proxy_type}-{rand_id or os.urandom(4).hex()}"
    return cmd


def usage(proxy_type: str) -> str:
    """cobra's ``UsageString`` for the command (pflag's ``FlagUsages``, sorted, aligned)."""
    lines = []
    for f in sorted(flags_of(proxy_type), key=lambda f: f.name):
        head = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
        tail = f.usage + (" (default [])" if f.kind is Kind.STRING_MAP else "")
        lines.append((f"{head} {f.kind.value}", tail))
    width = max(len(head) for head, _ in lines) + 1  # pflag counts its NUL marker in maxlen
    flag_lines = "\n".join(f"{head}{' ' * (width - len(head))}  {tail}" for head, tail in lines)
    return f"Usage:\n  {USE_LINE} [flags]\n\nFlags:\n{flag_lines}\n"


class _Parser:
    def __init__(self, cmd: Command, flags: tuple[Flag, ...]) -> None:
        self.cmd = cmd
        self.proxy_type = cmd.proxy_type
        self.long = {f.name: f for f in flags}
        self.short = {f.short: f for f in flags if f.short}
        self.changed: set[str] = set()

    def parse(self, args: list[str]) -> None:
        rest = list(args)
        while rest:
            s = rest.pop(0)
            if len(s) == 0 or s[0] != "-" or len(s) == 1:
                continue  # positional (the proxy type among them)
            if s[1] == "-":
                if len(s) == 2:  # "--": everything after is positional
                    return
                rest = self._long(s, rest)
            else:
                rest = self._short(s, rest)

    def _long(self, s: str, rest: list[str]) -> list[str]:
        name = s[2:]
        if not name or name[0] in "-=":
            raise CommandError(f"bad flag syntax: {s}")
        name, eq, value = name.partition("=")
        flag = self.long.get(name.replace("_", "-"))
        if flag is None:
            if name == "help":
                raise HelpRequested(usage(self.proxy_type))
            raise CommandError(f"unknown flag: --{name}")
        if not eq:
            if not rest:
                raise CommandError(f"flag needs an argument: {s}")
            value = rest.pop(0)
        self._set(flag, value)
        return rest

    def _short(self, s: str, rest: list[str]) -> list[str]:
        shorthands = s[1:]
        c = shorthands[0]
        flag = self.short.get(c)
        if flag is None:
            if c == "h":
                raise HelpRequested(usage(self.proxy_type))
            raise CommandError(f"unknown shorthand flag: {_go_quote_rune(c)} in -{shorthands}")
        if len(shorthands) > 2 and shorthands[1] == "=":
            value = shorthands[2:]
        elif len(shorthands) > 1:
            value = shorthands[1:]
        elif rest:
            value = rest.pop(0)
        else:
            raise CommandError(f"flag needs an argument: {_go_quote_rune(c)} in -{shorthands}")
        self._set(flag, value)
        return rest

    def _set(self, flag: Flag, value: str) -> None:
        try:
            if flag.kind is Kind.STRING:
                setattr(self.cmd, flag.attr, value)
            elif flag.kind is Kind.INT:
                setattr(self.cmd, flag.attr, _go_parse_int(value))
            elif flag.kind is Kind.STRINGS:
                items = _read_csv(value) if value else []
                old: list[str] = getattr(self.cmd, flag.attr) if flag.name in self.changed else []
                setattr(self.cmd, flag.attr, old + items)
            else:
                pairs = _parse_string_map(value)
                mapping: dict[str, str] = getattr(self.cmd, flag.attr) if flag.name in self.changed else {}
                mapping.update(pairs)
                setattr(self.cmd, flag.attr, mapping)
        except ValueError as exc:
            shown = f"-{flag.short}, --{flag.name}" if flag.short else f"--{flag.name}"
            raise CommandError(f"invalid argument {_go_quote(value)} for {_go_quote(shown)} flag: {exc}") from None
        self.changed.add(flag.name)


def _read_csv(value: str) -> list[str]:
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise ValueError(str(exc)) from None
    return rows[0] if rows else []


def _parse_string_map(value: str) -> dict[str, str]:
    """pflag ``stringToString.Set``: one ``=`` makes one pair (commas included), more make CSV."""
    n = value.count("=")
    if n == 0:
        raise ValueError(f"{value} must be formatted as key=value")
    items = [value.strip('"')] if n == 1 else _read_csv(value)
    out: dict[str, str] = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq:
            raise ValueError(f"{item} must be formatted as key=value")
        out[key] = val
    return out


_INT64 = 1 << 63


def _go_parse_int(s: str) -> int:
    """Go ``strconv.ParseInt(s, 0, 64)``: sign, 0x/0o/0b or a leading 0 for octal, ``_`` only
    after a base prefix."""
    body = s[1:] if s[:1] in "+-" else s
    try:
        low = body.lower()
        if low.startswith(("0x", "0o", "0b")):
            value = int(body, 0)
        elif len(body) > 1 and body[0] == "0":  # octal; "_" may follow the "0" prefix
            digits = body[1:]
            if "__" in body or digits.endswith("_"):
                raise ValueError
            value = int(digits.replace("_", ""), 8)
        else:
            if "_" in body or not body.isascii() or not body.isdigit():
                raise ValueError
            value = int(body)
    except ValueError:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(s)}: invalid syntax") from None
    if s.startswith("-"):
        value = -value
    if not -_INT64 <= value < _INT64:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(s)}: value out of range")
    return value


def _go_quote(s: str) -> str:
    """Go ``%q`` of a string (printable characters kept, the rest escaped)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _go_quote_rune(c: str) -> str:
    """Go ``%q`` of a rune."""
    if c == "'":
        return "'\\''"
    return "'" + _go_quote(c)[1:-1].replace('\\"', '"') + "'"
