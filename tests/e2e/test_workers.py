"""``frps --workers N``: a supervisor and N worker processes sharing the bind port (SO_REUSEPORT)
and one registry of names (docs/architecture.md, "Workers"); real processes on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from support.procs import (
    EchoServer,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
)
from support.waits import poll

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-workers-token"


def start_frps(frp, workers: int = 2, extra: str = "", token: str | None = TOKEN):
    port = free_port()
    frps = frp.ours_frps(frps_config(port, token=token, extra=extra), args=["--workers", str(workers)])
    frps.wait_for_log(rf"frps started successfully with {workers} workers", 20)
    return frps, port


def worker_pids(frps) -> dict[int, int]:
    """The latest pid of every worker, from the supervisor's lines."""
    return {int(n): int(p) for n, p in re.findall(r"worker (\d+) started \(pid (\d+)\)", frps.log_text())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_clients_on_every_worker_reach_their_ports(frp) -> None:
    with EchoServer() as echo:
        frps, port = start_frps(frp)
        assert set(worker_pids(frps)) == {1, 2}
        remotes = [free_port() for _ in range(8)]
        clients = [frp.ours_frpc(frpc_config(port, tcp_proxy(f"echo{i}", echo.port, r), token=TOKEN))
                   for i, r in enumerate(remotes)]
        for i, c in enumerate(clients):
            c.wait_for_proxies(f"echo{i}", timeout=20)
        for i, r in enumerate(remotes):
            data = f"through worker port {i}".encode() * 100
            assert tcp_roundtrip(r, data) == data
        # every login was served by a worker, tagged in the log
        logins = re.findall(r"@w(\d)\] \[\w+\] client login info", frps.log_text())
        assert len(logins) == 8 and set(logins) <= {"1", "2"}


def test_proxy_name_is_unique_across_workers(frp) -> None:
    """The registry owns proxy names: of six clients asking for one name, one gets it, whichever
    worker each reached; the others get Go's error."""
    with EchoServer() as echo:
        frps, port = start_frps(frp)
        remote = free_port()
        clients = [frp.ours_frpc(frpc_config(port, tcp_proxy("same", echo.port, remote), token=TOKEN))
                   for _ in range(6)]

        def settled() -> bool:
            text = frps.log_text()
            return text.count("new proxy [same] type [tcp] success") + text.count(
                "proxy [same] already exists") >= 6
        poll(settled, 20, "six answers to NewProxy [same]")
        text = frps.log_text()
        assert text.count("new proxy [same] type [tcp] success") == 1
        assert text.count("new proxy [same] type [tcp] error: proxy [same] already exists") == 5
        assert tcp_roundtrip(remote, b"only one") == b"only one"
        del clients


def test_dead_worker_restarted_and_its_names_released(frp) -> None:
    with EchoServer() as echo:
        frps, port = start_frps(frp)
        pids = worker_pids(frps)
        remote = free_port()
        frpc = frp.ours_frpc(frpc_config(port, tcp_proxy("lives", echo.port, remote), token=TOKEN))
        frpc.wait_for_proxies("lives", timeout=20)
        worker = int(re.findall(r"@w(\d)\] \[\w+\] client login info", frps.log_text())[0])
        mark = frpc.mark()
        os.kill(pids[worker], signal.SIGKILL)
        frps.wait_for_log(rf"worker {worker} \(pid {pids[worker]}\) exited with status -9, starting it again", 10)
        frps.wait_for_log(rf"worker {worker} gone: \d+ registry names released", 10)
        poll(lambda: worker_pids(frps)[worker] != pids[worker], 10, "the worker started again")
        frps.wait_for_log(rf"worker {worker} serves again", 10)
        # frpc logs in again (to either worker): the name of the dead worker's proxy is free again
        frpc.wait_for_proxies("lives", timeout=30, since=mark)
        assert tcp_roundtrip(remote, b"again") == b"again"


def test_stop_ends_every_worker(frp) -> None:
    """SIGTERM to the supervisor alone (not its process group): it stops the workers, exit 0."""
    frps, _ = start_frps(frp)
    pids = worker_pids(frps)
    assert frps.pid is not None
    os.kill(frps.pid, signal.SIGTERM)
    assert frps.wait_exit(20) == 0
    poll(lambda: not any(_alive(p) for p in pids.values()), 10, "the workers to exit")


def test_worker_failing_at_start_stops_frps(frp) -> None:
    """A worker that cannot start (the bind port held by a socket without SO_REUSEPORT) ends the
    supervisor with exit status 1 after its own line says why."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        frps = frp.ours_frps(frps_config(port, token=TOKEN), args=["--workers", "2"])
        assert frps.wait_exit(20) == 1
        text = frps.log_text()
        assert "create server listener error" in text and "exited with status 1 while starting" in text
        assert "Traceback" not in text
    finally:
        holder.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_work_connections_without_tcpmux_reach_their_control(frp, tls: bool) -> None:
    """``transport.tcpMux = false``: every work connection is a TCP connection of its own, which
    the kernel gives to either worker. One that reached another worker than its client's control
    goes there: the socket itself over plain TCP, its plaintext relayed through a socketpair over
    TLS; the proxies of clients in both workers (ours and Go's frpc, with and without a pool) carry
    every connection, and the owner's checks still refuse a work connection of an unknown run id."""
    with EchoServer() as echo:
        frps, port = start_frps(frp, extra='transport.tcpMux = false\nlog.level = "debug"\n')
        remotes = [free_port() for _ in range(6)]
        clients = []
        for i, r in enumerate(remotes):
            start = frp.go_frpc if i % 3 == 2 else frp.ours_frpc
            pool = "transport.poolCount = 2\n" if i % 2 else ""
            clients.append(start(frpc_config(port, tcp_proxy(f"echo{i}", echo.port, r), token=TOKEN, tcp_mux=False,
                                             tls=tls, extra=pool)))
        for i, c in enumerate(clients):
            c.wait_for_proxies(f"echo{i}", timeout=20)
        for _ in range(4):  # new user connections, each with a new work connection
            for i, r in enumerate(remotes):
                data = f"work connection {i} ".encode() * 500
                assert tcp_roundtrip(r, data) == data
        verb = "relayed" if tls else "handed"
        # 6 clients and 24 work connections (plus the pools) spread over 2 workers: some moved (the
        # workers' lines reach the log through the supervisor: polled)
        moved = poll(lambda: re.findall(rf"@w(\d)\] work connection of \[\w+\] {verb} to worker (\d)",
                                        frps.log_text()), 10, "a work connection moved to its control's worker")
        assert all(src != dst for src, dst in moved)
        for _ in range(4):  # a run id no worker knows: refused by the worker that read it
            assert "no client control found for run id [0123456789abcdef]" in _unknown_work_conn(port, tls)
        assert "Traceback" not in frps.log_text()


def test_tcp_group_members_in_both_workers(frp) -> None:
    """A tcp load-balancing group with members in both workers: each listens on the group's port
    (SO_REUSEPORT) and the user connections reach members in both; another key or port is refused
    in Go's words whichever worker the member reached; the port stays served while any worker
    has a member, and is free for a plain proxy after the last."""
    from support.configs import block

    def member(name: str, remote: int, key: str = "group-key") -> str:
        return block("proxies", name=name, type="tcp", localIP="127.0.0.1", localPort=echo.port, remotePort=remote,
                     loadBalancer__group="grp", loadBalancer__groupKey=key)

    with EchoServer() as echo:
        frps, port = start_frps(frp, extra='log.level = "debug"\n')
        remote = free_port()
        by_worker: dict[int, list] = {}
        for i in range(20):  # until both workers have members (the kernel places each login)
            start = frp.go_frpc if i % 2 else frp.ours_frpc
            c = start(frpc_config(port, member(f"g{i}", remote), token=TOKEN))
            c.wait_for_proxies(f"g{i}", timeout=20)
            by_worker.setdefault(_worker_of(frps, c), []).append((f"g{i}", c))
            if len(by_worker) == 2 and i >= 2:
                break
        if len(by_worker) < 2:
            pytest.skip("the kernel put every client on one worker (SO_REUSEPORT hashing)")
        for i in range(30):
            data = f"group connection {i} ".encode() * 100
            assert tcp_roundtrip(remote, data) == data
        poll(lambda: set(re.findall(r"@w(\d)\] \[\w+\] \[g\d\] join connections", frps.log_text())) == {"1", "2"},
             10, "group members in both workers carrying connections")
        for i, (key, rport, words) in enumerate([("wrong", remote, "group auth failed"),
                                                 ("group-key", free_port(), "group should have same remote port")]):
            for j in range(3):
                bad = frp.ours_frpc(frpc_config(port, member(f"bad{i}{j}", rport, key), token=TOKEN))
                bad.wait_for_log(rf"\[bad{i}{j}\] start error: {words}", 20)
                bad.stop()
        first, second = sorted(by_worker)
        for _, c in by_worker[first]:
            c.stop()
        # until frps has seen those clients go, its listener there still takes connections for them
        frps.wait_for_log(rf"@w{first}\] \[\w+\] \[g\d+\] tcp group \[grp\] closed, port \[{remote}\] released", 20)
        for i in range(10):  # the other worker's members carry the group alone
            data = f"after worker {first}'s members left {i} ".encode() * 100
            assert tcp_roundtrip(remote, data) == data
        for _, c in by_worker[second]:
            c.stop()
        plain = frp.ours_frpc(frpc_config(port, tcp_proxy("plain", echo.port, remote), token=TOKEN))
        plain.wait_for_proxies("plain", timeout=20)
        assert tcp_roundtrip(remote, b"plain again") == b"plain again"
        assert "Traceback" not in frps.log_text()


def test_vhost_routes_and_groups_across_workers(frp) -> None:
    """A domain served in one worker is refused to another client's proxy in either worker
    (``router config conflict``, as in one process: the registry books route keys); an http
    load-balancing group serves from members in both workers, and refuses other routes or another
    key in Go's words whichever worker the member reached."""
    from support.configs import block
    from support.procs import HttpServer

    http_port = free_port()

    def web(name: str, domain: str, local: int, **group: object) -> str:
        return block("proxies", name=name, type="http", localIP="127.0.0.1", localPort=local,
                     customDomains=[domain], **group)

    with HttpServer(body=b"owner") as owner_web:
        frps, port = start_frps(frp, extra=f'vhostHTTPPort = {http_port}\nlog.level = "debug"\n')
        owner = frp.ours_frpc(frpc_config(port, web("owner", "d.example.com", owner_web.port), token=TOKEN))
        owner.wait_for_proxies("owner", timeout=20)
        home = _worker_of(frps, owner)
        tried: set[bool] = set()
        for i in range(20):  # other clients wanting the domain, until both workers refused one
            c = (frp.go_frpc if i % 2 else frp.ours_frpc)(
                frpc_config(port, web(f"thief{i}", "d.example.com", owner_web.port), token=TOKEN))
            c.wait_for_log(rf"\[thief{i}\] start error: router config conflict", 20)
            tried.add(_worker_of(frps, c) == home)
            c.stop()
            if len(tried) == 2:
                break
        assert tried == {True, False}, "every client reached one worker"
        for _ in range(6):
            assert _http_get(http_port, "d.example.com").endswith(b"owner")

    backends: list[HttpServer] = []
    try:
        group: dict[str, object] = {"loadBalancer__group": "hg", "loadBalancer__groupKey": "hk"}
        where: dict[int, set[bytes]] = {}
        for i in range(20):  # members until both workers have one
            backends.append(HttpServer(body=f"member {i}".encode()).start())
            c = (frp.go_frpc if i % 2 else frp.ours_frpc)(
                frpc_config(port, web(f"m{i}", "g.example.com", backends[i].port, **group), token=TOKEN))
            c.wait_for_proxies(f"m{i}", timeout=20)
            where.setdefault(_worker_of(frps, c), set()).add(f"member {i}".encode())
            if len(where) == 2 and i >= 1:
                break
        assert len(where) == 2, "every member reached one worker"
        bodies = {_http_get(http_port, "g.example.com").split(b"\r\n\r\n", 1)[1] for _ in range(30)}
        assert all(bodies & members for members in where.values()), (bodies, where)
        cases: list[tuple[dict[str, object], str]] = [({"loadBalancer__groupKey": "wrong"}, "group auth failed"),
                                                      ({"locations": ["/x"]}, "group params invalid")]
        for i, (extra, words) in enumerate(cases):
            for j in range(3):
                bad = frp.ours_frpc(frpc_config(
                    port, web(f"bad{i}{j}", "g.example.com", backends[0].port, **{**group, **extra}), token=TOKEN))
                bad.wait_for_log(rf"\[bad{i}{j}\] start error: {words}", 20)
                bad.stop()
    finally:
        for b in backends:
            b.stop()
    assert "Traceback" not in frps.log_text()


def test_xtcp_visitors_reach_providers_in_either_worker(frp, stun_server) -> None:
    """An xtcp visitor whose provider is in another worker: its NatHoleVisitor goes to the
    provider's worker, whose NAT-hole controller serves it, and the NatHoleResp comes back to the
    visitor's control; the hole is punched and carries connections (ours and Go's visitor). A wrong
    secret key is still refused there."""
    from support.configs import block

    sk = "xtcp-across-workers"
    with EchoServer() as echo:
        frps, port = start_frps(frp, extra='log.level = "debug"\n')
        provider = frp.ours_frpc(frpc_config(port, block("proxies", name="p2p", type="xtcp", secretKey=sk,
                                                         localIP="127.0.0.1", localPort=echo.port),
                                             token=TOKEN, natHoleStunServer=stun_server.address))
        provider.wait_for_proxies("p2p", timeout=20)
        home = _worker_of(frps, provider)
        crossed: list[int] = []
        for i in range(24):  # visitors until two reached the other worker (one ours, one Go's)
            go = len(crossed) == 1
            vport = free_port()
            v = (frp.go_frpc if go else frp.ours_frpc)(frpc_config(
                port, block("visitors", name=f"v{i}", type="xtcp", serverName="p2p", secretKey=sk,
                            bindAddr="127.0.0.1", bindPort=vport),
                token=TOKEN, natHoleStunServer=stun_server.address))
            if _worker_of(frps, v) == home:
                v.stop()
                continue
            crossed.append(vport)
            if len(crossed) == 2:
                break
        if len(crossed) < 2:
            pytest.skip("the kernel put every visitor client on the provider's worker (SO_REUSEPORT hashing)")
        for vport in crossed:
            data = f"punched across workers {vport} ".encode() * 1000
            assert tcp_roundtrip(vport, data, 20) == data
        frps.wait_for_log(rf"@w\d\] \[\w+\] nathole visitor for \[p2p\] sent to worker {home}", 10)
        frps.wait_for_log(rf"@w{home}\] sid \[\S+\] report make hole success: true", 10)
        for i in range(20):  # a wrong key, from the other worker: refused by the provider's
            bport = free_port()
            bad = frp.ours_frpc(frpc_config(
                port, block("visitors", name=f"bad{i}", type="xtcp", serverName="p2p", secretKey="wrong",
                            bindAddr="127.0.0.1", bindPort=bport),
                token=TOKEN, natHoleStunServer=stun_server.address))
            if _worker_of(frps, bad) != home:
                break
            bad.stop()
        else:
            pytest.skip("the kernel put every visitor client on the provider's worker")
        bad.wait_for_log(rf"\[bad{i}\] xtcp visitor listen", 10)
        try:  # a user connection makes the visitor ask for a hole
            got = tcp_roundtrip(bport, b"no hole for a wrong key", 5)
        except (OSError, TimeoutError):
            got = b""
        assert got == b""
        frps.wait_for_log(rf"@w{home}\] handle visitorMsg error: xtcp connection of \[p2p\] auth failed", 20)
    assert "Traceback" not in frps.log_text()


def test_keep_alive_http_connection_follows_its_requests_routes(frp) -> None:
    """One keep-alive connection asking for the routes of clients in both workers, one request at
    a time and pipelined: a request for another worker's route takes the connection there, after
    the answers so far (Go routes each request; we used to answer 404). And the streams of one
    cleartext HTTP/2 connection: each is relayed to its route's worker."""
    import socket

    from support.configs import block
    from support.procs import HttpServer

    http_port = free_port()
    backends: list[HttpServer] = []
    try:
        frps, port = start_frps(frp, extra=f'vhostHTTPPort = {http_port}\nlog.level = "debug"\n')
        where: dict[int, list[int]] = {}
        for i in range(20):  # clients until both workers have two routes (the kernel places each login)
            backends.append(HttpServer(body=f"backend {i}".encode()).start())
            c = frp.ours_frpc(frpc_config(port, block("proxies", name=f"web{i}", type="http", localIP="127.0.0.1",
                                                      localPort=backends[i].port,
                                                      customDomains=[f"k{i}.example.com"]), token=TOKEN))
            c.wait_for_proxies(f"web{i}", timeout=20)
            where.setdefault(_worker_of(frps, c), []).append(i)
            if len(where) == 2 and min(map(len, where.values())) >= 2:
                break
        if len(where) < 2:
            pytest.skip("the kernel put every client on one worker (SO_REUSEPORT hashing)")
        order = [i for pair in zip(*where.values(), strict=False) for i in pair] * 2  # alternate workers

        def request(i: int) -> bytes:
            return f"GET /ka HTTP/1.1\r\nHost: k{i}.example.com\r\n\r\n".encode()

        def answer(f) -> bytes:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = f.readline()
                assert line, head
                head += line
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            assert length is not None, head
            return f.read(int(length[1]))

        with socket.create_connection(("127.0.0.1", http_port), timeout=10) as s, s.makefile("rb") as f:
            for i in order:  # one at a time
                s.sendall(request(i))
                assert answer(f) == f"backend {i}".encode()
            s.sendall(b"".join(request(i) for i in order))  # pipelined
            assert [answer(f) for _ in order] == [f"backend {i}".encode() for i in order]
        frps.wait_for_log(r"@w\d\] http connection for host \[k\d\.example\.com\] handed to worker \d", 10)

        # cleartext HTTP/2: each stream of one connection goes to its route's worker (relayed)
        from support.h2client import H2Client

        for _ in range(3):  # the kernel picks the connection's worker: a few connections
            c = H2Client(http_port)
            try:
                sids = [c.request("GET", f"k{i}.example.com", "/h2") for i in order]
                bodies = [bytes(a.body) for a in c.wait(*sids)]
            finally:
                c.close()
            assert bodies == [f"backend {i}".encode() for i in order]
        frps.wait_for_log(r"@w\d\] http request for host \[k\d\.example\.com\] relayed to worker \d", 10)
        assert "Traceback" not in frps.log_text()
    finally:
        for b in backends:
            b.stop()


def _unknown_work_conn(port: int, tls: bool) -> str:
    """A NewWorkConn with an unknown run id on a new bind-port connection; StartWorkConn's error."""
    import socket
    import ssl

    from aiofrp.proto import msg as m

    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
    with sock:
        if tls:
            sock.sendall(b"\x17")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
        sock.sendall(m.encode(m.NewWorkConn(run_id="0123456789abcdef")))
        decoder = m.MsgDecoder()
        while (answer := decoder.next()) is None:
            chunk = sock.recv(4096)
            assert chunk, "closed without StartWorkConn"
            decoder.feed(chunk)
    assert isinstance(answer, m.StartWorkConn)
    return answer.error


def _get(url: str, auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    import base64
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: object, **k: object) -> None:
            return None

    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:s3cret").decode())
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def test_dashboard_adds_up_the_workers(frp) -> None:
    import json

    web = free_port()
    extra = (f'webServer.addr = "127.0.0.1"\nwebServer.port = {web}\nwebServer.user = "admin"\n'
             'webServer.password = "s3cret"\nenablePrometheus = true\n')
    with EchoServer() as echo:
        frps, port = start_frps(frp, extra=extra)
        frps.wait_for_log(r"dashboard listen on 127\.0\.0\.1:\d+ \(the 2 workers' figures added up\)", 5)
        remotes = [free_port() for _ in range(6)]
        clients = [frp.ours_frpc(frpc_config(port, tcp_proxy(f"echo{i}", echo.port, r), token=TOKEN))
                   for i, r in enumerate(remotes)]
        for i, c in enumerate(clients):
            c.wait_for_proxies(f"echo{i}", timeout=20)
        assert tcp_roundtrip(remotes[0], b"x" * 1000) == b"x" * 1000
        base = f"http://127.0.0.1:{web}"

        def info() -> dict | None:
            status, _, body = _get(base + "/api/serverinfo")
            return json.loads(body) if status == 200 else None
        poll(lambda: (info() or {}).get("clientCounts") == 6, 10, "6 clients in serverinfo")
        si = info()
        assert si is not None and si["proxyTypeCount"] == {"tcp": 6} and si["bindPort"] == port

        status, _, body = _get(base + "/api/proxy/tcp")
        proxies = json.loads(body)["proxies"]
        assert status == 200 and [p["name"] for p in proxies] == [f"echo{i}" for i in range(6)]
        assert {p["status"] for p in proxies} == {"online"}
        status, _, body = _get(base + "/api/proxy/tcp/echo3")
        assert status == 200 and json.loads(body)["name"] == "echo3"
        assert _get(base + "/api/proxy/tcp/nope")[0] == 404
        status, _, body = _get(base + "/api/traffic/echo0")
        assert status == 200 and len(json.loads(body)["trafficIn"]) == 7
        status, _, body = _get(base + "/api/clients")
        listed = json.loads(body)
        assert status == 200 and len(listed) == 6 and {c["worker"] for c in listed} <= {1, 2}

        status, _, body = _get(base + "/metrics")
        assert status == 200
        assert re.search(r"^frp_server_client_counts 6(\.0)?$", body.decode(), re.MULTILINE), body.decode()[:2000]
        assert body.decode().count("# TYPE frp_server_client_counts gauge") == 1

        assert _get(base + "/api/serverinfo", auth=False)[0] == 401
        assert _get(base + "/healthz", auth=False)[0] == 200
        status, headers, _ = _get(base + "/")
        assert status == 301 and headers["Location"] == "/static/"
        status, headers, body = _get(base + "/static/")
        assert status == 200 and b"<html" in body.lower()


def _worker_of(frps, frpc) -> int:
    run_id = frpc.wait_login(20)
    m = poll(lambda: re.search(rf"@w(\d)\] \[{run_id}\] client login info", frps.log_text()), 10,
             f"the login of {run_id} in the frps log")
    return int(m.group(1))


@pytest.mark.parametrize("wire", ["v1", "v2"])
def test_stcp_visitors_reach_providers_in_either_worker(frp, wire: str) -> None:
    """A visitor reaches a provider in its own worker directly and one in another worker through
    a socketpair handed to that worker (server/workers/handover.py), over either wire protocol
    (the provider's worker frames its answer as the visitor's); a wrong key is still refused."""
    from support.configs import block

    sk = "s3cret-key"
    with EchoServer() as echo:
        frps, port = start_frps(frp, extra='log.level = "debug"\n')
        provider = frp.ours_frpc(frpc_config(port, block("proxies", name="sec", type="stcp", localIP="127.0.0.1",
                                                         localPort=echo.port, secretKey=sk), token=TOKEN))
        provider.wait_for_proxies("sec", timeout=20)
        home = _worker_of(frps, provider)
        found: dict[bool, tuple[int, int]] = {}  # same worker? -> the visitor's local ports (right, wrong key)
        for i in range(20):
            vport, wport = free_port(), free_port()
            v = frp.ours_frpc(frpc_config(
                port,
                block("visitors", name=f"v{i}", type="stcp", serverName="sec", secretKey=sk, bindAddr="127.0.0.1",
                      bindPort=vport)
                + block("visitors", name=f"bad{i}", type="stcp", serverName="sec", secretKey="wrong",
                        bindAddr="127.0.0.1", bindPort=wport),
                token=TOKEN, extra=f'transport.wireProtocol = "{wire}"\n'))
            same = _worker_of(frps, v) == home
            if same in found:
                v.stop()
                continue
            v.wait_for_log(rf"\[bad{i}\] stcp visitor listen", 10)
            found[same] = (vport, wport)
            if len(found) == 2:
                break
        if len(found) < 2:
            pytest.skip("the kernel put every visitor client on one worker (SO_REUSEPORT hashing)")
        for same in (True, False):
            data = f"same worker: {same}".encode() * 1000
            assert tcp_roundtrip(found[same][0], data) == data
            try:
                got = tcp_roundtrip(found[same][1], b"wrong key", 5)
            except (ConnectionResetError, BrokenPipeError):
                got = b""
            assert got == b""
        # the lines come from two workers through the supervisor: wait for them (a deadline, not a read)
        frps.wait_for_log(rf"@w\d\] visitor connection for \[sec\] relayed to worker {home}", 10)
        frps.wait_for_log(re.escape("visitor connection of [sec] auth failed (visitor relayed from another worker)"), 10)


def _client_hello(name: str) -> bytes:
    """A real TLS ClientHello with SNI ``name`` (what the https vhost routes on)."""
    import ssl

    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def _http_get(port: int, host: str) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_vhost_connections_reach_the_worker_of_their_route(frp) -> None:
    """http, https (SNI) and tcpmux routes of clients in both workers answer whichever worker
    accepts the connection: one without the route hands it over (SCM_RIGHTS + the bytes read)."""
    import socket

    from support.configs import block
    from support.procs import HttpServer

    http_port, https_port, mux_port = free_port(), free_port(), free_port()
    extra = (f"vhostHTTPPort = {http_port}\nvhostHTTPSPort = {https_port}\ntcpmuxHTTPConnectPort = {mux_port}\n"
             'log.level = "debug"\n')
    with EchoServer() as echo, HttpServer(body=b"hello from the backend") as web:
        frps, port = start_frps(frp, extra=extra)
        clients = []
        for i in range(4):
            text = (block("proxies", name=f"web{i}", type="http", localIP="127.0.0.1", localPort=web.port,
                          customDomains=[f"w{i}.example.com"])
                    + block("proxies", name=f"tls{i}", type="https", localIP="127.0.0.1", localPort=echo.port,
                            customDomains=[f"s{i}.example.com"])
                    + block("proxies", name=f"mux{i}", type="tcpmux", multiplexer="httpconnect",
                            localIP="127.0.0.1", localPort=echo.port, customDomains=[f"t{i}.example.com"]))
            clients.append(frp.ours_frpc(frpc_config(port, text, token=TOKEN)))
        for i, c in enumerate(clients):
            c.wait_for_proxies(f"web{i}", f"tls{i}", f"mux{i}", timeout=20)
        workers = {_worker_of(frps, c) for c in clients}
        for _ in range(3):  # new connections: the kernel picks a worker for each
            for i in range(4):
                resp = _http_get(http_port, f"w{i}.example.com")
                assert resp.startswith(b"HTTP/1.1 200") and resp.endswith(b"hello from the backend"), resp[:200]
                hello = _client_hello(f"s{i}.example.com")
                assert tcp_roundtrip(https_port, hello) == hello
                with socket.create_connection(("127.0.0.1", mux_port), timeout=5) as s:
                    s.sendall(f"CONNECT t{i}.example.com:80 HTTP/1.1\r\nHost: t{i}.example.com:80\r\n\r\n".encode())
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = s.recv(4096)
                        assert chunk, head
                        head += chunk
                    assert head.startswith(b"HTTP/1.1 200"), head
                    rest = head.split(b"\r\n\r\n", 1)[1]
                    s.sendall(b"through tcpmux")
                    while len(rest) < len(b"through tcpmux"):
                        rest += s.recv(4096)
                    assert rest == b"through tcpmux"
        assert b"404" in _http_get(http_port, "nobody.example.com")[:20]
        # 36 connections spread by the kernel over 2 workers, the routes of 4 clients: some
        # reached a worker without their route (unless every client and connection hit one worker)
        text = frps.log_text()
        handed = re.findall(r"@w(\d)\] (http|https|tcpmux) connection for host \[\S+\] handed to worker (\d)", text)
        assert len(workers) == 1 or handed, "no connection was handed over"
        assert {k for _, k, _ in handed} <= {"http", "https", "tcpmux"}
        assert all(src != dst for src, _, dst in handed)


def test_kcp_and_quic_clients_in_both_workers(frp) -> None:
    """kcpBindPort and quicBindPort are SO_REUSEPORT UDP sockets in every worker: the kernel hashes
    a client's address to one worker, so each KCP/QUIC session stays in the worker it reached."""
    kcp, quic = free_port(), free_port()
    with EchoServer() as echo:
        frps, _ = start_frps(frp, extra=f"kcpBindPort = {kcp}\nquicBindPort = {quic}\n")
        assert frps.log_text().count("frps kcp listen on udp") == 2  # one per worker
        remotes = [free_port() for _ in range(6)]
        clients = []
        for i, r in enumerate(remotes):
            proto = "kcp" if i % 2 == 0 else "quic"
            server_port = kcp if proto == "kcp" else quic
            clients.append(frp.ours_frpc(frpc_config(server_port, tcp_proxy(f"p{i}", echo.port, r), token=TOKEN,
                                                     extra=f'transport.protocol = "{proto}"\n')))
        for i, c in enumerate(clients):
            c.wait_for_proxies(f"p{i}", timeout=30)
        for i, r in enumerate(remotes):
            data = f"over {'kcp' if i % 2 == 0 else 'quic'} {i}".encode() * 2000
            assert tcp_roundtrip(r, data, 20) == data


def test_log_file_written_by_the_supervisor_alone(frp) -> None:
    """log.to a file: the workers log to the supervisor, which writes every line into the one
    file (one process rotates it), the workers' with their @wN tag."""
    port = free_port()
    frps = frp.ours_frps(frps_config(port, token=TOKEN, extra='log.to = "frps-file.log"\n'),
                         args=["--workers", "2"])
    path = frps.workdir / "frps-file.log"
    poll(lambda: path.exists() and "frps started successfully with 2 workers" in path.read_text(), 20,
         "the supervisor's start line in the log file")
    with EchoServer() as echo:
        remote = free_port()
        frpc = frp.ours_frpc(frpc_config(port, tcp_proxy("logged", echo.port, remote), token=TOKEN))
        frpc.wait_for_proxies("logged", timeout=20)
        poll(lambda: re.search(r"@w[12]\] \[\w+\] \[logged\] tcp proxy listen port", path.read_text()), 10,
             "the worker's line in the log file")
    text = path.read_text()
    for w in (1, 2):
        assert re.search(rf"^\S+ \S+ \[I\] \[server@w{w}\] frps started successfully$", text, re.MULTILINE), text
    assert "Traceback" not in text and "@w" not in frps.log_text()


def test_failed_login_lines_still_match_the_fail2ban_filter(frp) -> None:
    """A worker's tag goes after the component, so README's fail2ban failregex still matches."""
    frps, port = start_frps(frp)
    frp.ours_frpc(frpc_config(port, token="wrong-token"))
    line = poll(lambda: re.search(r"^.*login from .* failed: .*$", frps.log_text(), re.MULTILINE), 15,
                "a failed login line")
    failregex = r"^\s*\[[WE]\] \[[^\]]+\] (?:login|connection) from \[?(?P<ADDR>[^\]\s]+?)\]?:\d+ failed: "
    rest = line.group(0).split(" ", 2)[2]  # fail2ban strips the date and time
    assert re.search(r"@w[12]\]", rest) and re.match(failregex, rest), rest


def test_ssh_gateway_in_every_worker(frp, tmp_path) -> None:
    """sshTunnelGateway.bindPort in every worker (SO_REUSEPORT), one host key made by the
    supervisor (autoGenPrivateKeyPath): ssh tunnels work whichever worker takes them."""
    from support.ssh import SSHTunnel, keygen

    user_key = keygen(tmp_path, "alice", "alice")
    ssh_port = free_port()
    key_path = tmp_path / "autogen_key"
    frps, _ = start_frps(frp, token=None, extra=f'sshTunnelGateway.bindPort = {ssh_port}\n'
                                                f'sshTunnelGateway.autoGenPrivateKeyPath = "{key_path}"\n')
    assert key_path.exists() and frps.log_text().count("frps sshTunnelGateway listen on port") == 2
    with EchoServer() as echo:
        tunnels = []
        remotes = [free_port() for _ in range(4)]
        try:
            for i, r in enumerate(remotes):
                t = SSHTunnel(tmp_path, ssh_port, user_key, f"tcp --remote_port {r} --proxy_name s{i}", echo.port)
                tunnels.append(t)
                t.wait_output(f"RemoteAddress: :{r}\n\n")
            for r in remotes:
                assert tcp_roundtrip(r, b"via ssh") == b"via ssh"
        finally:
            for t in tunnels:
                t.stop()


def test_workers_exit_when_the_supervisor_is_killed(frp) -> None:
    """SIGKILL to the supervisor alone: its workers notice the registry socket closing, exit and
    remove the supervisor's directory of unix sockets."""
    frps, _ = start_frps(frp)
    pids = worker_pids(frps)
    assert frps.pid is not None
    cmdline = Path(f"/proc/{pids[1]}/cmdline").read_bytes().split(b"\0")
    registry = cmdline[cmdline.index(b"--registry") + 1].decode()
    assert os.path.exists(registry)
    os.kill(frps.pid, signal.SIGKILL)
    poll(lambda: not any(_alive(p) for p in pids.values()), 10, "the workers to exit")
    poll(lambda: not os.path.exists(os.path.dirname(registry)), 5, "the socket directory removed")
