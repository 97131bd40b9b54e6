"""The reverse-proxy plugins (``http2http``, ``http2https``, ``https2http``, ``https2https``) of
Go frpc 0.65.0 and of ours side by side, behind one Go frps, before one raw service.

The same raw requests go to Go's plugin and to ours; compared are what the client reads (status
line, header fields sorted with Date masked, the body bytes as framed, whether the connection
closed) and what the service receives (request line, header fields lower-cased and sorted, the
body). Go's transport also asks for gzip when the client did not (``Accept-Encoding: gzip``):
that one line is left out of Go's side.

Covered: hop-by-hop headers both ways (a ``TE`` list naming ``trailers`` becomes
``Te: trailers``; ``TE`` never goes back to the client), response header names as Go reads them
(``ETag`` -> ``Etag``), Go's own reason phrases (``status code 299``), 1xx answers passed on
(103 Early Hints, an unasked 100), ``Content-Length: 0`` and an empty ``User-Agent`` not sent
on, ``Expect`` sent on (anything but ``100-continue``: 417), ``OPTIONS *`` answered by the
server, the request target re-escaped and its query cleaned, a close-delimited body over TLS
ended cleanly, a chunked body cut short (the chunks written so far, then the close), the
SNI/Host rule, ``hostHeaderRewrite`` and ``requestHeaders.set``; and over HTTP/2 (curl
``--http2``): Date, 103, a bad ``:path``, a body of known length cut short (the stream reset,
no head), Content-Type guessing.

A body of known length cut within the first 2 KiB (held, as Go's server holds them): nothing
reaches the client but the close. Left out, known: response trailers, Go's transport retries and the
second ``100 Continue`` Go may send (its own and the upstream's; a race, folded here), a raw non-ASCII or ``*``
target and a repeated ``User-Agent`` (aiohttp's parser refuses them: 400), and a guessed
Content-Type on a close-delimited body (Go races its first flush against the first write).
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.plugin_services import make_cert
from support.probe import ProbeService, ok
from support.procs import LOCALHOST, free_port, frpc_config, frps_config

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

TOKEN = "reverse-audit-token"
FRONT = "front.test"
KEYS = ("h2h", "h2hs", "hs2h", "hs2hs", "h2h-rw", "hs2h-rw")
PLUGIN = {"h2h": "http2http", "h2hs": "http2https", "hs2h": "https2http", "hs2hs": "https2https"}




ANSWERS: dict[str, bytes] = {
    "/cl": ok(b"hello"),
    "/nocl-html": b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n<html><b>hi</b></html>",
    "/chunked": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    "/close": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nclose-delimited body",
    "/close-html": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n<html>x</html>",
    "/http10": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nten body",
    "/hop": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\n"
             b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nProxy-Connection: x\r\nTE: trailers\r\n"
             b"Upgrade: foo\r\nX-Keep: yes\r\nContent-Length: 2\r\n\r\nok"),
    "/204": b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    "/304": b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
    "/103": b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + ok(b"after hints"),
    "/100": b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after 100"),
    "/midbody": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789",
    "/midchunk": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    "/longhdr": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Long: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "/multi": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
               b"X-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 2\r\n\r\nok"),
    "/odd-reason": b"HTTP/1.1 299 Whatever Reason\r\nContent-Length: 2\r\n\r\nok",
    "/no-reason": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    "/teapot": b"HTTP/1.1 418 Teapot\r\nContent-Length: 2\r\n\r\nok",
    "/garbage": b"NOT HTTP AT ALL\r\n\r\n",
}
CLOSE_AFTER = {"/close", "/close-html", "/http10", "/midbody", "/midchunk", "/garbage"}


def _exchange(port: int, raw: list[bytes], tls: bool, sni: str | None = FRONT, idle: float = 3.0) -> bytes:
    """Send ``raw`` (its parts apart), read until the server closes (or ``idle`` passes with
    nothing): the answer with each head's fields sorted and Date masked, then how it ended."""
    sock = socket.create_connection((LOCALHOST, port), timeout=10)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        sock = ctx.wrap_socket(sock, server_hostname=sni)
    out, end = b"", b"<OPEN>"
    with sock:
        for i, part in enumerate(raw):
            if i:  # the body after the 100 Continue
                sock.settimeout(10)
                while b"100 Continue\r\n\r\n" not in out and (data := sock.recv(65536)):
                    out += data
            sock.sendall(part)
        sock.settimeout(idle)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except (ConnectionResetError, ssl.SSLError):
                end = b"<RESET>"
                break
            if not data:
                end = b"<CLOSED>"
                break
            out += data
    out = re.sub(rb"Date: [^\r]*", b"Date: <d>", out)
    shown = b""
    while out.startswith(b"HTTP/") and b"\r\n\r\n" in out:
        head, _, out = out.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        shown += b"\r\n".join([lines[0], *sorted(lines[1:])]) + b"\r\n\r\n"
        if not lines[0].split(b" ")[1].startswith(b"1"):
            break
    return shown + out + end


def _req(path: str, extra: str = "", method: str = "GET", host: str | None = FRONT, version: str = "HTTP/1.1",
         body: bytes = b"", close: bool = True) -> bytes:
    head = f"{method} {path} {version}\r\n"
    head += f"Host: {host}\r\n" if host is not None else ""
    head += "X-Probe: {TAG}\r\n" + extra + ("Connection: close\r\n" if close else "") + "\r\n"
    return head.encode("latin-1") + body


EXPECT = _req("/cl", "Content-Length: 5\r\nExpect: 100-continue\r\n", "POST")

# (name, request parts, plugins it is sent to (None: the four), TLS server name)
CASES: list[tuple[str, list[bytes], tuple[str, ...] | None, str | None]] = [
    ("get", [_req("/cl")], None, FRONT),
    ("forwarded-in", [_req("/cl", "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: fh\r\n"
                               "X-Forwarded-Proto: fp\r\nForwarded: for=1.1.1.1\r\n")], None, FRONT),
    ("hop-request", [_req("/cl", "Connection: X-Foo, keep-alive, close\r\nX-Foo: 1\r\nKeep-Alive: 300\r\n"
                              "TE: trailers, deflate\r\nProxy-Authorization: Basic x\r\n"
                              "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Bar: 2\r\n", close=False)],
     None, FRONT),
    ("te-gzip", [_req("/cl", "TE: gzip\r\n")], None, FRONT),
    ("post-length", [_req("/cl", "Content-Length: 5\r\n", "POST", body=b"abcde")], None, FRONT),
    ("post-chunked-trailer", [_req("/cl", "Transfer-Encoding: chunked\r\nTrailer: X-T\r\n", "POST",
                                   body=b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n")], None, FRONT),
    ("post-empty", [_req("/cl", method="POST")], None, FRONT),
    ("get-length-0", [_req("/cl", "Content-Length: 0\r\n")], None, FRONT),
    ("expect-100", [EXPECT, b"abcde"], None, FRONT),
    ("expect-other", [_req("/cl", "Content-Length: 5\r\nExpect: foo\r\n", "POST", body=b"abcde")], None, FRONT),
    ("user-agent-empty", [_req("/cl", "User-Agent: \r\n")], None, FRONT),
    ("head", [_req("/cl", method="HEAD")], None, FRONT),
    ("chunked", [_req("/chunked")], None, FRONT),
    ("close-delimited", [_req("/close")], None, FRONT),
    ("http10-upstream", [_req("/http10")], None, FRONT),
    ("http10-client", [_req("/chunked", version="HTTP/1.0", close=False)], None, FRONT),
    ("http10-client-no-host", [_req("/cl", version="HTTP/1.0", host=None, close=False)], None, None),
    ("http10-client-103", [_req("/103", version="HTTP/1.0", close=False)], None, FRONT),
    ("hop-response", [_req("/hop")], None, FRONT),
    ("204", [_req("/204")], None, FRONT),
    ("304-etag", [_req("/304")], None, FRONT),
    ("103-early-hints", [_req("/103")], None, FRONT),
    ("100-unasked", [_req("/100")], None, FRONT),
    ("cut-chunked", [_req("/midchunk")], None, FRONT),
    ("cut-length", [_req("/midbody")], None, FRONT),
    ("long-response-header", [_req("/longhdr")], None, FRONT),
    ("long-request-header", [_req("/cl", "X-Long: " + "b" * 70000 + "\r\n")], None, FRONT),
    ("not-http", [_req("/garbage")], None, FRONT),
    ("repeated-fields", [_req("/multi")], None, FRONT),
    ("odd-reason", [_req("/odd-reason")], None, FRONT),
    ("no-reason", [_req("/no-reason")], None, FRONT),
    ("teapot", [_req("/teapot")], None, FRONT),
    ("options-star", [_req("*", method="OPTIONS")], None, FRONT),
    ("bad-escape", [_req("/a%zz")], None, FRONT),
    ("target-reescaped", [_req("/a%41b/{}|c?a=1;b=2&c=%zz")], None, FRONT),
    ("absolute-target", [_req("http://other.test/cl?x=1")], ("h2h", "h2hs"), None),
    ("host-with-port", [_req("/cl", host="Front.Test:8080")], None, FRONT),
    ("sni-mismatch", [_req("/cl", host="other.test")], ("hs2h", "hs2hs"), FRONT),
    ("sni-none", [_req("/cl", host="other.test")], ("hs2h", "hs2hs"), None),
    ("rewrite", [_req("/cl", "User-Agent: x\r\nX-Forwarded-For: 9.9.9.9\r\n")], ("h2h-rw", "hs2h-rw"), FRONT),
]


@pytest.fixture
def services(tmp_path: Path):
    crt, key = make_cert(str(tmp_path), "svc.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    plain, tls = ProbeService(ANSWERS, close_after=CLOSE_AFTER), ProbeService(ANSWERS, close_after=CLOSE_AFTER, tls=ctx)
    yield plain, tls
    plain.stop()
    tls.stop()


def _start(frp, tmp_path: Path, plain: ProbeService, tls: ProbeService) -> dict[str, dict[str, int]]:
    """Go frps; Go's frpc and ours, each with the plugins on tcp proxies of their own."""
    fcrt, fkey = make_cert(str(tmp_path), FRONT)
    bind = free_port()
    frp.go_frps(frps_config(bind, token=TOKEN)).wait_for_log(r"frps started successfully", 10)
    ports: dict[str, dict[str, int]] = {}
    for impl in ("go", "ours"):
        ports[impl] = {k: free_port() for k in KEYS}
        blocks = []
        for k, port in ports[impl].items():
            plugin = PLUGIN[k.split("-")[0]]
            up = tls.port if plugin.endswith("https") else plain.port
            text = (f'\n[[proxies]]\nname = "{impl}-{k}"\ntype = "tcp"\nremotePort = {port}\n'
                    f'[proxies.plugin]\ntype = "{plugin}"\nlocalAddr = "{LOCALHOST}:{up}"\n')
            if plugin.startswith("https"):
                text += f'crtPath = "{fcrt}"\nkeyPath = "{fkey}"\n'
            if k.endswith("-rw"):
                text += ('hostHeaderRewrite = "rewritten.example"\n'
                         'requestHeaders.set.x-set = "v"\nrequestHeaders.set.User-Agent = "ua-set"\n')
            blocks.append(text)
        proc = (frp.go_frpc if impl == "go" else frp.ours_frpc)(frpc_config(bind, *blocks, token=TOKEN))
        proc.wait_for_proxies(*(f"{impl}-{k}" for k in KEYS), timeout=20)
    return ports


def test_http1_side_by_side(frp, services, tmp_path: Path) -> None:
    plain, tls = services
    ports = _start(frp, tmp_path, plain, tls)
    jobs = []
    n = 0
    for name, parts, only, sni in CASES:
        for key in only or ("h2h", "h2hs", "hs2h", "hs2hs"):
            for impl in ("go", "ours"):
                n += 1
                jobs.append((name, key, impl, str(n), parts, sni))

    def run(job: tuple[str, str, str, str, list[bytes], str | None]) -> bytes:
        _, key, impl, tag, parts, sni = job
        raw = [p.replace(b"{TAG}", tag.encode()) for p in parts]
        return _exchange(ports[impl][key], raw, key.startswith("hs"), sni)

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(run, jobs))
    got: dict[tuple[str, str], dict[str, tuple[bytes, list[list[bytes]]]]] = {}
    for (name, key, impl, tag, _, _), answer in zip(jobs, answers, strict=True):
        service = tls if PLUGIN[key.split("-")[0]].endswith("https") else plain
        if name == "expect-100":  # Go may send a second 100 (its own and the upstream's: a race)
            answer = re.sub(rb"(HTTP/1\.1 100 Continue\r\n\r\n)+", rb"\1", answer)
        got.setdefault((name, key), {})[impl] = (answer, service.received(tag, impl == "go"))
    differ = {case: sides for case, sides in got.items() if sides["go"] != sides["ours"]}
    assert not differ, "\n".join(f"{case}:\n  go:   {s['go']}\n  ours: {s['ours']}" for case, s in differ.items())
    # the behaviours themselves, so that a change on both sides is seen too
    for case, head in ((("103-early-hints", "h2h"), b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload"),
                       (("304-etag", "hs2h"), b'Etag: "x"'), (("odd-reason", "h2hs"), b"299 status code 299"),
                       (("options-star", "hs2hs"), b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0"),
                       (("cut-chunked", "h2h"), b"\r\n\r\n5\r\nhello\r\n<CLOSED>"),
                       (("close-delimited", "h2hs"), b"close-delimited body\r\n0\r\n\r\n<CLOSED>")):
        assert head in got[case]["ours"][0], (case, got[case]["ours"])
    assert got[("cut-length", "h2h")]["ours"][0] == b"<CLOSED>"
    assert b"te: trailers" in got[("hop-request", "h2h")]["ours"][1][0]
    assert b"expect: 100-continue" in got[("expect-100", "h2h")]["ours"][1][0]
    assert got[("target-reescaped", "h2h")]["ours"][1][0][0] == b"GET /aAb/%7B%7D%7Cc HTTP/1.1"


H2_PATHS = ["/cl", "/nocl-html", "/chunked", "/hop", "/304", "/204", "/103", "/odd-reason",
            "/multi", "/a%41b/%7Bx?a=1;b=2", "/a%zz", "/midbody", "/midchunk", "/close", "/http10", "/teapot"]


def _curl_h2(port: int, path: str, *args: str) -> tuple[int, bytes, list[bytes], bytes]:
    r = subprocess.run(["curl", "-sk", "--http2", "--path-as-is", "-m", "10", "-D", "-",
                        "--resolve", f"{FRONT}:{port}:{LOCALHOST}", *args, f"https://{FRONT}:{port}{path}"],
                       capture_output=True, timeout=20, check=False)
    out = re.sub(rb"date: [^\r]*", b"date: <d>", r.stdout)
    heads = []
    while out.startswith(b"HTTP/2 ") and b"\r\n\r\n" in out:
        head, _, out = out.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        heads += [lines[0], *sorted(lines[1:])]
    return r.returncode, b"", heads, out


def test_http2_side_by_side(frp, services, tmp_path: Path) -> None:
    if shutil.which("curl") is None or b"HTTP2" not in subprocess.run(["curl", "-V"], capture_output=True,
                                                                        check=False).stdout:
        pytest.skip("curl with HTTP/2 needed")
    plain, tls = services
    ports = _start(frp, tmp_path, plain, tls)
    jobs = [(key, path, args, impl) for key in ("hs2h", "hs2hs") for path in H2_PATHS
            for args in ((), ("-H", "TE: trailers", "-H", "Connection: x-a", "-H", "x-a: 1"))
            for impl in ("go", "ours")]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda j: _curl_h2(ports[j[3]][j[0]], j[1], *j[2]), jobs))
    got: dict[tuple[str, str, tuple[str, ...]], dict[str, tuple[int, bytes, list[bytes], bytes]]] = {}
    for (key, path, args, impl), answer in zip(jobs, answers, strict=True):
        got.setdefault((key, path, args), {})[impl] = answer
    differ = {case: sides for case, sides in got.items() if sides["go"] != sides["ours"]}
    assert not differ, "\n".join(f"{case}:\n  go:   {s['go']}\n  ours: {s['ours']}" for case, s in differ.items())
    code, _, heads, _ = got[("hs2h", "/103", ())]["ours"]
    assert code == 0 and heads[0] == b"HTTP/2 103 " and b"date: <d>" in heads
    assert got[("hs2h", "/a%zz", ())]["ours"][0] == 92  # curl: the stream was reset
