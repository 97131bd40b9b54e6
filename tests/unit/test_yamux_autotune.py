"""Receive-window autotuning of the sans-I/O yamux session (deterministic: the test is the clock).

With ``autotune=True`` a stream's receive window starts at yamux's 256 KiB and doubles, up to
``max_window``, only while the peer is limited by it (an epoch of more than a window consumed in
less than ``4 * fraction * rtt``, quic-go's rule); window updates go out per half window
consumed as Go sends them, one frame per threshold crossed, never more credit than the current window.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.yamux import (
    FLAG_ACK,
    FLAG_SYN,
    FRP_MAX_WINDOW,
    HEADER_SIZE,
    INITIAL_WINDOW,
    TYPE_DATA,
    TYPE_WINDOW_UPDATE,
    DataReceived,
    Session,
)

KiB = 1024
MiB = 1024 * KiB
RTT = 0.001  # 1 ms, as the driver would have measured it with a ping


def frames(wire: bytes) -> list[tuple[int, int, int, int]]:
    """(type, flags, stream id, length) of every frame in ``wire``."""
    out = []
    pos = 0
    while pos < len(wire):
        _v, t, fl, sid, ln = struct.unpack_from(">BBHII", wire, pos)
        out.append((t, fl, sid, ln))
        pos += HEADER_SIZE + (ln if t == TYPE_DATA else 0)
    assert pos == len(wire)
    return out


def out(sess: Session) -> bytes:
    return b"".join(bytes(b) for b in sess.data_to_send())


def updates(wire: bytes, sid: int) -> list[int]:
    """The deltas of the plain window updates for ``sid`` in ``wire``."""
    return [ln for t, fl, s, ln in frames(wire) if t == TYPE_WINDOW_UPDATE and s == sid and fl == 0]


def receiver_with_stream(max_window: int = FRP_MAX_WINDOW, rtt: float = RTT) -> Session:
    """An autotuning frps-side session that a (Go-like) peer opened stream 1 on."""
    s = Session(client=False, max_window=max_window, autotune=True)
    if rtt:
        s.rtt_sample(rtt)
    s.receive_data(struct.pack(">BBHII", 0, TYPE_WINDOW_UPDATE, FLAG_SYN, 1, FRP_MAX_WINDOW - INITIAL_WINDOW))
    out(s)  # the ACK
    return s


def data_frame(sid: int, n: int) -> bytes:
    return struct.pack(">BBHII", 0, TYPE_DATA, 0, sid, n) + bytes(n)


def pump(s: Session, sid: int, total: int, seconds_per_mib: float, chunk: int = 16 * KiB) -> list[int]:
    """A peer that always sends all the credit it has (window-limited), the application consuming
    each chunk at once, the clock advancing ``seconds_per_mib``; returns the update deltas."""
    credit = s.streams[sid].recv_window
    now = 0.0
    sent = 0
    deltas: list[int] = []
    while sent < total:
        n = min(chunk, credit, total - sent)
        assert n > 0, "the peer ran out of credit: an update is missing"
        s.receive_data(data_frame(sid, n))
        credit -= n
        sent += n
        now += n / MiB * seconds_per_mib
        s.consumed(sid, n, now)
        got = updates(out(s), sid)
        deltas += got
        credit += sum(got)
        st_ = s.streams[sid]
        assert credit == st_.recv_window
        assert credit + st_.unconsumed <= s.window <= s.max_window
    return deltas


def test_autotuned_stream_starts_at_256k_on_the_wire() -> None:
    c = Session(client=True, autotune=True)
    sid = c.open_stream()
    assert frames(out(c)) == [(TYPE_WINDOW_UPDATE, FLAG_SYN, sid, 0)]  # no delta: 256 KiB
    s = Session(client=False, autotune=True)
    s.receive_data(struct.pack(">BBHII", 0, TYPE_WINDOW_UPDATE, FLAG_SYN, 1, FRP_MAX_WINDOW - INITIAL_WINDOW))
    assert frames(out(s)) == [(TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0)]
    assert s.send_window(1) == FRP_MAX_WINDOW  # what the peer grants us is unaffected
    assert s.streams[1].recv_window == INITIAL_WINDOW


def test_window_grows_while_the_peer_is_window_limited_and_stops_at_max() -> None:
    s = receiver_with_stream()
    # 1 GB/s: any window up to 6 MiB is consumed within 4 * rtt
    deltas = pump(s, 1, 64 * MiB, seconds_per_mib=0.001)
    assert s.window == FRP_MAX_WINDOW
    assert max(deltas) <= FRP_MAX_WINDOW
    assert sum(deltas) + INITIAL_WINDOW - s.streams[1].unconsumed <= 64 * MiB + FRP_MAX_WINDOW


def test_window_does_not_grow_when_the_application_sets_the_pace() -> None:
    s = receiver_with_stream()
    # 10 MB/s: a 256 KiB window takes 25 ms, far more than 4 * 1 ms
    deltas = pump(s, 1, 16 * MiB, seconds_per_mib=0.1)
    assert s.window == INITIAL_WINDOW
    assert set(deltas) == {INITIAL_WINDOW // 2}


def test_window_grows_to_what_the_round_trip_needs() -> None:
    # 100 MB/s over a 1 ms round trip: 100 KB in flight per rtt; the window settles at the
    # first doubling that takes longer than 4 rtts to consume: 512 KiB
    s = receiver_with_stream()
    pump(s, 1, 32 * MiB, seconds_per_mib=0.01)
    assert s.window == 512 * KiB
    # the same rate over a 20 ms round trip needs the whole 6 MiB
    s = receiver_with_stream(rtt=0.020)
    pump(s, 1, 64 * MiB, seconds_per_mib=0.01)
    assert s.window == FRP_MAX_WINDOW


def test_catching_up_on_a_backlog_is_not_taken_for_a_window_limited_peer() -> None:
    """A receiver that was away (descheduled) for much longer than 4 rtts, then takes the whole window the
    peer filled meanwhile at once, is the slow side: the window stays."""
    s = receiver_with_stream()
    st_ = s.streams[1]
    now = 0.0
    for _ in range(64):
        credit = st_.recv_window
        s.receive_data(data_frame(1, credit))
        for _chunk in range(credit // (16 * KiB)):
            s.consumed(1, 16 * KiB, now)  # all within one instant
        out(s)
        now += 0.010  # away for 10 ms
    assert s.window == INITIAL_WINDOW


def test_no_round_trip_yet_no_growth() -> None:
    s = receiver_with_stream(rtt=0)
    pump(s, 1, 8 * MiB, seconds_per_mib=0.0001)
    assert s.window == INITIAL_WINDOW


def test_window_never_exceeds_a_small_max() -> None:
    s = receiver_with_stream(max_window=INITIAL_WINDOW * 3)
    deltas = pump(s, 1, 16 * MiB, seconds_per_mib=0.0001)
    assert s.window == INITIAL_WINDOW * 3
    assert max(deltas) <= INITIAL_WINDOW * 3


def test_updates_are_batched_per_half_window() -> None:
    s = receiver_with_stream(rtt=0)  # no growth: a fixed 256 KiB window
    deltas = pump(s, 1, 4 * MiB, seconds_per_mib=0.1, chunk=1 * KiB)
    assert len(deltas) == 4 * MiB // (INITIAL_WINDOW // 2)  # 32 frames for 4096 chunks
    assert set(deltas) == {INITIAL_WINDOW // 2}


def test_held_data_withholds_credit() -> None:
    """What the application has not taken yet still counts against the window (back-pressure)."""
    s = receiver_with_stream()
    s.receive_data(data_frame(1, INITIAL_WINDOW))
    s.consumed(1, 96 * KiB, 0.0)
    assert updates(out(s), 1) == []  # 3/8 consumed: below the half
    s.consumed(1, 32 * KiB, 0.0)
    assert updates(out(s), 1) == [128 * KiB]
    assert s.streams[1].recv_window == 128 * KiB  # 128 KiB still held by the application


def test_rtt_sample_keeps_the_smallest() -> None:
    s = Session(client=True, autotune=True)
    assert s.rtt == 0
    s.rtt_sample(0.004)
    s.rtt_sample(0.0002)
    s.rtt_sample(0.050)  # a ping queued behind bulk data: ignored
    s.rtt_sample(0.0)
    s.rtt_sample(-1.0)
    assert s.rtt == 0.0002


def test_autotuned_receiver_with_go_like_sender_moves_everything() -> None:
    """A plain (Go-like) sender against an autotuning receiver: data flows, windows are obeyed."""
    c = Session(client=True)  # advertises 6 MiB, sends whatever credit it gets
    s = Session(client=False, autotune=True)
    s.rtt_sample(RTT)
    sid = c.open_stream()
    s.receive_data(out(c))
    c.receive_data(out(s))
    payload = bytes(range(256)) * (40 * MiB // 256)
    got = 0
    now = 0.0
    pos = 0
    while got < len(payload):
        pos += c.send_data(sid, payload[pos:pos + MiB])
        for ev in s.receive_data(out(c)):  # raises if the sender exceeds our window
            if isinstance(ev, DataReceived):
                assert bytes(ev.data) == payload[got:got + len(ev.data)]
                got += len(ev.data)
                now += len(ev.data) / 1e10  # 10 GB/s: the window is what limits the sender
                s.consumed(sid, len(ev.data), now)
        c.receive_data(out(s))
        assert c.send_window(sid) + s.streams[sid].unconsumed <= s.window
    assert s.window == FRP_MAX_WINDOW


_consume = st.lists(st.tuples(st.integers(1, 300 * KiB), st.floats(0, 0.05)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(max_window=st.sampled_from([INITIAL_WINDOW, 3 * INITIAL_WINDOW, FRP_MAX_WINDOW]),
       rtt=st.sampled_from([0.0, 0.0001, 0.001, 0.05]), ops=_consume)
def test_credit_never_exceeds_the_window(max_window: int, rtt: float, ops: list[tuple[int, float]]) -> None:
    """Random arrivals, consumption and clock steps: the peer's credit plus what the application
    holds never exceeds the current window, which never exceeds ``max_window`` nor shrinks."""
    s = receiver_with_stream(max_window=max_window, rtt=rtt)
    st_ = s.streams[1]
    credit = st_.recv_window
    now = 0.0
    window = s.window
    for size, dt in ops:
        n = min(size, credit)
        if n:
            s.receive_data(data_frame(1, n))
            credit -= n
        now += dt
        if st_.unconsumed:
            s.consumed(1, min(st_.unconsumed, size), now)
        credit += sum(updates(out(s), 1))
        assert credit == st_.recv_window
        assert credit + st_.unconsumed <= s.window <= max_window
        assert s.window >= window
        window = s.window


def test_the_window_is_one_for_all_streams() -> None:
    """A window grown on one stream applies to every stream at its next update, so a peer that
    shares its sending fairly among window-limited streams gives them equal bytes."""
    s = receiver_with_stream()
    s.receive_data(struct.pack(">BBHII", 0, TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0))
    out(s)
    pump(s, 1, 64 * MiB, seconds_per_mib=0.001)  # stream 1 is fast: the window grows
    assert s.window == FRP_MAX_WINDOW
    s.receive_data(data_frame(3, INITIAL_WINDOW))
    s.consumed(3, INITIAL_WINDOW // 2, 1.0)
    assert updates(out(s), 3) == [FRP_MAX_WINDOW - INITIAL_WINDOW // 2]  # stream 3 gets it too
    assert s.streams[3].recv_window + s.streams[3].unconsumed == FRP_MAX_WINDOW
