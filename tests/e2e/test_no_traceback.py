"""No traceback on any bad input: the CLIs (frps, frpc, frp; verify, run, convert, status, stop,
one-shot modes) against a catalogue of bad files and arguments. Each exits non-zero with its
reason on one line, and no Python traceback reaches the user."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.procs import free_port, ours_cmd

pytestmark = pytest.mark.timeout(300)

FRP = [sys.executable, "-m", "aiofrp.cli.frp"]


def cmd(which: str) -> list[str]:
    return FRP if which == "frp" else ours_cmd(which)


def run(argv: list[str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
                          stdin=subprocess.DEVNULL, env={**env, "PYTHONUNBUFFERED": "1"})


# name -> file content (str or bytes); "DIR" makes a directory
FILES: dict[str, str | bytes] = {
    "garbage": bytes(range(256)) * 4,
    "nul.toml": "bindPort = 7000\n\x00\x00\n",
    "bad.toml": "bindPort = \n",
    "bad.yaml": "bindPort: [1, 2\n",
    "bad.json": '{"bindPort": }',
    "bad-noext": "bindPort = = 1\n[x\n",
    "bad.ini": "[common]\nbind_port = 7000\n[web\ntype = http\n",
    "badallow.ini": "[common]\nallow_ports = 9-x\n",
    "wrongtype.toml": 'bindPort = "seven thousand"\n',
    "huge.toml": "bindPort = 99999999999999999999999999999\n",
    "negative.toml": "bindPort = -1\n",
    "float.toml": "bindPort = 7000.5\n",
    "table.toml": "bindPort = { a = 1 }\n",
    "list.json": "[1, 2, 3]",
    "null.yaml": "bindPort: null\nauth: 5\n",
    "deep.json": "[" * 5000 + "]" * 5000,
    "level.toml": 'log.level = "loud"\n',
    "tpl-open.toml": "bindPort = {{ .Envs.PORT \n",
    "tpl-func.toml": "bindPort = {{ nosuchfunc }}\n",
    "tpl-range.toml": '{{- range $_, $v := parseNumberRangePair "1-9999999" "1-9999999" }}\n{{- end }}\n',
    "tpl-pair.toml": '{{- range $_, $v := parseNumberRangePair "1-3" "1-2" }}\n{{- end }}\n',
    "tokensrc.toml": 'auth.tokenSource.type = "file"\nauth.tokenSource.file.path = "/nonexistent/token"\n',
    "tokenexec.toml": 'auth.tokenSource.type = "exec"\nauth.tokenSource.exec.command = "/bin/true"\n',
    # valid files that cannot run (verify accepts them, as Go's does)
    "run-logdir.toml": 'bindAddr = "127.0.0.1"\nbindPort = 0\nlog.to = "/etc/hostname/frp.log"\n',
    "run-logisdir.toml": 'bindAddr = "127.0.0.1"\nbindPort = 0\nlog.to = "/tmp"\n',
    "run-cert.toml": 'bindAddr = "127.0.0.1"\nbindPort = 0\ntransport.tls.certFile = "/nonexistent.pem"\n'
                     'transport.tls.keyFile = "/nonexistent.key"\n',
    "run-badcert.toml": 'bindAddr = "127.0.0.1"\nbindPort = 0\ntransport.tls.certFile = "garbage"\n'
                        'transport.tls.keyFile = "garbage"\ntransport.tls.trustedCaFile = "garbage"\n',
    # frpc
    "c-proxy.toml": '[[proxies]]\nname = "a"\ntype = "nope"\n',
    "c-dup.toml": '[[proxies]]\nname = "a"\ntype = "tcp"\n[[proxies]]\nname = "a"\ntype = "tcp"\n',
    "c-inc-missing.toml": 'includes = ["missing-dir/*.toml"]\n',
    "c-inc-bad.toml": 'includes = ["incdir/*.toml"]\n',
    "incdir/bad.toml": 'serverPort = 1\n',
    "c-inc-garbage.toml": 'includes = ["incdir2/*.toml"]\n',
    "incdir2/g.toml": "\x00\x01 not toml [[[",
    "c-visitor.toml": '[[visitors]]\nname = "v"\ntype = "stcp"\n',
    "c-plugin.toml": '[[proxies]]\nname = "a"\ntype = "tcp"\nplugin = "socks5"\n',
    "c-hc.toml": '[[proxies]]\nname = "a"\ntype = "tcp"\nhealthCheck.type = "http"\n',
    "c-bw.toml": '[[proxies]]\nname = "a"\ntype = "tcp"\ntransport.bandwidthLimit = "fast"\n',
    "c-gate.toml": 'featureGates = { Nope = true }\n',
    "c-hb.toml": "transport.heartbeatInterval = 60\ntransport.heartbeatTimeout = 10\n",
    "c-badrole.ini": "[common]\n[v]\nrole = nobody\n",
    "c-badrange.ini": "[common]\n[range:r]\nlocal_port = 1-3\nremote_port = 1-2\n",
    "c-badtype.ini": "[common]\n[p]\ntype = tcpx\n",
    "c-badvisitor.ini": "[common]\n[v]\nrole = visitor\ntype = http\n",
    "c-common.ini": "[common]\n[p]\ntype = tcp\nplugin = no_such_plugin\n",
    "noadmin.toml": 'serverPort = 7000\n',
    "conv-frps.ini": "[common]\nbind_port = 7000\n",
    "dir": "DIR",
}

C = [f for f in FILES if f.startswith("c-")]
S = [f for f in FILES if not f.startswith(("c-", "incdir", "dir", "run-", "noadmin", "conv-"))]

CASES: list[tuple[str, list[str]]] = []
for f in ["missing-file", "dir", "/proc/self/mem", *S]:
    CASES += [("frps", ["verify", "-c", f]), ("frps", ["-c", f])]
CASES += [("frps", ["-c", f]) for f in FILES if f.startswith("run-")]
for f in ["missing-file", "dir", "garbage", "bad.toml", "bad.yaml", "tpl-open.toml", "wrongtype.toml", *C]:
    CASES += [("frpc", ["verify", "-c", f]), ("frpc", ["-c", f])]
for which in ("frps", "frpc"):
    CASES += [
        (which, ["convert", "-c", "missing-file"]),
        (which, ["convert", "-c", "dir"]),
        (which, ["convert", "-c", "garbage"]),
        (which, ["convert", "-c", "bad.toml"]),
        (which, ["convert", "-c", "bad.ini"]),
        (which, ["convert", "-c", "badallow.ini" if which == "frps" else "c-badrange.ini"]),
        (which, ["convert", "-c", "c-badrole.ini" if which == "frpc" else "bad-noext"]),
        (which, ["convert", "-c", "c-common.ini" if which == "frpc" else "conv-frps.ini", "-o", "no/dir/x.toml"]),
        (which, ["verify", "-c", "missing-file"]),  # (without -c: exit 0 as Go's, test_cli_parity.py)
        (which, ["--nope"]),
        (which, ["-c"]),
        (which, ["verify", "-c", "bad.toml", "--strict-config", "maybe"]),
        (which, ["bogus-command"]),
        (which, ["verify", "-c", "bad.toml", "--allow-unsafe", "TokenSourceExec,NoSuchFeature"]),
    ]
CASES += [
    ("frps", ["-p", "abc"]),
    ("frps", ["-p", "99999999999999999999"]),
    ("frps", ["-p", "-1"]),
    ("frps", ["--allow-ports", "1-x"]),
    ("frps", ["--vhost-http-port", "70000"]),
    ("frps", ["--log-level", "loud", "-p", "0"]),
    ("frps", ["--log-file", "/etc/hostname/x.log", "-p", "0", "--bind-addr", "127.0.0.1"]),
    ("frps", ["-c", "bad.toml", "-o", "x"]),
    ("frpc", ["status", "-c", "noadmin.toml"]),
    ("frpc", ["stop", "-c", "noadmin.toml"]),
    ("frpc", ["status", "-c", "admin-closed.toml"]),
    ("frpc", ["stop", "-c", "admin-closed.toml"]),
    ("frpc", ["tcp", "-l", "abc"]),
    ("frpc", ["tcp", "-l"]),
    ("frpc", ["tcp", "-P", "99999999999999999999", "-l", "22"]),
    ("frpc", ["tcp", "-l", "22", "-r", "-5"]),
    ("frpc", ["tcp", "-l", "22", "--annotations", "no-equals-sign"]),
    ("frpc", ["tcp", "-l", "22", "--tls-enable", "perhaps"]),
    ("frpc", ["tcp", "-l", "22", "--bandwidth-limit", "lots"]),
    ("frpc", ["tcp", "-l", "22", "--bandwidth-limit-mode", "both"]),
    ("frpc", ["tcp", "-l", "22", "--log-file", "/etc/hostname/x.log"]),
    ("frpc", ["http", "-l", "80"]),
    ("frpc", ["tcp", "visitor"]),
    ("frpc", ["stcp", "visitor"]),
    ("frpc", ["stcp", "visitor", "--server-name", "s", "--bind-port", "abc"]),
    ("frpc", ["xtcp", "visitor", "--server-name", "s", "--bind-port", "70000"]),
    ("frpc", ["-o", "x", "-c", "noadmin.toml"]),
    ("frp", ["-p", "0"]),
    ("frp", ["-p", "abc"]),
    ("frp", ["-m", "sideways"]),
    ("frp", ["-m", "client"]),
    ("frp", ["-m", "client", "-h", "127.0.0.1", "-lp", "70000"]),
    ("frp", ["-m", "server", "-lp", "80"]),
    ("frp", ["--log-level", "loud", "-h", "127.0.0.1", "-p", "1"]),
    ("frp", ["--nope"]),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad-input")
    for name, content in FILES.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if content == "DIR":
            p.mkdir()
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    closed = free_port()  # nothing listens there
    (d / "admin-closed.toml").write_text(f'webServer.addr = "127.0.0.1"\nwebServer.port = {closed}\n')
    return d


@pytest.mark.parametrize(("which", "argv"), CASES, ids=[f"{w} {' '.join(a)}" for w, a in CASES])
def test_no_traceback(workdir: Path, which: str, argv: list[str]) -> None:
    res = run(cmd(which) + argv, workdir)
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out
    assert res.returncode != 0, out
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if lines and lines[0].startswith("usage: "):  # a usage error: usage, then "PROG: error: REASON"
        assert res.returncode == 1 and ": error: " in lines[-1], out  # 1, as cobra (argparse: 2)
    elif lines:  # one line: the file/flag, the key and why (after a legacy INI file's warnings)
        assert all("deprecated" in ln or ", ignored" in ln for ln in lines[:-1]), out
    else:  # a service that could not start: its log's last line says why
        log = [ln for ln in res.stdout.splitlines() if ln.strip()]
        assert log and " [E] " in log[-1], out


def test_log_to_missing_directory_is_created(workdir: Path, tmp_path: Path) -> None:
    """As Go frp does: frps creates the log file's directories and starts."""
    log_file = tmp_path / "no" / "such" / "dir" / "frps.log"
    conf = tmp_path / "frps.toml"
    conf.write_text(f'bindAddr = "127.0.0.1"\nbindPort = {free_port()}\nlog.to = "{log_file}"\n')
    proc = subprocess.Popen(cmd("frps") + ["-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if log_file.exists() and "frps started successfully" in log_file.read_text():
                break
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.05)
        else:
            pytest.fail(f"frps did not log to {log_file}")
    finally:
        proc.kill()
        proc.wait()


def test_a_console_that_went_away_is_no_traceback(tmp_path: Path) -> None:
    """frps whose stdout reader is gone (``frps | head -1`` after head exits): every log line fails
    with EPIPE; the service goes on serving and stderr gets no ``--- Logging error ---`` traceback
    per line."""
    import socket

    from support.procs import wait_port

    port = free_port()
    cfg = tmp_path / "frps.toml"
    cfg.write_text(f'bindAddr = "127.0.0.1"\nbindPort = {port}\n')
    proc = subprocess.Popen(cmd("frps") + ["-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before frps's first line
    try:
        wait_port(port, 15)
        for _ in range(3):  # lines at warning level: frps logs an unreadable first message
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"\x00" * 64)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # still serving
        assert proc.poll() is None
    finally:
        proc.terminate()
        err = proc.stderr.read().decode(errors="replace")
        proc.wait(10)
    assert "Traceback" not in err and "Logging error" not in err, err
