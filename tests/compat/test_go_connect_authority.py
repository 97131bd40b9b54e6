"""CONNECT targets Go's net/http cannot read, side by side with Go frps 0.65.0, on the vhost HTTP
port and on the tcpmux port (no proxy registered: a target that is read gets the 404 page).

Go parses the authority of a CONNECT as ``url.ParseRequestURI("http://" + target)``: a port that
is not digits, a ``[`` without ``]``, a character a host must escape (``{}|^`#\\``), or a ``%``
escape of an ASCII byte other than ``%25`` is a plain ``400 Bad Request`` on the vhost port (its
HTTP server) and a closed connection on the tcpmux port (``http.ReadRequest`` fails). What reads
as a URL but not as a Host header (``u@host:80``, ``a/b:80``) is ``400 Bad Request: malformed Host
header`` on the vhost port only: tcpmux makes no Host checks and routes by the URL's host.
"""

from __future__ import annotations

import socket

import pytest
from support.procs import LOCALHOST, free_port, frps_config, wait_port

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TARGETS = [
    b"a{b}:80", b"host:x", b"host:8a", b"host", b"[::1]:80", b"[::1:80", b"[::1]x:80", b"a|b:80", b"a^b:80",
    b"a`b:1", b"a\\b:80", b"a#b:80", b"u@host:80", b"u{x@host:80", b"a%41b:80", b"a%2:80", b"a%25b:80",
    b"a%c3%a4:80", b"a/b:80", b'a"b:80', b"a<b>:80", b"h?x{:80", b":80", b"host:", b"host:65536", b"a_b-c.d~:1",
]


def first_line(port: int, target: bytes) -> bytes:
    """The status line frps answers a CONNECT to ``target`` with (b"" when it just closes)."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as s:
        s.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\r\n")[0]


@pytest.mark.parametrize("key", ["vhostHTTPPort", "tcpmuxHTTPConnectPort"])
def test_connect_authority_as_go_reads_it(frp, key: str) -> None:
    answers = {}
    for impl in ("go", "ours"):
        bind, port = free_port(), free_port()
        start = frp.go_frps if impl == "go" else frp.ours_frps
        start(frps_config(bind, extra=f"{key} = {port}\n"))
        wait_port(port, 10)
        answers[impl] = [first_line(port, t) for t in TARGETS]
    assert answers["go"][0] in (b"HTTP/1.1 400 Bad Request", b""), answers["go"]  # the premise: Go refuses it
    assert dict(zip(TARGETS, answers["ours"], strict=True)) == dict(zip(TARGETS, answers["go"], strict=True))
