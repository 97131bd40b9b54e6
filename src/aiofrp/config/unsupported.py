"""THE table of frp settings aiofrp does not implement yet, and the check that refuses them.

The rule of the codebase: every key we accept either takes effect or is refused. A refused key is
reported by ``verify`` and at start-up as ``FILE: KEY: not supported by aiofrp yet (...)`` with exit
status 1, and only when it is actually set (differs from frp's default). When a feature lands,
delete its line below and refresh the README table with
``python -c 'from aiofrp.config.unsupported import markdown; print(markdown(), end="")'``
(``tests/unit/test_unsupported.py`` checks both agree).

Entries with ``refused=False`` are accepted on purpose and listed so the README says why: keys Go
frp parses but ignores too, and keys that only matter together with a refused one.

Key syntax (frp's spelling): dotted paths; list items are matched without their index
(``proxies.plugin.type`` matches ``proxies[3].plugin.type``); a trailing ``.*`` matches anything
below the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .client import ClientConfig
from .errors import ConfigError
from .server import ServerConfig

Side = Literal["frps", "frpc"]

MESSAGE = "not supported by aiofrp yet"


@dataclass(frozen=True)
class Unsupported:
    """One row of the table."""

    side: Side
    key: str
    """frp's key path (``webServer.port``, ``proxies.plugin.type``, ``sshTunnelGateway.*``)."""
    reason: str
    """What the key does in frp (or why it is accepted), in a few words."""
    issue: int | None = None
    """The issue that implements it (None: nothing planned)."""
    values: tuple[str, ...] = ()
    """Refused only for these values (empty: any value other than frp's default)."""
    env: tuple[str, ...] = ()
    """Also refused when one of these environment variables is set (Go reads it as the default)."""
    only_with: str = ""
    """Refused only when this other key is set too (Go ignores the key otherwise). Relative to the
    proxy/visitor for ``proxies.``/``visitors.`` keys; ``key = "value"`` asks for that value."""
    types: tuple[str, ...] = ()
    """For ``proxies.``/``visitors.`` keys: only for these proxy/visitor types (empty: all)."""
    refused: bool = True
    """False: accepted on purpose (see ``reason``); listed so the README and the rule's test know."""
    go_ignores: bool = False
    """Go frp parses the key but does not use it either."""

    def label(self) -> str:
        """The key as the README shows it (``auth.method = "oidc"``)."""
        label = self.key
        if self.values:
            label += " = " + " \\| ".join(f'"{v}"' for v in self.values)
        return label

    def condition(self) -> str:
        """When the row applies, for the README (``udp, sudp proxies``, ``with webServer.port``)."""
        parts = []
        if self.types:
            parts.append(", ".join(self.types) + f" {self.key.split('.', 1)[0]}")
        if self.only_with:
            parts.append(f"with `{self.only_with}`")
        return "; ".join(parts)


_OPS = "issue 11"

TABLE: tuple[Unsupported, ...] = (
    # -- frps -----------------------------------------------------------------------------------
    Unsupported("frps", "auth.tokenSource.*", 'frps checks OIDC tokens with auth.oidc, not the shared token',
                only_with='auth.method = "oidc"', refused=False, go_ignores=True),
    Unsupported("frps", "webServer.pprofEnable", "Go's runtime profiler (pprof): Go-only, no Python equivalent is "
                "served; use /metrics", only_with="webServer.port"),
    Unsupported("frps", "transport.tls.serverName", "frps does not use it", refused=False, go_ignores=True),
    Unsupported("frps", "log.disablePrintColor", "aiofrp never colours its log lines", refused=False),
    # -- frpc -----------------------------------------------------------------------------------
    Unsupported("frpc", "auth.tokenSource.*", "the OIDC token comes from auth.oidc (auth.oidc.tokenSource)",
                only_with='auth.method = "oidc"', refused=False, go_ignores=True),
    Unsupported("frpc", "webServer.pprofEnable", "Go's runtime profiler under /debug/pprof/ (Go-only; aiofrp refuses "
                "it rather than serve something else under that name)", only_with="webServer.port"),
    Unsupported("frpc", "proxies.loadBalancer.*", "groups exist for tcp, http, https and tcpmux only",
                types=("udp", "stcp", "sudp", "xtcp"), refused=False, go_ignores=True),
    Unsupported("frpc", "log.disablePrintColor", "aiofrp never colours its log lines", refused=False),
)


def entries(side: Side, *, refused: bool | None = None) -> list[Unsupported]:
    """The rows for one side (only the refused or only the accepted ones when ``refused`` is given)."""
    return [e for e in TABLE if e.side == side and (refused is None or e.refused == refused)]


# -- matching ------------------------------------------------------------------------------------


def _nodes(data: object, path: str = "") -> Iterator[tuple[str, object]]:
    """(path, value) for every node of to_frp_dict() output, parents first; list items as ``key[i]``."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
                for i, item in enumerate(v):
                    yield f"{sub}[{i}]", item
                    yield from _nodes(item, f"{sub}[{i}]")
            else:
                yield sub, v
                yield from _nodes(v, sub)


def _plain(path: str) -> str:
    """``proxies[3].plugin.type`` -> ``proxies.plugin.type``."""
    out = []
    depth = 0
    for ch in path:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _matches(pattern: str, plain: str) -> bool:
    if pattern.endswith(".*"):
        return plain.startswith(pattern[:-1])
    return plain == pattern


def _lookup(data: Mapping[str, Any], key: str) -> object:
    cur: object = data
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _holds(data: Mapping[str, Any], cond: str) -> bool:
    """``key`` is set, or ``key = "value"`` holds (a key left out has frp's default)."""
    key, eq, want = cond.partition(" = ")
    got = _lookup(data, key)
    if not eq:
        return got is not None
    want = want.strip('"')
    return got == want or (got is None and _DEFAULTS.get(key) == want)


# defaults of the keys conditions compare (to_frp_dict() leaves defaults out)
_DEFAULTS = {"transport.bandwidthLimitMode": "client"}


def _item(data: Mapping[str, Any], path: str) -> tuple[Mapping[str, Any] | None, str]:
    """For ``proxies[2].x.y``: the proxy's table and ``x.y``; else ``(None, path)``."""
    head, dot, rest = path.partition("].")
    if dot and head.startswith(("proxies[", "visitors[")):
        name, _, index = head.partition("[")
        return data[name][int(index)], rest
    return None, path


@dataclass(frozen=True)
class Hit:
    """A refused setting found in a config: where, which row, and the value."""

    path: str
    entry: Unsupported
    value: object
    from_env: str = ""

    def error(self, source: str) -> ConfigError:
        e = self.entry
        detail = []
        if self.from_env:
            detail.append(f"set by ${self.from_env}")
        elif e.values:
            detail.append(f'value "{self.value}"')
        detail.append(e.reason)
        if e.issue is not None:
            detail.append(f"planned: issue {e.issue}")
        if self.from_env:
            detail.append(f"unset {self.from_env} to connect directly")
        return ConfigError(source, self.path, f"{MESSAGE} ({'; '.join(detail)})", self.value)


def find_unsupported(
    cfg: ServerConfig | ClientConfig, side: Side, *, env: Mapping[str, str] | None = None, data: Mapping[str, Any] | None = None
) -> list[Hit]:
    """Every refused setting in a decoded config, in file order (``data``: its to_frp_dict())."""
    if data is None:
        from .dump import to_frp_dict

        data = to_frp_dict(cfg)
    rows = entries(side, refused=True)
    hits: list[Hit] = []
    for path, value in _nodes(data):
        plain = _plain(path)
        item, _ = _item(data, path)
        for e in rows:
            if not _matches(e.key, plain):
                continue
            if e.values and value not in e.values:
                continue
            if e.types and (item is None or item.get("type") not in e.types):
                continue
            if e.only_with and not _holds(item if item is not None else data, e.only_with):
                continue
            hits.append(Hit(path, e, value))
            break
    environ = os.environ if env is None else env
    for e in rows:
        if any(h.entry is e for h in hits):
            continue
        for var in e.env:
            if environ.get(var):
                hits.append(Hit(e.key, e, environ[var], from_env=var))
                break
    return hits


def check_unsupported(
    cfg: ServerConfig | ClientConfig, side: Side, source: str, *, env: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`ConfigError` ``SOURCE: KEY: not supported by aiofrp yet (...)`` for the first hit."""
    hits = find_unsupported(cfg, side, env=env)
    if hits:
        raise hits[0].error(source)


# -- the README table ----------------------------------------------------------------------------


def markdown() -> str:
    """The README's tables (between the ``unsupported-table`` markers)."""
    lines = [
        "| side | key | what it does in frp | planned |",
        "|---|---|---|---|",
    ]
    for e in TABLE:
        if e.refused:
            cond = f" ({e.condition()})" if e.condition() else ""
            env = "".join(f" (or `${v}`)" for v in e.env)
            planned = f"issue {e.issue}" if e.issue is not None else "not planned yet"
            lines.append(f"| {e.side} | `{e.label()}`{cond}{env} | {e.reason} | {planned} |")
    lines += [
        "",
        "Accepted without effect, on purpose:",
        "",
        "| side | key | why |",
        "|---|---|---|",
    ]
    for e in TABLE:
        if not e.refused:
            why = e.reason + ("; Go ignores it too" if e.go_ignores else "")
            cond = f" ({e.condition()})" if e.condition() else ""
            lines.append(f"| {e.side} | `{e.label()}`{cond} | {why} |")
    return "\n".join(lines) + "\n"
