"""The ``socks5``, ``unix_domain_socket`` and ``tls2raw`` client plugins of Go frpc 0.65.0 and of
ours side by side, behind one Go frps, on tcp proxies.

The same raw bytes go to Go's plugin and to ours; compared are the bytes the user reads and how
the connection ends (FIN, RST, or still open after a short poll), and what the service behind
receives. A SOCKS5 success reply's BND.PORT (an ephemeral port) is masked.

socks5 (go-socks5): greetings with no acceptable method, RFC 1929 right/wrong/empty credentials,
an auth version or a request version that is wrong (go-socks5 checks them only once two, resp.
three, bytes came: one byte alone leaves the connection open), SOCKS4 and garbage, CONNECT to
IPv4, IPv6, IPv4-mapped IPv6 (dialed and answered as IPv4), domain names (resolved as Go's
resolver does: an empty name dials this host, ``127.1``/``0x7f.1``/``0``, a label over 63 bytes,
``-a.com``, ``a_b``, a non-ASCII name do not resolve, ``LOCALHOST`` does), a refused port, an
address the kernel refuses at once (``fe80::1`` with no zone, ``255.255.255.255``), the reply
codes 3/4/5/7/8, BIND / UDP ASSOCIATE / an unknown command (7; 4 first when its domain name does
not resolve), a non-zero reserved byte, a request split over many segments, bytes pipelined
after the request, a user that half-closes, the target's EOF (go-socks5 does not pass it on: the user's connection
stays open, a user of a close-delimited protocol waits forever, and its later bytes reach the
half-closed target; ours passes it on, README, and Go's frps then closes the user's connection).

unix_domain_socket: a missing socket (Go's plugin returns without closing: the connection stays
open, unserved; ours closes it, README), one that accepts and closes, one that says hello and half-closes, a user half-close, 1 MiB
echoed.

tls2raw: plain text, an application-data or alert first record (no answer; Go leaves the
connection open, unserved, after any handshake it gave up, ours closes it, README), an SSLv2
hello, an oversized record, an empty handshake record, a handshake message over 64 KiB (Go's
alert, in a TLS 1.0 record, then left open), a truncated hello (open), a TLS 1.0-only and a
DHE-only ClientHello (the same alert bytes), a handshake with and without SNI, the certificate
of ``crtPath`` served, a dead ``localAddr`` (the handshake completes, then silence), the local
service half-closing (its bytes, close_notify, the close) and the user's close_notify (the
service gets the bytes, then EOF).

Left out: the alerts OpenSSL sends for a malformed ClientHello past its first headers (their
record version and description are not always crypto/tls's), ServerHello's bytes (cipher
preference and extensions differ), timeouts (ours: 60 s for a SOCKS5 request, 10 s for a dial or
a TLS handshake; Go has none, the kernel's connect timeout for a dial), a dial answered
EHOSTUNREACH after the kernel's ARP/ND retries (whether it falls inside the poll is a race), and
the service's view of a user's bytes sent right after the service half-closed in tls2raw and
unix_domain_socket (Go closes both sides at the first EOF; whether the bytes got there first is
a race).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from support.plugin_services import make_cert, plugin_proxy
from support.procs import LOCALHOST, ThreadedTCPService, free_port, frpc_config, frps_config

pytestmark = [pytest.mark.compat, pytest.mark.timeout(150)]

TOKEN = "socks5-audit-token"
IMPLS = ("go", "ours")


# -- services behind the plugins --------------------------------------------------------------------


@dataclass
class Services:
    received: dict[str, list[bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, data: bytes) -> None:
        with self.lock:
            self.received.setdefault(name, []).append(data)

    def got(self, name: str) -> list[bytes]:
        with self.lock:
            return list(self.received.get(name, []))


def _read_all(c: socket.socket) -> bytes:
    got = b""
    try:
        while data := c.recv(65536):
            got += data
    except OSError:
        pass
    return got


def _echo(c: socket.socket) -> None:
    while data := c.recv(65536):
        c.sendall(data)


def _accepting(s: socket.socket, serve) -> socket.socket:
    """``s`` (bound) listening, each connection served by ``serve`` in a thread of its own."""
    s.listen(16)

    def run() -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return s


def _unix_listener(path: str, serve) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    return _accepting(s, serve)


@pytest.fixture
def env(frp) -> Iterator[dict]:
    svc = Services()

    def hello_half_close(c: socket.socket) -> None:  # "hello", FIN, then reads what comes
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        svc.record("half", _read_all(c))

    def hello_close(c: socket.socket) -> None:  # "hello", then closed for good
        c.sendall(b"hello")

    def record(c: socket.socket) -> None:
        svc.record("rec", _read_all(c))

    d = tempfile.mkdtemp(prefix="s5a-", dir="/tmp")
    services = [ThreadedTCPService(h) for h in (_echo, hello_half_close, hello_close, record)]
    echo, half, closing, rec = (s.port for s in services)
    crt, key = make_cert(d, "tls.test")

    def uds_close(c: socket.socket) -> None:
        c.close()

    def uds_echo(c: socket.socket) -> None:
        with c:
            _echo(c)

    def uds_hello(c: socket.socket) -> None:
        with c:
            c.sendall(b"hi")
            c.shutdown(socket.SHUT_WR)
            _read_all(c)

    listeners = [_unix_listener(os.path.join(d, f"{n}.sock"), f)
                 for n, f in (("close", uds_close), ("echo", uds_echo), ("hello", uds_hello))]
    six = None
    try:
        six = socket.socket(socket.AF_INET6)
        six.bind(("::1", 0))
        _accepting(six, uds_echo)
        echo6 = six.getsockname()[1]
    except OSError:
        echo6 = 0
    tls = {"crtPath": crt, "keyPath": key}
    proxies = {
        "s5": {"type": "socks5"},
        "s5auth": {"type": "socks5", "username": "u", "password": "p"},
        "s5nopass": {"type": "socks5", "username": "u"},
        "uds-missing": {"type": "unix_domain_socket", "unixPath": os.path.join(d, "missing.sock")},
        "uds-close": {"type": "unix_domain_socket", "unixPath": os.path.join(d, "close.sock")},
        "uds-echo": {"type": "unix_domain_socket", "unixPath": os.path.join(d, "echo.sock")},
        "uds-hello": {"type": "unix_domain_socket", "unixPath": os.path.join(d, "hello.sock")},
        "t2r": {"type": "tls2raw", "localAddr": f"{LOCALHOST}:{rec}", **tls},
        "t2r-echo": {"type": "tls2raw", "localAddr": f"{LOCALHOST}:{echo}", **tls},
        "t2r-half": {"type": "tls2raw", "localAddr": f"{LOCALHOST}:{half}", **tls},
        "t2r-dead": {"type": "tls2raw", "localAddr": f"{LOCALHOST}:{free_port()}", **tls},
    }
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 10)
    ports: dict[str, dict[str, int]] = {}
    for impl in IMPLS:
        ports[impl] = {k: free_port() for k in proxies}
        blocks = [plugin_proxy(f"{impl}-{k}", "tcp", v, remotePort=ports[impl][k]) for k, v in proxies.items()]
        proc = (frp.go_frpc if impl == "go" else frp.ours_frpc)(frpc_config(bind, *blocks, token=TOKEN))
        proc.wait_for_proxies(*(f"{impl}-{k}" for k in proxies), timeout=20)
    try:
        yield {"ports": ports, "svc": svc, "echo": echo, "half": half, "closing": closing, "rec": rec,
               "echo6": echo6, "crt": crt}
    finally:
        for s in services:
            s.close()
        for sock in [*listeners, six]:
            if sock is not None:
                sock.close()
        shutil.rmtree(d, ignore_errors=True)


# -- the user's side -------------------------------------------------------------------------------

FIN = None  # in a list of parts: shutdown(SHUT_WR) at that point


def exchange(port: int, parts: list[bytes | None], idle: float = 1.0, gap: float = 0.3) -> tuple[bytes, str]:
    """Send the parts (``gap`` apart), read until the peer ends the connection or ``idle`` passes
    with nothing: (what came, "CLOSED" / "RESET" / "OPEN")."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as s:
        for i, part in enumerate(parts):
            if i:
                time.sleep(gap)
            if part is FIN:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:  # closed by the peer already: what came, and how, is drained below
                    pass
            else:
                try:
                    s.sendall(part)
                except OSError:
                    return b"", "RESET"
        return _drain(s, idle)


def _drain(s: socket.socket, idle: float, *, tls: bool = False) -> tuple[bytes, str]:
    """Read until the peer ends the connection or ``idle`` passes with nothing: what came and how
    it ended (``OPEN``, ``RESET``, ``CLOSED``; over TLS ``CLOSE_NOTIFY`` or a bare ``EOF``)."""
    out = b""
    s.settimeout(idle)
    while True:
        try:
            data = s.recv(65536)
        except TimeoutError:
            return out, "OPEN"
        except ssl.SSLEOFError:
            return out, "EOF"
        except (ConnectionResetError, ssl.SSLError):
            return out, "RESET"
        if not data:
            return out, "CLOSE_NOTIFY" if tls else "CLOSED"
        out += data


CLOSED_ENDS = ("CLOSED", "EOF", "CLOSE_NOTIFY")


def side_by_side(ports: dict[str, dict[str, int]], cases: list[tuple], run,
                 held: frozenset[tuple] | set[tuple] = frozenset()) -> dict[tuple, dict[str, object]]:
    """``run(port, impl, *case[1:])`` for each case on both implementations, at once. ``held``:
    cases where Go's plugin leaves the connection open, unserved, and ours closes it (README):
    the same bytes, Go's end ``OPEN``, ours closed."""
    jobs = [(case, impl) for case in cases for impl in IMPLS]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda j: run(ports[j[1]][j[0][0]], j[1], *j[0][1:]), jobs))
    got: dict[tuple, dict[str, object]] = {}
    for (case, impl), answer in zip(jobs, answers, strict=True):
        got.setdefault(case, {})[impl] = answer

    def agree(case: tuple, a: dict[str, object]) -> bool:
        g, o = a["go"], a["ours"]
        if g == o or case not in held:
            return g == o
        assert isinstance(g, tuple) and isinstance(o, tuple)
        return g[:-1] == o[:-1] and g[-1] == "OPEN" and o[-1] in CLOSED_ENDS

    differ = {c: a for c, a in got.items() if not agree(c, a)}
    assert not differ, "\n".join(f"{c[0]} {c[1]!r:.200}:\n  go:   {a['go']!r:.300}\n  ours: {a['ours']!r:.300}"
                                 for c, a in differ.items())
    return got


# -- socks5 ------------------------------------------------------------------------------------------

GREET = b"\x05\x01\x00"
AUTH_OK = b"\x05\x01\x02\x01\x01u\x01p"


def req4(ip: str, port: int, cmd: int = 1, rsv: int = 0) -> bytes:
    return bytes((5, cmd, rsv, 1)) + socket.inet_aton(ip) + struct.pack(">H", port)


def req6(ip: str, port: int, cmd: int = 1) -> bytes:
    return bytes((5, cmd, 0, 4)) + socket.inet_pton(socket.AF_INET6, ip) + struct.pack(">H", port)


def reqd(name: bytes, port: int, cmd: int = 1) -> bytes:
    return bytes((5, cmd, 0, 3, len(name))) + name + struct.pack(">H", port)


def fail(code: int) -> bytes:
    return bytes((5, code, 0, 1)) + bytes(6)


def masked(out: bytes, at: int | None) -> bytes:
    """The BND.PORT of the success reply at offset ``at`` as ``PP``."""
    if at is None or out[at:at + 2] != b"\x05\x00" or len(out) < at + 4:
        return out
    end = at + 4 + {1: 4, 4: 16}.get(out[at + 3], 0)
    return out[:end] + b"PP" + out[end + 2:]


def test_socks5_side_by_side(env) -> None:
    e = env
    echo, dead = e["echo"], free_port()
    cases: list[tuple] = [
        # (proxy, parts, offset of the CONNECT reply, idle)
        ("s5", [b"\x05\x00"], None, 1.0),                               # no method: 05 FF, closed
        ("s5", [b"\x05\x02\x01\x02"], None, 1.0),
        ("s5", [b"\x05\x02\x02\x00"], None, 1.0),                       # no-auth among others
        ("s5", [b"\x05\x01"], None, 1.0),                               # greeting cut: open
        ("s5", [b"\x05\x01", FIN], None, 1.0),                          # the user leaves mid-handshake
        ("s5", [b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00"], None, 1.0),   # SOCKS4
        ("s5", [b"GET / HTTP/1.1\r\n\r\n"], None, 1.0),
        ("s5auth", [AUTH_OK + req4(LOCALHOST, echo) + b"abc"], 4, 1.0),
        ("s5auth", [b"\x05\x01\x02\x01\x01u\x01x"], None, 1.0),        # wrong password
        ("s5auth", [b"\x05\x01\x02\x01\x00\x00"], None, 1.0),           # empty credentials
        ("s5auth", [b"\x05\x01\x00"], None, 1.0),                       # no credentials offered
        ("s5auth", [b"\x05\x01\x02\x02"], None, 1.0),                   # auth version 2, alone: open
        ("s5auth", [b"\x05\x01\x02\x02\x01u\x01p"], None, 1.0),         # auth version 2: closed
        ("s5auth", [b"\x05\x01\x02\x01\x01u", FIN], None, 1.0),
        ("s5nopass", [b"\x05\x01\x02\x01\x01u\x00" + req4(LOCALHOST, echo) + b"abc"], 4, 1.0),
        ("s5", [GREET + req4(LOCALHOST, echo) + b"abc"], 2, 1.0),       # pipelined after the request
        ("s5", [GREET + req4(LOCALHOST, echo, rsv=7) + b"abc"], 2, 1.0),
        ("s5", [GREET + req6("::ffff:127.0.0.1", echo) + b"abc"], 2, 1.0),
        ("s5", [GREET + reqd(b"::ffff:127.0.0.1", echo) + b"abc"], 2, 1.0),
        ("s5", [GREET + reqd(b"localhost", echo) + b"abc"], 2, 1.0),
        ("s5", [GREET + reqd(b"LOCALHOST", echo) + b"abc"], 2, 1.0),
        ("s5", [GREET + reqd(b"127.0.0.1", echo) + b"abc"], 2, 1.0),
        ("s5", [GREET + reqd(b"", echo) + b"abc"], 2, 1.0),             # empty name: this host
        ("s5", [GREET + req4("0.0.0.0", echo) + b"abc"], 2, 1.0),
        *[("s5", [GREET + reqd(n, 80)], None, 1.0)
          for n in (b"no.invalid.", b"127.1", b"0x7f.1", b"0", b"a" * 70 + b".com", b"a" * 255, b"-a.com",
                    b"[::1]", b"\xc3\xa9t\xc3\xa9.com", b"a\x00b")],
        ("s5", [GREET + req4(LOCALHOST, dead)], None, 1.0),             # refused: 5
        ("s5", [GREET + req4(LOCALHOST, dead) + b"pipelined"], None, 1.0),
        ("s5", [GREET + req4(LOCALHOST, 0)], None, 1.0),
        ("s5", [GREET + req6("::1", dead)], None, 1.0),
        ("s5", [GREET + req6("fe80::1", 80)], None, 1.0),               # EINVAL at once: 4
        ("s5", [GREET + req4("255.255.255.255", 80)], None, 1.0),       # ENETUNREACH: 3
        *[("s5", [GREET + req4(LOCALHOST, echo, cmd=c)], None, 1.0) for c in (2, 3, 9)],
        ("s5", [GREET + reqd(b"no.invalid.", 80, cmd=2)], None, 1.0),   # resolved before the command
        ("s5", [GREET + reqd(b"no.invalid.", 80, cmd=9)], None, 1.0),
        ("s5", [GREET + reqd(b"localhost", 80, cmd=3)], None, 1.0),
        ("s5", [GREET + b"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50"], None, 1.0),  # request version 4
        ("s5", [GREET + b"\x04"], None, 1.0),                           # ... alone: open
        ("s5", [GREET + b"\x04\x01"], None, 1.0),
        ("s5", [GREET + b"\x04\x01\x00"], None, 1.0),                   # three bytes: closed
        ("s5", [GREET + b"\x05\x01\x00\x09"], None, 1.0),               # address type 9: 8
        ("s5", [GREET + b"\x05\x01\x00"], None, 1.0),
        ("s5", [GREET, req4(LOCALHOST, echo)[:5], req4(LOCALHOST, echo)[5:], b"abc"], 2, 1.0),
        ("s5", [bytes((b,)) for b in GREET + req4(LOCALHOST, echo)] + [b"abc"], 2, 1.0),
        ("s5", [GREET + req4(LOCALHOST, e["rec"]) + b"data", FIN], 2, 1.0),   # the user half-closes
    ]
    # the target's FIN: go-socks5 does not pass it on (the user waits), ours does
    target_ends = [
        ("s5", [GREET + req4(LOCALHOST, e["half"])], 2, 1.5),
        ("s5", [GREET + req4(LOCALHOST, e["half"]), b"more-{IMPL}"], 2, 1.5),
        ("s5", [GREET + req4(LOCALHOST, e["closing"])], 2, 1.5),
    ]
    cases += target_ends
    if e["echo6"]:
        cases += [("s5", [GREET + req6("::1", e["echo6"]) + b"abc"], 2, 1.0),
                  ("s5", [GREET + reqd(b"::1", e["echo6"]) + b"abc"], 2, 1.0),
                  ("s5", [GREET + req6("::", e["echo6"]) + b"abc"], 2, 1.0)]
    cases = [(c[0], tuple(c[1]), *c[2:]) for c in cases]

    def run(port: int, impl: str, parts: tuple, at: int | None, idle: float) -> tuple[bytes, str]:
        sent = [p if p is FIN else p.replace(b"{IMPL}", impl.encode()) for p in parts]
        out, end = exchange(port, sent, idle=idle)
        return masked(out, at), end

    got = side_by_side(e["ports"], cases, run, {(c[0], tuple(c[1]), *c[2:]) for c in target_ends})

    def ours(parts: list, at: int | None = 2, idle: float = 1.0, key: str = "s5") -> tuple[bytes, str]:
        return got[(key, tuple(parts), at, idle)]["ours"]  # type: ignore[return-value]

    # the behaviours themselves, so that a change on both sides is seen too
    ok4 = b"\x05\x00\x05\x00\x00\x01\x7f\x00\x00\x01PP"
    assert ours([GREET + req6("::ffff:127.0.0.1", echo) + b"abc"]) == (ok4 + b"abc", "OPEN")
    assert ours([GREET + reqd(b"", echo) + b"abc"]) == (ok4 + b"abc", "OPEN")
    assert ours([GREET + reqd(b"127.1", 80)], None) == (b"\x05\x00" + fail(4), "CLOSED")
    assert ours([GREET + reqd(b"no.invalid.", 80, cmd=2)], None) == (b"\x05\x00" + fail(4), "CLOSED")
    assert ours([GREET + reqd(b"localhost", 80, cmd=3)], None) == (b"\x05\x00" + fail(7), "CLOSED")
    assert ours([GREET + req6("fe80::1", 80)], None) == (b"\x05\x00" + fail(4), "CLOSED")
    assert ours([GREET + b"\x04"], None) == (b"\x05\x00", "OPEN")
    assert ours([b"\x05\x01\x02\x02"], None, key="s5auth") == (b"\x05\x02", "OPEN")
    assert ours([GREET + req4(LOCALHOST, e["half"])], 2, 1.5) == (ok4 + b"hello", "CLOSED")
    assert ours([GREET + req4(LOCALHOST, e["closing"])], 2, 1.5) == (ok4 + b"hello", "CLOSED")
    # after the target's FIN the user's bytes still reach it through Go's plugin; through ours the
    # FIN goes on and Go's frps then closes the user's connection both ways (libio.Join)
    assert b"more-go" in e["svc"].got("half") and b"more-ours" not in e["svc"].got("half")
    assert e["svc"].got("rec").count(b"data") == 2


# -- unix_domain_socket ------------------------------------------------------------------------------


def test_unix_domain_socket_side_by_side(env) -> None:
    cases = [
        ("uds-missing", (b"GET / HTTP/1.1\r\n\r\n",)),   # Go leaves it open, ours closes it
        ("uds-missing", (b"",)),
        ("uds-missing", (b"x", FIN)),
        ("uds-close", (b"hello",)),
        ("uds-close", (b"",)),
        ("uds-echo", (b"hello",)),
        ("uds-echo", (b"hello", FIN)),
        ("uds-hello", (b"",)),
    ]
    got = side_by_side(env["ports"], cases, lambda port, impl, parts: exchange(port, list(parts)),
                       {c for c in cases if c[0] == "uds-missing" and FIN not in c[1]})
    assert got[("uds-missing", (b"GET / HTTP/1.1\r\n\r\n",))]["ours"] == (b"", "CLOSED")
    assert got[("uds-hello", (b"",))]["ours"] == (b"hi", "CLOSED")

    big = os.urandom(1 << 20)
    for impl in IMPLS:
        with socket.create_connection((LOCALHOST, env["ports"][impl]["uds-echo"]), timeout=10) as s:
            sender = threading.Thread(target=s.sendall, args=(big,))
            sender.start()
            got_back = b""
            while len(got_back) < len(big) and (data := s.recv(1 << 20)):
                got_back += data
            sender.join(10)
        assert got_back == big, impl


# -- tls2raw -----------------------------------------------------------------------------------------


def client_hello(version: int, ciphers: list[int]) -> bytes:
    """A ClientHello without extensions."""
    body = struct.pack(">H", version) + bytes(range(32)) + b"\x00"
    body += struct.pack(">H", 2 * len(ciphers)) + b"".join(struct.pack(">H", c) for c in ciphers) + b"\x01\x00"
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(msg)) + msg


def tls_session(port: int, sends: list[bytes], sni: str | None, close_notify: bool = False,
                idle: float = 1.0) -> tuple[str, bytes, str]:
    """A TLS client: (handshake outcome, what came, how it ended: CLOSE_NOTIFY / EOF / RESET / OPEN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((LOCALHOST, port), timeout=10)
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        return f"handshake failed: {type(exc).__name__}", b"", ""
    with s:
        for data in sends:
            s.sendall(data)
        if close_notify:
            try:
                s = s.unwrap()  # type: ignore[assignment]
            except (OSError, ssl.SSLError):
                return "ok", b"", "EOF"
            return ("ok", *_drain(s, idle))
        return ("ok", *_drain(s, idle, tls=True))


def test_tls2raw_side_by_side(env) -> None:
    hello = b"\x16\x03\x01\x00\x05hello"
    raw_cases = [
        ("t2r", (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",)),      # not TLS: no answer, left open (ours: closed)
        ("t2r", (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", FIN)),
        ("t2r", (b"\x17\x03\x03\x00\x05hello",)),               # application data first
        ("t2r", (b"\x15\x03\x03\x00\x02\x02\x28",)),             # an alert first
        ("t2r", (b"\x16\x20\x00\x00\x05hello",)),               # record version 0x2000
        ("t2r", (b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + bytes(37),)),   # SSLv2 hello: 70
        ("t2r", (b"\x16\x03\x03\x50\x00" + bytes(100),)),       # oversized record: 22
        ("t2r", (b"\x16\x03\x01\x00\x00",)),                    # empty handshake record: 10
        ("t2r", (hello,)),                                      # a 6.6 MB handshake message: 80
        ("t2r", (hello, FIN)),
        ("t2r", (b"\x16\x03\x01\x00\x10\x01\x00\x00\xaa\x03\x03",)),   # truncated: waits, open
        ("t2r", (b"\x16\x03",)),
        ("t2r", (b"",)),
        ("t2r", (FIN,)),
        ("t2r", (client_hello(0x0301, [0x002F]),)),             # TLS 1.0 only: protocol_version
        ("t2r", (client_hello(0x0303, [0x0033]),)),             # DHE only: handshake_failure
    ]
    # a handshake given up: Go's plugin leaves the connection open, unserved; ours closes it
    got = side_by_side(env["ports"], raw_cases, lambda port, impl, parts: exchange(port, list(parts)),
                       {c for c in raw_cases if FIN not in c[1]})
    assert got[("t2r", (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",))]["ours"] == (b"", "CLOSED")
    assert got[("t2r", (hello,))]["ours"] == (b"\x15\x03\x01\x00\x02\x02\x50", "CLOSED")
    assert got[("t2r", (client_hello(0x0303, [0x0033]),))]["ours"] == (b"\x15\x03\x03\x00\x02\x02\x28", "CLOSED")
    assert got[("t2r", (b"\x16\x03",))]["ours"] == (b"", "OPEN")  # waiting for the rest of the record

    sessions = [
        ("t2r-echo", (b"abc",), "tls.test", False),
        ("t2r-echo", (b"abc",), None, False),                   # no SNI: the same certificate
        ("t2r-dead", (b"abc",), "tls.test", False),             # handshake done, then silence (ours: closed)
        ("t2r-half", (), "tls.test", False),                    # hello, close_notify, close
        ("t2r", (b"data",), "tls.test", True),                  # the user's close_notify
    ]
    got = side_by_side(env["ports"], sessions, lambda port, impl, *c: tls_session(port, *c), {sessions[2]})
    assert got[sessions[0]]["ours"] == ("ok", b"abc", "OPEN")
    assert got[sessions[2]]["ours"] == ("ok", b"", "CLOSE_NOTIFY")
    assert got[sessions[3]]["ours"] == ("ok", b"hello", "CLOSE_NOTIFY")
    assert env["svc"].got("rec").count(b"data") == 2

    # the certificate of crtPath is the one served, by both
    with open(env["crt"], "rb") as f:
        want = ssl.PEM_cert_to_DER_cert(f.read().decode())
    for impl in IMPLS:
        ctx = ssl.create_default_context(cafile=env["crt"])
        with socket.create_connection((LOCALHOST, env["ports"][impl]["t2r-echo"]), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="tls.test") as s:
            assert s.getpeercert(binary_form=True) == want, impl
