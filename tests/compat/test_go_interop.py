"""Wire compatibility with the real Go frp 0.65.0 binaries, in both directions.

Every test runs real processes on 127.0.0.1: either Go frpc against our frps
(``go_frpc-ours_frps``) or our frpc against Go frps (``ours_frpc-go_frps``).  All waits are polls with
deadlines; payloads are small except one 1 MiB echo per matrix case and one 64 MiB transfer per
direction pair.

Covered (spec §1.2, §1.3, §4, §5.2-5.6, §10):
  * the full matrix direction x TLS x tcpMux x useEncryption x useCompression (32 cases): length-
    prefixed TestString echo, 1 MiB echo with SHA-256 check (half incompressible, half compressible
    so both snappy chunk kinds cross the wire), concurrent connections;
  * ``disableCustomTLSFirstByte = false`` (0x17 before the ClientHello);
  * ``transport.tls.force`` (TLS accepted, plaintext refused) on either server;
  * ``remotePort = 0`` (frpc log / Go frpc admin API report the port frps picked);
  * wrong token (login refused, clear log lines on both ends, no proxy);
  * frps restart (frpc logs in again and the proxy works within 10 s);
  * ``user`` prefix, ``poolCount = 3``, Ping/Pong heartbeats without tcpMux;
  * 64 MiB upload + download per direction, SHA-256 verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.procs import (
    TEST_STRING,
    FrpProcess,
    bulk_download,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
    wait_port,
)
from support.waits import frame

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "interop-token"

GO_CLIENT = "go_frpc-ours_frps"  # Go frpc -> our frps
OURS_CLIENT = "ours_frpc-go_frps"  # our frpc -> Go frps
DIRECTIONS = [GO_CLIENT, OURS_CLIENT]

TOKEN_MISMATCH = "token in login doesn't match token from configuration"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _start_frps(frp, direction: str, server_port: int, **kw) -> FrpProcess:
    text = frps_config(server_port, **{"token": TOKEN, **kw})
    frps = frp.ours_frps(text) if direction == GO_CLIENT else frp.go_frps(text)
    wait_port(server_port, 10)
    return frps


def _start_frpc(frp, direction: str, server_port: int, *proxies: str, **kw) -> FrpProcess:
    text = frpc_config(server_port, *proxies, **{"token": TOKEN, **kw})
    return frp.go_frpc(text) if direction == GO_CLIENT else frp.ours_frpc(text)


def _start_pair(
    frp, direction: str, *proxies: str, server: dict | None = None, client: dict | None = None
) -> tuple[FrpProcess, FrpProcess, int]:
    """frps (ours or Go's) then frpc (the other one); returns (frps, frpc, bindPort)."""
    server_port = free_port()
    frps = _start_frps(frp, direction, server_port, **(server or {}))
    frpc = _start_frpc(frp, direction, server_port, *proxies, **(client or {}))
    return frps, frpc, server_port


def _mixed_payload(size: int) -> bytes:
    """Half random (snappy stores it uncompressed), half repetitive text (compressed chunks)."""
    half = size // 2
    text = (TEST_STRING * (half // len(TEST_STRING) + 1))[: size - half]
    return os.urandom(half) + text


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_echo(port: int, *, big: int = 1 << 20, concurrent: int = 12) -> None:
    """frp-style framed TestString, one ``big`` echo (SHA-256 compared), ``concurrent`` clients."""
    assert tcp_roundtrip(port, frame(TEST_STRING), 5) == frame(TEST_STRING)

    if big:
        payload = _mixed_payload(big)
        reply = tcp_roundtrip(port, payload, 20)
        assert len(reply) == len(payload)
        assert _sha(reply) == _sha(payload)

    datas = [frame(os.urandom(1000 * (i + 1))) for i in range(concurrent)]
    with ThreadPoolExecutor(concurrent) as pool:
        replies = list(pool.map(lambda d: tcp_roundtrip(port, d, 10), datas))
    assert [_sha(r) for r in replies] == [_sha(d) for d in datas]


def _wait_echo(port: int, timeout: float) -> float:
    """Poll until a TestString echo through ``port`` works; returns the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if tcp_roundtrip(
                port, frame(TEST_STRING), min(2.0, max(0.1, deadline - time.monotonic()))
            ) == frame(TEST_STRING):
                return time.monotonic() - start
        except (OSError, TimeoutError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"proxy on port {port} not working after {timeout}s (last error: {last!r})")


def _assert_port_closed(port: int) -> None:
    with pytest.raises(OSError):
        tcp_roundtrip(port, b"x", 1)


def _proxy_started(frpc: FrpProcess, name: str) -> bool:
    return f"[{name}] start proxy success" in frpc.log_text()


def _assert_clean_logs(*procs: FrpProcess) -> None:
    """No error-level line, Python traceback or Go panic in any of the logs."""
    for p in procs:
        text = p.log_text()
        bad = [ln for ln in text.splitlines() if " [E] " in ln or "Traceback" in ln or "panic:" in ln]
        assert not bad, f"{p.name}: {bad}\n{p.log_tail()}"


class _SniffRelay:
    """Loopback TCP forwarder to ``target_port`` that records the first bytes of every connection
    (client -> server direction), to see what frpc really puts on the wire."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.first: list[bytes] = []
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._ls = socket.socket()
        self._ls.bind(("127.0.0.1", free_port()))
        self._ls.listen(64)
        self.port = self._ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._ls.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                up.settimeout(None)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._socks.update((conn, up))
            slot = len(self.first)
            self.first.append(b"")
            threading.Thread(target=self._pump, args=(conn, up, slot), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slot: int | None) -> None:
        try:
            while data := src.recv(1 << 16):
                if slot is not None and len(self.first[slot]) < 4:
                    self.first[slot] = (self.first[slot] + data)[:4]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._ls.close()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _established_to(port: int) -> int:
    """Established IPv4 TCP connections whose remote end is 127.0.0.1:``port`` (client sockets)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        rem, state = fields[2], fields[3]
        if state == "01" and rem == f"0100007F:{port:04X}":
            count += 1
    return count


# --------------------------------------------------------------------------------------------------
# matrix: direction x TLS x tcpMux x useEncryption x useCompression
# --------------------------------------------------------------------------------------------------


def _matrix_params() -> list:
    params = []
    for direction in DIRECTIONS:
        for tls in (True, False):
            for mux in (True, False):
                for enc in (False, True):
                    for comp in (False, True):
                        ident = "-".join(
                            [
                                direction,
                                "tls" if tls else "notls",
                                "mux" if mux else "nomux",
                                "enc" if enc else "noenc",
                                "comp" if comp else "nocomp",
                            ]
                        )
                        params.append(pytest.param(direction, tls, mux, enc, comp, id=ident))
    return params


@pytest.mark.parametrize(("direction", "tls", "mux", "enc", "comp"), _matrix_params())
def test_matrix_tcp_echo(
    frp, echo_server, direction: str, tls: bool, mux: bool, enc: bool, comp: bool
) -> None:
    remote = free_port()
    frps, frpc, _ = _start_pair(
        frp,
        direction,
        tcp_proxy("echo", echo_server.port, remote, encryption=enc, compression=comp),
        server={"tcp_mux": mux},
        client={"tls": tls, "tcp_mux": mux},
    )
    frpc.wait_login(10)
    frpc.wait_for_proxies("echo", timeout=10)
    _check_echo(remote)
    assert frps.running and frpc.running
    assert "error" not in frpc.log_text().lower(), frpc.log_tail()
    _assert_clean_logs(frps, frpc)


# --------------------------------------------------------------------------------------------------
# TLS details
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mux", [True, False], ids=["mux", "nomux"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_custom_tls_first_byte(frp, echo_server, direction: str, mux: bool) -> None:
    """``disableCustomTLSFirstByte = false``: frpc writes 0x17 before the ClientHello (§1.2/§1.3)."""
    remote = free_port()
    frps, frpc, _ = _start_pair(
        frp,
        direction,
        tcp_proxy("echo", echo_server.port, remote),
        server={"tcp_mux": mux},
        client={"tls": True, "tcp_mux": mux, "transport.tls.disableCustomTLSFirstByte": False},
    )
    frpc.wait_for_proxies("echo", timeout=10)
    _check_echo(remote, big=64 << 10, concurrent=4)
    assert frps.running and frpc.running


# What our frpc must put first on each connection to frps (spec §1.1-§1.3): 0x17 then the TLS
# ClientHello (0x16 0x03), the ClientHello alone, a yamux header (version 0x00), or a plain frp message
# ('o' = Login, then an int64 length).
_FIRST_BYTES = {
    ("tls", "custom"): b"\x17\x16\x03",
    ("tls", ""): b"\x16\x03",
    ("notls", "mux"): b"\x00\x01",  # yamux version 0, type WindowUpdate (stream open, SYN)
    ("notls", "nomux"): b"o\x00",  # control; the work connections start with b"w\x00" (NewWorkConn)
}


@pytest.mark.parametrize(
    ("tls", "mux", "custom"),
    [
        pytest.param(True, True, True, id="tls-mux-0x17"),
        pytest.param(True, False, True, id="tls-nomux-0x17"),
        pytest.param(True, True, False, id="tls-mux"),
        pytest.param(False, True, False, id="notls-mux"),
        pytest.param(False, False, False, id="notls-nomux"),
    ],
)
def test_our_frpc_wire_first_bytes(frp, echo_server, tls: bool, mux: bool, custom: bool) -> None:
    """Our frpc really applies tls.enable / tcpMux / disableCustomTLSFirstByte (Go frps accepts every
    variant, so only the bytes on the wire tell): a recording relay sits between it and Go frps."""
    server_port = free_port()
    _start_frps(frp, OURS_CLIENT, server_port, tcp_mux=mux)
    relay = _SniffRelay(server_port)
    try:
        remote = free_port()
        frpc = _start_frpc(
            frp,
            OURS_CLIENT,
            relay.port,
            tcp_proxy("echo", echo_server.port, remote),
            tls=tls,
            tcp_mux=mux,
            **{"transport.tls.disableCustomTLSFirstByte": not custom},
        )
        frpc.wait_for_proxies("echo", timeout=10)
        _check_echo(remote, big=64 << 10, concurrent=3)
        key = ("tls", "custom" if custom else "") if tls else ("notls", "mux" if mux else "nomux")
        want = _FIRST_BYTES[key]
        # (a refill work connection may have been accepted an instant ago: let its first bytes arrive)
        deadline = time.monotonic() + 3
        while any(len(f) < 4 for f in relay.first) and time.monotonic() < deadline:
            time.sleep(0.02)
        firsts = list(relay.first)
        # control + (without tcpMux) one connection per work connection
        assert (len(firsts) == 1) if mux else (len(firsts) >= 2), firsts
        wants = [want] + [b"w\x00" if key == ("notls", "nomux") else want] * (len(firsts) - 1)
        assert all(f.startswith(w) for f, w in zip(firsts, wants, strict=True)), (wants, firsts)
    finally:
        relay.close()


def test_tls_force_on_our_frps(frp, echo_server) -> None:
    """Our frps with ``transport.tls.force``: Go frpc over TLS works, Go frpc without TLS is refused."""
    server_port = free_port()
    frps = _start_frps(frp, GO_CLIENT, server_port, **{"transport.tls.force": True})

    good_remote, bad_remote = free_port(), free_port()
    good = _start_frpc(
        frp, GO_CLIENT, server_port, tcp_proxy("good", echo_server.port, good_remote), tls=True
    )
    good.wait_for_proxies("good", timeout=10)
    _check_echo(good_remote, big=64 << 10, concurrent=4)

    mark = frps.mark()
    bad = _start_frpc(
        frp,
        GO_CLIENT,
        server_port,
        tcp_proxy("bad", echo_server.port, bad_remote),
        tls=False,
        login_fail_exit=True,
    )
    assert bad.wait_exit(10) != 0
    assert "login to server success" not in bad.log_text()
    assert not _proxy_started(bad, "bad")
    bad.wait_for_log(r"connect to server error", 1)
    frps.wait_for_log(r"non-TLS connection .*refused", 5, since=mark)
    _assert_port_closed(bad_remote)

    # The refused client did not disturb the TLS one.
    _check_echo(good_remote, big=0, concurrent=2)
    assert frps.running


def test_tls_force_on_go_frps_refuses_our_plain_frpc(frp, echo_server) -> None:
    server_port = free_port()
    frps = _start_frps(frp, OURS_CLIENT, server_port, **{"transport.tls.force": True})
    remote = free_port()
    frpc = _start_frpc(
        frp,
        OURS_CLIENT,
        server_port,
        tcp_proxy("echo", echo_server.port, remote),
        tls=False,
        login_fail_exit=True,
    )
    assert frpc.wait_exit(10) != 0
    assert "login to server success" not in frpc.log_text()
    assert not _proxy_started(frpc, "echo")
    frpc.wait_for_log(r"connect to server error", 1)
    frps.wait_for_log(r"non-TLS connection received on a TlsOnly server", 5)
    _assert_port_closed(remote)

    # ... while our frpc with TLS (the default) is accepted by the same Go frps.
    remote2 = free_port()
    frpc2 = _start_frpc(frp, OURS_CLIENT, server_port, tcp_proxy("echo2", echo_server.port, remote2))
    frpc2.wait_for_proxies("echo2", timeout=10)
    _check_echo(remote2, big=0, concurrent=2)


# --------------------------------------------------------------------------------------------------
# remotePort = 0
# --------------------------------------------------------------------------------------------------


def test_random_remote_port_ours_frpc_go_frps(frp, echo_server) -> None:
    _, frpc, _ = _start_pair(frp, OURS_CLIENT, tcp_proxy("echo", echo_server.port, 0))
    frpc.wait_for_proxies("echo", timeout=10)
    m = frpc.wait_for_log(r"\[echo\] remote address \[127\.0\.0\.1:(\d+)\]", 5)
    port = int(m[1])
    assert 0 < port < 65536
    # (Go frps 0.65.0 logs the configured port, "listen port [0]", so only the tunnel can confirm it.)
    _check_echo(port, big=64 << 10, concurrent=4)


def _go_admin_status(admin_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/api/status", timeout=5) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def test_random_remote_port_go_frpc_ours_frps(frp, echo_server) -> None:
    admin_port = free_port()
    frps, frpc, _ = _start_pair(
        frp,
        GO_CLIENT,
        tcp_proxy("echo", echo_server.port, 0),
        client={"webServer.addr": "127.0.0.1", "webServer.port": admin_port},
    )
    frpc.wait_for_proxies("echo", timeout=10)
    m = frps.wait_for_log(r"\[echo\] tcp proxy listen port \[(\d+)\]", 5)
    port = int(m[1])
    assert 0 < port < 65536

    wait_port(admin_port, 5)
    deadline = time.monotonic() + 5
    while True:
        status = _go_admin_status(admin_port)
        entries = status.get("tcp") or []
        if (entries and entries[0].get("status") == "running") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(entries) == 1, status
    entry = entries[0]
    assert entry["name"] == "echo"
    assert entry["status"] == "running", entry
    assert entry["err"] == "", entry
    assert entry["remote_addr"] == f"127.0.0.1:{port}", entry
    _check_echo(port, big=64 << 10, concurrent=4)


# --------------------------------------------------------------------------------------------------
# authentication
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_wrong_token_refused(frp, echo_server, direction: str) -> None:
    server_port, remote = free_port(), free_port()
    frps = _start_frps(frp, direction, server_port, token="right-token")
    frpc = _start_frpc(
        frp, direction, server_port, tcp_proxy("echo", echo_server.port, remote), token="wrong-token"
    )

    # frpc: the server's reason, verbatim.  Go frpc says "connect to server error: <reason>"; our frpc
    # words the line as "login to the server failed: <reason>" (same reason text).
    frpc.wait_for_log(
        rf"^.*(connect to server error|login to the server failed): .*{re.escape(TOKEN_MISMATCH)}", 10
    )
    # frps: a clear line naming the token mismatch.
    if direction == GO_CLIENT:
        frps.wait_for_log(rf"login .*failed.*{re.escape(TOKEN_MISMATCH)}", 5)
    else:
        frps.wait_for_log(rf"register control error: {re.escape(TOKEN_MISMATCH)}", 5)

    assert "login to server success" not in frpc.log_text()
    assert not _proxy_started(frpc, "echo")
    assert "new proxy" not in frps.log_text()
    assert frpc.running, "loginFailExit = false: frpc keeps retrying"
    assert frps.running
    _assert_port_closed(remote)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_wrong_token_login_fail_exit(frp, echo_server, direction: str) -> None:
    """With ``loginFailExit = true`` a refused first login makes frpc exit with a non-zero status."""
    server_port, remote = free_port(), free_port()
    _start_frps(frp, direction, server_port, token="right-token")
    frpc = _start_frpc(
        frp,
        direction,
        server_port,
        tcp_proxy("echo", echo_server.port, remote),
        token="wrong-token",
        login_fail_exit=True,
    )
    assert frpc.wait_exit(10) != 0
    assert TOKEN_MISMATCH in frpc.log_text()
    _assert_port_closed(remote)


# --------------------------------------------------------------------------------------------------
# reconnect after frps restart
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_frps_restart_frpc_reconnects(frp, echo_server, direction: str) -> None:
    remote = free_port()
    frps, frpc, server_port = _start_pair(frp, direction, tcp_proxy("echo", echo_server.port, remote))
    run_id = frpc.wait_login(10)
    frpc.wait_for_proxies("echo", timeout=10)
    _check_echo(remote, big=0, concurrent=2)

    mark = frpc.mark()
    frps.kill()
    # The proxy port goes away with frps.
    _assert_port_closed(remote)

    restarted = time.monotonic()
    frps2 = _start_frps(frp, direction, server_port)
    new_run_id = frpc.wait_login(10, since=mark)
    assert new_run_id == run_id, "frpc reuses its run id when it logs in again"
    frpc.wait_for_proxies("echo", timeout=max(0.1, restarted + 10 - time.monotonic()), since=mark)
    _wait_echo(remote, max(0.1, restarted + 10 - time.monotonic()))
    assert time.monotonic() - restarted < 10, "proxy back within 10 s of the frps restart"
    _check_echo(remote, big=64 << 10, concurrent=4)
    assert frps2.running and frpc.running


# --------------------------------------------------------------------------------------------------
# user prefix, pool, heartbeats
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_user_prefix(frp, echo_server, direction: str) -> None:
    remote = free_port()
    frps, frpc, _ = _start_pair(
        frp, direction, tcp_proxy("echo", echo_server.port, remote), client={"user": "u1"}
    )
    frpc.wait_for_proxies("u1.echo", timeout=10)
    frps.wait_for_log(r"new proxy \[u1\.echo\] type \[tcp\] success", 5)
    _check_echo(remote, big=64 << 10, concurrent=4)


@pytest.mark.parametrize("mux", [True, False], ids=["mux", "nomux"])
def test_pool_count_go_frpc_ours_frps(frp, echo_server, mux: bool) -> None:
    remote = free_port()
    frps, frpc, server_port = _start_pair(
        frp,
        GO_CLIENT,
        tcp_proxy("echo", echo_server.port, remote),
        server={"tcp_mux": mux},
        client={"tcp_mux": mux, "transport.poolCount": 3},
    )
    frpc.wait_for_proxies("echo", timeout=10)
    if not mux:
        # Without tcpMux each work connection is its own TCP connection: control + 3 pooled ones.
        deadline = time.monotonic() + 5
        while _established_to(server_port) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert _established_to(server_port) == 4
    _check_echo(remote, big=64 << 10, concurrent=8)
    if not mux:
        # The pool is refilled after use.  Like Go frps, a burst that finds the pool empty leaves
        # extra work connections behind (one ReqWorkConn per miss plus one refill per take), capped
        # by the pool's capacity poolCount + 10 (spec §5.5).
        time.sleep(0.5)
        assert 1 + 3 <= _established_to(server_port) <= 1 + 3 + 10
    assert frps.running and frpc.running


HEARTBEAT_CLIENT = {
    "tcp_mux": False,
    "log_level": "debug",
    "transport.heartbeatInterval": 1,
    "transport.heartbeatTimeout": 3,
}


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_heartbeats_without_tcp_mux(frp, echo_server, direction: str) -> None:
    remote = free_port()
    frps, frpc, _ = _start_pair(
        frp,
        direction,
        tcp_proxy("echo", echo_server.port, remote),
        server={"tcp_mux": False, "log_level": "debug"},
        client=HEARTBEAT_CLIENT,
    )
    frpc.wait_for_proxies("echo", timeout=10)
    _check_echo(remote, big=0, concurrent=2)
    time.sleep(5.0)

    log = frpc.log_text()
    assert "heartbeat timeout" not in log.lower(), frpc.log_tail()
    assert "heartbeat timeout" not in frps.log_text().lower(), frps.log_tail()
    assert log.count("login to server success") == 1, "the control connection stayed up"
    assert log.count("send heartbeat to server") >= 4, frpc.log_tail()
    assert log.count("receive heartbeat from server") >= 4, frpc.log_tail()
    if direction == OURS_CLIENT:
        assert frps.log_text().count("receive heartbeat") >= 4, frps.log_tail()
    assert frps.running and frpc.running
    _check_echo(remote, big=0, concurrent=2)


# --------------------------------------------------------------------------------------------------
# big transfers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_bulk_64mib_both_ways(frp, bulk_server, direction: str) -> None:
    remote = free_port()
    _, frpc, _ = _start_pair(frp, direction, tcp_proxy("bulk", bulk_server.port, remote))
    frpc.wait_for_proxies("bulk", timeout=10)
    size = 64 << 20
    up = bulk_upload(remote, size, timeout=40)
    assert up.ok, up
    assert up.sha256_sent == up.sha256_received is not None
    down = bulk_download(remote, size, timeout=40)
    assert down.ok, down
    assert down.sha256_sent == down.sha256_received is not None
