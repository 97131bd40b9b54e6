"""A host name that does not resolve reads as Go's net.DNSError inside its OpError."""

from __future__ import annotations

import socket

from aiofrp.net import dialerr


def test_lookup_errors_read_as_gos(monkeypatch) -> None:
    monkeypatch.setattr(dialerr, "_resolver", lambda: "10.0.0.2:53")
    nx = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert dialerr.dial_error_text("no.invalid:80", nx) == "dial tcp: lookup no.invalid on 10.0.0.2:53: no such host"
    assert dialerr.dial_error_text("[::1]:80", nx) == "dial tcp: lookup ::1 on 10.0.0.2:53: no such host"
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert dialerr.dial_error_text("h.example:22", again, "udp") == (
        "dial udp: lookup h.example on 10.0.0.2:53: server misbehaving")
    fail = socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution")
    assert dialerr.dial_error_text("h.example:22", fail) == (
        "dial tcp: lookup h.example on 10.0.0.2:53: non-recoverable failure in name resolution")
    ours = socket.gaierror(socket.EAI_NONAME, "no such host (dnsServer 192.0.2.1:53)")  # net/dns.py
    assert dialerr.dial_error_text("h.example:22", ours) == "dial tcp: lookup h.example on 192.0.2.1:53: no such host"


def test_resolver_is_the_first_nameserver(tmp_path, monkeypatch) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(conf if p == "/etc/resolv.conf" else p, *a, **k))
    dialerr._resolver.cache_clear()
    try:
        assert dialerr._resolver() == "[fe80::1]:53"
    finally:
        dialerr._resolver.cache_clear()
