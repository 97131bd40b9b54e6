"""Fuzz targets: every parser that reads bytes or text from outside, with the errors it may raise.

A target is ``fn(data: bytes) -> None``. It must return or raise one of its documented error types
for every input; anything else (a crash), a hang (the engine's per-input deadline) or a blow-up of
memory (the engine's address-space limit) is a finding. ``seeds()`` gives valid inputs to start the
mutations from, so the fuzzer gets past the first length check.

Stream parsers are fed the input cut into pieces (the first byte picks the cut size), since bugs in
incremental parsers hide at the cuts.
"""

from __future__ import annotations

import json
import ssl
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiofrp.config.errors import ConfigError
from aiofrp.config.load import parse_client_config, parse_server_config
from aiofrp.config.template import TemplateError, render
from aiofrp.proto import http, http2, kcp, msg, nathole, socks5, stun, tls_hello, udp, wire, wsframe, yamux
from aiofrp.proto.errors import ProtocolError
from aiofrp.proto.proxyproto import ProxyProtocolError, build_header
from aiofrp.proto.snappy import SnappyFrameReader, SnappyFrameWriter
from aiofrp.server.plugin import types as plugin_types
from aiofrp.server.sshgw import command as ssh_command

__all__ = ["TARGETS", "Target"]


@dataclass(frozen=True)
class Target:
    name: str
    fn: Callable[[bytes], None]
    errors: tuple[type[BaseException], ...]
    """The documented error types: raising one of these is a correct answer to bad input."""
    seeds: Callable[[], list[bytes]] = field(default=lambda: [b""])


TARGETS: dict[str, Target] = {}


def target(
    name: str, *errors: type[BaseException], seeds: Callable[[], list[bytes]] | None = None
) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    def deco(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        TARGETS[name] = Target(name, fn, errors, seeds or (lambda: [b""]))
        return fn

    return deco


def pieces(data: bytes) -> Iterator[bytes]:
    """``data[1:]`` in pieces of ``data[0] % 17 + 1`` bytes (the whole rest for 0)."""
    if not data:
        return
    size = data[0] % 17
    rest = data[1:]
    if size == 0:
        yield rest
        return
    for i in range(0, len(rest), size):
        yield rest[i : i + size]


# -- frp messages (msg codec v1) -----------------------------------------------------------------


def _msg_seeds() -> list[bytes]:
    samples: list[msg.Message] = [
        msg.Login(version="0.65.0", hostname="h", os="linux", arch="amd64", user="u", privilege_key="k",
                  timestamp=1, run_id="r", metas={"a": "b"}, pool_count=1),
        msg.LoginResp(version="0.65.0", run_id="r", error=""),
        msg.NewProxy(proxy_name="p", proxy_type="tcp", remote_port=6000, custom_domains=["a.example"],
                     headers={"X": "y"}, metas={"m": "n"}),
        msg.NewProxyResp(proxy_name="p", remote_addr=":6000", error=""),
        msg.CloseProxy(proxy_name="p"),
        msg.NewWorkConn(run_id="r", privilege_key="k", timestamp=1),
        msg.ReqWorkConn(),
        msg.StartWorkConn(proxy_name="p", src_addr="1.2.3.4", dst_addr="5.6.7.8", src_port=1, dst_port=2),
        msg.NewVisitorConn(run_id="r", proxy_name="p", sign_key="s", timestamp=1, use_encryption=True),
        msg.Ping(privilege_key="k", timestamp=1),
        msg.Pong(),
        msg.UDPPacket(c=b"hi", r=msg.UDPAddr(IP="1.2.3.4", Port=5)),
        msg.NatHoleVisitor(transaction_id="t", proxy_name="p"),
        msg.NatHoleResp(transaction_id="t", sid="s", protocol="quic", candidate_addrs=["1.2.3.4:5"]),
        msg.NatHoleReport(sid="s", success=True),
    ]
    frames = [msg.encode(s) for s in samples]
    return [b"\x00" + b"".join(frames), b"\x03" + frames[0] + frames[2], *(b"\x00" + f for f in frames)]


@target("msg", ProtocolError, seeds=_msg_seeds)
def fuzz_msg(data: bytes) -> None:
    dec = msg.MsgDecoder()
    for piece in pieces(data):
        dec.feed(piece)
        while dec.next() is not None:
            pass


# -- yamux -----------------------------------------------------------------------------------------


def _yamux_seeds() -> list[bytes]:
    hdr = struct.Struct(">BBHII")
    syn = hdr.pack(0, 1, 0x1, 1, 0)  # window update with SYN
    data = hdr.pack(0, 0, 0, 1, 5) + b"hello"
    fin = hdr.pack(0, 0, 0x4, 1, 0)
    rst = hdr.pack(0, 1, 0x8, 3, 0)
    ping = hdr.pack(0, 2, 0x1, 0, 7)
    go_away = hdr.pack(0, 3, 0, 0, 0)
    return [b"\x00" + syn + data + fin, b"\x05" + syn + hdr.pack(0, 1, 0, 1, 1 << 20) + rst + ping + go_away]


@target("yamux", yamux.YamuxError, seeds=_yamux_seeds)
def fuzz_yamux(data: bytes) -> None:
    session = yamux.Session(client=bool(data[:1]) and data[0] & 0x80 != 0)
    for piece in pieces(data):
        session.receive_data(piece)
        session.data_to_send()


# -- websocket frames (the websocket transport after its handshake) --------------------------------


def _wsframe_seeds() -> list[bytes]:
    mask = b"\x11\x22\x33\x44"

    def frame(op: int, payload: bytes, masked: bool, fin: bool = True) -> bytes:
        head = bytearray(wsframe.frame_header(op, len(payload), mask if masked else None))
        if not fin:
            head[0] &= 0x7F
        return bytes(head) + (wsframe.apply_mask(payload, mask) if masked else payload)

    out = []
    for masked in (True, False):
        stream = (frame(wsframe.OP_TEXT, b"\xff text", masked) + frame(wsframe.OP_BINARY, b"b" * 300, masked)
                  + frame(wsframe.OP_BINARY, b"frag", masked, fin=False) + frame(wsframe.OP_PING, b"p", masked)
                  + frame(wsframe.OP_CONT, b"ment", masked) + frame(wsframe.OP_PONG, b"", masked)
                  + frame(wsframe.OP_CLOSE, b"\x03\xe8bye", masked))
        out += [bytes([0x80 if masked else 0]) + stream, bytes([0x85 if masked else 5]) + stream]
    return out


def _wsframe_run(masked: bool, chunks: Iterator[bytes]) -> tuple[bytes, list[wsframe.Control], tuple[int, str] | None]:
    reader = wsframe.FrameReader(masked=masked, max_size=1 << 20)
    stream, controls = bytearray(), []
    error = None
    try:
        for chunk in chunks:
            for ev in reader.feed(chunk):
                if isinstance(ev, wsframe.Control):
                    controls.append(ev)
                else:
                    stream += ev
    except wsframe.FrameError as exc:
        for ev in exc.events:
            if isinstance(ev, wsframe.Control):
                controls.append(ev)
            else:
                stream += ev
        error = exc.code, exc.reason
    return bytes(stream), controls, error


@target("wsframe", ProtocolError, seeds=_wsframe_seeds)
def fuzz_wsframe(data: bytes) -> None:
    """The frame reader fed in pieces (the first byte's top bit: the server side, masked frames),
    against the same input in one piece: the same byte stream, control frames and refusal."""
    masked = bool(data[:1]) and data[0] & 0x80 != 0
    whole = _wsframe_run(masked, iter([data[1:]]))
    cut = _wsframe_run(masked, pieces(data))
    if whole != cut:
        raise AssertionError(f"in pieces {cut!r:.200}, in one {whole!r:.200}")


# -- HTTP/1 head and body framers ---------------------------------------------------------------------

_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"POST /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /u HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
    b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
    b"GET http://a.example/ HTTP/1.0\nHost: a.example\nAuthorization: Basic dXNlcjpwYXNz\n\n",
]
_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.0 404 Not Found\r\n\r\nuntil close",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
]


def _drain_body(framer: http.BodyFramer, data: bytes) -> None:
    for piece in pieces(data):
        pos = 0
        while pos < len(piece) and not framer.done:
            new = framer.feed(piece, pos)
            if new <= pos:
                raise AssertionError(f"body framer made no progress at {pos} of {len(piece)} bytes")
            pos = new


@target("http_request", http.HTTPError, seeds=lambda: [b"\x00" + r for r in _REQUESTS] + [b"\x04" + _REQUESTS[2]])
def fuzz_http_request(data: bytes) -> None:
    raw = data[1:]
    end = http.find_head_end(raw)
    if end < 0:
        return
    req = http.parse_request_head(raw[:end])
    http.canonical_host(req.host or "")
    uri = http.request_uri(req.origin_target)  # what the vhost sends on: ASCII but for a raw query
    if req.plain and uri != req.origin_target:
        raise AssertionError(f"plain target {req.origin_target!r} rewritten to {uri!r}")
    http.basic_auth(req.get("authorization"))
    _drain_body(http.request_body(req), data[:1] + raw[end:])


@target("http_response", http.HTTPError, seeds=lambda: [b"\x00" + r for r in _RESPONSES] + [b"\x03" + _RESPONSES[1]])
def fuzz_http_response(data: bytes) -> None:
    raw = data[1:]
    end = http.find_head_end(raw)
    if end < 0:
        return
    resp = http.parse_response_head(raw[:end])
    method = "HEAD" if data[:1] and data[0] & 0x40 else "GET"
    _drain_body(http.response_body(resp, method), data[:1] + raw[end:])


# -- HTTP/2 server framing (https2* plugins) -------------------------------------------------------------


class _H2Server(http2.ServerConnection):
    """Answers every request at once (headers, a body as the windows allow) and consumes bodies."""

    def on_request(self, st: http2.Stream, headers: list[tuple[bytes, bytes]]) -> None:
        self.send_headers(st.id, [(b":status", b"200"), (b"content-type", b"text/plain")])
        n = min(self.local_flow_control_window(st.id), self.max_outbound_frame_size, 100)
        if n > 0:
            self.send_data(st.id, b"x" * n, end_stream=True)

    def on_data(self, st: http2.Stream, data: bytes, flow: int) -> None:
        self.acknowledge(st.id, flow)


def _h2_seeds() -> list[bytes]:
    import hpack

    enc = hpack.Encoder()
    get = enc.encode([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.example"), (b":path", b"/")])
    post = enc.encode([(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.example"),
                       (b":path", b"/u"), (b"content-length", b"5"), (b"cookie", b"a=1")])
    f = http2.frame
    settings = f(http2.SETTINGS, 0, 0, struct.pack(">HLHL", 4, 1 << 20, 1, 0))
    frames = (http2.PREFACE + settings + f(http2.SETTINGS, http2.ACK, 0)
              + f(http2.HEADERS, http2.END_HEADERS | http2.END_STREAM, 1, get)
              + f(http2.HEADERS, 0, 3, post[:5]) + f(http2.CONTINUATION, http2.END_HEADERS, 3, post[5:])
              + f(http2.DATA, http2.END_STREAM | http2.PADDED, 3, b"\x02hello\x00\x00")
              + f(http2.PING, 0, 0, b"12345678") + f(http2.WINDOW_UPDATE, 0, 0, struct.pack(">L", 1000))
              + f(http2.RST_STREAM, 0, 1, struct.pack(">L", 8)) + f(http2.PRIORITY, 0, 5, b"\x00" * 5)
              + f(http2.GOAWAY, 0, 0, struct.pack(">LL", 3, 0)))
    return [b"\x00" + frames, b"\x07" + frames]


@target("http2", http2.ProtocolError, seeds=_h2_seeds)
def fuzz_http2(data: bytes) -> None:
    conn = _H2Server(max_streams=4, stream_window=1 << 16, conn_window=1 << 20)
    conn.initiate()
    for piece in pieces(data):
        conn.receive_data(piece)
        conn.data_to_send()
        if conn.terminated:
            return


# -- TLS ClientHello (SNI) ------------------------------------------------------------------------------


def _client_hello(server_name: str | None) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


@target("tls_hello", tls_hello.TLSHelloError,
        seeds=lambda: [_client_hello("a.example"), _client_hello(None), _client_hello("a." * 60 + "example")])
def fuzz_tls_hello(data: bytes) -> None:
    tls_hello.parse_client_hello(data)


@target("tls_hello_stream", tls_hello.TLSHelloError,
        seeds=lambda: [b"\x01" + _client_hello("a.example"), b"\x05" + _client_hello(None)])
def fuzz_tls_hello_stream(data: bytes) -> None:
    """The incremental parser the https vhost uses, fed in pieces, against the one-shot answer."""
    whole = data[1:]
    try:
        expected: object = tls_hello.parse_client_hello(whole)
    except tls_hello.TLSHelloError as exc:
        expected = type(exc)
    parser, buf = tls_hello.ClientHelloParser(), bytearray()
    got: object = None
    try:
        for piece in pieces(data):
            buf += piece
            got = parser.parse(buf)
            if got is not None:
                break
    except tls_hello.TLSHelloError as exc:
        got = type(exc)
    if got != expected:
        raise AssertionError(f"incremental parse gave {got!r}, one-shot {expected!r}")


# -- snappy framing --------------------------------------------------------------------------------


def _snappy_seeds() -> list[bytes]:
    w = SnappyFrameWriter()
    stream = w.compress(b"hello " * 100) + w.compress(bytes(range(256)) * 300)
    return [b"\x00" + stream, b"\x07" + stream]


@target("snappy", ProtocolError, seeds=_snappy_seeds)
def fuzz_snappy(data: bytes) -> None:
    r = SnappyFrameReader()
    for piece in pieces(data):
        r.decompress(piece)


# -- KCP segments and kcp-go's FEC header -------------------------------------------------------------


def _kcp_seeds() -> list[bytes]:
    out: list[bytes] = []
    sender = kcp.KCP(7, out.append)
    sender.set_nodelay(1, 20, 2, True)  # frp's kcp-go settings
    sender.send(b"x" * 3000)
    sender.update(100)
    sender.input(struct.pack("<IBBHIIII", 7, kcp.CMD_ACK, 0, 128, 100, 0, 1, 0))  # ack sn 0
    sender.update(200)
    fec = kcp.FECEncoder()
    return [struct.pack("<I", 7) + p for p in out[:3]] + [struct.pack("<I", 7) + fec.encode(out[0])[0]]


@target("kcp", kcp.KCPError, seeds=_kcp_seeds)
def fuzz_kcp(data: bytes) -> None:
    if len(data) < 4:
        return
    sent: list[bytes] = []
    conv = int.from_bytes(data[:4], "little")
    k = kcp.KCP(conv, sent.append)
    k.set_nodelay(1, 20, 2, True)
    k.send(b"abc" * 100)
    k.update(10)
    payload, rebuilt = kcp.FECDecoder().decode(data[4:])
    for p in (payload, *rebuilt):
        if p is not None:
            k.input(p)
    k.update(20)
    while k.recv():
        pass


# -- STUN ------------------------------------------------------------------------------------------------


def _stun_seeds() -> list[bytes]:
    tid = b"0123456789ab"
    req = stun.binding_request(tid)
    return [
        stun.binding_request(tid, change_ip=True, fingerprint=True).encode(),
        stun.binding_response(req, ("1.2.3.4", 5678), other=("5.6.7.8", 3478), software="x").encode(),
        stun.binding_response(req, ("2001:db8::1", 80), origin=("::1", 3478)).encode(),
    ]


@target("stun", stun.StunError, seeds=_stun_seeds)
def fuzz_stun(data: bytes) -> None:
    stun.parse(data)
    stun.parse_binding_response(data)


# -- UDP packet stream (udp/sudp work connections) -------------------------------------------------


def _udp_seeds() -> list[bytes]:
    enc = udp.PacketEncoder()
    frames = enc.packet(b"datagram", ("1.2.3.4", 53)) + enc.packet(b"", ("::1", 1)) + msg.encode(msg.Ping())
    return [b"\x00" + frames, b"\x05" + frames]


@target("udp", ProtocolError, udp.PacketTooLarge, seeds=_udp_seeds)
def fuzz_udp(data: bytes) -> None:
    r = udp.PacketReader()
    for piece in pieces(data):
        r.feed(piece)


# -- NAT hole SID probes (encrypted, from any address) --------------------------------------------------


@target("nathole_sid", ProtocolError,
        seeds=lambda: [nathole.encode_sid("sid", "tid", "sk"), nathole.encode_sid("s", "t", "sk", response=True)])
def fuzz_nathole_sid(data: bytes) -> None:
    nathole.decode_sid(data, "sk")


# -- PROXY protocol headers (we only build them: from addresses a peer controls) ----------------------


@target("proxyproto", ProxyProtocolError, ValueError,
        seeds=lambda: [b"\x01" + json.dumps([["1.2.3.4", 5], ["5.6.7.8", 80]]).encode(),
                       b"\x02" + json.dumps([["::ffff:1.2.3.4", 5], ["2001:db8::1", 443]]).encode()])
def fuzz_proxyproto(data: bytes) -> None:
    try:
        src, dst = json.loads(data[1:])
        src, dst = (str(src[0]), int(src[1])), (str(dst[0]), int(dst[1]))
    except (ValueError, TypeError, IndexError, KeyError, OverflowError):  # int(inf): the harness's own decoding
        return
    version = "v1" if data[0] & 1 else "v2"
    build_header(version, src, dst, udp=bool(data[0] & 2))


# -- config loaders and the Go-template subset ------------------------------------------------------------

_SERVER_SEEDS = [
    'bindPort = 7000\nauth.token = "t"\nallowPorts = [{ start = 2000, end = 3000 }, { single = 3001 }]\n',
    '{"bindPort": 7000, "vhostHTTPPort": 80, "transport": {"tls": {"force": true}}}',
    "bindPort: 7000\nsubDomainHost: example.com\nlog:\n  level: debug\n",
    "[common]\nbind_port = 7000\ntoken = t\nallow_ports = 2000-3000,3001\n",
    '{{ $p := "7000" }}bindPort = {{ $p }}\nauth.token = "{{ .Envs.T }}"\n',
]
_CLIENT_SEEDS = [
    ('serverAddr = "127.0.0.1"\nserverPort = 7000\n[[proxies]]\nname = "s"\ntype = "tcp"\nlocalPort = 22\n'
     'remotePort = 6000\n[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "s"\nbindPort = 9000\n'),
    '{"serverPort": 7000, "proxies": [{"name": "w", "type": "http", "localPort": 80, "customDomains": ["a"]}]}',
    "serverPort: 7000\nproxies:\n  - name: u\n    type: udp\n    localPort: 53\n    remotePort: 6053\n",
    "[common]\nserver_port = 7000\n[range:p]\ntype = tcp\nlocal_port = 6000-6002\nremote_port = 7000-7002\n",
    ('{{- range $i, $v := parseNumberRangePair "1000-1002" "2000-2002" }}\n[[proxies]]\nname = "p{{ $i }}"\n'
     'type = "tcp"\nlocalPort = {{ $v.First }}\nremotePort = {{ $v.Second }}\n{{- end }}\n'),
]


def _text(data: bytes) -> tuple[str, str] | None:
    """(file name with a format hint, text) from the input: the first byte picks the hint."""
    try:
        text = data[1:].decode()
    except UnicodeDecodeError:
        return None
    hint = ("x.toml", "x.json", "x.yaml", "x.ini", "x")[data[0] % 5] if data else "x"
    return hint, text


@target("config_frps", ConfigError, seeds=lambda: [bytes([i]) + s.encode() for i, s in enumerate(_SERVER_SEEDS)])
def fuzz_config_frps(data: bytes) -> None:
    got = _text(data)
    if got is not None:
        parse_server_config(got[1], got[0], env={"T": "x"}, resolve_token_source=False, warnings=[])


@target("config_frpc", ConfigError, seeds=lambda: [bytes([i]) + s.encode() for i, s in enumerate(_CLIENT_SEEDS)])
def fuzz_config_frpc(data: bytes) -> None:
    got = _text(data)
    if got is not None:
        parse_client_config(got[1], got[0], env={"T": "x"}, resolve_token_source=False, warnings=[])


@target("template", TemplateError,
        seeds=lambda: [s.encode() for s in (_SERVER_SEEDS[4], _CLIENT_SEEDS[4],
                                            '{{ if eq .Envs.A "1" }}a{{ else }}b{{ end }}{{ .Envs.B | default "c" }}')])
def fuzz_template(data: bytes) -> None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    # the budgets' logic with budgets small enough that coverage-instrumented rendering up to them
    # stays far below the per-input deadline (the real ones take ~1 s uninstrumented)
    render(text, {"T": "x", "A": "1"}, max_iterations=20_000, max_output=256 << 10)


# -- SOCKS5 (the socks5 client plugin's server side) ----------------------------------------------

@target("socks5", socks5.Socks5Error,
        seeds=lambda: [b"\x05\x02\x00\x02" + b"\x01\x01u\x01p" + b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50",
                       b"\x05\x01\x00" + b"\x05\x01\x00\x03\x09a.example\x01\xbb",
                       b"\x05\x01\x00" + b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x16"])
def fuzz_socks5(data: bytes) -> None:
    got = socks5.parse_greeting(data)
    if got is None:
        return
    methods, pos = got
    rest = data[pos:]
    if 2 in methods:
        auth = socks5.parse_userpass(rest)
        if auth is None:
            return
        rest = rest[auth[1]:]
    socks5.parse_request(rest)


# -- wire protocol v2: frames, messages, the ClientHello frps answers ----------------------------


def _wire_seeds() -> list[bytes]:
    hello = wire.encode_frame(wire.FRAME_CLIENT_HELLO, wire.client_hello("tcp", True, True))
    login = wire.encode_message(msg.Login(version="0.69.0", user="u", run_id="r"))
    ping = wire.encode_message(msg.Ping(privilege_key="k", timestamp=1))
    return [b"\x00" + hello + login + ping, b"\x03" + login]


@target("wire_v2", ProtocolError, seeds=_wire_seeds)
def fuzz_wire_v2(data: bytes) -> None:
    dec = wire.V2Decoder()
    for piece in pieces(data):
        dec.feed(piece)
        while (frame := dec.next_frame()) is not None:
            if frame.type == wire.FRAME_CLIENT_HELLO:
                wire.answer_client_hello(frame.payload, server_random=bytes(32))
            else:
                wire.decode_message(frame)


# -- a server manage plugin's answer (an HTTP service frps calls) ---------------------------------


@target("plugin_answer", ProtocolError,
        seeds=lambda: [b'{"reject": false, "unchange": true}',
                       b'{"reject": true, "reject_reason": "no"}',
                       (b'{"reject": false, "unchange": false, "content": {"proxy_name": "p", "remote_port": 6001,'
                        b' "user": {"user": "u", "metas": {"a": "b"}, "run_id": "r"}}}'),
                       b'{"unchange": false, "Content": null}'])
def fuzz_plugin_answer(data: bytes) -> None:
    for op, cls in ((plugin_types.Op.NEW_PROXY, msg.NewProxy), (plugin_types.Op.LOGIN, plugin_types.LoginContent)):
        res = plugin_types.parse_response(data, op)  # Go's JSON scanner and type checks (gojson.py)
        if res.unchange:
            continue
        plugin_types.decode_content(cls, res)
        plugin_types.decode_user(res)


# -- the command an ssh user runs on the SSH tunnel gateway ----------------------------------------


@target("ssh_command", ssh_command.CommandError, ssh_command.HelpRequested,
        seeds=lambda: [b"tcp --proxy_name x --remote_port 6000", b"http --custom_domain a.example --sd s",
                       b"stcp --sk secret -n name", b"tcpmux -h", b"https --basic_auth_user u --basic_auth_pass p"])
def fuzz_ssh_command(data: bytes) -> None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    ssh_command.parse(text, rand_id="0000")
