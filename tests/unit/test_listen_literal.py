"""``net.listen._literal``: IP literals as ``ipaddress.ip_address`` reads them, without ipaddress."""

from __future__ import annotations

import ipaddress
import random
import socket

import pytest

from aiofrp.net.listen import _literal, _unspecified, bind_socket


def _stock(host: str) -> tuple[int, bytes] | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return (socket.AF_INET if ip.version == 4 else socket.AF_INET6), ip.packed


FIXED = ["127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1%eth0", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1",
         " 1.2.3.4", "::ffff:1.2.3.4", "::ffff:0.0.0.0", "1:2:3:4:5:6:1.2.3.4", "1::2::3", "12345::", "localhost",
         "", "0x1.2.3.4", "1.2.3.04", "١.2.3.4", "1.2.3.4\x00", "0:0:0:0:0:0:0:0"]


def test_the_same_literals_as_ipaddress() -> None:
    rng = random.Random(7)
    alpha = "0123456789abcdefABCDEF:.x% "
    hosts = FIXED + ["".join(rng.choice(alpha) for _ in range(rng.randint(1, 16))) for _ in range(20_000)]
    hosts += [":".join(rng.choice(["", "0", "1", "ffff", "12345", "1.2.3.4", "01.1.1.1"]) for _ in range(rng.randint(2, 9)))
              for _ in range(5_000)]
    assert [h for h in hosts if _literal(h) != _stock(h)] == []


@pytest.mark.parametrize(("host", "unspecified"), [("0.0.0.0", True), ("::", True), ("0::0", True),
                                                    ("::ffff:0.0.0.0", False), ("127.0.0.1", False), ("x", False)])
def test_unspecified(host: str, unspecified: bool) -> None:
    ip = _stock(host)
    assert _unspecified(_literal(host)) is unspecified is (ip is not None and ipaddress.ip_address(host).is_unspecified)


def test_bind_socket_family_follows_the_literal() -> None:
    for host, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        try:
            sock = bind_socket(host, 0)
        except OSError:  # no IPv6 here
            assert family == socket.AF_INET6
            continue
        with sock:
            assert sock.family == family
