"""frps and wire protocol v2 played by hand (spec §1.8, §2.4): the bytes frps sends are checked
against the spec's layouts with an independent key schedule (stdlib HMAC, not proto/wire.py), so
our frps is held to the spec rather than to our own frpc."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl import bindings
from support.inproc import DEADLINE, TOKEN, InProc

from aiofrp import FRP_VERSION
from aiofrp.net.msgconn import MsgConn
from aiofrp.proto.crypto import auth_key

MAGIC = bytes.fromhex("46525000020d0a")
PLAIN: dict[str, Any] = {"transport.tcpMux": False, "transport.tls.enable": False}


def frame(ftype: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", ftype, 0, len(payload)) + payload


def msg_frame(type_id: int, body: dict) -> bytes:
    return frame(16, struct.pack(">H", type_id) + json.dumps(body, separators=(",", ":")).encode())


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:length]


def transcript(ch: bytes, sh: bytes) -> bytes:
    return hashlib.sha256(b"frp wire v2 crypto transcript"
                          + b"\x00client hello\x00" + struct.pack(">Q", len(ch)) + ch
                          + b"\x00server hello\x00" + struct.pack(">Q", len(sh)) + sh).digest()


def hello(algorithms: list[str], codecs: list[str] | None = None) -> bytes:
    return json.dumps({"bootstrap": {"transport": "tcp"},
                       "capabilities": {"message": {"codecs": codecs or ["json"]},
                                        "crypto": {"algorithms": algorithms,
                                                   "clientRandom": base64.b64encode(bytes(32)).decode()}}},
                      separators=(",", ":")).encode()


def login_body(token: str = TOKEN) -> dict:
    ts = int(time.time())
    return {"version": FRP_VERSION, "privilege_key": auth_key(token, ts), "timestamp": ts, "pool_count": 1}


async def read_frame(conn: MsgConn) -> tuple[int, bytes]:
    ftype, flags, length = struct.unpack(">HHI", await conn.read_exactly(8))
    assert flags == 0
    return ftype, await conn.read_exactly(length)


class Opener:
    """One direction of an AEAD stream, decrypted by hand (golib's layout)."""

    def __init__(self, conn: MsgConn, algorithm: str, key: bytes) -> None:
        self.conn, self.alg, self.key = conn, algorithm, key
        self.stream_nonce = b""
        self.nonce = 0

    async def record(self) -> bytes:
        size = 12 if self.alg == "aes-256-gcm" else 24
        if not self.stream_nonce:
            self.stream_nonce = await self.conn.read_exactly(size)
            self.nonce = int.from_bytes(self.stream_nonce, "big")
        header = await self.conn.read_exactly(4)
        ct = await self.conn.read_exactly(int.from_bytes(header, "big"))
        nonce = self.nonce.to_bytes(size, "big")
        self.nonce += 1
        aad = self.stream_nonce + header
        if self.alg == "aes-256-gcm":
            return AESGCM(self.key).decrypt(nonce, ct, aad)
        return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, aad, nonce, self.key)


def seal(algorithm: str, key: bytes, stream_nonce: bytes, index: int, plaintext: bytes) -> bytes:
    header = struct.pack(">I", len(plaintext) + 16)
    nonce = (int.from_bytes(stream_nonce, "big") + index).to_bytes(len(stream_nonce), "big")
    if algorithm == "aes-256-gcm":
        ct = AESGCM(key).encrypt(nonce, plaintext, stream_nonce + header)
    else:
        ct = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, stream_nonce + header, nonce, key)
    return header + ct


@pytest.mark.parametrize("algorithms", [["aes-256-gcm", "xchacha20-poly1305"], ["xchacha20-poly1305", "aes-256-gcm"],
                                        ["chacha-unknown", "xchacha20-poly1305"]])
async def test_hand_played_v2_login(inproc: InProc, algorithms: list[str]) -> None:
    server = await inproc.start_server(**{"transport.tcpMux": False})
    conn = await inproc.open_conn(inproc.dial(server, **PLAIN))
    assert conn.transport is not None
    ch = hello(algorithms)
    # the client pipelines: magic, ClientHello, Login, without waiting (§2.4)
    conn.transport.write(MAGIC + frame(1, ch) + msg_frame(1, login_body()))
    ftype, sh = await read_frame(conn)
    assert ftype == 2
    doc = json.loads(sh)
    expected = next(a for a in algorithms if a in ("aes-256-gcm", "xchacha20-poly1305"))  # the client's order
    assert doc["selected"]["message"] == {"codec": "json"} and "error" not in doc
    assert doc["selected"]["crypto"]["algorithm"] == expected
    assert len(base64.b64decode(doc["selected"]["crypto"]["serverRandom"])) == 32
    assert list(doc) == ["selected"] and list(doc["selected"]["crypto"]) == ["algorithm", "serverRandom"]
    ftype, payload = await read_frame(conn)
    assert ftype == 16 and payload[:2] == b"\x00\x02"  # LoginResp, in clear
    resp = json.loads(payload[2:])
    assert resp["run_id"] and "error" not in resp
    th = transcript(ch, sh)
    c2s = hkdf(TOKEN.encode(), th, f"frp wire v2 control aead {expected} client-to-server".encode())
    s2c = hkdf(TOKEN.encode(), th, f"frp wire v2 control aead {expected} server-to-client".encode())
    rx = Opener(conn, expected, s2c)
    plain = b""
    while len(plain) < 10:  # ReqWorkConn (pool_count 1): a v2 message frame inside the AEAD stream
        plain += await rx.record()
    assert plain == frame(16, b"\x00\x07{}")
    # a Ping from us (two records: header, then payload, as Go writes) -> a Pong back
    nonce = bytes(range(12)) if expected == "aes-256-gcm" else bytes(range(24))
    ping = msg_frame(11, {})
    conn.transport.write(nonce + seal(expected, c2s, nonce, 0, ping[:8]) + seal(expected, c2s, nonce, 1, ping[8:]))
    plain = b""
    while len(plain) < 10:
        plain += await rx.record()
    assert plain == frame(16, b"\x00\x0c{}")
    assert server.controls[resp["run_id"]].wire_protocol == "v2"


async def test_v1_client_keeps_working_beside_v2(inproc: InProc) -> None:
    server = await inproc.start_server(**{"transport.tcpMux": False})
    _, resp = await inproc.login(server, **PLAIN)
    assert not resp.error and server.controls[resp.run_id].wire_protocol == "v1"


@pytest.mark.parametrize(("hello_bytes", "reason"), [
    (hello(["aes-256-gcm"], codecs=["protobuf"]), "unsupported message codec"),
    (hello(["rot13"]), "no supported crypto algorithm"),
    (hello([])[:-3] + b"}}}", "no supported crypto algorithm"),
])
async def test_client_hello_refused(inproc: InProc, hello_bytes: bytes, reason: str) -> None:
    server = await inproc.start_server(**{"transport.tcpMux": False})
    control, _ = await inproc.login(server, **PLAIN)
    conn = await inproc.open_conn(inproc.dial(server, **PLAIN))
    assert conn.transport is not None
    conn.transport.write(MAGIC + frame(1, hello_bytes) + msg_frame(1, login_body()))
    ftype, sh = await read_frame(conn)
    assert ftype == 2
    assert json.loads(sh) == {"selected": {"message": {"codec": "json"}, "crypto": {}}, "error": reason}
    with pytest.raises((EOFError, ConnectionError)):
        await conn.read_exactly(1)
    control.write_msg(__import__("aiofrp.proto.msg", fromlist=["Ping"]).Ping())  # the other client is fine
    assert type(await control.read_msg(timeout=DEADLINE)).__name__ == "Pong"


async def test_login_without_hello_refused(inproc: InProc) -> None:
    server = await inproc.start_server(**{"transport.tcpMux": False})
    conn = await inproc.open_conn(inproc.dial(server, **PLAIN))
    assert conn.transport is not None
    conn.transport.write(MAGIC + msg_frame(1, login_body()))
    ftype, payload = await read_frame(conn)
    assert ftype == 16 and payload[:2] == b"\x00\x02"
    assert json.loads(payload[2:])["error"] == "missing v2 crypto negotiation"
    assert server.controls == {}


@pytest.mark.parametrize(("garbage", "log"), [
    (struct.pack(">HHI", 16, 1, 2) + b"{}", "unsupported frame flags: 1"),
    (struct.pack(">HHI", 16, 0, 70000), "frame payload length 70000 exceeds limit 65536"),
    (frame(16, b"\x00\x63{}"), "unknown v2 message type 99"),
    (frame(2, b"{}"), "unexpected frame type 2, want 16"),
])
async def test_bad_v2_first_frame_closes_that_connection_only(inproc: InProc, garbage: bytes, log: str) -> None:
    server = await inproc.start_server(**{"transport.tcpMux": False})
    _, resp = await inproc.login(server, **PLAIN)
    conn = await inproc.open_conn(inproc.dial(server, **PLAIN))
    assert conn.transport is not None
    conn.transport.write(MAGIC + garbage)
    with pytest.raises((EOFError, ConnectionError)):
        await conn.read_exactly(1)
    assert inproc.log.matching(rf"failed: bad message: {log}", logger="aiofrp.server")
    assert list(server.controls) == [resp.run_id]


async def test_v2_work_connection(inproc: InProc) -> None:
    """Our frpc in v2 (tcpMux on): the proxy works; its work connections are v2 streams."""
    from support.procs import TEST_STRING, free_port, tcp_proxy

    server = await inproc.start_server()
    echo = await inproc.echo_service()
    port = free_port()
    client = inproc.start_client(server, tcp_proxy("tcp", echo.port, port), **{"transport.wireProtocol": "v2"})
    await inproc.wait_proxies(client, "tcp", server=server)
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING
    assert server.controls[client.run_id].wire_protocol == "v2"
