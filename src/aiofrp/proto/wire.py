"""frp wire protocol v2 (frp >= 0.69, spec §1.8 and §2.4), sans I/O.

* :data:`MAGIC` starts every v2 logical connection; frps tells v1 from v2 by it (:func:`magic_state`).
* Frames: ``type u16 | flags u16 (0) | length u32 | payload`` (all big-endian), payload at most
  :data:`MAX_FRAME_PAYLOAD`. Types: ClientHello (1), ServerHello (2), Message (16). A message frame's
  payload is the message's v2 type id (u16) and the same JSON body as v1 (:func:`encode_message`,
  :class:`V2Decoder`).
* The control connection's handshake: ClientHello / ServerHello (JSON) pick an AEAD algorithm and
  carry 32 random bytes each; both payloads go into a transcript hash (:func:`transcript_hash`),
  which salts HKDF-SHA256 over the auth token (:func:`derive_keys`) for one key per direction.
* After LoginResp, the control connection is an AEAD stream per direction (:class:`AEADWriter`,
  :class:`AEADReader`): a random nonce first (12 bytes AES-256-GCM, 24 XChaCha20-Poly1305), then
  records ``ct_len u32 | ciphertext+tag`` with AAD = stream nonce + the 4 length bytes, the nonce
  counting up by one (big-endian) per record.

Read from frp v0.70.1 ``pkg/proto/wire``, ``pkg/msg/wire_v2.go``, ``pkg/util/net/conn.go`` and golib
v0.7.0 ``crypto/aead_stream.go``. AES-GCM is OpenSSL's (``cryptography``); XChaCha20-Poly1305 is
libsodium's (PyNaCl: ``cryptography`` has no XChaCha), imported only when negotiated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
from typing import Any, NamedTuple

from . import msg as m
from .errors import ProtocolError

MAGIC = b"FRP\x00\x02\r\n"
FRAME_CLIENT_HELLO = 1
FRAME_SERVER_HELLO = 2
FRAME_MESSAGE = 16
MAX_FRAME_PAYLOAD = 64 * 1024
HEADER = struct.Struct(">HHI")

AES_256_GCM = "aes-256-gcm"
XCHACHA20_POLY1305 = "xchacha20-poly1305"
ALGORITHMS = (AES_256_GCM, XCHACHA20_POLY1305)
"""What we support, in our order of preference (the client's list; the server takes the first of the
client's list that it supports, as Go)."""
RANDOM_SIZE = 32
KEY_SIZE = 32
TAG_SIZE = 16
MAX_RECORD_PLAINTEXT = 64 * 1024
AES_GCM_MAX_RECORDS = 1 << 32
TRANSCRIPT_LABEL = b"frp wire v2 crypto transcript"
HKDF_INFO_PREFIX = "frp wire v2 control aead"

V2_TYPE_ID: dict[m.MessageType, int] = {
    m.Login: 1, m.LoginResp: 2, m.NewProxy: 3, m.NewProxyResp: 4, m.CloseProxy: 5, m.NewWorkConn: 6,
    m.ReqWorkConn: 7, m.StartWorkConn: 8, m.NewVisitorConn: 9, m.NewVisitorConnResp: 10, m.Ping: 11,
    m.Pong: 12, m.UDPPacket: 13, m.NatHoleVisitor: 14, m.NatHoleClient: 15, m.NatHoleResp: 16,
    m.NatHoleSid: 17, m.NatHoleReport: 18,
}
V2_MSG_TYPES: dict[int, m.MessageType] = {v: k for k, v in V2_TYPE_ID.items()}


# -- magic ---------------------------------------------------------------------------------------


def magic_state(data: bytes | bytearray) -> bool | None:
    """True: ``data`` starts with the v2 magic; False: it cannot (v1); None: too short to tell.

    Go reads exactly 7 bytes before deciding; the first byte that differs decides here (no v1
    message starts with ``F``, so a v1 peer is never kept waiting longer than with Go)."""
    n = min(len(data), len(MAGIC))
    if bytes(data[:n]) != MAGIC[:n]:
        return False
    return True if n == len(MAGIC) else None


# -- frames --------------------------------------------------------------------------------------


class Frame(NamedTuple):
    type: int
    payload: bytes


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise ValueError(f"frame payload length {len(payload)} exceeds limit {MAX_FRAME_PAYLOAD}")
    return HEADER.pack(frame_type, 0, len(payload)) + payload


def encode_message(msg: m.Message) -> bytes:
    """One v2 message frame (the JSON body is v1's, :func:`aiofrp.proto.msg.encode`)."""
    try:
        type_id = V2_TYPE_ID[type(msg)]
    except KeyError:
        raise TypeError(f"not an frp message: {type(msg).__name__}") from None
    body = m.encode(msg)[m.HEADER_LENGTH:]
    return encode_frame(FRAME_MESSAGE, struct.pack(">H", type_id) + body)


def decode_message(frame: Frame) -> m.Message:
    """The message in a message frame; ProtocolError for any other frame or an unknown type id."""
    if frame.type != FRAME_MESSAGE:
        raise ProtocolError(f"unexpected frame type {frame.type}, want {FRAME_MESSAGE}")
    if len(frame.payload) < 2:
        raise ProtocolError("message frame payload too short")
    (type_id,) = struct.unpack_from(">H", frame.payload)
    cls = V2_MSG_TYPES.get(type_id)
    if cls is None:
        raise ProtocolError(f"unknown v2 message type {type_id}")
    return m.decode_body(cls, frame.payload[2:])


class V2Decoder:
    """Incremental v2 frame reader with :class:`aiofrp.proto.msg.MsgDecoder`'s interface."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def next_frame(self) -> Frame | None:
        buf = self._buf
        if len(buf) < HEADER.size:
            return None
        ftype, flags, length = HEADER.unpack_from(buf)
        if flags:
            raise ProtocolError(f"unsupported frame flags: {flags}")
        if length > MAX_FRAME_PAYLOAD:
            raise ProtocolError(f"frame payload length {length} exceeds limit {MAX_FRAME_PAYLOAD}")
        end = HEADER.size + length
        if len(buf) < end:
            return None
        payload = bytes(buf[HEADER.size:end])
        del buf[:end]
        return Frame(ftype, payload)

    def next(self) -> m.Message | None:
        frame = self.next_frame()
        return decode_message(frame) if frame is not None else None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_remaining(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data


# -- hellos --------------------------------------------------------------------------------------
# Go's encoding/json: struct fields in declaration order, never omitted when they are structs,
# omitted when empty otherwise ("omitempty"); []byte as padded standard base64.


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def client_hello(transport: str, tls: bool, tcp_mux: bool, client_random: bytes | None = None,
                 algorithms: tuple[str, ...] = ALGORITHMS) -> bytes:
    """The ClientHello JSON payload (as Go frpc marshals it)."""
    bootstrap: dict[str, Any] = {}
    if transport:
        bootstrap["transport"] = transport
    if tls:
        bootstrap["tls"] = True
    if tcp_mux:
        bootstrap["tcpMux"] = True
    crypto: dict[str, Any] = {}
    if algorithms:
        crypto["algorithms"] = list(algorithms)
    rnd = os.urandom(RANDOM_SIZE) if client_random is None else client_random
    if rnd:
        crypto["clientRandom"] = _b64(rnd)
    return _dumps({"bootstrap": bootstrap, "capabilities": {"message": {"codecs": ["json"]}, "crypto": crypto}})


def _server_hello(algorithm: str = "", server_random: bytes = b"", error: str = "") -> bytes:
    crypto: dict[str, Any] = {}
    if algorithm:
        crypto["algorithm"] = algorithm
    if server_random:
        crypto["serverRandom"] = _b64(server_random)
    doc: dict[str, Any] = {"selected": {"message": {"codec": "json"}, "crypto": crypto}}
    if error:
        doc["error"] = error
    return _dumps(doc)


def _obj(doc: object, *keys: str) -> dict[str, Any]:
    """``doc[k1][k2]...`` as a dict (Go: a missing or null object decodes to the zero struct);
    keys match case-insensitively, as Go's decoder does."""
    for key in keys:
        if not isinstance(doc, dict):
            return {}
        doc = next((v for k, v in doc.items() if k.lower() == key.lower()), None)
    return doc if isinstance(doc, dict) else {}


def _field(doc: dict[str, Any], key: str) -> Any:
    return next((v for k, v in doc.items() if k.lower() == key.lower()), None)


def _random(value: object, what: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ProtocolError(f"decode {what}: random is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"decode {what}: random is not valid base64") from None


def _load(payload: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"decode {what}: {e}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ProtocolError(f"decode {what}: not a JSON object")
    return doc


class HelloRefused(ProtocolError):
    """The server cannot accept a ClientHello; :attr:`server_hello` is the payload to send back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.server_hello = _server_hello(error=reason)


def answer_client_hello(payload: bytes, server_random: bytes | None = None) -> tuple[bytes, str]:
    """frps: (ServerHello payload, selected algorithm) for a ClientHello payload.

    Raises :class:`HelloRefused` (with Go's reason and the ServerHello carrying it) when the hello
    asks for nothing we support, or ProtocolError when it is not JSON at all."""
    doc = _load(payload, "ClientHello")
    caps = _obj(doc, "capabilities")
    codecs = _field(_obj(caps, "message"), "codecs")
    if not isinstance(codecs, list) or "json" not in codecs:
        raise HelloRefused("unsupported message codec")
    crypto = _obj(caps, "crypto")
    rnd = _random(_field(crypto, "clientRandom"), "ClientHello")
    if len(rnd) != RANDOM_SIZE:
        raise HelloRefused(f"invalid crypto client random length {len(rnd)}, want {RANDOM_SIZE}")
    algs = _field(crypto, "algorithms")
    chosen = next((a for a in algs if a in ALGORITHMS), "") if isinstance(algs, list) else ""
    if not chosen:
        raise HelloRefused("no supported crypto algorithm")
    srv_rnd = os.urandom(RANDOM_SIZE) if server_random is None else server_random
    return _server_hello(chosen, srv_rnd), chosen


def check_server_hello(client_hello_payload: bytes, payload: bytes) -> str:
    """frpc: the algorithm a ServerHello selected, after Go's checks; ProtocolError otherwise (the
    server's own ``error`` text when it sent one)."""
    doc = _load(payload, "ServerHello")
    err = _field(doc, "error")
    if isinstance(err, str) and err:
        raise ProtocolError(err)
    sel = _obj(doc, "selected")
    codec = _field(_obj(sel, "message"), "codec")
    if codec != "json":
        raise ProtocolError(f"unsupported selected message codec: {codec or ''}")
    crypto = _obj(sel, "crypto")
    alg = _field(crypto, "algorithm")
    if alg not in ALGORITHMS:
        raise ProtocolError(f"unknown selected crypto algorithm: {alg or ''}")
    advertised = _field(_obj(_load(client_hello_payload, "ClientHello"), "capabilities", "crypto"), "algorithms")
    if not isinstance(advertised, list) or alg not in advertised:
        raise ProtocolError(f"selected crypto algorithm was not advertised by client: {alg}")
    rnd = _random(_field(crypto, "serverRandom"), "ServerHello")
    if len(rnd) != RANDOM_SIZE:
        raise ProtocolError(f"invalid crypto server random length {len(rnd)}, want {RANDOM_SIZE}")
    return str(alg)


# -- key schedule --------------------------------------------------------------------------------


def transcript_hash(client_hello_payload: bytes, server_hello_payload: bytes) -> bytes:
    """SHA-256 over the label, then per hello: 0x00, its label, 0x00, u64 length, the exact payload."""
    h = hashlib.sha256(TRANSCRIPT_LABEL)
    for label, payload in ((b"client hello", client_hello_payload), (b"server hello", server_hello_payload)):
        h.update(b"\x00" + label + b"\x00" + struct.pack(">Q", len(payload)))
        h.update(payload)
    return h.digest()


def derive_keys(secret: bytes, algorithm: str, transcript: bytes) -> tuple[bytes, bytes]:
    """(client-to-server key, server-to-client key): HKDF-SHA256(secret, salt = transcript hash,
    info = ``"frp wire v2 control aead <algorithm> <direction>"``, 32 bytes)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def one(direction: str) -> bytes:
        info = f"{HKDF_INFO_PREFIX} {algorithm} {direction}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=transcript, info=info).derive(secret)

    return one("client-to-server"), one("server-to-client")


# -- the AEAD stream -----------------------------------------------------------------------------


class _Seal:
    """One AEAD key: ``seal/open(nonce, data, aad)``."""

    def __init__(self, algorithm: str, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"aead key must be {KEY_SIZE} bytes")
        self.algorithm = algorithm
        self._key = key
        if algorithm == AES_256_GCM:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aes: Any = AESGCM(key)
            self.nonce_size = 12
            self.max_records = AES_GCM_MAX_RECORDS
        elif algorithm == XCHACHA20_POLY1305:
            from nacl import bindings

            self._nacl: Any = bindings
            self._aes = None
            self.nonce_size = 24
            self.max_records = 0
        else:
            raise ValueError(f"unsupported aead algorithm: {algorithm}")

    def seal(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if self._aes is not None:
            return bytes(self._aes.encrypt(nonce, data, aad))
        return bytes(self._nacl.crypto_aead_xchacha20poly1305_ietf_encrypt(data, aad, nonce, self._key))

    def open(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if self._aes is not None:
            return bytes(self._aes.decrypt(nonce, data, aad))
        return bytes(self._nacl.crypto_aead_xchacha20poly1305_ietf_decrypt(data, aad, nonce, self._key))


def _increment(nonce: bytearray) -> bool:
    for i in range(len(nonce) - 1, -1, -1):
        nonce[i] = (nonce[i] + 1) & 0xFF
        if nonce[i]:
            return True
    return False


class AEADWriter:
    """Plaintext in, the AEAD stream out (the stream nonce before the first record)."""

    def __init__(self, algorithm: str, key: bytes, stream_nonce: bytes | None = None) -> None:
        self._aead = _Seal(algorithm, key)
        n = self._aead.nonce_size
        self.stream_nonce = os.urandom(n) if stream_nonce is None else stream_nonce
        if len(self.stream_nonce) != n:
            raise ValueError(f"stream nonce must be {n} bytes")
        self._nonce = bytearray(self.stream_nonce)
        self._header_sent = False
        self._records = 0

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """The bytes to send for ``data`` (nothing for an empty write), in records of at most 64 KiB."""
        if not data:
            return b""
        out = bytearray()
        if not self._header_sent:
            out += self.stream_nonce
            self._header_sent = True
        view = memoryview(data)
        seal = self._aead.seal
        for pos in range(0, len(view), MAX_RECORD_PLAINTEXT):
            chunk = view[pos:pos + MAX_RECORD_PLAINTEXT]
            if self._aead.max_records and self._records >= self._aead.max_records:
                raise ProtocolError(f"aead stream frame count limit {self._aead.max_records} exceeded")
            header = struct.pack(">I", len(chunk) + TAG_SIZE)
            out += header
            out += seal(bytes(self._nonce), bytes(chunk), self.stream_nonce + header)
            if not _increment(self._nonce):
                raise ProtocolError("aead stream frame counter exhausted")
            self._records += 1
        return bytes(out)


class AEADReader:
    """The AEAD stream in (any chunking), plaintext out; ProtocolError for anything forged,
    reordered, truncated inside a record or over the size limit."""

    def __init__(self, algorithm: str, key: bytes) -> None:
        self._aead = _Seal(algorithm, key)
        self._buf = bytearray()
        self._stream_nonce: bytes | None = None
        self._nonce = bytearray()
        self._records = 0

    def decrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        self._buf += data
        buf = self._buf
        out = bytearray()
        if self._stream_nonce is None:
            n = self._aead.nonce_size
            if len(buf) < n:
                return b""
            self._stream_nonce = bytes(buf[:n])
            self._nonce = bytearray(self._stream_nonce)
            del buf[:n]
        while len(buf) >= 4:
            (ct_len,) = struct.unpack_from(">I", buf)
            if ct_len < TAG_SIZE:
                raise ProtocolError(f"aead stream ciphertext length {ct_len} is smaller than overhead {TAG_SIZE}")
            if ct_len > MAX_RECORD_PLAINTEXT + TAG_SIZE:
                raise ProtocolError(
                    f"aead stream ciphertext length {ct_len} exceeds limit {MAX_RECORD_PLAINTEXT + TAG_SIZE}")
            if len(buf) < 4 + ct_len:
                break
            if self._aead.max_records and self._records >= self._aead.max_records:
                raise ProtocolError(f"aead stream frame count limit {self._aead.max_records} exceeded")
            header = bytes(buf[:4])
            try:
                out += self._aead.open(bytes(self._nonce), bytes(buf[4:4 + ct_len]), self._stream_nonce + header)
            except Exception as e:  # noqa: BLE001 (cryptography's InvalidTag, nacl's CryptoError)
                raise ProtocolError(f"aead stream: message authentication failed ({type(e).__name__})") from None
            del buf[:4 + ct_len]
            if not _increment(self._nonce):
                raise ProtocolError("aead stream frame counter exhausted")
            self._records += 1
        return bytes(out)

    @property
    def pending(self) -> int:
        """Received bytes of a record not complete yet."""
        return len(self._buf)
