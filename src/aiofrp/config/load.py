"""Reading config files: render, detect the format, parse, decode, validate.

The pipeline mirrors Go frp's ``pkg/config/load.go``:

1. :func:`render_template` (the Go ``text/template`` subset of :mod:`.template`),
2. legacy INI detection (a ``[common]`` section) and mapping to v1 data (:mod:`.ini`),
3. :func:`parse_document`: TOML first, then JSON (text starting with ``{``) or YAML,
4. :func:`~aiofrp.config.decode.from_data`: case-insensitive keys, strict, typed,
5. :mod:`~aiofrp.config.validate`: cross-field checks,
6. frpc ``includes`` (extra ``[[proxies]]``/``[[visitors]]`` files) and ``auth.tokenSource``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import tomllib
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from . import template
from .base import ConfigStruct
from .client import ClientConfig
from .decode import from_data
from .errors import ConfigError, type_name
from .proxy import ProxyBaseConfig
from .server import ServerConfig
from .token_source import resolve_auth_token
from .validate import validate_client_config, validate_server_config
from .visitor import VisitorBaseConfig

log = logging.getLogger("aiofrp.config")
T = TypeVar("T", bound=ConfigStruct)
C_contra = TypeVar("C_contra", bound=ConfigStruct, contravariant=True)


class Validator(Protocol[C_contra]):
    """``validate_server_config`` / ``validate_client_config``."""

    def __call__(
        self, cfg: C_contra, source: str, *, allow_unsafe: Collection[str] = ..., refuse_unsupported: bool = ...
    ) -> None: ...


def _format_hint(source: str) -> str:
    ext = os.path.splitext(source)[1].lower()
    return {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(ext, "")


def render_template(text: str, source: str, env: Mapping[str, str] | None = None) -> str:
    """Render frp's Go ``text/template`` subset (``{{ .Envs.NAME }}``, ``parseNumberRangePair``, ...).

    ``env`` is what ``.Envs`` reads (default: ``os.environ``). Errors name the file and line.
    """
    try:
        return template.render(text, os.environ if env is None else env)
    except template.TemplateError as e:
        raise ConfigError(source, "", f"template: {e}") from None


def is_legacy_ini(text: str, source: str) -> bool:
    """Whether Go frp would read this file as a legacy INI config (it has a ``[common]`` section)."""
    if _format_hint(source) or "common" not in text:  # no [common] section: not INI (and no import)
        return False
    from . import ini  # lazily: the legacy INI reader, only for files that may be INI

    return ini.looks_like_legacy_ini(text)


def _load_yaml(text: str) -> object:
    try:
        import yaml  # lazily: only YAML configs need it
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError("reading YAML needs the PyYAML package") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:  # one line: what, and where (PyYAML's text quotes the source)
        parts = []
        if e.context:
            where = f" at line {e.context_mark.line + 1}" if e.context_mark is not None else ""
            parts.append(f"{e.context}{where}")
        if e.problem:
            mark = e.problem_mark
            parts.append(e.problem + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""))
        raise ValueError(": ".join(parts) or "not valid YAML") from None
    except yaml.YAMLError as e:
        raise ValueError(" ".join(str(e).split())) from None


def parse_document(text: str, source: str) -> dict[str, Any]:
    """Parse config text into plain data, detecting TOML, JSON or YAML by content.

    TOML is tried first; a ``.toml`` file that is not valid TOML is an error at that point.
    Otherwise a ``.json`` file or text starting with ``{`` is JSON and anything else YAML (top-level YAML keys
    starting with ``.`` are dropped, as frp does, so they can hold anchors).
    """
    try:
        return _parse_document(text, source)
    except RecursionError:
        raise ConfigError(source, "", "the document is nested too deeply") from None


def _parse_document(text: str, source: str) -> dict[str, Any]:
    hint = _format_hint(source)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        toml_err = str(e)
    if hint == "toml":
        raise ConfigError(source, "", f"invalid TOML: {toml_err}")
    if hint == "json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            if hint == "json":
                raise ConfigError(source, "", f"invalid JSON: {e}") from None
            raise ConfigError(source, "", f"invalid TOML ({toml_err}) and invalid JSON ({e})") from None
    else:
        try:
            data = _load_yaml(text)
        except ValueError as e:
            if hint == "yaml":
                raise ConfigError(source, "", f"invalid YAML: {e}") from None
            raise ConfigError(source, "", f"invalid TOML ({toml_err}) and invalid YAML ({e})") from None
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not str(k).startswith(".")}
    if data is None:
        return {}
    if not isinstance(data, dict):
        if hint in ("json", "yaml"):
            raise ConfigError(source, "", f"expected a table of keys at the top, got {type_name(data)}")
        raise ConfigError(source, "", f"invalid TOML: {toml_err}")
    return data


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read config file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", f"not UTF-8 text: {e.reason} at byte {e.start}") from None


def _report(found: list[str], warnings: list[str] | None) -> None:
    if warnings is not None:
        warnings.extend(found)
    else:
        for w in found:
            log.warning("%s", w)


def _relabel(err: ConfigError, origins: dict[str, str]) -> ConfigError:
    """Point an error about v1 key ``proxies[2].localPort`` at its INI spelling ``[ssh] local_port``."""
    path = err.path
    cut = len(path)
    while cut > 0:
        head = path[:cut]
        if head in origins:
            rest = path[cut:].lstrip(".")
            label = origins[head] + (f" {rest}" if rest else "")
            return ConfigError(err.source, label, err.reason, err.value)
        cut = max(path.rfind(".", 0, cut), path.rfind("[", 0, cut))
    return err


def decode_with_origins(
    cls: type[T], data: object, source: str, strict: bool, origins: dict[str, str] | None
) -> T:
    """:func:`from_data`, with errors about legacy INI data pointed at the INI keys (``origins``)."""
    try:
        cfg: T = from_data(cls, data, source, strict=strict)
    except ConfigError as e:
        raise e if origins is None else _relabel(e, origins) from None
    return cfg


def validate_with_origins(
    check: Validator[T],
    cfg: T,
    source: str,
    allow_unsafe: Collection[str],
    origins: dict[str, str] | None,
    *,
    refuse_unsupported: bool = True,
) -> None:
    """Run ``check`` (a ``validate_*_config``), relabelling errors like :func:`decode_with_origins`."""
    try:
        check(cfg, source, allow_unsafe=allow_unsafe, refuse_unsupported=refuse_unsupported)
    except ConfigError as e:
        raise e if origins is None else _relabel(e, origins) from None


def parse_server_config(
    text: str,
    source: str = "<string>",
    *,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    allow_unsafe: Collection[str] = frozenset(),
    resolve_token_source: bool = True,
    warnings: list[str] | None = None,
    refuse_unsupported: bool = True,
) -> ServerConfig:
    """Parse frps config text (TOML, JSON, YAML or legacy INI; templates rendered first).

    ``source`` names the text in errors (its extension is a format hint); ``env`` feeds
    ``{{ .Envs.X }}``; ``allow_unsafe`` enables features such as ``TokenSourceExec``; with
    ``resolve_token_source`` ``auth.tokenSource`` is read now and its value put in ``auth.token``.
    Legacy-INI warnings (ignored keys) go to ``warnings`` when given, else to the log.
    ``refuse_unsupported=False`` accepts the settings of :mod:`.unsupported` (for tools that only
    read a config, such as the converter; never to run one).
    """
    text = render_template(text, source, env)
    origins = None
    if is_legacy_ini(text, source):
        from . import ini

        legacy = ini.server_from_ini(text, source)
        _report([ini.deprecation_warning(source, "frps"), *legacy.warnings], warnings)
        data, origins, strict = legacy.data, legacy.origins, True
    else:
        data = parse_document(text, source)
    cfg = decode_with_origins(ServerConfig, data, source, strict, origins)
    validate_with_origins(
        validate_server_config, cfg, source, allow_unsafe, origins, refuse_unsupported=refuse_unsupported
    )
    if resolve_token_source:
        resolve_auth_token(cfg.auth, source, allow_unsafe=allow_unsafe)
    return cfg


def parse_client_config(
    text: str,
    source: str = "<string>",
    *,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    allow_unsafe: Collection[str] = frozenset(),
    resolve_token_source: bool = True,
    warnings: list[str] | None = None,
    include_dir: str | None = None,
    refuse_unsupported: bool = True,
) -> ClientConfig:
    """Parse frpc config text; the options are those of :func:`parse_server_config`.

    ``includes`` are followed (relative to ``include_dir``) only when ``include_dir`` is given.
    """
    text = render_template(text, source, env)
    legacy = is_legacy_ini(text, source)
    origins = None
    if legacy:
        from . import ini

        conv = ini.client_from_ini(text, source)
        _report([ini.deprecation_warning(source, "frpc"), *conv.warnings], warnings)
        data, origins, strict = conv.data, conv.origins, True
    else:
        data = parse_document(text, source)
    cfg = decode_with_origins(ClientConfig, data, source, strict, origins)
    validate_with_origins(
        validate_client_config, cfg, source, allow_unsafe, origins, refuse_unsupported=refuse_unsupported
    )
    if include_dir is not None and cfg.includes:
        ctx = _IncludeCtx(strict, env, allow_unsafe, warnings, legacy, refuse_unsupported)
        _add_includes(cfg, source, include_dir, ctx)
    if resolve_token_source:
        resolve_auth_token(cfg.auth, source, allow_unsafe=allow_unsafe)
    return cfg


def load_server_config(
    path: str,
    *,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    allow_unsafe: Collection[str] = frozenset(),
    resolve_token_source: bool = True,
    warnings: list[str] | None = None,
    refuse_unsupported: bool = True,
) -> ServerConfig:
    """Read and parse an frps config file (TOML, JSON, YAML or legacy INI; extension optional)."""
    return parse_server_config(
        _read(path),
        path,
        strict=strict,
        env=env,
        allow_unsafe=allow_unsafe,
        resolve_token_source=resolve_token_source,
        warnings=warnings,
        refuse_unsupported=refuse_unsupported,
    )


def load_client_config(
    path: str,
    *,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    allow_unsafe: Collection[str] = frozenset(),
    resolve_token_source: bool = True,
    warnings: list[str] | None = None,
    refuse_unsupported: bool = True,
) -> ClientConfig:
    """Read and parse an frpc config file, following ``includes`` (relative to its directory)."""
    return parse_client_config(
        _read(path),
        path,
        strict=strict,
        env=env,
        allow_unsafe=allow_unsafe,
        resolve_token_source=resolve_token_source,
        warnings=warnings,
        include_dir=os.path.dirname(path) or ".",
        refuse_unsupported=refuse_unsupported,
    )


# --- includes --------------------------------------------------------------------------------


class _IncludeCtx(NamedTuple):
    strict: bool
    env: Mapping[str, str] | None
    allow_unsafe: Collection[str]
    warnings: list[str] | None
    legacy: bool
    refuse_unsupported: bool = True


def _include_files(cfg: ClientConfig, source: str, base_dir: str) -> list[str]:
    """The files ``includes`` names: a glob in the file name, in a directory that must exist.

    A relative directory is looked for beside the config file; Go looks for it from the current
    directory, so when it is only there, that one is taken (a config written for Go loads)."""
    files: list[str] = []
    for i, pattern in enumerate(cfg.includes):
        pattern = os.path.expanduser(pattern)
        full = os.path.join(base_dir, pattern)
        folder, name = os.path.split(full)
        if not os.path.isdir(folder or ".") and not os.path.isabs(pattern):
            from_cwd = os.path.dirname(pattern)
            if os.path.isdir(from_cwd or "."):
                folder = from_cwd
        if not os.path.isdir(folder or "."):
            raise ConfigError(source, f"includes[{i}]", f"directory {folder!r} does not exist", pattern)
        for entry in sorted(os.listdir(folder or ".")):
            path = os.path.join(folder, entry)
            if fnmatch.fnmatchcase(entry, name) and os.path.isfile(path) and path not in files:
                files.append(path)
    return files


def _load_include(path: str, ctx: _IncludeCtx) -> ClientConfig:
    text = render_template(_read(path), path, ctx.env)
    origins = None
    if ctx.legacy:
        from . import ini

        conv = ini.include_from_ini(text, path)
        _report(conv.warnings, ctx.warnings)
        data, origins = conv.data, conv.origins
    else:
        data = parse_document(text, path)
        for key in data:
            if str(key).lower() not in ("proxies", "visitors"):
                raise ConfigError(
                    path, str(key), "an included file may only contain [[proxies]] and [[visitors]]"
                )
    cfg = decode_with_origins(ClientConfig, data, path, ctx.strict, origins)
    validate_with_origins(
        validate_client_config, cfg, path, ctx.allow_unsafe, origins, refuse_unsupported=ctx.refuse_unsupported
    )
    return cfg


def _add_includes(cfg: ClientConfig, source: str, base_dir: str, ctx: _IncludeCtx) -> None:
    """Append the proxies and visitors of every included file; a name defined twice is an error."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for kind, items in (("proxy", cfg.proxies), ("visitor", cfg.visitors)):
        for i, item in enumerate(items):
            seen[(kind, item.name)] = (source, f"{_KEYS[kind]}[{i}]")
    for path in _include_files(cfg, source, base_dir):
        inc = _load_include(path, ctx)
        _append_new(seen, "proxy", path, inc.proxies, cfg.proxies)
        _append_new(seen, "visitor", path, inc.visitors, cfg.visitors)


Item = TypeVar("Item", bound=ProxyBaseConfig | VisitorBaseConfig)


def _append_new(
    seen: dict[tuple[str, str], tuple[str, str]], kind: str, path: str, items: list[Item], target: list[Item]
) -> None:
    for i, item in enumerate(items):
        where = (path, f"{_KEYS[kind]}[{i}]")
        first = seen.setdefault((kind, item.name), where)
        if first != where:
            raise ConfigError(
                path,
                f"{where[1]}.name",
                f'duplicate {kind} name "{item.name}" (also defined in {first[0]} as {first[1]})',
                item.name,
            )
        target.append(item)


_KEYS = {"proxy": "proxies", "visitor": "visitors"}
