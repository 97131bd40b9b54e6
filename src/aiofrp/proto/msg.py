"""frp control messages and the wire v1 codec (golib ``msg/json``).

A frame is one type byte, the JSON length as a signed int64 big-endian, then the JSON object.
Field names are frp's JSON keys; every field is ``omitempty`` like Go, except nested structs,
which Go always emits. Decoding follows Go ``encoding/json``: unknown keys are ignored and keys
match case-insensitively.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Annotated, TypeVar, cast

import msgspec
import msgspec.inspect

from aiofrp.proto.errors import ProtocolError

__all__ = [
    "MAX_MSG_LENGTH",
    "MSG_TYPES",
    "TYPE_BYTE",
    "ClientSpec",
    "CloseProxy",
    "Login",
    "LoginResp",
    "Message",
    "MessageType",
    "MsgDecoder",
    "NatHoleClient",
    "NatHoleDetectBehavior",
    "NatHoleReport",
    "NatHoleResp",
    "NatHoleSid",
    "NatHoleVisitor",
    "NewProxy",
    "NewProxyResp",
    "NewVisitorConn",
    "NewVisitorConnResp",
    "NewWorkConn",
    "Ping",
    "Pong",
    "PortsRange",
    "ReqWorkConn",
    "StartWorkConn",
    "UDPAddr",
    "UDPPacket",
    "convert_go",
    "decode_body",
    "decode_header",
    "encode",
    "go_json",
]

MAX_MSG_LENGTH = 10240
HEADER_LENGTH = 9

# Go integer widths: a value that does not fit is an UnmarshalTypeError in Go, so it is here too.
Int = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
Uint16 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]


class _Struct(
    msgspec.Struct,
    omit_defaults=True,
    forbid_unknown_fields=True,  # unknown keys send decode_body to its Go-compatible slow path
    repr_omit_defaults=True,
):
    pass


# -- nested structs ---------------------------------------------------------------------------


class ClientSpec(_Struct):
    type: str = ""
    always_auth_pass: bool = False


class UDPAddr(msgspec.Struct, forbid_unknown_fields=True):
    """Go ``net.UDPAddr``: no JSON tags, so all three keys are always present."""

    IP: str = ""
    Port: Int = 0
    Zone: str = ""


class PortsRange(_Struct):
    from_: Int = msgspec.field(default=0, name="from")
    to: Int = 0


class NatHoleDetectBehavior(_Struct):
    role: str = ""
    mode: Int = 0
    ttl: Int = 0
    send_delay_ms: Int = 0
    read_timeout: Int = 0
    candidate_ports: list[PortsRange] = []
    send_random_ports: Int = 0
    listen_random_ports: Int = 0


# -- messages (field order = Go struct order = JSON key order) ----------------------------------


class Login(_Struct):
    version: str = ""
    hostname: str = ""
    os: str = ""
    arch: str = ""
    user: str = ""
    privilege_key: str = ""
    timestamp: Int = 0
    run_id: str = ""
    client_id: str = ""
    metas: dict[str, str] = {}
    client_spec: ClientSpec = msgspec.field(default_factory=ClientSpec)  # always emitted
    pool_count: Int = 0


class LoginResp(_Struct):
    version: str = ""
    run_id: str = ""
    error: str = ""


class NewProxy(_Struct):
    proxy_name: str = ""
    proxy_type: str = ""
    use_encryption: bool = False
    use_compression: bool = False
    bandwidth_limit: str = ""
    bandwidth_limit_mode: str = ""
    group: str = ""
    group_key: str = ""
    metas: dict[str, str] = {}
    annotations: dict[str, str] = {}
    remote_port: Int = 0
    custom_domains: list[str] = []
    subdomain: str = ""
    locations: list[str] = []
    http_user: str = ""
    http_pwd: str = ""
    host_header_rewrite: str = ""
    headers: dict[str, str] = {}
    response_headers: dict[str, str] = {}
    route_by_http_user: str = ""
    sk: str = ""
    allow_users: list[str] = []
    multiplexer: str = ""


class NewProxyResp(_Struct):
    proxy_name: str = ""
    remote_addr: str = ""
    error: str = ""


class CloseProxy(_Struct):
    proxy_name: str = ""


class NewWorkConn(_Struct):
    run_id: str = ""
    privilege_key: str = ""
    timestamp: Int = 0


class ReqWorkConn(_Struct):
    pass


class StartWorkConn(_Struct):
    proxy_name: str = ""
    src_addr: str = ""
    dst_addr: str = ""
    src_port: Uint16 = 0
    dst_port: Uint16 = 0
    error: str = ""


class NewVisitorConn(_Struct):
    run_id: str = ""
    proxy_name: str = ""
    sign_key: str = ""
    timestamp: Int = 0
    use_encryption: bool = False
    use_compression: bool = False


class NewVisitorConnResp(_Struct):
    proxy_name: str = ""
    error: str = ""


class Ping(_Struct):
    privilege_key: str = ""
    timestamp: Int = 0


class Pong(_Struct):
    error: str = ""


class UDPPacket(_Struct):
    c: bytes = b""  # base64 with padding on the wire
    l: UDPAddr | None = None
    r: UDPAddr | None = None


class NatHoleVisitor(_Struct):
    transaction_id: str = ""
    proxy_name: str = ""
    pre_check: bool = False
    protocol: str = ""
    sign_key: str = ""
    timestamp: Int = 0
    mapped_addrs: list[str] = []
    assisted_addrs: list[str] = []


class NatHoleClient(_Struct):
    transaction_id: str = ""
    proxy_name: str = ""
    sid: str = ""
    mapped_addrs: list[str] = []
    assisted_addrs: list[str] = []


class NatHoleResp(_Struct):
    transaction_id: str = ""
    sid: str = ""
    protocol: str = ""
    candidate_addrs: list[str] = []
    assisted_addrs: list[str] = []
    detect_behavior: NatHoleDetectBehavior = msgspec.field(default_factory=NatHoleDetectBehavior)
    error: str = ""


class NatHoleSid(_Struct):
    transaction_id: str = ""
    sid: str = ""
    response: bool = False
    nonce: str = ""


class NatHoleReport(_Struct):
    sid: str = ""
    success: bool = False


Message = (
    Login
    | LoginResp
    | NewProxy
    | NewProxyResp
    | CloseProxy
    | NewWorkConn
    | ReqWorkConn
    | StartWorkConn
    | NewVisitorConn
    | NewVisitorConnResp
    | Ping
    | Pong
    | UDPPacket
    | NatHoleVisitor
    | NatHoleClient
    | NatHoleResp
    | NatHoleSid
    | NatHoleReport
)

MessageType = type[Message]
"""The class of one frp message (what ``decode_header`` finds in a frame's type byte)."""
M = TypeVar("M", bound=Message)

TYPE_BYTE: dict[MessageType, bytes] = {
    Login: b"o",
    LoginResp: b"1",
    NewProxy: b"p",
    NewProxyResp: b"2",
    CloseProxy: b"c",
    NewWorkConn: b"w",
    ReqWorkConn: b"r",
    StartWorkConn: b"s",
    NewVisitorConn: b"v",
    NewVisitorConnResp: b"3",
    Ping: b"h",
    Pong: b"4",
    UDPPacket: b"u",
    NatHoleVisitor: b"i",
    NatHoleClient: b"n",
    NatHoleResp: b"m",
    NatHoleSid: b"5",
    NatHoleReport: b"6",
}
MSG_TYPES: dict[int, MessageType] = {tb[0]: cls for cls, tb in TYPE_BYTE.items()}

# -- encoding ---------------------------------------------------------------------------------

_HEADER = struct.Struct(">Bq")
# Go sorts map keys; "deterministic" sorts dicts and keeps struct fields in definition order.
_json_encode = msgspec.json.Encoder(order="deterministic").encode


def _make_encoder(type_byte: int) -> Callable[[Message], bytes]:
    pack = _HEADER.pack

    def encode_one(msg: Message) -> bytes:
        body = _json_encode(msg)
        return pack(type_byte, len(body)) + body

    return encode_one


_ENCODERS: dict[MessageType, Callable[[Message], bytes]] = {cls: _make_encoder(tb[0]) for cls, tb in TYPE_BYTE.items()}


def encode(msg: Message) -> bytes:
    """Return one v1 frame: type byte, int64 big-endian length, JSON."""
    try:
        encoder = _ENCODERS[type(msg)]
    except KeyError:
        raise TypeError(f"not an frp message: {type(msg).__name__}") from None
    return encoder(msg)


# -- decoding ---------------------------------------------------------------------------------


def decode_header(header: bytes | bytearray | memoryview) -> tuple[MessageType, int]:
    """Parse the 9-byte frame header into (message class, body length)."""
    if len(header) < HEADER_LENGTH:
        raise ValueError(f"frame header needs {HEADER_LENGTH} bytes, got {len(header)}")
    type_byte, length = _HEADER.unpack_from(header)
    cls = MSG_TYPES.get(type_byte)
    if cls is None:
        raise ProtocolError(f"unknown message type 0x{type_byte:02x}")
    if length < 0:
        raise ProtocolError(f"negative length {length} in {cls.__name__} frame header")
    if length > MAX_MSG_LENGTH:
        raise ProtocolError(f"{cls.__name__} message length {length} exceeds the limit {MAX_MSG_LENGTH}")
    return cls, length


_DECODERS: dict[type[msgspec.Struct], msgspec.json.Decoder[Message]] = {
    cls: msgspec.json.Decoder(cls) for cls in TYPE_BYTE
}
_any_decode = msgspec.json.Decoder().decode


def decode_body(cls: type[M], payload: bytes | bytearray | memoryview) -> M:
    """Decode a JSON body into ``cls`` with Go ``encoding/json`` semantics."""
    try:
        return cast(M, _DECODERS[cls].decode(payload))  # the decoder of ``cls`` returns a ``cls``
    except msgspec.ValidationError:
        pass  # an unknown or differently-cased key, a null, or a real type error
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid JSON in {cls.__name__} message: {exc}") from None
    except KeyError:
        raise TypeError(f"not an frp message class: {cls!r}") from None
    return _decode_slow(cls, payload)


S = TypeVar("S", bound=msgspec.Struct)


def convert_go(cls: type[S], obj: object) -> S:
    """Decoded JSON (``msgspec.json.decode`` of anything) -> ``cls`` with Go ``encoding/json``
    semantics: case-insensitive keys, unknown keys ignored, null leaves a value unchanged.
    For JSON that nests frp's structs (server plugin answers). ``ProtocolError`` on a type error."""
    if obj is None:
        return cls()
    try:
        return msgspec.convert(_normalizer(cls)(obj), cls)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid {cls.__name__}: {exc}") from None


_GO_HTML_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"),
                    ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


def go_json(obj: object) -> bytes:
    """``obj`` as Go's ``json.Marshal`` writes it: struct fields in order, map keys sorted, and
    ``&``, ``<``, ``>``, U+2028, U+2029 escaped (they can only occur inside strings)."""
    out = _json_encode(obj)
    for raw, esc in _GO_HTML_ESCAPES:
        if raw in out:
            out = out.replace(raw, esc)
    return out


def _decode_slow(cls: type[M], payload: bytes | bytearray | memoryview) -> M:
    try:
        obj = _any_decode(payload)
    except msgspec.DecodeError as exc:  # the typed decoder met a type error before the bad JSON
        raise ProtocolError(f"invalid JSON in {cls.__name__} message: {exc}") from None
    if obj is None:
        return cls()  # Go: unmarshalling null into a struct is a no-op
    try:
        return msgspec.convert(_normalizer(cls)(obj), cls)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid {cls.__name__} message: {exc}") from None


# Runes that Go's key folding (ToUpper(ToLower(r))) maps onto ASCII letters.
_GO_FOLD = str.maketrans({"\u0130": "I", "\u0131": "I", "\u017f": "S", "\u212a": "K"})


def _fold(key: str) -> str | None:
    """Go's folded form of a JSON key, or None when it cannot match an (ASCII) field name."""
    if not key.isascii():
        key = key.translate(_GO_FOLD)
        if not key.isascii():
            return None
    return key.upper()


_SKIP = object()  # a null for this field leaves it unchanged (Go: no-op for non-pointer types)
_Normalize = Callable[[object], object]  # decoded JSON in, decoded JSON with the struct's keys out
_NORMALIZERS: dict[type[msgspec.Struct], _Normalize] = {}


def _normalizer(cls: type[msgspec.Struct]) -> _Normalize:
    """Map a decoded JSON object onto ``cls``'s exact keys (built lazily, cached)."""
    norm = _NORMALIZERS.get(cls)
    if norm is None:
        norm = _compile_struct(msgspec.inspect.type_info(cls))
        _NORMALIZERS[cls] = norm
    return norm


def _compile_struct(info: msgspec.inspect.Type) -> _Normalize:
    assert isinstance(info, msgspec.inspect.StructType)
    fields: dict[str, tuple[str, _Normalize | None, object]] = {}
    for f in info.fields:
        inner, _zero = _compile(f.type)
        if isinstance(f.type, msgspec.inspect.UnionType):
            on_null: object = None  # pointer: set to nil
        elif isinstance(f.type, msgspec.inspect.ListType | msgspec.inspect.DictType):
            on_null = _zero  # slice/map: set to nil
        else:
            on_null = _SKIP
        fields[f.encode_name] = (f.encode_name, inner, on_null)
    folded = {name.upper(): spec for name, spec in reversed(fields.items())}

    def normalize(obj: object) -> object:
        if not isinstance(obj, dict):
            return obj  # msgspec.convert reports the type error
        out: dict[str, object] = {}
        for key, value in obj.items():
            spec = fields.get(key)
            if spec is None:
                fkey = _fold(key)
                spec = folded.get(fkey) if fkey is not None else None
                if spec is None:
                    continue
            name, inner, on_null = spec
            if value is None:
                if on_null is not _SKIP:
                    out[name] = on_null
            else:
                out[name] = inner(value) if inner is not None else value
        return out

    return normalize


def _compile(t: msgspec.inspect.Type) -> tuple[_Normalize | None, object]:
    """(normalizer or None, JSON-level zero value) for one msgspec.inspect type."""
    mi = msgspec.inspect
    if isinstance(t, mi.StructType):
        return _normalizer(t.cls), {}
    if isinstance(t, mi.UnionType):
        for member in t.types:
            if not isinstance(member, mi.NoneType):
                return _compile(member)[0], None
    if isinstance(t, mi.ListType):
        item, item_zero = _compile(t.item_type)

        def norm_list(v: object) -> object:
            if not isinstance(v, list):
                return v
            return [item_zero if x is None else (item(x) if item else x) for x in v]

        return norm_list, []
    if isinstance(t, mi.DictType):
        val, val_zero = _compile(t.value_type)

        def norm_dict(v: object) -> object:
            if not isinstance(v, dict):
                return v
            return {k: val_zero if x is None else (val(x) if val else x) for k, x in v.items()}

        return norm_dict, {}
    if isinstance(t, mi.StrType | mi.BytesType):
        return None, ""
    if isinstance(t, mi.BoolType):
        return None, False
    return None, 0


class MsgDecoder:
    """Incremental frame reader: ``feed`` bytes, then call ``next`` until it returns None."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buf += data

    def next(self) -> Message | None:
        """Return the next complete message, or None if more bytes are needed.

        Raises ProtocolError for a bad frame; the bad frame stays in the buffer.
        """
        buf = self._buf
        if len(buf) < HEADER_LENGTH:
            return None
        cls, length = decode_header(buf)
        end = HEADER_LENGTH + length
        if len(buf) < end:
            return None
        msg = decode_body(cls, buf[HEADER_LENGTH:end])
        del buf[:end]
        return msg

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet consumed."""
        return len(self._buf)

    def take_remaining(self) -> bytes:
        """Return and forget the unconsumed bytes (raw payload following the last message)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data
