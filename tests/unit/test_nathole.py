"""NAT classification, behaviour selection and the encrypted NatHoleSid probes (proto/nathole.py)."""

from __future__ import annotations

import re

import pytest

from aiofrp.proto import msg as m
from aiofrp.proto.crypto import derive_key, one_shot_decrypt
from aiofrp.proto.errors import ProtocolError
from aiofrp.proto.nathole import (
    EASY_NAT,
    HARD_NAT,
    HoleRecords,
    behaviors_for,
    classify_nat,
    decode_sid,
    detect_behavior,
    encode_sid,
    new_transaction_id,
    range_ports,
    split_host_port,
)


def test_ids() -> None:
    assert re.fullmatch(r"\d{10}[0-9a-f]{16}", new_transaction_id())


@pytest.mark.parametrize(
    ("addrs", "nat", "behavior", "diff", "regular"),
    [
        (["1.2.3.4:5000", "1.2.3.4:5000"], EASY_NAT, "BehaviorNoChange", 0, False),
        (["1.2.3.4:5000", "1.2.3.4:5003"], HARD_NAT, "BehaviorPortChanged", 3, True),
        (["1.2.3.4:5000", "1.2.3.4:6000"], HARD_NAT, "BehaviorPortChanged", 1000, False),
        (["1.2.3.4:5000", "1.2.3.5:5000"], HARD_NAT, "BehaviorIPChanged", 0, False),
        (["1.2.3.4:5000", "1.2.3.5:5001"], HARD_NAT, "BehaviorBothChanged", 0, False),
    ],
)
def test_classify(addrs: list[str], nat: str, behavior: str, diff: int, regular: bool) -> None:
    f = classify_nat(addrs, [])
    assert (f.nat_type, f.behavior, f.ports_difference, f.regular_ports_change) == (nat, behavior, diff, regular)
    assert not f.public_network
    assert classify_nat(addrs, ["1.2.3.4"]).public_network


def test_classify_needs_two_addresses() -> None:
    with pytest.raises(ValueError, match="not enough addresses"):
        classify_nat(["1.2.3.4:1"], [])


def test_split_host_port() -> None:
    assert split_host_port("[::1]:80") == ("::1", 80)
    assert split_host_port("1.2.3.4:80") == ("1.2.3.4", 80)
    for bad in ("1.2.3.4", "::1:80", ":80"):
        with pytest.raises(ValueError):
            split_host_port(bad)


def test_easy_easy_rotates_roles_and_ttls() -> None:
    easy = classify_nat(["1.1.1.1:1", "1.1.1.1:1"], [])
    rec = HoleRecords.for_features(easy, easy)
    picks = [rec.recommend() for _ in range(3)]
    assert picks == [(0, 0), (0, 1), (0, 2)]
    cb, vb = behaviors_for(0, 0, easy)
    assert (cb.role, vb.role, vb.ttl) == ("sender", "receiver", 7)
    cb, vb = behaviors_for(0, 1, easy)
    assert (cb.role, cb.ttl, vb.role) == ("receiver", 7, "sender")
    rec.report_success(0, 2)
    assert rec.recommend() == (0, 2)  # a success is tried again first


def test_public_network_side_receives() -> None:
    public = classify_nat(["1.1.1.1:1", "1.1.1.1:1"], ["1.1.1.1"])
    easy = classify_nat(["2.2.2.2:1", "2.2.2.2:1"], [])
    mode, index = HoleRecords.for_features(public, easy).recommend()
    cb, _ = behaviors_for(mode, index, public)
    assert cb.role == "receiver"


def test_hard_nat_modes_and_swaps() -> None:
    easy = classify_nat(["1.1.1.1:1", "1.1.1.1:1"], [])
    regular = classify_nat(["2.2.2.2:100", "2.2.2.2:102"], [])
    assert HoleRecords.for_features(regular, easy).recommend()[0] == 1
    cb, vb = behaviors_for(1, 0, regular)  # the hard NAT sends
    assert (cb.role, vb.role, vb.ports_range_number) == ("sender", "receiver", 10)
    cb, vb = behaviors_for(1, 0, easy)  # provider easy: swapped
    assert (cb.role, cb.ports_range_number, vb.role) == ("receiver", 10, "sender")
    irregular = classify_nat(["2.2.2.2:100", "2.2.2.2:900"], [])
    assert HoleRecords.for_features(irregular, easy).recommend()[0] == 2


def test_range_ports_and_detect_behavior() -> None:
    ports = range_ports(["1.1.1.1:1000", "1.1.1.1:1003"], 3, 10)
    assert [(p.from_, p.to) for p in ports] == [(995, 1011)]
    assert range_ports(["1.1.1.1:3"], 0, 10)[0].from_ == 1
    assert range_ports(["x"], 0, 10) == [] and range_ports(["1.1.1.1:3"], 0, 0) == []
    easy = classify_nat(["1.1.1.1:1", "1.1.1.1:1"], [])
    cb, _ = behaviors_for(0, 6, easy)
    db = detect_behavior(cb, 0, 10000, ["1.1.1.1:1"], easy)
    assert (db.role, db.send_delay_ms, db.read_timeout) == ("sender", 5000, 5000)
    body = m.encode(m.NatHoleResp(detect_behavior=db))
    assert b'"read_timeout":5000' in body and b'"send_delay_ms":5000' in body


def test_sid_probe_roundtrip_and_wrong_key() -> None:
    data = encode_sid("sid1", "tid1", "secret", response=True)
    plain = one_shot_decrypt(derive_key("secret"), data)
    assert plain[0:1] == b"5"  # a v1 frame of NatHoleSid
    probe = decode_sid(data, "secret")
    assert (probe.sid, probe.transaction_id, probe.response) == ("sid1", "tid1", True)
    assert set(probe.nonce) <= {"0"} and len(probe.nonce) < 20
    with pytest.raises(ProtocolError):
        decode_sid(data, "other")
    with pytest.raises(ProtocolError):
        decode_sid(b"short", "secret")


def test_records_forgotten_after_reserve_hours() -> None:
    """natholeAnalysisDataReserveHours bounds how long frps keeps a NAT pair's behaviour scores."""
    from aiofrp.config import parse_server_config
    from aiofrp.proto.nathole import NatFeature
    from aiofrp.server.nathole import NatHoleController

    feat = NatFeature(nat_type="EasyNAT")
    for hours, kept in ((1, True), (-1, False)):
        cfg = parse_server_config(f"natholeAnalysisDataReserveHours = {hours}")
        ctl = NatHoleController(cfg, spawn=lambda coro: coro.close())
        first = ctl._records("k", feat, feat)
        assert (ctl._records("k", feat, feat) is first) is kept
