"""The ``static_file`` client plugin end to end: our frps + our frpc as processes, real curl.

GET, directory listing, Range (resumed download), If-Modified-Since (304), every path traversal
spelling (``/../``, ``%2e%2e``, ``..%2f``, a symlink out of ``localPath``), ``stripPrefix`` and
basic auth; the plugin behind encryption + compression; a large file streamed intact.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import FrpLauncher
from support.procs import LOCALHOST, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = pytest.mark.timeout(120)

TOKEN = "e2e-static-token"
BIG = 24 * 1024 * 1024 + 123  # several chunks and well over any socket buffer


def curl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    """curl with ``--path-as-is`` (keeps ``/../`` as sent) and the status/headers printed first."""
    return subprocess.run(["curl", "-sS", "--path-as-is", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 5, check=False)


def fetch(url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: (status, lower-case headers, body)."""
    r = curl("-D", "-", url, *args)
    assert r.returncode == 0, r.stderr.decode()
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    while body.startswith(b"HTTP/"):  # -L: the last response's head
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def plugin_proxy(name: str, remote: int, root: Path, proxy_keys: str = "", **keys: object) -> str:
    lines = [f'\n[[proxies]]\nname = "{name}"\ntype = "tcp"\nremotePort = {remote}\n{proxy_keys}']
    lines.append(f'[proxies.plugin]\ntype = "static_file"\nlocalPath = "{root}"\n')
    for k, v in keys.items():
        val = f'"{v}"' if isinstance(v, str) else str(v).lower()
        lines.append(f"{k} = {val}\n")
    return "".join(lines)


class Site:
    def __init__(self, root: Path, outside: Path, plain: int, auth: int, enc: int, stcp: int) -> None:
        self.root = root
        self.outside = outside
        self.plain = plain
        self.auth = auth
        self.enc = enc
        self.stcp = stcp

    def url(self, path: str, port: int | None = None) -> str:
        return f"http://{LOCALHOST}:{port or self.plain}{path}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("static")
    root = base / "www"
    (root / "sub dir").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "hello.txt").write_text("hello, static world\n")
    (root / "sub dir" / "a&b.html").write_text("<p>a&amp;b</p>\n")
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_text("<html>index page</html>\n")
    with open(root / "big.bin", "wb") as f:
        block = os.urandom(1 << 20)
        f.writelines(block[i % 7:] + block[: i % 7] for i in range(BIG // len(block)))
        f.write(block[: BIG % len(block)])
    outside = base / "secret.txt"
    outside.write_text("TOP SECRET\n")
    (root / "escape").symlink_to(outside)
    (root / "escape-dir").symlink_to(base)
    (root / "inside-link.txt").symlink_to(root / "hello.txt")

    bind, plain, auth, enc, stcp = free_port(), free_port(), free_port(), free_port(), free_port()
    launcher = FrpLauncher(base / "frp")
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN))
        frps.wait_for_log(r"frps started successfully", 15)
        launcher.ours_frpc(frpc_config(
            bind,
            plugin_proxy("files", plain, root),
            plugin_proxy("files-auth", auth, root, stripPrefix="static", httpUser="alice", httpPassword="pw"),
            plugin_proxy("files-enc", enc, root, "transport.useEncryption = true\ntransport.useCompression = true\n"),
            # a plugin on an stcp proxy, reached through a visitor of the same frpc
            f'\n[[proxies]]\nname = "files-stcp"\ntype = "stcp"\nsecretKey = "sk"\n'
            f'[proxies.plugin]\ntype = "static_file"\nlocalPath = "{root}"\n'
            f'\n[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "files-stcp"\nsecretKey = "sk"\n'
            f'bindAddr = "{LOCALHOST}"\nbindPort = {stcp}\n',
            token=TOKEN,
        ))
        s = Site(root, outside, plain, auth, enc, stcp)
        for port in (plain, auth, enc, stcp):
            poll(lambda p=port: curl(s.url("/", p)).returncode == 0, 30, f"static_file on {port}")
        yield s
    finally:
        launcher.kill_all()


def test_get_file_and_listing(site: Site) -> None:
    status, h, body = fetch(site.url("/hello.txt"))
    assert (status, body) == (200, b"hello, static world\n")
    assert h["content-type"] == "text/plain; charset=utf-8"
    assert h["accept-ranges"] == "bytes"
    assert h["content-length"] == str(len(body))
    status, h, body = fetch(site.url("/"))
    assert status == 200 and h["content-type"] == "text/html; charset=utf-8"
    text = body.decode()
    assert text.startswith('<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n')
    assert '<a href="hello.txt">hello.txt</a>\n' in text
    assert '<a href="sub%20dir/">sub dir/</a>\n' in text
    assert text.endswith("</pre>\n")
    # a directory without its slash is redirected (Go's localRedirect), an index.html is served
    status, h, _ = fetch(site.url("/sub%20dir"))
    assert status == 301 and h["location"] == "sub dir/"  # as Go: the decoded name
    status, _, body = fetch(site.url("/sub%20dir/"))
    assert status == 200 and '<a href="a&b.html">a&amp;b.html</a>' in body.decode()
    status, _, body = fetch(site.url("/withindex/"))
    assert (status, body) == (200, b"<html>index page</html>\n")
    status, h, _ = fetch(site.url("/withindex/index.html"))
    assert status == 301 and h["location"] == "./"
    status, _, body = fetch(site.url("/nope.txt"))
    assert (status, body) == (404, b"404 page not found\n")
    status, _, _ = fetch(site.url("/hello.txt"), "-X", "POST")
    assert status == 405
    # a symlink inside the root is followed
    status, _, body = fetch(site.url("/inside-link.txt"))
    assert (status, body) == (200, b"hello, static world\n")


def test_range_resumes_download(site: Site, tmp_path: Path) -> None:
    status, h, body = fetch(site.url("/hello.txt"), "-H", "Range: bytes=7-12")
    assert (status, body) == (206, b"static")
    assert h["content-range"] == "bytes 7-12/20"
    status, h, body = fetch(site.url("/hello.txt"), "-H", "Range: bytes=-6")
    assert (status, body, h["content-range"]) == (206, b"world\n", "bytes 14-19/20")
    status, h, _ = fetch(site.url("/hello.txt"), "-H", "Range: bytes=100-")
    assert status == 416 and h["content-range"] == "bytes */20"
    status, h, body = fetch(site.url("/hello.txt"), "-H", "Range: bytes=0-1,7-8")
    assert status == 206 and h["content-type"].startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-1/20\r\n" in body and b"\r\n\r\nst\r\n" in body
    # curl -C - resumes a partial download
    out = tmp_path / "big.bin"
    want = (site.root / "big.bin").read_bytes()
    out.write_bytes(want[: 5_000_000])
    r = curl("-C", "-", "-o", str(out), site.url("/big.bin"), timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(want).digest()


def test_if_modified_since(site: Site) -> None:
    status, h, _ = fetch(site.url("/hello.txt"))
    lm = h["last-modified"]
    mtime = (site.root / "hello.txt").stat().st_mtime
    assert lm == email.utils.formatdate(mtime, usegmt=True)
    status, h, body = fetch(site.url("/hello.txt"), "-H", f"If-Modified-Since: {lm}")
    assert (status, body) == (304, b"")
    older = email.utils.formatdate(mtime - 3600, usegmt=True)
    status, _, body = fetch(site.url("/hello.txt"), "-H", f"If-Modified-Since: {older}")
    assert (status, body) == (200, b"hello, static world\n")
    r = curl("-o", os.devnull, "-w", "%{http_code}", "-z", str(site.root / "hello.txt"), site.url("/hello.txt"))
    assert r.stdout == b"304"


@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/sub%20dir/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/sub%20dir/..%2f..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%5csecret.txt",
    "/escape",
    "/escape-dir/secret.txt",
    "/escape-dir/",
])
def test_no_path_traversal(site: Site, path: str) -> None:
    status, h, body = fetch(site.url(path))
    assert b"TOP SECRET" not in body
    if status == 301:  # Go's router redirects to the cleaned path, which stays inside the root
        assert h["location"].startswith("/") and ".." not in h["location"]
        status, h, body = fetch(site.url(path), "-L")
        assert b"TOP SECRET" not in body
    assert status in (404, 200) and (status == 404 or "hello.txt" in body.decode()), (status, h, body)


def test_strip_prefix_and_basic_auth(site: Site) -> None:
    url = site.url("/static/hello.txt", site.auth)
    status, h, body = fetch(url)
    assert (status, body) == (401, b"Unauthorized\n")
    assert h["www-authenticate"] == 'Basic realm="Restricted"'
    assert fetch(url, "-u", "alice:wrong")[0] == 401
    assert fetch(url, "-u", "bob:pw")[0] == 401
    status, _, body = fetch(url, "-u", "alice:pw")
    assert (status, body) == (200, b"hello, static world\n")
    # outside the prefix: Go's router answers 404 before any auth
    status, _, body = fetch(site.url("/hello.txt", site.auth))
    assert (status, body) == (404, b"404 page not found\n")
    status, _, body = fetch(site.url("/static/", site.auth), "-u", "alice:pw")
    assert status == 200 and '<a href="hello.txt">' in body.decode()


def test_big_file_streams_through_encryption_compression_and_stcp(site: Site, tmp_path: Path) -> None:
    want = hashlib.sha256((site.root / "big.bin").read_bytes()).hexdigest()
    for port in (site.plain, site.enc, site.stcp):
        out = tmp_path / f"big-{port}"
        r = curl("-o", str(out), site.url("/big.bin", port), timeout=90)
        assert r.returncode == 0, r.stderr.decode()
        assert hashlib.sha256(out.read_bytes()).hexdigest() == want


def test_gzip_when_accepted(site: Site) -> None:
    status, h, body = fetch(site.url("/hello.txt"), "--compressed")
    assert status == 200 and h["content-encoding"] == "gzip" and body == b"hello, static world\n"
