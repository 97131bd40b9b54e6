"""proto/http2.py, the HTTP/2 server framing of the https2* plugins, against the ``h2`` library as
the browser: requests and answers round-trip, malformed requests are reset alone (the connection
goes on), protocol violations end the connection with GOAWAY, flow control and SETTINGS as RFC 9113."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import hyperframe.frame
import pytest

from aiofrp.proto import http2 as p2

REQ = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.com"), (b":path", b"/x")]


class Server(p2.ServerConnection):
    def __init__(self, **kw: Any) -> None:
        super().__init__(max_streams=kw.get("max_streams", 250), stream_window=1 << 20, conn_window=65535 + (16 << 20))
        self.requests: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        self.data: list[tuple[int, bytes, int]] = []
        self.ended: list[int] = []
        self.resets: list[int] = []
        self.windows: list[int] = []

    def on_request(self, st: p2.Stream, headers: list[tuple[bytes, bytes]]) -> None:
        self.requests.append((st.id, list(headers)))

    def on_data(self, st: p2.Stream, data: bytes, flow: int) -> None:
        self.data.append((st.id, data, flow))

    def on_end(self, st: p2.Stream) -> None:
        self.ended.append(st.id)

    def on_reset(self, st: p2.Stream) -> None:
        self.resets.append(st.id)

    def on_window(self, sid: int) -> None:
        self.windows.append(sid)


def _pair(**kw: Any) -> tuple[Server, h2.connection.H2Connection]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=True))
    client.initiate_connection()
    server = Server(**kw)
    server.initiate()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # the SETTINGS ACK
    return server, client


def _to_client(server: Server, client: h2.connection.H2Connection) -> list[Any]:
    return client.receive_data(server.data_to_send())


def _frames(data: bytes) -> list[Any]:
    out = []
    while data:
        f, n = hyperframe.frame.Frame.parse_frame_header(memoryview(data[:9]))
        f.parse_body(memoryview(data[9:9 + n]))
        out.append(f)
        data = data[9 + n:]
    return out


def test_initial_settings_and_window() -> None:
    s = Server()
    s.initiate()
    frames = _frames(s.data_to_send())
    assert isinstance(frames[0], hyperframe.frame.SettingsFrame)
    assert frames[0].settings == {1: 4096, 2: 0, 4: 1 << 20, 5: 16384, 3: 250}
    assert isinstance(frames[1], hyperframe.frame.WindowUpdateFrame) and frames[1].window_increment == 16 << 20


def test_request_and_answer_round_trip() -> None:
    server, client = _pair()
    client.send_headers(1, [*REQ, (b"cookie", b"a=1"), (b"cookie", b"b=2")], end_stream=True)
    server.receive_data(client.data_to_send())
    assert server.requests == [(1, [*REQ, (b"cookie", b"a=1"), (b"cookie", b"b=2")])]
    assert server.ended == [] and server.streams[1].remote_closed
    body = bytes(range(256)) * 200
    server.send_headers(1, [(b":status", b"200"), (b"x-name", b"caf\xe9")])
    view = memoryview(body)
    while view:
        n = min(server.local_flow_control_window(1), server.max_outbound_frame_size, len(view))
        assert n > 0
        server.send_data(1, view[:n], end_stream=n == len(view))
        view = view[n:]
        for ev in _to_client(server, client):
            if isinstance(ev, h2.events.DataReceived):
                client.acknowledge_received_data(ev.flow_controlled_length, 1)
        server.receive_data(client.data_to_send())
    assert 1 not in server.streams  # both sides ended


def test_headers_split_over_continuation_frames() -> None:
    server, client = _pair()
    big = [(b"x-big-%d" % i, b"v" * 900) for i in range(40)]  # ~36 KB: HEADERS + CONTINUATION
    client.send_headers(1, [*REQ, *big], end_stream=True)
    wire = client.data_to_send()
    assert any(isinstance(f, hyperframe.frame.ContinuationFrame) for f in _frames(wire))
    server.receive_data(wire[:100])  # and in pieces
    server.receive_data(wire[100:])
    assert server.requests and server.requests[0][1][4:] == big
    server.send_headers(1, [(b":status", b"200"), *big], end_stream=True)
    events = _to_client(server, client)
    resp = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert list(resp.headers)[1:] == big


@pytest.mark.parametrize("headers", [
    [*REQ, (b"X-Upper", b"1")],  # not lower case
    [*REQ, (b"connection", b"keep-alive")],  # connection-specific
    [*REQ, (b"te", b"gzip")],
    [*REQ, (b"x-a", b"a\r\nx-injected: 1")],  # CR LF in a value
    [*REQ, (b"x-a", b"a\x00")],
    [REQ[0], REQ[1], REQ[2]],  # no :path
    [*REQ, (b":path", b"/again")],  # repeated pseudo-header
    [(b"x-a", b"1"), *REQ],  # pseudo-header after a regular one
    [*REQ, (b":status", b"200")],  # a response pseudo-header
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"")],  # empty :path
])
def test_malformed_request_is_reset_alone(headers: list[tuple[bytes, bytes]]) -> None:
    server, client = _pair()
    client.send_headers(1, headers, end_stream=True)
    server.receive_data(client.data_to_send())
    assert server.requests == []
    resets = [e for e in _to_client(server, client) if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(1, p2.PROTOCOL_ERROR)]
    client.send_headers(3, REQ, end_stream=True)  # the connection goes on
    server.receive_data(client.data_to_send())
    assert [sid for sid, _ in server.requests] == [3]


def test_body_shorter_than_content_length_is_reset() -> None:
    server, client = _pair()
    client.send_headers(1, [(b":method", b"POST"), *REQ[1:], (b"content-length", b"10")])
    client.send_data(1, b"12345", end_stream=True)
    server.receive_data(client.data_to_send())
    assert server.requests and server.resets == [1] and server.ended == []
    events = _to_client(server, client)
    assert any(isinstance(e, h2.events.StreamReset) and e.error_code == p2.PROTOCOL_ERROR for e in events)


def test_padding_and_priority_fields_are_skipped() -> None:
    server, client = _pair()
    block = client.encoder.encode([(b":method", b"POST"), *REQ[1:]])
    # HEADERS with 3 bytes of padding and a priority field, DATA with 5 bytes of padding
    headers = p2.frame(p2.HEADERS, p2.END_HEADERS | p2.PADDED | p2.PRIORITY_FLAG, 1,
                       b"\x03" + b"\x00\x00\x00\x00\x10" + block + b"\x00" * 3)
    data = p2.frame(p2.DATA, p2.END_STREAM | p2.PADDED, 1, b"\x05" + b"hello" + b"\x00" * 5)
    server.receive_data(headers + data)
    assert server.requests == [(1, [(b":method", b"POST"), *REQ[1:]])]
    assert server.data == [(1, b"hello", 11)] and server.ended == [1]  # padding counts for flow control


def test_request_body_and_flow_control_credit() -> None:
    server, client = _pair()
    client.send_headers(1, [(b":method", b"POST"), *REQ[1:]])
    chunk = b"z" * 16384
    for _ in range(20):  # 320 KiB: past a quarter of the 1 MiB stream window
        client.send_data(1, chunk)
    client.end_stream(1)
    server.receive_data(client.data_to_send())
    assert b"".join(d for _, d, _ in server.data) == chunk * 20 and server.ended == [1]
    for sid, _, flow in server.data:
        server.acknowledge(sid, flow)
    updates = [f for f in _frames(server.data_to_send()) if isinstance(f, hyperframe.frame.WindowUpdateFrame)]
    # the stream has ended: only the connection is credited, once a quarter of 16 MiB is owed
    assert updates == []
    assert server.in_conn_unacked == 20 * 16384


def test_stream_window_update_while_the_request_is_open() -> None:
    server, client = _pair()
    client.send_headers(1, [(b":method", b"POST"), *REQ[1:]])
    for _ in range(17):
        client.send_data(1, b"z" * 16384)
    server.receive_data(client.data_to_send())
    for sid, _, flow in server.data:
        server.acknowledge(sid, flow)
    updates = [f for f in _frames(server.data_to_send()) if isinstance(f, hyperframe.frame.WindowUpdateFrame)]
    # a quarter of the 1 MiB window owed (16 frames): credited; the 17th waits for more
    assert [(f.stream_id, f.window_increment) for f in updates] == [(1, 16 * 16384)]
    assert server.streams[1].in_unacked == 16384


def test_credit_returned_at_once_when_the_window_runs_low() -> None:
    server, client = _pair()
    client.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384})
    for sid in (1, 3):
        client.send_headers(sid, [(b":method", b"POST"), *REQ[1:]])
    # stream 1 fills most of its 1 MiB window and is never consumed (a stalled upstream);
    # stream 3 sends a little, which is consumed: with stream 1's window low, nothing waits
    for _ in range(50):
        client.send_data(1, b"a" * 16384)
    client.send_data(3, b"b" * 1000)
    server.receive_data(client.data_to_send())
    server.data_to_send()
    assert server.streams[1].in_window < (1 << 20) >> 2
    server.acknowledge(1, 16384)  # one frame of the stalled stream consumed after all
    updates = [f for f in _frames(server.data_to_send()) if isinstance(f, hyperframe.frame.WindowUpdateFrame)]
    assert [(f.stream_id, f.window_increment) for f in updates] == [(1, 16384)]
    server.acknowledge(3, 1000)  # plenty of window left on stream 3 and the connection: owed
    assert not server.data_to_send() and server.streams[3].in_unacked == 1000


def test_too_many_streams_are_refused() -> None:
    server, client = _pair(max_streams=2)
    for sid in (1, 3):
        client.send_headers(sid, REQ)
    # the h2 client keeps to our limit: the third HEADERS is framed by hand, with its encoder
    third = p2.frame(p2.HEADERS, p2.END_HEADERS, 5, client.encoder.encode(REQ))
    server.receive_data(client.data_to_send() + third)
    assert [sid for sid, _ in server.requests] == [1, 3]
    resets = [f for f in _frames(server.data_to_send()) if isinstance(f, hyperframe.frame.RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in resets] == [(5, p2.REFUSED_STREAM)]


def test_ping_settings_and_window_updates() -> None:
    server, client = _pair()
    client.send_headers(1, REQ, end_stream=True)
    server.receive_data(client.data_to_send())
    assert server.local_flow_control_window(1) == 65535
    client.ping(b"12345678")
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100000,
                            h2.settings.SettingCodes.MAX_FRAME_SIZE: 32768})
    client.increment_flow_control_window(1 << 20)
    server.receive_data(client.data_to_send())
    assert server.streams[1].out_window == 100000 and server.max_outbound_frame_size == 32768
    assert server.local_flow_control_window(1) == 100000
    events = _to_client(server, client)
    assert any(isinstance(e, h2.events.PingAckReceived) and e.ping_data == b"12345678" for e in events)
    assert any(isinstance(e, h2.events.SettingsAcknowledged) for e in events)
    assert 0 in server.windows


def test_client_reset_reaches_the_stream() -> None:
    server, client = _pair()
    client.send_headers(1, REQ)
    client.reset_stream(1)
    server.receive_data(client.data_to_send())
    assert server.resets == [1] and 1 not in server.streams


@pytest.mark.parametrize("wire", [
    b"GET / HTTP/1.1\r\n\r\n" + b"\x00" * 20,  # not the preface
])
def test_bad_preface_is_a_connection_error(wire: bytes) -> None:
    server = Server()
    server.initiate()
    server.data_to_send()
    with pytest.raises(p2.ProtocolError):
        server.receive_data(wire)
    frames = _frames(server.data_to_send())
    assert isinstance(frames[-1], hyperframe.frame.GoAwayFrame) and frames[-1].error_code == p2.PROTOCOL_ERROR


def test_protocol_violations_end_the_connection() -> None:
    for bad, code in [
        (p2.frame(p2.HEADERS, p2.END_HEADERS, 2, b""), p2.PROTOCOL_ERROR),  # even stream id
        (p2.frame(p2.DATA, 0, 7, b"x"), p2.PROTOCOL_ERROR),  # DATA on an idle stream
        (p2.frame(p2.PING, 0, 0, b"1234"), p2.FRAME_SIZE_ERROR),
        (p2.frame(p2.CONTINUATION, p2.END_HEADERS, 1, b""), p2.PROTOCOL_ERROR),
        (p2.frame(p2.HEADERS, p2.END_HEADERS, 1, b"\xff\xff\xff\xff"), p2.COMPRESSION_ERROR),
        (b"\x00\x80\x00" + b"\x00" * 6 + b"x" * 32768, p2.FRAME_SIZE_ERROR),  # over 16 KiB
    ]:
        server, _client = _pair()
        with pytest.raises(p2.ProtocolError):
            server.receive_data(bad)
        frames = _frames(server.data_to_send())
        assert isinstance(frames[-1], hyperframe.frame.GoAwayFrame) and frames[-1].error_code == code, bad[:12]
