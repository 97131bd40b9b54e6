"""stcp / sudp (secret proxies with visitors) end to end: our frps + our frpc processes (frp §5.9).

One frps; a provider frpc (user ``alice``) with secret proxies of every allowUsers flavour; a
visitor frpc as ``bob`` and one as ``alice`` with allowed and refused visitors. Refusals (wrong
secret, user not allowed, unknown server name) must be logged on frps and on the visitor's
frpc and disturb nothing else. Also: sk-keyed encryption/compression on visitor connections,
a visitor without listener (``bindPort <= 0``), no user prefix at all, sudp echo.
"""

from __future__ import annotations

import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    FrpProcess,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_roundtrip,
    udp_roundtrip,
)

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-secret-token"
SK = "abc123"


def secret_proxy(name: str, local_port: int, kind: str = "stcp", **keys: object) -> str:
    return block("proxies", name=name, type=kind, localIP=LOCALHOST, localPort=local_port, secretKey=SK, **keys)


def visitor(name: str, server_name: str, bind_port: int, kind: str = "stcp", **keys: object) -> str:
    keys.setdefault("secretKey", SK)
    return block("visitors", name=name, type=kind, serverName=server_name, bindAddr=LOCALHOST,
                 bindPort=bind_port, **keys)


def refused_tcp(port: int) -> bool:
    """The visitor accepts the local connection and then closes it without data."""
    try:
        return tcp_roundtrip(port, TEST_STRING, 5) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def echo_ok(port: int, payload: bytes = TEST_STRING) -> bool:
    return tcp_roundtrip(port, payload, 10) == payload


def listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (Linux /proc), to show a visitor has no listener."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def frps(frp) -> tuple[FrpProcess, int]:
    port = free_port()
    proc = frp.ours_frps(frps_config(port, token=TOKEN))
    proc.wait_for_log(r"frps started successfully", 10)
    return proc, port


def test_stcp_users_keys_and_refusals(frp, frps, echo_server, udp_echo_server) -> None:
    server, port = frps
    provider = frp.ours_frpc(frpc_config(
        port,
        secret_proxy("s_owner", echo_server.port),  # allowUsers empty: alice only
        secret_proxy("s_star", echo_server.port, allowUsers=["*"]),
        secret_proxy("s_bob", echo_server.port, allowUsers=["bob"]),
        secret_proxy("s_invalid", echo_server.port, allowUsers=["invalid"]),
        secret_proxy("s_enc", echo_server.port, allowUsers=["*"], transport__useEncryption=True,
                     transport__useCompression=True),
        secret_proxy("u_star", udp_echo_server.port, kind="sudp", allowUsers=["*"]),
        token=TOKEN, user="alice",
    ))
    provider.wait_for_proxies("alice.s_owner", "alice.s_star", "alice.s_bob", "alice.s_invalid", "alice.s_enc",
                              "alice.u_star", timeout=10)

    p = {n: free_port() for n in ("star", "bob", "enc", "plainenc", "owner_as_bob", "wrongkey", "unknown",
                                  "sudp", "sudp_enc", "sudp_wrong")}
    bob = frp.ours_frpc(frpc_config(
        port,
        visitor("v_star", "s_star", p["star"], serverUser="alice"),
        visitor("v_bob", "s_bob", p["bob"], serverUser="alice"),
        # sk layer on the visitor connection; token layer on the provider side
        visitor("v_enc", "s_enc", p["enc"], serverUser="alice", transport__useEncryption=True,
                transport__useCompression=True),
        visitor("v_plainenc", "s_star", p["plainenc"], serverUser="alice", transport__useEncryption=True),
        visitor("v_owner", "s_owner", p["owner_as_bob"], serverUser="alice"),
        visitor("v_wrongkey", "s_star", p["wrongkey"], serverUser="alice", secretKey="not-the-key"),
        visitor("v_unknown", "nope", p["unknown"], serverUser="alice"),
        visitor("v_none", "s_star", -1, serverUser="alice"),  # bindPort < 0: no listener
        visitor("v_sudp", "u_star", p["sudp"], kind="sudp", serverUser="alice"),
        visitor("v_sudp_enc", "u_star", p["sudp_enc"], kind="sudp", serverUser="alice",
                transport__useEncryption=True, transport__useCompression=True),
        visitor("v_sudp_wrong", "u_star", p["sudp_wrong"], kind="sudp", serverUser="alice", secretKey="nope"),
        token=TOKEN, user="bob",
    ))
    bob.wait_login(10)
    # as Go's: the visitors are started (again) at each login, the manager names them then
    assert bob.wait_for_log(r"\] start visitor success$", 5)
    assert bob.wait_for_log(r"\] visitor added: \[[^\]]*\bbob\.v_none\b[^\]]*\]$", 5)
    assert "[bob.v_none] stcp visitor listen" not in bob.log_text()
    stcp_ports = {p[n] for n in ("star", "bob", "enc", "plainenc", "owner_as_bob", "wrongkey", "unknown")}
    assert bob.pid is not None and listening_tcp_ports(bob.pid) == stcp_ports  # none for v_none

    # allowed: "*", explicit user, both layers, sk encryption only
    for name in ("star", "bob", "enc", "plainenc"):
        assert echo_ok(p[name]), name
    # Go's frps line for each visitor connection it takes (server/proxy/proxy.go), as for users
    server.wait_for_log(r"\[alice\.s_bob\] get a user connection \[127\.0\.0\.1:\d+\]$", 5)
    big = os.urandom(512 << 10) + b"z" * (512 << 10)
    assert echo_ok(p["enc"], big)
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda i: echo_ok(p["star"], os.urandom(10_000 + i)), range(16)))

    # refused: empty allowUsers (owner only), wrong key, unknown proxy
    assert refused_tcp(p["owner_as_bob"])
    bob.wait_for_log(r"\[bob\.v_owner\] start new visitor connection error: "
                     r"visitor connection of \[alice\.s_owner\] user \[bob\] not allowed", 5)
    server.wait_for_log(r"register visitor conn error: visitor connection of \[alice\.s_owner\] user \[bob\] "
                        r"not allowed", 5)
    assert refused_tcp(p["wrongkey"])
    bob.wait_for_log(r"\[bob\.v_wrongkey\] start new visitor connection error: "
                     r"visitor connection of \[alice\.s_star\] auth failed", 5)
    server.wait_for_log(r"visitor connection of \[alice\.s_star\] auth failed", 5)
    assert refused_tcp(p["unknown"])
    bob.wait_for_log(r"\[bob\.v_unknown\] start new visitor connection error: "
                     r"custom listener for \[alice\.nope\] doesn't exist", 5)

    # sudp: echo through plain and sk-encrypted+compressed tunnels, many datagrams, several users
    for name in ("sudp", "sudp_enc"):
        assert udp_roundtrip(p[name], TEST_STRING, 5, attempts=10) == TEST_STRING
        for size in (1, 700, 1500):
            data = os.urandom(size)
            assert udp_roundtrip(p[name], data, 2, attempts=4) == data
    with ThreadPoolExecutor(8) as pool:
        datas = [os.urandom(100 + i) for i in range(16)]
        assert list(pool.map(lambda d: udp_roundtrip(p["sudp"], d, 4, attempts=8), datas)) == datas
    # refused sudp: the datagram is dropped, and the next one dials again
    for _ in range(2):
        with pytest.raises(TimeoutError):
            udp_roundtrip(p["sudp_wrong"], b"dropped", 0.5)
    text = bob.log_text()
    # Go's sudp visitor words (its stcp visitor logs the bare error)
    refused = r"\[bob\.v_sudp_wrong\] newVisitorConn to frps error: start new visitor connection error"
    assert len(re.findall(refused + r": visitor connection of \[alice\.u_star\] auth failed, try to reconnect",
                          text)) >= 1
    bob.wait_for_log(r"(?s)" + refused + ".*" + refused, 5)

    # nothing else was disturbed: allowed ones still work, nobody re-logged in
    assert echo_ok(p["star"]) and echo_ok(p["enc"])
    assert udp_roundtrip(p["sudp"], b"still", 2, attempts=4) == b"still"
    for proc in (provider, bob):
        assert len(re.findall(r"login to server success", proc.log_text())) == 1, proc.log_tail()

    # the owner's own user passes an empty allowUsers; ["invalid"] refuses even the owner
    q = {n: free_port() for n in ("owner", "invalid")}
    alice = frp.ours_frpc(frpc_config(
        port,
        visitor("v_owner", "s_owner", q["owner"]),  # no serverUser: own user "alice"
        visitor("v_invalid", "s_invalid", q["invalid"]),
        token=TOKEN, user="alice",
    ))
    alice.wait_login(10)
    deadline = time.monotonic() + 5
    while not echo_ok(q["owner"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert echo_ok(q["owner"])
    assert refused_tcp(q["invalid"])
    alice.wait_for_log(r"\[alice\.v_invalid\] start new visitor connection error: "
                       r"visitor connection of \[alice\.s_invalid\] user \[alice\] not allowed", 5)


def test_no_user_prefix_and_same_process(frp, echo_server, udp_echo_server) -> None:
    """No user anywhere: the visitor names the bare proxy; provider and visitor in one frpc; tcpMux off."""
    port = free_port()
    frp.ours_frps(frps_config(port, token=TOKEN, tcp_mux=False)).wait_for_log(r"frps started successfully", 10)
    sp, up = free_port(), free_port()
    frpc = frp.ours_frpc(frpc_config(
        port,
        secret_proxy("plain", echo_server.port),
        secret_proxy("uplain", udp_echo_server.port, kind="sudp"),
        visitor("v_plain", "plain", sp),
        visitor("v_uplain", "uplain", up, kind="sudp"),
        token=TOKEN, tcp_mux=False,
    ))
    frpc.wait_for_proxies("plain", "uplain", timeout=10)
    assert echo_ok(sp)
    assert udp_roundtrip(up, TEST_STRING, 5, attempts=10) == TEST_STRING


def test_visitor_without_server(frp, echo_server) -> None:
    """A visitor whose frpc cannot log in holds a local connection for the login (10 s), then
    closes it with a clear log line (see test_visitor_early.py for the login arriving in time)."""
    vp = free_port()
    with socket.socket() as s:  # a port nobody listens on
        s.bind((LOCALHOST, 0))
        dead = s.getsockname()[1]
    frpc = frp.ours_frpc(frpc_config(dead, visitor("v", "x", vp), token=TOKEN))
    frpc.wait_for_log(r"\[v\] stcp visitor listen on ", 10)  # before any login (Go would not listen yet)
    started = time.monotonic()
    try:
        got = tcp_roundtrip(vp, TEST_STRING, 15)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    assert got == b""
    assert 8 < time.monotonic() - started < 14
    frpc.wait_for_log(r"\[v\] not connected to the server \(waited 10s for the login\)", 5)
