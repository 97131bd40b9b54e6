"""Legacy INI configs (``[common]`` plus one section per proxy/visitor), mapped to frp's v1 data.

Mirrors Go frp's ``pkg/config/legacy``: the INI is read like ``gopkg.in/ini.v1`` does (indented
lines, ``#``/``;`` comment lines, ``key = value`` or ``key: value``, no inline comments, surrounding
quotes removed, case-sensitive keys) and each legacy key is put where its v1 twin lives, so the
result goes through the same decoder and validation as TOML. As in Go, unknown keys and unparsable
numbers/booleans are ignored; here each one is reported in :attr:`LegacyConfig.warnings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from .base import struct_fields
from .decode import did_you_mean
from .errors import ConfigError
from .ini_keys import (
    BOOL_FALSE,
    BOOL_TRUE,
    CLIENT_COMMON,
    NO_EFFECT,
    PLUGIN_PARAMS,
    POSITIVE_OR_DEFAULT,
    PROXY_BASE,
    PROXY_EXTRA,
    SCOPES,
    SERVER_COMMON,
    VISITOR_BASE,
    VISITOR_XTCP,
)
from .plugin import CLIENT_PLUGIN_TYPES
from .proxy import PROXY_TYPES
from .server import parse_ports_range
from .template import parse_number_range
from .visitor import VISITOR_TYPES

DEPRECATED = "the legacy INI config format is deprecated and frp will drop it"
# what Go's frps and frpc print on stdout before running a legacy INI file (cmd/frpc/sub/root.go)
GO_DEPRECATION_NOTICE = ("WARNING: ini format is deprecated and the support will be removed in the future, "
                         "please use yaml/json/toml format instead!")


def deprecation_warning(source: str, prog: str) -> str:
    """The notice logged for every legacy INI file (``prog``: ``frps`` or ``frpc``)."""
    return f"{source}: {DEPRECATED}; convert the file with `{prog} convert -c {source} -o NEW.toml`"


@dataclass
class IniSection:
    """One ``[name]`` section: keys in file order (a repeated key keeps its last value)."""

    name: str
    line: int
    items: dict[str, str] = field(default_factory=dict)


@dataclass
class LegacyConfig:
    """A legacy file as v1 data, what was ignored, and v1 key path -> INI location (for errors)."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    ranges: list[RangeSection] = field(default_factory=list)
    """The ``[range:...]`` sections that became proxies (for the converter)."""


@dataclass
class RangeSection:
    """``[range:prefix]``: proxies ``first`` .. ``first + count - 1`` are ``prefix_0`` ...."""

    prefix: str
    local_ports: str
    remote_ports: str
    first: int
    count: int


class IniSyntaxError(ValueError):
    """A line go-ini would not accept."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")


def _unquote(value: str) -> str:
    for q in ('"""', "`"):
        if value.startswith(q) and len(value) >= 2 * len(q):
            end = value.rfind(q, len(q))
            if end >= len(q):
                return value[len(q) : end]
    for q in "'\"":
        if len(value) >= 2 and value[0] == q and value[-1] == q and value.find(q, 1) == len(value) - 1:
            return value[1:-1]
    return value


def parse_ini(text: str, *, allow_bare_keys: bool = True) -> list[IniSection]:
    """Sections in file order (keys before the first header go to ``DEFAULT``); repeats are merged."""
    sections: dict[str, IniSection] = {"DEFAULT": IniSection("DEFAULT", 0)}
    current = sections["DEFAULT"]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno, line = i + 1, lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            close = line.rfind("]")
            if close < 0:
                raise IniSyntaxError(lineno, f"unclosed section header {line!r}")
            name = line[1:close].strip()
            if not name:
                raise IniSyntaxError(lineno, "empty section name")
            current = sections.setdefault(name, IniSection(name, lineno))
            continue
        cuts = [p for p in (line.find("="), line.find(":")) if p >= 0]
        if not cuts:
            if not allow_bare_keys:
                raise IniSyntaxError(lineno, f"key-value delimiter not found: {line!r}")
            key, value = line, "true"
        else:
            key, value = line[: min(cuts)].strip(), line[min(cuts) + 1 :].strip()
            while value.endswith("\\") and i < len(lines):  # go-ini continuation lines
                value = value[:-1] + lines[i].strip()
                i += 1
            value = _unquote(value)
        if not key:
            raise IniSyntaxError(lineno, f"empty key name: {line!r}")
        current.items.pop(key, None)
        current.items[key] = value
    return list(sections.values())


def looks_like_legacy_ini(text: str) -> bool:
    """Go frp's rule: the text parses as INI and has a ``[common]`` section."""
    try:
        return any(s.name == "common" for s in parse_ini(text, allow_bare_keys=False))
    except IniSyntaxError:
        return False


_SKIP: Any = object()


class _Converter:
    def __init__(self, source: str, label: str = "") -> None:
        self.source = source
        self.label = label
        self.out = LegacyConfig({})

    def where(self, section: str, key: str = "") -> str:
        return f"{self.label}[{section}]" + (f" {key}" if key else "")

    def warn(self, section: str, key: str, why: str) -> None:
        self.out.warnings.append(f"{self.source}: {self.where(section, key)}: {why}, ignored")

    def value(self, raw: str, kind: str, section: str, key: str) -> Any:
        """Convert like go-ini's MapTo: empty and unparsable values leave the default."""
        if kind == "str":
            return raw
        if raw == "":
            return _SKIP
        if kind == "list":
            return [v.strip() for v in raw.split(",")]
        if kind == "bool":
            if raw in BOOL_TRUE or raw in BOOL_FALSE:
                return raw in BOOL_TRUE
            self.warn(section, key, f"{raw!r} is not a boolean")
            return _SKIP
        try:
            return int(raw, 10)
        except ValueError:
            try:
                return int(raw, 0)
            except ValueError:
                self.warn(section, key, f"{raw!r} is not an integer")
                return _SKIP

    def put(
        self, data: dict[str, Any], path: str, value: Any, prefix: str, section: str, key: str, leaf: str = ""
    ) -> None:
        """Set ``data[path]`` (dotted; ``leaf`` is one more key that may itself hold dots)."""
        if value is _SKIP:
            return
        if leaf:
            d = data
            for p in path.split("."):
                d = d.setdefault(p, {})
            d[leaf] = value
            self.out.origins[f"{prefix}{path}.{leaf}"] = self.where(section, key)
            return
        *parents, leaf = path.split(".")
        d = data
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
        self.out.origins[prefix + path] = self.where(section, key)

    def apply(
        self, sec: IniSection, key: str, table: dict[str, tuple[str, str]], data: dict[str, Any], prefix: str
    ) -> bool:
        spec = table.get(key)
        if spec is None:
            return False
        self.put(data, spec[0], self.value(sec.items[key], spec[1], sec.name, key), prefix, sec.name, key)
        return True


def _find(sections: list[IniSection], name: str) -> IniSection:
    return next((s for s in sections if s.name == name), IniSection(name, 0))


def _common(
    conv: _Converter, sec: IniSection, table: dict[str, tuple[str, str]], data: dict[str, Any], role: str
) -> None:
    """Map the ``[common]`` section through ``table`` plus the keys :func:`_special` knows."""
    scopes: dict[str, bool] = {}
    for key in list(sec.items):
        if conv.apply(sec, key, table, data, ""):
            continue
        if key in SCOPES:
            v = conv.value(sec.items[key], "bool", sec.name, key)
            scopes[key] = v is not _SKIP and v
        elif key not in NO_EFFECT and not _special(conv, sec, key, data, role):
            _unknown(conv, sec, key, table)
    chosen = [scope for key, scope in SCOPES.items() if scopes.get(key)]
    if chosen:
        conv.put(data, "auth.additionalScopes", chosen, "", sec.name, "authenticate_*")


def _special(conv: _Converter, sec: IniSection, key: str, data: dict[str, Any], role: str) -> bool:
    """Common keys that do not map one-to-one (prefix maps, allow_ports, dashboard TLS)."""
    raw = sec.items[key]
    if key.startswith("meta_") and role == "client":
        conv.put(data, "metadatas", raw, "", sec.name, key, leaf=key[5:])
    elif key.startswith("oidc_additional_") and role == "client":
        conv.put(data, "auth.oidc.additionalEndpointParams", raw, "", sec.name, key, leaf=key[16:])
    elif key == "allow_ports" and role == "server":
        if raw.strip():
            try:
                ranges = parse_ports_range(raw)
            except ValueError as e:
                raise ConfigError(conv.source, conv.where(sec.name, key), str(e), raw) from None
            conv.put(data, "allowPorts", [msgspec.to_builtins(r) for r in ranges], "", sec.name, key)
    elif key.startswith("dashboard_tls_") and role == "server":
        return key in ("dashboard_tls_mode", "dashboard_tls_cert_file", "dashboard_tls_key_file")
    else:
        return False
    return True


def _unknown(conv: _Converter, sec: IniSection, key: str, table: dict[str, Any]) -> None:
    hint = did_you_mean(key, table, cutoff=0.8)
    conv.warn(sec.name, key, "unknown key" + (f' (did you mean "{hint}"?)' if hint else ""))


def server_from_ini(text: str, source: str) -> LegacyConfig:
    """A legacy frps INI (already template-rendered) as v1 ``ServerConfig`` data."""
    conv = _Converter(source)
    sections = parse_ini(text)
    common = _find(sections, "common")
    data: dict[str, Any] = {"webServer": {"addr": "0.0.0.0"}}  # legacy dashboard_addr default
    _common(conv, common, SERVER_COMMON, data, "server")
    if conv.value(common.items.get("dashboard_tls_mode", ""), "bool", "common", "dashboard_tls_mode") is True:
        tls = {
            "certFile": common.items.get("dashboard_tls_cert_file", ""),
            "keyFile": common.items.get("dashboard_tls_key_file", ""),
        }
        conv.put(data, "webServer.tls", tls, "", "common", "dashboard_tls_mode")
    plugins: list[dict[str, Any]] = []
    for sec in sections:
        if sec.name.startswith("plugin."):
            prefix = f"httpPlugins[{len(plugins)}]."
            opts: dict[str, Any] = {"name": sec.name[len("plugin.") :].strip()}
            conv.out.origins[prefix[:-1]] = conv.where(sec.name)
            table = {
                "addr": ("addr", "str"),
                "path": ("path", "str"),
                "ops": ("ops", "list"),
                "tlsVerify": ("tlsVerify", "bool"),
                "tls_verify": ("tlsVerify", "bool"),
            }
            for key in sec.items:
                if not conv.apply(sec, key, table, opts, prefix) and key != "name":
                    _unknown(conv, sec, key, table)
            plugins.append(opts)
        elif sec.name not in ("common", "DEFAULT") or (sec.name == "DEFAULT" and sec.items):
            conv.warn(sec.name, "", "section not used by frps")
    if plugins:
        data["httpPlugins"] = plugins
    conv.out.data = data
    return conv.out


def client_from_ini(text: str, source: str) -> LegacyConfig:
    """A legacy frpc INI (already template-rendered) as v1 ``ClientConfig`` data."""
    conv = _Converter(source)
    sections = parse_ini(text)
    data: dict[str, Any] = {}
    _common(conv, _find(sections, "common"), CLIENT_COMMON, data, "client")
    _proxies_and_visitors(conv, sections, data)
    conv.out.data = data
    return conv.out


def include_from_ini(text: str, source: str) -> LegacyConfig:
    """An INI file named by a legacy frpc's ``includes``: proxy and visitor sections only."""
    conv = _Converter(source)
    sections = parse_ini(text)
    for sec in sections:
        if sec.name == "common":
            raise ConfigError(source, "[common]", "an included file may only hold proxy and visitor sections")
    data: dict[str, Any] = {}
    _proxies_and_visitors(conv, sections, data)
    conv.out.data = data
    return conv.out


def _proxies_and_visitors(conv: _Converter, sections: list[IniSection], data: dict[str, Any]) -> None:
    proxies: list[dict[str, Any]] = []
    visitors: list[dict[str, Any]] = []
    for sec in sections:
        if sec.name in ("common", "DEFAULT"):
            if sec.name == "DEFAULT" and sec.items:
                conv.warn(sec.name, "", "keys before the first section are not used")
            continue
        expanded = _expand_range(conv, sec) if sec.name.startswith("range:") else [sec]
        if sec.name.startswith("range:") and (sec.items.get("role", "") or "server") == "server":
            local, remote = sec.items["local_port"], sec.items["remote_port"]
            prefix = sec.name[len("range:") :].strip()
            conv.out.ranges.append(RangeSection(prefix, local, remote, len(proxies), len(expanded)))
        for s in expanded:
            role = s.items.get("role", "") or "server"
            if role == "server":
                proxies.append(_proxy(conv, s, f"proxies[{len(proxies)}]"))
            elif role == "visitor":
                visitors.append(_visitor(conv, s, f"visitors[{len(visitors)}]"))
            else:
                raise ConfigError(
                    conv.source,
                    conv.where(s.name, "role"),
                    f"role should be 'server' or 'visitor', got {role!r}",
                )
    if proxies:
        data["proxies"] = proxies
    if visitors:
        data["visitors"] = visitors


def _expand_range(conv: _Converter, sec: IniSection) -> list[IniSection]:
    """``[range:name]`` with ``local_port = 6010-6012`` -> sections ``name_0``, ``name_1``, ..."""
    prefix = sec.name[len("range:") :].strip()
    local, remote = sec.items.get("local_port", ""), sec.items.get("remote_port", "")
    if not local or not remote:
        raise ConfigError(conv.source, conv.where(sec.name), "local_port or remote_port is empty")
    ports: list[list[int]] = []
    for key, text in (("local_port", local), ("remote_port", remote)):
        try:
            ports.append(parse_number_range(text))
        except ValueError as e:
            raise ConfigError(conv.source, conv.where(sec.name, key), str(e), text) from None
    if len(ports[0]) != len(ports[1]):
        raise ConfigError(
            conv.source,
            conv.where(sec.name),
            f"local ports number should be same with remote ports number ({len(ports[0])} and {len(ports[1])})",
        )
    return [
        IniSection(f"{prefix}_{i}", sec.line, {**sec.items, "local_port": str(lp), "remote_port": str(rp)})
        for i, (lp, rp) in enumerate(zip(ports[0], ports[1], strict=True))
    ]


def _proxy(conv: _Converter, sec: IniSection, path: str) -> dict[str, Any]:
    ptype = sec.items.get("type", "") or "tcp"
    if ptype not in PROXY_EXTRA:
        hint = did_you_mean(ptype, PROXY_TYPES, cutoff=0.75)
        extra = f', did you mean "{hint}"?' if hint else f" (one of {', '.join(PROXY_TYPES)})"
        raise ConfigError(
            conv.source, conv.where(sec.name, "type"), f"unknown proxy type: {ptype}{extra}", ptype
        )
    conv.out.origins[path] = conv.where(sec.name)
    prefix = path + "."
    out: dict[str, Any] = {"name": sec.name, "type": ptype}
    table = {**PROXY_BASE, **PROXY_EXTRA[ptype]}
    plugin_params: dict[str, str] = {}
    for key, raw in sec.items.items():
        if key in ("type", "role", "name") or conv.apply(sec, key, table, out, prefix):
            continue
        if key.startswith("meta_"):
            conv.put(out, "metadatas", raw, prefix, sec.name, key, leaf=key[5:])
        elif key.startswith("header_") and ptype == "http":
            conv.put(out, "requestHeaders.set", raw, prefix, sec.name, key, leaf=key[7:])
        elif key == "plugin" or key.startswith("plugin_"):
            plugin_params[key] = raw
        elif any(key in t for t in PROXY_EXTRA.values()):
            conv.warn(sec.name, key, f"not used by {ptype} proxies")
        else:
            _unknown(conv, sec, key, table)
    plugin = _plugin(conv, sec, plugin_params, prefix)
    if plugin is not None:
        out["plugin"] = plugin
    return out


def _plugin(conv: _Converter, sec: IniSection, params: dict[str, str], prefix: str) -> dict[str, Any] | None:
    ptype = params.pop("plugin", "")
    if not ptype:
        for key in params:
            conv.warn(sec.name, key, "no plugin is set")
        return None
    out: dict[str, Any] = {"type": ptype}
    conv.out.origins[prefix + "plugin"] = conv.where(sec.name, "plugin")
    cls = CLIENT_PLUGIN_TYPES.get(ptype)
    names = {f.encode_name for f in struct_fields(cls)} if cls else set()
    for key, raw in params.items():
        if key.startswith("plugin_header_") and "requestHeaders" in names:
            leaf = key[len("plugin_header_") :]
            conv.put(out, "requestHeaders.set", raw, prefix + "plugin.", sec.name, key, leaf=leaf)
        elif PLUGIN_PARAMS.get(key) in names:
            conv.put(out, PLUGIN_PARAMS[key], raw, prefix + "plugin.", sec.name, key)
        else:
            conv.warn(sec.name, key, f"not used by plugin {ptype}")
    return out


def _visitor(conv: _Converter, sec: IniSection, path: str) -> dict[str, Any]:
    vtype = sec.items.get("type", "")
    if vtype not in VISITOR_TYPES:
        reason = f"unknown visitor type: {vtype}" if vtype else "visitor type is required"
        raise ConfigError(
            conv.source, conv.where(sec.name, "type"), f"{reason} (one of {', '.join(VISITOR_TYPES)})", vtype
        )
    conv.out.origins[path] = conv.where(sec.name)
    prefix = path + "."
    out: dict[str, Any] = {"name": sec.name, "type": vtype}
    table = {**VISITOR_BASE, **(VISITOR_XTCP if vtype == "xtcp" else {})}
    for key, raw in sec.items.items():
        if key in ("type", "role", "name"):
            continue
        if key in POSITIVE_OR_DEFAULT and key in table:
            v = conv.value(raw, "int", sec.name, key)
            if v is not _SKIP and v > 0:
                conv.put(out, table[key][0], v, prefix, sec.name, key)
        elif not conv.apply(sec, key, table, out, prefix):
            if key in VISITOR_XTCP:
                conv.warn(sec.name, key, f"not used by {vtype} visitors")
            else:
                _unknown(conv, sec, key, table)
    return out
