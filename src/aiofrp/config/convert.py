"""Convert a legacy INI frps/frpc config into a clean TOML v1 file (``frps|frpc convert``).

The INI is read exactly as the loader reads it, so parsing the TOML gives an equal struct. Only
values that differ from frp's defaults are written, in frp's own style: dotted keys
(``auth.token = "..."``) and ``[[proxies]]``/``[[visitors]]``/``[[httpPlugins]]`` tables.
``{{ .Envs.NAME }}`` inside string values is kept as a template rather than baked in.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from . import ini, template
from .client import ClientConfig
from .dump import to_frp_dict
from .errors import ConfigError
from .load import decode_with_origins, render_template, validate_with_origins
from .server import ServerConfig
from .unsupported import MESSAGE, Hit, find_unsupported
from .validate import validate_client_config, validate_server_config

_ENV_ACTION = re.compile(r"\{\{\s*\.Envs\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}")
_PLACEHOLDER = "@@aiofrp-template-{}@@"
_PLACEHOLDER_RE = re.compile(r"@@aiofrp-template-(\d+)@@")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TABLE_ARRAYS = ("proxies", "visitors", "httpPlugins")


def ini_to_toml(
    text: str, source: str = "<string>", role: str = "client", *, env: Mapping[str, str] | None = None
) -> str:
    """Convert legacy INI config text (``role``: ``"server"``/``"frps"`` or ``"client"``/``"frpc"``) to TOML."""
    server = _is_server(role)
    rendered = render_template(text, source, env)
    if not ini.looks_like_legacy_ini(rendered):
        raise ConfigError(source, "", "not a legacy INI config (it has no [common] section)")
    to_v1 = ini.server_from_ini if server else ini.client_from_ini
    legacy = to_v1(rendered, source)
    cfg: ServerConfig | ClientConfig
    if server:
        cfg = scfg = decode_with_origins(ServerConfig, legacy.data, source, True, legacy.origins)
        validate_with_origins(
            validate_server_config, scfg, source, {"TokenSourceExec"}, legacy.origins, refuse_unsupported=False
        )
    else:
        cfg = ccfg = decode_with_origins(ClientConfig, legacy.data, source, True, legacy.origins)
        validate_with_origins(
            validate_client_config, ccfg, source, {"TokenSourceExec"}, legacy.origins, refuse_unsupported=False
        )
    out = to_frp_dict(cfg)
    hits = find_unsupported(cfg, "frps" if server else "frpc", env={}, data=out)
    _keep_env_templates(text, source, out, to_v1, env)
    proxies, visitors = out.pop("proxies", []), out.pop("visitors", [])
    body = dumps_toml(out) + _proxies_toml(proxies, legacy.ranges) + _array_of_tables("visitors", visitors)
    return _header(source, server, legacy.warnings, out, hits) + body.lstrip("\n")


def _is_server(role: str) -> bool:
    if role in ("server", "frps"):
        return True
    if role in ("client", "frpc"):
        return False
    raise ValueError(f"role must be 'server' or 'client', not {role!r}")


def _header(source: str, server: bool, warnings: list[str], out: dict[str, Any], hits: list[Hit]) -> str:
    from .. import __version__

    side = "frps" if server else "frpc"
    lines = [
        f"# {side} configuration converted from the legacy INI file {source} by aiofrp {__version__}.",
        "# Only values that differ from frp's defaults are written.",
    ]
    if warnings:
        lines.append("# Ignored while converting (frp ignores them too):")
        lines.extend(f"#   {w.removeprefix(source + ': ')}" for w in warnings)
    if hits:
        lines.append("# Not supported by aiofrp yet (Go frp runs them; aiofrp refuses to start until they land):")
        lines.extend(f"#   {h.error('').reason.replace(MESSAGE, h.path, 1)}" for h in hits)
    if out.get("includes"):
        lines.append("# NOTE: the included files are not converted: convert them to TOML as well")
        lines.append("# (they may only hold [[proxies]] and [[visitors]]) and update `includes`.")
    return "\n".join(lines) + "\n\n"


def _keep_env_templates(
    text: str,
    source: str,
    out: dict[str, Any],
    to_v1: Callable[[str, str], ini.LegacyConfig],
    env: Mapping[str, str] | None,
) -> None:
    """Put ``{{ .Envs.X }}`` back into the string values that came from one."""
    actions: list[str] = []

    def mark(m: re.Match[str]) -> str:
        actions.append(m.group(0))
        return _PLACEHOLDER.format(len(actions) - 1)

    marked = _ENV_ACTION.sub(mark, text)
    if not actions:
        return
    try:
        raw = to_v1(render_template(marked, source, env), source).data
    except ConfigError:
        return
    _restore(out, raw, actions, os.environ if env is None else env)


def _restore(out: Any, raw: Any, actions: list[str], env: Mapping[str, str]) -> None:
    if isinstance(out, dict) and isinstance(raw, dict):
        keys: Any = out.keys()
    elif isinstance(out, list) and isinstance(raw, list) and len(out) == len(raw):
        keys = range(len(out))
    else:
        return
    for k in list(keys):
        if isinstance(out, dict) and k not in raw:
            continue
        got, orig = out[k], raw[k]
        if isinstance(got, str) and isinstance(orig, str) and _PLACEHOLDER_RE.search(orig):
            candidate = _PLACEHOLDER_RE.sub(lambda m: actions[int(m.group(1))], orig)
            if template.render(candidate, env) == got:
                out[k] = candidate
        else:
            _restore(got, orig, actions, env)


# --- a small TOML writer ---------------------------------------------------------------------


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML for config data: dotted keys for nested tables, ``[[name]]`` for top-level table lists."""
    head: list[str] = []
    groups: list[list[str]] = []
    arrays: list[str] = []
    for key, value in data.items():
        if key in _TABLE_ARRAYS and _is_table_list(value):
            arrays.append(_array_of_tables(key, value))
        elif isinstance(value, Mapping) and value:
            groups.append(_flatten(value, _key(key) + "."))
        else:
            head.append(f"{_key(key)} = {_value(value)}")
    blocks = ["\n".join(head)] if head else []
    blocks += ["\n".join(g) for g in groups]
    body = "\n\n".join(blocks) + ("\n" if blocks else "")
    return body + "".join(arrays)


def _array_of_tables(key: str, items: list[Any]) -> str:
    return "".join(_table(key, item) for item in items)


def _table(key: str, item: Mapping[str, Any]) -> str:
    return f"\n[[{_key(key)}]]\n" + "\n".join(_flatten(item, "")) + "\n"


def _proxies_toml(proxies: list[dict[str, Any]], ranges: list[ini.RangeSection]) -> str:
    """``[[proxies]]``; a ``[range:...]`` section becomes a ``parseNumberRangePair`` loop again."""
    out: list[str] = []
    by_first = {r.first: r for r in ranges}
    i = 0
    while i < len(proxies):
        r = by_first.get(i)
        loop = _range_loop(proxies[i : i + r.count], r) if r else None
        if r and loop:
            out.append(loop)
            i += r.count
        else:
            out.append(_table("proxies", proxies[i]))
            i += 1
    return "".join(out)


def _range_loop(items: list[dict[str, Any]], r: ini.RangeSection) -> str | None:
    """The loop for items that differ only in name and ports, else None (written out one by one)."""
    keys = ("name", "localPort", "remotePort")
    if not all(k in item for item in items for k in keys):
        return None
    rest = [{k: v for k, v in item.items() if k not in keys} for item in items]
    if any(x != rest[0] for x in rest):
        return None
    lines = [
        "name = " + _string(f"{r.prefix}_")[:-1] + '{{ $i }}"',
        f"type = {_value(rest[0].pop('type'))}",
        "localPort = {{ $v.First }}",
        "remotePort = {{ $v.Second }}",
        *_flatten(rest[0], ""),
    ]
    pair = f"{json.dumps(r.local_ports)} {json.dumps(r.remote_ports)}"
    head = f"\n# [range:{r.prefix}]\n{{{{- range $i, $v := parseNumberRangePair {pair} }}}}\n[[proxies]]\n"
    return head + "\n".join(lines) + "\n{{- end }}\n"


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _flatten(table: Mapping[str, Any], prefix: str) -> list[str]:
    """``key = value`` lines, scalars first, nested tables as dotted keys."""
    scalars = [(k, v) for k, v in table.items() if not (isinstance(v, Mapping) and v)]
    nested = [(k, v) for k, v in table.items() if isinstance(v, Mapping) and v]
    lines = [f"{prefix}{_key(k)} = {_value(v)}" for k, v in scalars]
    for k, v in nested:
        lines.extend(_flatten(v, f"{prefix}{_key(k)}."))
    return lines


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return ("-" if v < 0 else "") + ("nan" if math.isnan(v) else "inf")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, list):
        items = [_value(x) for x in v]
        if _is_table_list(v) and len(v) > 1:
            return "[\n" + "".join(f"  {i},\n" for i in items) + "]"
        return "[" + ", ".join(items) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
