"""frps's HTTPS vhost (routing by TLS SNI) and tcpmux ``httpconnect`` port, Go 0.65.0 and ours side
by side: Go frps with Go frpc, our frps with our frpc, the same raw bytes sent to each; compared
are what the client reads, how the connection ends (EOF, reset, or still open when nothing more comes)
and what the local service receives (PROXY headers with the ports masked).

HTTPS: exact, upper-case, trailing-dot (Go's TLS stack refuses it: a close, no alert), non-ASCII
and missing SNI; wildcard domains and their precedence, ``subdomain`` + ``subDomainHost``, a
custom domain holding a port (the SNI must hold it too), the ClientHello in several TCP segments,
in records of 50, 3 and 1 bytes, over 16 KiB in two records, bytes behind it in the same segment,
record versions 3.0 and 3.1, hellos offering only SSL 3.0 to TLS 1.1 (an unknown name gets Go's
``protocol_version`` alert in a TLS 1.0 record, not ``unrecognized_name``: its TLS server fails
on the version first) or TLS 1.2 or a legacy version 1.0 with supported_versions,
plain HTTP, SSLv2, an alert record first, an empty server_name extension, a proxy protocol v2
proxy, a dead local service. tcpmux: routing by the CONNECT authority (port ignored, case, trailing
dot, wildcard, subdomain, a custom domain with a port never matches), the Host header ignored for
an authority target and used for a ``/`` target, Proxy-Authorization (httpUser, routeByHTTPUser,
a password alone asks nothing, malformed credentials), the 404 and 407 bytes, non-CONNECT
requests, the request as Go's ``http.ReadRequest`` reads it (HTTP/0.9 to 3.7, obs-folded lines,
a space in a header name, bare LF, Content-Length / Transfer-Encoding / Trailer / Host checks),
the 200 sent before frpc reaches the local service (a dead one: 200, then the close), HTTP/1.0,
``tcpmuxPassthrough``; and on both ports the 30 s deadline for the first bytes, and a proxy gone
offline (frpc killed).

Left out on purpose (our choice, pinned as such): on a failed Proxy-Authorization Go writes its
``200`` before the ``407`` (we send the 407 only); in non-passthrough mode Go loses the bytes its
reader read ahead of the CONNECT head (same segment, or a body), ours reach the service. Left
out as timing-dependent: whether Go's close after refusing garbage is a reset (it is when more
than the ~576 bytes it read were waiting; ours reads all and closes cleanly). The ClientHello is read as
Go's crypto/tls reads it (proto/tls_hello.py): a record version below 3.0 taken, a warning alert
before the hello skipped, a repeated extension or a second host name refused; ``HELLO_PENDING``
lists the cases still read otherwise (none now). Not emulated: the other answers Go's certificate-less TLS server can give an unknown name before
``unrecognized_name`` (a HelloRetryRequest when no key share is for the group it picks,
``handshake_failure`` with no common group or suite, ``illegal_parameter`` for compression).
"""

from __future__ import annotations

import base64
import re
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.httpd import proxy_block
from support.procs import LOCALHOST, FrpLauncher, ThreadedTCPService, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(150)]

TOKEN = "sni-tcpmux-audit"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
ALERT = b"\x15\x03\x03\x00\x02\x02\x70"  # fatal unrecognized_name
PROXY_AUTH = (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"Restricted\"\r\n"
              b"Content-Length: 0\r\n\r\n")
IMPLS = ("go", "ours")


class Service:
    """The local service: answers ``SVC-ACK`` to the first bytes and records each connection."""

    def __init__(self) -> None:
        self.conns: list[bytes] = []
        self.open = 0
        self.lock = threading.Lock()
        self._server = ThreadedTCPService(self._serve)
        self.port = self._server.port

    def _serve(self, conn: socket.socket) -> None:
        with self.lock:
            self.open += 1
        got = b""
        try:
            conn.settimeout(60)
            while data := conn.recv(65536):
                if not got:
                    conn.sendall(b"SVC-ACK")
                got += data
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.append(got)
                self.open -= 1

    def received(self, tag: bytes) -> list[bytes]:
        with self.lock:
            return sorted(c for c in self.conns if tag in c)

    def stop(self) -> None:
        self._server.close()


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def hello(sni: str | bytes | None, tag: bytes = b"", pad: int = 0, legacy: bytes = b"\x03\x03",
          extra: bytes = b"", versions: bytes | None = b"\x03\x04\x03\x03") -> bytes:
    """A TLS 1.3 ClientHello handshake message (x25519 key share), ``tag`` in its random; with
    ``versions=None`` no supported_versions extension (``legacy`` is then the highest version)."""
    exts = b""
    if sni is not None:
        name = sni.encode() if isinstance(sni, str) else sni
        exts += _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    exts += _ext(10, b"\x00\x04\x00\x1d\x00\x17") + _ext(11, b"\x01\x00") + _ext(13, b"\x00\x06\x04\x03\x08\x04\x04\x01")
    exts += _ext(51, b"\x00\x24\x00\x1d\x00\x20\x09" + bytes(31)) + extra
    if versions is not None:
        exts += _ext(43, bytes([len(versions)]) + versions)
    if pad:
        exts += _ext(21, bytes(pad))
    body = legacy + tag.ljust(32, b"R") + b"\x20" + b"S" * 32 + b"\x00\x06\x13\x01\x13\x02\x13\x03\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


def records(handshake: bytes, size: int = 16384, version: bytes = b"\x03\x01") -> bytes:
    return b"".join(b"\x16" + version + struct.pack("!H", len(handshake[i:i + size])) + handshake[i:i + size]
                    for i in range(0, len(handshake), size))


def tls(sni: str | bytes | None, tag: bytes, **kw: Any) -> bytes:
    return records(hello(sni, tag, **kw))


def connect(target: bytes, extra: bytes = b"", version: bytes = b"HTTP/1.1", host: bytes | None = None,
            method: bytes = b"CONNECT") -> bytes:
    return (method + b" " + target + b" " + version + b"\r\nHost: " + (target if host is None else host)
            + b"\r\n" + extra + b"\r\n")


def basic(user: str, pwd: str) -> bytes:
    return b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{pwd}".encode()) + b"\r\n"


def probe(port: int, parts: list[bytes], *, await_answer: bool = False, first: float = 8.0, idle: float = 1.5,
          total: float = 15.0) -> tuple[bytes, str, float]:
    """Send ``parts`` (in TCP segments of their own; with ``await_answer`` each after the first
    waits for the 200, as a client does), then read until the server closes or nothing more comes
    (``first`` seconds for a first byte, then ``idle``; the service's ``SVC-ACK`` is its last
    word: half a second after it): (bytes read, "EOF" / "RESET" / "OPEN", seconds until then)."""
    sock = socket.create_connection((LOCALHOST, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    out, end = b"", "OPEN"

    def read(timeout: float) -> bool:
        """One read; False once the connection ended."""
        nonlocal out, end
        sock.settimeout(timeout)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return True
        except ConnectionResetError:
            end = "RESET"
            return False
        if not data:
            end = "EOF"
            return False
        out += data
        return True

    with sock:
        for i, part in enumerate(parts):
            if i:
                if await_answer:  # the rest only after a 200 (no write racing a close: a reset)
                    deadline = time.monotonic() + 5
                    while len(out) < len(OK) and end == "OPEN" and time.monotonic() < deadline:
                        read(deadline - time.monotonic())
                    if not out.startswith(OK) or end != "OPEN":
                        break
                else:
                    time.sleep(0.05)  # a segment of its own
            if part:
                sock.sendall(part)
        while end == "OPEN" and time.monotonic() - t0 < total:
            before = len(out)
            if read(0.5 if out.endswith(b"SVC-ACK") else idle if out else first) and len(out) == before:
                break
    return out, end, time.monotonic() - t0


def _mask_pp(data: bytes, vport: int) -> bytes:
    """PROXY headers with the client port masked and the frps port checked."""
    m = re.match(rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ (\d+)\r\n", data)
    if m:
        assert int(m[1]) == vport
        return b"PROXY TCP4 127.0.0.1 127.0.0.1 <c> <v>\r\n" + data[m.end():]
    sig = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01"
    if data.startswith(sig):
        assert struct.unpack("!H", data[len(sig) + 2:len(sig) + 4])[0] == vport
        return sig + b"<c><v>" + data[len(sig) + 4:]
    return data


class Stack:
    """frps (HTTPS vhost and tcpmux ports) and frpc of one implementation, with the proxies."""

    def __init__(self, frp: FrpLauncher, impl: str, *, passthrough: bool = False) -> None:
        self.service = Service()
        dead = free_port()
        bind, self.sport, self.mport = free_port(), free_port(), free_port()
        start = frp.go_frps if impl == "go" else frp.ours_frps
        self.frps = start(frps_config(bind, token=TOKEN, vhostHTTPSPort=self.sport, tcpmuxHTTPConnectPort=self.mport,
                                      subDomainHost="host.test", tcpmuxPassthrough=passthrough))
        svc = self.service.port
        mux = {"multiplexer": "httpconnect"}
        blocks = [
            proxy_block("https", "s-exact", svc, customDomains=["exact.test", "MiXed.Test"]),
            proxy_block("https", "s-wild", svc, customDomains=["*.wild.test"]),
            proxy_block("https", "s-wild-exact", svc, customDomains=["a.wild.test"]),
            proxy_block("https", "s-sub", svc, subdomain="sub"),
            proxy_block("https", "s-port", svc, customDomains=["port.test:8443"]),
            proxy_block("https", "s-pp", svc, customDomains=["pp.test"], **{"transport.proxyProtocolVersion": "v2"}),
            proxy_block("https", "s-dead", dead, customDomains=["dead.test"]),
            proxy_block("tcpmux", "m-plain", svc, customDomains=["m.test", "*.mw.test", "MUp.Test"], **mux),
            proxy_block("tcpmux", "m-auth", svc, customDomains=["auth.test"], httpUser="u", httpPassword="p", **mux),
            proxy_block("tcpmux", "m-bob", svc, customDomains=["ru.test"], routeByHTTPUser="bob", **mux),
            proxy_block("tcpmux", "m-pwonly", svc, customDomains=["pwonly.test"], httpPassword="p", **mux),
            proxy_block("tcpmux", "m-dead", dead, customDomains=["mdead.test"], **mux),
            proxy_block("tcpmux", "m-pp", svc, customDomains=["mpp.test"], **mux,
                        **{"transport.proxyProtocolVersion": "v1"}),
            proxy_block("tcpmux", "m-sub", svc, subdomain="msub", **mux),
            proxy_block("tcpmux", "m-port", svc, customDomains=["mport.test:99"], **mux),
        ]
        self.frps.wait_for_log("frps started successfully", 10)
        self.frpc = (frp.go_frpc if impl == "go" else frp.ours_frpc)(frpc_config(bind, *blocks, token=TOKEN))
        self.frpc.wait_for_proxies(*re.findall(r'name = "([^"]+)"', "".join(blocks)), timeout=20)

    def received(self, tag: bytes, port: int) -> list[bytes]:
        return [_mask_pp(c, port) for c in self.service.received(tag)] if tag else []


@pytest.fixture
def stacks(frp):
    made: dict[str, Stack] = {}
    try:
        for impl in IMPLS:
            made[impl] = Stack(frp, impl)
        yield made
    finally:
        for s in made.values():
            s.service.stop()


Case = tuple[str, list[bytes], bytes]  # name, parts, the tag the service sees (b"" for none)


def side_by_side(stacks: dict[str, Stack], cases: list[Case], port: str, **kw: Any
                 ) -> dict[str, dict[str, tuple[bytes, str, list[bytes]]]]:
    """Every case through both stacks at once; then what each client and service got."""
    jobs = [(case, impl) for case in cases for impl in IMPLS]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda j: probe(getattr(stacks[j[1]], port), j[0][1], **kw), jobs))
    for s in stacks.values():  # the clients closed: every work connection ends
        poll(lambda s=s: s.service.open == 0, 10, "the service's connections to close")
    got: dict[str, dict[str, tuple[bytes, str, list[bytes]]]] = {}
    for ((name, _, tag), impl), (out, end, _) in zip(jobs, answers, strict=True):
        stack = stacks[impl]
        got.setdefault(name, {})[impl] = (out, end, stack.received(tag, getattr(stack, port)))
    return got


def _report(differ: dict[str, dict[str, Any]]) -> str:
    return "\n".join(f"{name}:\n  go:   {s['go']!r:.600}\n  ours: {s['ours']!r:.600}" for name, s in differ.items())


def _tags(n: int) -> bytes:
    return b"TAG%05d" % n


def https_cases() -> list[Case]:
    t = _tags
    base = hello("exact.test", t(16))
    return [
        ("exact", [tls("exact.test", t(1))], t(1)),
        ("custom-domain-mixed-case", [tls("mixed.test", t(2))], t(2)),
        ("sni-upper-case", [tls("EXACT.Test", t(3))], t(3)),
        ("sni-trailing-dot", [tls("exact.test.", t(4))], t(4)),
        ("no-sni", [tls(None, t(5))], t(5)),
        ("unknown-sni", [tls("nope.test", t(6))], t(6)),
        ("wildcard", [tls("x.wild.test", t(7))], t(7)),
        ("wildcard-deeper", [tls("y.x.wild.test", t(8))], t(8)),
        ("exact-before-wildcard", [tls("a.wild.test", t(9))], t(9)),
        ("wildcard-parent", [tls("wild.test", t(10))], t(10)),
        ("subdomain", [tls("sub.host.test", t(11))], t(11)),
        ("custom-domain-with-port", [tls("port.test:8443", t(12))], t(12)),
        ("custom-domain-with-port-bare", [tls("port.test", t(13))], t(13)),
        ("proxy-protocol-v2", [tls("pp.test", t(14))], t(14)),
        ("dead-local-service", [tls("dead.test", t(15))], t(15)),
        ("segments", [records(base)[i:i + 40] for i in range(0, len(records(base)), 40)], t(16)),
        ("records-of-50", [records(hello("exact.test", t(17)), 50)], t(17)),
        ("records-of-3", [records(hello("exact.test", t(18)), 3)], t(18)),
        ("records-of-1", [records(hello("exact.test", t(19)), 1)], t(19)),
        ("hello-over-16k", [tls("exact.test", t(20), pad=20000)], t(20)),
        ("hello-over-16k-unknown", [tls("nope.test", t(21), pad=20000)], t(21)),
        ("bytes-behind-hello", [tls("exact.test", t(22)) + b"\x17\x03\x03\x00\x05EARLY"], t(22)),
        ("bytes-behind-hello-unknown", [tls("nope.test", t(23)) + b"\x17\x03\x03\x00\x05EARLY"], t(23)),
        ("legacy-tls10-hello-unknown", [tls("nope.test", t(24), legacy=b"\x03\x01")], t(24)),
        ("tls10-only-unknown", [tls("nope.test", t(33), legacy=b"\x03\x01", versions=None)], t(33)),
        ("tls11-only-unknown", [tls("nope.test", t(34), legacy=b"\x03\x02", versions=None)], t(34)),
        ("ssl30-only-unknown", [tls("nope.test", t(35), legacy=b"\x03\x00", versions=None)], t(35)),
        ("tls11-listed-unknown", [tls("nope.test", t(36), versions=b"\x03\x02\x03\x01")], t(36)),
        ("tls12-only-unknown", [tls("nope.test", t(37), versions=None)], t(37)),
        ("tls10-only-routed", [tls("exact.test", t(38), legacy=b"\x03\x01", versions=None)], t(38)),
        ("record-version-3.0", [records(hello("exact.test", t(25)), version=b"\x03\x00")], t(25)),
        ("record-version-2.0", [records(hello("exact.test", t(26)), version=b"\x02\x00")], t(26)),
        ("sni-non-ascii", [tls("ex\u00e4ct.test".encode("latin-1"), t(27))], t(27)),
        ("empty-sni-extension", [tls(None, t(28), extra=b"\x00\x00\x00\x00")], t(28)),
        ("close-notify-first", [b"\x15\x03\x01\x00\x02\x01\x00" + tls("exact.test", t(29))], t(29)),
        ("warning-alert-first", [b"\x15\x03\x01\x00\x02\x01\x5a" + tls("exact.test", t(30))], t(30)),
        ("two-sni-extensions", [tls("exact.test", t(31), extra=_ext(0, b"\x00\x0c\x00\x00\x09nope.test"))], t(31)),
        ("two-host-names", [tls(None, t(32), extra=_ext(0, b"\x00\x19\x00\x00\x0aexact.test\x00\x00\x09nope.test"))],
         t(32)),
        ("plain-http", [b"GET / HTTP/1.1\r\nHost: exact.test\r\n\r\n"], b""),
        ("sslv2-hello", [bytes.fromhex("802e0103010015000000100100800300800700c0060040020080040080") + bytes(16)], b""),
    ]


# Where our ClientHello reading still differs from Go's crypto/tls (proto/tls_hello.py)
HELLO_PENDING: set[str] = set()


def test_https_vhost_side_by_side(stacks) -> None:
    got = side_by_side(stacks, https_cases(), "sport")
    differ = {name: s for name, s in got.items() if s["go"] != s["ours"]}
    assert set(differ) == HELLO_PENDING, _report({k: v for k, v in differ.items() if k not in HELLO_PENDING}) or (
        f"now read as Go reads them (take them off HELLO_PENDING): {HELLO_PENDING - set(differ)}")
    # what the cases are about, so that a change on both sides is seen too
    ours = {name: s["ours"] for name, s in got.items()}
    for name in ("exact", "custom-domain-mixed-case", "sni-upper-case", "wildcard", "exact-before-wildcard",
                 "subdomain", "custom-domain-with-port", "segments", "records-of-1", "hello-over-16k"):
        assert ours[name][:2] == (b"SVC-ACK", "OPEN"), name
    for name in ("no-sni", "unknown-sni", "wildcard-parent", "custom-domain-with-port-bare", "hello-over-16k-unknown",
                 "legacy-tls10-hello-unknown", "tls12-only-unknown", "sni-non-ascii"):
        assert ours[name] == (ALERT, "EOF", []), name
    for name in ("tls10-only-unknown", "tls11-only-unknown", "ssl30-only-unknown", "tls11-listed-unknown"):
        assert ours[name] == (b"\x15\x03\x01\x00\x02\x02\x46", "EOF", []), name  # protocol_version
    for name in ("sni-trailing-dot", "plain-http", "sslv2-hello", "empty-sni-extension", "dead-local-service"):
        assert ours[name] == (b"", "EOF", []), name
    assert ours["hello-over-16k"][2] == [tls("exact.test", _tags(20), pad=20000)]
    assert ours["bytes-behind-hello"][2] == [tls("exact.test", _tags(22)) + b"\x17\x03\x03\x00\x05EARLY"]
    assert ours["proxy-protocol-v2"][2][0].endswith(b"<c><v>" + tls("pp.test", _tags(14)))


def tcpmux_cases() -> list[Case]:
    t = _tags
    c = connect
    return [
        ("connect", [c(b"m.test:443"), t(1)], t(1)),
        ("no-port", [c(b"m.test"), t(2)], t(2)),
        ("upper-case", [c(b"M.TEST:443"), t(3)], t(3)),
        ("trailing-dot", [c(b"m.test.:443"), t(4)], t(4)),
        ("custom-domain-mixed-case", [c(b"mup.test:1"), t(5)], t(5)),
        ("wildcard", [c(b"a.mw.test:1"), t(6)], t(6)),
        ("subdomain", [c(b"msub.host.test:1"), t(7)], t(7)),
        ("custom-domain-with-port", [c(b"mport.test:99"), t(8)], t(8)),
        ("unknown-host", [c(b"nope.test:443"), t(9)], t(9)),
        ("host-header-ignored", [c(b"m.test:443", host=b"nope.test"), t(10)], t(10)),
        ("no-host-header", [b"CONNECT m.test:443 HTTP/1.1\r\n\r\n", t(11)], t(11)),
        ("slash-target-host-header", [b"CONNECT /x HTTP/1.1\r\nHost: m.test:443\r\n\r\n", t(12)], t(12)),
        ("slash-target-bad-escape", [c(b"/a%zz", host=b"m.test"), t(13)], t(13)),
        ("authority-path-bad-escape", [c(b"m.test:443/%zz"), t(14)], t(14)),
        ("ipv6", [c(b"[::1]:443"), t(15)], t(15)),
        ("userinfo", [c(b"u@m.test:443"), t(16)], t(16)),
        ("star", [c(b"*"), t(17)], t(17)),
        ("auth-good", [c(b"auth.test:443", basic("u", "p")), t(18)], t(18)),
        ("auth-lower-case", [c(b"auth.test:443", b"proxy-authorization: basic dTpw\r\n"), t(19)], t(19)),
        ("auth-first-of-two", [c(b"auth.test:443", basic("u", "p") + basic("u", "x")), t(20)], t(20)),
        ("auth-folded", [c(b"auth.test:443", b"Proxy-Authorization: Basic\r\n\t dTpw \r\n"), t(21)], t(21)),
        ("password-only-asks-nothing", [c(b"pwonly.test:1"), t(22)], t(22)),
        ("route-by-user", [c(b"ru.test:1", basic("bob", "x")), t(23)], t(23)),
        ("route-by-user-other", [c(b"ru.test:1", basic("carol", "x")), t(24)], t(24)),
        ("route-by-user-none", [c(b"ru.test:1"), t(25)], t(25)),
        ("route-by-user-no-colon", [c(b"ru.test:1", b"Proxy-Authorization: Basic Ym9i\r\n"), t(26)], t(26)),
        ("dead-local-service", [c(b"mdead.test:1")], b""),
        ("proxy-protocol-v1", [c(b"mpp.test:1"), t(28)], t(28)),
        ("http10", [c(b"m.test:443", version=b"HTTP/1.0"), t(29)], t(29)),
        ("http09", [c(b"m.test:443", version=b"HTTP/0.9"), t(30)], t(30)),
        ("http20", [c(b"m.test:443", version=b"HTTP/2.0"), t(31)], t(31)),
        ("http37", [c(b"m.test:443", version=b"HTTP/3.7"), t(32)], t(32)),
        ("http1.10", [c(b"m.test:443", version=b"HTTP/1.10"), t(33)], t(33)),
        ("lower-case-http", [c(b"m.test:443", version=b"http/1.1"), t(34)], t(34)),
        ("lower-case-method", [c(b"m.test:443", method=b"connect"), t(35)], t(35)),
        ("get-absolute", [b"GET http://m.test/ HTTP/1.1\r\nHost: m.test\r\n\r\n"], b""),
        ("get-origin", [b"GET / HTTP/1.1\r\nHost: m.test\r\nX: " + b"a" * 6000 + b"\r\n\r\n"], b""),
        ("not-http", [b"HELLO\r\n\r\n"], b""),
        ("pri", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], b""),
        ("leading-crlf", [b"\r\n" + c(b"m.test:443"), t(36)], t(36)),
        ("double-space", [b"CONNECT  m.test:443 HTTP/1.1\r\n\r\n", t(37)], t(37)),
        ("bare-lf", [b"CONNECT m.test:443 HTTP/1.1\nHost: m.test:443\nX: a\n b\n\n", t(38)], t(38)),
        ("long-header", [c(b"m.test:443", b"X-Long: " + b"a" * 20000 + b"\r\n"), t(39)], t(39)),
        ("space-in-name", [c(b"m.test:443", b"X Y: z\r\n"), t(40)], t(40)),
        ("space-before-colon", [c(b"m.test:443", b"X-Y : z\r\n"), t(41)], t(41)),
        ("second-host-with-space", [c(b"m.test:443", b"Host : other\r\n"), t(42)], t(42)),
        ("two-hosts", [c(b"m.test:443", b"Host: other\r\n"), t(43)], t(43)),
        ("folded-line", [c(b"m.test:443", b"X-Y: a\r\n b\r\n \r\n"), t(44)], t(44)),
        ("folded-first-line", [b"CONNECT m.test:443 HTTP/1.1\r\n X: y\r\nHost: m.test\r\n\r\n", t(45)], t(45)),
        ("no-colon", [c(b"m.test:443", b"NoColon\r\n"), t(46)], t(46)),
        ("empty-name", [c(b"m.test:443", b": v\r\n"), t(47)], t(47)),
        ("tab-in-name", [c(b"m.test:443", b"X\tY: v\r\n"), t(48)], t(48)),
        ("bad-name-byte", [c(b"m.test:443", b"X(: v\r\n"), t(49)], t(49)),
        ("nul-in-value", [c(b"m.test:443", b"X: a\x00b\r\n"), t(50)], t(50)),
        ("del-in-value", [c(b"m.test:443", b"X: a\x7fb\r\n"), t(51)], t(51)),
        ("cr-in-value", [c(b"m.test:443", b"X: a\rb\r\n"), t(52)], t(52)),
        ("high-byte-in-value", [c(b"m.test:443", b"X: a\xe4b\r\n"), t(53)], t(53)),
        ("content-length-bad", [c(b"m.test:443", b"Content-Length: x\r\n"), t(54)], t(54)),
        ("content-length-empty", [c(b"m.test:443", b"Content-Length: \r\n"), t(55)], t(55)),
        ("content-length-plus", [c(b"m.test:443", b"Content-Length: +5\r\n"), t(56)], t(56)),
        ("content-length-2^63", [c(b"m.test:443", b"Content-Length: 9223372036854775808\r\n"), t(57)], t(57)),
        ("content-length-2^63-1", [c(b"m.test:443", b"Content-Length: 9223372036854775807\r\n"), t(58)], t(58)),
        ("content-length-twice-same", [c(b"m.test:443", b"Content-Length: 1\r\nContent-Length:  1 \r\n"), t(59)],
         t(59)),
        ("content-length-twice-differ", [c(b"m.test:443", b"Content-Length: 1\r\nContent-Length: 2\r\n"), t(60)],
         t(60)),
        ("content-length-list", [c(b"m.test:443", b"Content-Length: 1, 1\r\n"), t(61)], t(61)),
        ("chunked-bad-length", [c(b"m.test:443", b"Transfer-Encoding: chunked\r\nContent-Length: x\r\n"), t(62)],
         t(62)),
        ("te-gzip", [c(b"m.test:443", b"Transfer-Encoding: gzip\r\n"), t(63)], t(63)),
        ("te-gzip-http10", [c(b"m.test:443", b"Transfer-Encoding: gzip\r\n", version=b"HTTP/1.0"), t(64)], t(64)),
        ("te-upper-case", [c(b"m.test:443", b"Transfer-Encoding: CHUNKED\r\n"), t(65)], t(65)),
        ("te-twice", [c(b"m.test:443", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), t(66)],
         t(66)),
        ("te-list", [c(b"m.test:443", b"Transfer-Encoding: gzip, chunked\r\n"), t(67)], t(67)),
        ("te-empty", [c(b"m.test:443", b"Transfer-Encoding: \r\n"), t(68)], t(68)),
        ("trailer-content-length", [c(b"m.test:443", b"Transfer-Encoding: chunked\r\nTrailer: content-length\r\n"),
                                    t(69)], t(69)),
        ("trailer-not-chunked", [c(b"m.test:443", b"Trailer: Content-Length\r\n"), t(70)], t(70)),
    ]


# Go writes its 200 before checking credentials, then the 407 (we send the 407 only)
AUTH_FAILS: list[Case] = [
    ("auth-none", [connect(b"auth.test:443")], b""),
    ("auth-wrong-password", [connect(b"auth.test:443", basic("u", "x"))], b""),
    ("auth-authorization-header", [connect(b"auth.test:443", b"Authorization: Basic dTpw\r\n")], b""),
    ("auth-bad-base64", [connect(b"auth.test:443", b"Proxy-Authorization: Basic !!\r\n")], b""),
    ("auth-space-in-name", [connect(b"auth.test:443", b"Proxy-Authorization : Basic dTpw\r\n")], b""),
]
# In one segment with the head: Go's reader had read them, and they are lost (ours reach the service)
READ_AHEAD: list[Case] = [
    ("same-segment", [connect(b"m.test:443") + _tags(95)], _tags(95)),
    ("connect-with-body", [connect(b"m.test:443", b"Content-Length: 5\r\n") + b"abcde" + _tags(96)], _tags(96)),
]


def test_tcpmux_side_by_side(stacks) -> None:
    got = side_by_side(stacks, tcpmux_cases() + AUTH_FAILS, "mport", await_answer=True)
    got.update(side_by_side(stacks, READ_AHEAD, "mport"))
    fails = {name for name, _, _ in AUTH_FAILS}
    for name in fails:
        go_out, go_end, go_seen = got[name]["go"]
        assert go_out.startswith(OK), (name, got[name]["go"])
        got[name]["go"] = (go_out.removeprefix(OK), go_end, go_seen)
    for name, parts, _ in READ_AHEAD:
        assert got[name]["go"] == (OK, "OPEN", []), (name, got[name]["go"])  # Go's loss
        assert got[name].pop("ours") == (OK + b"SVC-ACK", "OPEN", [parts[0].partition(b"\r\n\r\n")[2]]), name
        del got[name]
    differ = {name: s for name, s in got.items() if s["go"] != s["ours"]}
    assert not differ, _report(differ)
    ours = {name: s["ours"] for name, s in got.items()}
    assert ours["connect"] == (OK + b"SVC-ACK", "OPEN", [_tags(1)])
    assert ours["dead-local-service"] == (OK, "EOF", [])  # the 200 comes before frpc dials
    not_found = ours["unknown-host"]
    assert not_found[0].startswith(b"HTTP/1.1 404 Not Found\r\nContent-Length: ") and not_found[1:] == ("EOF", [])
    assert b"\r\nContent-Type: text/html\r\nServer: frp/0.65.0\r\n\r\n<!DOCTYPE html>" in not_found[0]
    for name in ("auth-none", "auth-wrong-password", "auth-authorization-header"):
        assert ours[name] == (PROXY_AUTH, "EOF", []), name
    for name in ("no-port", "upper-case", "trailing-dot", "host-header-ignored", "auth-folded", "route-by-user",
                 "http09", "http37", "space-in-name", "folded-line", "bare-lf", "te-gzip-http10"):
        assert ours[name][:2] == (OK + b"SVC-ACK", "OPEN"), name
    for name in ("get-absolute", "get-origin", "http1.10", "two-hosts", "content-length-bad", "te-gzip",
                 "chunked-bad-length", "trailer-content-length", "folded-first-line", "authority-path-bad-escape"):
        assert ours[name] == (b"", "EOF", []), name
    assert ours["proxy-protocol-v1"][2] == [b"PROXY TCP4 127.0.0.1 127.0.0.1 <c> <v>\r\n" + _tags(28)]


def test_tcpmux_passthrough_side_by_side(frp) -> None:
    made: dict[str, Stack] = {}
    try:
        for impl in IMPLS:
            made[impl] = Stack(frp, impl, passthrough=True)
        head = connect(b"m.test:443")
        cases: list[Case] = [
            ("connect", [head + _tags(1)], _tags(1)),
            ("connect-then-bytes", [head, _tags(2)], _tags(2)),
            ("http10", [connect(b"m.test:443", version=b"HTTP/1.0") + _tags(3)], _tags(3)),
            ("auth-good", [connect(b"auth.test:443", basic("u", "p")) + _tags(4)], _tags(4)),
            ("auth-wrong", [connect(b"auth.test:443", basic("u", "x")) + _tags(5)], _tags(5)),
            ("unknown-host", [connect(b"nope.test:443") + _tags(6)], _tags(6)),
            ("dead-local-service", [connect(b"mdead.test:1") + _tags(7)], _tags(7)),
            ("proxy-protocol-v1", [connect(b"mpp.test:1") + _tags(8)], _tags(8)),
            ("folded-line", [connect(b"m.test:443", b"X: a\r\n b\r\n") + _tags(9)], _tags(9)),
        ]
        got = side_by_side(made, cases, "mport")
        differ = {name: s for name, s in got.items() if s["go"] != s["ours"]}
        assert not differ, _report(differ)
        ours = {name: s["ours"] for name, s in got.items()}
        assert ours["connect"] == (b"SVC-ACK", "OPEN", [head + _tags(1)])  # no 200 of frps's own
        assert ours["auth-wrong"][0].startswith(b"HTTP/1.1 407 ") and ours["auth-wrong"][1:] == ("EOF", [])
        assert ours["proxy-protocol-v1"][2] == [b"PROXY TCP4 127.0.0.1 127.0.0.1 <c> <v>\r\n"
                                                + connect(b"mpp.test:1") + _tags(8)]
    finally:
        for s in made.values():
            s.service.stop()


def test_first_bytes_deadline_and_proxy_offline(stacks) -> None:
    """Both ports close a connection that has not finished its ClientHello / CONNECT head 30 s
    after the accept (Go's vhostReadWriteTimeout), with a clean close. Meanwhile: frpc killed,
    the next connections find no route."""
    slow = [("sport", [b""]), ("sport", [tls("exact.test", _tags(1))[:50]]), ("sport", [b"\x16\x03"]),
            ("mport", [b""]), ("mport", [b"CONNECT m.test:443 HTTP/1.1\r\n"])]
    with ThreadPoolExecutor(len(slow) * 2) as pool:
        waits = [(impl, pool.submit(probe, getattr(stacks[impl], port), parts, first=45, total=45))
                 for port, parts in slow for impl in IMPLS]
        for s in stacks.values():
            s.frpc.kill()
        offline: dict[str, list[tuple[bytes, str, float]]] = {}
        for impl, s in stacks.items():
            poll(lambda s=s: probe(s.sport, [tls("exact.test", _tags(2))])[0] == ALERT, 15, f"{impl} https route gone")
            poll(lambda s=s: probe(s.mport, [connect(b"m.test:443")])[0].startswith(b"HTTP/1.1 404 "), 15,
                 f"{impl} tcpmux route gone")
            offline[impl] = [probe(s.sport, [tls("exact.test", _tags(3))]), probe(s.mport, [connect(b"m.test:443")])]
        assert [a[:2] for a in offline["go"]] == [a[:2] for a in offline["ours"]]
        assert offline["ours"][0][:2] == (ALERT, "EOF")
        for impl, fut in waits:
            out, end, took = fut.result()
            assert (out, end) == (b"", "EOF") and 29 <= took <= 34, (impl, out, end, took)
