"""Hostile or broken input on frps's bind port must cost frps one connection, nothing more.

Two of our frps run for the whole module, one with tcpMux (the default) and one with
``transport.tcpMux = false``; each has one of our frpc logged in with a tcp proxy to an echo
service.  Every case opens a raw socket to the bind port, sends something that is not a valid
frp conversation and checks that

* frps closes that connection within a deadline (EOF or reset; with tcpMux, bytes that reach the
  frp message layer travel inside a yamux stream, and frps must close that stream: FIN or RST),
* frps logs a line about it (one mentioning the client port of that connection),
* frps is still alive, and the real frpc's proxy still works without frpc having reconnected.

Connections that send nothing usable are opened when the servers start and checked at the end of
the module, so their ~10 s server-side timeout overlaps with the other cases.
"""

from __future__ import annotations

import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from support.hostile import (
    F_ACK,
    F_FIN,
    F_RST,
    F_SYN,
    Y_DATA,
    Y_PING,
    Y_WINDOW,
    frp_header,
    in_stream,
    yamux_frame,
)
from support.hostile import YHDR as _YHDR
from support.procs import (
    LAUNCHERS_KEY,
    LOCALHOST,
    TEST_STRING,
    EchoServer,
    FrpLauncher,
    FrpProcess,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
)

pytestmark = pytest.mark.timeout(60)

TOKEN = "bad-input-token"
MODES = ["mux", "nomux"]
CLOSE_DEADLINE = 5.0  # for input frps can reject as soon as it sees it
STALL_DEADLINE = 15.0  # frps gives up on silent connections after ~10 s

# --------------------------------------------------------------------------------------------------
# servers shared by the module
# --------------------------------------------------------------------------------------------------


@dataclass
class Pair:
    mode: str
    frps: FrpProcess
    frpc: FrpProcess
    bind_port: int
    remote_port: int

    def frame_layer(self, payload: bytes) -> bytes:
        """What to send so that ``payload`` reaches frps's message layer."""
        return in_stream(payload) if self.mode == "mux" else payload


@dataclass
class Stalled:
    """A connection opened at module start that frps must drop on its own."""

    name: str
    mode: str
    sock: socket.socket
    port: int
    opened: float
    stream: int | None = None
    outcome: Future[tuple[str | None, float]] | None = None  # (how it closed, seconds after opening)


@dataclass
class World:
    launcher: FrpLauncher
    echo: EchoServer
    pairs: dict[str, Pair]
    stalled: list[Stalled] = field(default_factory=list)


def _tls_client(sock: socket.socket, *, first_byte: bool) -> ssl.SSLSocket:
    if first_byte:
        sock.sendall(b"\x17")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock)


def _connect(port: int) -> socket.socket:
    return socket.create_connection((LOCALHOST, port), timeout=5)


def _open_stalled(pair: Pair) -> Iterator[Stalled]:
    """Silent or half-started connections; frps must close each within STALL_DEADLINE."""
    now = time.monotonic

    s = _connect(pair.bind_port)  # connect, send nothing at all
    yield Stalled("nothing", pair.mode, s, s.getsockname()[1], now())

    s = _connect(pair.bind_port)  # TLS handshake, then silence
    port = s.getsockname()[1]
    yield Stalled("tls-then-nothing", pair.mode, _tls_client(s, first_byte=False), port, now())

    if pair.mode == "mux":
        s = _connect(pair.bind_port)  # a yamux session that never opens a stream (only pings)
        s.sendall(yamux_frame(Y_PING, F_SYN, 0, 7))
        yield Stalled("yamux-no-stream", pair.mode, s, s.getsockname()[1], now())
        s = _connect(pair.bind_port)  # a stream that never carries a message
        s.sendall(in_stream(b""))
        yield Stalled("stream-no-message", pair.mode, s, s.getsockname()[1], now(), stream=1)
    else:
        s = _connect(pair.bind_port)  # the first 5 bytes of a Login header, then silence
        s.sendall(frp_header(b"o", 100)[:5])
        yield Stalled("partial-header", pair.mode, s, s.getsockname()[1], now())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    launcher = FrpLauncher(tmp_path_factory.mktemp("bad-input"))
    echo = EchoServer().start()
    try:
        pairs: dict[str, Pair] = {}
        for mode in MODES:
            mux = mode == "mux"
            bind, remote = free_port(), free_port()
            frps = launcher.ours_frps(frps_config(bind, token=TOKEN, tcp_mux=None if mux else False,
                                                  log_level="debug"))
            frps.wait_for_log(r"frps started successfully", 10)
            frpc = launcher.ours_frpc(frpc_config(bind, tcp_proxy("echo", echo.port, remote), token=TOKEN,
                                                  tcp_mux=None if mux else False))
            pairs[mode] = Pair(mode, frps, frpc, bind, remote)
        for pair in pairs.values():
            pair.frpc.wait_for_proxies("echo", timeout=10)
        w = World(launcher, echo, pairs)
        for pair in pairs.values():
            w.stalled.extend(_open_stalled(pair))
        # Watch them from now on, so the time frps took is measured while other cases run.
        with ThreadPoolExecutor(len(w.stalled), thread_name_prefix="stalled") as pool:
            for st in w.stalled:
                st.outcome = pool.submit(_watch, st)
            yield w
            for st in w.stalled:
                st.sock.close()  # a watcher still blocked in recv() returns at once
    finally:
        launcher.kill_all()
        echo.stop()


def _watch(st: Stalled) -> tuple[str | None, float]:
    how = wait_closed(st.sock, st.opened + STALL_DEADLINE, st.stream)
    return how, time.monotonic() - st.opened


@pytest.fixture(autouse=True)
def _attach_logs(request: pytest.FixtureRequest, world: World) -> None:
    """Attach the module's frp logs to failure reports (as the ``frp`` fixture does)."""
    request.node.stash.setdefault(LAUNCHERS_KEY, []).append(world.launcher)


# --------------------------------------------------------------------------------------------------
# observing the close
# --------------------------------------------------------------------------------------------------


def wait_closed(sock: socket.socket, deadline: float, stream: int | None = None) -> str | None:
    """Read until frps closes the connection (or, with ``stream``, that yamux stream): returns how
    ("eof", "reset: ...", "stream FIN", "stream RST"), or ``None`` if still open at ``deadline``.
    yamux pings from frps are answered, so a keepalive cannot be the reason for a close."""
    buf = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return None
        except (OSError, ssl.SSLError) as e:  # reset, SSLEOFError, ...
            return f"reset: {type(e).__name__}"
        if not data:
            return "eof"
        if stream is None:
            continue
        buf += data
        while len(buf) >= _YHDR.size:
            _, kind, flags, sid, length = _YHDR.unpack_from(buf)
            size = _YHDR.size + (length if kind == Y_DATA else 0)
            if len(buf) < size:
                break
            buf = buf[size:]
            if kind == Y_PING and flags & F_SYN:
                sock.sendall(yamux_frame(Y_PING, F_ACK, 0, length))
            elif sid == stream and flags & (F_FIN | F_RST):
                return "stream RST" if flags & F_RST else "stream FIN"


def logged_about(frps: FrpProcess, port: int, since: int, timeout: float, *, levels: str = "IWE") -> str:
    """Wait for a log line (after ``since``) that names client port ``port``, at one of ``levels``
    (frp's level letters; frps runs at debug level here, the default only requires lines an
    operator sees at the default info level); return it."""
    return frps.wait_for_log(rf"^.*\[[{levels}]\].*\D{port}\D.*$", timeout, since=since)[0]


def assert_still_serving(pair: Pair) -> None:
    assert pair.frps.running, "frps died"
    assert pair.frpc.running, "frpc died"
    assert tcp_roundtrip(pair.remote_port, TEST_STRING, 5) == TEST_STRING
    logins = re.findall(r"login to server success", pair.frpc.log_text())
    assert len(logins) == 1, "frpc had to log in again"


# --------------------------------------------------------------------------------------------------
# cases: build(pair) -> (bytes to send, yamux stream to watch or None)
# --------------------------------------------------------------------------------------------------

_rng = random.Random(0xF12B)
GARBAGE = _rng.randbytes(4096)
GARBAGE_NUL = b"\x00" + _rng.randbytes(4095)
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n"
TRUNCATED = frp_header(b"o", 200) + b'{"version":"0.65.0"'  # a Login frame cut short


def _message(payload: bytes) -> Callable[[Pair], tuple[bytes, int | None]]:
    """Bytes for the message layer: raw without tcpMux, inside yamux stream 1 with it."""
    return lambda pair: (pair.frame_layer(payload), 1 if pair.mode == "mux" else None)


def _raw(payload: bytes) -> Callable[[Pair], tuple[bytes, int | None]]:
    return lambda pair: (payload, None)


CASES = [
    pytest.param(_raw(b"\xa5" + GARBAGE[1:]), id="garbage"),
    pytest.param(_raw(GARBAGE_NUL), id="garbage-nul-first"),
    pytest.param(_raw(HTTP_REQUEST), id="http-request"),
    pytest.param(_message(frp_header(b"o", 10241) + b"{" * 64), id="frame-too-long"),
    pytest.param(_message(frp_header(b"o", 1 << 40)), id="frame-huge-length"),
    pytest.param(_message(frp_header(b"o", -1) + b"{}"), id="frame-negative-length"),
    pytest.param(_message(frp_header(b"Z", 2) + b"{}"), id="unknown-type"),
    pytest.param(_message(frp_header(b"o", 11) + b"not json!!!"), id="bad-json"),
]


def send_and_wait_closed(pair: Pair, payload: bytes, stream: int | None, *, half_close: str | None = None,
                         deadline: float = CLOSE_DEADLINE) -> tuple[int, str]:
    """Send ``payload`` on a fresh bind-port connection (then optionally half-close it: ``"tcp"``
    = shutdown(SHUT_WR), ``"stream"`` = yamux FIN on stream 1 with tcpMux, else like "tcp"), and
    wait for frps to close it.  Returns (our client port, how it was closed)."""
    with _connect(pair.bind_port) as s:
        port = s.getsockname()[1]
        s.sendall(payload)
        if half_close == "stream" and pair.mode == "mux":
            s.sendall(yamux_frame(Y_WINDOW, F_FIN, 1, 0))
            stream = 1
        elif half_close is not None:
            s.shutdown(socket.SHUT_WR)
            stream = None  # the whole connection is over: frps must close its side
        how = wait_closed(s, time.monotonic() + deadline, stream)
    assert how is not None, f"frps kept the connection open for {deadline}s"
    return port, how


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("build", CASES)
def test_bad_bytes(world: World, mode: str, build) -> None:
    pair = world.pairs[mode]
    payload, stream = build(pair)
    since = pair.frps.mark()
    port, _ = send_and_wait_closed(pair, payload, stream)
    logged_about(pair.frps, port, since, 3)
    assert_still_serving(pair)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("half_close", ["tcp", "stream"], ids=["tcp-eof", "stream-fin"])
def test_truncated_frame_then_close(world: World, mode: str, half_close: str) -> None:
    """Half of a Login frame, then the client closes: frps must close its side too."""
    pair = world.pairs[mode]
    payload, stream = _message(TRUNCATED)(pair)
    send_and_wait_closed(pair, payload, stream, half_close=half_close)
    assert_still_serving(pair)


@pytest.mark.parametrize("mode", MODES)
def test_truncated_frame_then_close_is_logged(world: World, mode: str) -> None:
    pair = world.pairs[mode]
    payload, stream = _message(TRUNCATED)(pair)
    since = pair.frps.mark()
    port, _ = send_and_wait_closed(pair, payload, stream, half_close="tcp")
    logged_about(pair.frps, port, since, 3)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("first_byte", [False, True], ids=["tls", "tls-0x17"])
def test_garbage_inside_tls(world: World, mode: str, first_byte: bool) -> None:
    pair = world.pairs[mode]
    since = pair.frps.mark()
    with _connect(pair.bind_port) as raw:
        port = raw.getsockname()[1]
        s = _tls_client(raw, first_byte=first_byte)  # the handshake must succeed (any client is fine)
        assert s.version() is not None
        s.sendall(b"\xa5" + GARBAGE[1:])
        how = wait_closed(s, time.monotonic() + CLOSE_DEADLINE)
        s.close()
    assert how is not None, f"frps kept the TLS connection open for {CLOSE_DEADLINE}s"
    logged_about(pair.frps, port, since, 3)
    assert_still_serving(pair)


@pytest.mark.parametrize("mode", MODES)
def test_not_really_tls(world: World, mode: str) -> None:
    """A TLS record byte followed by rubbish: the handshake fails and frps says so."""
    pair = world.pairs[mode]
    since = pair.frps.mark()
    with _connect(pair.bind_port) as s:
        port = s.getsockname()[1]
        s.sendall(b"\x16\x03\x01\x00\x10" + GARBAGE[:64])
        how = wait_closed(s, time.monotonic() + CLOSE_DEADLINE)
    assert how is not None, f"frps kept the connection open for {CLOSE_DEADLINE}s"
    line = logged_about(pair.frps, port, since, 3)
    assert "TLS" in line or "tls" in line, line
    assert_still_serving(pair)


def test_stalled_connections_closed(world: World) -> None:
    """Opened at module start: each must be closed by frps within ~10-12 s of opening, not early."""
    results = []
    for st in world.stalled:
        assert st.outcome is not None
        how, took = st.outcome.result(timeout=max(0.0, st.opened + STALL_DEADLINE + 2 - time.monotonic()))
        results.append((st, how, took))
    still_open = [f"{st.mode}/{st.name}" for st, how, _ in results if how is None]
    assert not still_open, f"not closed by frps within {STALL_DEADLINE}s: {still_open}"
    for st, how, took in results:
        assert took >= 5, f"{st.mode}/{st.name} closed after only {took:.1f}s ({how})"
        logged_about(world.pairs[st.mode].frps, st.port, 0, 3)
    for pair in world.pairs.values():
        assert_still_serving(pair)
