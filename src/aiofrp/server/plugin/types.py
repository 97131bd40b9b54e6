"""What frps and a server manage plugin exchange (Go: pkg/plugin/server/types.go, plugin.go).

Request body: ``{"version": "0.1.0", "op": "<Op>", "content": {...}}``, encoded as Go's
``json.Marshal`` does (struct fields in Go's order, the embedded message's fields inline, map keys
sorted, HTML characters escaped). Response body: ``{"reject", "reject_reason", "unchange",
"content"}``, decoded with Go ``encoding/json`` semantics (frp §7.8).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from ...proto import msg as m
from ...proto.errors import ProtocolError

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


def parse_response(body: bytes) -> Response:
    """Decode a plugin's answer; ``ProtocolError`` saying what is wrong with it (Go-like texts)."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid JSON in the answer: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"cannot unmarshal {_json_kind(obj)} into the answer object")
    try:
        res = m.convert_go(_Response, obj)
    except ProtocolError as exc:
        raise ProtocolError(str(exc).replace("invalid _Response", "invalid answer", 1)) from None
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
