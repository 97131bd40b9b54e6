"""Keyword arguments -> config structs, through the same decoder and checks as a config file.

``aiofrp.Client(server_addr="...", transport={"tls": {"enable": False}})`` names frp's keys in
snake_case (``server_addr`` for ``serverAddr``; frp's own spelling is accepted too); the options
are turned into frp's document and decoded and validated like a file (``frpc verify``), so a bad
option is a :class:`~aiofrp.api.errors.ConfigError` naming it as the caller spelled it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import msgspec

from ..config import ClientConfig, ProxyBaseConfig, ServerConfig, VisitorBaseConfig
from ..config.decode import _struct_of, from_data, join
from ..config.errors import ConfigError as _ConfigFileError
from ..config.plugin import CLIENT_PLUGIN_TYPES
from ..config.proxy import PROXY_TYPES
from ..config.token_source import resolve_auth_token
from ..config.validate import validate_client_config, validate_server_config
from ..config.visitor import VISITOR_TYPES
from .errors import ConfigError

C = TypeVar("C", ClientConfig, ServerConfig)

_FIELDS: dict[type, dict[str, msgspec.structs.FieldInfo]] = {}


def _fields(cls: type) -> dict[str, msgspec.structs.FieldInfo]:
    """snake_case attribute name and frp key -> field."""
    try:
        return _FIELDS[cls]
    except KeyError:
        out: dict[str, msgspec.structs.FieldInfo] = {}
        for f in msgspec.structs.fields(cls):
            out[f.name] = f
            out.setdefault(f.encode_name, f)
        _FIELDS[cls] = out
        return out


def to_frp(options: Mapping[str, Any], cls: type, path: str, user_path: str, names: dict[str, str]) -> dict[str, Any]:
    """``options`` with frp's key spelling for struct ``cls`` (nested tables too); ``names`` gets
    frp key path -> the caller's spelling, for error messages. Unknown keys are kept as given:
    the decoder refuses them, naming them."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        f = _fields(cls).get(key)
        if f is None:
            out[key] = value
            continue
        frp_path, mine = join(path, f.encode_name), join(user_path, key)
        names[frp_path] = mine
        sub = _struct_of(f.type)
        if sub is not None and isinstance(value, Mapping):
            value = to_frp(value, sub, frp_path, mine, names)
        elif f.name == "plugin" and isinstance(value, Mapping):
            value = _plugin(value, frp_path, mine, names)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.encode_name] = value
    return out


def _plugin(value: Mapping[str, Any], path: str, user_path: str, names: dict[str, str]) -> dict[str, Any]:
    pcls = CLIENT_PLUGIN_TYPES.get(str(value.get("type", "")))
    return dict(value) if pcls is None else to_frp(value, pcls, path, user_path, names)


def relabel(exc: _ConfigFileError, names: Mapping[str, str]) -> ConfigError:
    """The API's error for ``exc``, its key path in the caller's spelling."""
    path = exc.path
    for cut in sorted((k for k in names if path == k or path.startswith((k + ".", k + "["))), key=len, reverse=True):
        path = (names[cut] + path[len(cut):]).lstrip(".")
        break
    return ConfigError(exc.source, path, exc.reason, exc.value)


def client_config(options: Mapping[str, Any], source: str, *, strict: bool = True,
                  allow_unsafe: Collection[str] = frozenset()) -> ClientConfig:
    """A :class:`ClientConfig` from keyword options (``token`` is short for ``auth={"token": ...}``)."""
    return _config(ClientConfig, validate_client_config, options, source, strict, allow_unsafe)


def server_config(options: Mapping[str, Any], source: str, *, strict: bool = True,
                  allow_unsafe: Collection[str] = frozenset()) -> ServerConfig:
    """A :class:`ServerConfig` from keyword options (``token`` is short for ``auth={"token": ...}``)."""
    return _config(ServerConfig, validate_server_config, options, source, strict, allow_unsafe)


def _config(cls: type[C], validate: Callable[..., None], options: Mapping[str, Any], source: str,
            strict: bool, allow_unsafe: Collection[str]) -> C:
    """Decode, validate and resolve ``auth.tokenSource`` as ``verify`` does; errors name the
    options as the caller spelt them."""
    opts = dict(options)
    names: dict[str, str] = {}
    if "token" in opts:
        auth = dict(opts.get("auth") or {})
        auth["token"] = opts.pop("token")
        opts["auth"] = auth
        names["auth.token"] = "token"
    data = to_frp(opts, cls, "", "", names)
    try:
        cfg = from_data(cls, data, source, strict=strict)
        validate(cfg, source, allow_unsafe=allow_unsafe)
        resolve_auth_token(cfg.auth, source, allow_unsafe=allow_unsafe)
    except _ConfigFileError as exc:
        raise relabel(exc, names) from None
    return cfg


def proxy_config(options: Mapping[str, Any], source: str, *, strict: bool = True) -> ProxyBaseConfig:
    """One proxy from keyword options, checked like a ``[[proxies]]`` table of a file. With
    ``plugin="static_file"`` (a name, not a table) the options the proxy type has no key for are
    the plugin's (``local_path=...``)."""
    opts = dict(options)
    names: dict[str, str] = {}
    ptype = str(opts.get("type", "tcp"))
    pcls = PROXY_TYPES.get(ptype)
    plugin = opts.get("plugin")
    if pcls is not None and isinstance(plugin, str):
        fields = _fields(pcls)
        plugin_opts = {k: opts.pop(k) for k in list(opts) if k not in fields and k != "type"}
        opts["plugin"] = {"type": plugin, **plugin_opts}
    data = to_frp(opts, pcls or ProxyBaseConfig, "", "", names)
    for k, v in list(names.items()):  # the error paths of a file's proxy: proxies[0].KEY
        names[f"proxies[0].{k}"] = v
    names["proxies[0]"] = ""
    try:
        cfg = from_data(ClientConfig, {"proxies": [data]}, source, strict=strict)
        validate_client_config(cfg, source)
    except _ConfigFileError as exc:
        raise relabel(exc, names) from None
    return cfg.proxies[0]


def visitor_config(options: Mapping[str, Any], source: str, *, strict: bool = True) -> VisitorBaseConfig:
    """One visitor from keyword options, checked like a ``[[visitors]]`` table of a file."""
    names: dict[str, str] = {}
    vcls = VISITOR_TYPES.get(str(options.get("type", "stcp")))
    data = to_frp(options, vcls or VisitorBaseConfig, "", "", names)
    for k, v in list(names.items()):
        names[f"visitors[0].{k}"] = v
    names["visitors[0]"] = ""
    try:
        cfg = from_data(ClientConfig, {"visitors": [data]}, source, strict=strict)
        validate_client_config(cfg, source)
    except _ConfigFileError as exc:
        raise relabel(exc, names) from None
    return cfg.visitors[0]


def apply_log_settings(cfg: ClientConfig | ServerConfig, source: str) -> None:
    """A config's ``log`` table, when it sets anything, configures the ``aiofrp`` loggers as the
    commands do (frp's line format, ``log.to`` file or console, ``log.level``); without one the
    application's own logging setup is left alone."""
    from ..config.base import LogConfig
    from ..log import LogFileError, setup_logging

    if cfg.log == LogConfig():
        return
    try:
        setup_logging(cfg)
    except LogFileError as exc:
        raise ConfigError(source, "log.to", str(exc), cfg.log.to) from None
