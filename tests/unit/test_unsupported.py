"""The rule "nothing accepted in silence" (config/unsupported.py), and the refusals it makes.

The rule's guard: every field of the config structs (recursively, through every proxy, visitor and
plugin type) is either read by the code that runs frps/frpc (a static scan of src/aiofrp outside
config/, per side) or listed in ``aiofrp.config.unsupported.TABLE``; every proxy/visitor/plugin type
has an implementation or is refused; every CLI flag maps onto such a key or is a command-line
option of its own. A new field, type or flag that does none of these fails here.
"""

from __future__ import annotations

import argparse
import ast
import re
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import msgspec
import pytest

from aiofrp.cli import flags
from aiofrp.cli import frp as frp_cli
from aiofrp.cli import frpc as frpc_cli
from aiofrp.cli import frps as frps_cli
from aiofrp.client.plugins import PLUGIN_TYPES
from aiofrp.config import (
    ClientConfig,
    ConfigError,
    ServerConfig,
    parse_client_config,
    parse_server_config,
    to_frp_dict,
)
from aiofrp.config.base import ConfigStruct
from aiofrp.config.unsupported import MESSAGE, TABLE, Unsupported, entries, find_unsupported, markdown

SRC = Path(__file__).resolve().parents[2] / "src" / "aiofrp"
README = Path(__file__).resolve().parents[2] / "README.md"

# Where each side's settings take effect. cli/flags.py is left out on purpose: it only maps flags
# onto config keys, it does not use them.
SCOPES = {
    "frps": ("server", "auth", "net", "proto", "log.py", "cli/frps.py", "cli/frp.py", "cli/common.py"),
    "frpc": ("client", "auth", "net", "proto", "log.py", "cli/frpc.py", "cli/frp.py", "cli/common.py"),
}
# Keys the config loader itself consumes (config/load.py, config/token_source.py).
LOADER_KEYS = {
    "frps": ("auth.tokenSource.*",),
    "frpc": ("auth.tokenSource.*", "includes"),
}


# -- the static scan ------------------------------------------------------------------------------


def _files(side: str) -> Iterator[Path]:
    for part in SCOPES[side]:
        p = SRC / part
        yield from sorted(p.rglob("*.py")) if p.is_dir() else [p]


def _names_in(tree: ast.AST) -> set[str]:
    """Attribute names read anywhere in ``tree``, plus string constants (``getattr(cfg, "x")``)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            out.add(node.value)
    return out


@cache
def _config_methods() -> dict[str, set[str]]:
    """Methods and properties of the config structs -> the attributes they read."""
    out: dict[str, set[str]] = {}
    for path in (SRC / "config").glob("*.py"):
        for cls in ast.walk(ast.parse(path.read_text())):
            if not isinstance(cls, ast.ClassDef):
                continue
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and fn.name != "derived_defaults":
                    reads = {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
                    out.setdefault(fn.name, set()).update(reads)
    return out


@cache
def used_names(side: str) -> frozenset[str]:
    """Every name the side's runtime code reads, including through config methods it calls."""
    names: set[str] = set()
    for f in _files(side):
        names |= _names_in(ast.parse(f.read_text()))
    methods = _config_methods()
    changed = True
    while changed:
        changed = False
        for meth, reads in methods.items():
            if (meth in names or (meth == "__contains__" and "port_allowed" in names)) and not reads <= names:
                names |= reads
                changed = True
    return frozenset(names)


# -- walking the schema ---------------------------------------------------------------------------


def _structs(tp: typing.Any) -> list[type[ConfigStruct]]:
    if isinstance(tp, type) and issubclass(tp, ConfigStruct):
        return [tp]
    return [s for a in typing.get_args(tp) for s in _structs(a)]


class Field(typing.NamedTuple):
    path: str  # frp spelling, list items without index: proxies.plugin.unixPath
    attr: str  # the struct attribute: unix_path
    tags: tuple[tuple[str, str], ...]  # (path of a tagged table, its type) on the way down


def schema_fields(cls: type, prefix: str = "", tags: tuple[tuple[str, str], ...] = ()) -> Iterator[Field]:
    """Every leaf field (a value that is not a table) below ``cls``."""
    for f in msgspec.structs.fields(cls):
        path = f"{prefix}{f.encode_name}"
        subs = _structs(f.type)
        if not subs:
            yield Field(path, f.name, tags)
        for sub in subs:
            tag = sub.__struct_config__.tag
            sub_tags = (*tags, (path, tag)) if isinstance(tag, str) else tags
            yield from schema_fields(sub, path + ".", sub_tags)


def _pattern_covers(pattern: str, path: str) -> bool:
    """A row's key accounts for itself and everything below it (``httpPlugins`` -> ``httpPlugins.ops``)."""
    key = pattern.removesuffix(".*")
    return path == key or path.startswith(key + ".")


def listed(side: str, field: Field) -> Unsupported | str | None:
    """The table row (or loader rule) that accounts for ``field``, if any."""
    for e in entries(side):  # type: ignore[arg-type]
        if _pattern_covers(e.key, field.path):
            return e
        # every field of a refused proxy/visitor/plugin type (proxies.plugin.type = "socks5")
        for where, tag in field.tags:
            if e.refused and e.key == f"{where}.type" and tag in e.values:
                return e
    for key in LOADER_KEYS[side]:
        if _pattern_covers(key, field.path):
            return "loaded by aiofrp.config"
    return None


ROOTS = {"frps": ServerConfig, "frpc": ClientConfig}


def test_every_config_field_is_used_or_listed() -> None:
    silent = []
    for side, root in ROOTS.items():
        used = used_names(side)
        for field in schema_fields(root):
            if field.attr not in used and listed(side, field) is None:
                silent.append(f"{side} {field.path}")
    assert not silent, (
        "config fields that nothing reads and aiofrp.config.unsupported.TABLE does not list "
        f"(implement them, or add a refused entry): {sorted(set(silent))}"
    )


def test_the_scan_catches_a_new_field() -> None:
    """A field nobody reads is not "used": the guard above would fail for it."""
    for side in ROOTS:
        assert "frobnicate_interval_seconds" not in used_names(side)
        assert "bind_port" in used_names(side)
    assert "pprof_enable" not in used_names("frps")  # refused today: nothing may read it
    assert "enabled" in used_names("frpc")  # through ClientConfig.active_proxies()


def test_every_type_is_implemented_or_refused() -> None:
    from aiofrp.client.plugins import PLUGIN_TYPES as CLIENT_PLUGINS
    from aiofrp.client.proxies import PROXY_TYPES as CLIENT_PROXIES
    from aiofrp.client.visitors import VISITOR_TYPES as CLIENT_VISITORS
    from aiofrp.config import CLIENT_PLUGIN_TYPES, PROXY_TYPES, VISITOR_PLUGIN_TYPES, VISITOR_TYPES
    from aiofrp.server.proxies import PROXY_TYPES as SERVER_PROXIES

    for t in PROXY_TYPES:
        assert t in CLIENT_PROXIES and t in SERVER_PROXIES, f"proxy type {t} has no frpc or frps proxy class"
    for t in VISITOR_TYPES:
        assert t in CLIENT_VISITORS, f"visitor type {t} has no implementation"
    refused = {
        (e.key, v) for e in entries("frpc", refused=True) if e.key.endswith("plugin.type") for v in e.values
    }
    for t in CLIENT_PLUGIN_TYPES:
        implemented = t in CLIENT_PLUGINS
        assert implemented != (("proxies.plugin.type", t) in refused), \
            f"client plugin {t} is {'both implemented and' if implemented else 'neither implemented nor'} refused"
    from aiofrp.client.visitor_plugins import REGISTRY as VISITOR_PLUGINS

    for t in VISITOR_PLUGIN_TYPES:
        implemented = t in VISITOR_PLUGINS
        assert implemented != (("visitors.plugin.type", t) in refused), \
            f"visitor plugin {t} is {'both implemented and' if implemented else 'neither implemented nor'} refused"


def test_table_rows_name_real_keys() -> None:
    """Each row names a key of the schema (so a typo cannot hide a refusal)."""
    for e in TABLE:
        paths = {f.path for f in schema_fields(ROOTS[e.side])}
        key = e.key.removesuffix(".*")
        if key.endswith(".type"):  # the tag of a proxy/visitor/plugin table
            key = key.removesuffix(".type")
        assert any(p == key or p.startswith(key + ".") for p in paths), e
        if e.only_with:
            other = e.only_with.partition(" = ")[0]
            item = e.key.split(".", 1)[0] + "." if e.types else ""
            assert item + other in paths, e
        if e.types:
            from aiofrp.config import PROXY_TYPES, VISITOR_TYPES

            assert set(e.types) <= set(PROXY_TYPES if e.key.startswith("proxies.") else VISITOR_TYPES), e
        assert e.refused or not e.values, e


# -- CLI flags ------------------------------------------------------------------------------------

# Options of the commands themselves, not config keys: where they take effect.
CLI_OPTIONS = {"help", "command", "config", "output", "version", "strict_config", "allow_unsafe", "config_dir", "api_timeout"}
# aiofrp-only frps options that take effect (server/banlist.py), not config keys: Go refuses unknown keys
AIOFRP_FRPS_OPTIONS = {"login_fail_limit", "login_fail_window", "login_fail_ban", "workers", "worker", "registry"}
QUICK_OPTIONS = {"help", "mode", "host", "port", "local_host", "local_port", "password", "log_level", "version"}


def _dests(p: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in p._actions}


def _key_accounted(side: str, key: str) -> bool:
    attr_by_path = {f.path: f for f in schema_fields(ROOTS[side])}
    field = attr_by_path[key]
    return field.attr in used_names(side) or listed(side, field) is not None


def test_every_frps_flag_is_a_config_key_or_an_option() -> None:
    p = frps_cli.build_parser()
    mapped = {long.lstrip("-").replace("-", "_") for _s, long, _k, _kw in flags.FRPS_FLAGS}
    assert _dests(p) <= CLI_OPTIONS | AIOFRP_FRPS_OPTIONS | mapped
    leaf = {"allowPorts": "allowPorts.single", "webServer.tls": "webServer.tls.certFile"}  # a table's first key
    for _short, _long, key, _kw in flags.FRPS_FLAGS:
        assert _key_accounted("frps", leaf.get(key, key)), key


def test_every_frpc_flag_is_a_config_key_or_an_option() -> None:
    assert _dests(frpc_cli.build_parser()) <= CLI_OPTIONS
    for ptype in frpc_cli.PROXY_TYPES:
        for visitor in (False, True) if ptype in frpc_cli.VISITOR_TYPES else (False,):
            p = argparse.ArgumentParser()
            flags.add_frpc_flags(p, ptype, visitor)
            rows = flags.frpc_flag_rows(ptype, visitor)
            assert _dests(p) - {"help"} == {long.lstrip("-").replace("-", "_") for _s, long, *_ in rows}
            for _short, _long, scope, key, _types, _kw in rows:
                prefix = "" if scope == "client" else ("visitors." if visitor else "proxies.")
                assert _key_accounted("frpc", prefix + key), (ptype, visitor, key)


NON_DEFAULT = {
    "--server-addr": "10.0.0.1", "--server-port": "7001", "--token": "t", "--user": "u", "--protocol": "kcp",
    "--tls-enable": "false", "--tls-server-name": "n", "--dns-server": "8.8.8.8", "--log-file": "/tmp/x.log",
    "--log-level": "debug", "--log-max-days": "5", "--proxy-name": "n1", "--local-ip": "127.0.0.2",
    "--local-port": "81", "--bandwidth-limit": "1MB", "--bandwidth-limit-mode": "server",
    "--annotations": "a=b", "--metadatas": "c=d", "--remote-port": "6001", "--custom-domain": "a.example.com",
    "--sd": "sub", "--locations": "/x", "--http-user": "hu", "--http-pwd": "hp", "--host-header-rewrite": "h",
    "--mux": "other", "--sk": "k", "--allow-users": "bob", "--visitor-name": "v1", "--server-name": "s",
    "--server-user": "su", "--bind-addr": "127.0.0.2", "--bind-port": "9001",
}


@pytest.mark.parametrize(
    ("ptype", "visitor"),
    [(t, False) for t in frpc_cli.PROXY_TYPES] + [(t, True) for t in frpc_cli.VISITOR_TYPES],
)
def test_each_frpc_flag_reaches_its_key(ptype: str, visitor: bool) -> None:
    """Given alone, each one-shot flag changes exactly the config key the table says."""
    base = flags.frpc_flags_to_dict(_parse(ptype, visitor, []), ptype, visitor)
    for _short, long, scope, key, _types, _kw in flags.frpc_flag_rows(ptype, visitor):
        argv = [long] if long in ("--ue", "--uc", "--disable-log-color") else [long, NON_DEFAULT[long]]
        d = flags.frpc_flags_to_dict(_parse(ptype, visitor, argv), ptype, visitor)
        where = d if scope == "client" else d["visitors" if visitor else "proxies"][0]
        was = base if scope == "client" else base["visitors" if visitor else "proxies"][0]
        assert _get(where, key) != _get(was, key), (long, key)


def _parse(ptype: str, visitor: bool, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    flags.add_frpc_flags(p, ptype, visitor)
    return p.parse_args(argv)


def _get(d: dict, dotted: str) -> object:
    for part in dotted.split("."):
        d = d.get(part, {}) if isinstance(d, dict) else {}
    return d


def test_quick_mode_options_are_known() -> None:
    assert _dests(frp_cli.build_parser()) == QUICK_OPTIONS


# -- refusals -------------------------------------------------------------------------------------

FRPS_REFUSED = [
    ("webServer.port = 7500\nwebServer.pprofEnable = true", "webServer.pprofEnable"),
]
FRPC_REFUSED = [
    ("webServer.port = 7400\nwebServer.pprofEnable = true", "webServer.pprofEnable"),
    *[
        (f'[[proxies]]\nname = "p"\ntype = "tcp"\n[proxies.plugin]\ntype = "{t}"\n{extra}', "proxies[0].plugin.type")
        for t, extra in [
            ("static_file", 'localPath = "/srv"'), ("http2https", 'localAddr = "127.0.0.1:443"'),
            ("http2http", ""), ("https2http", 'localAddr = "127.0.0.1:80"'),
            ("https2https", 'localAddr = "127.0.0.1:443"'), ("virtual_net", ""),
        ]
        if t not in PLUGIN_TYPES  # the implemented ones are accepted
    ],
]


def _refusal(parse: typing.Callable[..., object], text: str, source: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, source)
    return info.value


@pytest.mark.parametrize(("text", "key"), FRPS_REFUSED)
def test_frps_refuses(text: str, key: str) -> None:
    err = _refusal(parse_server_config, text, "frps.toml")
    assert err.path == key and err.reason.startswith(MESSAGE), err
    assert str(err).startswith(f"frps.toml: {key}: {MESSAGE} (")
    parse_server_config(text, refuse_unsupported=False)  # the file itself is fine


@pytest.mark.parametrize(("text", "key"), FRPC_REFUSED)
def test_frpc_refuses(text: str, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
    err = _refusal(parse_client_config, text, "frpc.toml")
    assert err.path == key and err.reason.startswith(MESSAGE), err
    assert str(err).startswith(f"frpc.toml: {key}: {MESSAGE} (")
    parse_client_config(text, refuse_unsupported=False)


def test_the_reason_names_the_issue() -> None:
    err = _refusal(parse_server_config, "webServer.port = 7500\nwebServer.pprofEnable = true", "frps.toml")
    assert str(err).startswith("frps.toml: webServer.pprofEnable: not supported by aiofrp yet (")


ACCEPTED = [
    (parse_server_config, ""),
    (parse_server_config, 'webServer.user = "admin"\nwebServer.password = "x"'),  # no port: Go ignores them
    (parse_server_config, 'sshTunnelGateway.privateKeyFile = "/k"'),
    (parse_server_config, "transport.quic.keepalivePeriod = 20"),
    (parse_server_config, 'auth.oidc.issuer = "https://issuer"'),
    (parse_server_config, "log.disablePrintColor = true"),
    # frp's defaults, written out, are not "set"
    (parse_server_config, 'auth.method = "token"\nkcpBindPort = 0\nenablePrometheus = false\nwebServer.port = 0'),
    (
        parse_client_config,
        (
            'transport.protocol = "tcp"\nauth.method = "token"\ndnsServer = ""\n'
            'transport.wireProtocol = "v1"\ntransport.quic.maxIncomingStreams = 100000'
        ),
    ),
    (parse_client_config, 'webServer.tls.certFile = "c"\nwebServer.tls.keyFile = "k"'),  # no port
    (parse_client_config, "featureGates = { VirtualNet = true }"),
    (parse_client_config, 'auth.oidc.clientID = "x"'),
    (parse_client_config, 'webServer.port = 7400\nwebServer.user = "a"\nwebServer.password = "b"'),
    (parse_client_config, '[[proxies]]\nname = "t"\ntype = "tcp"\ntransport.bandwidthLimit = "1MB"'),
    # udp and sudp are metered in either mode (Go's frpc does not meter them in "client" mode)
    (parse_client_config, '[[proxies]]\nname = "u"\ntype = "udp"\ntransport.bandwidthLimit = "1MB"'),
    (
        parse_client_config,
        ('[[proxies]]\nname = "t"\ntype = "tcp"\n[[proxies]]\nname = "u"\ntype = "sudp"\n'
        'transport.bandwidthLimit = "1MB"\ntransport.bandwidthLimitMode = "client"'),
    ),
    (
        parse_client_config,
        ('[[proxies]]\nname = "u"\ntype = "udp"\ntransport.bandwidthLimit = "1MB"\n'
        'transport.bandwidthLimitMode = "server"\nloadBalancer.group = "g"'),
    ),
]


@pytest.mark.parametrize(("parse", "text"), ACCEPTED)
def test_accepted(parse: typing.Callable[..., object], text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
    parse(text, "x.toml")


def test_http_proxy_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Go frpc takes $http_proxy as transport.proxyURL (and only that lower-case variable)."""
    monkeypatch.setenv("http_proxy", "http://u:p@127.0.0.1:3128")
    cfg = parse_client_config("")
    proxy = cfg.transport.forward_proxy()
    assert proxy is not None and (proxy.scheme, proxy.host, proxy.port, proxy.username, proxy.password) == (
        "http", "127.0.0.1", 3128, "u", "p")
    cfg = parse_client_config('transport.proxyURL = "socks5://127.0.0.1:1080"')  # the config wins
    assert cfg.transport.forward_proxy().scheme == "socks5"
    monkeypatch.setenv("http_proxy", "ftp://127.0.0.1:21")
    err = _refusal(parse_client_config, "", "frpc.toml")
    assert err.path == "$http_proxy" and "scheme must be http, https or socks5" in err.reason
    parse_server_config("")  # frps does not use it
    monkeypatch.delenv("http_proxy")
    # Go frpc 0.65 reads only the lower-case http_proxy for the server connection (HTTPS_PROXY and
    # NO_PROXY reach only OIDC token requests: aiofrp/auth/http.py: env_proxy)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "*")
    assert parse_client_config("").transport.forward_proxy() is None


def test_unknown_feature_gate_is_refused() -> None:
    err = _refusal(parse_client_config, "featureGates = { Foo = true }", "frpc.toml")
    assert str(err) == "frpc.toml: featureGates.Foo: unrecognized feature gate: Foo"


def test_legacy_ini_refusal_names_the_ini_key() -> None:
    ini = "[common]\nserver_port = 7000\nadmin_port = 7400\npprof_enable = true\n"
    err = _refusal(parse_client_config, ini, "frpc.ini")
    assert str(err).startswith("frpc.ini: [common] pprof_enable: not supported by aiofrp yet"), err


def test_includes_are_checked(tmp_path: Path) -> None:
    from aiofrp.config import load_client_config

    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "p.toml").write_text(
        '[[proxies]]\nname = "s"\ntype = "tcp"\ntransport.bandwidthLimit = "fast"\n'
    )
    (tmp_path / "frpc.toml").write_text('includes = ["conf.d/*.toml"]\n')
    with pytest.raises(ConfigError, match=r"conf\.d/p\.toml: proxies\[0\]\.transport\.bandwidthLimit: invalid"):
        load_client_config(str(tmp_path / "frpc.toml"))


def test_services_refuse_configs_built_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedder who builds the structs by hand gets the same refusal."""
    from aiofrp.client.service import Client
    from aiofrp.config.base import WebServerConfig
    from aiofrp.config.plugin import VirtualNetVisitorPluginOptions
    from aiofrp.config.visitor import SUDPVisitorConfig
    from aiofrp.server.service import Server

    with pytest.raises(ConfigError, match=r"webServer\.pprofEnable: not supported by aiofrp yet"):
        Server(ServerConfig(web_server=WebServerConfig(port=7500, pprof_enable=True)))
    monkeypatch.delenv("http_proxy", raising=False)
    cfg = ClientConfig(web_server=WebServerConfig(port=7400, pprof_enable=True))
    with pytest.raises(ConfigError, match=r"webServer\.pprofEnable: not supported by aiofrp yet"):
        Client(cfg)
    # a visitor plugin on a visitor that cannot run it (Go's sudp visitor ignores it)
    cfg = ClientConfig(visitors=[SUDPVisitorConfig(name="v", server_name="s", bind_port=-1,
                                                   plugin=VirtualNetVisitorPluginOptions(destination_ip="100.86.0.1"))])
    with pytest.raises(ConfigError, match=r"visitors\[0\]\.plugin\.type: visitor plugins run on stcp and xtcp"):
        Client(cfg)


def test_find_unsupported_lists_every_hit() -> None:
    cfg = parse_server_config("webServer.port = 3\nwebServer.pprofEnable = true", refuse_unsupported=False)
    assert [h.path for h in find_unsupported(cfg, "frps")] == ["webServer.pprofEnable"]


# -- the README -----------------------------------------------------------------------------------


def test_readme_table_matches_the_code() -> None:
    text = README.read_text()
    m = re.search(r"<!-- unsupported-table:begin -->\n(.*?)<!-- unsupported-table:end -->", text, re.DOTALL)
    assert m, "README.md lacks the unsupported-table markers"
    assert m.group(1).strip() == markdown().strip(), (
        "README's 'Not supported yet' table is stale; print the new one with "
        "python -c 'from aiofrp.config.unsupported import markdown; print(markdown(), end=\"\")'"
    )


def test_table_is_well_formed() -> None:
    seen = set()
    for e in TABLE:
        assert e.side in ("frps", "frpc") and e.reason
        assert (e.side, e.key, e.values, e.types, e.only_with) not in seen, e
        seen.add((e.side, e.key, e.values, e.types, e.only_with))
        assert not (e.go_ignores and e.refused), e
    assert to_frp_dict(ServerConfig()) == {} and to_frp_dict(ClientConfig()) == {}  # nothing set: no hit
