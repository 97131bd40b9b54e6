"""Go ``encoding/json`` (Go 1.24, what frp 0.65.0 is built with) as frps decodes a plugin's answer:
which answers it refuses, and the exact error text it logs for them.

* :func:`syntax_error`: Go's scanner (``checkValid``) run over the raw bytes: ``invalid character
  'x' looking for beginning of value``, ``unexpected end of JSON input``, ...
* :func:`loads`: the decoded JSON, objects as key/value lists (duplicates and order kept), numbers
  as their literal text; invalid UTF-8 in strings is no error (Go makes it U+FFFD).
* :func:`type_error`: the first (in document order) value that does not fit the Go type it is
  decoded into: ``json: cannot unmarshal string into Go struct field
  NewProxyContent.content.NewProxy.remote_port of type int``. Keys match case-insensitively,
  unknown keys and ``null`` values are ignored, as Go does.
* :func:`plain`: that JSON as ordinary Python values (a repeated key: the last one wins; lone
  surrogates become U+FFFD, as Go does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# -- the scanner ----------------------------------------------------------------------------------

_SPACE = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_MAX_DEPTH = 10000
_LITERALS = {b"t": b"rue", b"f": b"alse", b"n": b"ull"}
_LITERAL_NAME = {b"t": "true", b"f": "false", b"n": "null"}
_ESCAPES = frozenset(b'bfnrt\\/"')
_GO_QUOTE = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 0x5C: "\\\\"}


def _quote_char(c: int) -> str:
    """Go's ``quoteChar``: the byte as a rune, quoted like ``strconv.Quote`` but in single quotes."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    if c in _GO_QUOTE:
        return f"'{_GO_QUOTE[c]}'"
    ch = chr(c)
    if c < 0x80:
        return f"'{ch}'" if 0x20 <= c < 0x7F else f"'\\x{c:02x}'"
    return f"'{ch}'" if ch.isprintable() else f"'\\u{c:04x}'"


class _SyntaxError(Exception):
    pass


def _invalid(c: int, context: str) -> _SyntaxError:
    return _SyntaxError(f"invalid character {_quote_char(c)} {context}")


class _Scanner:
    """A port of Go's ``encoding/json`` scanner state machine (scanner.go)."""

    KEY, VALUE, ARRAY = 0, 1, 2

    def __init__(self) -> None:
        self.stack: list[int] = []
        self.state = self.begin_value
        self.end_top = False
        self.literal = b""  # the rest of true/false/null still expected
        self.literal_name = ""
        self.hex_left = 0

    def push(self, c: int, kind: int) -> None:
        self.stack.append(kind)
        if len(self.stack) > _MAX_DEPTH:
            raise _invalid(c, "exceeded max depth")

    def begin_value_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x5D:  # ]
            self.end_value(c)
            return
        self.begin_value(c)

    def begin_value(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x7B:  # {
            self.state = self.begin_string_or_empty
            self.push(c, self.KEY)
        elif c == 0x5B:  # [
            self.state = self.begin_value_or_empty
            self.push(c, self.ARRAY)
        elif c == 0x22:
            self.state = self.in_string
        elif c == 0x2D:  # -
            self.state = self.neg
        elif c == 0x30:
            self.state = self.zero
        elif c in _DIGITS:
            self.state = self.one
        elif bytes((c,)) in _LITERALS:
            first = bytes((c,))
            self.literal, self.literal_name = _LITERALS[first], _LITERAL_NAME[first]
            self.state = self.in_literal
        else:
            raise _invalid(c, "looking for beginning of value")

    def begin_string_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x7D:  # }
            self.stack[-1] = self.VALUE
            self.end_value(c)
            return
        self.begin_string(c)

    def begin_string(self, c: int) -> None:
        if c in _SPACE:
            return
        if c != 0x22:
            raise _invalid(c, "looking for beginning of object key string")
        self.state = self.in_string

    def end_value(self, c: int) -> None:
        if not self.stack:
            self.state = self.end_top_state
            self.end_top = True
            self.end_top_state(c)
            return
        if c in _SPACE:
            self.state = self.end_value
            return
        kind = self.stack[-1]
        if kind == self.KEY:
            if c != 0x3A:  # :
                raise _invalid(c, "after object key")
            self.stack[-1] = self.VALUE
            self.state = self.begin_value
        elif kind == self.VALUE:
            if c == 0x2C:  # ,
                self.stack[-1] = self.KEY
                self.state = self.begin_string
            elif c == 0x7D:
                self.pop()
            else:
                raise _invalid(c, "after object key:value pair")
        elif c == 0x2C:
            self.state = self.begin_value
        elif c == 0x5D:
            self.pop()
        else:
            raise _invalid(c, "after array element")

    def pop(self) -> None:
        self.stack.pop()
        if not self.stack:
            self.state = self.end_top_state
            self.end_top = True
        else:
            self.state = self.end_value

    def end_top_state(self, c: int) -> None:
        if c not in _SPACE:
            raise _invalid(c, "after top-level value")

    def in_string(self, c: int) -> None:
        if c == 0x22:
            self.state = self.end_value
        elif c == 0x5C:
            self.state = self.in_string_esc
        elif c < 0x20:
            raise _invalid(c, "in string literal")

    def in_string_esc(self, c: int) -> None:
        if c in _ESCAPES:
            self.state = self.in_string
        elif c == 0x75:  # u
            self.hex_left = 4
            self.state = self.in_string_esc_u
        else:
            raise _invalid(c, "in string escape code")

    def in_string_esc_u(self, c: int) -> None:
        if c not in _HEX:
            raise _invalid(c, "in \\u hexadecimal character escape")
        self.hex_left -= 1
        if not self.hex_left:
            self.state = self.in_string

    def neg(self, c: int) -> None:
        if c == 0x30:
            self.state = self.zero
        elif c in _DIGITS:
            self.state = self.one
        else:
            raise _invalid(c, "in numeric literal")

    def one(self, c: int) -> None:
        if c in _DIGITS:
            return
        self.zero(c)

    def zero(self, c: int) -> None:
        if c == 0x2E:  # .
            self.state = self.dot
        elif c in (0x65, 0x45):  # e E
            self.state = self.exp
        else:
            self.end_value(c)

    def dot(self, c: int) -> None:
        if c not in _DIGITS:
            raise _invalid(c, "after decimal point in numeric literal")
        self.state = self.dot0

    def dot0(self, c: int) -> None:
        if c in _DIGITS:
            return
        if c in (0x65, 0x45):
            self.state = self.exp
        else:
            self.end_value(c)

    def exp(self, c: int) -> None:
        if c in (0x2B, 0x2D):  # + -
            self.state = self.exp_sign
            return
        self.exp_sign(c)

    def exp_sign(self, c: int) -> None:
        if c not in _DIGITS:
            raise _invalid(c, "in exponent of numeric literal")
        self.state = self.exp0

    def exp0(self, c: int) -> None:
        if c not in _DIGITS:
            self.end_value(c)

    def in_literal(self, c: int) -> None:
        expected = self.literal[0]
        if c != expected:
            raise _invalid(c, f"in literal {self.literal_name} (expecting {_quote_char(expected)})")
        self.literal = self.literal[1:]
        if not self.literal:
            self.state = self.end_value


def syntax_error(data: bytes) -> str | None:
    """Go's ``checkValid``: the text of the syntax error in ``data``, None if it is valid JSON.
    Pure Python, one byte at a time: call it only for data a JSON parser refused."""
    scanner = _Scanner()
    try:
        for c in data:
            scanner.state(c)
        if not scanner.end_top:
            scanner.state(0x20)  # Go's eof(): a space completes a number or reports a cut literal
            if not scanner.end_top:
                return "unexpected end of JSON input"
    except _SyntaxError as exc:
        return str(exc)
    return None


# -- decoding -------------------------------------------------------------------------------------


class Pairs(list[tuple[str, object]]):
    """A JSON object: its (key, value) pairs in document order."""


class Number(str):
    """A JSON number: its literal text."""


_SCAN_LIMIT = 1 << 16  # answers longer than this that are not JSON get Python's text, not Go's
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes) -> object:
    """Decode ``data``, or raise ``ValueError`` with Go's syntax error text. Strings may hold lone
    surrogates still (:func:`plain` replaces them)."""
    text = data.decode("utf-8", "replace")  # Go: invalid UTF-8 in strings becomes U+FFFD (elsewhere: a syntax error)
    try:
        return json.loads(text, object_pairs_hook=Pairs, parse_int=Number, parse_float=Number,
                          parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        if len(data) > _SCAN_LIMIT:  # the byte-by-byte scanner would hold the event loop too long
            raise ValueError(f"invalid JSON: {exc}") from None
        raise ValueError(syntax_error(data) or "exceeded max depth") from None


def _string(value: str) -> str:
    return _SURROGATE.sub("\ufffd", value)  # Go: a lone surrogate escape becomes U+FFFD


def plain(value: object) -> object:
    """``value`` from :func:`loads` as plain Python values (dicts, ints, floats, valid strings)."""
    if isinstance(value, Pairs):
        return {_string(k): plain(v) for k, v in value}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Number):
        try:
            return int(value)
        except ValueError:
            return float(value)
    if isinstance(value, str):
        return _string(value)
    return value


# -- Go types -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoType:
    """A Go type as the decoder sees it: ``kind`` is ``string``, ``bool``, ``int``, ``map`` (of
    ``elem``), ``slice`` (of ``elem``) or ``struct`` (``fields``); ``name`` is Go's
    ``reflect.Type.String()``."""

    name: str
    kind: str
    elem: GoType | None = None
    fields: tuple[GoField, ...] = ()

    @property
    def short(self) -> str:
        """``reflect.Type.Name()``: the name without its package."""
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class GoField:
    json: str  # the JSON key
    type: GoType
    via: tuple[str, ...] = field(default=())  # the embedded structs it is promoted from


STRING = GoType("string", "string")
BOOL = GoType("bool", "bool")
INT = GoType("int", "int")
INT64 = GoType("int64", "int")
STRING_MAP = GoType("map[string]string", "map", STRING)
STRING_SLICE = GoType("[]string", "slice", STRING)


def struct(name: str, *fields: GoField) -> GoType:
    return GoType(name, "struct", fields=fields)


def embed(via: str, t: GoType) -> tuple[GoField, ...]:
    """``t``'s fields promoted through the embedded field ``via``."""
    return tuple(GoField(f.json, f.type, (via, *f.via)) for f in t.fields)


_GO_FOLD = str.maketrans({"\u0130": "I", "\u0131": "I", "\u017f": "S", "\u212a": "K"})


def _fold(key: str) -> str:
    return key.translate(_GO_FOLD).upper()


def _kind(value: object) -> str:
    """What Go calls a JSON value in an UnmarshalTypeError."""
    if isinstance(value, Pairs):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Number):
        return "number"
    return "string"


_INT64 = (-(1 << 63), (1 << 63) - 1)


class _TypeError(Exception):
    pass


def type_error(value: object, t: GoType) -> str | None:
    """The text of Go's first ``UnmarshalTypeError`` decoding ``value`` (from :func:`loads`) into
    ``t``, or None."""
    try:
        _walk(value, t, "", ())
    except _TypeError as exc:
        return str(exc)
    return None


def _fail(what: str, t: GoType, struct_name: str, path: tuple[str, ...]) -> _TypeError:
    if struct_name or path:
        return _TypeError(f"json: cannot unmarshal {what} into Go struct field {struct_name}.{'.'.join(path)} "
                          f"of type {t.name}")
    return _TypeError(f"json: cannot unmarshal {what} into Go value of type {t.name}")


def _walk(value: object, t: GoType, struct_name: str, path: tuple[str, ...]) -> None:
    if value is None:
        return  # null: a no-op for values, nil for maps and slices; never an error
    kind = t.kind
    if kind == "struct":
        if not isinstance(value, Pairs):
            raise _fail(_kind(value), t, struct_name, path)
        exact = {f.json: f for f in t.fields}
        folded: dict[str, GoField] = {}
        for one in t.fields:
            folded.setdefault(_fold(one.json), one)
        for key, v in value:
            f = exact.get(key) or folded.get(_fold(key))
            if f is not None:
                _walk(v, f.type, t.short, (*path, *f.via, f.json))
    elif kind == "map":
        if not isinstance(value, Pairs):
            raise _fail(_kind(value), t, struct_name, path)
        assert t.elem is not None
        for _key, v in value:
            _walk(v, t.elem, struct_name, path)
    elif kind == "slice":
        if not isinstance(value, list) or isinstance(value, Pairs):
            raise _fail(_kind(value), t, struct_name, path)
        assert t.elem is not None
        for v in value:
            _walk(v, t.elem, struct_name, path)
    elif kind == "int":
        if not isinstance(value, Number):
            raise _fail(_kind(value), t, struct_name, path)
        try:
            n = int(value, 10)
        except ValueError:
            n = None
        if n is None or not _INT64[0] <= n <= _INT64[1]:
            raise _fail(f"number {value}", t, struct_name, path)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _fail(_kind(value), t, struct_name, path)
    elif not isinstance(value, str) or isinstance(value, Number):  # string
        raise _fail(_kind(value), t, struct_name, path)
