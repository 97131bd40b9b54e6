"""Sans-I/O yamux session (spec §1.4): wire bytes, stream lifecycle, flow control, errors."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.errors import ProtocolError
from aiofrp.proto.yamux import (
    FLAG_ACK,
    FLAG_FIN,
    FLAG_RST,
    FLAG_SYN,
    FRP_MAX_WINDOW,
    GO_AWAY_INTERNAL_ERR,
    GO_AWAY_NORMAL,
    GO_AWAY_PROTO_ERR,
    HEADER_SIZE,
    INITIAL_WINDOW,
    TYPE_DATA,
    TYPE_GO_AWAY,
    TYPE_PING,
    TYPE_WINDOW_UPDATE,
    DataReceived,
    GoAwayReceived,
    PingAcked,
    Session,
    StreamAcked,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
    YamuxError,
)

SYN_DELTA = FRP_MAX_WINDOW - INITIAL_WINDOW  # 6 029 312 = 0x005C0000
HALF = FRP_MAX_WINDOW // 2
MiB = 1024 * 1024

# -- helpers ------------------------------------------------------------------------------------


def frame(ftype: int, flags: int, sid: int, length: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BBHII", 0, ftype, flags, sid, length) + payload


def data_frame(sid: int, payload: bytes, flags: int = 0) -> bytes:
    return frame(TYPE_DATA, flags, sid, len(payload), payload)


def wu(sid: int, delta: int = 0, flags: int = 0) -> bytes:
    return frame(TYPE_WINDOW_UPDATE, flags, sid, delta)


PING0 = frame(TYPE_PING, FLAG_SYN, 0, 0)
SYN1 = wu(1, SYN_DELTA, FLAG_SYN)  # what a Go frpc sends to open stream 1


def out(sess: Session) -> bytes:
    return b"".join(sess.data_to_send())


def parse_frames(buf: bytes) -> list[tuple[int, int, int, int, int, bytes]]:
    """Split a complete byte stream into (version, type, flags, sid, length, payload) tuples."""
    frames = []
    pos = 0
    while pos < len(buf):
        assert len(buf) - pos >= HEADER_SIZE, "truncated frame in output"
        ver, ftype, flags, sid, length = struct.unpack_from(">BBHII", buf, pos)
        pos += HEADER_SIZE
        body = b""
        if ftype == TYPE_DATA:
            body = buf[pos : pos + length]
            assert len(body) == length, "truncated payload in output"
            pos += length
        frames.append((ver, ftype, flags, sid, length, body))
    return frames


def split(buf: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(min(c, len(buf)) for c in cuts), len(buf)]
    return [buf[a:b] for a, b in itertools.pairwise(bounds)]


def feed(sess: Session, buf: bytes, cuts: list[int] | None = None) -> list:
    events: list = []
    for chunk in split(buf, cuts or []):
        events += sess.receive_data(chunk)
    return events


def normalize(events: list) -> list:
    """DataReceived payloads as bytes, consecutive pieces for one stream merged."""
    res: list = []
    for ev in events:
        if isinstance(ev, DataReceived):
            if res and isinstance(res[-1], DataReceived) and res[-1].stream_id == ev.stream_id:
                res[-1] = DataReceived(ev.stream_id, bytes(res[-1].data) + bytes(ev.data))
                continue
            ev = DataReceived(ev.stream_id, bytes(ev.data))
        if isinstance(ev, DataReceived) and not ev.data:
            continue
        res.append(ev)
    return res


def data_of(events: list, sid: int) -> bytes:
    return b"".join(bytes(ev.data) for ev in events if isinstance(ev, DataReceived) and ev.stream_id == sid)


def pair_with_stream() -> tuple[Session, Session, int]:
    """A client and a server with one opened and acknowledged stream."""
    c, s = Session(client=True), Session(client=False)
    sid = c.open_stream()
    assert s.receive_data(out(c)) == [StreamOpened(sid), WindowUpdated(sid, FRP_MAX_WINDOW)]
    assert c.receive_data(out(s)) == [StreamAcked(sid), WindowUpdated(sid, FRP_MAX_WINDOW)]
    return c, s, sid


def cuts_for(buf_len: int, max_cuts: int = 24):
    return st.lists(st.integers(0, buf_len), max_size=max_cuts)


FAST = settings(max_examples=60, deadline=None)


# -- exact bytes (spec §1.4.3 examples) ---------------------------------------------------------


def test_open_stream_syn_bytes():
    c = Session(client=True)
    assert c.open_stream() == 1
    assert out(c) == bytes.fromhex("00 01 00 01 00 00 00 01 00 5C 00 00")
    assert c.open_stream() == 3
    assert out(c) == bytes.fromhex("00 01 00 01 00 00 00 03 00 5C 00 00")


def test_server_opens_even_ids():
    s = Session(client=False)
    assert [s.open_stream() for _ in range(3)] == [2, 4, 6]
    assert [f[3] for f in parse_frames(out(s))] == [2, 4, 6]


def test_server_ack_bytes_and_login_data_bytes():
    c, s = Session(client=True), Session(client=False)
    sid = c.open_stream()
    login = b'{"version":"0.65.0"}'
    assert c.send_data(sid, login) == len(login)
    wire = out(c)
    assert wire == (
        bytes.fromhex("00 01 00 01 00 00 00 01 00 5C 00 00")
        + bytes.fromhex("00 00 00 00 00 00 00 01")
        + struct.pack(">I", len(login))
        + login
    )
    events = normalize(s.receive_data(wire))
    assert events == [StreamOpened(1), WindowUpdated(1, FRP_MAX_WINDOW), DataReceived(1, login)]
    assert out(s) == bytes.fromhex("00 01 00 02 00 00 00 01 00 5C 00 00")


def test_ping_syn_ack_bytes():
    c, s = Session(client=True), Session(client=False)
    assert c.ping() == 0
    assert out(c) == bytes.fromhex("00 02 00 01 00 00 00 00 00 00 00 00")
    assert s.receive_data(bytes.fromhex("00 02 00 01 00 00 00 00 00 00 00 00")) == []
    ack = out(s)
    assert ack == bytes.fromhex("00 02 00 02 00 00 00 00 00 00 00 00")
    assert c.receive_data(ack) == [PingAcked(0)]
    assert c.ping() == 1
    assert out(c) == bytes.fromhex("00 02 00 01 00 00 00 00 00 00 00 01")


def test_fin_bytes_on_stream_3():
    c = Session(client=True)
    c.open_stream()
    sid = c.open_stream()
    out(c)
    c.close_stream(sid)
    assert out(c) == bytes.fromhex("00 01 00 04 00 00 00 03 00 00 00 00")


def test_rst_and_goaway_bytes():
    c = Session(client=True)
    sid = c.open_stream()
    out(c)
    c.reset_stream(sid)
    assert out(c) == bytes.fromhex("00 01 00 08 00 00 00 01 00 00 00 00")
    c.go_away()
    assert out(c) == bytes.fromhex("00 03 00 00 00 00 00 00 00 00 00 00")
    c.go_away(GO_AWAY_INTERNAL_ERR)
    assert out(c) == bytes.fromhex("00 03 00 00 00 00 00 00 00 00 00 02")


def test_default_window_peer_sends_zero_delta():
    c = Session(client=True, max_window=INITIAL_WINDOW)
    c.open_stream()
    assert out(c) == bytes.fromhex("00 01 00 01 00 00 00 01 00 00 00 00")
    s = Session(client=False)
    assert s.receive_data(bytes.fromhex("00 01 00 01 00 00 00 01 00 00 00 00")) == [StreamOpened(1)]
    assert s.send_window(1) == INITIAL_WINDOW  # a zero delta adds nothing
    assert out(s) == bytes.fromhex("00 01 00 02 00 00 00 01 00 5C 00 00")


def test_max_window_below_initial_rejected():
    with pytest.raises(ValueError):
        Session(client=True, max_window=INITIAL_WINDOW - 1)


def test_output_buffers_and_has_data_to_send():
    c = Session(client=True)
    assert not c.has_data_to_send()
    assert c.data_to_send() == []
    c.open_stream()
    assert c.has_data_to_send()
    assert out(c)
    assert not c.has_data_to_send()


def test_yamux_error_is_protocol_error():
    assert issubclass(YamuxError, ProtocolError)


# -- back-to-back sessions ----------------------------------------------------------------------


def test_bidirectional_data_and_half_close():
    c, s, sid = pair_with_stream()
    assert c.send_data(sid, b"hello ") == 6
    assert c.send_data(sid, b"world") == 5
    c.close_stream(sid)
    ev = normalize(s.receive_data(out(c)))
    assert ev == [DataReceived(sid, b"hello world"), StreamEnded(sid)]
    assert sid in s.streams and sid in c.streams  # half-closed only
    assert c.send_window(sid) == 0
    with pytest.raises(YamuxError):
        c.send_data(sid, b"x")
    # the other direction still flows
    assert s.send_data(sid, b"reply") == 5
    assert normalize(c.receive_data(out(s))) == [DataReceived(sid, b"reply")]
    s.close_stream(sid)
    assert sid not in s.streams  # both sides sent FIN: forgotten
    assert c.receive_data(out(s)) == [StreamEnded(sid)]
    assert sid not in c.streams
    with pytest.raises(YamuxError):
        s.send_data(sid, b"x")


def test_close_stream_twice_sends_one_fin():
    c, _s, sid = pair_with_stream()
    c.close_stream(sid)
    c.close_stream(sid)
    assert out(c) == wu(sid, 0, FLAG_FIN)
    c.close_stream(12345)  # unknown: no-op
    assert out(c) == b""


def test_send_empty_data_queues_nothing():
    c, _s, sid = pair_with_stream()
    assert c.send_data(sid, b"") == 0
    assert out(c) == b""


def test_send_data_to_unknown_stream_raises():
    c = Session(client=True)
    with pytest.raises(YamuxError):
        c.send_data(1, b"x")
    assert c.send_window(1) == 0


def test_data_before_ack_and_many_streams():
    c, s = Session(client=True), Session(client=False)
    sids = [c.open_stream() for _ in range(5)]
    assert sids == [1, 3, 5, 7, 9]
    for sid in sids:
        c.send_data(sid, f"stream {sid}".encode())
    ev = normalize(s.receive_data(out(c)))
    assert [e.stream_id for e in ev if isinstance(e, StreamOpened)] == sids
    for sid in sids:
        assert data_of(ev, sid) == f"stream {sid}".encode()
    acks = parse_frames(out(s))
    assert [(f[1], f[2], f[3], f[4]) for f in acks] == [
        (TYPE_WINDOW_UPDATE, FLAG_ACK, sid, SYN_DELTA) for sid in sids
    ]


def test_byte_by_byte_delivery():
    c, s = Session(client=True), Session(client=False)
    sid = c.open_stream()
    c.send_data(sid, b"abc")
    c.ping()
    c.close_stream(sid)
    ev = []
    for b in out(c):
        ev += s.receive_data(bytes([b]))
    assert normalize(ev) == [
        StreamOpened(sid),
        WindowUpdated(sid, FRP_MAX_WINDOW),
        DataReceived(sid, b"abc"),
        StreamEnded(sid),
    ]
    assert [f[1:5] for f in parse_frames(out(s))] == [
        (TYPE_WINDOW_UPDATE, FLAG_ACK, sid, SYN_DELTA),
        (TYPE_PING, FLAG_ACK, 0, 0),
    ]


@FAST
@given(
    payloads=st.lists(st.binary(max_size=600), min_size=1, max_size=6),
    data=st.data(),
)
def test_chunking_does_not_change_events(payloads, data):
    """The same byte stream, split anywhere, yields the same (merged) events and replies."""
    c = Session(client=True)
    sids = [c.open_stream() for _ in range(3)]
    for i, p in enumerate(payloads):
        c.send_data(sids[i % 3], p)
        if i % 2:
            c.ping()
    c.close_stream(sids[0])
    c.reset_stream(sids[1])
    c.send_data(sids[2], b"tail")
    c.go_away()
    wire = out(c)

    ref = Session(client=False)
    ref_events = normalize(ref.receive_data(wire))
    ref_out = out(ref)

    cuts = data.draw(cuts_for(len(wire)))
    s = Session(client=False)
    events = normalize(feed(s, wire, cuts))
    assert events == ref_events
    assert out(s) == ref_out
    # control frames (pings, GoAway) go ahead of queued data; a reset drops what its stream queued
    assert GoAwayReceived(GO_AWAY_NORMAL) in events
    for i, sid in enumerate(sids):
        expected = b"".join(p for j, p in enumerate(payloads) if j % 3 == i) + (b"tail" if i == 2 else b"")
        assert data_of(events, sid) == (b"" if i == 1 else expected)
    assert StreamEnded(sids[0]) in events and StreamReset(sids[1]) in events
    assert set(s.streams) == {sids[0], sids[2]}


# A random conversation between a client and a server with random, lagging, partial delivery.

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("open")),
        st.tuples(st.just("send"), st.booleans(), st.integers(0, 7), st.binary(min_size=1, max_size=300)),
        st.tuples(st.just("fin"), st.booleans(), st.integers(0, 7)),
        st.tuples(st.just("ping"), st.booleans()),
        st.tuples(st.just("deliver"), st.booleans(), st.integers(0, 500)),
    ),
    max_size=50,
)


class _Side:
    def __init__(self, client: bool) -> None:
        self.sess = Session(client=client)
        self.streams: list[int] = []  # streams this side knows (opened or accepted), in order
        self.sent: dict[int, bytearray] = {}
        self.got: dict[int, bytearray] = {}
        self.fin_sent: set[int] = set()
        self.ended: set[int] = set()
        self.acked: set[int] = set()
        self.pings: set[int] = set()
        self.inflight = bytearray()  # bytes produced by this side, not yet delivered to the peer

    def collect(self) -> None:
        self.inflight += out(self.sess)

    def on_events(self, events: list) -> None:
        sess = self.sess
        for ev in events:
            if isinstance(ev, StreamOpened):
                assert not sess.client and ev.stream_id % 2 == 1
                assert ev.stream_id not in self.streams
                self.streams.append(ev.stream_id)
                self.sent[ev.stream_id] = bytearray()
                self.got[ev.stream_id] = bytearray()
            elif isinstance(ev, StreamAcked):
                assert sess.client and ev.stream_id in self.streams and ev.stream_id not in self.acked
                self.acked.add(ev.stream_id)
            elif isinstance(ev, DataReceived):
                assert ev.stream_id in self.streams and ev.stream_id not in self.ended
                self.got[ev.stream_id] += ev.data
                sess.consumed(ev.stream_id, len(ev.data))
            elif isinstance(ev, StreamEnded):
                assert ev.stream_id in self.streams and ev.stream_id not in self.ended
                self.ended.add(ev.stream_id)
            elif isinstance(ev, WindowUpdated):
                assert ev.stream_id in self.streams
                assert ev.window == sess.send_window(ev.stream_id) or ev.stream_id in self.fin_sent
            elif isinstance(ev, PingAcked):
                assert ev.ping_id in self.pings
                self.pings.discard(ev.ping_id)
            else:
                pytest.fail(f"unexpected event {ev!r}")


def _deliver(src: _Side, dst: _Side, n: int) -> None:
    chunk = bytes(src.inflight[:n])
    del src.inflight[:n]
    dst.on_events(dst.sess.receive_data(chunk))
    dst.collect()


@settings(max_examples=120, deadline=None)
@given(ops=_ops)
def test_random_conversation(ops):
    c, s = _Side(client=True), _Side(client=False)
    sides = {True: c, False: s}
    for op in [("open",), *ops]:
        kind = op[0]
        if kind == "open":
            sid = c.sess.open_stream()
            c.streams.append(sid)
            c.sent[sid] = bytearray()
            c.got[sid] = bytearray()
        elif kind in ("send", "fin"):
            side = sides[op[1]]
            if side is s and not s.streams:
                _deliver(c, s, len(c.inflight))  # the server can only answer what it has seen
            live = [sid for sid in side.streams if sid not in side.fin_sent]
            if not live:
                continue
            sid = live[op[2] % len(live)]
            if kind == "send":
                assert side.sess.send_data(sid, op[3]) == len(op[3])  # far below the window
                side.sent[sid] += op[3]
            else:
                side.sess.close_stream(sid)
                side.fin_sent.add(sid)
        elif kind == "ping":
            side = sides[op[1]]
            side.pings.add(side.sess.ping())
        else:
            src = sides[op[1]]
            _deliver(src, sides[not op[1]], op[2])
        c.collect()
        s.collect()
    # flush everything still in flight (replies to replies included)
    while c.inflight or s.inflight:
        _deliver(c, s, len(c.inflight))
        _deliver(s, c, len(s.inflight))

    assert s.streams == c.streams  # every stream opened, in order
    assert c.acked == set(c.streams)
    assert not c.pings and not s.pings
    for sid in c.streams:
        assert bytes(s.got[sid]) == bytes(c.sent[sid])
        assert bytes(c.got[sid]) == bytes(s.sent[sid])
        assert (sid in s.ended) == (sid in c.fin_sent)
        assert (sid in c.ended) == (sid in s.fin_sent)
        both = sid in c.fin_sent and sid in s.fin_sent
        assert (sid in c.sess.streams) == (not both)
        assert (sid in s.sess.streams) == (not both)


# -- flow control -------------------------------------------------------------------------------


def test_initial_send_window_before_ack():
    c = Session(client=True)
    sid = c.open_stream()
    assert c.send_window(sid) == INITIAL_WINDOW
    big = bytes(INITIAL_WINDOW + 1000)
    assert c.send_data(sid, big) == INITIAL_WINDOW
    assert c.send_window(sid) == 0
    assert c.send_data(sid, b"more") == 0
    frames = parse_frames(out(c))
    assert frames[1][1:5] == (TYPE_DATA, 0, sid, INITIAL_WINDOW)
    assert len(frames) == 2  # nothing queued for the refused write
    # the ACK's delta opens the window to 6 MiB in total
    assert c.receive_data(wu(sid, SYN_DELTA, FLAG_ACK)) == [StreamAcked(sid), WindowUpdated(sid, SYN_DELTA)]
    assert c.send_window(sid) == SYN_DELTA
    assert c.send_data(sid, b"more") == 4


def test_send_data_partial_takes_prefix():
    c, s, sid = pair_with_stream()
    payload = bytes(range(256)) * (FRP_MAX_WINDOW // 256 + 10)
    n = c.send_data(sid, payload)
    assert n == FRP_MAX_WINDOW
    ev = s.receive_data(out(c))
    assert data_of(ev, sid) == payload[:n]
    assert c.send_data(sid, payload[n:]) == 0


def test_accepted_stream_send_window_includes_syn_delta():
    s = Session(client=False)
    s.receive_data(SYN1)
    assert s.send_window(1) == FRP_MAX_WINDOW
    s2 = Session(client=False)
    s2.receive_data(data_frame(1, b"x", FLAG_SYN))  # SYN on a data frame: its length is payload, not delta
    assert s2.send_window(1) == INITIAL_WINDOW


def test_window_update_only_after_half_consumed():
    c, s, sid = pair_with_stream()
    chunk = bytes(MiB)
    for _ in range(3):
        assert c.send_data(sid, chunk) == MiB
    ev = s.receive_data(out(c))
    assert len(data_of(ev, sid)) == 3 * MiB
    s.consumed(sid, 3 * MiB - 1)
    assert out(s) == b""
    s.consumed(sid, 1)
    assert out(s) == bytes.fromhex("00 01 00 00 00 00 00 01 00 30 00 00")  # delta 3 MiB
    assert c.receive_data(bytes.fromhex("00 01 00 00 00 00 00 01 00 30 00 00")) == [
        WindowUpdated(sid, FRP_MAX_WINDOW)
    ]


def test_window_update_accounts_for_buffered_data():
    """Go: delta = (max - buffered) - recvWindow, sent once delta >= max/2."""
    c, s, sid = pair_with_stream()
    c.send_data(sid, bytes(5 * MiB))
    s.receive_data(out(c))  # recvWindow = 1 MiB, buffered = 5 MiB
    s.consumed(sid, 2 * MiB)  # buffered 3: delta = 3 - 1 = 2 MiB < 3 MiB
    assert out(s) == b""
    s.consumed(sid, MiB)  # buffered 2: delta = 4 - 1 = 3 MiB
    assert out(s) == wu(sid, 3 * MiB)
    s.consumed(sid, 2 * MiB)  # buffered 0, recvWindow 4: delta 2 MiB
    assert out(s) == b""


def test_no_window_update_after_remote_fin_or_for_unknown_stream():
    c, s, sid = pair_with_stream()
    c.send_data(sid, bytes(4 * MiB))
    c.close_stream(sid)
    s.receive_data(out(c))
    s.consumed(sid, 4 * MiB)
    assert out(s) == b""
    s.consumed(999, 10)
    assert out(s) == b""


def test_peer_exceeding_receive_window_is_fatal():
    s = Session(client=False)
    s.receive_data(SYN1)
    with pytest.raises(YamuxError):
        s.receive_data(frame(TYPE_DATA, 0, 1, FRP_MAX_WINDOW + 1))  # the header alone is enough


def test_peer_exceeding_remaining_window_is_fatal():
    s = Session(client=False)
    s.receive_data(SYN1)
    s.receive_data(data_frame(1, bytes(FRP_MAX_WINDOW - 10)))
    s.receive_data(data_frame(1, bytes(10)))  # exactly the window: fine
    with pytest.raises(YamuxError):
        s.receive_data(data_frame(1, b"x"))


def test_client_with_small_window_rejects_excess():
    c = Session(client=True, max_window=INITIAL_WINDOW)
    sid = c.open_stream()
    c.receive_data(wu(sid, 0, FLAG_ACK) + data_frame(sid, bytes(INITIAL_WINDOW)))
    with pytest.raises(YamuxError):
        c.receive_data(data_frame(sid, b"x"))


ALL = -1
_flow_ops = st.lists(
    st.tuples(
        st.sampled_from(["send", "up", "down", "consume"]),
        st.one_of(st.just(ALL), st.integers(0, 100), st.integers(0, 2_000_000)),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(max_window=st.sampled_from([INITIAL_WINDOW, 2 * INITIAL_WINDOW, FRP_MAX_WINDOW]), ops=_flow_ops)
def test_flow_control_never_exceeds_advertised_window(max_window, ops):
    """Random sends, partial deliveries and consumes against a model of Go's window logic."""
    c = Session(client=True, max_window=max_window)
    s = Session(client=False, max_window=max_window)
    sid = c.open_stream()
    up = bytearray(out(c))  # client -> server, in flight
    down = bytearray()  # server -> client, in flight
    sent = 0  # payload bytes queued by the client
    granted = INITIAL_WINDOW  # window the server has advertised so far (initial + all deltas)
    granted_delivered = INITIAL_WINDOW  # deltas the client has actually received
    received = 0  # payload bytes the server was given
    buffered = 0  # received, not yet consumed
    opened = False  # the server has seen the SYN

    def server_out() -> None:
        nonlocal granted
        for f in parse_frames(out(s)):
            assert f[1] == TYPE_WINDOW_UPDATE and f[3] == sid
            granted += f[4]
            down.extend(frame(*f[1:5]))

    def deliver_up(n: int) -> None:
        nonlocal received, buffered, opened
        chunk = bytes(up[:n])
        del up[:n]
        for ev in s.receive_data(chunk):
            if isinstance(ev, StreamOpened):
                opened = True
            elif isinstance(ev, DataReceived):
                received += len(ev.data)
                buffered += len(ev.data)
                assert received <= granted  # never more than advertised
        server_out()

    def deliver_down() -> None:
        nonlocal granted_delivered
        chunk = bytes(down)
        down.clear()
        for f in parse_frames(chunk):
            granted_delivered += f[4]
        c.receive_data(chunk)
        assert c.send_window(sid) == granted_delivered - sent

    for kind, n in ops:
        if kind == "send":
            window = c.send_window(sid)
            if n == ALL:
                n = window + 1000  # more than the window allows
            taken = c.send_data(sid, bytes(n))
            assert taken == min(n, window)
            sent += taken
            assert sent <= granted_delivered
            up += out(c)
        elif kind == "up":
            deliver_up(len(up) if n == ALL else n)
        elif kind == "down":
            deliver_down()
        elif opened:  # consume
            n = buffered if n == ALL else min(n, buffered)
            buffered -= n
            s.consumed(sid, n)
            frames = parse_frames(out(s))
            # Go: recvWindow = everything advertised - everything received;
            # an update goes out iff delta = (max - buffered) - recvWindow >= max/2
            expected_delta = (max_window - buffered) - (granted - received)
            if expected_delta >= max_window // 2:
                assert [f[1:5] for f in frames] == [(TYPE_WINDOW_UPDATE, 0, sid, expected_delta)]
            else:
                assert frames == []
            for f in frames:
                granted += f[4]
                down.extend(frame(*f[1:5]))

    # flush: deliver everything, consume everything; the sender must not be left starved
    deliver_up(len(up))
    if buffered:
        s.consumed(sid, buffered)
        buffered = 0
        server_out()
    deliver_down()
    assert received == sent
    assert c.send_window(sid) >= max_window // 2


# -- FIN / RST ------------------------------------------------------------------------------------


@FAST
@given(payload=st.binary(min_size=1, max_size=200), data=st.data())
def test_fin_on_data_frame_delivered_after_payload(payload, data):
    wire = SYN1 + data_frame(1, payload, FLAG_FIN) + PING0
    cuts = data.draw(cuts_for(len(wire)))
    s = Session(client=False)
    per_call = [s.receive_data(chunk) for chunk in split(wire, cuts)]
    events = [ev for evs in per_call for ev in evs]
    assert normalize(events) == [
        StreamOpened(1),
        WindowUpdated(1, FRP_MAX_WINDOW),
        DataReceived(1, payload),
        StreamEnded(1),
    ]
    # StreamEnded never comes before the last payload byte, even across calls
    idx_end = events.index(StreamEnded(1))
    assert all(not isinstance(ev, DataReceived) for ev in events[idx_end:])
    assert parse_frames(out(s))[-1][1:5] == (TYPE_PING, FLAG_ACK, 0, 0)  # next frame still parsed
    s.close_stream(1)
    assert 1 not in s.streams


def test_fin_on_empty_data_frame():
    s = Session(client=False)
    assert s.receive_data(SYN1 + data_frame(1, b"", FLAG_FIN)) == [
        StreamOpened(1),
        WindowUpdated(1, FRP_MAX_WINDOW),
        StreamEnded(1),
    ]


def test_fin_data_frame_after_local_fin_forgets_stream():
    s = Session(client=False)
    s.receive_data(SYN1)
    s.close_stream(1)
    ev = s.receive_data(data_frame(1, b"bye", FLAG_FIN)[:-1])
    assert normalize(ev) == [DataReceived(1, b"by")]
    assert 1 in s.streams
    assert normalize(s.receive_data(b"e")) == [DataReceived(1, b"e"), StreamEnded(1)]
    assert 1 not in s.streams


def test_rst_removes_stream_on_both_sides():
    c, s, sid = pair_with_stream()
    s.send_data(sid, b"in flight")  # crosses the RST on the wire
    c.reset_stream(sid)
    assert sid not in c.streams
    assert s.receive_data(out(c)) == [StreamReset(sid)]
    assert sid not in s.streams
    with pytest.raises(YamuxError):
        s.send_data(sid, b"x")
    s.reset_stream(sid)  # unknown now: no-op, no frame
    # the data frame that crossed the RST is drained; the next frame parses
    assert c.receive_data(out(s) + PING0) == []
    assert out(c) == frame(TYPE_PING, FLAG_ACK, 0, 0)


def test_rst_for_unknown_stream_ignored():
    s = Session(client=False)
    assert s.receive_data(wu(7, 0, FLAG_RST) + wu(9, 100) + wu(11, 0, FLAG_FIN)) == []
    assert out(s) == b""


def test_local_reset_mid_payload_drops_rest_of_payload():
    """Regression: the tail of a data frame for a stream we reset must not surface as events."""
    s = Session(client=False)
    ev = s.receive_data(SYN1 + data_frame(1, b"abcdefghij", FLAG_FIN)[:-6])
    assert data_of(ev, 1) == b"abcd"
    s.reset_stream(1)
    assert s.receive_data(b"efghij" + PING0) == []
    assert parse_frames(out(s))[-2:] == [
        (0, TYPE_WINDOW_UPDATE, FLAG_RST, 1, 0, b""),
        (0, TYPE_PING, FLAG_ACK, 0, 0, b""),
    ]


# -- ping / go away -------------------------------------------------------------------------------


def test_ping_reply_echoes_id():
    s = Session(client=False)
    assert s.receive_data(frame(TYPE_PING, FLAG_SYN, 0, 0xDEADBEEF)) == []
    assert out(s) == frame(TYPE_PING, FLAG_ACK, 0, 0xDEADBEEF)
    c = Session(client=True)
    assert c.receive_data(frame(TYPE_PING, FLAG_ACK, 0, 0xDEADBEEF)) == [PingAcked(0xDEADBEEF)]
    assert out(c) == b""


def test_ping_ids_increase_and_round_trip():
    c, s = Session(client=True), Session(client=False)
    ids = [c.ping() for _ in range(5)]
    assert ids == [0, 1, 2, 3, 4]
    s.receive_data(out(c))
    assert c.receive_data(out(s)) == [PingAcked(i) for i in ids]


def test_go_away_normal():
    c, s, sid = pair_with_stream()
    s.go_away()
    assert s.local_go_away
    assert c.receive_data(out(s)) == [GoAwayReceived(GO_AWAY_NORMAL)]
    assert c.remote_go_away
    with pytest.raises(YamuxError):
        c.open_stream()
    # existing streams keep working
    c.send_data(sid, b"still here")
    assert data_of(s.receive_data(out(c)), sid) == b"still here"


@pytest.mark.parametrize("code", [GO_AWAY_PROTO_ERR, GO_AWAY_INTERNAL_ERR])
def test_go_away_error_codes_are_fatal(code):
    c = Session(client=True)
    with pytest.raises(YamuxError):
        c.receive_data(frame(TYPE_GO_AWAY, 0, 0, code))
    assert c.remote_go_away


def test_local_go_away_rsts_new_streams():
    # a peer that ignores (or has not yet seen) our GoAway: its SYNs get RST, SYN data is drained
    s = Session(client=False)
    s.go_away()
    out(s)
    ev = s.receive_data(SYN1 + data_frame(3, b"payload", FLAG_SYN) + PING0)
    assert ev == []
    assert not s.streams
    assert out(s) == wu(1, 0, FLAG_RST) + wu(3, 0, FLAG_RST) + frame(TYPE_PING, FLAG_ACK, 0, 0)
    # back to back: the opener sees the RST and forgets the stream
    c, s = Session(client=True), Session(client=False)
    s.go_away()
    sid = c.open_stream()  # crosses the GoAway on the wire
    c.send_data(sid, b"early")
    assert s.receive_data(out(c)) == []
    assert c.receive_data(out(s)) == [GoAwayReceived(GO_AWAY_NORMAL), StreamReset(sid)]
    assert not c.streams and not s.streams


# -- malformed input ------------------------------------------------------------------------------


def test_bad_version_is_fatal():
    s = Session(client=False)
    bad = bytes([1]) + SYN1[1:]
    with pytest.raises(YamuxError, match="version"):
        s.receive_data(bad)
    s = Session(client=False)
    s.receive_data(bad[:5])  # incomplete header: not judged yet
    with pytest.raises(YamuxError):
        s.receive_data(bad[5:])


@pytest.mark.parametrize("ftype", [4, 5, 0xFF])
def test_bad_frame_type_is_fatal(ftype):
    s = Session(client=False)
    with pytest.raises(YamuxError, match="type"):
        s.receive_data(frame(ftype, 0, 0, 0))


def test_duplicate_syn_is_fatal():
    s = Session(client=False)
    s.receive_data(SYN1)
    with pytest.raises(YamuxError, match="duplicate"):
        s.receive_data(data_frame(1, b"x", FLAG_SYN))


@pytest.mark.parametrize(
    ("client", "sid"),
    [(False, 0), (False, 2), (False, 4), (True, 0), (True, 1), (True, 3)],
)
def test_peer_opens_stream_with_wrong_parity_or_zero(client, sid):
    sess = Session(client=client)
    with pytest.raises(YamuxError, match="invalid stream id"):
        sess.receive_data(wu(sid, 0, FLAG_SYN))


def test_client_accepts_server_opened_even_stream():
    c = Session(client=True)
    assert c.receive_data(wu(2, 0, FLAG_SYN)) == [StreamOpened(2)]
    assert out(c) == wu(2, SYN_DELTA, FLAG_ACK)


def test_partial_header_waits():
    s = Session(client=False)
    for i in range(HEADER_SIZE - 1):
        assert s.receive_data(SYN1[i : i + 1]) == []
    assert not s.streams and out(s) == b""
    assert s.receive_data(SYN1[-1:]) == [StreamOpened(1), WindowUpdated(1, FRP_MAX_WINDOW)]


def test_partial_payload_waits_and_delivers_pieces():
    s = Session(client=False)
    s.receive_data(SYN1)
    f = data_frame(1, b"0123456789") + PING0
    assert normalize(s.receive_data(f[:15])) == [DataReceived(1, b"012")]
    assert normalize(s.receive_data(f[15:20])) == [DataReceived(1, b"34567")]
    out(s)
    assert normalize(s.receive_data(f[20:25])) == [DataReceived(1, b"89")]
    assert out(s) == b""  # ping header incomplete
    assert s.receive_data(f[25:]) == []
    assert out(s) == frame(TYPE_PING, FLAG_ACK, 0, 0)


def test_empty_input():
    s = Session(client=False)
    assert s.receive_data(b"") == []


@FAST
@given(junk=st.binary(max_size=100), data=st.data())
def test_data_for_unknown_stream_is_drained(junk, data):
    """Payload for a stream that does not exist is skipped, whatever it contains."""
    wire = data_frame(99, junk, FLAG_FIN) + data_frame(7, bytes([0xFF]) * 13) + PING0 + SYN1
    s = Session(client=False)
    events = feed(s, wire, data.draw(cuts_for(len(wire))))
    assert events == [StreamOpened(1), WindowUpdated(1, FRP_MAX_WINDOW)]
    assert [f[1:5] for f in parse_frames(out(s))] == [
        (TYPE_PING, FLAG_ACK, 0, 0),
        (TYPE_WINDOW_UPDATE, FLAG_ACK, 1, SYN_DELTA),
    ]


def test_data_memoryview_events_are_slices_of_input():
    s = Session(client=False)
    s.receive_data(SYN1)
    buf = data_frame(1, b"abc") + data_frame(1, b"def")
    ev = s.receive_data(buf)
    assert [bytes(e.data) for e in ev] == [b"abc", b"def"]
