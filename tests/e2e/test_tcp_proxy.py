"""tcp proxies end to end: our frps + our frpc as real processes on 127.0.0.1.

Covers the transport variants (TLS, tcpMux, per-proxy encryption/compression), random remote
ports, bulk integrity, many concurrent connections, reconnects after an frps restart, login
refusal, the ``user`` prefix, several proxies and clients per server, the frpc admin API and
``frpc status``, remote-port conflicts and the release of remote ports when frpc dies.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    EchoServer,
    FrpProcess,
    HttpServer,
    bulk_download,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    ours_cmd,
    tcp_proxy,
    tcp_roundtrip,
)
from support.waits import frame, poll, refused

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-tcp-token"
ADMIN_USER, ADMIN_PASSWORD = "admin", "s3cret"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def start_frps(frp, *, token: str = TOKEN, port: int | None = None, **kw) -> tuple[FrpProcess, int]:
    """Our frps on 127.0.0.1:port (free port by default); returns once it listens."""
    port = port or free_port()
    frps = frp.ours_frps(frps_config(port, token=token, **kw))
    frps.wait_for_log(r"frps started successfully", 10)
    return frps, port


def start_frpc(frp, server_port: int, *proxies: str, token: str = TOKEN, **kw) -> FrpProcess:
    return frp.ours_frpc(frpc_config(server_port, *proxies, token=token, **kw))


def admin_keys(port: int, *, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> dict[str, object]:
    return {"webServer.addr": LOCALHOST, "webServer.port": port, "webServer.user": user,
            "webServer.password": password}


def http_get(url: str, *, auth: tuple[str, str] | None = None, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """GET ``url``; returns (status, headers, body) for 2xx and HTTP errors alike."""
    req = urllib.request.Request(url)
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def api_status(admin_port: int) -> dict:
    status, _, body = http_get(f"http://{LOCALHOST}:{admin_port}/api/status", auth=(ADMIN_USER, ADMIN_PASSWORD))
    assert status == 200, (status, body)
    return json.loads(body)


def check_echo(port: int, *, size: int = 256 << 10, clients: int = 8) -> None:
    """A framed TestString, one bigger random payload, then a few concurrent clients."""
    assert tcp_roundtrip(port, frame(TEST_STRING), 5) == frame(TEST_STRING)
    payload = os.urandom(size)
    assert tcp_roundtrip(port, payload, 10) == payload
    datas = [os.urandom(1000 + i) for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        assert list(pool.map(lambda d: tcp_roundtrip(port, d, 10), datas)) == datas


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})


# --------------------------------------------------------------------------------------------------
# transport variants
# --------------------------------------------------------------------------------------------------

VARIANTS = [
    # (encryption, compression, tls, tcp_mux)
    pytest.param(False, False, True, True, id="plain-tls-mux"),
    pytest.param(True, False, True, True, id="enc-tls-mux"),
    pytest.param(False, True, True, True, id="comp-tls-mux"),
    pytest.param(True, True, True, True, id="enc+comp-tls-mux"),
    pytest.param(False, False, False, True, id="plain-notls-mux"),
    pytest.param(False, False, True, False, id="plain-tls-nomux"),
    pytest.param(False, False, False, False, id="plain-notls-nomux"),
    # frpc writes the custom 0x17 byte before its ClientHello (disableCustomTLSFirstByte = false)
    pytest.param(False, False, "0x17", True, id="plain-tls0x17-mux"),
    pytest.param(True, True, "0x17", False, id="enc+comp-tls0x17-nomux"),
]


@pytest.mark.parametrize(("encryption", "compression", "tls", "tcp_mux"), VARIANTS)
def test_tcp_proxy_variants(frp, echo_server, bulk_server, encryption, compression, tls, tcp_mux) -> None:
    echo_remote, bulk_remote = free_port(), free_port()
    _, port = start_frps(frp, tcp_mux=tcp_mux)
    first_byte = {"transport.tls.disableCustomTLSFirstByte": False} if tls == "0x17" else {}
    frpc = start_frpc(
        frp, port,
        tcp_proxy("echo", echo_server.port, echo_remote, encryption=encryption, compression=compression),
        tcp_proxy("bulk", bulk_server.port, bulk_remote, encryption=encryption, compression=compression),
        tls=bool(tls), tcp_mux=tcp_mux, **first_byte,
    )
    frpc.wait_login(10)
    frpc.wait_for_proxies("echo", "bulk", timeout=10)

    check_echo(echo_remote)
    # Verified bulk both ways; incompressible and highly compressible data.
    for pattern in ("random", "zeros"):
        up = bulk_upload(bulk_remote, 4 << 20, timeout=30, pattern=pattern)
        assert up.ok, up
    down = bulk_download(bulk_remote, 4 << 20, timeout=30)
    assert down.ok, down


# --------------------------------------------------------------------------------------------------
# remote ports
# --------------------------------------------------------------------------------------------------


def test_random_remote_port(frp, echo_server) -> None:
    admin = free_port()
    _, port = start_frps(frp)
    frpc = start_frpc(frp, port, tcp_proxy("rnd", echo_server.port, 0),
                      tcp_proxy("unset", echo_server.port, None),  # no remotePort key at all: also 0
                      **admin_keys(admin))
    frpc.wait_for_proxies("rnd", "unset", timeout=10)

    # frpc logs the address it got.
    m = frpc.wait_for_log(r"^.*\[rnd\].*?127\.0\.0\.1:(\d+).*$", 5)
    logged = int(m[1])
    assert 0 < logged < 65536

    # The admin API reports it as serverAddr:port ...
    by_name = {e["name"]: e for e in api_status(admin)["tcp"]}
    entry = by_name["rnd"]
    assert entry["status"] == "running"
    assert entry["remote_addr"] == f"127.0.0.1:{logged}"
    other = re.fullmatch(r"127\.0\.0\.1:(\d+)", by_name["unset"]["remote_addr"])
    assert other and int(other[1]) not in (0, logged), by_name["unset"]

    # ... as does `frpc status`.
    res = run_cli(*ours_cmd("frpc"), "status", "-c", str(frpc.config_path))
    assert res.returncode == 0, res
    assert re.search(rf"^\s*rnd\s+running\b.*\b127\.0\.0\.1:{logged}\b", res.stdout, re.MULTILINE), res.stdout

    # And the ports work.
    assert tcp_roundtrip(logged, TEST_STRING, 5) == TEST_STRING
    assert tcp_roundtrip(int(other[1]), TEST_STRING, 5) == TEST_STRING


def test_remote_port_taken(frp, echo_server) -> None:
    taken, admin = free_port(), free_port()
    _, port = start_frps(frp)
    owner = start_frpc(frp, port, tcp_proxy("first", echo_server.port, taken))
    owner.wait_for_proxies("first", timeout=10)

    # A port held by something outside frp is refused as well.
    with socket.socket() as squatter:
        squatter.bind((LOCALHOST, 0))
        squatter.listen(1)
        foreign = squatter.getsockname()[1]

        other = start_frpc(
            frp, port,
            tcp_proxy("second", echo_server.port, taken),
            tcp_proxy("third", echo_server.port, foreign),
            tcp_proxy("fine", echo_server.port, 0),
            **admin_keys(admin),
        )
        other.wait_for_proxies("fine", timeout=10)
        m2 = other.wait_for_log(r"\[second\] start error: (.+)$", 10)
        m3 = other.wait_for_log(r"\[third\] start error: (.+)$", 10)
        assert m2[1].strip() and m3[1].strip()
        assert "start proxy success" not in "".join(
            ln for ln in other.log_text().splitlines() if "[second]" in ln or "[third]" in ln
        )

        by_name = {e["name"]: e for e in api_status(admin)["tcp"]}
        for name in ("second", "third"):
            assert by_name[name]["status"] == "start error", by_name[name]
            assert by_name[name]["err"], by_name[name]
            assert not by_name[name]["remote_addr"], by_name[name]
        assert by_name["fine"]["status"] == "running"

        res = run_cli(*ours_cmd("frpc"), "status", "-c", str(other.config_path))
        assert res.returncode == 0, res
        assert re.search(r"^\s*second\s+start error\b", res.stdout, re.MULTILINE), res.stdout

    # The owner of the port is unaffected.
    assert tcp_roundtrip(taken, TEST_STRING, 5) == TEST_STRING


# --------------------------------------------------------------------------------------------------
# volume
# --------------------------------------------------------------------------------------------------


def test_bulk_64mib_each_way(frp, bulk_server) -> None:
    remote = free_port()
    _, port = start_frps(frp)
    frpc = start_frpc(frp, port, tcp_proxy("bulk", bulk_server.port, remote))
    frpc.wait_for_proxies("bulk", timeout=10)

    size = 64 << 20
    up = bulk_upload(remote, size, timeout=60)
    assert up.ok, up
    assert up.sha256_sent == up.sha256_received is not None
    down = bulk_download(remote, size, timeout=60)
    assert down.ok, down
    assert down.sha256_sent == down.sha256_received is not None
    # The service saw both transfers complete (it records a download once the client closed).
    poll(lambda: len(bulk_server.records) == 2, 5, "bulk service finished both transfers")
    assert [(r.op, r.transferred, r.error) for r in bulk_server.records] == [
        ("upload", size, None), ("download", size, None)]


async def _concurrent_echo(port: int, payloads: list[bytes], timeout: float) -> list[bytes]:
    """Open one connection per payload (all of them before sending anything), then echo each."""

    async def one(ready: asyncio.Event, data: bytes, opened: list[int]) -> bytes:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            opened.append(1)
            if len(opened) == len(payloads):
                ready.set()
            await ready.wait()
            writer.write(data)
            await writer.drain()
            return await reader.readexactly(len(data))
        finally:
            writer.close()

    ready = asyncio.Event()
    opened: list[int] = []
    async with asyncio.timeout(timeout):
        return list(await asyncio.gather(*(one(ready, d, opened) for d in payloads)))


@pytest.mark.parametrize("variant", ["default", "nomux-enc-comp"])
def test_200_concurrent_connections(frp, variant) -> None:
    remote = free_port()
    mux = None if variant == "default" else False
    extra = {} if variant == "default" else {"encryption": True, "compression": True}
    with EchoServer() as echo:
        _, port = start_frps(frp, tcp_mux=mux)
        frpc = start_frpc(frp, port, tcp_proxy("echo", echo.port, remote, **extra), tcp_mux=mux)
        frpc.wait_for_proxies("echo", timeout=10)

        payloads = [f"conn-{i:03d}|".encode() * 50 + os.urandom(512 + i) for i in range(200)]
        replies = asyncio.run(_concurrent_echo(remote, payloads, 30))
        bad = [i for i, (a, b) in enumerate(zip(payloads, replies, strict=True)) if a != b]
        assert not bad, f"{len(bad)} connections got wrong data, e.g. #{bad[:5]}"
        assert echo.connections >= 200


# --------------------------------------------------------------------------------------------------
# lifecycle
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_frps_restart_reconnects(frp, echo_server, how) -> None:
    remote = free_port()
    frps, port = start_frps(frp)
    config = frps.config_text
    frpc = start_frpc(frp, port, tcp_proxy("echo", echo_server.port, remote))
    run_id = frpc.wait_login(10)
    frpc.wait_for_proxies("echo", timeout=10)
    assert tcp_roundtrip(remote, TEST_STRING, 5) == TEST_STRING

    frps.stop(5) if how == "sigterm" else frps.kill()
    poll(lambda: refused(remote), 5, "remote port closed after frps stopped")
    since = frpc.mark()
    restarted = time.monotonic()
    frps2 = frp.ours_frps(config)
    frps2.wait_for_log(r"frps started successfully", 10)

    new_run_id = frpc.wait_login(10, since=since)
    frpc.wait_for_proxies("echo", timeout=max(0.1, 10 - (time.monotonic() - restarted)), since=since)
    poll(lambda: tcp_roundtrip(remote, TEST_STRING, 2) == TEST_STRING,
         max(0.5, 10 - (time.monotonic() - restarted)), "proxy working again after frps restart")
    assert time.monotonic() - restarted < 10
    assert new_run_id == run_id, "frpc keeps its run id across reconnects"
    assert frpc.running


@pytest.mark.parametrize("login_fail_exit", [None, False], ids=["default-exit", "keep-retrying"])
def test_wrong_token_refused(frp, echo_server, login_fail_exit) -> None:
    remote = free_port()
    frps, port = start_frps(frp, token="right-token")
    text = frpc_config(port, tcp_proxy("echo", echo_server.port, remote), token="wrong-token",
                       login_fail_exit=bool(login_fail_exit))
    if login_fail_exit is None:  # leave loginFailExit at its default (true)
        text = text.replace("loginFailExit = false\n", "")
        assert "loginFailExit" not in text
    frpc = frp.ours_frpc(text)

    frpc.wait_for_log(r"token in login doesn't match token from configuration", 10)
    frps.wait_for_log(r"token in login doesn't match token from configuration", 5)
    if login_fail_exit is None:
        assert frpc.wait_exit(10) == 1
    else:
        # Retries (with backoff) instead of exiting.
        first = frpc.wait_for_log(r"token in login doesn't match", 1).end()
        frpc.wait_for_log(r"token in login doesn't match", 5, since=first)
        assert frpc.running
    log = frpc.log_text()
    assert "login to server success" not in log and "start proxy success" not in log
    assert refused(remote)
    assert frps.running


def test_user_prefix(frp, echo_server) -> None:
    remote = free_port()
    _, port = start_frps(frp)
    frpc = start_frpc(frp, port, tcp_proxy("web", echo_server.port, remote), user="u1")
    frpc.wait_for_log(r"\[u1\.web\] start proxy success", 10)
    assert tcp_roundtrip(remote, TEST_STRING, 5) == TEST_STRING


def test_many_proxies_and_clients(frp) -> None:
    n_clients, n_proxies = 3, 5
    services = [[HttpServer(body=f"client{c}-proxy{p}".encode()).start() for p in range(n_proxies)]
                for c in range(n_clients)]
    try:
        frps, port = start_frps(frp)
        remotes = [[free_port() for _ in range(n_proxies)] for _ in range(n_clients)]
        clients = [
            start_frpc(frp, port, *(tcp_proxy(f"c{c}p{p}", services[c][p].port, remotes[c][p])
                                    for p in range(n_proxies)),
                       **({"transport.poolCount": 5} if c == 1 else {}))  # one with a work-conn pool
            for c in range(n_clients)
        ]
        run_ids = set()
        for c, frpc in enumerate(clients):
            run_ids.add(frpc.wait_login(10))
            frpc.wait_for_proxies(*(f"c{c}p{p}" for p in range(n_proxies)), timeout=10)
        assert len(run_ids) == n_clients

        def fetch(c: int, p: int) -> bytes:
            with urllib.request.urlopen(f"http://{LOCALHOST}:{remotes[c][p]}/", timeout=5) as r:
                return r.read()

        pairs = [(c, p) for c in range(n_clients) for p in range(n_proxies)]
        with ThreadPoolExecutor(len(pairs)) as pool:
            bodies = list(pool.map(lambda cp: fetch(*cp), pairs))
        assert bodies == [f"client{c}-proxy{p}".encode() for c, p in pairs]

        # One client going away takes only its own proxies with it.
        clients[0].kill()
        poll(lambda: all(refused(r) for r in remotes[0]), 5, "client 0's remote ports closed")
        for c in range(1, n_clients):
            for p in range(n_proxies):
                assert fetch(c, p) == f"client{c}-proxy{p}".encode()
        assert frps.running
    finally:
        for row in services:
            for s in row:
                s.stop()


def test_admin_api_and_status_command(frp, echo_server) -> None:
    remote, admin = free_port(), free_port()
    _, port = start_frps(frp)
    frpc = start_frpc(frp, port, tcp_proxy("echo", echo_server.port, remote), **admin_keys(admin))
    frpc.wait_for_proxies("echo", timeout=10)
    base = f"http://{LOCALHOST}:{admin}"

    status, _, _ = http_get(f"{base}/healthz")
    assert status == 200

    for auth in (None, (ADMIN_USER, "wrong"), ("nobody", ADMIN_PASSWORD)):
        status, headers, _ = http_get(f"{base}/api/status", auth=auth)
        assert status == 401, auth
        assert headers.get("WWW-Authenticate", "").startswith("Basic"), headers

    status, headers, body = http_get(f"{base}/api/status", auth=(ADMIN_USER, ADMIN_PASSWORD))
    assert status == 200
    assert "json" in headers.get("Content-Type", ""), headers
    data = json.loads(body)
    assert list(data) == ["tcp"], data
    (entry,) = data["tcp"]
    assert entry["name"] == "echo"
    assert entry["type"] == "tcp"
    assert entry["status"] == "running"
    assert entry["err"] == ""
    assert entry["local_addr"] == f"127.0.0.1:{echo_server.port}"
    assert entry["remote_addr"] == f"127.0.0.1:{remote}"
    assert entry.get("plugin", "") == ""

    res = run_cli(*ours_cmd("frpc"), "status", "-c", str(frpc.config_path))
    assert res.returncode == 0, res
    assert re.search(rf"^\s*echo\s+running\b.*\b127\.0\.0\.1:{remote}\b", res.stdout, re.MULTILINE), res.stdout


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
def test_frpc_killed_releases_remote_port(frp, echo_server, tcp_mux) -> None:
    remote = free_port()
    frps, port = start_frps(frp, tcp_mux=tcp_mux)
    frpc = start_frpc(frp, port, tcp_proxy("echo", echo_server.port, remote), tcp_mux=tcp_mux)
    run_id = frpc.wait_login(10)
    frpc.wait_for_proxies("echo", timeout=10)
    assert tcp_roundtrip(remote, TEST_STRING, 5) == TEST_STRING

    # A user connection in flight when frpc dies is closed as well.
    inflight = socket.create_connection((LOCALHOST, remote), timeout=5)
    inflight.sendall(b"ping")
    assert inflight.recv(4) == b"ping"

    since = frps.mark()
    frpc.kill()
    killed = time.monotonic()
    poll(lambda: refused(remote), 5, "remote port refusing connections after frpc was SIGKILLed")
    with inflight:
        inflight.settimeout(max(0.1, 5 - (time.monotonic() - killed)))
        try:
            assert inflight.recv(1) == b"", "in-flight user connection got data after frpc died"
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail("in-flight user connection still open 5 s after frpc was SIGKILLed")
    frps.wait_for_log(rf"\[{re.escape(run_id)}\] client exit success", 5, since=since)
    assert frps.running


def test_log_lines_read_as_gos(frp) -> None:
    """frpc's log says what Go 0.65's says: each login attempt (``try to connect to server...``),
    retried after Go's backoff (2 s first), the proxies started on each login with their
    ``user.`` names, visitors named the same way, a dead local service in Go's dial text at error
    level, and the frps address of a udp work connection."""
    from support.configs import block, udp_proxy

    dead = free_port()
    bind = free_port()
    remote, uremote, vport = free_port(), free_port(), free_port()
    frpc = start_frpc(frp, bind, tcp_proxy("down", dead, remote), udp_proxy("dns", free_port(), uremote),
                      block("visitors", name="v", type="stcp", serverName="nobody", secretKey="k",
                            bindAddr=LOCALHOST, bindPort=vport),
                      user="u1")
    frpc.wait_for_log(r"\[u1\.v\] stcp visitor listen on ", 10)  # ours listens before the login
    first = frpc.wait_for_log(r"try to connect to server\.\.\.$", 10)
    failed = frpc.wait_for_log(r"connect to server error: dial tcp 127\.0\.0\.1:\d+: connect: connection refused",
                               10, since=first.end())
    t_failed = time.monotonic()
    frpc.wait_for_log(r"try to connect to server\.\.\.$", 10, since=failed.end())
    assert time.monotonic() - t_failed >= 1.9  # Go's first wait: 2–2.2 s (1 s before)

    frps, _ = start_frps(frp, port=bind)
    login = frpc.wait_for_log(r"login to server success", 15)
    frpc.wait_for_log(r"proxy added: \[u1\.dns u1\.down\]$", 5, since=login.start())  # by name (Go 0.68+)
    frpc.wait_for_log(r"visitor added: \[u1\.v\]$", 5, since=login.start())  # at each login, as Go's
    frpc.wait_for_log(r"\[u1\.down\] start proxy success", 10)

    with socket.create_connection((LOCALHOST, remote), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(1) == b""  # closed: nothing listens on the local port
        # Go's frps line for every user connection, with the user's address
        frps.wait_for_log(rf"\[I\] .*\[u1\.down\] get a user connection \[127\.0\.0\.1:{s.getsockname()[1]}\]$", 10)
    frpc.wait_for_log(rf"\[E\] .*\[u1\.down\] connect to local service \[127\.0\.0\.1:{dead}\] error: "
                      rf"dial tcp 127\.0\.0\.1:{dead}: connect: connection refused$", 10)

    frpc.wait_for_log(r"\[u1\.dns\] start proxy success", 10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"x", (LOCALHOST, uremote))
        frpc.wait_for_log(rf"\[u1\.dns\] incoming a new work connection for udp proxy, 127\.0\.0\.1:{bind}$", 10)
    frpc.kill()  # and frps says, as Go's, that each of its proxies closes
    frps.wait_for_log(r"\[u1\.down\] proxy closing", 10)
    frps.wait_for_log(r"\[u1\.dns\] proxy closing", 10)
