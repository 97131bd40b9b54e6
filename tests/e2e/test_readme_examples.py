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
    used = set(re.findall(r'"((?:tcp|stcp|xtcp|http|shared|lb|pp|oidc|config|quick|cli|dashboard)/[\w.-]+)"',
                          Path(__file__).read_text()))
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
        row = rf"^ssh\s+running\s+127\.0\.0\.1:{echo.port}\s+127\.0\.0\.1:{remote}$"
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
        d = Path(tempfile.mkdtemp(prefix="aiofrp-readme-"))
        (d / "c.pem").write_bytes(cert)
        (d / "k.pem").write_bytes(key)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
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
        assert len(lines) == 12, lines
        (frps_file, frps_flags, frps_verify, frpc_file, frpc_verify, frpc_status, frpc_stop,
         one_shot, one_shot_addr_port, visitor, helps, version) = lines
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
        comment = re.search(r"frps --version\s+# (.*)$", BLOCKS["cli/commands.sh"], re.MULTILINE)
        assert comment and ex.run(version).stdout.strip() == comment[1]


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
