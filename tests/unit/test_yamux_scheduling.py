"""Fair sending and window-update batching of the sans-I/O yamux session (deterministic)."""

from __future__ import annotations

import struct

from aiofrp.proto.yamux import (
    FLAG_FIN,
    FLAG_SYN,
    FRP_MAX_WINDOW,
    HEADER_SIZE,
    INITIAL_WINDOW,
    TYPE_DATA,
    TYPE_PING,
    TYPE_WINDOW_UPDATE,
    DataReceived,
    Session,
    StreamEnded,
)

MiB = 1024 * 1024


def frames(bufs: list) -> list[tuple[int, int, int, int]]:
    """(type, flags, stream id, length) of every frame in the buffers ``data_to_send`` returned."""
    wire = b"".join(bytes(b) for b in bufs)
    out = []
    pos = 0
    while pos < len(wire):
        _v, t, fl, sid, ln = struct.unpack_from(">BBHII", wire, pos)
        out.append((t, fl, sid, ln))
        pos += HEADER_SIZE + (ln if t == TYPE_DATA else 0)
    assert pos == len(wire)
    return out


def opened_streams(n: int) -> tuple[Session, list[int]]:
    s = Session(client=True)
    sids = [s.open_stream() for _ in range(n)]
    s.data_to_send()  # the SYNs
    return s, sids


def test_eight_busy_streams_share_bytes_fairly() -> None:
    s, sids = opened_streams(8)
    # streams opened in order, each with far more than a turn's worth queued; the first is greediest
    for i, sid in enumerate(sids):
        s.send_data(sid, bytes(200_000 if i else INITIAL_WINDOW))
    sent = dict.fromkeys(sids, 0)
    for _flush in range(4):  # what a transport takes in four flushes
        for t, _fl, sid, ln in frames(s.data_to_send(256 * 1024)):
            if t == TYPE_DATA:
                sent[sid] += ln
    fair = sum(sent.values()) / len(sids)
    assert sum(sent.values()) == 4 * 256 * 1024
    for sid in sids:
        assert 0.7 * fair <= sent[sid] <= 1.3 * fair, sent


def test_a_stream_opened_later_gets_its_turn_at_once() -> None:
    s, (bulk,) = opened_streams(1)
    s.send_data(bulk, bytes(INITIAL_WINDOW))
    first = frames(s.data_to_send(64 * 1024))
    assert first == [(TYPE_DATA, 0, bulk, 64 * 1024)]
    late = s.open_stream()
    s.send_data(late, b"x" * 64)
    out = frames(s.data_to_send(64 * 1024))
    # the SYN is a control frame: before any data; the small stream's data within one turn
    assert out[0] == (TYPE_WINDOW_UPDATE, FLAG_SYN, late, FRP_MAX_WINDOW - INITIAL_WINDOW)
    data = [f for f in out if f[0] == TYPE_DATA]
    assert (TYPE_DATA, 0, late, 64) in data
    assert sum(f[3] for f in data[: data.index((TYPE_DATA, 0, late, 64))]) <= 64 * 1024


def test_ping_and_window_update_go_ahead_of_queued_data() -> None:
    s, (bulk,) = opened_streams(1)
    s.send_data(bulk, bytes(INITIAL_WINDOW))
    s.data_to_send(16 * 1024)
    pid = s.ping()
    out = frames(s.data_to_send(0))  # transport paused: control frames only
    assert out == [(TYPE_PING, FLAG_SYN, 0, pid)]
    assert s.queued(bulk) == INITIAL_WINDOW - 16 * 1024


def test_fin_follows_the_streams_queued_data() -> None:
    s, (a, b) = opened_streams(2)
    s.send_data(a, bytes(100_000))
    s.close_stream(a)
    s.send_data(b, b"hello")
    s.close_stream(b)
    out = frames(s.data_to_send())
    a_frames = [f for f in out if f[2] == a]
    assert a_frames[-1] == (TYPE_WINDOW_UPDATE, FLAG_FIN, a, 0)
    assert sum(f[3] for f in a_frames if f[0] == TYPE_DATA) == 100_000
    assert [f for f in out if f[2] == b] == [(TYPE_DATA, 0, b, 5), (TYPE_WINDOW_UPDATE, FLAG_FIN, b, 0)]


def _replay(a: int, b: int) -> list:
    s = Session(client=True)
    assert s.open_stream() == a and s.open_stream() == b
    s.send_data(a, b"x" * 70_000)
    s.close_stream(a)
    s.send_data(b, b"y")
    return s.data_to_send(20_000) + s.data_to_send(20_000) + s.data_to_send()


def test_queued_data_and_fin_arrive_in_order_at_the_peer() -> None:
    peer = Session(client=False)
    events = peer.receive_data(b"".join(bytes(x) for x in _replay(1, 3)))
    got = b"".join(bytes(e.data) for e in events if isinstance(e, DataReceived) and e.stream_id == 1)
    assert got == b"x" * 70_000
    ends = [i for i, e in enumerate(events) if isinstance(e, StreamEnded)]
    last_data = max(i for i, e in enumerate(events) if isinstance(e, DataReceived) and e.stream_id == 1)
    assert ends and ends[0] > last_data


def test_reset_drops_what_the_stream_queued() -> None:
    s, (a,) = opened_streams(1)
    s.send_data(a, bytes(50_000))
    s.reset_stream(a)
    assert s.queued_total == 0
    assert [f[0] for f in frames(s.data_to_send())] == [TYPE_WINDOW_UPDATE]


def test_window_updates_are_batched_at_half_the_window() -> None:
    """Go's yamux sends an update once half the window was consumed, not per read."""
    sender = Session(client=True)
    sid = sender.open_stream()
    receiver = Session(client=False)
    receiver.receive_data(b"".join(bytes(x) for x in sender.data_to_send()))
    sender.receive_data(b"".join(bytes(x) for x in receiver.data_to_send()))  # the ACK opens 6 MiB
    total = 0
    updates = 0
    for _ in range(64):  # 64 reads of 64 KiB: 4 MiB consumed, within the 6 MiB window
        sender.send_data(sid, bytes(64 * 1024))
        for ev in receiver.receive_data(b"".join(bytes(x) for x in sender.data_to_send())):
            if isinstance(ev, DataReceived):
                receiver.consumed(sid, len(ev.data))
                total += len(ev.data)
        back = receiver.data_to_send()
        updates += sum(1 for f in frames(back) if f[0] == TYPE_WINDOW_UPDATE)
        sender.receive_data(b"".join(bytes(x) for x in back))
    assert total == 4 * MiB
    # one update per FRP_MAX_WINDOW / 2 = 3 MiB consumed
    assert updates == total // (FRP_MAX_WINDOW // 2)


def test_data_to_send_without_budget_sends_everything() -> None:
    s, sids = opened_streams(3)
    for sid in sids:
        s.send_data(sid, bytes(40_000))
    out = frames(s.data_to_send())
    assert sum(f[3] for f in out if f[0] == TYPE_DATA) == 120_000
    assert s.queued_total == 0 and not s.has_data_to_send()
