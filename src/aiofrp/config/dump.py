"""Config structs back to frp-spelt data (for the converter, the admin API, ``verify`` output)."""

from __future__ import annotations

from typing import Any

import msgspec

from .base import ConfigStruct, TaggedStruct, struct_fields
from .proxy import ProxyBaseConfig
from .visitor import VisitorBaseConfig

_SKIP = object()


def to_frp_dict(cfg: ConfigStruct) -> dict[str, Any]:
    """Only the keys that differ from frp's defaults, spelt as frp spells them.

    Exception: the attributes a struct names in ``ALWAYS_WRITTEN`` (keys Go frp requires although
    aiofrp has a default for them, such as a tcpmux proxy's ``multiplexer``).

    Nested tables appear only when they hold something; ``[[proxies]]``/``[[visitors]]`` entries
    always carry ``name`` and ``type``. Parsing the result gives back an equal struct.
    """
    out: dict[str, Any] = {}
    if isinstance(cfg, TaggedStruct):
        if isinstance(cfg, ProxyBaseConfig | VisitorBaseConfig):
            out["name"] = cfg.name
        out["type"] = cfg.type
    derived = cfg.derived_defaults()
    always = getattr(cfg, "ALWAYS_WRITTEN", ())
    for f in struct_fields(type(cfg)):
        if f.encode_name in out:
            continue
        if f.name in always:
            out[f.encode_name] = getattr(cfg, f.name)
            continue
        if f.name in derived:
            default = derived[f.name]
        elif f.default_factory is not msgspec.NODEFAULT:
            default = f.default_factory()
        else:
            default = f.default
        dumped = _dump(getattr(cfg, f.name), default)
        if dumped is not _SKIP:
            out[f.encode_name] = dumped
    return out


def _dump(value: object, default: object) -> object:
    if isinstance(value, ConfigStruct):
        sub = to_frp_dict(value)
        if not sub and default is not None:
            return _SKIP
        return sub
    if value == default:
        return _SKIP
    if isinstance(value, list):
        return [to_frp_dict(v) if isinstance(v, ConfigStruct) else v for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value
