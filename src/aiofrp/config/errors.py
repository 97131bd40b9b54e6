"""The config layer's exception."""

from __future__ import annotations

import json

_NO_VALUE = object()


class ConfigError(Exception):
    """A config file that cannot be used: says which file, which key, what value and why.

    ``str(err)`` reads ``<source>: <path>: <reason>`` (the path is left out for file-level
    problems such as a syntax error), e.g.
    ``frpc.toml: proxies[1].transport.useEncryptoin: unknown field "useEncryptoin",
    did you mean "useEncryption"?``.
    """

    def __init__(self, source: str, path: str, reason: str, value: object = _NO_VALUE) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        self.value: object = None if value is _NO_VALUE else value
        parts = [p for p in (source, path) if p]
        super().__init__(": ".join([*parts, reason]))


def show_value(value: object) -> str:
    """Render a config value for an error message, JSON-style (`"abc"`, `70000`, `true`)."""
    if isinstance(value, dict):
        return "a table"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def type_name(value: object) -> str:
    """Name a parsed value's kind the way a config author thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__
