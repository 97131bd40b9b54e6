"""Turn parsed TOML/JSON/YAML data into config structs, the way Go's ``encoding/json`` would.

Keys match case-insensitively; in strict mode an unknown key is an error (with a suggestion);
values are type-checked without coercion (a string is never an int); ``null`` leaves the default;
``[[proxies]]``/``[[visitors]]``/``plugin`` tables become the struct their ``type`` selects.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar, overload

import msgspec

from .base import ConfigStruct, TaggedStruct, struct_fields, type_tag
from .errors import ConfigError, show_value, type_name

S = TypeVar("S", bound=ConfigStruct)


class _Ctx:
    __slots__ = ("source", "strict")

    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict

    def fail(self, path: str, reason: str, value: object = None) -> ConfigError:
        return ConfigError(self.source, path, reason, value)


def join(path: str, key: str) -> str:
    """Extend a key path (``proxies[1]`` + ``transport`` -> ``proxies[1].transport``)."""
    return f"{path}.{key}" if path else key


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest of ``choices`` to ``word`` (case-insensitive), or None."""
    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(c.lower(), c)
    for c_lower, c in by_lower.items():
        if _norm(c_lower) == _norm(word):
            return c
    import difflib  # lazily: only a misspelt key needs it

    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[match[0]] if match else None


_INDEX: dict[type, dict[str, msgspec.structs.FieldInfo]] = {}


def field_index(cls: type) -> dict[str, msgspec.structs.FieldInfo]:
    """Lower-cased frp key -> field, for one struct class."""
    try:
        return _INDEX[cls]
    except KeyError:
        idx = {f.encode_name.lower(): f for f in struct_fields(cls)}
        _INDEX[cls] = idx
        return idx


def _struct_of(tp: Any) -> type | None:
    """The config struct class inside a field type (``X`` or ``X | None``), if any."""
    if isinstance(tp, type) and issubclass(tp, ConfigStruct):
        return tp
    if _is_union(tp):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _struct_of(members[0])
    return None


def _suggest_key(key: str, cls: type) -> str | None:
    """Suggest the key meant: a misspelling here, or the same key one or two tables down."""
    own = [f.encode_name for f in struct_fields(cls)]
    want = _norm(key)
    for name in own:
        if _norm(name) == want:
            return name
    level = [("", cls)]
    for _ in range(2):
        nxt = []
        for prefix, klass in level:
            for f in struct_fields(klass):
                sub = _struct_of(f.type)
                if sub is None:
                    continue
                sub_prefix = join(prefix, f.encode_name)
                for g in struct_fields(sub):
                    if _norm(g.encode_name) == want:
                        return join(sub_prefix, g.encode_name)
                nxt.append((sub_prefix, sub))
        level = nxt
    return did_you_mean(key, own)


def _is_union(tp: Any) -> bool:
    return isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union


def _one_of(values: Iterable[str]) -> str:
    return ", ".join(v if v else '""' for v in values)


def decode_struct(raw: object, cls: type[S], path: str, ctx: _Ctx) -> S:
    """Build ``cls`` from a parsed table."""
    if not isinstance(raw, dict):
        raise ctx.fail(path, f"expected a table, got {type_name(raw)} {show_value(raw)}", raw)
    index = field_index(cls)
    tagged = issubclass(cls, TaggedStruct)
    kwargs: dict[str, object] = {}
    seen: dict[str, str] = {}
    for key, value in raw.items():
        key = str(key)
        f = index.get(key.lower())
        if f is None:
            if tagged and key.lower() == cls.__struct_config__.tag_field:
                continue
            if ctx.strict:
                hint = _suggest_key(key, cls)
                reason = f'unknown field "{key}"' + (f', did you mean "{hint}"?' if hint else "")
                raise ctx.fail(join(path, key), reason)
            continue
        if f.name in seen:
            raise ctx.fail(join(path, key), f'duplicate key "{key}" (also given as "{seen[f.name]}")', value)
        seen[f.name] = key
        if value is None:
            continue  # Go: null leaves the field at its default
        if value == "" and isinstance(f.default, str) and f.default:
            continue  # Go: "" means "use the default" for these keys
        kwargs[f.name] = decode_value(value, f.type, join(path, f.encode_name), ctx)
    return cls(**kwargs)


def _decode_tagged(raw: object, members: list[type[TaggedStruct]], path: str, ctx: _Ctx) -> TaggedStruct:
    if not isinstance(raw, dict):
        raise ctx.fail(path, f"expected a table, got {type_name(raw)} {show_value(raw)}", raw)
    kind = members[0].KIND
    by_tag = {type_tag(m): m for m in members}
    tag_field = members[0].__struct_config__.tag_field
    tag: object = None
    for key, value in raw.items():
        if str(key).lower() == tag_field:
            tag = value
    if tag is None or tag == "":
        raise ctx.fail(join(path, "type"), f"{kind} type is required (one of {_one_of(by_tag)})")
    if not isinstance(tag, str):
        raise ctx.fail(join(path, "type"), f"expected a string, got {type_name(tag)} {show_value(tag)}", tag)
    cls = by_tag.get(tag)
    if cls is None:
        hint = did_you_mean(tag, by_tag, cutoff=0.75)
        extra = f', did you mean "{hint}"?' if hint else f" (one of {_one_of(by_tag)})"
        raise ctx.fail(join(path, "type"), f"unknown {kind} type: {tag}{extra}", tag)
    return decode_struct(raw, cls, path, ctx)


def _check_int_bounds(value: int, meta: list[msgspec.Meta], path: str, ctx: _Ctx) -> None:
    for m in meta:
        lo, hi = m.ge, m.le
        if lo is not None and hi is not None and not lo <= value <= hi:
            raise ctx.fail(path, f"port number {value} must be in the range {lo}..{hi}", value)
        if lo is None and hi is not None and value > hi:
            raise ctx.fail(path, f"port number {value} must not be greater than {hi}", value)


def decode_value(raw: object, tp: Any, path: str, ctx: _Ctx) -> object:
    """Check and convert one value against a field type."""
    meta: list[msgspec.Meta] = []
    while typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp = args[0]
        meta.extend(a for a in args[1:] if isinstance(a, msgspec.Meta))
    origin = typing.get_origin(tp)

    if tp is bool:
        if not isinstance(raw, bool):
            raise _bad(raw, "true or false", path, ctx)
        return raw
    if tp is int:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _bad(raw, "an integer", path, ctx)
        _check_int_bounds(raw, meta, path, ctx)
        return raw
    if tp is str:
        if not isinstance(raw, str):
            raise _bad(raw, "a string", path, ctx)
        return raw
    if origin is typing.Literal:
        values = typing.get_args(tp)
        if not isinstance(raw, str):
            raise _bad(raw, "a string", path, ctx)
        if raw not in values:
            hint = did_you_mean(raw, [v for v in values if v], cutoff=0.75) if raw else None
            reason = f"invalid value {show_value(raw)}, must be one of {_one_of(values)}"
            raise ctx.fail(path, reason + (f' (did you mean "{hint}"?)' if hint else ""), raw)
        return raw
    if origin is list:
        if not isinstance(raw, list):
            raise _bad(raw, "an array", path, ctx)
        (item_tp,) = typing.get_args(tp)
        return [decode_value(v, item_tp, f"{path}[{i}]", ctx) for i, v in enumerate(raw)]
    if origin is dict:
        if not isinstance(raw, dict):
            raise _bad(raw, "a table", path, ctx)
        _, val_tp = typing.get_args(tp)
        out = {}
        for k, v in raw.items():
            if v is None:
                raise _bad(v, _expected_word(val_tp), join(path, str(k)), ctx)
            out[str(k)] = decode_value(v, val_tp, join(path, str(k)), ctx)
        return out
    if _is_union(tp):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if all(isinstance(m, type) and issubclass(m, TaggedStruct) for m in members):
            return _decode_tagged(raw, members, path, ctx)
        if len(members) == 1:
            return decode_value(raw, members[0], path, ctx)
    if isinstance(tp, type) and issubclass(tp, ConfigStruct):
        return decode_struct(raw, tp, path, ctx)
    raise TypeError(f"config field type not supported by the decoder: {tp!r}")  # pragma: no cover


def _expected_word(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", str: "a string"}.get(tp, "a value")


def _bad(raw: object, expected: str, path: str, ctx: _Ctx) -> ConfigError:
    return ctx.fail(path, f"expected {expected}, got {type_name(raw)} {show_value(raw)}", raw)


@overload
def from_data(cls: type[S], data: object, source: str = ..., *, strict: bool = ...) -> S: ...
@overload
def from_data(cls: types.UnionType, data: object, source: str = ..., *, strict: bool = ...) -> object: ...
def from_data(cls: type[S] | types.UnionType, data: object, source: str = "<data>", *, strict: bool = True) -> object:
    """Build config struct ``cls`` (or a union of tagged structs) from parsed data.

    Only the decoding step: no cross-field validation (see :mod:`aiofrp.config.validate`).
    """
    ctx = _Ctx(source, strict)
    if isinstance(cls, type):
        return decode_struct(data, cls, "", ctx)
    return decode_value(data, cls, "", ctx)
