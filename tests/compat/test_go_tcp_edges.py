"""tcp proxy and stcp proxy+visitor at the edges, side by side with the real Go frp 0.65.0.

The same traffic goes through each of the four pairings (Go frps + Go frpc, ours + ours, Go frps
+ our frpc, our frps + Go frpc; the stcp visitor runs in a frpc of the provider's kind), and each
must give the same observable outcome:

* the local service writes 1 MiB and closes (HTTP/1.0 style), or writes 1 MiB and half-closes:
  the user gets every byte, then EOF (tcp and stcp);
* the user uploads 1 MiB and half-closes: the local service gets every byte, then EOF (Go closes
  both directions at the user's EOF, so a Go end gives the user a bare EOF; ours + ours passes
  the half-close on and the service's answer arrives);
* nothing listens on localPort: the user's connection ends at once with a FIN (no RST, no wait),
  and frpc logs Go's line ``[name] connect to local service [ip:port] error: dial tcp ...:
  connect: connection refused`` (tcp and stcp);
* the local service resets (SO_LINGER 0) after 256 KiB: the user gets those bytes, then EOF;
* the local service speaks first: the banner reaches a user who sent nothing;
* 200 concurrent short connections all succeed (tcp and stcp);
* an stcp visitor naming a proxy that does not exist: the user's connection is closed, frps logs
  ``register visitor conn error: custom listener for [NAME] doesn't exist`` and the visitor
  ``[vname] start new visitor connection error: custom listener for [NAME] doesn't exist``.

All sockets are on 127.0.0.1 with bounded timeouts; the services are threads in this process.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.procs import (
    LOCALHOST,
    PAIRINGS,
    FrpProcess,
    ThreadedTCPService,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    wait_port,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-tcp-edges"
SK = "edges-sk"
BIG = os.urandom(1 << 20)
BANNER = b"220 edges ready\r\n"

REFUSED = r"\[{name}\] connect to local service \[127\.0\.0\.1:{port}\] error: dial tcp 127\.0\.0\.1:{port}: connect: connection refused"


# -- local services ------------------------------------------------------------------------------


def _read_line(c: socket.socket) -> None:
    buf = b""
    while b"\n" not in buf:
        d = c.recv(4096)
        if not d:
            return
        buf += d


def _closer(c: socket.socket) -> None:
    """HTTP/1.0 style: read the request line, write 1 MiB, close."""
    _read_line(c)
    c.sendall(BIG)


def _half_closer(c: socket.socket) -> None:
    """Write 1 MiB, half-close, wait for the peer to close."""
    _read_line(c)
    c.sendall(BIG)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass


def _resetter(c: socket.socket) -> None:
    """Write 256 KiB, then close with SO_LINGER 0 (RST) once it has left."""
    _read_line(c)
    c.sendall(BIG[: 256 << 10])
    time.sleep(0.3)  # let the bytes reach the peer before the RST overtakes them
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _banner(c: socket.socket) -> None:
    c.sendall(BANNER)
    while d := c.recv(65536):
        c.sendall(d)


def _echo(c: socket.socket) -> None:
    while d := c.recv(65536):
        c.sendall(d)


class UploadSink(ThreadedTCPService):
    """Reads to EOF, records what came, answers ``got:<n>``."""

    def __init__(self) -> None:
        self.uploads: dict[bytes, tuple[int, bool]] = {}
        super().__init__(self._sink)

    def _sink(self, c: socket.socket) -> None:
        buf = bytearray()
        while d := c.recv(1 << 16):
            buf += d
        self.uploads[bytes(buf[:8])] = (len(buf), bytes(buf[8:]) == BIG)
        c.sendall(b"got:%d" % len(buf))

    def wait_upload(self, tag: bytes, timeout: float = 10.0) -> tuple[int, bool] | None:
        deadline = time.monotonic() + timeout
        while tag not in self.uploads and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.uploads.get(tag)


@pytest.fixture
def services() -> Iterator[dict[str, ThreadedTCPService]]:
    handlers = {"closer": _closer, "halfcloser": _half_closer, "reset": _resetter, "banner": _banner, "echo": _echo}
    svcs = {name: ThreadedTCPService(h) for name, h in handlers.items()} | {"sink": UploadSink()}
    yield svcs
    for s in svcs.values():
        s.close()


# -- user side -----------------------------------------------------------------------------------


def read_to_end(s: socket.socket, timeout: float = 10.0) -> tuple[bytes, str, float]:
    """(bytes, how it ended: "EOF" / "RST" / "TIMEOUT", seconds)."""
    s.settimeout(timeout)
    buf = bytearray()
    t0 = time.monotonic()
    try:
        while d := s.recv(1 << 16):
            buf += d
        return bytes(buf), "EOF", time.monotonic() - t0
    except ConnectionResetError:
        return bytes(buf), "RST", time.monotonic() - t0
    except TimeoutError:
        return bytes(buf), "TIMEOUT", time.monotonic() - t0


def request(port: int, data: bytes = b"", *, shut: bool = False, timeout: float = 10.0) -> tuple[bytes, str, float]:
    with socket.create_connection((LOCALHOST, port), 5) as s:
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_to_end(s, timeout)


def short_echo(port: int, i: int) -> bool:
    msg = b"conn-%05d" % i
    with socket.create_connection((LOCALHOST, port), 10) as s:
        s.settimeout(10)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg) and (d := s.recv(100)):
            got += d
    return got == msg


def many(port: int, n: int = 200) -> list[bool | str]:
    def one(i: int) -> bool | str:
        try:
            return short_echo(port, i)
        except OSError as exc:
            return repr(exc)

    with ThreadPoolExecutor(50) as pool:
        return list(pool.map(one, range(n)))


def setup(frp, frps_impl: str, frpc_impl: str, local: dict[str, int]
          ) -> tuple[FrpProcess, FrpProcess, FrpProcess, dict[str, int], dict[str, int]]:
    """frps, a provider frpc (tcp proxy ``k`` and stcp proxy ``s<k>`` per local port) and a visitor
    frpc (stcp visitor ``v<k>`` per stcp proxy, ``vnosuch`` for a missing one); returns the
    processes, the tcp remote ports and the visitor ports."""
    bind = free_port()
    frps = frp.start(frps_impl, "frps", frps_config(bind, token=TOKEN))
    wait_port(bind, 10)
    remote = {k: free_port() for k in local}
    stcp = ("closer", "refused", "echo")
    provider = frp.start(frpc_impl, "frpc", frpc_config(
        bind, *(tcp_proxy(k, p, remote[k]) for k, p in local.items()), token=TOKEN,
        extra="".join(block("proxies", name="s" + k, type="stcp", localIP=LOCALHOST, localPort=local[k],
                            secretKey=SK) for k in stcp),
    ))
    provider.wait_for_proxies(*local, *("s" + k for k in stcp), timeout=15)
    vports = {k: free_port() for k in (*stcp, "nosuch")}
    visitor = frp.start(frpc_impl, "frpc", frpc_config(
        bind, token=TOKEN,
        extra="".join(block("visitors", name="v" + k, type="stcp", serverName="s" + k, secretKey=SK,
                            bindAddr=LOCALHOST, bindPort=vports[k]) for k in stcp)
        + block("visitors", name="vnosuch", type="stcp", serverName="nosuch", secretKey=SK,
                bindAddr=LOCALHOST, bindPort=vports["nosuch"]),
    ))
    visitor.wait_login(10)
    for p in vports.values():
        wait_port(p, 10)
    return frps, provider, visitor, remote, vports


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_tcp_stcp_edges(frp, services: dict[str, ThreadedTCPService], frps_impl: str, frpc_impl: str) -> None:
    refused_port = free_port()
    local = {k: s.port for k, s in services.items()} | {"refused": refused_port}
    _, provider, _, remote, vports = setup(frp, frps_impl, frpc_impl, local)

    for kind, port in (("tcp", remote["closer"]), ("stcp", vports["closer"])):
        data, how, _ = request(port, b"GET / HTTP/1.0\r\n\r\n")
        assert (len(data), data == BIG, how) == (len(BIG), True, "EOF"), kind

    data, how, _ = request(remote["halfcloser"], b"GET\n")
    assert (len(data), data == BIG, how) == (len(BIG), True, "EOF")

    # upload + half-close: every byte reaches the service whatever the pairing
    sink = services["sink"]
    assert isinstance(sink, UploadSink)
    tag = b"UPLOAD01"
    data, how, _ = request(remote["sink"], tag + BIG, shut=True)
    assert sink.wait_upload(tag) == (len(tag) + len(BIG), True)
    answer = b"got:%d" % (len(tag) + len(BIG))
    # Go (either end) closes both directions at the user's EOF; ours + ours passes it on
    assert (data, how) == ((answer, "EOF") if (frps_impl, frpc_impl) == ("ours", "ours") else (b"", "EOF"))

    for kind, port, name in (("tcp", remote["refused"], "refused"), ("stcp", vports["refused"], "srefused")):
        mark = provider.mark()
        data, how, took = request(port)
        assert (data, how) == (b"", "EOF"), kind
        assert took < 2.0, kind
        provider.wait_for_log(REFUSED.format(name=name, port=refused_port), 5, since=mark)

    data, how, _ = request(remote["reset"], b"GET\n")
    assert (len(data), data == BIG[: 256 << 10], how) == (256 << 10, True, "EOF")

    with socket.create_connection((LOCALHOST, remote["banner"]), 5) as s:
        s.settimeout(5)
        got = b""
        while len(got) < len(BANNER) and (d := s.recv(100)):
            got += d
        assert got == BANNER

    for kind, port in (("tcp", remote["echo"]), ("stcp", vports["echo"])):
        results = many(port)
        assert [r for r in results if r is not True] == [], kind


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_stcp_visitor_unknown_server_name(frp, services: dict[str, ThreadedTCPService], frps_impl: str, frpc_impl: str) -> None:
    """The user's connection is closed (ours retries for up to 3 s right after a login, since the
    provider may still be registering: README), with Go's words on both ends."""
    local = {"closer": services["closer"].port, "echo": services["echo"].port, "refused": free_port()}
    frps, _, visitor, _, vports = setup(frp, frps_impl, frpc_impl, local)
    fmark, vmark = frps.mark(), visitor.mark()
    data, how, took = request(vports["nosuch"], timeout=10)
    assert (data, how) == (b"", "EOF")
    assert took < (1.0 if frpc_impl == "go" else 4.0)
    frps.wait_for_log(r"register visitor conn error: custom listener for \[nosuch\] doesn't exist", 5, since=fmark)
    visitor.wait_for_log(r"\[vnosuch\] start new visitor connection error: custom listener for \[nosuch\] "
                         r"doesn't exist", 5, since=vmark)
    assert short_echo(vports["echo"], 0)


def test_ours_half_close_short_request(frp) -> None:
    """ours + ours passes a half-close on: a short request half-closed at once gets its answer,
    every time (its data and FIN reach frpc's work connection with StartWorkConn, before the relay)."""
    sink = UploadSink()
    try:
        bind = free_port()
        frp.ours_frps(frps_config(bind, token=TOKEN))
        wait_port(bind, 10)
        rport = free_port()
        provider = frp.ours_frpc(frpc_config(bind, tcp_proxy("sink", sink.port, rport), token=TOKEN))
        provider.wait_for_proxies("sink", timeout=15)
        outcomes = [request(rport, b"req-%04d" % i, shut=True, timeout=5)[:2] for i in range(30)]
        assert outcomes == [(b"got:8", "EOF")] * 30
    finally:
        sink.close()
