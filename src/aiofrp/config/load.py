"""Reading config files: render, detect the format, parse, decode, validate.

The pipeline mirrors Go frp's ``pkg/config/load.go``:

1. :func:`render_template` (Go ``text/template``; a later step fills it in),
2. legacy INI detection (a ``[common]`` section; converted by a later ``ini`` module),
3. :func:`parse_document`: TOML first, then JSON (text starting with ``{``) or YAML,
4. :func:`~aiofrp.config.decode.from_data`: case-insensitive keys, strict, typed,
5. :mod:`~aiofrp.config.validate`: cross-field checks.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from typing import Any

from .client import ClientConfig
from .decode import from_data
from .errors import ConfigError, type_name
from .server import ServerConfig
from .validate import validate_client_config, validate_server_config

_INI_COMMON = re.compile(r"^[ \t]*\[[ \t]*common[ \t]*\][ \t]*(?:[#;].*)?$", re.MULTILINE)


def _format_hint(source: str) -> str:
    ext = os.path.splitext(source)[1].lower()
    return {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(ext, "")


def render_template(text: str, source: str) -> str:
    """Render Go ``text/template`` syntax (``{{ .Envs.NAME }}``, ``parseNumberRangePair``, ...).

    Not implemented yet: text without ``{{`` is returned as is; text with it is refused rather
    than misread.
    """
    if "{{" in text:
        line = text.count("\n", 0, text.index("{{")) + 1
        raise ConfigError(source, "", f"line {line}: Go template syntax ({{{{ ... }}}}) is not supported yet")
    return text


def is_legacy_ini(text: str, source: str) -> bool:
    """Whether Go frp would read this file as a legacy INI config (it has a ``[common]`` section)."""
    return _format_hint(source) == "" and _INI_COMMON.search(text) is not None


def _legacy_ini(text: str, source: str, role: str) -> dict[str, Any]:
    """Convert a legacy INI config to v1 data (the future home of ``ini.py``'s mapping)."""
    raise ConfigError(
        source,
        "",
        f"legacy INI {role} configs ([common] section) are not supported yet; "
        "please convert the file to TOML",
    )


def _load_yaml(text: str) -> Any:
    try:
        import yaml  # lazily: only YAML configs need it
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError("reading YAML needs the PyYAML package") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(str(e).replace("\n", " ")) from None


def parse_document(text: str, source: str) -> dict[str, Any]:
    """Parse config text into plain data, detecting TOML, JSON or YAML by content.

    TOML is tried first; a ``.toml`` file that is not valid TOML is an error at that point.
    Otherwise a ``.json`` file or text starting with ``{`` is JSON and anything else YAML (top-level YAML keys
    starting with ``.`` are dropped, as frp does, so they can hold anchors).
    """
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


def parse_server_config(text: str, source: str = "<string>", *, strict: bool = True) -> ServerConfig:
    """Parse frps config text; ``source`` names it in errors (its extension is a format hint)."""
    text = render_template(text, source)
    if is_legacy_ini(text, source):
        data = _legacy_ini(text, source, "frps")
    else:
        data = parse_document(text, source)
    cfg: ServerConfig = from_data(ServerConfig, data, source, strict=strict)
    validate_server_config(cfg, source)
    return cfg


def parse_client_config(text: str, source: str = "<string>", *, strict: bool = True) -> ClientConfig:
    """Parse frpc config text; ``source`` names it in errors (its extension is a format hint)."""
    text = render_template(text, source)
    if is_legacy_ini(text, source):
        data = _legacy_ini(text, source, "frpc")
    else:
        data = parse_document(text, source)
    cfg: ClientConfig = from_data(ClientConfig, data, source, strict=strict)
    validate_client_config(cfg, source)
    return cfg


def load_server_config(path: str, *, strict: bool = True) -> ServerConfig:
    """Read and parse an frps config file (any of TOML, JSON, YAML; extension optional)."""
    return parse_server_config(_read(path), path, strict=strict)


def load_client_config(path: str, *, strict: bool = True) -> ClientConfig:
    """Read and parse an frpc config file (``includes`` are not followed yet)."""
    return parse_client_config(_read(path), path, strict=strict)
