"""What frps and a server manage plugin exchange (Go: pkg/plugin/server/types.go, plugin.go).

Request body: ``{"version": "0.1.0", "op": "<Op>", "content": {...}}``, encoded as Go's
``json.Marshal`` does (struct fields in Go's order, the embedded message's fields inline, map keys
sorted, HTML characters escaped). Response body: ``{"reject", "reject_reason", "unchange",
"content"}``, decoded with Go ``encoding/json`` semantics (frp §7.8): what Go refuses we refuse,
with Go's error text (``gojson.py``), and the content is decoded into the op's content type
whatever ``unchange`` says.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from ...proto import msg as m
from ...proto.errors import ProtocolError
from . import gojson

API_VERSION = "0.1.0"

T = TypeVar("T", bound=msgspec.Struct)


class Op(enum.StrEnum):
    """The six operations a plugin may subscribe to (``ops`` in ``[[httpPlugins]]``)."""

    LOGIN = "Login"
    NEW_PROXY = "NewProxy"
    CLOSE_PROXY = "CloseProxy"
    PING = "Ping"
    NEW_WORK_CONN = "NewWorkConn"
    NEW_USER_CONN = "NewUserConn"


class UserInfo(msgspec.Struct):
    """Who the request is about: the client's Login ``user``, ``metas`` and its run id. Go's
    ``UserInfo`` has no omitempty: all three keys are always sent (``metas`` null when empty)."""

    user: str = ""
    metas: dict[str, str] | None = None
    run_id: str = ""

    @classmethod
    def of(cls, login: m.Login, run_id: str) -> UserInfo:
        return cls(user=login.user, metas=dict(login.metas) if login.metas else None, run_id=run_id)


class LoginContent(m.Login):
    """Login content: every Login field, then the client's address (``ip:port``)."""

    client_address: str = ""


class NewUserConnContent(msgspec.Struct):
    """NewUserConn content (no omitempty either): the proxy and the user's address."""

    user: UserInfo
    proxy_name: str = ""
    proxy_type: str = ""
    remote_addr: str = ""


def with_user(user: UserInfo, msg: msgspec.Struct) -> bytes:
    """``{"user": {...}, <msg's fields>}``: Go's ``struct { User UserInfo; msg.X }`` (NewProxy,
    CloseProxy, Ping and NewWorkConn contents)."""
    head = b'{"user":' + m.go_json(user)
    body = m.go_json(msg)
    return head + (b"," + body[1:] if body != b"{}" else b"}")


def request_body(op: Op, content: bytes) -> bytes:
    """The JSON body of one plugin request around an already encoded ``content``."""
    return b'{"version":"' + API_VERSION.encode() + b'","op":"' + op.value.encode() + b'","content":' + content + b"}"


class _Response(msgspec.Struct):
    reject: bool = False
    reject_reason: str = ""
    unchange: bool = False
    content: Any = None


@dataclass(frozen=True)
class Response:
    """A decoded plugin answer. ``content``: the decoded JSON of the returned content, ``None``
    when the answer has none (Go then keeps a zero-valued content), ``NULL`` when it is null."""

    reject: bool
    reject_reason: str
    unchange: bool
    content: object


NULL = object()  # "content": null (Go would panic on it; we refuse the request)

# The Go types an answer is decoded into (pkg/plugin/server/types.go, pkg/msg/msg.go), for Go's
# type errors: Response.content is the op's content type, whatever "unchange" says.
_USER = gojson.struct("server.UserInfo", gojson.GoField("user", gojson.STRING),
                      gojson.GoField("metas", gojson.STRING_MAP), gojson.GoField("run_id", gojson.STRING))


def _fields(*spec: tuple[str, gojson.GoType]) -> tuple[gojson.GoField, ...]:
    return tuple(gojson.GoField(name, t) for name, t in spec)


_S, _B, _MAP, _LIST = gojson.STRING, gojson.BOOL, gojson.STRING_MAP, gojson.STRING_SLICE
_LOGIN = gojson.struct("msg.Login", *_fields(
    ("version", _S), ("hostname", _S), ("os", _S), ("arch", _S), ("user", _S), ("privilege_key", _S),
    ("timestamp", gojson.INT64), ("run_id", _S), ("metas", _MAP),
    ("client_spec", gojson.struct("msg.ClientSpec", *_fields(("type", _S), ("always_auth_pass", _B)))),
    ("pool_count", gojson.INT),
))
_NEW_PROXY = gojson.struct("msg.NewProxy", *_fields(
    ("proxy_name", _S), ("proxy_type", _S), ("use_encryption", _B), ("use_compression", _B),
    ("bandwidth_limit", _S), ("bandwidth_limit_mode", _S), ("group", _S), ("group_key", _S), ("metas", _MAP),
    ("annotations", _MAP), ("remote_port", gojson.INT), ("custom_domains", _LIST), ("subdomain", _S),
    ("locations", _LIST), ("http_user", _S), ("http_pwd", _S), ("host_header_rewrite", _S), ("headers", _MAP),
    ("response_headers", _MAP), ("route_by_http_user", _S), ("sk", _S), ("allow_users", _LIST),
    ("multiplexer", _S),
))
_USER_FIELD = gojson.GoField("user", _USER)
_CONTENT_TYPES: dict[Op, gojson.GoType] = {
    Op.LOGIN: gojson.struct("server.LoginContent", *gojson.embed("Login", _LOGIN),
                            gojson.GoField("client_address", _S)),
    Op.NEW_PROXY: gojson.struct("server.NewProxyContent", _USER_FIELD, *gojson.embed("NewProxy", _NEW_PROXY)),
    Op.CLOSE_PROXY: gojson.struct("server.CloseProxyContent", _USER_FIELD, *gojson.embed(
        "CloseProxy", gojson.struct("msg.CloseProxy", *_fields(("proxy_name", _S))))),
    Op.PING: gojson.struct("server.PingContent", _USER_FIELD, *gojson.embed(
        "Ping", gojson.struct("msg.Ping", *_fields(("privilege_key", _S), ("timestamp", gojson.INT64))))),
    Op.NEW_WORK_CONN: gojson.struct("server.NewWorkConnContent", _USER_FIELD, *gojson.embed(
        "NewWorkConn", gojson.struct("msg.NewWorkConn", *_fields(
            ("run_id", _S), ("privilege_key", _S), ("timestamp", gojson.INT64))))),
    Op.NEW_USER_CONN: gojson.struct("server.NewUserConnContent", _USER_FIELD, *_fields(
        ("proxy_name", _S), ("proxy_type", _S), ("remote_addr", _S))),
}
_RESPONSE_TYPES = {op: gojson.struct("server.Response", *_fields(
    ("reject", _B), ("reject_reason", _S), ("unchange", _B), ("content", t))) for op, t in _CONTENT_TYPES.items()}


def parse_response(body: bytes, op: Op) -> Response:
    """Decode a plugin's answer to ``op`` as Go's ``json.Unmarshal`` into a ``Response`` whose
    content is the op's content type; ``ProtocolError`` with Go's text for what it refuses (a
    syntax error, or a value of the wrong type anywhere, also in a content the answer says is
    unchanged)."""
    try:
        raw = gojson.loads(body)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    error = gojson.type_error(raw, _RESPONSE_TYPES[op])
    if error is not None:
        raise ProtocolError(error)
    obj = gojson.plain(raw)
    if not isinstance(obj, dict):  # null: Go leaves the Response as it was, zero
        return Response(False, "", False, None)
    res = m.convert_go(_Response, obj)
    content: object = res.content
    if content is None:  # absent, or null: Go's last key matching "content" case-insensitively decides
        for key, value in obj.items():
            if key.lower() == "content":
                content = NULL if value is None else value
    return Response(res.reject, res.reject_reason, res.unchange, content)


def decode_content(cls: type[T], res: Response) -> T:
    """The frp message inside a returned content: Go decodes into a fresh zero-valued content, so
    keys the plugin leaves out are zero (``unchange = false`` means "here is the whole content")."""
    if res.content is NULL:
        raise ProtocolError('the answer has "unchange": false and "content": null')
    if res.content is None:
        return cls()
    if not isinstance(res.content, dict):
        raise ProtocolError(f"cannot unmarshal {_json_kind(res.content)} into the content object")
    return m.convert_go(cls, res.content)


def decode_user(res: Response) -> UserInfo:
    """The ``user`` object inside a returned content (zero when absent, as Go)."""
    value: object = None
    if isinstance(res.content, dict):
        for key, v in res.content.items():
            if key.lower() == "user":
                value = v
    if value is not None and not isinstance(value, dict):
        raise ProtocolError(f"cannot unmarshal {_json_kind(value)} into the user object")
    return m.convert_go(UserInfo, value)


def _json_kind(obj: object) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool):
        return "bool"
    if isinstance(obj, int | float):
        return "number"
    return "object"
