"""The README's examples, run as a user would run them after copying them.

Every config and shell block marked ``<!-- readme-test: NAME -->`` in README.md is extracted here,
written to files under the test's directory and run: config files as they are, shell blocks line by
line (long-running ``frps``/``frpc`` lines as processes) or whole with bash.  The only changes are
for a shared test machine: ``x.x.x.x`` (the server's address) becomes ``127.0.0.1`` and each port the
README uses is swapped for a free one, in configs and commands alike.  Commands the test machine
lacks (ssh) are replaced by the equivalent check (an echo through the same port).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.procs import (
    TEST_STRING,
    EchoServer,
    FrpProcess,
    HttpServer,
    UdpEchoServer,
    free_port,
    udp_roundtrip,
)
from support.stun import StunServer
from support.waits import echo_ok, poll, refused

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_MARK = re.compile(r"^(?P<indent>[ \t]*)<!-- readme-test: (?P<name>\S+) -->\n(?P=indent)```\w*\n", re.MULTILINE)


def readme_blocks() -> dict[str, str]:
    """Every marked block of README.md by name (indentation of list items removed)."""
    text = README.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for m in _MARK.finditer(text):
        end = text.index(f"\n{m['indent']}```", m.end() - 1)
        out[m["name"]] = textwrap.dedent(text[m.end():end + 1])
    return out


BLOCKS = readme_blocks()


class Example:
    """README blocks with the server address and ports remapped, written into ``workdir``."""

    def __init__(self, workdir: Path, ports: dict[int, int], extra: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.ports = ports
        self.extra = {"x.x.x.x": "127.0.0.1", **(extra or {})}
        self.bin = _shims(workdir)

    def text(self, name: str) -> str:
        t = BLOCKS[name]
        for old, new in self.extra.items():
            t = t.replace(old, new)
        for old_port, new_port in self.ports.items():
            t = re.sub(rf"(?<![\d.]){old_port}(?!\d)", str(new_port), t)
        return t

    def write(self, name: str, filename: str | None = None) -> Path:
        path = self.workdir / (filename or name.rsplit("/", 1)[-1])
        path.write_text(self.text(name))
        return path

    def commands(self, name: str) -> list[str]:
        """The block's command lines, comments stripped."""
        lines = []
        for line in self.text(name).splitlines():
            cmd = re.sub(r"\s+#.*$", "", line).strip()
            if cmd and not cmd.startswith("#"):
                lines.append(cmd)
        return lines

    def start(self, frp, command: str) -> FrpProcess:
        """A long-running ``frps``/``frpc``/``frp`` line as a process (in ``workdir``)."""
        argv = shlex.split(command)
        p = FrpProcess([str(self.bin / argv[0])], None, name=f"{argv[0]}-{len(frp.processes)}",
                       workdir=self.workdir, args=argv[1:])
        frp.processes.append(p)
        return p.start()

    def run(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(["bash", "-c", command], cwd=self.workdir, env=self.env(), capture_output=True,
                             text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        if check:
            assert res.returncode == 0, (command, res)
        return res

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}

    def script(self, name: str, timeout: float = 60) -> str:
        """Run the whole block with bash; when it is done, kill what it left in the background (its
        process group) and return everything printed (the servers' logs included, as on a terminal)."""
        path = self.write(name, name.replace("/", "-"))
        out_path = path.with_suffix(".out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(["bash", str(path)], cwd=self.workdir, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, stdin=subprocess.DEVNULL)
            try:
                proc.wait(timeout)
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        return out_path.read_text(errors="replace")


def _shims(workdir: Path) -> Path:
    """``frps``, ``frpc`` and ``frp`` commands running this checkout with this interpreter."""
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    for cmd in ("frps", "frpc", "frp"):
        shim = bindir / cmd
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiofrp.cli.{cmd} "$@"\n')
        shim.chmod(0o755)
    return bindir


def ports(*readme_ports: int, **fixed: int) -> dict[int, int]:
    return {p: free_port() for p in readme_ports} | {int(k[1:]): v for k, v in fixed.items()}


def test_every_marked_block_is_used() -> None:
    """Marks and this file stay in step (a renamed or new block fails here)."""
    used = {name for f in Path(__file__).parent.glob("test_readme*.py")  # this file and test_readme_*.py
            for name in re.findall(
                r'"((?:tcp|stcp|xtcp|http|shared|lb|pp|oidc|plugins|sshgw|reach|transports|dashboard|config|quick|cli|admin)'
                r'/[\w.-]+)"', f.read_text())}
    assert set(BLOCKS) == used


# -- Exposing a TCP service, checking configs and status -----------------------------------------


def test_tcp_example_status_and_verify(frp, tmp_path: Path) -> None:
    with EchoServer() as echo:
        ex = Example(tmp_path, ports(7000, 6000, 7400, p22=echo.port))
        ex.write("tcp/frps.toml")
        frpc_toml = ex.text("tcp/frpc.toml")
        # the admin block goes before the first [[proxies]], as the README says
        i = frpc_toml.index("[[proxies]]")
        (tmp_path / "frpc.toml").write_text(frpc_toml[:i] + ex.text("tcp/admin.toml") + "\n" + frpc_toml[i:])
        frps_line, frpc_line, ssh_line = ex.commands("tcp/run.sh")
        assert ssh_line.startswith("ssh -p ")
        ex.start(frp, frps_line).wait_for_log("frps started successfully")
        ex.start(frp, frpc_line).wait_for_proxies("ssh")
        remote = ex.ports[6000]
        assert echo_ok(remote)  # what `ssh -p 6000 user@x.x.x.x` reaches

        for line in ex.commands("tcp/verify.sh"):
            res = ex.run(line)
            assert "syntax is ok" in res.stdout, res

        status_line, curl_line, *_ = ex.commands("tcp/status.sh")
        res = ex.run(status_line)
        row = rf"^ssh\s+running\s+127\.0\.0\.1:{echo.port}\s+127\.0\.0\.1:{remote}\s*$"
        assert re.search(row, res.stdout, re.MULTILINE), res
        expected = next(ln for ln in ex.text("tcp/status.sh").splitlines() if ln.startswith("# {"))[2:]
        assert ex.run(curl_line).stdout.strip() == expected


# -- udp, stcp, sudp ----------------------------------------------------------------------------


def test_udp_stcp_sudp_example(frp, tmp_path: Path) -> None:
    with UdpEchoServer() as uecho, HttpServer() as web:
        ex = Example(tmp_path, ports(7000, 6000, 9080, 9053, p9000=uecho.port, p8080=web.port))
        ex.write("tcp/frps.toml")
        ex.write("stcp/frpc.toml")
        ex.write("stcp/visitor.toml")
        ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
        alice_line, bob_line = ex.commands("stcp/run.sh")
        ex.start(frp, alice_line).wait_for_proxies("alice.echo-udp", "alice.web", "alice.echo-sudp")
        ex.start(frp, bob_line).wait_login()
        assert udp_roundtrip(ex.ports[6000], b"udp hello", 5, attempts=5) == b"udp hello"
        res = poll(lambda: ex.run(f"curl -s http://127.0.0.1:{ex.ports[9080]}/", check=False), 10, "stcp")
        assert res.stdout.encode() == TEST_STRING
        assert udp_roundtrip(ex.ports[9053], b"sudp hello", 10, attempts=10) == b"sudp hello"


# -- xtcp ---------------------------------------------------------------------------------------


def _stun_from_readme(ex: Example) -> tuple[subprocess.Popen[str], str]:
    """The README's STUN command, run in the repository (``.venv/bin/python``: this interpreter)."""
    (line,) = [" ".join(ex.text("xtcp/stun.sh").replace("\\\n", " ").split())]
    line = line.replace(".venv/bin/python", shlex.quote(sys.executable))
    proc = subprocess.Popen(["bash", "-c", line], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", address), address
    return proc, address


def test_xtcp_example(frp, tmp_path: Path) -> None:
    with EchoServer() as echo:
        ex = Example(tmp_path, ports(7000, 6000, p22=echo.port))
        stun, address = _stun_from_readme(ex)
        try:
            ex.extra["127.0.0.1:3478"] = address
            ex.write("tcp/frps.toml")
            ex.write("xtcp/provider.toml")
            ex.write("xtcp/visitor.toml")
            ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
            provider_line, visitor_line, ssh_line = ex.commands("xtcp/run.sh")
            assert ssh_line.startswith("ssh -p ")
            ex.start(frp, provider_line).wait_for_proxies("ssh-p2p", "ssh-stcp")
            visitor = ex.start(frp, visitor_line)
            visitor.wait_login()
            poll(lambda: echo_ok(ex.ports[6000]), 20, "echo through the xtcp visitor")
        finally:
            os.killpg(stun.pid, signal.SIGKILL)
            stun.wait(5)


def test_readme_stun_helper_is_a_stun_server() -> None:
    """(The helper the README points to is the tests' own responder.)"""
    with StunServer() as s:
        assert re.fullmatch(r"127\.0\.0\.1:\d+", s.address)


# -- http, https, tcpmux ------------------------------------------------------------------------


class _TlsService:
    """A local HTTPS service with a self-signed certificate answering every request with TEST_STRING."""

    def __init__(self) -> None:
        from aiofrp.net.tls import self_signed_pair

        cert, key = self_signed_pair()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="aiofrp-readme-") as tmp:  # only while loading
            d = Path(tmp)
            (d / "c.pem").write_bytes(cert)
            (d / "k.pem").write_bytes(key)
            self.ctx.load_cert_chain(d / "c.pem", d / "k.pem")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        try:
            c.settimeout(10)
            with self.ctx.wrap_socket(c, server_side=True) as t:
                t.recv(65536)
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(TEST_STRING)
                          + TEST_STRING)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_service() -> Iterator[_TlsService]:
    s = _TlsService()
    yield s
    s.close()


def test_http_https_tcpmux_example(frp, tmp_path: Path, tls_service: _TlsService) -> None:
    with HttpServer() as web:
        ex = Example(tmp_path, ports(7000, 8080, 8443, 5002, p8000=web.port, p9443=tls_service.port))
        ex.write("http/frps.toml")
        ex.write("http/frpc.toml")
        ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
        ex.start(frp, "frpc -c frpc.toml").wait_for_proxies("web", "private", "secure", "intranet")
        lines = ex.commands("http/run.sh")
        assert len(lines) == 5
        for line in lines:
            if "https://" in line:
                line = line.replace("curl ", "curl -k ", 1)  # the README's "# -k if self-signed"
            res = ex.run(f"{line} --max-time 10 -s -S -D /dev/stderr")
            assert res.stdout.encode() == TEST_STRING, (line, res)
        # the basic auth of "private" is really there
        assert "401" in ex.run(f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: private.example.com' "
                               f"http://127.0.0.1:{ex.ports[8080]}/").stdout
        assert web.requests[0].headers.get("Host") == "internal.local"


def test_shared_bind_port_example(frp, tmp_path: Path) -> None:
    ex = Example(tmp_path, ports(443))
    ex.write("shared/frps.toml")
    ex.write("shared/frpc.toml")
    ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
    ex.start(frp, "frpc -c frpc.toml").wait_login()


# -- load balancing, health checks, PROXY protocol, bandwidth ----------------------------------


def test_load_balancing_example(tmp_path: Path) -> None:
    ex = Example(tmp_path, ports(7000, 8080, 8001, 8002, 6000))
    for name in ("lb/frps.toml", "lb/frpc-a.toml", "lb/frpc-b.toml"):
        ex.write(name)
    out = [ln for ln in ex.script("lb/run.sh", timeout=90).splitlines() if ln in ("A", "B")]  # curl's lines
    assert len(out) == 12, out
    http1, tcp, http2 = out[:4], out[4:8], out[8:]
    for seq in (http1, tcp):  # the members in turn
        assert sorted(seq) == ["A", "A", "B", "B"] and seq[0] != seq[1] and seq[:2] == seq[2:], out
    assert http2 == ["B", "B", "B", "B"], out  # backend A stopped: its health check takes it off


def test_proxy_protocol_and_bandwidth_example(frp, tmp_path: Path) -> None:
    ex = Example(tmp_path, ports(7000, 8080, 9000, 6001, 6002, 8003))
    ex.write("lb/frps.toml")
    ex.write("pp/frpc-pp.toml")
    ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
    out = ex.script("pp/run.sh", timeout=90)
    assert re.search(rf"b'PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ {ex.ports[6001]}\\r\\n", out), out
    m = re.search(r"^(\d+) bytes in ([\d.]+) s$", out, re.MULTILINE)
    assert m and int(m[1]) == 600000, out
    assert 3.5 < float(m[2]) < 15, out  # (600000 - 102400) bytes at 102400 B/s is 4.9 s


# -- transports -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["kcp", "quic", "websocket", "wss"])
def test_transports_example(frp, tmp_path: Path, protocol: str) -> None:
    with EchoServer() as echo:
        ex = Example(tmp_path, ports(7000, 7001, 6000, p22=echo.port))
        ex.write("transports/frps.toml")
        text = ex.text("transports/frpc.toml").replace('protocol = "kcp"', f'protocol = "{protocol}"')
        if protocol == "quic":
            text = text.replace(f"serverPort = {ex.ports[7000]}", f"serverPort = {ex.ports[7001]}")
        (tmp_path / "frpc.toml").write_text(text)
        ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
        ex.start(frp, "frpc -c frpc.toml").wait_for_proxies("ssh", timeout=20)
        assert echo_ok(ex.ports[6000])


# -- config files, quick mode --------------------------------------------------------------------


def test_template_example(tmp_path: Path) -> None:
    ex = Example(tmp_path, {})
    path = ex.write("config/template.toml", "frpc.toml")
    res = ex.run(f"FRP_SERVER=127.0.0.1 frpc verify -c {path}")
    assert "syntax is ok" in res.stdout
    from aiofrp.config import load_client_config

    os.environ["FRP_SERVER"] = "127.0.0.1"
    try:
        cfg = load_client_config(str(path))
    finally:
        del os.environ["FRP_SERVER"]
    assert cfg.server_addr == "127.0.0.1"
    assert [(p.name, p.local_port, p.remote_port) for p in cfg.proxies] == [
        (f"tcp-{6000 + i}", 6000 + i, 7000 + i) for i in range(3)]


def test_quick_mode_example(tmp_path: Path) -> None:
    ex = Example(tmp_path, ports(8080, 10000))
    out = ex.script("quick/run.sh", timeout=60)
    assert "Directory listing for /" in out, out


def test_a_finished_script_leaves_nothing_running(tmp_path: Path) -> None:
    """(The harness itself: the servers a script started in the background are gone after it.)"""
    ex = Example(tmp_path, ports(8080, 10000))
    ex.script("quick/run.sh", timeout=60)
    poll(lambda: refused(ex.ports[10000]) and refused(ex.ports[8080]), 5, "the script's servers gone")


def test_command_lines(frp, tmp_path: Path) -> None:
    with EchoServer() as echo:
        ex = Example(tmp_path, ports(7000, 6000, 8080, 9000, 7400, p22=echo.port),
                     {"SERVER": "127.0.0.1", "TOKEN": "change-me", "KEY": "k"})
        ex.write("tcp/frps.toml")
        frpc_toml = ex.text("tcp/frpc.toml")
        i = frpc_toml.index("[[proxies]]")
        (tmp_path / "frpc.toml").write_text(frpc_toml[:i] + ex.text("tcp/admin.toml") + "\n" + frpc_toml[i:])
        remote = ex.ports[6000]
        lines = ex.commands("cli/commands.sh")
        assert len(lines) == 13, lines
        (frps_file, frps_flags, frps_verify, frpc_file, frpc_verify, frpc_status, frpc_stop,
         one_shot, one_shot_addr_port, visitor, helps, help_tcp, version) = lines
        p = ex.start(frp, frps_file)
        p.wait_for_log("frps started successfully")
        p.stop()
        ex.start(frp, frps_flags).wait_for_log("frps started successfully")
        for line in (frps_verify, frpc_verify):
            assert "syntax is ok" in ex.run(line).stdout
        client = ex.start(frp, frpc_file)
        client.wait_for_proxies("ssh")
        assert echo_ok(remote)
        assert re.search(r"^ssh\s+running\s", ex.run(frpc_status).stdout, re.MULTILINE)
        assert ex.run(frpc_stop).stdout.strip() == "stop success"
        assert client.wait_exit(10) == 0
        for line in (one_shot, one_shot_addr_port):
            p = ex.start(frp, line)
            p.wait_for_proxies("ssh")
            assert echo_ok(remote)
            p.stop()
            poll(lambda: refused(remote), 10, "the remote port released")
        p = ex.start(frp, visitor)
        p.wait_for_log(rf"stcp visitor listen on 127\.0\.0\.1:{ex.ports[9000]}$")
        p.wait_login()
        p.stop()
        assert "--allow-ports" in ex.run(helps).stdout
        assert "--remote-port" in ex.run(help_tcp).stdout
        comment = re.search(r"frps --version\s+# (.*)$", BLOCKS["cli/commands.sh"], re.MULTILINE)
        assert comment and ex.run(version).stdout.strip() == comment[1]


def test_completion_lines(tmp_path: Path) -> None:
    ex = Example(tmp_path, {})
    bash_line, fish_line = ex.commands("cli/completion.sh")
    assert "complete -o default -F _frpc frpc" in ex.run(bash_line + "\ncomplete -p frpc").stdout
    assert "complete -c frps -n __fish_use_subcommand -a verify" in ex.run(fish_line.split("|")[0]).stdout


# -- OIDC authentication --------------------------------------------------------------------------


def test_oidc_example(frp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's provider is the local mock (HTTPS with a test CA, trusted through SSL_CERT_FILE
    by both frps and frpc, as a system CA would be)."""
    from support.oidc import MockOIDC, TestCA

    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
    with EchoServer() as echo, MockOIDC(ca=ca, clients={"office-frpc": "the-client-secret"},
                                         issuer_suffix="/realms/frp") as idp:
        ex = Example(tmp_path, ports(7000, 6000, p22=echo.port), extra={"https://idp.example.com": idp.base_url})
        ex.write("oidc/frps.toml")
        ex.write("oidc/frpc.toml")
        frps_line, frpc_line, ssh_line = ex.commands("oidc/run.sh")
        assert ssh_line.startswith("ssh -p ")
        ex.start(frp, frps_line).wait_for_log("frps started successfully")
        ex.start(frp, frpc_line).wait_for_proxies("ssh", timeout=15)
        assert echo_ok(ex.ports[6000])  # what `ssh -p 6000 user@x.x.x.x` reaches
        (req,) = idp.token_requests
        assert req.basic_auth() == ("office-frpc", "the-client-secret") and req.form["audience"] == "frps"


# -- Server manage plugins ----------------------------------------------------------------------


def test_server_plugin_example(frp, tmp_path: Path) -> None:
    """The README's plugin script, frps with it and maxPortsPerClient, frpc with the meta token;
    a client with a wrong token is refused with the plugin's reason."""
    with EchoServer() as echo:
        ex = Example(tmp_path, ports(7000, 9000, 6001, p22=echo.port))
        ex.write("plugins/plugin.py")
        ex.write("plugins/frps.toml")
        ex.write("plugins/frpc.toml")
        plugin_line, frps_line, frpc_line, ssh_line = ex.commands("plugins/run.sh")
        assert plugin_line == "python3 plugin.py &" and ssh_line.startswith("ssh -p ")
        plugin = FrpProcess([sys.executable], None, name="plugin", workdir=tmp_path, args=["plugin.py"])
        frp.processes.append(plugin)
        plugin.start()
        poll(lambda: not refused(ex.ports[9000]), 10, "the plugin listens")
        frps = ex.start(frp, frps_line)
        frps.wait_for_log("plugin \\[user-manager\\] has been registered")
        ex.start(frp, frpc_line).wait_for_proxies("alice.ssh", timeout=15)
        assert echo_ok(ex.ports[6001])  # what `ssh -p 6001 user@x.x.x.x` reaches
        plugin.wait_for_log(r'^Login .*"metas": \{"token": "s3cret"\}')
        plugin.wait_for_log(r'^NewProxy .*"remote_port": ' + str(ex.ports[6001]))

        (tmp_path / "bad.toml").write_text(ex.text("plugins/frpc.toml").replace("s3cret", "wrong"))
        bad = ex.start(frp, "frpc -c bad.toml")
        bad.wait_for_log(r"connect to server error: invalid meta token", 15)
        frps.wait_for_log(r"login from 127\.0\.0\.1:\d+ failed: invalid meta token")
# -- client plugins ------------------------------------------------------------------------------


def test_unix_domain_socket_plugin_example(frp, tmp_path: Path) -> None:
    from support.plugin_services import UnixHttpServer

    sock = Path(tempfile.mkdtemp(prefix="frp-uds-", dir="/tmp")) / "docker.sock"
    with UnixHttpServer(str(sock)) as web:
        ex = Example(tmp_path, ports(7000, 6000), {"/var/run/docker.sock": str(sock)})
        ex.write("tcp/frps.toml")
        ex.write("plugins/uds.toml", "frpc.toml")
        frps_line, frpc_line, curl_line = ex.commands("plugins/uds.sh")
        ex.start(frp, frps_line).wait_for_log("frps started successfully")
        ex.start(frp, frpc_line).wait_for_proxies("docker")
        assert ex.run(curl_line).stdout == "unix says hello to /version\n"
        assert web.paths == ["/version"]
    sock.parent.rmdir()


def test_socks5_plugin_example(frp, tmp_path: Path) -> None:
    with HttpServer() as web:
        ex = Example(tmp_path, ports(7000, 6001), {"intranet.lan": f"localhost:{web.port}"})
        ex.write("tcp/frps.toml")
        ex.write("plugins/socks5.toml", "frpc.toml")
        frps_line, frpc_line, curl_line = ex.commands("plugins/socks5.sh")
        ex.start(frp, frps_line).wait_for_log("frps started successfully")
        ex.start(frp, frpc_line).wait_for_proxies("socks")
        assert ex.run(curl_line).stdout.encode() == TEST_STRING


def test_tls2raw_plugin_example(frp, tmp_path: Path) -> None:
    with HttpServer() as web:
        ex = Example(tmp_path, ports(7000, 6002, p8080=web.port))
        ex.write("tcp/frps.toml")
        ex.write("plugins/tls2raw.toml", "frpc.toml")
        frps_line, frpc_line, curl_line = ex.commands("plugins/tls2raw.sh")
        ex.start(frp, frps_line).wait_for_log("frps started successfully")
        ex.start(frp, frpc_line).wait_for_proxies("app-tls")
        assert ex.run(curl_line).stdout.encode() == TEST_STRING


def test_http_proxy_plugin_example(frp, tmp_path: Path) -> None:
    with HttpServer() as web:
        ex = Example(tmp_path, ports(7000, 6003), {"intranet.lan": f"127.0.0.1:{web.port}"})
        ex.write("tcp/frps.toml")
        ex.write("plugins/http_proxy.toml", "frpc.toml")
        frps_line, frpc_line, get_line, connect_line = ex.commands("plugins/http_proxy.sh")
        ex.start(frp, frps_line).wait_for_log("frps started successfully")
        ex.start(frp, frpc_line).wait_for_proxies("web-proxy")
        assert ex.run(get_line).stdout.encode() == TEST_STRING
        assert ex.run(connect_line).stdout.encode() == TEST_STRING
        assert len(web.requests) == 2
# -- Client plugins -------------------------------------------------------------------------------


def test_static_file_plugin_example(frp, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    big = os.urandom(3 << 20)
    (share / "big.iso").write_bytes(big)
    ex = Example(tmp_path, ports(7000, 6000), extra={"/srv/share": str(share)})
    ex.write("plugins/static_file.toml", "frpc.toml")
    (tmp_path / "frps.toml").write_text(f"bindAddr = \"127.0.0.1\"\nbindPort = {ex.ports[7000]}\n")
    frps_line, frpc_line, listing, resume = ex.commands("plugins/static_file.sh")
    ex.start(frp, frps_line).wait_for_log("frps started successfully")
    ex.start(frp, frpc_line).wait_for_proxies("files")
    assert '<a href="big.iso">big.iso</a>' in ex.run(listing).stdout
    (tmp_path / "big.iso").write_bytes(big[:1_000_000])  # a partial download to resume
    ex.run(resume)
    assert (tmp_path / "big.iso").read_bytes() == big


def test_https2http_plugin_example(frp, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("served by the local app\n")
    ex = Example(tmp_path, ports(7000, 6443, 8080))
    ex.write("plugins/https2http.toml", "frpc.toml")
    (tmp_path / "frps.toml").write_text(f"bindAddr = \"127.0.0.1\"\nbindPort = {ex.ports[7000]}\n")
    app_line, frps_line, frpc_line, curl_line = ex.commands("plugins/https2http.sh")
    app = ex.start(frp, app_line.removesuffix("&").strip().replace("python3", sys.executable, 1))
    ex.start(frp, frps_line).wait_for_log("frps started successfully")
    ex.start(frp, frpc_line).wait_for_proxies("web-https")
    poll(lambda: not refused(ex.ports[8080]), 10, "the local app listening")
    assert ex.run(curl_line + " -w '%{http_version}'").stdout == "served by the local app\n2"
    app.stop()
# -- SSH tunnel gateway ---------------------------------------------------------------------------


def test_ssh_gateway_example(frp, tmp_path: Path) -> None:
    from support.ssh import keygen

    key = keygen(tmp_path, "alice", "alice")
    keys = tmp_path / "authorized_keys"
    keys.write_text(Path(f"{key}.pub").read_text())
    ssh_options = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                   "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", str(key)]
    with EchoServer() as echo, HttpServer() as site:
        ex = Example(tmp_path, ports(7000, 8080, 2200, 6000, p22=echo.port, p8000=site.port),
                     {"/home/frp/.ssh/authorized_keys": str(keys)})
        ex.write("sshgw/frps.toml")
        frps_line, tcp_line, http_line = ex.commands("sshgw/run.sh")
        frps = ex.start(frp, frps_line)
        frps.wait_for_log("frps started successfully", 30)
        assert (tmp_path / ".autogen_ssh_key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
        procs: list[subprocess.Popen[bytes]] = []
        outs: list[Path] = []
        try:
            for line in (tcp_line, http_line):
                argv = shlex.split(line)
                outs.append(tmp_path / f"ssh-{len(outs)}.out")
                with open(outs[-1], "wb") as out:
                    procs.append(subprocess.Popen([argv[0], *ssh_options, *argv[1:]], stdout=out,
                                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                  start_new_session=True))
            remote, vhost = ex.ports[6000], ex.ports[8080]

            def report(i: int, what: str) -> None:  # a failure shows what ssh printed (a flake seen once)
                try:
                    poll(lambda: outs[i].read_text().endswith("\n\n"), 20, what)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}; ssh printed {outs[i].read_text()!r}; frps log: "
                                         f"{frps.log_text()[-2000:]!r}") from None

            report(0, "the tcp tunnel's report")
            assert outs[0].read_text() == (
                f"\nfrp (via SSH) (Ctrl+C to quit)\n\nUser: alice\nProxyName: alice.ssh\nType: tcp\n"
                f"RemoteAddress: :{remote}\n\n"
            )
            assert echo_ok(remote)  # what `ssh -p 6000 user@x.x.x.x` reaches
            report(1, "the http tunnel's report")
            assert f"RemoteAddress: www.example.com:{vhost}\n" in outs[1].read_text()
            res = ex.run(f"curl -s -H 'Host: www.example.com' http://127.0.0.1:{vhost}/")
            assert res.stdout == TEST_STRING.decode()
        finally:
            for p in procs:
                p.kill()
                p.wait(5)
        try:
            poll(lambda: refused(remote), 10, "the tcp proxy gone with its ssh session")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; frps log: {frps.log_text()[-2000:]!r}") from None
# -- Reaching frps through proxies, DNS, wire protocol v2 ---------------------------------------


def test_reach_examples(frp, tmp_path: Path) -> None:
    from support.dnsserver import DNSServer
    from support.fwdproxy import HttpConnectProxy

    with EchoServer() as echo, HttpConnectProxy(auth=("alice", "s3cret")) as proxy, \
            DNSServer({"frps.example.com": ["127.0.0.1"]}) as dns:
        ex = Example(tmp_path, ports(7000, 6000, p22=echo.port),
                     {"198.51.100.7:3128": f"127.0.0.1:{proxy.port}", "192.0.2.53": dns.address})
        ex.write("tcp/frps.toml")
        frps = ex.start(frp, "frps -c frps.toml")
        frps.wait_for_log("frps started successfully")
        for name in ("reach/frpc-proxy.toml", "reach/frpc-dns.toml", "reach/frpc-v2.toml"):
            ex.write(name)
            frpc = ex.start(frp, f"frpc -c {name.rsplit('/', 1)[-1]}")
            frpc.wait_for_proxies("ssh", timeout=15)
            assert echo_ok(ex.ports[6000])  # what `ssh -p 6000 user@x.x.x.x` reaches
            frpc.stop()
            poll(lambda: refused(ex.ports[6000]), 10, "the proxy gone with its frpc")
        assert proxy.connected()[0].credentials == ("alice", "s3cret")
        assert ("frps.example.com", "A") in dns.asked()
        assert "wire protocol [v2]" in frps.log_text()
# -- frps dashboard and Prometheus ---------------------------------------------------------------


def test_dashboard_example(frp, tmp_path: Path) -> None:
    import json

    with EchoServer() as echo:
        ex = Example(tmp_path, ports(7000, 6000, 7500, p22=echo.port))
        ex.write("dashboard/frps.toml")
        ex.write("tcp/frpc.toml")
        ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully", 20)
        ex.start(frp, "frpc -c frpc.toml").wait_for_proxies("ssh")
        assert echo_ok(ex.ports[6000])
        info, tcp, traffic, metrics = ex.commands("dashboard/api.sh")
        assert json.loads(ex.run(info).stdout)["version"] == "0.65.0"
        (p,) = json.loads(ex.run(tcp).stdout)["proxies"]
        assert (p["name"], p["status"], p["conf"]["remotePort"]) == ("ssh", "online", ex.ports[6000])
        assert poll(lambda: json.loads(ex.run(traffic).stdout)["trafficIn"][0] > 0, 10, "traffic counted")
        assert 'frp_server_proxy_counts{type="tcp"} 1' in ex.run(metrics).stdout
        listed, clients, history, prune = ex.commands("dashboard/api-v2.sh")
        page = json.loads(ex.run(listed).stdout)
        assert (page["code"], page["msg"], page["data"]["total"]) == (200, "success", 1)
        assert page["data"]["items"][0]["spec"]["tcp"]["remotePort"] == ex.ports[6000]
        assert json.loads(ex.run(clients).stdout)["data"]["items"][0]["online"] is True
        days = json.loads(ex.run(history).stdout)["data"]["history"]
        assert len(days) == 7 and days[-1]["trafficIn"] > 0
        assert json.loads(ex.run(prune).stdout)["data"] == {"type": "offline_proxies", "cleared": 0, "total": 1}
