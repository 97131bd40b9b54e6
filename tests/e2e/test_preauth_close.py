"""Unauthenticated connections on frps's bind port are closed, not held (issue 8, item 4).

For each mode (tcpMux on and off) one of our frps serves a legit frpc with a tcp proxy to an echo
service. A burst of 200 wrong-token logins, 100 idle or stalled connections (silence, a stalled TLS
handshake, a yamux session without streams, streams that never log in, a partial frame, a
byte-by-byte drip) and 150 bad ones (garbage, truncated and malformed frames inside yamux streams,
wrong first messages, work and visitor connections frps refuses) hits the bind port at once.

* every TCP connection (not just its yamux stream) is closed by frps: the refused ones at once
  (within 5 s of their last byte, after the refusal was delivered), the stalled ones within 12 s
  of their last byte;
* frps logs exactly one line for each, naming its address, in the shape fail2ban matches;
* frps's file-descriptor count returns to its baseline;
* the legit tunnel keeps echoing throughout, on new connections and on one long-lived one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.hostile import burst_while_echoing, frp_header, in_stream, login_msg
from support.procs import LOCALHOST, FrpProcess, free_port, frpc_config, frps_config, tcp_proxy

pytestmark = pytest.mark.timeout(90)

TOKEN = "preauth-token"


@dataclass
class Setup:
    mux: bool
    frps: FrpProcess
    frpc: FrpProcess
    bind: int
    remote: int


@pytest.fixture
def setup(request: pytest.FixtureRequest, frp, echo_server) -> Iterator[Setup]:
    mux = request.param == "mux"
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, tcp_mux=None if mux else False))
    frps.wait_for_log(r"frps started successfully", 10)
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("echo", echo_server.port, remote), token=TOKEN,
                                     tcp_mux=None if mux else False))
    frpc.wait_for_proxies("echo", timeout=10)
    yield Setup(mux, frps, frpc, bind, remote)


@pytest.mark.parametrize("setup", ["mux", "nomux"], indirect=True)
def test_bursts_are_closed_and_fds_return(setup: Setup) -> None:
    burst_while_echoing(setup.frps, setup.frpc, setup.bind, setup.remote, setup.mux)


def test_peer_that_hangs_up_is_logged_as_closed(frp) -> None:
    """A port probe (connect, close) costs one INFO line with the address, not a 'failed' one."""
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    ports = []
    for payload in (b"", frp_header(b"o", 100)[:5], in_stream(b"")):
        with socket.create_connection((LOCALHOST, bind), timeout=5) as s:
            ports.append(s.getsockname()[1])
            if payload:
                s.sendall(payload)
    for port in ports:
        line = frps.wait_for_log(rf"^.*connection from 127\.0\.0\.1:{port} closed: .*$", 5)[0]
        assert "[I]" in line, line
    assert " failed: " not in frps.log_text()


def _read_login_refusal(s: socket.socket) -> bytes:
    """Read frames until the LoginResp data frame of stream 1 arrived; returns the bytes read."""
    got = b""
    while b'"error"' not in got:
        chunk = s.recv(65536)
        assert chunk, f"frps closed before its LoginResp arrived: {got!r}"
        got += chunk
    return got


def test_a_refused_login_stays_open_for_the_peer_to_hang_up(frp) -> None:
    """The refusal is flushed and the connection lingers (gate.LINGER) for the peer to read it and
    hang up first, as Go's frpc does: closed right away, Go frpc's yamux could end its session
    before the login stream read the LoginResp ("session shutdown" instead of the reason)."""
    from aiofrp.server.gate import LINGER

    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    # the peer hangs up after reading: frps has not closed first, and logs one "failed" line
    with socket.create_connection((LOCALHOST, bind), timeout=5) as s:
        port = s.getsockname()[1]
        s.sendall(in_stream(login_msg()))
        _read_login_refusal(s)
        s.settimeout(LINGER / 4)
        with pytest.raises(TimeoutError):
            s.recv(1)  # still open: neither EOF nor a reset
    frps.wait_for_log(rf"login from 127\.0\.0\.1:{port} failed: ", 5)
    # a peer that stays: frps closes within LINGER (+ a margin for a loaded machine)
    with socket.create_connection((LOCALHOST, bind), timeout=5) as s:
        s.sendall(in_stream(login_msg()))
        _read_login_refusal(s)
        s.settimeout(LINGER + 5)
        s.sendall(b"ignored while lingering")
        while s.recv(65536):
            pass
