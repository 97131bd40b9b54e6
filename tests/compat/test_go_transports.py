"""frpc's transports with real Go frp 0.65.0 binaries, both directions (spec §1.5–1.7):

* Go frpc -> our frps and our frpc -> Go frps over kcp, quic, websocket and wss: echo, a 16 MiB
  SHA-256 round trip, encryption + compression on. Go frps does not terminate wss: a TLS
  terminator started by the test sits in front of it (as nginx would); Go frpc's wss reaches our
  frps directly (frps terminates it itself, beyond Go);
* Go frpc's KCP parity shards equal what our Reed–Solomon encoder computes from its data shards
  (bit-compatibility with klauspost/reedsolomon), and our decoder rebuilds any of its data shards
  from the rest.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time

import pytest
from support.procs import (
    TEST_STRING,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
)
from support.transports import TRANSPORTS, TLSTerminator, frpc_keys, frps_keys, server_ports
from support.waits import frame

from aiofrp.proto.kcp import FEC_DATA, FEC_PARITY, FECDecoder
from aiofrp.proto.reedsolomon import ReedSolomon

pytestmark = [pytest.mark.compat, pytest.mark.timeout(150)]

TOKEN = "go-transports"
GO_CLIENT = "go_frpc-ours_frps"
OURS_CLIENT = "ours_frpc-go_frps"
BIG = 16 << 20


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _echo(port: int, big: int) -> None:
    assert tcp_roundtrip(port, frame(TEST_STRING), 10) == frame(TEST_STRING)
    payload = os.urandom(big // 2) + bytes(big - big // 2)
    reply = tcp_roundtrip(port, payload, 120)
    assert len(reply) == len(payload) and _sha(reply) == _sha(payload)


def _clean(*procs: FrpProcess) -> None:
    for p in procs:
        text = p.log_text()
        bad = [ln for ln in text.splitlines() if " [E] " in ln or "Traceback" in ln or "panic:" in ln]
        assert not bad, f"{p.name}: {bad}\n{p.log_tail()}"


@pytest.mark.parametrize("direction", [GO_CLIENT, OURS_CLIENT])
@pytest.mark.parametrize("protocol", TRANSPORTS)
def test_go_transport_both_ways(frp, echo_server, protocol: str, direction: str) -> None:
    bind, quic = server_ports()
    remote = free_port()
    server_text = frps_config(bind, token=TOKEN, **frps_keys(bind, quic))
    frps = frp.ours_frps(server_text) if direction == GO_CLIENT else frp.go_frps(server_text)
    frps.wait_for_log("frps started successfully", 15)
    term = None
    port, keys = frpc_keys(protocol, bind, quic)
    if protocol == "wss" and direction == OURS_CLIENT:
        term = TLSTerminator(bind)  # Go frps serves ws only: TLS ends in front of it
        port = term.port
    try:
        text = frpc_config(port, tcp_proxy("echo", echo_server.port, remote, encryption=True, compression=True),
                           token=TOKEN, **keys)
        frpc = frp.go_frpc(text) if direction == GO_CLIENT else frp.ours_frpc(text)
        frpc.wait_for_proxies("echo", timeout=20)
        _echo(remote, BIG)
        if term is not None:
            assert term.connections >= 1
        assert frps.running and frpc.running
        _clean(frps, frpc)
    finally:
        if term is not None:
            term.close()


# -- KCP FEC: klauspost/reedsolomon bit-compatibility -------------------------------------------


def _capture_go_kcp(frp, seconds: float = 20.0) -> dict[int, bytes]:
    """Point Go frpc's kcp transport at a silent UDP socket and keep the datagrams it sends: KCP
    retransmits its login, so full FEC groups (10 data + 3 parity) arrive. seqid -> datagram."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    port = sock.getsockname()[1]
    _, keys = frpc_keys("kcp", port, port)
    frpc = frp.go_frpc(frpc_config(port, token=TOKEN, **keys))
    got: dict[int, bytes] = {}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(2048)
            except TimeoutError:
                continue
            seqid, flag = struct.unpack_from("<IH", data)
            if flag in (FEC_DATA, FEC_PARITY):
                got[seqid] = data
            if _full_groups(got):
                break
    finally:
        frpc.stop()
        sock.close()
    return got


def _full_groups(got: dict[int, bytes]) -> list[int]:
    return [g for g in {s // 13 for s in got} if all(g * 13 + i in got for i in range(13))]


def test_go_kcp_parity_matches_our_reed_solomon(frp) -> None:
    got = _capture_go_kcp(frp)
    groups = _full_groups(got)
    assert groups, f"no complete FEC group from Go frpc in 20 s (seqids {sorted(got)[:40]})"
    rs = ReedSolomon(10, 3)
    g = groups[0]
    shards = [got[g * 13 + i] for i in range(13)]
    assert all(struct.unpack_from("<H", s, 4)[0] == FEC_DATA for s in shards[:10])
    assert all(struct.unpack_from("<H", s, 4)[0] == FEC_PARITY for s in shards[10:])
    width = max(len(s) for s in shards) - 6
    data = [s[6:].ljust(width, b"\0") for s in shards[:10]]
    assert [s[6:] for s in shards[10:]] == rs.encode(data)  # Go's parity, byte for byte
    # and our decoder rebuilds Go's data shards from any 10 of the 13
    for lost in ((0, 1, 2), (3, 7, 9), (0, 10, 11)):
        dec = FECDecoder()
        rebuilt: list[bytes] = []
        for i, s in enumerate(shards):
            if i not in lost:
                rebuilt += dec.decode(s)[1]
        want = []
        for i in lost:
            if i < 10:
                size = struct.unpack_from("<H", shards[i], 6)[0]
                want.append(shards[i][8:6 + size])
        assert sorted(rebuilt) == sorted(want)
