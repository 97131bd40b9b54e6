"""frps's SSH tunnel gateway end to end: our frps as a real process, the real OpenSSH client.

``ssh -R :80:127.0.0.1:LOCAL v0@127.0.0.1 -p SSHPORT tcp|http ...`` makes a proxy without frpc:
an echo through a tcp proxy, an HTTP site through the vhost, a key refused by
``authorizedKeysFile``, the proxy gone when ssh ends, frp's token checked when ssh has no auth, a
stalled handshake closed after the timeout while another ssh user works, the host key generated
at ``autoGenPrivateKeyPath`` and kept. The text ssh prints is compared with Go frps 0.65 in
tests/compat/test_go_ssh_gateway.py.
"""

from __future__ import annotations

import os
import socket
import stat
import time
import urllib.request
from pathlib import Path

import pytest
from support.configs import block, frpc_config
from support.ports import LOCALHOST, free_port
from support.processes import FrpLauncher, FrpProcess
from support.services import TEST_STRING, EchoServer, HttpServer, tcp_roundtrip
from support.ssh import SSHTunnel, keygen, ssh_run
from support.waits import poll, refused

pytestmark = pytest.mark.timeout(120)

HANDSHAKE_TIMEOUT = 10  # server/sshgw/__init__.py: HANDSHAKE_TIMEOUT


def success_block(user: str, name: str, kind: str, remote: str) -> str:
    return f"\nfrp (via SSH) (Ctrl+C to quit)\n\nUser: {user}\nProxyName: {name}\nType: {kind}\nRemoteAddress: {remote}\n\n"


def start_frps(frp: FrpLauncher, tmp_path: Path, *, extra: str = "") -> tuple[FrpProcess, int, int]:
    """Our frps with the gateway (an ed25519 host key from ssh-keygen); returns it, bind, ssh port."""
    host_key = tmp_path / "host_key"
    if not host_key.exists():
        keygen(tmp_path, "host_key")
    bind, ssh_port = free_port(), free_port()
    frps = frp.ours_frps(
        f'bindAddr = "{LOCALHOST}"\nbindPort = {bind}\n'
        f"sshTunnelGateway.bindPort = {ssh_port}\n"
        f'sshTunnelGateway.privateKeyFile = "{host_key}"\n' + extra
    )
    frps.wait_for_log(r"frps started successfully", 20)
    frps.wait_for_log(rf"frps sshTunnelGateway listen on port {ssh_port}", 1)
    return frps, bind, ssh_port


@pytest.fixture
def user_key(tmp_path: Path) -> Path:
    return keygen(tmp_path, "alice", "alice")


def test_tcp_echo_and_proxy_gone_when_ssh_ends(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    frps, _, ssh_port = start_frps(frp, tmp_path)
    remote = free_port()
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key,
                                         f"tcp --remote_port {remote} --proxy_name t1", echo.port) as ssh:
        out = ssh.wait_output(f"RemoteAddress: :{remote}\n\n")
        assert out == success_block("", "t1", "tcp", f":{remote}")
        assert tcp_roundtrip(remote, TEST_STRING) == TEST_STRING
        big = os.urandom(1 << 20)
        assert tcp_roundtrip(remote, big, timeout=30) == big
        assert echo.connections == 2
        frps.wait_for_log(r"new proxy \[t1\] type \[tcp\] success", 5)
        mark = frps.mark()
        ssh.stop()
        poll(lambda: refused(remote), 10, "the proxy's port closed after ssh ended")
        frps.wait_for_log(r"client exit success", 10, since=mark)


def test_http_custom_domain_via_vhost(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    vhost = free_port()
    _, _, ssh_port = start_frps(frp, tmp_path, extra=f"vhostHTTPPort = {vhost}\n")
    with HttpServer() as site, SSHTunnel(tmp_path, ssh_port, user_key,
                                         "http --custom_domain web.example.com -n web -u bob", site.port) as ssh:
        out = ssh.wait_output(f"RemoteAddress: web.example.com:{vhost}\n\n")
        assert out == success_block("bob", "bob.web", "http", f"web.example.com:{vhost}")
        req = urllib.request.Request(f"http://{LOCALHOST}:{vhost}/hello", headers={"Host": "web.example.com"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
            assert resp.read() == TEST_STRING
        assert site.requests[-1].path == "/hello"


def test_authorized_keys_refuse_other_keys(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    other = keygen(tmp_path, "mallory", "mallory")
    keys = tmp_path / "authorized_keys"
    keys.write_text("# the gateway's users\n" + Path(f"{user_key}.pub").read_text())
    frps, _, ssh_port = start_frps(frp, tmp_path, extra=f'sshTunnelGateway.authorizedKeysFile = "{keys}"\n')
    r = ssh_run(ssh_port, other, "tcp -n refused")
    assert r.returncode == 255
    assert r.stdout == ""
    assert "Permission denied (publickey)" in r.stderr
    frps.wait_for_log(r"ssh tunnel server run error: \[ssh: no auth passed yet, unknown public key for "
                      r'remoteAddr "127\.0\.0\.1:\d+"\]', 10)
    assert "refused" not in frps.log_text()
    # the listed key logs in; its comment is the frp user, whatever --user says (as Go)
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key, "tcp -n ok -u carol", echo.port) as ssh:
        ssh.wait_output("RemoteAddress: :")
        ssh.wait_output("\n\n")
        assert ssh.field("User") == "alice"
        assert ssh.field("ProxyName") == "alice.ok"
        port = int(ssh.field("RemoteAddress").rsplit(":", 1)[1])
        assert tcp_roundtrip(port, TEST_STRING) == TEST_STRING


def test_token_checked_without_authorized_keys(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    frps, _, ssh_port = start_frps(frp, tmp_path, extra='auth.token = "s3cret"\n')
    r = ssh_run(ssh_port, user_key, "tcp --token wrong")
    assert r.stdout == (
        "login to the server failed: token in login doesn't match token from configuration. "
        "With loginFailExit enabled, no additional retries will be attempted\n"
    )
    assert r.returncode == 255
    # a plain TCP close, no SSH disconnect message (as Go); ssh words it by what it was doing then
    assert "closed by remote host" in r.stderr or "send disconnect: Broken pipe" in r.stderr, r.stderr
    frps.wait_for_log(r"login from 127\.0\.0\.1:\d+ failed: token in login doesn't match", 5)
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key, "tcp -t s3cret -n tok", echo.port) as ssh:
        ssh.wait_output("\n\n", 20)
        ssh.wait_output("RemoteAddress: :")
        port = int(ssh.field("RemoteAddress").rsplit(":", 1)[1])
        assert tcp_roundtrip(port, TEST_STRING) == TEST_STRING


def test_command_errors_and_usage(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    frps, _, ssh_port = start_frps(frp, tmp_path)
    r = ssh_run(ssh_port, user_key, "udp")
    assert r.stdout == "invalid proxy type: udp, support types: [tcp http https tcpmux stcp]\n"
    assert r.returncode == 255
    r = ssh_run(ssh_port, user_key, "tcp --remote_port x")
    assert r.stdout == (
        'invalid argument "x" for "-r, --remote-port" flag: strconv.ParseInt: parsing "x": invalid syntax\n'
    )
    frps.wait_for_log(r"ssh tunnel server run error: parse flags from ssh client error: invalid argument", 5)
    r = ssh_run(ssh_port, user_key, "tcp --help")
    assert r.stdout.startswith("Usage:\n  ssh v0@{address} [command] [flags]\n\nFlags:\n")
    assert "  -r, --remote-port int              remote port\n" in r.stdout
    # no -R forward, or no command: closed after Go's 3 s wait, nothing printed
    r = ssh_run(ssh_port, user_key, "tcp", forward=None)
    assert (r.stdout, r.returncode) == ("", 255)
    frps.wait_for_log(r"ssh tunnel server run error: get addr and extra payload timeout", 5)


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return False
    except OSError:
        return True
    while data:  # the server's banner may come first
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return False
        except OSError:
            return True
    return True


def test_stalled_handshake_and_garbage_closed_other_users_undisturbed(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    frps, _, ssh_port = start_frps(frp, tmp_path)
    silent = socket.create_connection((LOCALHOST, ssh_port), timeout=0.2)
    partial = socket.create_connection((LOCALHOST, ssh_port), timeout=0.2)
    partial.sendall(b"SSH-2.0-Op")  # half a banner, then nothing
    started = time.monotonic()
    for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"SSH-2.0-x\r\n" + os.urandom(3000)):
        with socket.create_connection((LOCALHOST, ssh_port), timeout=5) as bad:
            bad.sendall(garbage)
            poll(lambda b=bad: _closed_by_peer(b), 5, "a connection sending garbage closed at once")
    try:
        with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key, "tcp -n meanwhile", echo.port) as ssh:
            ssh.wait_output("\n\n", 20)
            port = int(ssh.field("RemoteAddress").rsplit(":", 1)[1])
            assert tcp_roundtrip(port, TEST_STRING) == TEST_STRING
            for sock in (silent, partial):
                poll(lambda s=sock: _closed_by_peer(s), HANDSHAKE_TIMEOUT + 10, "the stalled connection closed")
            assert time.monotonic() - started >= HANDSHAKE_TIMEOUT - 1
            # the logged-in user is not affected by the timeouts
            assert tcp_roundtrip(port, TEST_STRING) == TEST_STRING
            assert ssh.proc.poll() is None
    finally:
        silent.close()
        partial.close()
    text = frps.log_text()
    assert text.count(f"not finished within {HANDSHAKE_TIMEOUT}s, closed") == 2, text
    assert "failed: Unsupported SSH version" in text
    assert text.count("ssh tunnel server run error: ssh handshake with 127.0.0.1:") == 4, text
    assert "Traceback" not in text


def test_auto_generated_host_key_is_kept(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    key_path = tmp_path / "autogen_key"
    ssh_port = free_port()
    conf = (f'bindAddr = "{LOCALHOST}"\nbindPort = {free_port()}\nsshTunnelGateway.bindPort = {ssh_port}\n'
            f'sshTunnelGateway.autoGenPrivateKeyPath = "{key_path}"\n')
    frps = frp.ours_frps(conf)
    frps.wait_for_log(r"frps started successfully", 30)
    pem = key_path.read_bytes()
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")  # Go: RSA 2048, PKCS#1 PEM
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    r = ssh_run(ssh_port, user_key, "tcp --bogus")
    assert r.stdout == "unknown flag: --bogus\n"
    frps.stop()
    frps2 = frp.ours_frps(conf)
    frps2.wait_for_log(r"frps started successfully", 30)
    assert key_path.read_bytes() == pem  # read back, not generated again


@pytest.mark.parametrize("bind", ["127.0.0.1:{port}", "{port}", "0"])
def test_forward_address_opens_nothing_on_the_server(frp: FrpLauncher, tmp_path: Path, user_key: Path,
                                                     bind: str) -> None:
    """The -R address only names the forward (Go never listens on it): nothing listens there on
    the frps host, and the proxy works; "-R 0:..." (a port to allocate) works too."""
    _, _, ssh_port = start_frps(frp, tmp_path)
    asked = free_port()
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key, "tcp -n f", echo.port,
                                         bind=bind.format(port=asked)) as ssh:
        ssh.wait_output("\n\n", 20)
        port = int(ssh.field("RemoteAddress").rsplit(":", 1)[1])
        assert tcp_roundtrip(port, TEST_STRING) == TEST_STRING
        if bind != "0":
            assert refused(asked)


def test_stcp_through_gateway_with_frpc_visitor(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    """Go's e2e case: an stcp proxy made over ssh, reached through an ordinary frpc visitor."""
    _, bind, ssh_port = start_frps(frp, tmp_path)
    visitor_port = free_port()
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key,
                                         'stcp -n stcp-test --sk=abcdefg --allow-users="*"', echo.port) as ssh:
        ssh.wait_output("\n\n", 20)
        assert ssh.field("ProxyName") == "stcp-test"
        frpc = frp.ours_frpc(frpc_config(bind, extra=block(
            "visitors", name="v", type="stcp", serverName="stcp-test", secretKey="abcdefg", bindPort=visitor_port)))
        frpc.wait_login(20)
        poll(lambda: tcp_roundtrip(visitor_port, TEST_STRING) == TEST_STRING, 20, "an echo through the visitor")


def test_tcpmux_through_gateway(frp: FrpLauncher, tmp_path: Path, user_key: Path) -> None:
    mux = free_port()
    _, _, ssh_port = start_frps(frp, tmp_path, extra=f"tcpmuxHTTPConnectPort = {mux}\n")
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key,
                                         "tcpmux --mux=httpconnect --custom-domain m.example.com", echo.port) as ssh:
        ssh.wait_output("\n\n", 20)
        with socket.create_connection((LOCALHOST, mux), timeout=10) as c:
            c.sendall(b"CONNECT m.example.com:443 HTTP/1.1\r\nHost: m.example.com:443\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head
            rest = head.split(b"\r\n\r\n", 1)[1]
            c.sendall(TEST_STRING)
            while len(rest) < len(TEST_STRING):
                chunk = c.recv(4096)
                assert chunk
                rest += chunk
            assert rest == TEST_STRING


def test_duplicate_name_ssh_killed_mid_transfer_and_frps_stop(frp: FrpLauncher, tmp_path: Path,
                                                             user_key: Path) -> None:
    frps, _, ssh_port = start_frps(frp, tmp_path)
    with EchoServer() as echo, SSHTunnel(tmp_path, ssh_port, user_key, "tcp -n dup", echo.port) as first:
        first.wait_output("\n\n", 20)
        port = int(first.field("RemoteAddress").rsplit(":", 1)[1])
        r = ssh_run(ssh_port, user_key, "tcp -n dup", local_port=echo.port)
        assert (r.stdout, r.returncode) == ("proxy [dup] already exists\n", 255)
        # the ssh user vanishes while a visitor's transfer is under way: only that relay ends
        with socket.create_connection((LOCALHOST, port), timeout=10) as c:
            c.sendall(os.urandom(1 << 20))
            assert c.recv(1)
            first.proc.kill()
            first.proc.wait(5)
            poll(lambda: refused(port), 10, "the proxy gone with the killed ssh")
        with SSHTunnel(tmp_path, ssh_port, user_key, "tcp -n after", echo.port) as second:
            second.wait_output("\n\n", 20)
            port2 = int(second.field("RemoteAddress").rsplit(":", 1)[1])
            assert tcp_roundtrip(port2, TEST_STRING) == TEST_STRING
            frps.stop()  # frps shutting down ends the ssh sessions
            assert second.wait_exit(10) == 255
    text = frps.log_text()
    assert "Traceback" not in text and "internal error" not in text, text


def test_unreadable_host_key_stops_frps(frp: FrpLauncher, tmp_path: Path) -> None:
    """As Go: a privateKeyFile that cannot be read stops frps with Go's text, then the config key."""
    frps = frp.ours_frps(f'bindAddr = "{LOCALHOST}"\nbindPort = {free_port()}\n'
                         f"sshTunnelGateway.bindPort = {free_port()}\n"
                         f'sshTunnelGateway.privateKeyFile = "{tmp_path / "missing"}"\n')
    assert frps.wait_exit(30) == 1
    text = frps.log_text()
    assert (f"create ssh gateway error: open {tmp_path / 'missing'}: no such file or directory "
            "(sshTunnelGateway.privateKeyFile)") in text
    assert "create server listener error" not in text  # Go's line as it is, not wrapped
    assert "Traceback" not in text
