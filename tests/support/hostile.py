"""Hostile clients of frps's bind port: raw frp/yamux framing, bursts of connections that never
log in properly, and the file-descriptor count of a process.

:func:`run_burst` opens many connections at once (asyncio, one thread), sends each its bytes and
reads until the server closes the TCP connection (EOF or reset; a yamux stream FIN/RST does not
count), recording when that happened relative to the last byte sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .services import TEST_STRING, tcp_roundtrip
from .waits import poll

LOCALHOST = "127.0.0.1"

# yamux (spec §1.4.2)
Y_DATA, Y_WINDOW, Y_PING = 0, 1, 2
F_SYN, F_ACK, F_FIN, F_RST = 1, 2, 4, 8
YHDR = struct.Struct(">BBHII")


def yamux_frame(kind: int, flags: int, sid: int, length: int, body: bytes = b"") -> bytes:
    return YHDR.pack(0, kind, flags, sid, length) + body


def in_stream(payload: bytes, sid: int = 1) -> bytes:
    """Open yamux stream ``sid`` (WindowUpdate+SYN) and send ``payload`` on it as one Data frame."""
    out = yamux_frame(Y_WINDOW, F_SYN, sid, 0)
    if payload:
        out += yamux_frame(Y_DATA, 0, sid, len(payload), payload)
    return out


def frp_header(type_byte: bytes, length: int) -> bytes:
    """A wire-v1 frame header (spec §2.1.1): type byte + int64 big-endian length."""
    return type_byte + struct.pack(">q", length)


def frp_msg(type_byte: bytes, body: dict) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    return frp_header(type_byte, len(data)) + data


def login_msg(privilege_key: str = "0" * 32, *, timestamp: int | None = None, user: str = "") -> bytes:
    """A Login frame (type ``o``) as Go frpc 0.65 sends it; the default key matches no token."""
    return frp_msg(b"o", {
        "version": "0.65.0", "hostname": "", "os": "linux", "arch": "amd64", "user": user,
        "privilege_key": privilege_key, "timestamp": int(time.time()) if timestamp is None else timestamp,
        "run_id": "", "metas": {}, "pool_count": 1,
    })


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _tcp_rows(pid: int) -> list[list[str]]:
    rows = []
    for table in ("tcp", "tcp6"):
        try:
            rows += [line.split() for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]]
        except OSError:
            continue
    return rows


def fd_count(pid: int, *, minus_peers_of: tuple[int, ...] = ()) -> int:
    """Open file descriptors of process ``pid`` (Linux /proc); with ``minus_peers_of``, not counting
    its TCP connections to those processes (a legit frpc's work-connection pool varies)."""
    n = len(os.listdir(f"/proc/{pid}/fd"))
    if not minus_peers_of:
        return n
    theirs = set().union(*(_socket_inodes(p) for p in minus_peers_of))
    rows = _tcp_rows(pid)
    their_ends = {r[1] for r in rows if r[9] in theirs}  # local address:port of the peers' sockets
    mine = _socket_inodes(pid)
    return n - sum(1 for r in rows if r[9] in mine and r[2] in their_ends)


def fd_summary(pid: int) -> str:
    """What the fds of ``pid`` are (socket/pipe/file counts, TCP states and ports), for failure messages."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if target.startswith(("socket:", "pipe:", "anon_inode:")) else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    names = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "0A": "LISTEN",
             "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0B": "CLOSING"}
    mine = _socket_inodes(pid)
    states = sorted(f"{names.get(r[3], r[3])}:{int(r[1].rsplit(':', 1)[1], 16)}<-{int(r[2].rsplit(':', 1)[1], 16)}"
                    for r in _tcp_rows(pid) if r[9] in mine)
    return f"fds {kinds}, tcp sockets {states}"


@dataclass
class Hostile:
    """One connection of a burst: ``steps`` are byte strings sent in order (``delay`` seconds apart);
    ``expect_in_reply`` must appear in what the server sent before closing."""

    kind: str
    steps: list[bytes]
    delay: float = 0.0
    expect_in_reply: bytes = b""
    # filled in by run_burst
    port: int = 0
    how: str | None = None  # "eof", "reset: ...", or None if still open at the deadline
    closed_after_last_byte: float | None = None
    reply: bytes = b""
    error: str = ""


async def _one(h: Hostile, port: int, deadline: float, connected: Callable[[], None]) -> None:
    try:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
    except OSError as e:
        h.error = f"connect: {e}"
        connected()
        return
    h.port = writer.get_extra_info("sockname")[1]
    connected()
    last = time.monotonic()
    try:
        for i, step in enumerate(h.steps):
            if i and h.delay:
                await asyncio.sleep(h.delay)
            if step:
                writer.write(step)
                await writer.drain()
                last = time.monotonic()
    except OSError as e:  # the server may close on the first step already
        h.how = f"reset: {type(e).__name__}"
        h.closed_after_last_byte = time.monotonic() - last
        writer.close()
        return
    buf = bytearray()
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    h.how = "eof"
                    break
                buf += chunk
    except TimeoutError:
        h.how = None
    except OSError as e:
        h.how = f"reset: {type(e).__name__}"
    if h.how is not None:
        h.closed_after_last_byte = time.monotonic() - last
    h.reply = bytes(buf)
    writer.close()


async def _burst(conns: list[Hostile], port: int, timeout: float, on_connected: Callable[[], None] | None) -> None:
    deadline = time.monotonic() + timeout
    left = len(conns)
    event = asyncio.Event()

    def connected() -> None:
        nonlocal left
        left -= 1
        if left == 0:
            event.set()
            if on_connected is not None:
                on_connected()

    tasks = [asyncio.create_task(_one(h, port, deadline, connected)) for h in conns]
    await asyncio.gather(*tasks)


def run_burst(conns: list[Hostile], port: int, timeout: float,
              on_connected: Callable[[], None] | None = None) -> list[Hostile]:
    """Run all ``conns`` against ``127.0.0.1:port`` at once; each waits for the server's close
    until ``timeout`` seconds after the burst started. ``on_connected`` runs once all connected."""
    asyncio.run(_burst(conns, port, timeout, on_connected))
    return conns


# -- the burst of issue 8 (item 4), shared by the e2e and the compat tests --------------------

REFUSED_DEADLINE = 5.0  # refused at once: response flushed, then the TCP connection closed
STALL_DEADLINE = 12.0  # silent or stalled: within 12 s of the last byte
BURST_TIMEOUT = 22.0

_rng = random.Random(0x8A7E)
GARBAGE = b"\xa5" + _rng.randbytes(4095)
TRUNCATED = frp_header(b"o", 200) + b'{"version":"0.65.0"'
TLS_HELLO_START = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(16)  # a ClientHello cut short
LINE = re.compile(r"^.*\[([DIWE])\] \[[^\]]+\] (login|connection) from 127\.0\.0\.1:(\d+) (failed|closed): (.*)$",
                  re.MULTILINE)

IMMEDIATE = {"wrong-token", "garbage", "bad-json", "unknown-type", "unexpected-first", "work-unknown-run-id",
             "visitor-unknown-proxy", "huge-frame"}


def hostile_set(mux: bool) -> list[Hostile]:
    wrap = in_stream if mux else (lambda payload: payload)
    out: list[Hostile] = []

    def add(kind: str, n: int, steps: list[bytes], **kw: object) -> None:
        out.extend(Hostile(kind, list(steps), **kw) for _ in range(n))  # type: ignore[arg-type]

    add("wrong-token", 200, [wrap(login_msg())], expect_in_reply=b"token in login doesn't match")
    # 100 idle or stalled
    add("silent", 40, [b""])
    add("tls-stall", 15, [TLS_HELLO_START])
    add("drip", 10, [bytes([b]) for b in wrap(login_msg())[:40]], delay=1.5)  # a byte every 1.5 s
    if mux:
        add("yamux-no-stream", 15, [yamux_frame(Y_PING, F_SYN, 0, 7)])
        add("streams-no-login", 20, [in_stream(b"", 1) + in_stream(b"", 3) + in_stream(b"", 5)])
    else:
        add("partial-header", 15, [frp_header(b"o", 100)[:5]])
        add("truncated", 20, [TRUNCATED])
    # refused at once
    add("garbage", 30, [GARBAGE])
    add("bad-json", 25, [wrap(frp_header(b"o", 11) + b"not json!!!")])
    add("unknown-type", 20, [wrap(frp_header(b"Z", 2) + b"{}")])
    add("huge-frame", 15, [wrap(frp_header(b"o", 1 << 40))])
    add("unexpected-first", 20, [wrap(frp_msg(b"h", {}))])  # a Ping before any Login
    add("work-unknown-run-id", 20, [wrap(frp_msg(b"w", {"run_id": "0123456789abcdef"}))],
        expect_in_reply=b"no client control found")
    add("visitor-unknown-proxy", 20, [wrap(frp_msg(b"v", {"proxy_name": "nope", "sign_key": "x", "timestamp": 1}))],
        expect_in_reply=b"doesn't exist")
    _rng.shuffle(out)
    return out


@dataclass
class EchoLoop:
    """Echo through the proxy on fresh connections and on one long-lived connection, until stopped."""

    port: int
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> EchoLoop:
        self._threads = [threading.Thread(target=self._fresh, daemon=True),
                         threading.Thread(target=self._long_lived, daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _fresh(self) -> None:
        while not self._stop.is_set():
            try:
                got = tcp_roundtrip(self.port, TEST_STRING, 5)
                if got == TEST_STRING:
                    self.ok += 1
                else:
                    self.failures.append(f"fresh: got {got!r}")
            except OSError as e:
                self.failures.append(f"fresh: {e!r}")
            self._stop.wait(0.05)

    def _long_lived(self) -> None:
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=5) as s:
                i = 0
                while not self._stop.is_set():
                    msg = b"long-lived %d\n" % i
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = s.recv(len(msg) - len(got))
                        if not chunk:
                            raise ConnectionError("closed")
                        got += chunk
                    if got != msg:
                        self.failures.append(f"long-lived: got {got!r}")
                    self.ok += 1
                    i += 1
                    self._stop.wait(0.1)
        except OSError as e:
            self.failures.append(f"long-lived: {e!r}")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def stable_fd_count(count: Callable[[], int]) -> int:
    """The fd count once two reads 0.3 s apart agree (a work connection may still be settling)."""
    last = [-1]

    def settled() -> int | None:
        n = count()
        same = n == last[0]
        last[0] = n
        time.sleep(0.3)
        return n if same else None

    return poll(settled, 10, "a stable fd count")




def burst_while_echoing(frps: Any, frpc: Any, bind: int, remote: int, mux: bool) -> None:
    """The whole check: :func:`hostile_set` hits ``frps`` (bind port ``bind``) while :class:`EchoLoop`
    echoes through ``frpc``'s tcp proxy at ``remote``; every connection must be refused or closed in
    time with one log line, the echo must not miss, and frps's fds must return to the baseline."""
    pid = frps.pid
    assert pid is not None
    assert tcp_roundtrip(remote, TEST_STRING, 5) == TEST_STRING  # warm the work-connection pool
    frpc_pid = frpc.pid
    assert frpc_pid is not None

    def count() -> int:  # frps's fds, less its connections to the legit frpc (its pool varies)
        return fd_count(pid, minus_peers_of=(frpc_pid,))

    baseline = stable_fd_count(count)
    baseline_summary = fd_summary(pid)
    since = frps.mark()

    conns = hostile_set(mux)
    peak = [0]
    echo = EchoLoop(remote).start()
    try:
        run_burst(conns, bind, BURST_TIMEOUT, on_connected=lambda: peak.__setitem__(0, fd_count(pid)))
    finally:
        echo.stop()
    assert not echo.failures, echo.failures[:5]
    assert echo.ok >= 20, f"only {echo.ok} echoes during the burst"
    # The connections frps refuses at once may already be closed when the last one connects (a fast
    # frps on a loaded machine); the silent and stalled ones are open until STALL_DEADLINE, so they
    # alone must show. That every connection reached frps is checked by its log line below.
    held = sum(1 for h in conns if h.kind not in IMMEDIATE)
    assert peak[0] > baseline + held * 9 // 10, \
        f"the burst did not reach frps ({peak[0]} fds, baseline {baseline}, {held} held connections)"

    errors = [f"{h.kind}: {h.error}" for h in conns if h.error]
    assert not errors, errors[:5]
    still_open = Counter(h.kind for h in conns if h.how is None)
    assert not still_open, f"connections frps kept open for {BURST_TIMEOUT}s: {dict(still_open)}"
    late = [(h.kind, round(h.closed_after_last_byte or 0, 1)) for h in conns
            if (h.closed_after_last_byte or 0) > (REFUSED_DEADLINE if h.kind in IMMEDIATE else STALL_DEADLINE)]
    assert not late, f"closed too late after the last byte: {late[:10]}"
    unanswered = [h.kind for h in conns if h.expect_in_reply and h.expect_in_reply not in h.reply]
    assert not unanswered, f"refusal not delivered before the close: {Counter(unanswered)}"

    # one line per connection, with its address, in the documented shape
    def lines_by_port() -> dict[int, list[re.Match[str]]]:
        text = frps.log_text()[since:]
        by: dict[int, list[re.Match[str]]] = {}
        for mt in LINE.finditer(text):
            by.setdefault(int(mt.group(3)), []).append(mt)
        return by

    ports = {h.port for h in conns}
    def all_logged() -> dict[int, list[re.Match[str]]] | None:
        by = lines_by_port()
        return by if ports <= set(by) else None

    by = poll(all_logged, 5, "a log line for every connection")
    for h in conns:
        got = by[h.port]
        assert len(got) == 1, f"{h.kind}: {[g.group(0) for g in got]}"
        level, what, _, outcome, reason = got[0].groups()
        assert (level, outcome) == ("W", "failed"), got[0].group(0)
        assert what == ("login" if h.kind == "wrong-token" else "connection"), got[0].group(0)
        if h.kind == "wrong-token":
            assert reason == "token in login doesn't match token from configuration"

    deadline = time.monotonic() + 10
    while count() > baseline:
        if time.monotonic() > deadline:
            pytest.fail(f"frps not back to its baseline of {baseline} fds in 10 s: {count()} "
                        f"(then: {baseline_summary}; now: {fd_summary(pid)})")
        time.sleep(0.1)
    assert frps.running and frpc.running
    assert tcp_roundtrip(remote, TEST_STRING, 5) == TEST_STRING
    assert len(re.findall(r"login to server success", frpc.log_text())) == 1, "frpc had to log in again"


