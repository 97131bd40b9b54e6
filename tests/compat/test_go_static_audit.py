"""The ``static_file`` plugin side by side with Go frpc 0.65.0: the same raw requests to Go's
plugin and to ours (both behind Go frps, same ``localPath``) get the same answers.

Compared per answer: the status line, the header fields (sorted; Date masked; a multipart
boundary masked), the body (a large one by sha256). Under ``Content-Encoding: gzip`` the body is
compared unpacked and the Content-Length only as present or not (Go's deflate and zlib's differ
in bytes, not in content).

Covered: Content-Type by extension (Go's built-in table, then the system's mime database) and by
sniffing; directory listings (sorting, escaping, symlinked directories listed without ``/``,
large listings chunked as Go's 2 KiB write buffer decides); redirects (``/dir``,
``/index.html``, unclean paths, absolute form, a bare ``?``); an ``index.html`` that is a
directory; ``..``, ``%2e%2e``, ``//``, ``%2F``, non-UTF-8 paths; ``stripPrefix`` with an escaped
prefix; Range (single, multiple, suffix, ``+``, overflow, unsatisfiable, an empty file);
If-Match/If-None-Match/If-(Un)Modified-Since/If-Range with Go's three date forms only; symlinks
within the root, dangling, looping; basic auth (strict base64, ``Www-Authenticate``); gzip
framing; HTTP/1.0; keep-alive; ``OPTIONS *``.

Not compared (deliberate, see static.py): a symlink out of ``localPath`` (Go follows it, ours
answers 404, as tests/e2e/test_plugin_static_file.py requires). Under gzip (ours checked alone
in the last test) Go's error pages come gzipped without Content-Encoding and its Range answers
keep the plain Content-Length with a gzip body (the client hangs or fails). Request lines
aiohttp's parser refuses (``GET *``, unknown or lower-case methods: Go answers 301/405, ours 400)
are not sent.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest
from support.httpd import RawClient
from support.plugin_services import plugin_proxy
from support.procs import free_port, frpc_config, frps_config

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

TOKEN = "static-audit-token"
MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT
AUTH = "Authorization: Basic " + base64.b64encode(b"u:p").decode()
GZ = "Accept-Encoding: gzip"

Answer = tuple[str, tuple[str, ...], Any]


def make_site(root: Path, outside: Path) -> None:
    root.mkdir()
    (root / "hello.txt").write_text("hello, static world\n")
    (root / "page.html").write_text("<html><body>hi</body></html>\n")
    (root / "noext").write_text("plain text without an extension\n")
    (root / "page.html.bin").write_bytes(b"<html>sniffed")
    for ext in ("xml", "gz", "yaml", "toml", "sh", "c", "C", "TXT", "js", "svg", "json", "wasm", "unknownzz"):
        (root / f"f.{ext}").write_bytes(b"\x00\x01 some bytes\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.bin").write_bytes(os.urandom(1 << 20))
    (root / "big.txt").write_bytes(b"compressible line of text\n" * 4000)
    odd = root / "odd dir"
    odd.mkdir()
    for name in ("a&b <c>.txt", "q\"uote's.txt", "ünï cødé.txt", "colon:name", "pct%20name", "hash#name",
                 "qm?name", "Zed", "tab\tname", ".hidden", "plus+semi;eq=at@.txt"):
        (odd / name).write_text(name + "\n")
    (odd / "B dir").mkdir()
    (odd / "a").mkdir()
    os.symlink("odd dir", root / "dirlink")
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_text("<html>index page</html>\n")
    (root / "idxdir" / "index.html").mkdir(parents=True)
    (root / "idxdir" / "index.html" / "inner.txt").write_text("inner\n")
    (root / "bigdir").mkdir()
    for i in range(120):
        (root / "bigdir" / f"file-number-{i}.txt").write_text("x\n")
    (root / "pre").mkdir()
    (root / "pre" / "x.txt").write_text("in pre\n")
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the root\n")
    os.symlink(outside / "secret.txt", root / "outlink.txt")  # listed, not followed by ours (see below)
    os.symlink("hello.txt", root / "inlink.txt")
    os.symlink("nowhere", root / "dangling")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    for p in (root / "hello.txt", root / "f.xml", root / "empty.txt"):
        os.utime(p, (MTIME, MTIME))


def request(target: str, *headers: str, method: str = "GET", version: str = "1.1", host: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", *(["Host: x"] if host else []), *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def normalize(raw_head: bytes, body: bytes) -> Answer:
    lines = raw_head.decode("latin-1").split("\r\n")
    fields, boundary = [], None
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        value = value.strip()
        if name.lower() == "date":
            value = "<date>"
        if m := re.search(r"boundary=(\S+)", value):
            boundary = m[1]
            value = value.replace(boundary, "BOUNDARY")
        fields.append((name, value))
    if boundary:
        body = body.replace(boundary.encode(), b"BOUNDARY")
    content: Any = body
    if ("Content-Encoding", "gzip") in fields:
        content = ("gunzip", gzip.decompress(body))
        fields = [(k, "<gz>" if k == "Content-Length" else v) for k, v in fields]
    if isinstance(content, bytes) and len(content) > 4096:
        content = ("sha256", hashlib.sha256(content).hexdigest(), len(content))
    return lines[0], tuple(sorted(f"{k}: {v}" for k, v in fields)), content


def exchange(port: int, raw: bytes, answers: int = 1, method: str = "GET") -> list[Any]:
    """The answers to ``raw`` on one connection, then whether the server closed it (checked only
    for HTTP/1.0 and ``Connection: close``, where an answer ends by closing)."""
    with RawClient(port, timeout=10) as c:
        c.send(raw)
        out: list[Any] = []
        for _ in range(answers):
            try:
                r = c.read_response(method=method)
            except (OSError, ValueError) as exc:  # TimeoutError and ConnectionError included
                out.append(("no answer", type(exc).__name__, c.buf[:200]))
                return out
            out.append(normalize(r.raw_head, r.body))
        if b" HTTP/1.0\r\n" in raw or b"Connection: close" in raw:
            out.append(("closed", c.closed_by_peer(5)))
    return out


PLAIN: list[tuple[bytes, str]] = [(request(t), "GET") for t in (
    "/", "/hello.txt", "/page.html", "/noext", "/page.html.bin", "/empty.txt", "/big.bin",
    *(f"/f.{e}" for e in ("xml", "gz", "yaml", "toml", "sh", "c", "C", "TXT", "js", "svg", "json", "wasm", "unknownzz")),
    "/odd%20dir/", "/odd%20dir", "/odd%20dir%2F", "/dirlink/", "/dirlink", "/withindex/", "/withindex",
    "/withindex/index.html", "/index.html", "/withindex/index.html?x=1", "/idxdir/", "/bigdir/",
    "/hello.txt/", "/nope", "/hello.txt/x", "/../hello.txt", "/%2e%2e/hello.txt", "/..%2fhello.txt",
    "//hello.txt", "/./hello.txt", "/../hello.txt?", "/odd%20dir/..", "/%FF", "/%FF/../hello.txt",
    "/hello%00.txt", "/inlink.txt", "/dangling", "/loop1", "/" + "a" * 300,
    "/odd%20dir/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9.txt", "/odd%20dir/hash%23name", "/odd%20dir/colon:name",
    "http://x/../hello.txt", "http://x/hello.txt/", "/hello.txt#frag",
)]
PLAIN += [(request("/hello.txt", h), "GET") for h in (
    "Range: bytes=0-4", "Range: bytes=-5", "Range: bytes=5-", "Range: bytes=50-60", "Range: bytes=x-y",
    "Range: bytes=0-1,4-5", "Range: bytes=0-1, 4-5, 50-60", "Range: bytes=+1-2", "Range: bytes=-+2",
    "Range: bytes=0-99999999999999999999", "Range: bytes=--1", "Range: items=0-1", "Range: bytes=0-18,0-18",
    "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT", "If-Modified-Since: Tue, 14 Nov 2023 22:13:19 GMT",
    "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 +0000", "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 UTC",
    "If-Modified-Since: Tuesday, 14-Nov-23 22:13:20 GMT", "If-Modified-Since: Tue Nov 14 22:13:20 2023",
    "If-Modified-Since: tue,  14 nov 2023 22:13:20.999 GMT", "If-Modified-Since: Tue, 31 Feb 2099 22:13:19 GMT",
    "If-None-Match: *", 'If-None-Match: "abc"', "If-Match: *", 'If-Match: "abc"', 'If-Match: W/"a", *',
    "If-Unmodified-Since: Tue, 14 Nov 2023 22:13:19 GMT", "If-Unmodified-Since: Tue, 14 Nov 0000 22:13:19 GMT",
    GZ, "Accept-Encoding: GZIP",
)]
PLAIN += [(request("/hello.txt", *hs), "GET") for hs in (
    ("If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT", 'If-None-Match: "x"'),
    ('If-Match: "abc"', "If-Unmodified-Since: Tue, 14 Nov 2023 22:13:30 GMT"),
    ("Range: bytes=0-4", "If-Range: Tue, 14 Nov 2023 22:13:20 GMT"),
    ("Range: bytes=0-4", "If-Range: Tue, 14 Nov 2023 22:13:21 GMT"),
    ("Range: bytes=0-4", "If-Range: Tue, 14 Nov 2023 22:13:20 +0000"),
    ("Range: bytes=0-4", 'If-Range: "etag"'),
    (GZ, 'If-Match: "x"'), (GZ, "If-None-Match: *"),
)]
PLAIN += [(request(t, *hs), "GET") for t, hs in (
    ("/empty.txt", ("Range: bytes=0-4",)), ("/empty.txt", ("Range: bytes=-5",)), ("/empty.txt", (GZ,)),
    ("/odd%20dir/", ("Range: bytes=0-4",)), ("/odd%20dir/", ("If-None-Match: *",)),
    ("/odd%20dir/", ("If-Modified-Since: Tue, 14 Nov 2099 22:13:20 GMT",)), ("/odd%20dir/", (GZ,)),
    ("/odd%20dir", (GZ,)), ("/withindex/index.html", (GZ,)), ("/withindex/", (GZ,)), ("/bigdir/", (GZ,)),
    ("/big.txt", (GZ,)), ("/big.bin", (GZ,)),
)]
PLAIN += [(request("/hello.txt", method=m), m) for m in ("POST", "PUT", "OPTIONS", "DELETE", "HEAD")]
PLAIN += [(request(t, GZ, method="HEAD"), "HEAD") for t in ("/odd%20dir/", "/nope", "/../x")]
PLAIN += [(request("*", method="OPTIONS"), "GET")]
PLAIN += [(b"GET /hello.txt HTTP/1.0\r\n\r\n", "GET"), (b"GET /bigdir/ HTTP/1.0\r\n\r\n", "GET"),
          (b"GET /odd%20dir HTTP/1.0\r\n\r\n", "GET"), (b"GET /big.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n", "GET"),
          (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET")]

PREFIXED: list[tuple[bytes, str]] = [(request(t, *hs), "GET") for t, hs in (
    ("/pre/hello.txt", ()), ("/pre/hello.txt", (AUTH,)), ("/pre/hello.txt", ("Authorization: Basic dTp4",)),
    ("/pre/hello.txt", ("Authorization: Basic  dTpw",)), ("/pre/hello.txt", ("Authorization: Basic dTpw=",)),
    ("/pre/hello.txt", ("Authorization: basic dTpw",)), ("/pre/hello.txt", ("Authorization: Bearer x",)),
    ("/hello.txt", (AUTH,)), ("/pre", (AUTH,)), ("/pre/", (AUTH,)), ("/pre/index.html", (AUTH,)),
    ("/pre%2Fhello.txt", (AUTH,)), ("/pr%65/hello.txt", (AUTH,)), ("/pre/hell%6F.txt", (AUTH,)),
    ("/pre/pre/x.txt", (AUTH,)), ("/pre/../pre/x.txt", (AUTH,)), ("/pre%2Fhello.txt", (AUTH, GZ)),
)]
PREFIXED += [(request("/pre/hello.txt", method="POST"), "GET")]


@pytest.fixture
def pair(frp, tmp_path: Path) -> dict[str, tuple[int, int]]:
    """Go frpc and ours behind one Go frps, each with a plain and a prefixed (auth) static_file
    proxy on the same directory: {"plain"/"prefixed": (Go's port, our port)}."""
    root = tmp_path / "www"
    make_site(root, tmp_path / "outside")
    bind = free_port()
    ports = {k: (free_port(), free_port()) for k in ("plain", "prefixed")}
    frps = frp.go_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 15)

    def proxies(side: int, tag: str) -> list[str]:
        plain = {"type": "static_file", "localPath": str(root)}
        prefixed = {**plain, "stripPrefix": "pre", "httpUser": "u", "httpPassword": "p"}
        return [plugin_proxy(f"{tag}_plain", "tcp", plain, remotePort=ports["plain"][side]),
                plugin_proxy(f"{tag}_prefixed", "tcp", prefixed, remotePort=ports["prefixed"][side])]

    go = frp.go_frpc(frpc_config(bind, *proxies(0, "go"), token=TOKEN))
    ours = frp.ours_frpc(frpc_config(bind, *proxies(1, "ours"), token=TOKEN))
    go.wait_for_proxies("go_plain", "go_prefixed", timeout=20)
    ours.wait_for_proxies("ours_plain", "ours_prefixed", timeout=20)
    return ports


def _diffs(ports: tuple[int, int], cases: list[tuple[bytes, str]], answers: int = 1) -> list[str]:
    out = []
    for raw, method in cases:
        want, got = (exchange(p, raw, answers, method) for p in ports)
        if want != got:
            out.append(f"{raw!r}\n  go:   {want}\n  ours: {got}")
    return out


def test_static_file_answers_as_go(pair: dict[str, tuple[int, int]]) -> None:
    diffs = _diffs(pair["plain"], PLAIN)
    assert not diffs, f"{len(diffs)} answers differ:\n" + "\n".join(diffs)


def test_static_file_prefix_and_auth_as_go(pair: dict[str, tuple[int, int]]) -> None:
    diffs = _diffs(pair["prefixed"], PREFIXED)
    assert not diffs, f"{len(diffs)} answers differ:\n" + "\n".join(diffs)


def test_static_file_keep_alive_as_go(pair: dict[str, tuple[int, int]]) -> None:
    """Several requests on one connection, answers of every framing in between."""
    raw = b"".join([request("/hello.txt"), request("/odd%20dir"), request("/nope"),
                    b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                    request("/bigdir/"), request("/odd%20dir/", GZ), request("/hello.txt", "Range: bytes=0-1,3-4"),
                    request("/big.bin"), request("/noext")])
    assert not _diffs(pair["plain"], [(raw, "GET")], answers=9)


def test_static_file_gzip_where_go_is_broken(pair: dict[str, tuple[int, int]]) -> None:
    """Ours alone, where Go's answer is unusable: a gzip Range answer is a valid gzip of the
    range(s); a file server error page under gzip is sent plain (Go: gzip bytes, no encoding)."""
    port = pair["plain"][1]
    [(status, fields, body)] = exchange(port, request("/hello.txt", GZ, "Range: bytes=0-4"))
    assert status == "HTTP/1.1 206 Partial Content" and body == ("gunzip", b"hello")
    assert "Content-Range: bytes 0-4/20" in fields
    [(status, fields, body)] = exchange(port, request("/hello.txt", GZ, "Range: bytes=0-1,3-4"))
    assert status == "HTTP/1.1 206 Partial Content" and body[0] == "gunzip" and b"\r\n\r\nhe\r\n" in body[1]
    for target, want in (("/nope", "404 Not Found"), ("/hello.txt", "416 Requested Range Not Satisfiable")):
        extra = ("Range: bytes=50-60",) if target == "/hello.txt" else ()
        [(status, fields, body)] = exchange(port, request(target, GZ, *extra))
        assert status == f"HTTP/1.1 {want}" and not any(f.startswith("Content-Encoding") for f in fields)
        assert body.endswith(b"\n") and body[:3] in (b"404", b"inv")
