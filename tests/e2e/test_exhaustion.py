"""Resource exhaustion on a real frps process (issue 13, item 3).

* frps started under ``ulimit -n 256`` gets 400 connections at once: those beyond its
  file-descriptor headroom are closed at accept, the refusals cost at most a line a second, the
  tunnel it carries keeps its open connections, and once the load is gone frps is back to its
  baseline fd count and serves new clients and users;
* a yamux session opening thousands of streams that send nothing: at most
  ``MAX_PENDING_STREAMS`` (256) wait for a first message, the rest are reset, with a line a second
  at most; before a login the whole connection is closed as a failure instead.
"""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import sys
import time
from pathlib import Path

import pytest
from support.hostile import F_RST, F_SYN, Y_WINDOW, YHDR, fd_count, frp_msg, in_stream, yamux_frame
from support.procs import LOCALHOST, free_port, frpc_config, frps_config, tcp_proxy
from support.waits import echo_ok, poll

pytestmark = pytest.mark.timeout(180)

TOKEN = "exhaustion-token"
FD_LIMIT = 256


def start_limited_frps(frp, bind: int):
    """Our frps with its soft and hard fd limits at 256 (``ulimit -n`` in a shell that then execs it)."""
    frps = frp.run(["sh", "-c", f'ulimit -n {FD_LIMIT} && exec "$0" "$@"', sys.executable, "-m", "aiofrp.cli.frps"],
                   frps_config(bind, token=TOKEN), name="frps")
    frps.wait_for_log(r"frps started successfully", 15)
    limits = Path(f"/proc/{frps.pid}/limits").read_text()
    assert re.search(r"Max open files\s+256\s+256", limits), limits
    return frps


def test_fd_limit_refuses_with_a_line_a_second_then_recovers(frp, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frps = start_limited_frps(frp, bind)
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo_server.port, remote), token=TOKEN))
    frpc.wait_for_proxies("t", timeout=15)
    poll(lambda: echo_ok(remote), 10, "the tunnel")
    user = socket.create_connection((LOCALHOST, remote), timeout=5)  # open across the whole storm
    user.sendall(b"before")
    assert user.recv(6) == b"before"
    baseline = fd_count(frps.pid)

    started = time.monotonic()
    storm: list[socket.socket] = []
    for _ in range(400):  # silent connections to the bind port: frps keeps them up to 10 s
        s = socket.create_connection((LOCALHOST, bind), timeout=5)
        storm.append(s)
    frps.wait_for_log(r"\[W\] \[net\] too many open files \(fd \d+ of the limit 256\): refusing new connections", 10)
    # a user connection to the proxy's port is refused too: no fd to spare
    extra = [socket.create_connection((LOCALHOST, remote), timeout=5) for _ in range(20)]
    refused = 0
    for s in storm + extra:
        s.settimeout(0.5 if refused == 0 else 0.05)
        try:
            if s.recv(1) == b"":
                refused += 1
        except ConnectionResetError:
            refused += 1
        except TimeoutError:
            pass
    assert refused >= 400 + 20 - FD_LIMIT, refused
    # the connection opened before the storm still works
    user.sendall(b"during")
    assert user.recv(6) == b"during"
    elapsed = time.monotonic() - started
    for s in storm + extra:
        s.close()

    lines = frps.log_text().count("too many open files")
    assert 1 <= lines <= int(elapsed) + 2, f"{lines} lines in {elapsed:.1f}s:\n{frps.log_tail(20)}"
    # load gone: frps accepts again (one line says so), fds back to the baseline, new users served
    poll(lambda: echo_ok(remote), 15, "the tunnel after the storm")
    frps.wait_for_log(r"\[I\] \[net\] accepting new connections again, \d+ refused while at the fd limit", 5)
    poll(lambda: fd_count(frps.pid) <= baseline + 2, 20, f"frps fds back to the baseline {baseline}")
    user.sendall(b"after!")
    assert user.recv(6) == b"after!"
    user.close()
    frpc2 = frp.ours_frpc(frpc_config(bind, tcp_proxy("t2", echo_server.port, free_port()), token=TOKEN))
    frpc2.wait_for_proxies("t2", timeout=15)
    assert "Traceback" not in frps.log_text()


# -- yamux streams ------------------------------------------------------------------------------


def _login(token: str) -> bytes:
    ts = int(time.time())
    key = hashlib.md5(f"{token}{ts}".encode()).hexdigest()
    return in_stream(frp_msg(b"o", {"version": "0.65.0", "hostname": "streams", "os": "linux", "arch": "amd64",
                                    "user": "", "privilege_key": key, "timestamp": ts, "run_id": "",
                                    "metas": {}, "pool_count": 0}))


def _reset_ids(sock: socket.socket, want: int, timeout: float) -> set[int]:
    """Stream ids frps reset (yamux frames with RST), until ``want`` of them or the deadline."""
    buf, ids = b"", set[int]()
    deadline = time.monotonic() + timeout
    while len(ids) < want and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= YHDR.size:
            _v, kind, flags, sid, length = YHDR.unpack_from(buf)
            size = YHDR.size + (length if kind == 0 else 0)
            if len(buf) < size:
                break
            if flags & F_RST:
                ids.add(sid)
            buf = buf[size:]
    return ids


N_STREAMS = 2000


def test_many_silent_yamux_streams_are_bounded(frp) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    with socket.create_connection((LOCALHOST, bind), timeout=10) as s:
        s.sendall(_login(TOKEN))
        frps.wait_for_log(r"client login info", 10)
        sids = [3 + 2 * i for i in range(N_STREAMS)]
        s.sendall(b"".join(yamux_frame(Y_WINDOW, F_SYN, sid, 0) for sid in sids))
        reset = _reset_ids(s, N_STREAMS - 256, 30)
        assert reset == set(sids[256:]), (len(reset), min(reset or {0}))
        # the session itself lives on: a ping is answered
        s.sendall(yamux_frame(2, F_SYN, 0, 4242))
        got, deadline = b"", time.monotonic() + 10
        while struct.pack(">I", 4242) not in got and time.monotonic() < deadline:
            got += s.recv(1 << 16)
        assert struct.pack(">I", 4242) in got
    lines = frps.log_text().count("yamux streams waiting for their first message")
    assert 1 <= lines <= 3, frps.log_tail(20)


def test_a_burst_of_streams_that_all_speak_is_not_reset(frp) -> None:
    """The bound is on streams that sent nothing: 1,000 new streams arriving in one burst, each
    with its first bytes right behind its SYN (frpc answering many ReqWorkConn at once), are all
    taken. (Counting them until their first message was handled reset most of such a burst: the
    soak's 10,000 connections lost 2,759 work connections that way.)"""
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    with socket.create_connection((LOCALHOST, bind), timeout=10) as s:
        s.sendall(_login(TOKEN))
        frps.wait_for_log(r"client login info", 10)
        sids = [3 + 2 * i for i in range(1000)]
        s.sendall(b"".join(in_stream(b"w", sid) for sid in sids))  # a first byte of a NewWorkConn frame
        # a ping behind the burst: once it is answered, frps has read every stream of it
        s.sendall(yamux_frame(2, F_SYN, 0, 4343))
        buf, deadline = b"", time.monotonic() + 20
        while struct.pack(">I", 4343) not in buf and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            buf += s.recv(1 << 16)
        assert struct.pack(">I", 4343) in buf
        resets = set()
        while len(buf) >= YHDR.size:
            _v, kind, flags, sid, length = YHDR.unpack_from(buf)
            if flags & F_RST:
                resets.add(sid)
            buf = buf[YHDR.size + (length if kind == 0 else 0):]
        assert not resets, f"{len(resets)} streams reset"
    assert "yamux streams waiting for their first message" not in frps.log_text()


def test_many_streams_before_login_close_the_connection(frp) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    with socket.create_connection((LOCALHOST, bind), timeout=10) as s:
        s.sendall(b"".join(yamux_frame(Y_WINDOW, F_SYN, 1 + 2 * i, 0) for i in range(300)))
        s.settimeout(10)
        ended = False
        try:
            while s.recv(1 << 16):
                pass
            ended = True
        except ConnectionResetError:
            ended = True
        assert ended
    frps.wait_for_log(r"connection from 127\.0\.0\.1:\d+ failed: more than 256 yamux streams waiting for "
                      r"their first message", 5)
