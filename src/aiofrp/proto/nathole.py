"""NAT hole punching without I/O: ids, NAT classification, punching behaviours, probe datagrams.

frps classifies each peer from its STUN mapped addresses (the same public ip:port seen by two
STUN server addresses = an "easy" NAT) and picks a *detect behaviour* for each side: who sends
first (``sender``) and who answers (``receiver``), with optional low TTL, delays, guessed port
ranges and random ports. A history per (peer IPs, NAT features) rotates through the behaviours
of the chosen modes, preferring ones that were reported successful.

Probe datagrams are one v1 frame of a NatHoleSid message encrypted with the secret key (frp §4.3).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from . import msg as m
from .crypto import derive_key, one_shot_decrypt, one_shot_encrypt
from .errors import ProtocolError

EASY_NAT = "EasyNAT"
HARD_NAT = "HardNAT"
BEHAVIOR_NO_CHANGE = "BehaviorNoChange"
BEHAVIOR_IP_CHANGED = "BehaviorIPChanged"
BEHAVIOR_PORT_CHANGED = "BehaviorPortChanged"
BEHAVIOR_BOTH_CHANGED = "BehaviorBothChanged"

ROLE_SENDER = "sender"
ROLE_RECEIVER = "receiver"


def new_transaction_id() -> str:
    """Decimal Unix seconds followed by 16 random hex digits (also used for session ids)."""
    return f"{int(time.time())}{os.urandom(8).hex()}"


def split_host_port(addr: str) -> tuple[str, int]:
    """``ip:port`` / ``[ip6]:port`` -> (ip, port); ValueError if malformed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host:
        raise ValueError(f"missing port in address {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"too many colons in address {addr!r}")
    return host, int(port)


def compact(items: list[str]) -> list[str]:
    """Drop consecutive duplicates (Go ``slices.Compact``)."""
    out: list[str] = []
    for x in items:
        if not out or out[-1] != x:
            out.append(x)
    return out


# -- classification ----------------------------------------------------------------------------


@dataclass(slots=True)
class NatFeature:
    nat_type: str = ""
    behavior: str = ""
    ports_difference: int = 0
    regular_ports_change: bool = False
    public_network: bool = False


def classify_nat(mapped_addrs: list[str], local_ips: list[str]) -> NatFeature:
    """Classify a peer from its STUN mapped addresses (at least two are needed).

    Same ip and port everywhere = EasyNAT; otherwise HardNAT, with a "regular" port change when
    the ports differ by 1..5. A mapped IP that is one of the peer's own interface IPs means it
    sits on a public network.
    """
    if len(mapped_addrs) <= 1:
        raise ValueError("not enough addresses")
    f = NatFeature()
    ip_changed = port_changed = False
    base: tuple[str, int] | None = None
    pmin = pmax = 0
    for addr in mapped_addrs:
        ip, port = split_host_port(addr)
        if ip in local_ips:
            f.public_network = True
        if base is None:
            base = (ip, port)
            pmin = pmax = port
            continue
        pmin, pmax = min(pmin, port), max(pmax, port)
        ip_changed |= ip != base[0]
        port_changed |= port != base[1]
    if ip_changed and port_changed:
        f.nat_type, f.behavior = HARD_NAT, BEHAVIOR_BOTH_CHANGED
    elif ip_changed:
        f.nat_type, f.behavior = HARD_NAT, BEHAVIOR_IP_CHANGED
    elif port_changed:
        f.nat_type, f.behavior = HARD_NAT, BEHAVIOR_PORT_CHANGED
        f.ports_difference = pmax - pmin
        f.regular_ports_change = 1 <= f.ports_difference <= 5
    else:
        f.nat_type, f.behavior = EASY_NAT, BEHAVIOR_NO_CHANGE
    return f


# -- behaviours ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Behavior:
    role: str = ""
    ttl: int = 0
    send_delay_ms: int = 0
    ports_range_number: int = 0
    ports_random_number: int = 0
    listen_random_ports: int = 0


def _b(role: str, **kw: int) -> Behavior:
    return Behavior(role=role, **kw)


S, R = ROLE_SENDER, ROLE_RECEIVER

# Each entry is (provider behaviour, visitor behaviour) before the per-mode swaps below.
# mode 0: both easy (or one on a public network): plain exchange, low TTL on the receiver.
# mode 1: hard NAT with regular port changes + easy NAT: the easy side probes a port range.
# mode 2: hard NAT with irregular ports + easy NAT: hard side listens on many ports, easy side
#         sprays random ports.
# mode 3: two hard NATs with regular port changes: both probe port ranges.
# mode 4: two hard NATs, one regular: the regular one sends, the other listens on many ports.
MODES: dict[int, list[tuple[Behavior, Behavior]]] = {
    0: [
        (_b(S), _b(R, ttl=7)), (_b(R, ttl=7), _b(S)),
        (_b(S), _b(R, ttl=4)), (_b(R, ttl=4), _b(S)),
        (_b(S), _b(R)), (_b(R), _b(S)),
        (_b(S, send_delay_ms=5000), _b(R)), (_b(S, send_delay_ms=10000), _b(R)),
        (_b(R), _b(S, send_delay_ms=5000)), (_b(R), _b(S, send_delay_ms=10000)),
    ],
    1: [
        (_b(S), _b(R, ttl=7, ports_range_number=10)),
        (_b(S, send_delay_ms=2000), _b(R, ttl=7, ports_range_number=10)),
        (_b(S), _b(R, ttl=4, ports_range_number=10)),
        (_b(S, send_delay_ms=2000), _b(R, ttl=4, ports_range_number=10)),
        (_b(S), _b(R, ports_range_number=10)),
        (_b(S, send_delay_ms=2000), _b(R, ports_range_number=10)),
    ],
    2: [
        (_b(S, ports_random_number=1000, send_delay_ms=3000), _b(R, listen_random_ports=256, ttl=7)),
        (_b(S, ports_random_number=1000, send_delay_ms=3000), _b(R, listen_random_ports=256, ttl=4)),
        (_b(S, ports_random_number=1000, send_delay_ms=3000), _b(R, listen_random_ports=256)),
    ],
    3: [
        (_b(S, ports_range_number=10), _b(R, ttl=7, ports_range_number=10)),
        (_b(S, ports_range_number=10), _b(R, ttl=4, ports_range_number=10)),
        (_b(S, ports_range_number=10), _b(R, ports_range_number=10)),
        (_b(R, ttl=7, ports_range_number=10), _b(S, ports_range_number=10)),
        (_b(R, ttl=4, ports_range_number=10), _b(S, ports_range_number=10)),
        (_b(R, ports_range_number=10), _b(S, ports_range_number=10)),
    ],
    4: [
        (_b(S, ports_random_number=1000, send_delay_ms=3000),
         _b(R, listen_random_ports=256, ttl=7, ports_range_number=2)),
        (_b(S, ports_random_number=1000, send_delay_ms=3000),
         _b(R, listen_random_ports=256, ttl=4, ports_range_number=2)),
        (_b(S, ports_random_number=1000, send_delay_ms=3000),
         _b(R, listen_random_ports=256, ports_range_number=2)),
    ],
}


@dataclass(slots=True)
class _Score:
    mode: int
    index: int
    score: int


def _scores(mode: int, sender_score: int, receiver_score: int | None = None) -> list[_Score]:
    rs = sender_score if receiver_score is None else receiver_score
    return [_Score(mode, i, sender_score if first.role == S else rs) for i, (first, _) in enumerate(MODES[mode])]


@dataclass(slots=True)
class HoleRecords:
    """Behaviour scores for one (provider, visitor) NAT situation; the best is tried next."""

    scores: list[_Score] = field(default_factory=list)
    last_update: float = field(default_factory=time.monotonic)

    @classmethod
    def for_features(cls, c: NatFeature, v: NatFeature) -> HoleRecords:
        feats = (c, v)
        easy = sum(f.nat_type == EASY_NAT for f in feats)
        hard = len(feats) - easy
        regular = sum(f.nat_type != EASY_NAT and f.regular_ports_change for f in feats)

        def mode0() -> list[_Score]:
            if c.public_network:  # the public side should receive
                return _scores(0, 0, 1)
            if v.public_network:
                return _scores(0, 1, 0)
            return _scores(0, 0)

        if easy == 2:
            scores = mode0()
        elif hard == 1 and regular == 1:
            scores = _scores(1, 0) + _scores(2, 0) + mode0()
        elif hard == 1:
            scores = _scores(2, 0) + _scores(1, 0) + mode0()
        elif regular == 2:
            scores = _scores(3, 0) + _scores(4, 0)
        elif regular == 1:
            scores = _scores(4, 0)
        else:  # hard to punch: just try
            scores = _scores(0, 1) + _scores(1, 1) + _scores(3, 1)
        return cls(scores)

    def recommend(self) -> tuple[int, int]:
        """The best-scored (mode, index); its score drops by one so failures rotate the choice."""
        self.last_update = time.monotonic()
        if not self.scores:
            return 0, 0
        best = max(self.scores, key=lambda s: s.score)  # first of equals, like Go's MaxFunc
        best.score -= 1
        return best.mode, best.index

    def report_success(self, mode: int, index: int) -> None:
        self.last_update = time.monotonic()
        for s in self.scores:
            if s.mode == mode and s.index == index:
                s.score = min(s.score + 2, 10)
                return


def behaviors_for(mode: int, index: int, c: NatFeature) -> tuple[Behavior, Behavior]:
    """(provider, visitor) behaviours of a recommendation, with the mode's role swaps applied."""
    table = MODES.get(mode, MODES[0])
    if index >= len(table):
        return Behavior(), Behavior()
    cb, vb = table[index]
    if (mode == 1 and c.nat_type == EASY_NAT) or (mode == 2 and c.nat_type == HARD_NAT) or (
        mode == 4 and not c.regular_ports_change
    ):
        cb, vb = vb, cb
    return cb, vb


def range_ports(addrs: list[str], difference: int, max_number: int) -> list[m.PortsRange]:
    """Guessed port range around the last mapped port (empty when ``max_number`` is 0)."""
    if max_number <= 0 or not addrs:
        return []
    try:
        _, port = split_host_port(addrs[-1])
    except ValueError:
        return []
    return [m.PortsRange(from_=max(port - difference - 5, port - max_number, 1),
                         to=min(port + difference + 5, port + max_number, 65535))]


def detect_behavior(b: Behavior, mode: int, timeout_ms: int, peer_addrs: list[str],
                    peer: NatFeature) -> m.NatHoleDetectBehavior:
    return m.NatHoleDetectBehavior(
        role=b.role, mode=mode, ttl=b.ttl, send_delay_ms=b.send_delay_ms,
        read_timeout=timeout_ms - b.send_delay_ms,
        candidate_ports=range_ports(peer_addrs, peer.ports_difference, b.ports_range_number),
        send_random_ports=b.ports_random_number, listen_random_ports=b.listen_random_ports,
    )


# -- probe datagrams ---------------------------------------------------------------------------------


def encode_sid(sid: str, transaction_id: str, sk: str, *, response: bool = False) -> bytes:
    """One encrypted NatHoleSid probe (random '0' padding like frp, so sizes vary)."""
    import random  # here, with the first probe: 0.2 MB resident

    body = m.encode(m.NatHoleSid(transaction_id=transaction_id, sid=sid, response=response,
                                 nonce="0" * random.randrange(20)))
    return one_shot_encrypt(derive_key(sk), body)


def decode_sid(data: bytes, sk: str) -> m.NatHoleSid:
    """Decrypt and parse a probe; ProtocolError if it is not a NatHoleSid under this key."""
    try:
        plain = one_shot_decrypt(derive_key(sk), data)
        cls, length = m.decode_header(plain)
        if cls is not m.NatHoleSid or len(plain) != m.HEADER_LENGTH + length:
            raise ProtocolError("wrong message type or length")
        return m.decode_body(cls, plain[m.HEADER_LENGTH:])
    except (ValueError, ProtocolError) as exc:
        raise ProtocolError(f"not a NAT hole probe: {exc}") from None
