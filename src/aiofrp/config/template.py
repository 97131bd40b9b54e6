"""The subset of Go ``text/template`` that frp config files use, rendered on the raw file text.

Supported: ``{{ .Envs.NAME }}`` (environment variable; empty when unset), variables (``$v``,
``$v.First``, ``$``), ``{{ range [$i,] $v := PIPELINE }} ... {{ else }} ... {{ end }}`` (lists,
maps, ints; nested), ``{{ $x := ... }}``, the functions ``parseNumberRange`` and
``parseNumberRangePair``, string/number/bool literals, parentheses, comments ``{{/* */}}`` and the
trim markers ``{{-`` / ``-}}``. Anything else (``if``, ``with``, pipes, other functions) is an
error naming the line, as are unknown fields and wrong arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

_SPACE = " \t\r\n"
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:\\.|[^"\\\n])*")
    | (?P<raw>`[^`]*`)
    | (?P<op>:=|=|,|\(|\)|\|)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<num>[-+]?\d+)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"if", "with", "define", "template", "block", "break", "continue"}


class TemplateError(Exception):
    """A template problem at ``line`` (converted to :class:`ConfigError` by the loader)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class NumberPair(NamedTuple):
    """One element of ``parseNumberRangePair``: ``.First`` and ``.Second``."""

    First: int
    Second: int


MAX_RANGE_NUMBERS = 65536
"""A number range lists ports: more numbers than there are ports is a mistake (and would take
minutes and gigabytes to expand), so it is an error."""

MAX_ITERATIONS = 1_000_000
"""``range`` bodies run at most this often in one rendering, nested loops counted together: a config
of 10,000 proxies needs 10,000; three nested port ranges multiply to billions (Go renders them for
minutes; we refuse)."""

MAX_OUTPUT = 16 << 20
"""Characters one rendering may produce (10,000 proxies of five keys each are about 1 MB)."""


def parse_number_range(text: str) -> list[int]:
    """frp's ``"1000-1002,1005"`` -> ``[1000, 1001, 1002, 1005]`` (ValueError when malformed)."""
    out: list[int] = []
    for part in text.strip().split(","):
        bounds = part.split("-")
        try:
            nums = [int(b.strip()) for b in bounds]
        except ValueError:
            raise ValueError(f"range number is invalid: {part!r}") from None
        if len(nums) == 1:
            out.append(nums[0])
        elif len(nums) == 2 and nums[0] <= nums[1]:
            if len(out) + nums[1] - nums[0] + 1 > MAX_RANGE_NUMBERS:
                raise ValueError(f"range {text.strip()!r} has more than {MAX_RANGE_NUMBERS} numbers")
            out.extend(range(nums[0], nums[1] + 1))
        else:
            raise ValueError(f"range number is invalid: {part!r}")
        if len(out) > MAX_RANGE_NUMBERS:
            raise ValueError(f"range {text.strip()!r} has more than {MAX_RANGE_NUMBERS} numbers")
    return out


def parse_number_range_pair(first: str, second: str) -> list[NumberPair]:
    """Pair up two frp number ranges of the same length."""
    a, b = parse_number_range(first), parse_number_range(second)
    if len(a) != len(b):
        raise ValueError(f"first and second range numbers are not in pairs ({len(a)} and {len(b)} numbers)")
    return [NumberPair(x, y) for x, y in zip(a, b, strict=True)]


FUNCS: dict[str, tuple[int, Callable[..., Any]]] = {
    "parseNumberRange": (1, parse_number_range),
    "parseNumberRangePair": (2, parse_number_range_pair),
}


# --- syntax tree -----------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str
    text: str


@dataclass
class _Action:
    line: int
    toks: list[_Tok]


@dataclass
class _Range:
    line: int
    names: list[str]
    expr: list[_Tok]
    body: list[_Node] = field(default_factory=list)
    else_body: list[_Node] | None = None


_Node = str | _Action | _Range
"""A template node: literal text, an action (``{{ ... }}``) or a range block."""


def _lex_action(body: str, line: int) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    body = body.rstrip(_SPACE)
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            bad = body[pos:].strip().split()[0] if body[pos:].strip() else body[pos:]
            raise TemplateError(line + body.count("\n", 0, pos), f"unexpected {bad!r} in action")
        kind = m.lastgroup or ""
        toks.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return toks


def _split(text: str) -> list[str | _Action]:
    """Text and actions, with trim markers applied and comments dropped."""
    out: list[str | _Action] = []
    pos, line, counted = 0, 1, 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(text[pos:])
            return out
        line += text.count("\n", counted, start)
        counted = start
        inner = start + 2
        chunk = text[pos:start]
        if text.startswith("-", inner) and text[inner + 1 : inner + 2] in tuple(_SPACE):
            chunk = chunk.rstrip(_SPACE)
            inner += 2
        out.append(chunk)
        end = _find_close(text, inner, line)
        body = text[inner:end]
        pos = end + 2
        if body.endswith("-") and body[-2:-1] in tuple(_SPACE):
            body = body[:-1]
            while pos < len(text) and text[pos] in _SPACE:
                pos += 1
        stripped = body.strip(_SPACE)
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError(line, "unclosed comment")
            continue
        out.append(_Action(line, _lex_action(body, line)))


def _find_close(text: str, i: int, line: int) -> int:
    quote = ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in '"`':
            quote = c
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise TemplateError(line, "unclosed comment")
            i = j + 1
        elif text.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(line, 'unclosed action (missing "}}")')


def parse(text: str) -> list[_Node]:
    """Parse template text into a list of text / action / range nodes."""
    root: list[_Node] = []
    stack: list[tuple[list[_Node], _Range | None]] = [(root, None)]
    for item in _split(text):
        body = stack[-1][0]
        if isinstance(item, str):
            if item:
                body.append(item)
            continue
        toks, line = item.toks, item.line
        if not toks:
            raise TemplateError(line, "missing value for command")
        head = toks[0].text if toks[0].kind == "ident" else ""
        if head in _KEYWORDS:
            raise TemplateError(line, f'the "{head}" action is not supported in frp config templates')
        for t in toks[1:] if head in ("range", "end", "else") else toks:
            if t.kind == "ident" and t.text not in FUNCS and t.text not in ("true", "false", "nil"):
                raise TemplateError(line, f'function "{t.text}" not defined')
        if head == "range":
            node = _parse_range(toks[1:], line)
            body.append(node)
            stack.append((node.body, node))
        elif head in ("end", "else"):
            current = stack[-1][1]
            if current is None:
                raise TemplateError(line, f"unexpected {{{{{head}}}}}")
            if len(toks) > 1:
                raise TemplateError(line, f"unexpected {toks[1].text!r} in {head}")
            if head == "end":
                stack.pop()
            elif current.else_body is not None:
                raise TemplateError(line, "more than one {{else}} in range")
            else:
                current.else_body = []
                stack[-1] = (current.else_body, current)
        else:
            body.append(item)
    open_range = stack[-1][1]  # None only for the top level
    if open_range is not None:
        raise TemplateError(open_range.line, "unexpected EOF: range has no {{end}}")
    return root


def _parse_range(toks: list[_Tok], line: int) -> _Range:
    names: list[str] = []
    if any(t.text == ":=" for t in toks):
        i = 0
        while True:
            if i >= len(toks) or toks[i].kind != "var" or "." in toks[i].text:
                raise TemplateError(line, "range can only declare $variables before :=")
            names.append(toks[i].text)
            i += 1
            if toks[i].text == ":=":
                break
            if toks[i].text != ",":
                raise TemplateError(line, f"unexpected {toks[i].text!r} in range")
            i += 1
        if len(names) > 2:
            raise TemplateError(line, "too many declarations in range")
        toks = toks[i + 1 :]
    if not toks:
        raise TemplateError(line, "missing value for range")
    return _Range(line, names, toks)


# --- evaluation ------------------------------------------------------------------------------


class _Root:
    """The template's ``.`` (Go frp's ``Values``)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.Envs = env


def _type_name(v: Any) -> str:
    if isinstance(v, _Root):
        return "*config.Values"
    if isinstance(v, NumberPair):
        return "config.NumberPair"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "slice"
    if isinstance(v, Mapping):
        return "map[string]string"
    return "nil" if v is None else type(v).__name__


def _show(v: Any) -> str:
    """Print a value the way Go's ``fmt`` ``%v`` does."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, NumberPair):
        return f"{{{v.First} {v.Second}}}"
    if isinstance(v, list):
        return "[" + " ".join(_show(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{k}:{_show(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, _Root):
        return "{map[...]}"
    return str(v)


class _Renderer:
    def __init__(self, env: Mapping[str, str], max_iterations: int, max_output: int) -> None:
        self.max_iterations = max_iterations
        self.max_output = max_output
        self.root = _Root(env)
        self.scopes: list[dict[str, Any]] = [{"$": self.root}]
        self.dot: Any = self.root
        self.out: list[str] = []
        # budgets (only loops can exceed them: everything else is bounded by the template's size)
        self.iterations = 0
        self.size = 0  # characters of out[:counted]
        self.counted = 0

    def _check_budget(self, more: int, line: int) -> None:
        """Before ``more`` loop iterations: refuse runaway nesting and output."""
        if self.iterations + more > self.max_iterations:
            raise TemplateError(
                line,
                f"range loops run more than {self.max_iterations:,} times in all (nested ranges multiply)",
            )
        out = self.out
        if len(out) > self.counted:
            self.size += sum(map(len, out[self.counted :]))
            self.counted = len(out)
            if self.size > self.max_output:
                raise TemplateError(line, f"the rendered config exceeds {_size(self.max_output)}")

    def run(self, nodes: list[_Node]) -> None:
        for node in nodes:
            if isinstance(node, str):
                self.out.append(node)
            elif isinstance(node, _Range):
                self._range(node)
            else:
                self._action(node)

    def _action(self, node: _Action) -> None:
        toks = node.toks
        if len(toks) >= 2 and toks[0].kind == "var" and toks[1].text in (":=", "="):
            name = toks[0].text
            if "." in name:
                raise TemplateError(node.line, f"cannot assign to {name}")
            value = self._pipeline(toks[2:], node.line)
            if toks[1].text == ":=":
                self.scopes[-1][name] = value
            else:
                self._lookup(name, node.line)
                for scope in reversed(self.scopes):
                    if name in scope:
                        scope[name] = value
                        break
            return
        self.out.append(_show(self._pipeline(toks, node.line)))

    def _range(self, node: _Range) -> None:
        value = self._pipeline(node.expr, node.line)
        if isinstance(value, Mapping):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            self._check_budget(value, node.line)
            items = [(i, i) for i in range(value)]
        elif value is None:
            items = []
        else:
            raise TemplateError(node.line, f"range can't iterate over {_show(value)}")
        if not items:
            if node.else_body is not None:
                self.run(node.else_body)
            return
        saved_dot = self.dot
        for key, elem in items:
            self._check_budget(1, node.line)
            self.iterations += 1
            scope: dict[str, Any] = {}
            if len(node.names) == 1:
                scope[node.names[0]] = elem
            elif len(node.names) == 2:
                scope[node.names[0]], scope[node.names[1]] = key, elem
            self.scopes.append(scope)
            self.dot = elem
            try:
                self.run(node.body)
            finally:
                self.scopes.pop()
                self.dot = saved_dot

    def _pipeline(self, toks: list[_Tok], line: int) -> Any:
        if any(t.text == "|" and t.kind == "op" for t in toks):
            raise TemplateError(line, "pipelines (|) are not supported in frp config templates")
        value, rest = self._command(toks, line)
        if rest:
            raise TemplateError(line, f"unexpected {rest[0].text!r} in operand")
        return value

    def _command(self, toks: list[_Tok], line: int) -> tuple[Any, list[_Tok]]:
        """One command: a function call with its arguments, or a single operand."""
        if not toks:
            raise TemplateError(line, "missing value for command")
        first = toks[0]
        if first.kind == "ident" and first.text not in ("true", "false", "nil"):
            if first.text not in FUNCS:
                raise TemplateError(line, f'function "{first.text}" not defined')
            args: list[Any] = []
            rest = toks[1:]
            while rest and rest[0].text not in (")", ","):
                arg, rest = self._operand(rest, line)
                args.append(arg)
            return self._call(first.text, args, line), rest
        return self._operand(toks, line)

    def _operand(self, toks: list[_Tok], line: int) -> tuple[Any, list[_Tok]]:
        tok, rest = toks[0], toks[1:]
        if tok.kind == "op" and tok.text == "(":
            value, rest = self._command(rest, line)
            if not rest or rest[0].text != ")":
                raise TemplateError(line, "unclosed left paren")
            return value, rest[1:]
        if tok.kind == "str":
            try:
                return json.loads(tok.text), rest
            except ValueError:
                raise TemplateError(line, f"invalid string literal {tok.text}") from None
        if tok.kind == "raw":
            return tok.text[1:-1], rest
        if tok.kind == "num":
            return int(tok.text), rest
        if tok.kind == "ident" and tok.text in ("true", "false"):
            return tok.text == "true", rest
        if tok.kind == "ident" and tok.text == "nil":
            raise TemplateError(line, "nil is not a command")
        if tok.kind == "var":
            name, _, fields = tok.text.partition(".")
            return self._fields(self._lookup(name, line), fields, line), rest
        if tok.kind == "field":
            return self._fields(self.dot, tok.text[1:], line), rest
        if tok.kind == "ident":
            raise TemplateError(line, f'function "{tok.text}" used as an argument needs parentheses')
        raise TemplateError(line, f"unexpected {tok.text!r} in operand")

    def _lookup(self, name: str, line: int) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(line, f'undefined variable "{name}"')

    def _fields(self, value: Any, chain: str, line: int) -> Any:
        for name in chain.split(".") if chain else []:
            if isinstance(value, _Root):
                if name != "Envs":
                    raise TemplateError(
                        line, f"can't evaluate field {name} in type *config.Values (only .Envs exists)"
                    )
                value = value.Envs
            elif isinstance(value, Mapping):
                value = value.get(name, "")
            elif isinstance(value, NumberPair) and name in ("First", "Second"):
                value = getattr(value, name)
            else:
                raise TemplateError(line, f"can't evaluate field {name} in type {_type_name(value)}")
        return value

    def _call(self, name: str, args: list[Any], line: int) -> Any:
        want, func = FUNCS[name]
        if len(args) != want:
            raise TemplateError(line, f"wrong number of args for {name}: want {want} got {len(args)}")
        for a in args:
            if not isinstance(a, str):
                raise TemplateError(
                    line, f"wrong type for value in {name}; expected string; got {_type_name(a)}"
                )
        try:
            return func(*args)
        except ValueError as e:
            raise TemplateError(line, f"error calling {name}: {e}") from None


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n & 0xFFFFF else f"{n:,} characters"


def render(
    text: str,
    env: Mapping[str, str],
    *,
    max_iterations: int = MAX_ITERATIONS,
    max_output: int = MAX_OUTPUT,
) -> str:
    """Render ``text``; raises :class:`TemplateError` for anything outside the supported subset or
    over the budgets (the fuzz harness passes smaller ones)."""
    if "{{" not in text:
        return text
    r = _Renderer(env, max_iterations, max_output)
    r.run(parse(text))
    return "".join(r.out)
