"""The ``frps`` / ``frpc`` command lines: ``verify``, ``-v``, flag-only frps, config errors, defaults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.procs import (
    TEST_STRING,
    free_port,
    frpc_config,
    ours_cmd,
    tcp_proxy,
    tcp_roundtrip,
)

pytestmark = pytest.mark.timeout(60)


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------------

GOOD_FRPS = 'bindAddr = "127.0.0.1"\nbindPort = 7000\nauth.token = "abc"\ntransport.tcpMux = true\n'
GOOD_FRPC = (
    'serverAddr = "127.0.0.1"\nserverPort = 7000\nauth.token = "abc"\n'
    '\n[[proxies]]\nname = "ssh"\ntype = "tcp"\nlocalIP = "127.0.0.1"\nlocalPort = 22\nremotePort = 6000\n'
    '\n[[proxies]]\nname = "web"\ntype = "tcp"\nlocalPort = 80\nremotePort = 0\n'
    'transport.useEncryption = true\ntransport.useCompression = true\n'
)


@pytest.mark.parametrize("which", ["frps", "frpc"])
@pytest.mark.parametrize("filename", ["conf", "conf.toml"], ids=["no-extension", "toml"])
def test_verify_ok(tmp_path: Path, which: str, filename: str) -> None:
    path = write(tmp_path, f"{which}-{filename}", GOOD_FRPS if which == "frps" else GOOD_FRPC)
    res = run(*ours_cmd(which), "verify", "-c", str(path))
    assert res.returncode == 0, res
    assert f"{which}: the configuration file {path} syntax is ok" in res.stdout, res


BAD = 'serverAddr = "127.0.0.1"\nserverPort = 7000\n'
TCP_A = '\n[[proxies]]\nname = "a"\ntype = "tcp"\nlocalPort = 22\n'

INVALID = [
    pytest.param("frps", "bindPort = 7000\nbindPrt = 7001\n", "bindPrt", "unknown", id="frps-unknown-key"),
    pytest.param("frps", "bindPort = 70000\n", "bindPort", "70000", id="frps-port-70000"),
    pytest.param("frps", "bindPort = 7000\n[transport]\ntcpMuxx = true\n", "transport.tcpMuxx", "unknown",
                 id="frps-unknown-nested-key"),
    pytest.param("frpc", BAD + "serverPrt = 7000\n", "serverPrt", "unknown", id="frpc-unknown-key"),
    pytest.param("frpc", BAD.replace("7000", "70000"), "serverPort", "70000", id="frpc-port-70000"),
    pytest.param("frpc", BAD + TCP_A + "remotePort = 70000\n", "proxies[0].remotePort", "70000",
                 id="frpc-remote-port-70000"),
    pytest.param("frpc", BAD + TCP_A.replace('"tcp"', '"tcpx"'), "proxies[0].type", "tcpx",
                 id="frpc-unknown-proxy-type"),
    pytest.param("frpc", BAD + TCP_A + TCP_A, "proxies[1].name", "duplicate", id="frpc-duplicate-names"),
    pytest.param("frpc", BAD + TCP_A + "transport.useEncryptoin = true\n",
                 "proxies[0].transport.useEncryptoin", "unknown", id="frpc-unknown-proxy-key"),
]


@pytest.mark.parametrize(("which", "text", "key", "detail"), INVALID)
def test_verify_invalid(tmp_path: Path, which: str, text: str, key: str, detail: str) -> None:
    path = write(tmp_path, which, text)
    res = run(*ours_cmd(which), "verify", "-c", str(path))
    out = res.stdout + res.stderr
    assert res.returncode == 1, res
    assert "syntax is ok" not in out, out
    # One message naming the file, the key path and what is wrong with it.
    lines = [ln for ln in out.splitlines() if str(path) in ln and key in ln]
    assert lines, out
    assert detail.lower() in lines[0].lower(), out
    assert "Traceback" not in out, out


@pytest.mark.parametrize("which", ["frps", "frpc"])
def test_run_with_invalid_config_exits_1(tmp_path: Path, which: str) -> None:
    """Not only `verify`: starting with a bad file fails the same way, before doing anything."""
    text = "bindPort = 70000\n" if which == "frps" else BAD + "serverPrt = 1\n"
    path = write(tmp_path, which, text)
    res = run(*ours_cmd(which), "-c", str(path))
    out = res.stdout + res.stderr
    assert res.returncode == 1, res
    assert str(path) in out and ("bindPort" in out if which == "frps" else "serverPrt" in out), out
    assert "Traceback" not in out, out


@pytest.mark.parametrize("which", ["frps", "frpc"])
def test_verify_missing_file(tmp_path: Path, which: str) -> None:
    path = tmp_path / "does-not-exist"
    res = run(*ours_cmd(which), "verify", "-c", str(path))
    out = res.stdout + res.stderr
    assert res.returncode == 1, res
    assert str(path) in out and "syntax is ok" not in out, out
    assert "Traceback" not in out, out


# --------------------------------------------------------------------------------------------------
# version, defaults, status without admin API
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["frps", "frpc", "frp"])
@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version(which: str, flag: str) -> None:
    res = run(*ours_cmd(which), flag)
    assert res.returncode == 0, res
    # our own version, then the frp release we are compatible with (the one sent on the wire)
    assert re.fullmatch(r"aiofrp \d+\.\d+\.\d+\S* \(frp 0\.65\.0 compatible\)", res.stdout.strip()), res.stdout


def test_defaults_without_config() -> None:
    """frps with nothing configured serves on 0.0.0.0:7000 (checked on the parsed config, not by
    binding); frpc's defaults are serverPort 7000 and loginFailExit true."""
    code = (
        "from aiofrp.config import parse_server_config, parse_client_config\n"
        "s = parse_server_config('', 'x')\n"
        "assert s.bind_port == 7000, s.bind_port\n"
        "assert s.bind_addr == '0.0.0.0', s.bind_addr\n"
        "assert s.transport.tcp_mux is True\n"
        "c = parse_client_config('', 'y')\n"
        "assert c.server_port == 7000, c.server_port\n"
        "assert c.login_fail_exit is True\n"
        "print('ok')\n"
    )
    res = run(sys.executable, "-c", code)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res


def test_frpc_status_without_admin_api(tmp_path: Path) -> None:
    path = write(tmp_path, "frpc", BAD + TCP_A)
    res = run(*ours_cmd("frpc"), "status", "-c", str(path))
    assert res.returncode == 1, res
    assert res.stderr == "web server port should be set if you want to use this feature\n", res  # Go's words
    assert "Traceback" not in res.stdout + res.stderr, res


# --------------------------------------------------------------------------------------------------
# frps from flags only
# --------------------------------------------------------------------------------------------------


def test_frps_flags_only(frp, echo_server) -> None:
    port, remote = free_port(), free_port()
    # --bind-addr keeps the test on loopback; -p/-t are the flags under test.
    frps = frp.run(ours_cmd("frps"), None, name="frps", args=["-p", str(port), "-t", "flag-token",
                                                               "--bind-addr", "127.0.0.1"])
    frps.wait_for_log(r"frps started successfully", 10)
    assert f"127.0.0.1:{port}" in frps.log_text()

    good = frp.ours_frpc(frpc_config(port, tcp_proxy("echo", echo_server.port, remote), token="flag-token"))
    good.wait_login(10)
    good.wait_for_proxies("echo", timeout=10)
    assert tcp_roundtrip(remote, TEST_STRING, 5) == TEST_STRING

    # The token really is the flag's.
    bad = frp.ours_frpc(frpc_config(port, tcp_proxy("other", echo_server.port, free_port()), token="nope",
                                    login_fail_exit=True))
    bad.wait_for_log(r"token in login doesn't match token from configuration", 10)
    assert bad.wait_exit(10) == 1
