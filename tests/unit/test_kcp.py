"""The sans-I/O KCP (stream mode, frp's settings) and kcp-go's FEC framing."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiofrp.proto.kcp import (
    CMD_ACK,
    CMD_PUSH,
    CMD_WASK,
    CMD_WINS,
    KCP,
    OVERHEAD,
    FECDecoder,
    FECEncoder,
    KCPError,
    fec_decode,
)

HDR = struct.Struct("<IBBHIIII")


def frp_kcp(conv: int, out: list[bytes]) -> KCP:
    k = KCP(conv, out.append)
    k.set_nodelay(1, 20, 2, True)
    k.set_mtu(1342)
    k.set_wndsize(1024, 1024)
    return k


class Link:
    """Two KCPs joined by an in-memory network with optional loss, duplication and reordering."""

    def __init__(self, *, loss: float = 0.0, dup: float = 0.0, reorder: float = 0.0, seed: int = 1,
                 window: int = 1024) -> None:
        self.rng = random.Random(seed)
        self.loss, self.dup, self.reorder = loss, dup, reorder
        self.a_out: list[bytes] = []
        self.b_out: list[bytes] = []
        self.a = frp_kcp(1, self.a_out)
        self.b = frp_kcp(1, self.b_out)
        self.a.set_wndsize(window, window)
        self.b.set_wndsize(window, window)
        self.now = 0
        self.got_a = bytearray()
        self.got_b = bytearray()

    def _deliver(self, packets: list[bytes], dst: KCP) -> None:
        batch = list(packets)
        packets.clear()
        if self.reorder:
            self.rng.shuffle(batch) if self.rng.random() < self.reorder else None
        for p in batch:
            if self.rng.random() < self.loss:
                continue
            dst.current = self.now
            dst.input(p)
            if self.rng.random() < self.dup:
                dst.input(p)

    def step(self, ms: int = 10, read: bool = True) -> None:
        self.now += ms
        self.a.update(self.now)
        self.b.update(self.now)
        self._deliver(self.a_out, self.b)
        self._deliver(self.b_out, self.a)
        if read:
            self.got_b += self.b.recv()
            self.got_a += self.a.recv()

    def run_until(self, cond: Callable[[], bool], limit_ms: int = 120_000, read: bool = True) -> None:
        start = self.now
        while not cond():
            assert self.now - start < limit_ms, "link did not converge"
            self.step(read=read)


def test_segment_layout_of_first_push() -> None:
    out: list[bytes] = []
    k = frp_kcp(0x01020304, out)
    k.send(b"hello")
    k.update(1000)
    assert len(out) == 1
    conv, cmd, frg, wnd, ts, sn, una, length = HDR.unpack_from(out[0])
    assert (conv, cmd, frg, wnd, ts, sn, una, length) == (0x01020304, CMD_PUSH, 0, 1024, 1000, 0, 0, 5)
    assert out[0][OVERHEAD:] == b"hello"
    assert out[0][:4] == b"\x04\x03\x02\x01"  # little-endian


def test_stream_mode_merges_writes_and_splits_by_mss() -> None:
    out: list[bytes] = []
    k = frp_kcp(1, out)
    k.send(b"a" * 100)
    k.send(b"b" * 100)
    assert len(k.snd_queue) == 1  # merged into the unsent segment
    k.send(b"c" * 3000)
    assert [len(s.data) for s in k.snd_queue] == [k.mss, k.mss, 3200 - 2 * k.mss]
    assert all(s.frg == 0 for s in k.snd_queue)


def test_lossless_transfer_both_ways() -> None:
    link = Link()
    a_data, b_data = os.urandom(200_000), os.urandom(50_000)
    link.a.send(a_data)
    link.b.send(b_data)
    link.run_until(lambda: len(link.got_b) == len(a_data) and len(link.got_a) == len(b_data))
    assert bytes(link.got_b) == a_data and bytes(link.got_a) == b_data
    link.run_until(lambda: link.a.wait_snd() == 0 and link.b.wait_snd() == 0)
    assert link.a.state == 0


@settings(max_examples=15, deadline=None)
@given(loss=st.floats(0, 0.3), dup=st.floats(0, 0.2), reorder=st.floats(0, 0.5), seed=st.integers(0, 1000),
       size=st.integers(1, 60_000))
def test_lossy_reordering_link_delivers_in_order(loss: float, dup: float, reorder: float, seed: int,
                                                  size: int) -> None:
    link = Link(loss=loss, dup=dup, reorder=reorder, seed=seed)
    data = random.Random(seed).randbytes(size)
    for i in range(0, size, 7000):
        link.a.send(data[i:i + 7000])
    link.run_until(lambda: len(link.got_b) >= size)
    assert bytes(link.got_b) == data


def test_acks_carry_timestamps_and_measure_rtt() -> None:
    link = Link()
    link.a.send(b"x")
    link.step(10)
    acks = list(link.b_out)
    link.step(30)
    assert link.a.rx_srtt > 0
    assert link.a.wait_snd() == 0
    assert not acks  # acks are flushed on b's next update, not immediately


def test_receiver_window_stops_sender_until_read() -> None:
    link = Link(window=128)
    data = os.urandom(400 * 1318)
    link.a.send(data)
    for _ in range(100):
        link.step(read=False)
    # b does not read: at most rcv_wnd segments are accepted, the rest waits in a's buffers
    assert len(link.b.rcv_queue) == link.b.rcv_wnd
    assert link.a.rmt_wnd == 0
    assert link.a.wait_snd() > 0
    link.run_until(lambda: len(link.got_b) == len(data))
    assert bytes(link.got_b) == data


def test_a_reopened_window_is_told_again_until_data_comes() -> None:
    """Beyond kcp-go: the WINS that says a full receive window reopened is repeated on the next
    flushes, so losing it does not leave the sender waiting 7 s to probe."""
    link = Link(window=128)
    link.a.send(os.urandom(400 * link.a.mss))
    link.run_until(lambda: link.a.rmt_wnd == 0, read=False)  # b's queue full, a knows it
    link.b_out.clear()
    link.got_b += link.b.recv()  # the window reopens
    tells = 0
    for _ in range(3):
        link.now += 20
        link.b.update(link.now)
        tells += sum(1 for p in link.b_out if HDR.unpack_from(p)[1] == CMD_WINS)
        link.b_out.clear()  # every one of them lost
    assert tells == 3 and link.a.rmt_wnd == 0
    link.step(20)  # the next one arrives
    assert link.a.rmt_wnd > 0
    link.run_until(lambda: len(link.got_b) == 400 * link.a.mss)
    link.step(20)
    link.b_out.clear()
    link.step(20)  # data came: no more tells
    assert not any(HDR.unpack_from(p)[1] == CMD_WINS for p in link.b_out + link.a_out)


def test_zero_window_probing() -> None:
    out: list[bytes] = []
    k = frp_kcp(1, out)
    k.update(0)
    k.rmt_wnd = 0
    k.flush()
    assert k.probe_wait > 0
    k.update(k.ts_probe + 20)
    cmds = [HDR.unpack_from(p)[1] for p in out]
    assert CMD_WASK in cmds
    # a WASK is answered with WINS
    peer_out: list[bytes] = []
    peer = frp_kcp(1, peer_out)
    peer.update(0)
    peer.input(HDR.pack(1, CMD_WASK, 0, 10, 0, 0, 0, 0))
    peer.update(100)
    assert CMD_WINS in [HDR.unpack_from(p)[1] for p in peer_out]


def test_dead_link_after_unanswered_retransmissions() -> None:
    out: list[bytes] = []
    k = frp_kcp(1, out)
    k.send(b"ping")
    t = 0
    while k.state == 0 and t < 5_000_000:  # the RTO grows by half each time (nodelay mode)
        t += 100
        k.update(t)
    assert k.state == -1
    assert sum(1 for p in out if HDR.unpack_from(p)[1] == CMD_PUSH) >= 20


def test_foreign_or_broken_packets_are_refused() -> None:
    k = frp_kcp(1, [])
    with pytest.raises(KCPError, match="shorter"):
        k.input(b"\x01\x00\x00\x00")
    with pytest.raises(KCPError, match="conversation 2"):
        k.input(HDR.pack(2, CMD_PUSH, 0, 1, 0, 0, 0, 0))
    with pytest.raises(KCPError, match="unknown KCP command"):
        k.input(HDR.pack(1, 99, 0, 1, 0, 0, 0, 0))
    with pytest.raises(KCPError, match="overruns"):
        k.input(HDR.pack(1, CMD_PUSH, 0, 1, 0, 0, 0, 10) + b"abc")


def test_ack_segment_layout() -> None:
    out: list[bytes] = []
    k = frp_kcp(7, out)
    k.update(500)
    k.current = 510
    k.input(HDR.pack(7, CMD_PUSH, 0, 1024, 123, 0, 0, 3) + b"abc")
    assert k.recv() == b"abc"
    k.update(600)
    conv, cmd, frg, wnd, ts, sn, una, length = HDR.unpack_from(out[-1])
    assert (conv, cmd, frg, wnd, ts, sn, una, length) == (7, CMD_ACK, 0, 1024, 123, 0, 1, 0)



def _acks_sent(out: list[bytes]) -> list[tuple[int, int]]:
    """(sn, una) of every ACK segment in ``out``."""
    acks = []
    for packet in out:
        pos = 0
        while len(packet) - pos >= OVERHEAD:
            _, cmd, _, _, _, sn, una, length = HDR.unpack_from(packet, pos)
            if cmd == CMD_ACK:
                acks.append((sn, una))
            pos += OVERHEAD + length
    return acks


def test_acks_below_rcv_nxt_are_left_to_una_as_kcp_go_does() -> None:
    """In-order segments: only the last one's ACK goes out (una = rcv_nxt covers the rest); a
    segment past a gap keeps its ACK (the sender's fast retransmit counts on it)."""
    out: list[bytes] = []
    k = frp_kcp(7, out)
    k.update(500)
    k.current = 510
    for sn in range(5):
        k.input(HDR.pack(7, CMD_PUSH, 0, 1024, 100 + sn, sn, 0, 1) + b"x")
    k.update(600)
    assert _acks_sent(out) == [(4, 5)]
    out.clear()
    for sn in (7, 8):  # 5 and 6 missing: both stay above rcv_nxt
        k.input(HDR.pack(7, CMD_PUSH, 0, 1024, 200, sn, 0, 1) + b"x")
    k.update(700)
    assert _acks_sent(out) == [(7, 5), (8, 5)]


def test_ack_only_flush_sends_the_acknowledgements_and_nothing_else() -> None:
    out: list[bytes] = []
    k = frp_kcp(7, out)
    k.update(500)
    k.send(b"queued data")
    k.current = 510
    k.input(HDR.pack(7, CMD_PUSH, 0, 1024, 100, 0, 0, 1) + b"x")
    k.flush(ack_only=True)
    assert _acks_sent(out) == [(0, 1)] and len(out) == 1 and len(out[0]) == OVERHEAD
    assert len(k.snd_queue) == 1 and not k.snd_buf  # the data waits for a full flush
    out.clear()
    k.flush(ack_only=True)
    assert out == []  # nothing to acknowledge
    k.flush()
    assert [HDR.unpack_from(p)[1] for p in out] == [CMD_PUSH]


def test_a_timeout_resend_starts_the_fast_ack_count_again_as_kcp_go_does() -> None:
    out: list[bytes] = []
    k = frp_kcp(7, out)
    k.update(0)
    k.send(b"a" * 3000)  # three segments
    k.flush()
    first = k.snd_buf[0]
    k.current = 5
    k.input(HDR.pack(7, CMD_ACK, 0, 1024, 0, 1, 0, 0))  # segment 1 acknowledged, 0 not
    assert first.fastack == 1
    k.update(first.resendts)  # segment 0 times out before a second fast ack
    assert first.xmit == 2 and first.fastack == 0 and k.timeout_retransmits == 2  # segments 0 and 2


class _FullScanKCP(KCP):
    """The reference: every flush looks at every segment of snd_buf, as kcp-go's does."""

    def flush(self, ack_only: bool = False) -> None:
        self._fastack_due = True
        super().flush(ack_only)


def _driven(cls: type[KCP], loss: float, seed: int, data: bytes, steps: int) -> list[bytes]:
    """Every datagram two ``cls`` KCPs send each other on a lossy link driven like net/kcp.py
    drives them: a flush on every 10 ms tick, a full one when acknowledgements moved the window,
    an ack-only one after each other burst of input. The datagrams are the whole story."""
    rng = random.Random(seed)
    out_a: list[bytes] = []
    out_b: list[bytes] = []
    kcps = []
    for out in (out_a, out_b):
        k = cls(1, out.append)
        k.set_nodelay(1, 20, 2, True)
        k.set_mtu(1342)
        k.set_wndsize(128, 128)
        kcps.append(k)
    a, b = kcps
    history: list[bytes] = []
    now = 0
    for i in range(0, len(data), 5000):
        a.send(data[i:i + 5000])
    b.send(data[: len(data) // 4])
    for _ in range(steps):
        now += 10
        for k in kcps:
            k.update(now)
        for src, dst in ((out_a, b), (out_b, a)):
            batch = list(src)
            src.clear()
            history += batch
            rng.shuffle(batch) if rng.random() < 0.2 else None
            for n, packet in enumerate(batch):
                if rng.random() < loss:
                    continue
                dst.current = now + n % 3
                if dst.input(packet):
                    dst.flush()
                elif rng.random() < 0.5:
                    dst.flush(ack_only=True)
        for k in kcps:
            k.recv()
    return history


@settings(max_examples=60, deadline=None)
@given(loss=st.floats(0, 0.3), seed=st.integers(0, 10_000), size=st.integers(1, 400_000))
@example(loss=0.25, seed=0, size=258332)  # a timeout resend of a segment that had its fast acks
def test_flush_looks_at_the_new_segments_only_when_nothing_else_is_due(loss: float, seed: int, size: int) -> None:
    """Skipping the segments that are neither due for a timeout nor fast-acknowledged changes
    nothing on the wire: the same datagrams as a flush that looks at every segment each time."""
    data = random.Random(seed).randbytes(size)
    assert _driven(KCP, loss, seed, data, 200) == _driven(_FullScanKCP, loss, seed, data, 200)


# -- FEC framing --------------------------------------------------------------------------------


def test_fec_encoder_data_then_parity_seqids() -> None:
    enc = FECEncoder(10, 3)
    seqids, flags = [], []
    for i in range(25):
        out = enc.encode(b"k" * i, now_ms=i)
        seqid, flag, size = struct.unpack_from("<IHH", out[0])
        assert flag == 0xF1 and size == i + 2 and out[0][8:] == b"k" * i
        seqids.append(seqid)
        for p in out[1:]:
            pseq, pflag = struct.unpack_from("<IH", p)
            flags.append((pseq, pflag))
    assert seqids == list(range(10)) + list(range(13, 23)) + list(range(26, 31))
    assert flags == [(10, 0xF2), (11, 0xF2), (12, 0xF2), (23, 0xF2), (24, 0xF2), (25, 0xF2)]


def test_fec_encoder_skips_parity_of_a_slow_group_but_keeps_positions() -> None:
    enc = FECEncoder(10, 3)
    outs = [enc.encode(b"x", now_ms=0 if i < 9 else 10_000) for i in range(10)]
    assert all(len(o) == 1 for o in outs)  # the 10th came 10 s after the 9th: no parity
    nxt = enc.encode(b"y", now_ms=10_001)
    assert struct.unpack_from("<I", nxt[0])[0] == 13


def test_fec_decode() -> None:
    kcp_bytes = HDR.pack(1, CMD_PUSH, 0, 1, 0, 0, 0, 2) + b"hi"
    data = FECEncoder().encode(kcp_bytes)[0]
    assert fec_decode(data) == kcp_bytes
    assert fec_decode(struct.pack("<IH", 10, 0xF2) + b"parity!") is None
    assert fec_decode(kcp_bytes) == kcp_bytes  # no FEC header: bytes 4..5 are cmd/frg
    assert fec_decode(data + b"\x00" * 5) == kcp_bytes
    dec = FECDecoder()
    assert dec.decode(data) == (kcp_bytes, [])
    assert dec.decode(kcp_bytes) == (kcp_bytes, [])


# -- FEC recovery (kcp-go's Reed-Solomon parity) ------------------------------------------------


def _group(enc: FECEncoder, packets: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for p in packets:
        out += enc.encode(p, now_ms=0)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=24, max_size=1342), min_size=10, max_size=10),
       st.sets(st.integers(0, 12), max_size=3), st.randoms(use_true_random=False))
def test_fec_decoder_rebuilds_any_three_lost_shards(packets: list[bytes], lost: set[int], rnd: random.Random) -> None:
    datagrams = _group(FECEncoder(), packets)
    assert len(datagrams) == 13
    kept = [d for i, d in enumerate(datagrams) if i not in lost]
    rnd.shuffle(kept)  # order does not matter
    dec = FECDecoder()
    got: list[bytes] = []
    for d in kept:
        direct, rebuilt = dec.decode(d)
        if direct is not None:
            got.append(bytes(direct))
        got += rebuilt
    # a shard rebuilt before it arrived late comes twice (KCP drops the duplicate)
    assert all(got.count(p) >= packets.count(p) for p in packets)
    assert dec.recovered >= len([i for i in lost if i < 10])


def test_fec_decoder_cannot_rebuild_four_losses_and_stays_bounded() -> None:
    enc, dec = FECEncoder(), FECDecoder()
    for g in range(50):
        datagrams = _group(enc, [bytes([g]) * 100 + bytes(24)] * 10)
        for i, d in enumerate(datagrams):
            if i not in (0, 1, 2, 3):  # 4 losses: parity cannot help
                dec.decode(d)
    assert dec.recovered == 0
    assert len(dec._groups) <= 3


def test_fec_decoder_ignores_garbage() -> None:
    dec = FECDecoder()
    rnd = random.Random(7)
    for _ in range(2000):
        d = rnd.randbytes(rnd.randint(0, 1600))
        direct, _rebuilt = dec.decode(d)
        assert direct is None or isinstance(direct, bytes)
    assert len(dec._groups) <= 3


def test_fec_encoder_without_parity_keeps_positions() -> None:
    enc = FECEncoder(10, 3)
    outs = [enc.encode(b"x", now_ms=i, parity=False) for i in range(10)]
    assert all(len(o) == 1 for o in outs)  # no parity for this group
    nxt = enc.encode(b"y", now_ms=11)
    assert struct.unpack_from("<I", nxt[0])[0] == 13  # the next group starts where it would have
    outs = [enc.encode(b"z", now_ms=12 + i) for i in range(9)]
    assert [len(o) for o in outs] == [1] * 8 + [4]  # parity again when asked


def _lossy_transfer(fec: bool, size: int, loss: float, seed: int) -> tuple[int, int]:
    """(simulated ms until every byte arrived, fast retransmissions) for one transfer
    over a link dropping ``loss`` of the datagrams each way, with or without kcp-go's 10 + 3
    parity; frp's windows (frps 1024, frpc 128/512), 1 ms ticks, the same drops either way."""
    rng = random.Random(seed)
    wires: tuple[list[bytes], list[bytes]] = ([], [])
    encs = (FECEncoder(), FECEncoder())
    decs = (FECDecoder(), FECDecoder())
    now = 0

    def output(i: int) -> Callable[[bytes], None]:
        def out(packet: bytes) -> None:
            wires[i].extend(encs[i].encode(packet, now) if fec else [packet])
        return out

    a, b = KCP(1, output(0)), KCP(1, output(1))
    for k, window in ((a, (1024, 1024)), (b, (128, 512))):
        k.set_nodelay(1, 20, 2, True)
        k.set_mtu(1342)
        k.set_wndsize(*window)
    a.send(random.Random(seed).randbytes(size))
    got = 0
    while got < size:
        now += 1
        assert now < 600_000, "transfer did not finish"
        for k, i, dst in ((a, 0, b), (b, 1, a)):
            k.update(now)
            batch = list(wires[i])
            wires[i].clear()
            for datagram in batch:
                if rng.random() < loss:
                    continue
                payload, rebuilt = decs[1 - i].decode(datagram) if fec else (datagram, [])
                dst.current = now
                for p in (payload, *rebuilt):
                    if p is not None and dst.input(p):
                        dst.flush()
            if dst is b:
                got += len(b.recv())  # drained before acknowledging, as net/kcp.py does
            if batch:
                dst.flush(ack_only=True)
    return now, a.fast_retransmits


def test_fec_parity_beats_retransmission_alone_under_loss() -> None:
    """The issue's "with FEC it beats a run without FEC", without a clock: the same transfer and
    the same drops finish in less simulated time, with a fraction of the retransmissions."""
    for seed in (1, 2, 3):
        ms_fec, resent_fec = _lossy_transfer(True, 2 << 20, 0.05, seed)
        ms_plain, resent_plain = _lossy_transfer(False, 2 << 20, 0.05, seed)
        assert resent_fec * 10 < resent_plain, (seed, resent_fec, resent_plain)  # fast retransmissions
        assert ms_fec * 2 < ms_plain, (seed, ms_fec, ms_plain)


def test_loss_counters_stay_zero_on_a_clean_link() -> None:
    link = Link()
    data = os.urandom(300_000)
    link.a.send(data)
    link.run_until(lambda: len(link.got_b) == len(data))
    assert bytes(link.got_b) == data
    for k in (link.a, link.b):
        assert k.fast_retransmits == k.out_of_order == k.timeout_retransmits == 0


def test_loss_counters_see_a_lossy_link() -> None:
    link = Link(loss=0.05, seed=3)
    data = os.urandom(300_000)
    link.a.send(data)
    link.run_until(lambda: len(link.got_b) == len(data))
    assert bytes(link.got_b) == data
    assert link.a.fast_retransmits > 0  # the sender saw later segments acknowledged first
    assert link.b.out_of_order > 0  # the receiver saw segments past a gap
